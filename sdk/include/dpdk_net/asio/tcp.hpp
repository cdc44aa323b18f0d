// dpdk_net::tcp: a protocol type shaped like boost::asio::ip::tcp, with a socket that meets
// AsyncReadStream / AsyncWriteStream (Beast's is_async_stream) and an acceptor -- over our stack,
// so an application switches from kernel sockets by changing one alias (docs/asio.md).
//
// Completion signatures and cancellation (per-operation, through the handler's cancellation
// slot; socket.cancel() cancels everything pending on the socket):
//   async_connect(endpoint)        void(error_code)               terminal (aborts the attempt)
//   async_read_some(buffers)       void(error_code, size_t)       total (nothing was read)
//   async_write_some(buffers)      void(error_code, size_t)       total (nothing was taken)
//   acceptor.async_accept(peer)    void(error_code)               total
//   acceptor.async_accept()        void(error_code, tcp::socket)  total
// Cancelled operations complete with boost::asio::error::operation_aborted. A read completes
// with error::eof once the peer's FIN is reached; a zero-size buffer completes at once (posted).
// Every completion is posted or dispatched from the loop: never invoked inside the initiating
// call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>

#include "dpdk_net/asio/detail/ops.hpp"
#include "dpdk_net/asio/net_context.hpp"

namespace dpdk_net {

class tcp {
 public:
  using endpoint = boost::asio::ip::tcp::endpoint;
  class socket;
  class acceptor;

  static constexpr tcp v4() noexcept { return tcp(); }
  [[nodiscard]] static constexpr int type() noexcept { return 1; /* SOCK_STREAM */ }
  [[nodiscard]] static constexpr int protocol() noexcept { return 6; /* IPPROTO_TCP */ }
  [[nodiscard]] static constexpr int family() noexcept { return 2; /* AF_INET */ }
  friend constexpr bool operator==(tcp, tcp) noexcept { return true; }

  /// Options set with socket::set_option (Asio's own types where Asio has one).
  using no_delay = boost::asio::ip::tcp::no_delay;
  /// RFC 5482 user timeout: unacknowledged data older than this fails the connection.
  struct user_timeout {
    explicit user_timeout(std::chrono::nanoseconds t) noexcept : value(t) {}
    std::chrono::nanoseconds value;
  };
};

namespace detail {
[[nodiscard]] boost::asio::ip::tcp::endpoint to_endpoint(const stack::tcp_endpoint& e) noexcept;
struct tcp_initiation;
}  // namespace detail

class tcp::socket {
 public:
  using executor_type = boost::asio::any_io_executor;
  using protocol_type = tcp;
  using endpoint_type = tcp::endpoint;
  using lowest_layer_type = socket;
  using shutdown_type = boost::asio::socket_base::shutdown_type;
  template <class Executor>
  struct rebind_executor {
    using other = socket;
  };

  /// Throws std::invalid_argument if ex is not a dpdk_net context's executor.
  explicit socket(const executor_type& ex);
  explicit socket(net_context& ctx) : socket(executor_type(ctx.get_executor())) {}
  socket(socket&& other) noexcept;
  socket& operator=(socket&& other) noexcept;
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  /// Pending operations complete with operation_aborted; the connection is closed as the
  /// linger option says (graceful by default).
  ~socket();

  [[nodiscard]] const executor_type& get_executor() const noexcept { return ex_; }
  lowest_layer_type& lowest_layer() noexcept { return *this; }
  const lowest_layer_type& lowest_layer() const noexcept { return *this; }

  [[nodiscard]] bool is_open() const noexcept;
  /// Opens the socket (connect does it if needed). Errors: too_many_files_open.
  void open(tcp = tcp::v4());
  void open(tcp, boost::system::error_code& ec);
  void bind(const endpoint_type& local);
  void bind(const endpoint_type& local, boost::system::error_code& ec);
  /// Pending operations complete with operation_aborted, then the stack socket is released
  /// (graceful FIN, or RST per linger(true, 0)).
  void close();
  void close(boost::system::error_code& ec);
  /// Cancels every pending operation (operation_aborted).
  void cancel();
  void cancel(boost::system::error_code& ec);
  void shutdown(shutdown_type what);
  void shutdown(shutdown_type what, boost::system::error_code& ec);
  [[nodiscard]] endpoint_type local_endpoint() const;
  [[nodiscard]] endpoint_type local_endpoint(boost::system::error_code& ec) const;
  [[nodiscard]] endpoint_type remote_endpoint() const;
  [[nodiscard]] endpoint_type remote_endpoint(boost::system::error_code& ec) const;
  /// Bytes readable now.
  [[nodiscard]] std::size_t available() const;
  [[nodiscard]] std::size_t available(boost::system::error_code& ec) const;

