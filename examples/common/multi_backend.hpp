// Several workers in the Asio examples (--cores, cores.hpp): the sim backend's server host with
// one or N workers, and the JSON the HTTP server's /stats shows for several workers.
//
//   sim_server   workers == 1: exactly the one-worker sim_runtime (the same trace as before);
//                else a sim_multi_runtime over an N-queue NIC (Toeplitz RSS in the simulated NIC:
//                hardware steering). The simulator is single-threaded and has no CPU model: a
//                request costs no virtual time, so N workers serve the same requests/s as one --
//                what it shows is that the flows spread and every answer is right.
//   http stats   per worker: its requests and connections (http_app's per-worker counters),
//                its loop's frames, its hand-over counters (software RSS), its core and affinity.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cores.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_multi_runtime.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"

namespace dpdk_net::examples {

/// The server host's NIC for `workers` workers (one queue each).
[[nodiscard]] sim::nic_config sim_server_nic(std::uint16_t workers) noexcept;

class sim_server {
 public:
  /// nic: from sim_server_nic(workers) (a default NIC for one worker).
  sim_server(sim::host& h, sim::sim_nic& nic, stack::stack_config config, std::uint16_t workers);
  sim_server(const sim_server&) = delete;
  sim_server& operator=(const sim_server&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return multi_ ? multi_->size() : 1; }
  [[nodiscard]] sim::sim_runtime& worker(std::size_t i) {
    return multi_ ? multi_->worker(i) : *one_;
  }
  [[nodiscard]] net_context::executor_type get_executor(std::size_t i) {
    return worker(i).get_executor();
  }
  /// Per worker (several workers only): steering counters; loop counters are not kept.
  [[nodiscard]] std::vector<worker_stats> stats() const;
  [[nodiscard]] steering_mode steering() const noexcept {
    return multi_ ? multi_->steering() : steering_mode::hardware;
  }

 private:
  std::optional<sim::sim_runtime> one_;
  std::optional<sim::sim_multi_runtime> multi_;
};

/// Our stacks' counters summed, as JSON members ("stack":{...},"tcp":{...}); one stack: exactly
/// stack_counters_json(ip). Read them on the stacks' thread, or after it ended.
[[nodiscard]] std::string stacks_counters_json(std::span<stack::stack* const> stacks);

namespace http {

/// /stats members for a multi-worker tap server: "steering":..,"handed_out":..,
/// "software_hashes":..,"workers":[{per worker: runtime, steering, core, affinity, requests,
/// connections, ...}] and, once `stopped` (the threads have ended), the stacks' counters summed.
struct tap_workers_stats {
  multi_runtime* rt = nullptr;
  bool stopped = false;
};
[[nodiscard]] std::string tap_workers_stats_json(void* tap_workers_stats);

/// The same for the sim backend's server (sim_server*): always with the stacks' counters.
[[nodiscard]] std::string sim_workers_stats_json(void* sim_server);

}  // namespace http
}  // namespace dpdk_net::examples
