#include "dpdk_net/runtime/multi_runtime.hpp"

#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>

#include "dpdk_net/cpu_affinity.hpp"
#include "dpdk_net/os.hpp"
#include "dpdk_net/rss.hpp"

namespace dpdk_net {
namespace {

std::mutex affinity_lock;  // affinity records and the first exception: rare, not the packet path

stack::stack_secret random_secret() {
  stack::stack_secret s;
  if (auto e = fill_random(std::as_writable_bytes(std::span(&s, 1)))) {
    throw std::system_error(e, "multi_runtime: the kernel's entropy for the stack's secret");
  }
  return s;
}

std::uint16_t worker_count(const multi_runtime_options& o) {
  const std::size_t n = o.cores.empty() ? o.workers : o.cores.size();
  if (n == 0 || n > max_workers) {
    throw std::invalid_argument("multi_runtime: " + std::to_string(n) + " workers asked for; 1.." +
                                std::to_string(max_workers) + " are possible");
  }
  return static_cast<std::uint16_t>(n);
}

}  // namespace

multi_runtime::multi_runtime(device& dev, stack::stack_config config, multi_runtime_options options)
    : multi_runtime(dev, std::move(config), random_secret(), std::move(options)) {}

multi_runtime::multi_runtime(device& dev, stack::stack_config config,
                             const stack::stack_secret& secret, multi_runtime_options options)
    : dev_(&dev), options_(std::move(options)) {
  const std::uint16_t n = worker_count(options_);
  const device_info& info = dev.info();
  if (info.rx_queues < n || info.tx_queues < n) {
    throw std::invalid_argument("multi_runtime: " + std::to_string(n) + " workers need " +
                                std::to_string(n) + " device queues; " + info.name + " has " +
                                std::to_string(info.rx_queues) + " rx / " +
                                std::to_string(info.tx_queues) + " tx. Fix: ask for at most " +
                                std::to_string(std::min(info.rx_queues, info.tx_queues)) +
                                " cores (--cores), or open the device with more queues");
  }
  if (n > 1 && !info.thread_safe_queues) {
    throw std::invalid_argument("multi_runtime: " + info.name +
                                " cannot be driven from several threads (its queues are not "
                                "thread-safe). Fix: one worker (--cores with one core)");
  }
  // Each worker allocates from its queue's pool on its own thread: a pool shared by two queues
  // would be used from two threads at once (buffer_pool keeps an unlocked cache).
  for (std::uint16_t i = 0; n > 1 && i < n; ++i) {
    for (std::uint16_t j = 0; j < i; ++j) {
      if (&dev.tx_pool(i) == &dev.tx_pool(j)) {
        throw std::invalid_argument(
            "multi_runtime: " + info.name + " gives queues " + std::to_string(j) + " and " +
            std::to_string(i) +
            " one transmit pool; several workers need a pool per queue. Fix: one worker "
            "(--cores with one core), or a device with per-queue pools");
      }
    }
  }
  if (!options_.cores.empty() && options_.pin) {
    if (std::string bad = check_cores(options_.cores); !bad.empty()) {
      throw std::invalid_argument("multi_runtime: " + bad);
    }
  }
  if (config.mac == mac_address{}) {
    config.mac = info.mac;
  }
  if (n > 1) {
    flows_ = std::make_unique<flow_steering>(
        steering_for(dev, n, options_.force_software_rss, config.address));
    std::size_t ring = options_.handoff_ring;
    if (ring == 0) {
      ring = n <= 8 ? 1024 : std::max<std::size_t>(128, 8192 / n);
    }
    mesh_ = std::make_unique<worker_mesh>(*flows_, ring);
  } else {
    steering_config one;
    one.key.assign(default_rss_key.begin(), default_rss_key.end());
    one.reta = {0};
    one.address = config.address;
    flows_ = std::make_unique<flow_steering>(std::move(one));
  }
  const std::uint32_t ids = 65536U / n;
  for (std::uint16_t k = 0; k < n; ++k) {
    stack::stack_config c = config;
    c.ip_id_first = static_cast<std::uint16_t>(k * ids);
    c.ip_id_count = ids;
    runtime_options o = options_.loop;
    o.queue = k;
    o.announce = k == 0;
    o.return_when_out_of_work = n == 1 && o.return_when_out_of_work;
    workers_.push_back(std::make_unique<runtime>(dev, std::move(c), secret, o));
    if (mesh_) {
      workers_.back()->join_mesh(*mesh_, k);
    }
    cores_.push_back(options_.cores.empty() || !options_.pin ? -1
                                                             : static_cast<int>(options_.cores[k]));
  }
  affinity_.resize(n);
}

multi_runtime::~multi_runtime() {
  stop();
  try {
    join();
  } catch (...) {  // a handler's exception nobody joined for: dropped with the runtime
  }
  workers_.clear();  // stacks (and what they hold) go while the mesh and the device exist
}

void multi_runtime::worker_main(std::size_t i, time_ns drain) {
  if (cores_[i] >= 0) {
    if (const std::error_code e = pin_current_thread(static_cast<unsigned>(cores_[i]))) {
      std::fprintf(stderr, "dpdk_net: worker %zu: pinning to core %d failed: %s\n", i, cores_[i],
                   e.message().c_str());
    }
  }
  {
    const std::lock_guard<std::mutex> g(affinity_lock);
    affinity_[i] = current_thread_affinity();
  }
  if (options_.on_thread_start) {
    options_.on_thread_start(i);
  }
  runtime& w = *workers_[i];
  if (drain != 0) {
    w.graceful_stop(drain);
  } else {
    w.run();
  }
}

void multi_runtime::guarded(std::size_t i, time_ns drain) noexcept {
  try {
    worker_main(i, drain);
  } catch (...) {
    // As io_context::run() lets a handler's exception out: the first one stops every worker
    // and join() (run()) rethrows it on the caller's thread.
    {
      const std::lock_guard<std::mutex> g(affinity_lock);
      if (!error_) {
        error_ = std::current_exception();
      }
    }
    stop();
  }
}

void multi_runtime::start() {
  if (!threads_.empty()) {
    return;
  }
  // A stop() that came before start() stays in effect (the workers return at once): a signal
  // during the application's setup is not lost. join() re-arms the workers for the next start.
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    threads_.emplace_back([this, i] { guarded(i, 0); });
  }
}

