// Shared by the asio_ops tests: two simulated hosts (sim_runtime each) on one link, a connected
// socket pair, and handlers that record their results.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <string>

#include <boost/asio/ip/address_v4.hpp>

#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"

namespace dpdk_net::asio_ops_testing {

namespace net = boost::asio;
using error_code = boost::system::error_code;

inline stack::stack_config host_config(std::uint32_t last_octet) {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | last_octet};  // 198.18.0.x
  c.prefix_length = 24;
  return c;
}

inline const net::ip::address_v4 server_ip = net::ip::make_address_v4("198.18.0.2");
inline const tcp::endpoint server_ep(server_ip, 7);
inline const tcp::endpoint listen_ep(net::ip::address_v4::any(), 7);

/// Two simulated hosts, each a sim_runtime, on one link.
struct sim_pair {
  explicit sim_pair(std::uint64_t s)
      : seed(s),
        netw(s),
        ch(netw.add_host("client")),
        sh(netw.add_host("server")),
        cn(netw.add_nic(ch)),
        sn(netw.add_nic(sh)),
        link(netw.connect(cn, sn)),
        client(ch, cn, host_config(1)),
        server(sh, sn, host_config(2)) {}
  bool run(const std::function<bool()>& pred, time_ns limit = 2 * second) {
    return netw.run_until(pred, netw.now() + limit);
  }
  std::uint64_t seed;
  sim::network netw;
  sim::host& ch;
  sim::host& sh;
  sim::sim_nic& cn;
  sim::sim_nic& sn;
  sim::sim_link& link;
  sim::sim_runtime client;
  sim::sim_runtime server;
};

inline std::string trace(const sim_pair& p) {
  return "seed " + std::to_string(p.seed);
}

/// A connected pair of sockets: c on the client host, s on the server host.
struct connected {
  explicit connected(sim_pair& p)
      : acceptor(p.server.get_executor(), listen_ep),
        c(p.client.get_executor()),
        s(p.server.get_executor()) {
    acceptor.async_accept(s, [this](error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      accepted = true;
    });
    c.async_connect(server_ep, [this](error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      connected_ok = true;
    });
    ok = p.run([this] { return accepted && connected_ok; });
  }
  tcp::acceptor acceptor;
  tcp::socket c;
  tcp::socket s;
  bool accepted = false;
  bool connected_ok = false;
  bool ok = false;
};

/// A handler's result, kept where the test can look.
struct result {
  bool done = false;
  error_code ec;
  std::size_t n = 0;
};
struct record_ec {
  result* r;
  void operator()(error_code ec) const {
    r->done = true;
    r->ec = ec;
  }
};
struct record_n {
  result* r;
  void operator()(error_code ec, std::size_t n) const {
    r->done = true;
    r->ec = ec;
    r->n = n;
  }
};

}  // namespace dpdk_net::asio_ops_testing
