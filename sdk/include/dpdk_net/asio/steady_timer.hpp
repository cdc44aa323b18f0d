// dpdk_net::steady_timer: a waitable timer on the context's clock (monotonic time in a runtime,
// virtual time in the simulator), shaped like boost::asio::steady_timer. Arming it costs no
// allocation and no syscall (an intrusive timer-wheel entry, 10 us resolution).
//
//   async_wait()   void(error_code)   cancellation: total; cancel(), expires_at/after() cancel
//                                     pending waits with operation_aborted.
// A wait on an expired timer completes at once (posted).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include "dpdk_net/asio/detail/ops.hpp"
#include "dpdk_net/asio/net_context.hpp"

namespace dpdk_net {

/// The context's clock. now() is the time of the turn running on this thread (0 outside one).
struct net_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<net_clock, duration>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept;
};

class steady_timer {
 public:
  using executor_type = boost::asio::any_io_executor;
  using clock_type = net_clock;
  using duration = net_clock::duration;
  using time_point = net_clock::time_point;

  explicit steady_timer(const executor_type& ex);
  explicit steady_timer(net_context& ctx) : steady_timer(executor_type(ctx.get_executor())) {}
  steady_timer(const executor_type& ex, duration d) : steady_timer(ex) { expires_after(d); }
  /// The moved-from timer keeps its executor and is reusable, as Asio's.
  steady_timer(steady_timer&& other) noexcept;
  steady_timer& operator=(steady_timer&& other) noexcept;
  steady_timer(const steady_timer&) = delete;
  steady_timer& operator=(const steady_timer&) = delete;
  ~steady_timer();

  [[nodiscard]] const executor_type& get_executor() const noexcept { return ex_; }
  /// Sets the expiry; pending waits complete with operation_aborted. Returns how many.
  std::size_t expires_at(time_point t);
  template <class Rep, class Period>
  std::size_t expires_after(std::chrono::duration<Rep, Period> d) {
    return expires_at(time_point(std::chrono::duration_cast<duration>(
        std::chrono::nanoseconds(ctx_->now()) + std::chrono::duration_cast<duration>(d))));
  }
  [[nodiscard]] time_point expiry() const noexcept;
  /// Pending waits complete with operation_aborted; returns how many.
  std::size_t cancel();

  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(Token&& token = {});

 private:
  struct initiate_wait {
    steady_timer* t;
    using executor_type = steady_timer::executor_type;
    [[nodiscard]] const executor_type& get_executor() const noexcept { return t->ex_; }
    template <class Handler>
    void operator()(Handler&& h) const {
      using op_t =
          detail::handler_op<std::decay_t<Handler>, executor_type, detail::result_shape::error>;
      op_t* o = op_t::create(std::forward<Handler>(h), t->ex_, detail::op_kind::wait, *t->ctx_,
                             boost::asio::cancellation_type::all);
      t->ctx_->sockets().start_anywhere(t->impl(), o);
    }
  };

  detail::timer_impl& impl();  // made afresh for a moved-from timer

  executor_type ex_;
  net_context* ctx_;
  std::shared_ptr<detail::timer_impl> impl_;
};

template <class Token>
auto steady_timer::async_wait(Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(initiate_wait{this},
                                                                             token);
}

}  // namespace dpdk_net
