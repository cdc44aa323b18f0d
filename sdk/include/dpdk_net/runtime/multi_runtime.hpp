// The multi-core runtime: N workers, one per device queue, each a `runtime` (its own stack,
// net_context and loop) on its own thread, pinned to its own core. Nothing is shared on the packet
// path: flows belong to the worker their RSS hash picks (flow_steering.hpp; the table is in
// docs/asio.md "Flow ownership"). Where the device steers by hash (hardware RSS: the runtime
// programs a symmetric key and a table spreading over the workers' queues) a flow's packets
// arrive at its owner; where it cannot (TAP, memif, ring), the receiving worker hashes each frame
// and hands what others own to them over lock-free rings (worker_mesh.hpp: software RSS).
//
// All workers share one address, one MAC and one stack secret (SYN cookies and ISNs validate on
// any worker); IPv4 ids are partitioned; outgoing connects pick ports whose hash lands on the
// calling worker; every worker may listen on the same port (like SO_REUSEPORT).
//
// Using it from Asio code:
//   - I/O objects take a worker's executor (worker(i).get_executor()) and are used on that worker
//     (create them in a coroutine spawned there, or before run());
//   - per-worker accept loops: for (i...) co_spawn(rt.worker(i).get_executor(), serve(...));
//   - one acceptor for all workers: dpdk_net::tcp::multi_acceptor (asio/multi_acceptor.hpp),
//     whose accepted sockets are bound to the owning worker's executor;
//   - ordinary threads reach a socket through asio::post / co_spawn on its worker's executor
//     (no lock on the packet path; the executor's remote queue takes the post).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dpdk_net/runtime/flow_steering.hpp"
#include "dpdk_net/runtime/runtime.hpp"
#include "dpdk_net/runtime/worker_mesh.hpp"

namespace dpdk_net {

struct multi_runtime_options {
  /// One worker per entry, pinned to that core (checked against the process's allowed set).
  /// Empty: `workers` workers, not pinned.
  std::vector<unsigned> cores;
  std::uint16_t workers = 1;  ///< when `cores` is empty
  bool pin = true;            ///< false (--no-pin): workers float (tests on a shared machine)
  /// Hash in software even if the device could steer (tests of the software path).
  bool force_software_rss = false;
  /// Frames per ordered pair of workers in the hand-over rings; 0: 1024 up to 8 workers, fewer
  /// beyond (the mesh has workers * (workers - 1) pairs).
  std::size_t handoff_ring = 0;
  runtime_options loop{};  ///< each worker's loop (queue, announce and exit rule are set here)
  /// Called on each worker's thread (after pinning) before its loop runs, with its index: where
  /// a backend registers the thread (DPDK: rte_thread_register, for mempool caches and lcore
  /// ids). An exception from it stops every worker (join() rethrows it).
  std::function<void(std::size_t worker)> on_thread_start;
};

/// What multi_runtime::stats() sums up, per worker.
struct worker_stats {
  runtime_stats loop{};
  mesh_counters steering{};
  std::uint16_t queue = 0;
  int core = -1;  ///< pinned to, or -1
};

class multi_runtime {
 public:
  /// Throws std::invalid_argument naming the problem and the fix: more workers than the device
  /// has queues, several workers on a device whose queues are not thread-safe, a core outside
  /// the allowed set, an invalid stack config.
  multi_runtime(device& dev, stack::stack_config config, multi_runtime_options options = {});
  multi_runtime(device& dev, stack::stack_config config, const stack::stack_secret& secret,
                multi_runtime_options options);
  multi_runtime(const multi_runtime&) = delete;
  multi_runtime& operator=(const multi_runtime&) = delete;
  /// Stops and joins the workers.
  ~multi_runtime();

  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  [[nodiscard]] runtime& worker(std::size_t i) { return *workers_.at(i); }
  [[nodiscard]] net_context::executor_type get_executor(std::size_t i) {
    return worker(i).get_executor();
  }
  [[nodiscard]] steering_mode steering() const noexcept { return flows_->mode(); }
  [[nodiscard]] const flow_steering& flows() const noexcept { return *flows_; }
  [[nodiscard]] worker_mesh& mesh() noexcept { return *mesh_; }

  /// Starts one thread per worker (pinned) and returns. After a stop() that came first, the
  /// workers return at once (the stop is not lost).
  void start();
  /// Stops every worker (any thread, a signal handler included).
  void stop() noexcept;
  /// Waits for the workers' threads to end (after stop()); then a new start() runs again. If a
  /// handler threw on a worker, every worker was stopped and the first exception is rethrown
  /// here, as io_context::run() lets it out.
  void join();
  /// start() then join(): returns once stop() was called and every worker has ended (or throws
  /// a handler's exception, see join()).
  void run();
  /// Graceful stop of every worker (runtime::graceful_stop on each, in parallel), then join.
  void graceful_stop(time_ns drain);
  [[nodiscard]] bool running() const noexcept { return !threads_.empty(); }
  /// One iteration of every worker, in turn, on the calling thread (hand-driven loops, tests,
  /// the cost probe); never while the workers' threads run. Returns true if any did something.
  bool poll_once();

  /// Per worker: loop and steering counters; safe while the workers run (every counter is read
  /// on its own, relaxed: a snapshot, not a consistent cut).
  [[nodiscard]] std::vector<worker_stats> stats() const;
  /// The affinity each worker's thread read back after pinning (empty until it started).
  [[nodiscard]] std::vector<std::vector<unsigned>> worker_affinity() const;

 private:
  void worker_main(std::size_t i, time_ns drain);
  void guarded(std::size_t i, time_ns drain) noexcept;

  device* dev_;
  multi_runtime_options options_;
  std::unique_ptr<flow_steering> flows_;
  std::unique_ptr<worker_mesh> mesh_;
  std::vector<std::unique_ptr<runtime>> workers_;
  std::vector<std::thread> threads_;
  std::vector<std::vector<unsigned>> affinity_;
  std::vector<int> cores_;
  std::exception_ptr error_;  // the first handler exception on a worker (under a lock)
};

}  // namespace dpdk_net