  // options
  void set_option(const tcp::no_delay& o);
  void set_option(const boost::asio::socket_base::keep_alive& o);
  void set_option(const boost::asio::socket_base::linger& o);
  void set_option(const boost::asio::socket_base::send_buffer_size& o);
  void set_option(const boost::asio::socket_base::receive_buffer_size& o);
  void set_option(const boost::asio::socket_base::reuse_address&) {}  // always allowed here
  void set_option(const tcp::user_timeout& o);
  template <class Option>
  void set_option(const Option& o, boost::system::error_code& ec) {
    ec = {};
    try {
      set_option(o);
    } catch (const boost::system::system_error& e) {
      ec = e.code();
    }
  }
  void get_option(tcp::no_delay& o) const;
  /// Our full option set (keepalive timing, congestion control).
  void set_stack_options(const stack::tcp_socket_options& o);
  [[nodiscard]] stack::tcp_socket_options stack_options() const;

  // non-blocking reads and writes: would_block when nothing can move now
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec);
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec);

  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(const endpoint_type& peer, Token&& token = {});
  template <class MutableBufferSequence,
            class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token = {});
  template <class ConstBufferSequence,
            class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token = {});

  /// The stack socket id (tests, diagnostics); tcp_layer::invalid_socket if closed.
  [[nodiscard]] std::uint32_t native_handle() const noexcept;
  /// For the accept operation: a socket owning connection id.
  static socket accepted(const executor_type& ex, net_context& ctx, std::uint32_t id);

 private:
  friend class acceptor;
  friend struct detail::tcp_initiation;
  detail::impl_base& impl() const;
  std::size_t sync_io(bool write, detail::io_op& o, boost::system::error_code& ec);

  executor_type ex_;
  net_context* ctx_;
  std::shared_ptr<detail::impl_base> impl_;
};

class tcp::acceptor {
 public:
  using executor_type = boost::asio::any_io_executor;
  using protocol_type = tcp;
  using endpoint_type = tcp::endpoint;

  explicit acceptor(const executor_type& ex);
  explicit acceptor(net_context& ctx) : acceptor(executor_type(ctx.get_executor())) {}
  /// Opens, binds and listens (backlog: max_listen_connections, clamped by the stack).
  acceptor(const executor_type& ex, const endpoint_type& local, bool reuse_address = true);
  acceptor(acceptor&& other) noexcept;
  acceptor& operator=(acceptor&& other) noexcept;
  ~acceptor();

  [[nodiscard]] const executor_type& get_executor() const noexcept { return ex_; }
  [[nodiscard]] bool is_open() const noexcept;
  void open(tcp = tcp::v4());
  void bind(const endpoint_type& local);
  void listen(int backlog = boost::asio::socket_base::max_listen_connections);
  void close();
  void close(boost::system::error_code& ec);
  void cancel();
  void set_option(const boost::asio::socket_base::reuse_address&) {}
  [[nodiscard]] endpoint_type local_endpoint() const;
  /// Non-blocking: would_block if no connection is waiting.
  void accept(tcp::socket& peer, boost::system::error_code& ec);

  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_accept(tcp::socket& peer, Token&& token = {});
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_accept(Token&& token = {});

 private:
  friend struct detail::tcp_initiation;
  executor_type ex_;
  net_context* ctx_;
  std::shared_ptr<detail::impl_base> impl_;
};

