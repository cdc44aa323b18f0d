#include "echo_app.hpp"

#include <algorithm>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace tcp_echo {
namespace {

namespace net = boost::asio;
using dpdk_net::tcp;

std::uint64_t mix(std::uint64_t z) noexcept {  // splitmix64's finaliser
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}

}  // namespace

void stream_generator::fill(std::uint64_t offset, std::span<std::byte> out) const noexcept {
  std::size_t i = 0;
  while (i < out.size()) {
    const std::uint64_t pos = offset + i;
    const std::uint64_t word = mix(seed_ * 0x9e3779b97f4a7c15ULL + (pos >> 3U));
    for (unsigned b = static_cast<unsigned>(pos & 7U); b < 8 && i < out.size(); ++b, ++i) {
      out[i] = static_cast<std::byte>(word >> (8U * b));
    }
  }
}

// --- server ------------------------------------------------------------------------------

echo_server::echo_server(const executor& ex, std::uint16_t port, bool no_delay)
    : acceptor_(ex), port_(port), no_delay_(no_delay) {}

std::error_code echo_server::listen_only(std::uint32_t backlog) {
  try {
    acceptor_.open();
    acceptor_.bind(tcp::endpoint(net::ip::address_v4::any(), port_));
    acceptor_.listen(static_cast<int>(backlog));
  } catch (const boost::system::system_error& e) {
    return {e.code().value(), std::generic_category()};
  }
  return {};
}

std::error_code echo_server::start(std::uint32_t backlog) {
  if (auto e = listen_only(backlog)) {
    return e;
  }
  net::co_spawn(acceptor_.get_executor(), accept_loop(), net::detached);
  return {};
}

net::awaitable<void> echo_server::accept_loop() {
  for (;;) {
    auto [ec, s] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
    if (ec == net::error::operation_aborted) {
      co_return;
    }
    if (ec) {
      continue;
    }
    ++counters_.accepted;
    net::co_spawn(acceptor_.get_executor(), session(std::move(s)), net::detached);
  }
}

net::awaitable<void> echo_server::session(tcp::socket s) {
  ++sessions_;
  if (no_delay_) {
    s.set_option(tcp::no_delay(true));
  }
  const auto buffer = std::make_unique<std::byte[]>(chunk_bytes);  // per session, not per read
  bool failed = false;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(net::buffer(buffer.get(), chunk_bytes),
                                              net::as_tuple(net::use_awaitable));
    if (ec) {
      failed = ec != net::error::eof;  // eof: the peer finished and everything was echoed
      break;
    }
    auto [wec, written] = co_await net::async_write(s, net::buffer(buffer.get(), n),
                                                    net::as_tuple(net::use_awaitable));
    counters_.bytes_echoed += written;
    if (wec) {
      failed = true;
      break;
    }
  }
  ++(failed ? counters_.failed : counters_.completed);
  boost::system::error_code ignored;
  s.close(ignored);
  --sessions_;
}

// --- client ------------------------------------------------------------------------------

echo_client::echo_client(const executor& ex, const client_config& config)
    : ex_(ex), config_(config) {}

void echo_client::start() {
  for (std::size_t i = 0; i < config_.connections; ++i) {
    streams_.push_back(std::make_unique<stream>(ex_));
    net::co_spawn(ex_, run(i), net::detached);
  }
}

net::awaitable<void> echo_client::run(std::size_t index) {
  stream& st = *streams_[index];
  try {
    if (config_.no_delay) {
      st.socket.set_option(tcp::no_delay(true));
    }
    if (config_.local_port != 0 && config_.connections == 1) {
      st.socket.bind(tcp::endpoint(net::ip::address_v4::any(), config_.local_port));
    }
  } catch (const boost::system::system_error& e) {
    st.failure = std::string("bind: ") + e.code().message();
  }
  if (st.failure.empty()) {
    auto [ec] = co_await st.socket.async_connect(config_.remote, net::as_tuple(net::use_awaitable));
    if (ec) {
      st.failure = "connect failed: " + ec.message();
    } else {
      net::co_spawn(ex_, write_all(index), net::detached);
      co_await verify(index);
    }
  }
  boost::system::error_code ignored;
  if (!st.failure.empty()) {
    st.socket.set_option(net::socket_base::linger(true, 0));  // abort: RST
  }
  st.socket.close(ignored);
  ++finished_;
}

net::awaitable<void> echo_client::write_all(std::size_t index) {
  stream& st = *streams_[index];
  const stream_generator generator(config_.seed + index);
  const auto tx = std::make_unique<std::byte[]>(chunk_bytes);
  for (std::uint64_t sent = 0; sent < config_.bytes;) {
    const auto n =
        static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes, config_.bytes - sent));
    generator.fill(sent, std::span(tx.get(), n));
    auto [ec, written] = co_await net::async_write(st.socket, net::buffer(tx.get(), n),
                                                   net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;  // the reader reports what went wrong (or already did and closed)
    }
    sent += written;
  }
  // Everything handed over: FIN after it (half-close, the echo goes on).
  boost::system::error_code ignored;
  st.socket.shutdown(net::socket_base::shutdown_send, ignored);
  st.sent = true;
}

net::awaitable<void> echo_client::verify(std::size_t index) {
  stream& st = *streams_[index];
  const stream_generator generator(config_.seed + index);
  const auto rx = std::make_unique<std::byte[]>(chunk_bytes);
  const auto expected = std::make_unique<std::byte[]>(chunk_bytes);
  std::uint64_t received = 0;
  for (;;) {
    auto [ec, n] = co_await st.socket.async_read_some(net::buffer(rx.get(), chunk_bytes),
                                                      net::as_tuple(net::use_awaitable));
    if (ec == net::error::eof) {
      if (received == config_.bytes) {
        ++counters_.streams_intact;
      } else {
        st.failure = "end of stream after " + std::to_string(received) + " of " +
                     std::to_string(config_.bytes) + " bytes";
      }
      co_return;
    }
    if (ec) {
      st.failure = "connection failed: " + ec.message();
      co_return;
    }
    if (received + n > config_.bytes) {
      st.failure = "more bytes echoed than sent";
      co_return;
    }
    generator.fill(received, std::span(expected.get(), n));
    if (std::memcmp(rx.get(), expected.get(), n) != 0) {
      std::size_t at = 0;
      while (rx[at] == expected[at]) {
        ++at;
      }
      st.failure = "echo differs at byte " + std::to_string(received + at);
      co_return;
    }
    received += n;
    counters_.bytes_verified += n;
  }
}

std::vector<std::string> echo_client::failures() const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    if (!streams_[i]->failure.empty()) {
      out.push_back("connection " + std::to_string(i) + ": " + streams_[i]->failure);
    }
  }
  return out;
}

}  // namespace tcp_echo
