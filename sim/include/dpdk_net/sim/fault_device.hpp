// A fault-injecting wrapper around any device: the simulator's seeded link model applied to a
// real device's rx and tx paths, so live tests against Linux get delay, reordering, duplication
// and corruption too (this kernel has no netem). Time comes from a caller-supplied clock (the
// runtime passes a monotonic clock; tests pass a manual one): nothing here reads a clock itself.
//
// Held frames (delayed, reordered) are released by later rx_burst/tx_burst calls, so the driver
// must keep polling (it does: the runtime polls with an idle back-off).
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "dpdk_net/device.hpp"
#include "dpdk_net/sim/link_model.hpp"

namespace dpdk_net::sim {

class fault_device final : public device {
 public:
  using clock = std::function<time_ns()>;

  /// rx applies to frames the inner device receives, tx to frames sent through it.
  fault_device(device& inner, clock now, std::uint64_t seed, const link_config& rx,
               const link_config& tx);
  ~fault_device() override;

  /// The inner device's, except that queues share the wrapper's state: not thread-safe.
  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override {
    return inner_.tx_pool(queue);
  }
  [[nodiscard]] link_status link() const noexcept override { return inner_.link(); }
  [[nodiscard]] device_stats stats() const noexcept override;
  [[nodiscard]] wait_handle rx_wait_handle(std::uint16_t queue) const noexcept override {
    return inner_.rx_wait_handle(queue);
  }

  [[nodiscard]] link_model& rx_model() noexcept { return rx_; }
  [[nodiscard]] link_model& tx_model() noexcept { return tx_; }
  [[nodiscard]] const std::vector<fault_decision>& decisions() const noexcept { return applied_; }
  /// Frames held back (delayed) in either direction.
  [[nodiscard]] std::size_t held() const noexcept { return rx_held_.size() + tx_held_.size(); }

 private:
  struct held_frame {
    time_ns due;
    std::uint64_t sequence;
    std::uint16_t queue;
    segment* frame;
    bool operator>(const held_frame& o) const noexcept {
      return due != o.due ? due > o.due : sequence > o.sequence;
    }
  };
  using held_queue =
      std::priority_queue<held_frame, std::vector<held_frame>, std::greater<held_frame>>;
  void admit(link_model& model, held_queue& q, std::uint16_t queue, packet p, time_ns now);
  void release_tx(time_ns now);

  device& inner_;
  device_info info_;
  std::uint64_t bad_queue_ = 0;
  std::vector<held_frame> scratch_;  // reused by rx_burst: no allocation per call
  clock now_;
  link_model rx_;
  link_model tx_;
  held_queue rx_held_;
  held_queue tx_held_;
  std::vector<fault_decision> applied_;
  std::uint64_t sequence_ = 0;
};

}  // namespace dpdk_net::sim
