#include "dpdk_net/asio/steady_timer.hpp"

#include "dpdk_net/asio/udp.hpp"

namespace dpdk_net {

namespace detail {
net_context* current_turn_context() noexcept;
}

net_clock::time_point net_clock::now() noexcept {
  net_context* c = detail::current_turn_context();
  return time_point(duration(c == nullptr ? 0 : static_cast<rep>(c->now())));
}

steady_timer::steady_timer(const executor_type& ex)
    : ex_(ex), ctx_(&detail::context_of(ex)), impl_(std::make_shared<detail::timer_impl>(*ctx_)) {}

steady_timer::steady_timer(steady_timer&& other) noexcept
    : ex_(other.ex_), ctx_(other.ctx_), impl_(std::move(other.impl_)) {}

detail::timer_impl& steady_timer::impl() {
  if (!impl_) {
    impl_ = std::make_shared<detail::timer_impl>(*ctx_);
  }
  return *impl_;
}

steady_timer& steady_timer::operator=(steady_timer&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      ctx_->sockets().cancel_timer(*impl_);
    }
    ex_ = other.ex_;
    ctx_ = other.ctx_;
    impl_ = std::move(other.impl_);
  }
  return *this;
}

steady_timer::~steady_timer() {
  if (impl_) {
    ctx_->sockets().cancel_timer(*impl_);
  }
}

std::size_t steady_timer::expires_at(time_point t) {
  const std::size_t n = ctx_->sockets().cancel_timer(impl());
  const auto ns = t.time_since_epoch().count();
  impl_->expiry = ns < 0 ? 0 : static_cast<time_ns>(ns);
  return n;
}

steady_timer::time_point steady_timer::expiry() const noexcept {
  return time_point(duration(static_cast<duration::rep>(impl_ ? impl_->expiry : 0)));
}

std::size_t steady_timer::cancel() {
  return impl_ ? ctx_->sockets().cancel_timer(*impl_) : 0;
}

}  // namespace dpdk_net
