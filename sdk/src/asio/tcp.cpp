#include "dpdk_net/asio/tcp.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net {

namespace detail {
boost::asio::ip::tcp::endpoint to_endpoint(const stack::tcp_endpoint& e) noexcept {
  return {boost::asio::ip::address_v4(e.address.value), e.port};
}
}  // namespace detail

namespace {

void throw_if(const boost::system::error_code& ec, const char* what) {
  if (ec) {
    throw boost::system::system_error(ec, what);
  }
}

boost::system::error_code bad_descriptor() {
  return boost::asio::error::bad_descriptor;
}

stack::tcp_layer* layer(net_context* ctx) {
  stack::stack* ip = ctx->ip();
  return ip == nullptr ? nullptr : &ip->tcp();
}

}  // namespace

// --- socket -------------------------------------------------------------------------------------

tcp::socket::socket(const executor_type& ex)
    : ex_(ex),
      ctx_(&detail::context_of(ex)),
      impl_(std::make_shared<detail::impl_base>(*ctx_, false)) {}

tcp::socket::socket(socket&& other) noexcept
    : ex_(other.ex_), ctx_(other.ctx_), impl_(std::move(other.impl_)) {}

tcp::socket& tcp::socket::operator=(socket&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      ctx_->sockets().close(*impl_);
    }
    ex_ = other.ex_;
    ctx_ = other.ctx_;
    impl_ = std::move(other.impl_);
  }
  return *this;
}

tcp::socket::~socket() {
  if (impl_) {
    ctx_->sockets().close(*impl_);
  }
}

detail::impl_base& tcp::socket::impl() const {
  if (!impl_) {
    // A moved-from socket is used again: give it fresh (closed) state, as Asio's is reusable.
    const_cast<socket*>(this)->impl_ = std::make_shared<detail::impl_base>(*ctx_, false);
  }
  return *impl_;
}

bool tcp::socket::is_open() const noexcept {
  return impl_ && ctx_->sockets().alive(*impl_);
}

void tcp::socket::open(tcp p) {
  boost::system::error_code ec;
  open(p, ec);
  throw_if(ec, "open");
}

void tcp::socket::open(tcp, boost::system::error_code& ec) {
  ec = is_open() ? boost::asio::error::already_open
                 : to_asio_error(ctx_->sockets().open_tcp(impl()));
}

void tcp::socket::bind(const endpoint_type& local) {
  boost::system::error_code ec;
  bind(local, ec);
  throw_if(ec, "bind");
}

void tcp::socket::bind(const endpoint_type& local, boost::system::error_code& ec) {
  if (!is_open()) {
    open(tcp::v4(), ec);
    if (ec) {
      return;
    }
  }
  std::optional<wire::ipv4_address> address;
  if (!local.address().is_unspecified()) {
    address = wire::ipv4_address{local.address().to_v4().to_uint()};
  }
  ec = to_asio_error(layer(ctx_)->bind(impl_->id, local.port(), address));
}

void tcp::socket::close() {
  boost::system::error_code ec;
  close(ec);
  throw_if(ec, "close");
}

void tcp::socket::close(boost::system::error_code& ec) {
  ec = {};
  if (impl_) {
    const bool abort = impl_->options.linger && *impl_->options.linger == 0;
    ec = to_asio_error(ctx_->sockets().close(*impl_, abort));
  }
}

void tcp::socket::cancel() {
  if (impl_) {
    ctx_->sockets().cancel(*impl_);
  }
}

void tcp::socket::cancel(boost::system::error_code& ec) {
  ec = {};
  cancel();
}

void tcp::socket::shutdown(shutdown_type what) {
  boost::system::error_code ec;
  shutdown(what, ec);
  throw_if(ec, "shutdown");
}

void tcp::socket::shutdown(shutdown_type what, boost::system::error_code& ec) {
  if (!is_open()) {
    ec = bad_descriptor();
    return;
  }
  const stack::shutdown_type how =
      what == boost::asio::socket_base::shutdown_receive ? stack::shutdown_type::receive
      : what == boost::asio::socket_base::shutdown_send  ? stack::shutdown_type::send
                                                         : stack::shutdown_type::both;
  if (how != stack::shutdown_type::send) {
    impl_->shut_read = true;
  }
  ec = to_asio_error(layer(ctx_)->shutdown(impl_->id, how, ctx_->now()));
  ctx_->request_turn();
}

