// dpdk_net::async_connect(socket, endpoints, token): boost::asio::async_connect for our socket.
// Tries each endpoint of the sequence in turn (the socket is closed between attempts) until one
// connects. Completion: void(error_code, tcp::endpoint) -- the endpoint connected to, or the last
// attempt's error (boost::asio::error::not_found for an empty sequence). Cancellation: terminal
// (forwarded to the attempt in flight).
#pragma once

#include <iterator>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include "dpdk_net/asio/tcp.hpp"

namespace dpdk_net {

namespace detail {

template <class EndpointSequence>
struct range_connect_op {
  range_connect_op(tcp::socket& sock, const EndpointSequence& e) : s(&sock), endpoints(e) {}
  tcp::socket* s;
  EndpointSequence endpoints;
  std::size_t index = 0;  // the attempt in flight
  boost::system::error_code last = boost::asio::error::not_found;
  tcp::endpoint current{};
  bool posted = false;

  template <class Self>
  void operator()(Self& self) {
    next(self);
  }
  template <class Self>
  void operator()(Self& self, boost::system::error_code ec) {
    if (posted) {  // the empty sequence's posted completion
      self.complete(last, tcp::endpoint());
      return;
    }
    if (!ec) {
      self.complete(ec, current);
      return;
    }
    last = ec;
    if (ec == boost::asio::error::operation_aborted ||
        self.cancelled() != boost::asio::cancellation_type::none) {
      self.complete(ec, tcp::endpoint());
      return;
    }
    ++index;
    next(self);
  }

 private:
  template <class Self>
  void next(Self& self) {
    auto it = std::begin(endpoints);
    const auto end = std::end(endpoints);
    for (std::size_t i = 0; i < index && it != end; ++i) {
      ++it;
    }
    if (it == end) {
      if (index == 0) {  // nothing tried: complete through the executor, never inline
        posted = true;
        boost::asio::post(s->get_executor(), boost::asio::append(std::move(self), last));
        return;
      }
      self.complete(last, tcp::endpoint());
      return;
    }
    current = tcp::endpoint(*it);
    if (s->is_open()) {
      boost::system::error_code ignored;
      s->close(ignored);
    }
    s->async_connect(current, std::move(self));
  }
};

}  // namespace detail

template <class EndpointSequence,
          class Token = boost::asio::default_completion_token_t<tcp::socket::executor_type>>
auto async_connect(tcp::socket& s, const EndpointSequence& endpoints, Token&& token = {}) {
  return boost::asio::async_compose<Token, void(boost::system::error_code, tcp::endpoint)>(
      detail::range_connect_op<EndpointSequence>(s, endpoints), token, s);
}

}  // namespace dpdk_net
