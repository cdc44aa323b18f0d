// Our IPv4 stack on a simulated host: the one driver every simulated scenario uses (UDP and ICMP
// tests, sim_demo; TCP and the Asio runtime extend it rather than write another pump loop).
//
// It does what a runtime's poll loop does, on the host's own clock (local_now(): a host's clock
// offset and drift reach the stack, its timers and its rate limits):
//
//   pump():  rx_burst -> stack.receive -> stack.advance -> on_pump (the application's turn)
//            -> stack.drain_tx -> tx_burst, then ONE host timer armed at the stack's next
//            deadline (earlier if the NIC's tx ring was busy).
//
// The simulator calls pump() when frames arrive (the host's on_receive) and when the timer
// fires; an application calls it after it sends, so what it queued goes out now. Frames the NIC
// refuses (a bounded tx ring) wait in a small backlog and go first at the next pump, as they
// would in a real poll loop. A crash discards the stack with the host's memory; restart() builds
// a fresh one (same address, same secret) and calls on_restart so the application rebinds.
//
// Extending it: derive and override on_pump / on_restart (TCP, the Asio runtime), or set the
// app / restarted callbacks (tests, examples).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::sim {

/// A stack's 128-bit secret for a simulated host: derived from the network's seed and the
/// host's name (two streams), so runs are reproducible and hosts' keys differ.
[[nodiscard]] stack::stack_secret stack_secret_for(const host& h);

struct stack_host_options {
  std::uint16_t queue = 0;              ///< the NIC queue the stack uses
  bool announce = false;                ///< send a gratuitous ARP when (re)started
  time_ns tx_retry = 20 * microsecond;  ///< local time before retrying a busy tx ring
};

class stack_host {
 public:
  /// Builds the stack on `nic` (config.mac defaults to the NIC's). Throws std::invalid_argument
  /// naming the field if validate(config, nic MTU) refuses the configuration.
  stack_host(host& h, sim_nic& nic, stack::stack_config config, stack_host_options options = {});
  virtual ~stack_host();
  stack_host(const stack_host&) = delete;
  stack_host& operator=(const stack_host&) = delete;

  [[nodiscard]] host& sim_host() const noexcept { return *host_; }
  [[nodiscard]] sim_nic& nic() const noexcept { return *nic_; }
  [[nodiscard]] stack::stack& ip() noexcept { return *stack_; }
  [[nodiscard]] const stack::stack& ip() const noexcept { return *stack_; }
  /// The host's clock: the time every stack call of this driver is given.
  [[nodiscard]] time_ns now() const noexcept { return host_->local_now(); }

  /// One turn of the poll loop (see the top of this file).
  void pump();

  /// The application's turn in every pump (after receive and advance, before drain_tx), with
  /// the host's local time. Used by the default on_pump.
  std::function<void(stack_host&, time_ns now)> app;
  /// Called after a restart built a fresh stack. Used by the default on_restart.
  std::function<void(stack_host&)> restarted;

  [[nodiscard]] std::uint64_t pumps() const noexcept { return pumps_; }
  /// Frames drained from the stack that the NIC's tx ring refused, waiting for the next pump.
  [[nodiscard]] std::size_t tx_backlog() const noexcept { return backlog_count_; }
  /// Times tx_burst took fewer frames than offered.
  [[nodiscard]] std::uint64_t tx_busy() const noexcept { return tx_busy_; }
  [[nodiscard]] std::uint16_t queue() const noexcept { return options_.queue; }

 protected:
  /// One received frame (default: into the stack). A worker of several hands others' frames over.
  virtual void receive_frame(packet frame, time_ns now);
  virtual void on_pump(time_ns now);
  virtual void on_restart();
  /// The application's earliest deadline (its own timers; `now` if it has work ready): the
  /// host's timer is armed at the earlier of this and the stack's. None by default.
  [[nodiscard]] virtual time_ns app_deadline(time_ns now) const noexcept {
    (void)now;
    return UINT64_MAX;
  }
  /// After a crash: a fresh stack, then on_restart and a pump (the host's on_restart calls it;
  /// a host with several stack_hosts calls it for each).
  void restart_after_crash();

 private:
  static constexpr std::size_t burst = 32;
  void build_stack();
  void transmit();
  void arm_timer(time_ns now);

  host* host_;
  sim_nic* nic_;
  stack::stack_config config_;
  stack_host_options options_;
  std::optional<stack::stack> stack_;
  std::array<packet, burst> rx_{};
  std::array<packet, burst> tx_{};
  std::array<packet, burst> backlog_{};  // tx_burst refused these; oldest first
  std::size_t backlog_count_ = 0;
  time_ns timer_at_ = UINT64_MAX;  // local time the armed host timer fires (MAX: none)
  // Bumped to supersede the armed timer; shared with it so a timer outliving the driver is safe.
  std::shared_ptr<std::uint64_t> timer_generation_ = std::make_shared<std::uint64_t>(0);
  std::uint64_t pumps_ = 0;
  std::uint64_t tx_busy_ = 0;
};

}  // namespace dpdk_net::sim
