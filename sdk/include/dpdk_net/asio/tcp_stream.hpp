// dpdk_net::tcp_stream: beast::tcp_stream for our sockets (beast::basic_stream only wraps
// boost::asio::basic_stream_socket). A tcp::socket plus a deadline on the context's clock
// (dpdk_net::steady_timer: virtual time in the simulator):
//   expires_after(d) / expires_at(t) / expires_never()  the deadline of the operations that
//       follow (each async_read_some / async_write_some / async_connect waits for it);
//   when it passes while an operation is pending, the socket is closed (as Beast does) and the
//   pending operations complete with boost::beast::error::timeout. An operation started after
//   the deadline times out at once (posted).
// It meets AsyncReadStream / AsyncWriteStream, so http::async_read/async_write and
// websocket::stream<tcp_stream> work; beast_close_socket / teardown / async_teardown are
// provided for it (ADL).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>

#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>

#include "dpdk_net/asio/beast.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"

namespace dpdk_net {

class tcp_stream {
 public:
  using executor_type = tcp::socket::executor_type;
  using socket_type = tcp::socket;
  using endpoint_type = tcp::endpoint;
  using lowest_layer_type = tcp::socket;
  using time_point = steady_timer::time_point;
  using duration = steady_timer::duration;
  template <class Executor>
  struct rebind_executor {
    using other = tcp_stream;
  };

  explicit tcp_stream(const executor_type& ex) : impl_(std::make_shared<impl>(ex)) {}
  explicit tcp_stream(net_context& ctx) : tcp_stream(executor_type(ctx.get_executor())) {}
  /// Takes over a connected (accepted) socket.
  explicit tcp_stream(tcp::socket s) : impl_(std::make_shared<impl>(std::move(s))) {}
  tcp_stream(tcp_stream&&) noexcept = default;
  tcp_stream& operator=(tcp_stream&&) noexcept = default;
  tcp_stream(const tcp_stream&) = delete;
  tcp_stream& operator=(const tcp_stream&) = delete;
  ~tcp_stream() {
    if (impl_) {
      impl_->stop_timers();
    }
  }

  [[nodiscard]] const executor_type& get_executor() const noexcept {
    return impl_->socket.get_executor();
  }
  [[nodiscard]] tcp::socket& socket() noexcept { return impl_->socket; }
  [[nodiscard]] const tcp::socket& socket() const noexcept { return impl_->socket; }
  lowest_layer_type& lowest_layer() noexcept { return impl_->socket; }
  /// Gives the socket away (timers stopped; the stream is left without a connection).
  tcp::socket release_socket() {
    impl_->stop_timers();
    tcp::socket s(std::move(impl_->socket));
    impl_->socket = tcp::socket(s.get_executor());
    return s;
  }

  /// The deadline: d from the context's current time.
  template <class Rep, class Period>
  void expires_after(std::chrono::duration<Rep, Period> d) {
    const time_ns now = detail::context_of(get_executor()).now();
    expires_at(time_point(duration(now) + std::chrono::duration_cast<duration>(d)));
  }
  void expires_at(time_point t) {
    impl_->expiry = t;
    impl_->has_expiry = true;
    impl_->rearm();
  }
  void expires_never() {
    impl_->has_expiry = false;
    impl_->stop_timers();
  }
  /// Pending operations complete with operation_aborted.
  void cancel() {
    boost::system::error_code ec;
    impl_->socket.cancel(ec);
  }
  /// Closes the socket: pending operations complete with operation_aborted.
  void close() {
    impl_->stop_timers();
    boost::system::error_code ec;
    impl_->socket.close(ec);
  }