tcp::endpoint tcp::socket::local_endpoint() const {
  boost::system::error_code ec;
  endpoint_type e = local_endpoint(ec);
  throw_if(ec, "local_endpoint");
  return e;
}

tcp::endpoint tcp::socket::local_endpoint(boost::system::error_code& ec) const {
  ec = {};
  if (is_open()) {
    if (auto e = layer(ctx_)->local_endpoint(impl_->id)) {
      return detail::to_endpoint(*e);
    }
  }
  ec = bad_descriptor();
  return {};
}

tcp::endpoint tcp::socket::remote_endpoint() const {
  boost::system::error_code ec;
  endpoint_type e = remote_endpoint(ec);
  throw_if(ec, "remote_endpoint");
  return e;
}

tcp::endpoint tcp::socket::remote_endpoint(boost::system::error_code& ec) const {
  ec = {};
  if (is_open()) {
    if (auto e = layer(ctx_)->remote_endpoint(impl_->id)) {
      if (e->port != 0) {
        return detail::to_endpoint(*e);
      }
    }
    ec = boost::asio::error::not_connected;
    return {};
  }
  ec = bad_descriptor();
  return {};
}

std::size_t tcp::socket::available() const {
  boost::system::error_code ec;
  const std::size_t n = available(ec);
  throw_if(ec, "available");
  return n;
}

std::size_t tcp::socket::available(boost::system::error_code& ec) const {
  ec = {};
  if (!is_open()) {
    ec = bad_descriptor();
    return 0;
  }
  return layer(ctx_)->readable_bytes(impl_->id);
}

void tcp::socket::set_stack_options(const stack::tcp_socket_options& o) {
  detail::impl_base& s = impl();
  s.options = o;
  s.options_set = true;
  if (is_open()) {
    throw_if(to_asio_error(layer(ctx_)->set_options(s.id, o)), "set_option");
  }
}

stack::tcp_socket_options tcp::socket::stack_options() const {
  return impl().options;
}

void tcp::socket::set_option(const tcp::no_delay& o) {
  auto opts = impl().options;
  opts.no_delay = o.value();
  set_stack_options(opts);
}

void tcp::socket::get_option(tcp::no_delay& o) const {
  o = tcp::no_delay(impl().options.no_delay);
}

void tcp::socket::set_option(const boost::asio::socket_base::keep_alive& o) {
  auto opts = impl().options;
  // Linux's defaults when SO_KEEPALIVE is switched on: 2 h idle, 75 s apart, 9 probes.
  opts.keepalive_idle = o.value() ? 7200 * second : 0;
  set_stack_options(opts);
}

void tcp::socket::set_option(const boost::asio::socket_base::linger& o) {
  auto opts = impl().options;
  if (o.enabled()) {
    opts.linger = static_cast<time_ns>(o.timeout()) * second;
  } else {
    opts.linger.reset();
  }
  set_stack_options(opts);
}

void tcp::socket::set_option(const boost::asio::socket_base::send_buffer_size& o) {
  auto opts = impl().options;
  opts.send_buffer = static_cast<std::uint32_t>(o.value());
  set_stack_options(opts);
}

void tcp::socket::set_option(const boost::asio::socket_base::receive_buffer_size& o) {
  auto opts = impl().options;
  opts.receive_buffer = static_cast<std::uint32_t>(o.value());
  set_stack_options(opts);
}

void tcp::socket::set_option(const tcp::user_timeout& o) {
  auto opts = impl().options;
  opts.user_timeout = static_cast<time_ns>(o.value.count());
  set_stack_options(opts);
}

std::size_t tcp::socket::sync_io(bool write, detail::io_op& o, boost::system::error_code& ec) {
  ec = {};
  if (!is_open()) {
    ec = bad_descriptor();
    return 0;
  }
  const stack::io_result r = ctx_->sockets().transfer(*impl_, o, write);
  if (r.bytes == 0 && r.error) {
    ec = r.error == std::errc::resource_unavailable_try_again
             ? boost::system::error_code(boost::asio::error::would_block)
             : to_asio_error(r.error);
  }
  if (write && r.bytes != 0) {
    ctx_->request_turn();
  }
  return r.bytes;
}

