#include "dpdk_net/asio/udp.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net {

udp::socket::socket(const executor_type& ex)
    : ex_(ex),
      ctx_(&detail::context_of(ex)),
      impl_(std::make_shared<detail::impl_base>(*ctx_, true)) {}

udp::socket::socket(const executor_type& ex, const endpoint_type& local) : socket(ex) {
  bind(local);
}

udp::socket& udp::socket::operator=(socket&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      ctx_->sockets().close(*impl_);
    }
    ex_ = other.ex_;
    ctx_ = other.ctx_;
    impl_ = std::move(other.impl_);
    auto_bound_ = other.auto_bound_;
  }
  return *this;
}

detail::impl_base& udp::socket::impl() {
  if (!impl_) {
    impl_ = std::make_shared<detail::impl_base>(*ctx_, true);
  }
  return *impl_;
}

void udp::socket::open(udp) {
  if (is_open()) {
    throw boost::system::system_error(boost::asio::error::already_open, "open");
  }
  bind(endpoint_type(boost::asio::ip::address_v4::any(), 0));
  auto_bound_ = true;
}

udp::socket::~socket() {
  if (impl_) {
    ctx_->sockets().close(*impl_);
  }
}

bool udp::socket::is_open() const noexcept {
  return impl_ && ctx_->sockets().alive(*impl_);
}

void udp::socket::bind(const endpoint_type& local) {
  boost::system::error_code ec;
  bind(local, ec);
  if (ec) {
    throw boost::system::system_error(ec, "bind");
  }
}

void udp::socket::bind(const endpoint_type& local, boost::system::error_code& ec) {
  if (auto_bound_ && is_open()) {
    ctx_->sockets().close(*impl_);  // the port open() took
  }
  auto_bound_ = false;
  std::optional<wire::ipv4_address> address;
  if (!local.address().is_unspecified()) {
    address = wire::ipv4_address{local.address().to_v4().to_uint()};
  }
  ec = to_asio_error(ctx_->sockets().open_udp(impl(), local.port(), address));
}

void udp::socket::close() {
  auto_bound_ = false;
  if (impl_) {
    ctx_->sockets().close(*impl_);
  }
}

void udp::socket::cancel() {
  if (impl_) {
    ctx_->sockets().cancel(*impl_);
  }
}

udp::endpoint udp::socket::local_endpoint() const {
  if (!is_open()) {
    throw boost::system::system_error(boost::asio::error::bad_descriptor, "local_endpoint");
  }
  stack::stack* ip = ctx_->ip();
  return {boost::asio::ip::address_v4(ip->config().address.value), ip->udp_port(impl_->id)};
}

}  // namespace dpdk_net
