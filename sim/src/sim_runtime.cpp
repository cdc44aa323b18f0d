#include "dpdk_net/sim/sim_runtime.hpp"

namespace dpdk_net::sim {

namespace {
// Rounds of (events, timers, handlers) one pump runs before it leaves the rest to a wake-up at
// the same virtual time (so a handler that posts itself forever cannot stall the simulator).
constexpr int max_rounds = 64;
}  // namespace

sim_runtime::sim_runtime(host& h, sim_nic& nic, stack::stack_config config,
                         stack_host_options options)
    : stack_host(h, nic, std::move(config), options), ctx_(h.local_now()) {
  ctx_.attach(&ip());
  ctx_.set_wakeup(&sim_runtime::wake, this);
  ctx_.set_clock([](const void* self) { return static_cast<const sim_runtime*>(self)->now(); },
                 this);
}

sim_runtime::~sim_runtime() {
  *alive_ = false;
  ctx_.set_wakeup(nullptr, nullptr);
  ctx_.shutdown();
}

void sim_runtime::wake(void* self) {
  auto* rt = static_cast<sim_runtime*>(self);
  if (rt->wake_pending_) {
    return;
  }
  rt->wake_pending_ = true;
  rt->sim_host().after(0, [rt, alive = rt->alive_] {
    if (!*alive) {
      return;  // the runtime is gone
    }
    rt->wake_pending_ = false;
    rt->pump();
  });
}

void sim_runtime::on_pump(time_ns now) {
  ctx_.set_now(now);
  for (int round = 0; round < max_rounds; ++round) {
    const std::size_t done = ctx_.run_turn();
    if (done == 0 && !ctx_.has_ready()) {
      break;
    }
  }
  ctx_.poll_foreign();
  stack_host::on_pump(now);
}

void sim_runtime::on_restart() {
  wake_pending_ = false;  // the crash discarded the wake-up callback, if one was scheduled
  ctx_.attach(&ip());
  stack_host::on_restart();
}

time_ns sim_runtime::app_deadline(time_ns now) const noexcept {
  return ctx_.has_ready() ? now : ctx_.next_deadline();
}

}  // namespace dpdk_net::sim
