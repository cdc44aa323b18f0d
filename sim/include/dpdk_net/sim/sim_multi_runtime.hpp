// The multi-core runtime in the simulator: N workers on one host, one per queue of its
// multi-queue NIC (Toeplitz RSS), each a sim_runtime (its own stack and net_context), sharing
// one address, with the same flow ownership and hand-over code as the threaded multi_runtime
// (flow_steering, worker_mesh). Single-threaded and deterministic: the workers' pumps run one
// after another at each virtual instant, so the same seed gives the same bytes.
//
// hardware steering when the NIC takes our RSS key and table (a sim_nic with several queues
// does), software (every worker hashes and hands over) with force_software_rss or a NIC whose
// RSS is off (everything then lands on queue 0).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dpdk_net/runtime/flow_steering.hpp"
#include "dpdk_net/runtime/worker_mesh.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"

namespace dpdk_net::sim {

struct sim_multi_options {
  std::uint16_t workers = 2;  ///< at most the NIC's queues
  bool force_software_rss = false;
  std::size_t handoff_ring = 1024;
  bool announce = true;  ///< worker 0 sends a gratuitous ARP at start
};

class sim_multi_runtime {
 public:
  /// Throws std::invalid_argument: more workers than the NIC has queues, a bad config.
  sim_multi_runtime(host& h, sim_nic& nic, stack::stack_config config,
                    sim_multi_options options = {});
  ~sim_multi_runtime();
  sim_multi_runtime(const sim_multi_runtime&) = delete;
  sim_multi_runtime& operator=(const sim_multi_runtime&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  [[nodiscard]] sim_runtime& worker(std::size_t i);
  [[nodiscard]] net_context::executor_type get_executor(std::size_t i) {
    return worker(i).get_executor();
  }
  [[nodiscard]] steering_mode steering() const noexcept { return flows_->mode(); }
  [[nodiscard]] const flow_steering& flows() const noexcept { return *flows_; }
  [[nodiscard]] mesh_counters counters(std::size_t i) const noexcept {
    return mesh_->counters(static_cast<std::uint16_t>(i));
  }

 private:
  class worker_host;
  host* host_;
  std::unique_ptr<flow_steering> flows_;
  std::unique_ptr<worker_mesh> mesh_;
  std::vector<std::unique_ptr<worker_host>> workers_;
};

}  // namespace dpdk_net::sim
