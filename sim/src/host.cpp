// host: a local clock (offset and drift), timers, pause / resume / crash / restart.
#include <cmath>

#include "dpdk_net/sim/network.hpp"

namespace dpdk_net::sim {

host::host(network& net, std::uint32_t index, std::string name, const host_config& config)
    : net_(&net), index_(index), name_(std::move(name)), config_(config) {}

time_ns host::local_now() const noexcept {
  const time_ns global = net_->now();
  const double drift = static_cast<double>(global) * config_.drift_ppm / 1e6;
  return config_.clock_offset + global + static_cast<time_ns>(std::llround(drift));
}

void host::after(time_ns local_delay, std::function<void()> cb) {
  if (state_ == state::crashed) {
    return;
  }
  // local = global * (1 + drift): a local delay is shorter in global time on a fast clock.
  const double global = static_cast<double>(local_delay) / (1.0 + config_.drift_ppm / 1e6);
  const std::uint64_t id = next_timer_++;
  timers_.emplace(id, std::move(cb));
  const std::uint64_t epoch = epoch_;
  net_->events().after(static_cast<time_ns>(std::llround(global)), [this, id, epoch] {
    if (epoch != epoch_) {
      return;  // crashed since
    }
    auto it = timers_.find(id);
    if (it == timers_.end()) {
      return;
    }
    std::function<void()> fn = std::move(it->second);
    timers_.erase(it);
    run_or_defer(std::move(fn));
  });
}

void host::run_or_defer(std::function<void()> fn) {
  if (state_ == state::paused) {
    deferred_.push_back(std::move(fn));
  } else if (state_ == state::running) {
    fn();
  }
}

void host::wake() {
  if (state_ != state::running || wake_pending_) {
    return;  // a paused host is woken by resume()
  }
  wake_pending_ = true;
  const std::uint64_t epoch = epoch_;
  net_->events().after(0, [this, epoch] {
    if (epoch != epoch_) {
      return;
    }
    wake_pending_ = false;
    if (state_ == state::running && on_receive) {
      on_receive(*this);
    }
  });
}

void host::pause() {
  if (state_ == state::running) {
    state_ = state::paused;
  }
}

void host::resume() {
  if (state_ != state::paused) {
    return;
  }
  state_ = state::running;
  std::vector<std::function<void()>> due = std::move(deferred_);
  deferred_.clear();
  for (std::size_t i = 0; i < due.size(); ++i) {
    if (state_ == state::crashed) {
      return;  // a callback crashed the host: the rest is discarded, as a crash does
    }
    if (state_ == state::paused) {
      // A callback paused the host again: the rest waits for the next resume, in order.
      deferred_.insert(deferred_.begin(),
                       std::make_move_iterator(due.begin() + static_cast<std::ptrdiff_t>(i)),
                       std::make_move_iterator(due.end()));
      return;
    }
    due[i]();
  }
  for (sim_nic* n : nics_) {
    for (std::uint16_t q = 0; q < n->info().rx_queues; ++q) {
      if (n->rx_pending(q) != 0) {
        wake();
      }
    }
  }
}

void host::crash() {
  state_ = state::crashed;
  ++epoch_;
  timers_.clear();
  deferred_.clear();
  wake_pending_ = false;
  for (sim_nic* n : nics_) {
    n->flush_rx();
  }
}

void host::restart() {
  if (state_ != state::crashed) {
    return;
  }
  state_ = state::running;
  if (on_restart) {
    on_restart(*this);
  }
}

}  // namespace dpdk_net::sim
