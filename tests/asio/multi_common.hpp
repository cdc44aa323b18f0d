// Shared by the multi-worker tests (simulator and real threads): an echo node that listens on
// every worker and connects from every worker, and the checks of flow ownership.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/runtime/flow_steering.hpp"

namespace dpdk_net::multi_testing {

namespace net = boost::asio;
using error_code = boost::system::error_code;

inline stack::stack_config node_config(std::uint32_t last_octet) {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | last_octet};  // 198.18.0.x
  c.prefix_length = 24;
  c.tcp.sockets = 4096;
  c.arp.pending_per_entry = 64;  // bursts sent before ARP resolves (fragmented UDP) are kept
  return c;
}

inline net::ip::address_v4 node_ip(std::uint32_t last_octet) {
  return net::ip::address_v4(0xc6120000U | last_octet);
}

/// The byte at offset i of connection `id`'s stream.
inline char pattern(std::uint32_t id, std::size_t i) {
  return static_cast<char>((id * 131U + i * 7U + (i >> 9U)) & 0xffU);
}

/// What one node saw (filled from its workers; locked: real threads use it too).
struct tally {
  std::mutex lock;
  // (worker, remote address, remote port, local port) of every connection served or opened
  struct flow {
    std::size_t worker;
    std::uint32_t remote;
    std::uint16_t remote_port;
    std::uint16_t local_port;
    bool accepted;
  };
  std::vector<flow> flows;
  std::atomic<std::size_t> clients_done{0};
  std::atomic<std::size_t> clients_ok{0};
  std::atomic<std::size_t> bytes_echoed{0};
  std::vector<std::string> errors;
  void add(const flow& f) {
    const std::lock_guard<std::mutex> g(lock);
    flows.push_back(f);
  }
  void error(std::string e) {
    const std::lock_guard<std::mutex> g(lock);
    errors.push_back(std::move(e));
  }
};

inline net::awaitable<void> echo_session(tcp::socket s, tally* t) {
  std::array<char, 4096> buf{};
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    auto [wec, w] =
        co_await net::async_write(s, net::buffer(buf.data(), n), net::as_tuple(net::use_awaitable));
    if (wec) {
      co_return;
    }
    t->bytes_echoed += w;
  }
}

inline net::awaitable<void> accept_loop(tcp::acceptor* a, std::size_t worker, tally* t) {
  for (;;) {
    auto [ec, s] = co_await a->async_accept(net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    const auto r = s.remote_endpoint();
    t->add(tally::flow{worker, r.address().to_v4().to_uint(), r.port(), s.local_endpoint().port(),
                       true});
    net::co_spawn(s.get_executor(), echo_session(std::move(s), t), net::detached);
  }
}

/// Connects from the worker whose executor `ex` is, sends `bytes` of the pattern and checks the
/// echo byte for byte.
inline net::awaitable<void> echo_client(net::any_io_executor ex, std::size_t worker,
                                        tcp::endpoint peer, std::uint32_t id, std::size_t bytes,
                                        tally* t) {
  tcp::socket s(ex);
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (cec) {
    t->error("connect " + std::to_string(id) + ": " + cec.message());
    ++t->clients_done;
    co_return;
  }
  t->add(tally::flow{worker, peer.address().to_v4().to_uint(), peer.port(),
                     s.local_endpoint().port(), false});
  std::vector<char> out(bytes);
  for (std::size_t i = 0; i < bytes; ++i) {
    out[i] = pattern(id, i);
  }
  std::vector<char> in(bytes);
  auto [wec, w] = co_await net::async_write(s, net::buffer(out), net::as_tuple(net::use_awaitable));
  auto [rec, r] = co_await net::async_read(s, net::buffer(in), net::as_tuple(net::use_awaitable));
  if (wec || rec || w != bytes || r != bytes || in != out) {
    t->error("echo " + std::to_string(id) + ": " + wec.message() + " / " + rec.message() + " " +
             std::to_string(r) + " of " + std::to_string(bytes));
  } else {
    ++t->clients_ok;
  }
  ++t->clients_done;
}

/// Every flow the tally saw is owned (flow_steering) by the worker that handled it.
inline void expect_owned(const flow_steering& flows, tally& t, const std::string& where) {
  const std::lock_guard<std::mutex> g(t.lock);
  for (const tally::flow& f : t.flows) {
    const std::uint16_t owner =
        flows.flow_owner(6, wire::ipv4_address{f.remote}, f.remote_port, f.local_port);
    EXPECT_EQ(owner, f.worker) << where << ": a " << (f.accepted ? "served" : "opened")
                               << " flow (remote port " << f.remote_port << ", local port "
                               << f.local_port << ") handled on worker " << f.worker
                               << " but owned by " << owner;
  }
}

/// The pool's misuse counters stay 0.
inline void expect_clean_pool(buffer_pool& pool, const std::string& where) {
  if (auto* p = dynamic_cast<packet_pool*>(&pool)) {
    const packet_pool_stats s = p->stats();
    EXPECT_EQ(s.double_frees, 0U) << where;
    EXPECT_EQ(s.foreign_frees, 0U) << where;
    EXPECT_EQ(s.stale_frees, 0U) << where;
  }
}

}  // namespace dpdk_net::multi_testing
