// The steady_timer part of the socket service: waits queue on the timer's state, one timer-wheel
// entry per timer, and the list of every timer state (so shutdown can abandon their waits).
#include "dpdk_net/asio/detail/socket_service.hpp"

namespace dpdk_net::detail {

void socket_service::link_timer(impl_base& t) noexcept {
  t.timer_next = timers_;
  if (timers_ != nullptr) {
    timers_->timer_prev = &t;
  }
  timers_ = &t;
}

void socket_service::unlink_timer(impl_base& t) noexcept {
  (t.timer_prev != nullptr ? t.timer_prev->timer_next : timers_) = t.timer_next;
  if (t.timer_next != nullptr) {
    t.timer_next->timer_prev = t.timer_prev;
  }
  t.timer_prev = t.timer_next = nullptr;
}

void socket_service::start_wait(impl_base& s, io_op* o) {
  auto& t = static_cast<timer_impl&>(s);
  if (t.expiry <= ctx_->now()) {
    complete(o, {});
    return;
  }
  o->pending = true;
  s.reads.push(o);
  if (!t.alarm.armed() || t.alarm.expiry() != t.expiry) {
    ctx_->timers().arm(t.alarm, t.expiry);
  }
}

void socket_service::timer_fired(timer& alarm, time_ns /*now*/) noexcept {
  auto* t = static_cast<timer_impl*>(alarm.context());
  while (!t->reads.empty()) {
    t->ctx->sockets().complete(static_cast<io_op*>(t->reads.front()), {});
  }
}

std::size_t socket_service::cancel_timer(timer_impl& t) noexcept {
  ++t.closes;  // waits initiated from another thread and not started yet are cancelled too
  t.alarm.cancel();
  std::size_t n = 0;
  while (!t.reads.empty()) {
    complete(static_cast<io_op*>(t.reads.front()),
             std::make_error_code(std::errc::operation_canceled));
    ++n;
  }
  return n;
}

}  // namespace dpdk_net::detail
