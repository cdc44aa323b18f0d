#include "dpdk_net/runtime/runtime.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <stdexcept>
#include <string>
#include <system_error>

#include "dpdk_net/asio/detail/socket_service.hpp"
#include "dpdk_net/os.hpp"

namespace dpdk_net {
namespace {

stack::stack_secret random_secret() {
  stack::stack_secret s;
  if (auto e = fill_random(std::as_writable_bytes(std::span(&s, 1)))) {
    throw std::system_error(e,
                            "runtime: the kernel's entropy (fill_random) for the stack's secret");
  }
  return s;
}

stack::stack_config with_device(stack::stack_config c, const device& dev) {
  if (c.mac == mac_address{}) {
    c.mac = dev.info().mac;
  }
  return c;
}

}  // namespace

runtime::runtime(device& dev, stack::stack_config config, runtime_options options)
    : runtime(dev, std::move(config), random_secret(), options) {}

runtime::runtime(device& dev, stack::stack_config config, const stack::stack_secret& secret,
                 runtime_options options)
    : dev_(&dev), options_(options), ctx_(monotonic_now()) {
  config = with_device(std::move(config), dev);
  if (const std::string bad = stack::validate(config, dev.info().mtu); !bad.empty()) {
    throw std::invalid_argument(bad);
  }
  if (options_.queue >= dev.info().rx_queues || options_.queue >= dev.info().tx_queues) {
    throw std::invalid_argument("runtime_options.queue: the device " + dev.info().name + " has " +
                                std::to_string(dev.info().rx_queues) + " rx / " +
                                std::to_string(dev.info().tx_queues) + " tx queues, queue " +
                                std::to_string(options_.queue) + " was asked for");
  }
  pool_ = &dev.tx_pool(options_.queue);
  stack_.emplace(config, *pool_, secret, ctx_.now());
  ctx_.attach(&*stack_);
  ctx_.set_threaded(true);
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "runtime: eventfd");
  }
  const wait_handle w = dev.rx_wait_handle(options_.queue);
  device_fd_ = w.mode == wait_handle::kind::fd ? w.fd : -1;
  ctx_.set_wakeup(&runtime::wake, this);
  ctx_.set_clock([](const void*) { return monotonic_now(); }, nullptr);
  if (options_.announce) {
    stack_->start(ctx_.now());
  }
}

void runtime::join_mesh(worker_mesh& mesh, std::uint16_t self) {
  mesh_ = &mesh;
  self_ = self;
  mesh.attach(self, *stack_);
  mesh.set_wake(self, &runtime::wake, this);
}

runtime::~runtime() {
  ctx_.set_wakeup(nullptr, nullptr);
  ctx_.shutdown();  // pending handlers (suspended coroutines) destroyed while the stack exists
  free_burst(std::span(backlog_.data(), backlog_count_));
  backlog_count_ = 0;
  if (event_fd_ >= 0) {
    ::close(event_fd_);
  }
}

void runtime::wake(void* self) {
  auto* rt = static_cast<runtime*>(self);
  // Only a sleeping loop needs the eventfd: a spinning one sees the post at its next iteration.
  if (rt->sleeping_.load()) {
    const std::uint64_t one = 1;
    (void)!::write(rt->event_fd_, &one, sizeof one);
  }
}

void runtime::stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  if (event_fd_ >= 0) {
    const std::uint64_t one = 1;
    (void)!::write(event_fd_, &one, sizeof one);
  }
}

bool runtime::iterate(time_ns now) {
  ++count_.iterations;
  ctx_.set_now(now);
  std::size_t n = dev_->rx_burst(options_.queue, rx_);
  bool busy = n != 0;
  count_.rx_frames += n;
  if (mesh_ == nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      stack_->receive(std::move(rx_[i]), now);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      mesh_->receive(self_, *stack_, std::move(rx_[i]), now, *pool_);
    }
    busy = mesh_->drain(self_, *stack_, *pool_, now) != 0 || busy;
    mesh_->flush(self_);
  }
  stack_->advance(now);
  busy = ctx_.run_turn(options_.handler_batch) != 0 || busy;
  if (now - last_foreign_ >= options_.foreign_poll_interval) {
    last_foreign_ = now;
    busy = ctx_.poll_foreign() != 0 || busy;
  }
  const std::uint64_t sent = count_.tx_frames.load();
  transmit();
  return busy || count_.tx_frames.load() != sent;
}