namespace detail {

/// The initiations (named structs: g++ 12 mishandles capturing lambdas inside co_await).
struct tcp_initiation {
  /// async_read_some (Kind read) and async_write_some (Kind write).
  template <op_kind Kind>
  struct transfer {
    tcp::socket* s;
    using executor_type = tcp::socket::executor_type;
    [[nodiscard]] const executor_type& get_executor() const noexcept { return s->ex_; }
    template <class Handler, class Buffers>
    void operator()(Handler&& h, const Buffers& buffers) const {
      using op_t = handler_op<std::decay_t<Handler>, executor_type, result_shape::error_bytes>;
      op_t* o = op_t::create(std::forward<Handler>(h), s->ex_, Kind, *s->ctx_,
                             boost::asio::cancellation_type::all);
      gather_buffers(*o, buffers);
      s->ctx_->sockets().start_anywhere(s->impl(), o);
    }
  };
  struct connect {
    tcp::socket* s;
    using executor_type = tcp::socket::executor_type;
    [[nodiscard]] const executor_type& get_executor() const noexcept { return s->ex_; }
    template <class Handler>
    void operator()(Handler&& h, const tcp::endpoint& peer) const {
      using op_t = handler_op<std::decay_t<Handler>, executor_type, result_shape::error>;
      op_t* o = op_t::create(std::forward<Handler>(h), s->ex_, op_kind::connect, *s->ctx_,
                             boost::asio::cancellation_type::terminal);
      if (peer.address().is_v4()) {
        o->address = wire::ipv4_address{peer.address().to_v4().to_uint()};
        o->port = peer.port();
      } else {
        o->ec = std::make_error_code(std::errc::address_family_not_supported);
      }
      s->ctx_->sockets().start_anywhere(s->impl(), o);
    }
  };
  struct accept_into {
    tcp::acceptor* a;
    using executor_type = tcp::acceptor::executor_type;
    [[nodiscard]] const executor_type& get_executor() const noexcept { return a->ex_; }
    template <class Handler>
    void operator()(Handler&& h, tcp::socket* peer) const {
      using op_t = handler_op<std::decay_t<Handler>, executor_type, result_shape::error>;
      op_t* o = op_t::create(std::forward<Handler>(h), a->ex_, op_kind::accept, *a->ctx_,
                             boost::asio::cancellation_type::all);
      o->target = &peer->impl();
      a->ctx_->sockets().start_anywhere(*a->impl_, o);
    }
  };
  struct accept_move {
    tcp::acceptor* a;
    using executor_type = tcp::acceptor::executor_type;
    [[nodiscard]] const executor_type& get_executor() const noexcept { return a->ex_; }
    template <class Handler>
    void operator()(Handler&& h) const {
      using op_t =
          handler_op<std::decay_t<Handler>, executor_type, result_shape::error_socket, tcp::socket>;
      op_t* o = op_t::create(std::forward<Handler>(h), a->ex_, op_kind::accept, *a->ctx_,
                             boost::asio::cancellation_type::all);
      a->ctx_->sockets().start_anywhere(*a->impl_, o);
    }
  };
};

}  // namespace detail

template <class Token>
auto tcp::socket::async_connect(const endpoint_type& peer, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      detail::tcp_initiation::connect{this}, token, peer);
}

template <class MutableBufferSequence, class Token>
auto tcp::socket::async_read_some(const MutableBufferSequence& buffers, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      detail::tcp_initiation::transfer<detail::op_kind::read>{this}, token, buffers);
}

template <class ConstBufferSequence, class Token>
auto tcp::socket::async_write_some(const ConstBufferSequence& buffers, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      detail::tcp_initiation::transfer<detail::op_kind::write>{this}, token, buffers);
}

template <class MutableBufferSequence>
std::size_t tcp::socket::read_some(const MutableBufferSequence& buffers,
                                   boost::system::error_code& ec) {
  detail::io_op o(nullptr, detail::op_kind::read);
  detail::gather_buffers(o, buffers);
  return sync_io(false, o, ec);
}

template <class ConstBufferSequence>
std::size_t tcp::socket::write_some(const ConstBufferSequence& buffers,
                                    boost::system::error_code& ec) {
  detail::io_op o(nullptr, detail::op_kind::write);
  detail::gather_buffers(o, buffers);
  return sync_io(true, o, ec);
}

template <class Token>
auto tcp::acceptor::async_accept(tcp::socket& peer, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      detail::tcp_initiation::accept_into{this}, token, &peer);
}

template <class Token>
auto tcp::acceptor::async_accept(Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, tcp::socket)>(
      detail::tcp_initiation::accept_move{this}, token);
}

}  // namespace dpdk_net