void multi_runtime::stop() noexcept {
  for (auto& w : workers_) {
    w->stop();
  }
}

void multi_runtime::join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
  // Stopped and joined: the next start() runs again.
  for (auto& w : workers_) {
    w->restart();
  }
  std::exception_ptr e;
  {
    const std::lock_guard<std::mutex> g(affinity_lock);
    std::swap(e, error_);
  }
  if (e) {
    std::rethrow_exception(e);
  }
}

bool multi_runtime::poll_once() {
  bool busy = false;
  for (auto& w : workers_) {
    busy = w->poll_once() || busy;
  }
  return busy;
}

void multi_runtime::run() {
  start();
  join();
}

void multi_runtime::graceful_stop(time_ns drain) {
  stop();
  join();
  // A worker whose own connections closed keeps taking its queue's frames until every worker
  // has drained: with software steering the others' closing frames may land on its queue (all
  // of them, on a device that puts everything on queue 0), and it hands them over.
  std::atomic<std::size_t> drained{0};
  const std::size_t n = workers_.size();
  for (std::size_t i = 0; i < n; ++i) {
    threads_.emplace_back([this, i, drain, n, &drained] {
      guarded(i, drain == 0 ? 1 : drain);
      drained.fetch_add(1);
      runtime& w = *workers_[i];
      try {
        while (drained.load() < n && !w.stopped()) {
          w.run_for(1 * millisecond);
        }
      } catch (...) {
        {
          const std::lock_guard<std::mutex> g(affinity_lock);
          if (!error_) {
            error_ = std::current_exception();
          }
        }
        stop();  // as in guarded(): a handler's exception stops every worker
      }
    });
  }
  join();
}

std::vector<worker_stats> multi_runtime::stats() const {
  std::vector<worker_stats> out;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    worker_stats s;
    s.loop = workers_[i]->stats();
    if (mesh_) {
      s.steering = mesh_->counters(static_cast<std::uint16_t>(i));
    }
    s.queue = static_cast<std::uint16_t>(i);
    s.core = cores_[i];
    out.push_back(s);
  }
  return out;
}

std::vector<std::vector<unsigned>> multi_runtime::worker_affinity() const {
  const std::lock_guard<std::mutex> g(affinity_lock);
  return affinity_;
}

}  // namespace dpdk_net