void runtime::transmit() {
  if (backlog_count_ != 0) {
    const std::size_t sent =
        dev_->tx_burst(options_.queue, std::span(backlog_.data(), backlog_count_));
    count_.tx_frames += sent;
    std::move(backlog_.begin() + static_cast<std::ptrdiff_t>(sent),
              backlog_.begin() + static_cast<std::ptrdiff_t>(backlog_count_), backlog_.begin());
    backlog_count_ -= sent;
    if (backlog_count_ != 0) {
      ++count_.tx_busy;
      return;
    }
  }
  std::size_t n = 0;
  while ((n = stack_->drain_tx(tx_)) != 0) {
    const std::size_t sent = dev_->tx_burst(options_.queue, std::span(tx_.data(), n));
    count_.tx_frames += sent;
    if (sent < n) {
      ++count_.tx_busy;
      std::move(tx_.begin() + static_cast<std::ptrdiff_t>(sent),
                tx_.begin() + static_cast<std::ptrdiff_t>(n), backlog_.begin());
      backlog_count_ = n - sent;
      return;
    }
    if (n < tx_.size()) {
      return;
    }
  }
}

void runtime::sleep(time_ns now) {
  time_ns deadline = std::min(stack_->next_deadline(), ctx_.next_deadline());
  if (ctx_.foreign_busy()) {
    deadline = std::min(deadline, last_foreign_ + options_.foreign_poll_interval);
  }
  if (backlog_count_ != 0) {
    deadline = std::min(deadline, now + 20 * microsecond);
  }
  time_ns wait = deadline > now ? deadline - now : 0;
  if (device_fd_ < 0) {
    // Poll mode: spin a while, then nap, doubling the nap up to max_sleep.
    if (++idle_ < options_.idle_spins) {
      return;
    }
    nap_ = nap_ == 0 ? 10 * microsecond : std::min(nap_ * 2, options_.max_sleep);
    wait = std::min(wait, nap_);
  } else {
    wait = std::min(wait, options_.max_fd_wait);
  }
  if (wait == 0) {
    return;
  }
  ++count_.idle_sleeps;
  sleeping_.store(true);  // seq_cst: ordered before has_ready()'s load (a Dekker pair)
  std::atomic_thread_fence(std::memory_order_seq_cst);  // and before the mesh rings' loads
  if (!ctx_.has_ready() && !stop_.load(std::memory_order_relaxed) &&
      (mesh_ == nullptr || mesh_->idle(self_))) {
    const timespec ts{static_cast<time_t>(wait / second), static_cast<long>(wait % second)};
    pollfd fds[2] = {{event_fd_, POLLIN, 0}, {device_fd_, POLLIN, 0}};
    const nfds_t count = device_fd_ >= 0 ? 2 : 1;
    if (::ppoll(fds, count, &ts, nullptr) > 0 && (fds[0].revents & POLLIN) != 0) {
      std::uint64_t value = 0;
      (void)!::read(event_fd_, &value, sizeof value);
      ++count_.wakeups;  // counted here, on the loop's thread (the posting one may be any)
    }
  }
  sleeping_.store(false, std::memory_order_release);
}

bool runtime::poll_once() {
  return iterate(monotonic_now());
}

void runtime::run() {
  run_for(UINT64_MAX);
}

void runtime::run_for(time_ns duration) {
  const time_ns start = monotonic_now();
  const time_ns end = duration > UINT64_MAX - start ? UINT64_MAX : start + duration;
  for (time_ns now = start; !stop_.load(std::memory_order_relaxed) && now < end;
       now = monotonic_now()) {
    const bool busy = iterate(now);
    if (drain_until_ && (stack_->tcp().connections() == 0 || now >= *drain_until_)) {
      ctx_.sockets().abort_all();  // what did not finish in time: RST
      transmit();
      drain_until_.reset();
      return;
    }
    if (busy) {
      idle_ = 0;
      nap_ = 0;
      continue;
    }
    if (!drain_until_ && options_.return_when_out_of_work && ctx_.outstanding_work() == 0 &&
        !ctx_.has_ready() && stack_->tx_pending() == 0 && backlog_count_ == 0) {
      return;  // out of work, as io_context::run()
    }
    sleep(now);
  }
}

void runtime::graceful_stop(time_ns drain) {
  restart();
  ctx_.sockets().shutdown_all();
  drain_until_ = monotonic_now() + drain;
  run();
  drain_until_.reset();  // a stop() cut the drain short: a later run() must not resume it
}

}  // namespace dpdk_net
