// Shared by the multi-core runtime's real-thread tests (multi_thread_test.cpp,
// multi_thread_api_test.cpp): two multi_runtimes joined by a ring_link (a thread-safe
// multi-queue in-memory device pair), each worker on its own thread, and waiting helpers. Every
// wait has a deadline; on failure the workers are stopped and joined before anything they use
// goes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/multi_acceptor.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/cpu_affinity.hpp"
#include "dpdk_net/memory_device.hpp"
#include "dpdk_net/ring_device.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "multi_common.hpp"

namespace dpdk_net::multi_testing {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

/// Polls pred every millisecond until it holds or `limit` has passed.
inline bool wait_until(const std::function<bool()>& pred, milliseconds limit) {
  const auto end = steady::now() + limit;
  while (!pred()) {
    if (steady::now() > end) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

inline double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

inline multi_runtime_options floating(std::uint16_t workers) {
  multi_runtime_options o;
  o.workers = workers;
  o.pin = false;  // --no-pin: the test machine's cores are shared
  return o;
}

inline ring_link_config small_link(std::uint16_t queues, ring_steering steering) {
  ring_link_config c;
  c.queues = queues;
  c.steering = steering;
  c.pool_size = 2048;
  c.ring_size = 512;
  return c;
}

/// The workers' hand-over counters, summed (relaxed atomics: readable while the workers run,
/// unlike the loop counters of stats()).
inline mesh_counters sum(multi_runtime& rt) {
  mesh_counters s;
  for (std::size_t i = 0; i < rt.size(); ++i) {
    s += rt.mesh().counters(static_cast<std::uint16_t>(i));
  }
  return s;
}

/// Stops and joins a pair's workers when a test leaves (an ASSERT included), before the locals
/// they use go: declare it after them.
struct stop_on_exit {
  struct thread_pair* p;
  ~stop_on_exit();
};

/// Nothing is on its way between rt's workers: what was handed out was handed in.
inline bool balanced(multi_runtime& rt) {
  const mesh_counters c = sum(rt);
  return c.handed_out + c.arp_copies + c.datagrams_out == c.handed_in;
}

inline std::string first_error(tally& t) {
  const std::lock_guard<std::mutex> g(t.lock);
  return t.errors.empty() ? "" : t.errors.front();
}

/// Two multi_runtimes on a ring_link: end a (198.18.0.1) and end b (198.18.0.2). I/O objects
/// made on the main thread go in `acceptors`/`sockets` (destroyed after the workers joined).
struct thread_pair {
  thread_pair(const ring_link_config& config, std::uint16_t workers_a, std::uint16_t workers_b)
      : link(config) {
    // Both before either starts: each programs its device's RSS (ring_device: before the peer's
    // tx threads run).
    a.emplace(link.a(), node_config(1), floating(workers_a));
    b.emplace(link.b(), node_config(2), floating(workers_b));
  }
  thread_pair(const thread_pair&) = delete;
  thread_pair& operator=(const thread_pair&) = delete;
  ~thread_pair() { finish(); }

  void start() {
    a->start();
    b->start();
  }
  void stop() {
    if (a) {
      a->stop();
    }
    if (b) {
      b->stop();
    }
    if (a) {
      a->join();
    }
    if (b) {
      b->join();
    }
  }
  /// Stops and joins the workers, destroys the I/O objects (no worker runs: the main thread
  /// may), then the runtimes. The link stays (its pools can be checked).
  void finish() {
    stop();
    acceptors.clear();
    sockets.clear();
    a.reset();
    b.reset();
  }
  /// A listener on port 7 on every worker of rt, each with its accept loop (echo sessions).
  void listen_everywhere(multi_runtime& rt, tally& t) {
    for (std::size_t k = 0; k < rt.size(); ++k) {
      acceptors.push_back(std::make_unique<tcp::acceptor>(
          rt.get_executor(k), tcp::endpoint(net::ip::address_v4::any(), 7)));
      net::co_spawn(rt.get_executor(k), accept_loop(acceptors.back().get(), k, &t), net::detached);
    }
  }
  /// `per_worker` echo clients from every worker of rt to the other end.
  std::size_t connect_everywhere(multi_runtime& rt, std::uint32_t peer_octet,
                                 std::size_t per_worker, std::size_t bytes, std::uint32_t id_base,
                                 tally& t) {
    std::size_t n = 0;
    for (std::size_t k = 0; k < rt.size(); ++k) {
      for (std::size_t i = 0; i < per_worker; ++i) {
        const auto id = static_cast<std::uint32_t>(id_base + k * 100 + i);
        net::co_spawn(rt.get_executor(k),
                      echo_client(rt.get_executor(k), k, tcp::endpoint(node_ip(peer_octet), 7), id,
                                  bytes, &t),
                      net::detached);
        ++n;
      }
    }
    return n;
  }
  /// Waits (running) until the link is quiet: every frame sent was received, every hand-over
  /// taken, and nothing moved for 50 ms. The last frames of a closing connection may still be
  /// on their way when the clients are done; the mesh counters balance only once they arrived.
  bool quiet(milliseconds limit) {
    std::array<std::uint64_t, 4> last{};
    int stable = 0;
    return wait_until(
        [&] {
          std::this_thread::sleep_for(milliseconds(9));
          const device_stats sa = link.a().stats();
          const device_stats sb = link.b().stats();
          const std::array<std::uint64_t, 4> now{sa.tx_packets, sa.rx_packets, sb.tx_packets,
                                                 sb.rx_packets};
          const bool settled = sa.tx_packets == sb.rx_packets && sb.tx_packets == sa.rx_packets &&
                               balanced(*a) && balanced(*b);
          stable = settled && now == last ? stable + 1 : 0;
          last = now;
          return stable >= 5;
        },
        limit);
  }
  void expect_clean_pools(const std::string& where) {
    for (ring_device* d : {&link.a(), &link.b()}) {
      for (std::uint16_t q = 0; q < link.config().queues; ++q) {
        expect_clean_pool(d->pool(q), where + " queue " + std::to_string(q));
        // Everything came back: the stacks, the hand-over rings and the sockets are gone.
        EXPECT_EQ(d->pool(q).available(), d->pool(q).capacity())
            << where << ": queue " << q << " leaked buffers";
      }
    }
  }

  ring_link link;
  std::optional<multi_runtime> a;
  std::optional<multi_runtime> b;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::unique_ptr<tcp::socket>> sockets;
};

inline stop_on_exit::~stop_on_exit() {
  p->stop();
}

}  // namespace dpdk_net::multi_testing
