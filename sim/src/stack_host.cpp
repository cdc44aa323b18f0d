#include "dpdk_net/sim/stack_host.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "dpdk_net/sim/random.hpp"

namespace dpdk_net::sim {

stack::stack_secret stack_secret_for(const host& h) {
  return stack::stack_secret{derive_seed(h.net().seed(), "stack-secret:k0:" + h.name()),
                             derive_seed(h.net().seed(), "stack-secret:k1:" + h.name())};
}

stack_host::stack_host(host& h, sim_nic& nic, stack::stack_config config,
                       stack_host_options options)
    : host_(&h), nic_(&nic), config_(std::move(config)), options_(options) {
  if (config_.mac == mac_address{}) {
    config_.mac = nic.info().mac;
  }
  if (const std::string error = stack::validate(config_, nic.info().mtu); !error.empty()) {
    throw std::invalid_argument(error);
  }
  build_stack();
  host_->on_receive = [this](host&) { pump(); };
  host_->on_restart = [this](host&) { restart_after_crash(); };
}

void stack_host::restart_after_crash() {
  // The crash took the stack's memory with it: a fresh one, as a rebooted machine has.
  for (std::size_t i = 0; i < backlog_count_; ++i) {
    backlog_[i].reset();
  }
  backlog_count_ = 0;
  timer_at_ = UINT64_MAX;  // the crash discarded the host's timers
  ++*timer_generation_;
  stack_.reset();
  build_stack();
  on_restart();
  pump();
}

stack_host::~stack_host() {
  host_->on_receive = nullptr;
  host_->on_restart = nullptr;
  *timer_generation_ = UINT64_MAX;  // timers still pending find the driver gone
}

void stack_host::build_stack() {
  const time_ns now = host_->local_now();
  stack_.emplace(config_, nic_->tx_pool(options_.queue), stack_secret_for(*host_), now);
  if (options_.announce) {
    stack_->start(now);
  }
}

void stack_host::receive_frame(packet frame, time_ns now) {
  stack_->receive(std::move(frame), now);
}

void stack_host::on_pump(time_ns now) {
  if (app) {
    app(*this, now);
  }
}

void stack_host::on_restart() {
  if (restarted) {
    restarted(*this);
  }
}

void stack_host::pump() {
  if (host_->status() == host::state::crashed) {
    return;
  }
  ++pumps_;
  const time_ns now = host_->local_now();
  std::size_t n = 0;
  while ((n = nic_->rx_burst(options_.queue, rx_)) != 0) {
    for (std::size_t i = 0; i < n; ++i) {
      receive_frame(std::move(rx_[i]), now);
    }
  }
  stack_->advance(now);
  on_pump(now);
  transmit();
  arm_timer(now);
}

void stack_host::transmit() {
  // What the ring refused last time goes first (the stack's order is kept).
  if (backlog_count_ != 0) {
    const std::size_t sent =
        nic_->tx_burst(options_.queue, std::span(backlog_.data(), backlog_count_));
    std::move(backlog_.begin() + static_cast<std::ptrdiff_t>(sent),
              backlog_.begin() + static_cast<std::ptrdiff_t>(backlog_count_), backlog_.begin());
    backlog_count_ -= sent;
    if (backlog_count_ != 0) {
      ++tx_busy_;
      return;  // still busy: the stack's queue waits (and drops, counted, if it overflows)
    }
  }
  std::size_t n = 0;
  while ((n = stack_->drain_tx(tx_, host_->local_now())) != 0) {
    const std::size_t sent = nic_->tx_burst(options_.queue, std::span(tx_.data(), n));
    if (sent < n) {
      ++tx_busy_;
      std::move(tx_.begin() + static_cast<std::ptrdiff_t>(sent),
                tx_.begin() + static_cast<std::ptrdiff_t>(n), backlog_.begin());
      backlog_count_ = n - sent;
      return;
    }
  }
}

void stack_host::arm_timer(time_ns now) {
  time_ns next = std::min(stack_->next_deadline(), app_deadline(now));
  if (backlog_count_ != 0) {
    next = std::min(next, now + options_.tx_retry);
  }
  if (next == UINT64_MAX || next >= timer_at_) {
    return;  // nothing due, or the armed timer comes first
  }
  next = std::max(next, now + 1);
  // One timer: an earlier deadline supersedes the armed one (which then does nothing).
  timer_at_ = next;
  const std::uint64_t generation = ++*timer_generation_;
  host_->after(next - now, [this, generation, current = timer_generation_] {
    if (generation != *current) {
      return;  // superseded by an earlier deadline, or the driver is gone
    }
    timer_at_ = UINT64_MAX;
    pump();
  });
}

}  // namespace dpdk_net::sim
