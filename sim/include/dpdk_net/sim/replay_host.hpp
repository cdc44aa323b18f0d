// The replay engine (dpdk_net/replay/replay.hpp) on a simulated host: a NIC driven by the engine
// on the virtual clock, as stack_host drives a stack.
//
//   pump():  rx_burst -> engine.on_frame -> engine.poll -> tx_burst, then ONE host timer armed at
//            engine.next_wakeup().
//
// The simulator calls pump() when frames arrive (the host's on_receive) and when the timer fires;
// start() runs the first pump (the engine's ARP request). Everything the replayer sends and
// receives can be written to a pcapng (open_output), stamped with the simulated time, so the same
// capture and seed give the same file, byte for byte.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/replay/replay.hpp"
#include "dpdk_net/sim/network.hpp"

namespace dpdk_net::sim {

class replay_host {
 public:
  /// Drives `engine` (which must outlive this) through `nic` of `h`.
  replay_host(host& h, sim_nic& nic, replay::engine& engine);
  ~replay_host();
  replay_host(const replay_host&) = delete;
  replay_host& operator=(const replay_host&) = delete;

  /// Writes every frame sent (outbound) and received (inbound) to a pcapng at path. False with
  /// error on failure.
  bool open_output(const std::string& path, std::string& error);
  /// Closes the output (statistics blocks stamped with the current simulated time).
  void close_output();

  /// The first pump: the replay starts now.
  void start() { pump(); }
  void pump();

  [[nodiscard]] bool done() const noexcept { return engine_->done(); }
  [[nodiscard]] replay::engine& engine() noexcept { return *engine_; }
  /// Frames the NIC refused or the pool could not hold (dropped, counted).
  [[nodiscard]] std::uint64_t tx_dropped() const noexcept { return tx_dropped_; }
  [[nodiscard]] std::uint64_t pumps() const noexcept { return pumps_; }

 private:
  void transmit(std::span<const std::byte> frame);
  void arm_timer(time_ns now);

  host* host_;
  sim_nic* nic_;
  replay::engine* engine_;
  std::unique_ptr<pcapng_writer> out_;
  std::vector<std::byte> rx_bytes_;
  time_ns timer_at_ = UINT64_MAX;
  std::shared_ptr<std::uint64_t> timer_generation_ = std::make_shared<std::uint64_t>(0);
  std::uint64_t tx_dropped_ = 0;
  std::uint64_t pumps_ = 0;
};

}  // namespace dpdk_net::sim
