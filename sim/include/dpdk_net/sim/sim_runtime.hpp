// The simulator as a runtime: a stack_host whose application turn is a net_context turn, so the
// same Asio coroutine code that runs on a device runs here, on one thread, in virtual time,
// byte-identical per seed. No second pump loop: the host's receive callback and its one timer
// (armed at the earliest stack or context deadline) drive it, until nothing is left to do.
//
// A plain boost::asio::steady_timer (not ours) runs on wall time in the context's foreign
// io_context, polled at every pump: in the simulator it fires only at a pump after its wall-clock
// expiry. Use dpdk_net::steady_timer for virtual time (docs/asio.md).
#pragma once

#include <memory>

#include "dpdk_net/asio/net_context.hpp"
#include "dpdk_net/sim/stack_host.hpp"

namespace dpdk_net::sim {

class sim_runtime : public stack_host {
 public:
  sim_runtime(host& h, sim_nic& nic, stack::stack_config config, stack_host_options options = {});
  ~sim_runtime() override;

  [[nodiscard]] net_context::executor_type get_executor() noexcept { return ctx_.get_executor(); }
  [[nodiscard]] net_context& context() noexcept { return ctx_; }

 protected:
  void on_pump(time_ns now) override;
  void on_restart() override;
  [[nodiscard]] time_ns app_deadline(time_ns now) const noexcept override;

 protected:
  /// Schedules a pump at the current virtual time (once until it runs).
  static void wake(void* self);

 private:
  net_context ctx_;
  bool wake_pending_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // shared with pending wake-ups
};

}  // namespace dpdk_net::sim
