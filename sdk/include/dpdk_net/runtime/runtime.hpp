// The one-worker runtime: {device queue, stack, net_context (our executor, timers, ready
// handlers)} driven by one loop on the calling thread:
//
//   receive burst -> stack.receive -> stack.advance -> context turn (events complete the
//   operations they name, timers fire, ready handlers run) -> transmit burst
//
// On a poll-mode device it busy-polls with an idle back-off (spins, then naps growing to
// max_sleep) so tests can share 2 cores; on an fd device (TAP, pcap) it sleeps in ppoll on the
// device's descriptor and an eventfd (posts from other threads) until the next deadline. Per
// iteration under load: no syscall and no allocation (docs/asio.md "The loop's costs"). Plain
// Asio objects (ssl::stream's internal timers, Beast websocket's) live in the context's foreign
// io_context, polled at most once per foreign_poll_interval: <= 1,000 epoll_wait(0) per second.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include "dpdk_net/asio/net_context.hpp"
#include "dpdk_net/device.hpp"
#include "dpdk_net/runtime/worker_mesh.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net {

struct runtime_options {
  std::uint16_t queue = 0;          ///< the device queue (rx and tx) this worker drives
  std::size_t handler_batch = 256;  ///< ready handlers run per iteration (then I/O again)
  /// The foreign io_context (plain Asio timers) is polled at most this often.
  time_ns foreign_poll_interval = 1 * millisecond;
  unsigned idle_spins = 200;                ///< poll mode: empty iterations before the first nap
  time_ns max_sleep = 1 * millisecond;      ///< poll mode: the longest nap (back-off doubles to it)
  time_ns max_fd_wait = 100 * millisecond;  ///< fd mode: the longest ppoll
  bool announce = true;  ///< send a gratuitous ARP at start (one worker of several does)
  /// run() returns when no work is left, as io_context::run(). A worker of a multi_runtime runs
  /// until stopped instead: its queue may receive a flow's packets whenever.
  bool return_when_out_of_work = true;
};

struct runtime_stats {
  std::uint64_t iterations = 0;
  std::uint64_t idle_sleeps = 0;  ///< naps (poll mode) or ppoll calls (fd mode)
  std::uint64_t rx_frames = 0, tx_frames = 0;
  std::uint64_t tx_busy = 0;  ///< bursts the device did not take whole (kept for next time)
  std::uint64_t wakeups = 0;  ///< sleeps ended by the eventfd (a post from another thread)
};

namespace detail {
/// A counter one thread writes and any thread may read (relaxed load + store: no locked
/// instruction on the loop's path, no data race for a reader elsewhere).
class shared_counter {
 public:
  shared_counter& operator+=(std::uint64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return *this;
  }
  shared_counter& operator++() noexcept { return *this += 1; }
  [[nodiscard]] std::uint64_t load() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};
}  // namespace detail

class runtime {
 public:
  /// The stack's secret comes from getrandom. Throws std::invalid_argument (a config that
  /// validate() refuses, naming the field) or std::system_error (no eventfd, no entropy).
  runtime(device& dev, stack::stack_config config, runtime_options options = {});
  runtime(device& dev, stack::stack_config config, const stack::stack_secret& secret,
          runtime_options options);
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;
  ~runtime();

  [[nodiscard]] net_context::executor_type get_executor() noexcept { return ctx_.get_executor(); }
  [[nodiscard]] net_context& context() noexcept { return ctx_; }
  [[nodiscard]] stack::stack& ip() noexcept { return *stack_; }
  [[nodiscard]] device& dev() noexcept { return *dev_; }

  /// Runs the loop until stop(), or until no work is left (no pending operation, no tracked
  /// executor, nothing ready, nothing to transmit) -- as io_context::run().
  void run();
  /// Runs for at most `duration` (monotonic time), or until stopped / out of work.
  void run_for(time_ns duration);
  /// One iteration without sleeping; returns true if it did anything (hand-driven loops).
  bool poll_once();
  /// Stops run() at its next iteration (any thread, a signal handler included); later run()
  /// calls return at once until restart(), as io_context's.
  void stop() noexcept;
  void restart() noexcept { stop_.store(false, std::memory_order_relaxed); }
  [[nodiscard]] bool stopped() const noexcept { return stop_.load(std::memory_order_relaxed); }
  /// Graceful stop: listeners close (pending accepts: operation_aborted), open connections send
  /// FIN after their queued data; the loop runs until every connection is closed or `drain`
  /// has passed, then aborts what is left (RST) and stops.
  void graceful_stop(time_ns drain);

  /// A snapshot; safe from any thread while the loop runs (each counter read on its own).
  [[nodiscard]] runtime_stats stats() const noexcept {
    return runtime_stats{count_.iterations.load(), count_.idle_sleeps.load(),
                         count_.rx_frames.load(),  count_.tx_frames.load(),
                         count_.tx_busy.load(),    count_.wakeups.load()};
  }
  [[nodiscard]] const runtime_options& options() const noexcept { return options_; }

 private:
  friend class multi_runtime;
  /// Makes this runtime worker `self` of a multi-worker runtime (before it runs).
  void join_mesh(worker_mesh& mesh, std::uint16_t self);
  bool iterate(time_ns now);
  void transmit();
  void sleep(time_ns now);
  static void wake(void* self);

  device* dev_;
  runtime_options options_;
  net_context ctx_;
  std::optional<stack::stack> stack_;
  buffer_pool* pool_ = nullptr;  // the stack's (the device's tx pool of our queue)
  worker_mesh* mesh_ = nullptr;  // several workers: what others own goes there
  std::uint16_t self_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> sleeping_{false};
  int event_fd_ = -1;
  int device_fd_ = -1;
  unsigned idle_ = 0;
  time_ns nap_ = 0;
  time_ns last_foreign_ = 0;
  std::optional<time_ns> drain_until_;
  std::array<packet, max_burst> rx_;
  std::array<packet, max_burst> tx_;
  std::array<packet, max_burst> backlog_;
  std::size_t backlog_count_ = 0;
  struct {
    detail::shared_counter iterations, idle_sleeps, rx_frames, tx_frames, tx_busy, wakeups;
  } count_;
};

}  // namespace dpdk_net