std::uint32_t tcp::socket::native_handle() const noexcept {
  return is_open() ? impl_->id : stack::tcp_layer::invalid_socket;
}

tcp::socket tcp::socket::accepted(const executor_type& ex, net_context& ctx, std::uint32_t id) {
  socket s(ex);
  if (id != detail::no_socket) {
    ctx.sockets().adopt_tcp(s.impl(), id);
  }
  return s;
}

// --- acceptor -----------------------------------------------------------------------------------

tcp::acceptor::acceptor(const executor_type& ex)
    : ex_(ex),
      ctx_(&detail::context_of(ex)),
      impl_(std::make_shared<detail::impl_base>(*ctx_, false)) {}

tcp::acceptor::acceptor(const executor_type& ex, const endpoint_type& local, bool /*reuse*/)
    : acceptor(ex) {
  open();
  bind(local);
  listen();
}

tcp::acceptor::acceptor(acceptor&& other) noexcept
    : ex_(other.ex_), ctx_(other.ctx_), impl_(std::move(other.impl_)) {}

tcp::acceptor& tcp::acceptor::operator=(acceptor&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      ctx_->sockets().close(*impl_);
    }
    ex_ = other.ex_;
    ctx_ = other.ctx_;
    impl_ = std::move(other.impl_);
  }
  return *this;
}

tcp::acceptor::~acceptor() {
  if (impl_) {
    ctx_->sockets().close(*impl_);
  }
}

bool tcp::acceptor::is_open() const noexcept {
  return impl_ && ctx_->sockets().alive(*impl_);
}

void tcp::acceptor::open(tcp) {
  if (!impl_) {
    impl_ = std::make_shared<detail::impl_base>(*ctx_, false);
  }
  throw_if(is_open() ? boost::system::error_code(boost::asio::error::already_open)
                     : to_asio_error(ctx_->sockets().open_tcp(*impl_)),
           "open");
}

void tcp::acceptor::bind(const endpoint_type& local) {
  if (!is_open()) {
    open();
  }
  std::optional<wire::ipv4_address> address;
  if (!local.address().is_unspecified()) {
    address = wire::ipv4_address{local.address().to_v4().to_uint()};
  }
  throw_if(to_asio_error(layer(ctx_)->bind(impl_->id, local.port(), address)), "bind");
}

void tcp::acceptor::listen(int backlog) {
  if (!is_open()) {
    throw_if(bad_descriptor(), "listen");
  }
  throw_if(to_asio_error(layer(ctx_)->listen(
               impl_->id, static_cast<std::uint32_t>(backlog < 1 ? 1 : backlog))),
           "listen");
  impl_->listener = true;
}

void tcp::acceptor::close() {
  if (impl_) {
    ctx_->sockets().close(*impl_);
  }
}

void tcp::acceptor::close(boost::system::error_code& ec) {
  ec = {};
  close();
}

void tcp::acceptor::cancel() {
  if (impl_) {
    ctx_->sockets().cancel(*impl_);
  }
}

tcp::endpoint tcp::acceptor::local_endpoint() const {
  if (is_open()) {
    if (auto e = layer(ctx_)->local_endpoint(impl_->id)) {
      return detail::to_endpoint(*e);
    }
  }
  throw_if(bad_descriptor(), "local_endpoint");
  return {};
}

void tcp::acceptor::accept(tcp::socket& peer, boost::system::error_code& ec) {
  ec = {};
  if (!is_open() || !impl_->listener) {
    ec = is_open() ? boost::asio::error::invalid_argument : bad_descriptor();
    return;
  }
  if (peer.is_open()) {
    ec = boost::asio::error::already_open;  // as Asio: the open peer is left alone
    return;
  }
  stack::tcp_layer::socket_id id = stack::tcp_layer::invalid_socket;
  const std::error_code e = layer(ctx_)->accept(impl_->id, id);
  if (e) {
    ec = e == std::errc::resource_unavailable_try_again
             ? boost::system::error_code(boost::asio::error::would_block)
             : to_asio_error(e);
    return;
  }
  peer.close();
  ctx_->sockets().adopt_tcp(peer.impl(), id);
}

}  // namespace dpdk_net
