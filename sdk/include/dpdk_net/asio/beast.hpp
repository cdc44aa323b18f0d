// Beast and websocket customisation points for dpdk_net::tcp::socket, found by ADL (namespace
// dpdk_net), with the semantics Beast gives boost::asio::ip::tcp::socket:
//   beast_close_socket(s)            closes the socket (errors ignored)
//   teardown(role, s, ec)            shutdown(send) (server first), read until eof, close --
//                                    non-blocking here: what has not arrived yet is not waited
//                                    for (our sockets have no blocking mode), the socket is closed
//   async_teardown(role, s, handler) the same, waiting for the peer's FIN; void(error_code)
// boost::asio::ssl::stream<tcp::socket> needs nothing more (tcp::socket has lowest_layer).
#pragma once

#include <memory>
#include <utility>

#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include "dpdk_net/asio/tcp.hpp"

namespace dpdk_net {

inline void beast_close_socket(tcp::socket& s) {
  boost::system::error_code ec;
  s.close(ec);
}

/// Synchronous teardown: shutdown(send), read what is already there (until eof or would_block),
/// close. An eof seen counts as success; would_block is not an error here.
void teardown(boost::beast::role_type role, tcp::socket& s, boost::system::error_code& ec);

namespace detail {

/// The asynchronous teardown (async_compose): shutdown(send) [server], read until eof,
/// shutdown(send) [client], close.
struct teardown_op {
  teardown_op(tcp::socket& sock, boost::beast::role_type r) : s(&sock), role(r) {}
  tcp::socket* s;
  boost::beast::role_type role;
  std::unique_ptr<char[]> buf = std::make_unique<char[]>(buf_size);  // stable across moves
  int state = 0;
  static constexpr std::size_t buf_size = 2048;

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
    switch (state) {
      case 0:
        state = 1;
        if (role == boost::beast::role_type::server) {
          s->shutdown(boost::asio::socket_base::shutdown_send, ec);
          if (ec) {
            return finish_posted(self, ec);
          }
        }
        s->async_read_some(boost::asio::buffer(buf.get(), buf_size), std::move(self));
        return;
      case 1:
        if (!ec && n != 0) {
          s->async_read_some(boost::asio::buffer(buf.get(), buf_size), std::move(self));
          return;
        }
        if (ec && ec != boost::asio::error::eof) {
          self.complete(ec);
          return;
        }
        ec = {};
        if (role == boost::beast::role_type::client) {
          s->shutdown(boost::asio::socket_base::shutdown_send, ec);
          if (ec) {
            self.complete(ec);
            return;
          }
        }
        s->close(ec);
        self.complete(ec);
        return;
      default:  // 2: posted completion of an error found at initiation
        self.complete(saved);
        return;
    }
  }

  template <class Self>
  void finish_posted(Self& self, boost::system::error_code ec) {
    state = 2;
    saved = ec;
    boost::asio::post(s->get_executor(), std::move(self));
  }
  boost::system::error_code saved;
};

}  // namespace detail

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, tcp::socket& s, TeardownHandler&& handler) {
  boost::asio::async_compose<TeardownHandler, void(boost::system::error_code)>(
      detail::teardown_op(s, role), handler, s);
}

}  // namespace dpdk_net