  template <class MutableBufferSequence,
            class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token = {}) {
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        io_op<MutableBufferSequence, false>{impl_, buffers}, token, impl_->socket);
  }
  template <class ConstBufferSequence,
            class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token = {}) {
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        io_op<ConstBufferSequence, true>{impl_, buffers}, token, impl_->socket);
  }
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(const endpoint_type& peer, Token&& token = {}) {
    return boost::asio::async_compose<Token, void(boost::system::error_code)>(
        connect_op{impl_, peer}, token, impl_->socket);
  }

 private:
  enum side : std::uint8_t { reading = 0, writing = 1 };

  struct impl : std::enable_shared_from_this<impl> {
    explicit impl(const executor_type& ex)
        : socket(ex), timers{steady_timer(ex), steady_timer(ex)} {}
    explicit impl(tcp::socket s)
        : socket(std::move(s)),
          timers{steady_timer(socket.get_executor()), steady_timer(socket.get_executor())} {}
    tcp::socket socket;
    steady_timer timers[2];
    std::uint64_t seq[2] = {0, 0};
    bool pending[2] = {false, false};
    bool timed_out[2] = {false, false};  // per side: the other side's abort is not a timeout
    bool has_expiry = false;
    time_point expiry{};

    void stop_timers() {
      for (int i = 0; i < 2; ++i) {
        ++seq[i];
        timers[i].cancel();
      }
    }
    /// The deadline changed: pending operations wait for the new one.
    void rearm() {
      for (int i = 0; i < 2; ++i) {
        if (pending[i]) {
          arm(static_cast<side>(i));
        }
      }
    }
    void arm(side s);
    /// An operation on side s starts (arms its deadline if one is set).
    void begin(side s) {
      pending[s] = true;
      timed_out[s] = false;
      if (has_expiry) {
        arm(s);
      }
    }
    /// The operation on side s is done; a cancellation caused by the deadline is a timeout.
    boost::system::error_code end(side s, boost::system::error_code ec) {
      pending[s] = false;
      ++seq[s];
      timers[s].cancel();
      if (timed_out[s] && ec == boost::asio::error::operation_aborted) {
        return boost::beast::error::timeout;
      }
      return ec;
    }
  };

  /// The deadline of one operation (the timer's wait handler: a named struct).
  struct on_deadline {
    std::weak_ptr<impl> w;
    side s;
    std::uint64_t seq;
    void operator()(boost::system::error_code ec) const {
      if (ec) {
        return;  // cancelled: the operation finished, or the deadline moved
      }
      const std::shared_ptr<impl> p = w.lock();
      if (!p || p->seq[s] != seq || !p->pending[s]) {
        return;
      }
      p->timed_out[s] = true;
      boost::system::error_code ignored;
      p->socket.close(ignored);
    }
  };

  template <class Buffers, bool Write>
  struct io_op {
    std::shared_ptr<impl> p;
    Buffers buffers;
    template <class Self>
    void operator()(Self& self) {
      p->begin(Write ? writing : reading);
      if constexpr (Write) {
        p->socket.async_write_some(buffers, std::move(self));
      } else {
        p->socket.async_read_some(buffers, std::move(self));
      }
    }
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec, std::size_t n) {
      ec = p->end(Write ? writing : reading, ec);
      self.complete(ec, ec == boost::beast::error::timeout ? 0 : n);
    }
  };

  struct connect_op {
    std::shared_ptr<impl> p;
    endpoint_type peer;
    template <class Self>
    void operator()(Self& self) {
      p->begin(writing);
      p->socket.async_connect(peer, std::move(self));
    }
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec) {
      self.complete(p->end(writing, ec));
    }
  };

  std::shared_ptr<impl> impl_;
};

inline void tcp_stream::impl::arm(side s) {
  ++seq[s];
  timers[s].expires_at(expiry);
  timers[s].async_wait(on_deadline{weak_from_this(), s, seq[s]});
}

inline void beast_close_socket(tcp_stream& s) {
  s.close();
}

inline void teardown(boost::beast::role_type role, tcp_stream& s, boost::system::error_code& ec) {
  teardown(role, s.socket(), ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, tcp_stream& s, TeardownHandler&& handler) {
  s.expires_never();
  async_teardown(role, s.socket(), std::forward<TeardownHandler>(handler));
}

}  // namespace dpdk_net
