// dpdk_net::udp: a protocol type shaped like boost::asio::ip::udp and its socket.
//
//   async_receive_from(buffers, sender)  void(error_code, size_t)  cancellation: total
//   async_send_to(buffers, destination)  void(error_code, size_t)  completes at once (posted):
//                                        the datagram is queued or refused (no_buffer_space)
// A datagram longer than the buffers is truncated (as recvfrom without MSG_TRUNC).
#pragma once

#include <cstddef>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/udp.hpp>

#include "dpdk_net/asio/detail/ops.hpp"
#include "dpdk_net/asio/net_context.hpp"

namespace dpdk_net {

class udp {
 public:
  using endpoint = boost::asio::ip::udp::endpoint;
  class socket;
  static constexpr udp v4() noexcept { return udp(); }
  [[nodiscard]] static constexpr int type() noexcept { return 2; /* SOCK_DGRAM */ }
  [[nodiscard]] static constexpr int protocol() noexcept { return 17; /* IPPROTO_UDP */ }
  [[nodiscard]] static constexpr int family() noexcept { return 2; /* AF_INET */ }
};

class udp::socket {
 public:
  using executor_type = boost::asio::any_io_executor;
  using protocol_type = udp;
  using endpoint_type = udp::endpoint;

  explicit socket(const executor_type& ex);
  /// Opens and binds (port 0: an ephemeral port).
  socket(const executor_type& ex, const endpoint_type& local);
  /// The moved-from socket keeps its executor and is reusable (closed), as Asio's.
  socket(socket&& other) noexcept
      : ex_(other.ex_),
        ctx_(other.ctx_),
        impl_(std::move(other.impl_)),
        auto_bound_(other.auto_bound_) {}
  socket& operator=(socket&& other) noexcept;
  ~socket();

  [[nodiscard]] const executor_type& get_executor() const noexcept { return ex_; }
  [[nodiscard]] bool is_open() const noexcept;
  /// The stack opens a UDP socket when it is bound: open() binds an ephemeral port (what the
  /// kernel does at the first send_to), which a later bind() replaces. Errors: already_open.
  void open(udp = udp::v4());
  void bind(const endpoint_type& local);
  void bind(const endpoint_type& local, boost::system::error_code& ec);
  void close();
  void cancel();
  [[nodiscard]] endpoint_type local_endpoint() const;

  template <class MutableBufferSequence,
            class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive_from(const MutableBufferSequence& buffers, endpoint_type& sender,
                          Token&& token = {});
  template <class ConstBufferSequence,
            class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_send_to(const ConstBufferSequence& buffers, const endpoint_type& destination,
                     Token&& token = {});

 private:
  struct initiate_receive {
    socket* s;
    using executor_type = socket::executor_type;
    [[nodiscard]] const executor_type& get_executor() const noexcept { return s->ex_; }
    template <class Handler, class Buffers>
    void operator()(Handler&& h, const Buffers& buffers, endpoint_type* sender) const {
      using op_t = detail::handler_op<std::decay_t<Handler>, executor_type,
                                      detail::result_shape::error_bytes>;
      op_t* o = op_t::create(std::forward<Handler>(h), s->ex_, detail::op_kind::receive_from,
                             *s->ctx_, boost::asio::cancellation_type::all);
      detail::gather_buffers(*o, buffers);
      o->sender = sender;
      s->ctx_->sockets().start_anywhere(s->impl(), o);
    }
  };
  struct initiate_send {
    socket* s;
    using executor_type = socket::executor_type;
    [[nodiscard]] const executor_type& get_executor() const noexcept { return s->ex_; }
    template <class Handler, class Buffers>
    void operator()(Handler&& h, const Buffers& buffers, const endpoint_type& to) const {
      using op_t = detail::handler_op<std::decay_t<Handler>, executor_type,
                                      detail::result_shape::error_bytes>;
      op_t* o = op_t::create(std::forward<Handler>(h), s->ex_, detail::op_kind::send_to, *s->ctx_,
                             boost::asio::cancellation_type::none);
      detail::gather_buffers(*o, buffers);
      if (to.address().is_v4()) {
        o->address = wire::ipv4_address{to.address().to_v4().to_uint()};
        o->port = to.port();
      } else {
        o->ec = std::make_error_code(std::errc::address_family_not_supported);
      }
      s->ctx_->sockets().start_anywhere(s->impl(), o);
    }
  };

  detail::impl_base& impl();  // made afresh (closed) for a moved-from socket

  executor_type ex_;
  net_context* ctx_;
  std::shared_ptr<detail::impl_base> impl_;
  bool auto_bound_ = false;  // open() took an ephemeral port (bind() replaces it)
};

template <class MutableBufferSequence, class Token>
auto udp::socket::async_receive_from(const MutableBufferSequence& buffers, endpoint_type& sender,
                                     Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_receive{this}, token, buffers, &sender);
}

template <class ConstBufferSequence, class Token>
auto udp::socket::async_send_to(const ConstBufferSequence& buffers,
                                const endpoint_type& destination, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_send{this}, token, buffers, destination);
}

}  // namespace dpdk_net
