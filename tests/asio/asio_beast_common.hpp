// Shared by the Beast/TLS test TUs (asio_beast_http_test.cpp, asio_beast_tls_ws_test.cpp): two
// simulated hosts with a sim_runtime each, a co_spawn completion recorder, a byte pattern. Split in
// two TUs so the heaviest instantiations (Beast HTTP, ssl + websocket) build on both cores.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "dpdk_net/asio/beast.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/asio/tcp_stream.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"

namespace asio_beast_test {

namespace net = boost::asio;
namespace beast = boost::beast;
using namespace dpdk_net;
using net::use_awaitable;

inline constexpr std::uint16_t http_port = 80;

inline stack::stack_config host_config(std::uint32_t last_octet) {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | last_octet};  // 198.18.0.x
  c.prefix_length = 24;
  return c;
}

/// Two simulated hosts (client 198.18.0.1, server 198.18.0.2) on one link.
struct duo {
  explicit duo(std::uint64_t s, const sim::link_config& link = {})
      : seed(s),
        netw(s),
        ch(netw.add_host("client")),
        sh(netw.add_host("server")),
        cn(netw.add_nic(ch)),
        sn(netw.add_nic(sh)),
        linked((netw.connect(cn, sn, link), true)),
        client(ch, cn, host_config(1)),
        server(sh, sn, host_config(2)) {}
  std::uint64_t seed;
  sim::network netw;
  sim::host& ch;
  sim::host& sh;
  sim::sim_nic& cn;
  sim::sim_nic& sn;
  bool linked;
  sim::sim_runtime client;
  sim::sim_runtime server;
  [[nodiscard]] static tcp::endpoint server_endpoint(std::uint16_t port) {
    return {net::ip::make_address_v4("198.18.0.2"), port};
  }
};

/// co_spawn completion: records that the coroutine ended and what it threw.
struct finished {
  bool* done;
  std::string* failure;
  void operator()(const std::exception_ptr& e) const {
    *done = true;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        *failure = x.what();
      }
    }
  }
};

/// n bytes of a pattern that is not periodic at any small stride (all byte values).
inline std::string pattern(std::size_t n, std::uint32_t salt) {
  std::string s(n, '\0');
  std::uint32_t x = 0x9e3779b9U ^ salt;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

}  // namespace asio_beast_test
