// Zero heap allocations per segment in steady state, both stacks counted (counting_allocator):
// request/response over connections that go idle between requests (so their rings go back to
// the ring cache when drained and are taken again: from the cache, never the heap), and bulk
// transfer both ways on several connections at once. Two stacks back to back, no simulator (the
// simulator's own bookkeeping would be counted too).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "../counting_allocator.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "tcp_duo.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_zero_alloc_test {

using wire::ipv4_address;

const ipv4_address a_ip = ipv4_address::from_octets(198, 18, 1, 1);
const ipv4_address b_ip = ipv4_address::from_octets(198, 18, 1, 2);

stack_config config_for(ipv4_address ip, std::uint8_t mac_last) {
  stack_config c;
  c.mac = mac_address{{0x02, 0, 0, 0, 1, mac_last}};
  c.address = ip;
  c.tcp.send_buffer = c.tcp.receive_buffer = 64 * 1024;
  return c;
}

using testing::duo_byte;  // the streams' bytes

/// Two stacks (a: clients, b: a server on port 80) and the loop that moves frames between them.
/// Everything the loop and the applications use is allocated before a measurement starts.
class TcpZeroAlloc : public ::testing::Test {
 protected:
  static constexpr std::size_t max_connections = 64;

  TcpZeroAlloc() {
    clients_.reserve(max_connections);
    servers_.reserve(max_connections);
  }

  /// Moves frames both ways, gives the applications their turn, and advances the clock to the
  /// next deadline when the wire is idle, until done() or `limit`. Templated (no std::function)
  /// so the loop itself cannot allocate.
  template <class App, class Done>
  void run(time_ns limit, App&& app, Done&& done) {
    while (now_ <= limit) {
      bool moved = false;
      for (int dir = 0; dir < 2; ++dir) {
        stack& from = dir == 0 ? a_ : b_;
        stack& to = dir == 0 ? b_ : a_;
        std::size_t n = 0;
        while ((n = from.drain_tx(burst_, now_)) != 0) {
          for (std::size_t i = 0; i < n; ++i) {
            to.receive(std::move(burst_[i]), now_);
          }
          moved = true;
        }
      }
      accept_all();
      app();
      if (done()) {
        return;
      }
      if (!moved && a_.tx_pending() == 0 && b_.tx_pending() == 0) {
        const time_ns next = std::min(a_.next_deadline(), b_.next_deadline());
        if (next == UINT64_MAX || next > limit) {
          now_ = limit + 1;
          return;
        }
        now_ = std::max(now_ + 1, next);
        a_.advance(now_);
        b_.advance(now_);
      }
    }
  }
  /// Runs until nothing is due before `limit` (delayed ACKs sent, rings drained).
  void settle(time_ns limit) {
    run(
        limit, [] {}, [] { return false; });
  }

  /// Opens n connections a -> b and accepts them all.
  void open(std::size_t n) {
    ASSERT_FALSE(b_.tcp().open(listener_));
    ASSERT_FALSE(b_.tcp().bind(listener_, 80));
    ASSERT_FALSE(b_.tcp().listen(listener_, static_cast<std::uint32_t>(n)));
    for (std::size_t i = 0; i < n; ++i) {
      tcp_layer::socket_id c = 0;
      ASSERT_FALSE(a_.tcp().open(c));
      ASSERT_FALSE(a_.tcp().connect(c, tcp_endpoint{b_ip, 80}, now_));
      clients_.push_back(c);
    }
    run(
        now_ + 5 * second, [] {}, [&] { return servers_.size() == n; });
    ASSERT_EQ(servers_.size(), n);
    // Pair each client with its server by port (accept order need not be connect order).
    std::vector<tcp_layer::socket_id> ordered(n, tcp_layer::invalid_socket);
    for (const tcp_layer::socket_id s : servers_) {
      const std::uint16_t port = b_.tcp().remote_endpoint(s)->port;
      for (std::size_t i = 0; i < n; ++i) {
        if (a_.tcp().local_endpoint(clients_[i])->port == port) {
          ordered[i] = s;
        }
      }
    }
    servers_ = ordered;
  }

  void accept_all() {
    // Events are only drained here (the tests read by readable_bytes, not by event), so they
    // never pile up.
    std::size_t n = 0;
    while ((n = a_.poll_events(events_)) != 0) {
    }
    while ((n = b_.poll_events(events_)) != 0) {
    }
    tcp_layer::socket_id s = 0;
    while (listener_ != tcp_layer::invalid_socket && !b_.tcp().accept(listener_, s)) {
      servers_.push_back(s);
    }
  }

  packet_pool pool_a_{packet_pool_config{"za", 4096}};
  packet_pool pool_b_{packet_pool_config{"zb", 4096}};
  stack a_{config_for(a_ip, 1), pool_a_, stack_secret{11, 12}};
  stack b_{config_for(b_ip, 2), pool_b_, stack_secret{13, 14}};
  time_ns now_ = 0;
  std::array<packet, 32> burst_{};
  std::array<socket_event, 64> events_{};
  tcp_layer::socket_id listener_ = tcp_layer::invalid_socket;
  std::vector<tcp_layer::socket_id> clients_, servers_;
};

TEST_F(TcpZeroAlloc, RequestResponseOnConnectionsThatGoIdleAllocatesNothing) {
  // 64 connections; in each round every one sends a 100-byte request, gets a 1000-byte
  // response, and then sits idle long enough for the delayed ACKs to go: everything it sent is
  // acknowledged and everything it received read, so its rings are drained (and returned to the
  // cache). The next round takes them again. After two warm-up rounds, 20 rounds (1280
  // exchanges, thousands of segments) allocate nothing in either stack.
  constexpr std::size_t n = 64;
  constexpr std::size_t request = 100, response = 1000;
  open(n);
  ASSERT_EQ(clients_.size(), n);
  std::array<std::byte, request> req{};
  std::array<std::byte, response> resp{};
  std::array<std::byte, 2048> buf{};
  std::size_t responses = 0, served = 0, short_io = 0;
  const auto app = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      if (b_.tcp().readable_bytes(servers_[i]) >= request) {
        if (b_.tcp().receive(servers_[i], std::span(buf).first(request)).bytes != request ||
            b_.tcp().send(servers_[i], resp).bytes != response) {
          ++short_io;
        }
        ++served;
      }
      if (a_.tcp().readable_bytes(clients_[i]) >= response) {
        if (a_.tcp().receive(clients_[i], std::span(buf).first(response)).bytes != response) {
          ++short_io;
        }
        ++responses;
      }
    }
  };
  const auto round = [&] {
    const std::size_t target = responses + n;
    for (std::size_t i = 0; i < n; ++i) {
      if (a_.tcp().send(clients_[i], req).bytes != request) {
        ++short_io;
      }
    }
    run(now_ + 10 * second, app, [&] { return responses == target; });
    settle(now_ + 500 * millisecond);  // delayed ACKs out: every connection idle and drained
  };
  for (int i = 0; i < 2; ++i) {
    round();
  }
  ASSERT_EQ(responses, 2 * n);
  EXPECT_EQ(a_.counters().tcp.buffer_bytes, 0U) << "client rings held by idle connections";
  EXPECT_EQ(b_.counters().tcp.buffer_bytes, 0U) << "server rings held by idle connections";

  const tcp_counters a0 = a_.counters().tcp;
  const tcp_counters b0 = b_.counters().tcp;
  const std::uint64_t before = dpdk_net::test::allocation_count();
  constexpr int rounds = 20;
  for (int i = 0; i < rounds; ++i) {
    round();
  }
  const std::uint64_t allocations = dpdk_net::test::allocation_count() - before;
  const tcp_counters a1 = a_.counters().tcp;
  const tcp_counters b1 = b_.counters().tcp;

  EXPECT_EQ(responses, (2 + rounds) * n);
  EXPECT_EQ(served, (2 + rounds) * n);
  EXPECT_EQ(short_io, 0U);
  EXPECT_GE(a1.segments_out - a0.segments_out + b1.segments_out - b0.segments_out, 2U * rounds * n);
  EXPECT_EQ(allocations, 0U) << "mode " << dpdk_net::test::allocation_counting_mode();
  // The rings really went back and were taken again each round (the cache at work), and the
  // cache, not the heap, supplied them.
  EXPECT_GE(a1.buffers_taken - a0.buffers_taken, 2U * rounds * n) << "client rings not reused";
  EXPECT_GE(b1.buffers_taken - b0.buffers_taken, 2U * rounds * n) << "server rings not reused";
  EXPECT_EQ(a1.buffers_returned - a0.buffers_returned, a1.buffers_taken - a0.buffers_taken);
  EXPECT_EQ(b1.buffers_returned - b0.buffers_returned, b1.buffers_taken - b0.buffers_taken);
  EXPECT_EQ(a1.buffer_heap_allocations, a0.buffer_heap_allocations);
  EXPECT_EQ(b1.buffer_heap_allocations, b0.buffer_heap_allocations);
  EXPECT_EQ(a1.buffer_bytes + b1.buffer_bytes, 0U);
}

TEST_F(TcpZeroAlloc, BulkBothWaysOnSeveralConnectionsAllocatesNothing) {
  // 4 connections streaming both ways at once (checked bytes), 256 KiB each way each to warm
  // up, then 1 MiB more each way each: no allocation in either stack.
  constexpr std::size_t n = 4;
  open(n);
  ASSERT_EQ(clients_.size(), n);
  struct flow {
    std::uint64_t seed = 0;
    std::uint64_t sent = 0, got = 0, total = 0;
    std::uint64_t wrong = 0;
  };
  std::array<flow, 2 * n> flows{};  // [i]: client i -> server i; [n + i]: server i -> client i
  for (std::size_t i = 0; i < flows.size(); ++i) {
    flows[i].seed = 100 + i;
  }
  std::array<std::byte, 16 * 1024> buf{};
  const auto pump_flow = [&](flow& f, tcp_layer& tx, tcp_layer::socket_id from, tcp_layer& rx,
                             tcp_layer::socket_id to) {
    while (f.sent < f.total) {
      const std::size_t k = std::min<std::uint64_t>(buf.size(), f.total - f.sent);
      for (std::size_t j = 0; j < k; ++j) {
        buf[j] = duo_byte(f.seed, f.sent + j);
      }
      const io_result r = tx.send(from, std::span(buf).first(k));
      if (r.bytes == 0) {
        break;
      }
      f.sent += r.bytes;
    }
    for (;;) {
      const io_result r = rx.receive(to, buf);
      if (r.bytes == 0) {
        break;
      }
      for (std::size_t j = 0; j < r.bytes; ++j) {
        f.wrong += buf[j] != duo_byte(f.seed, f.got + j) ? 1 : 0;
      }
      f.got += r.bytes;
    }
  };
  const auto app = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      pump_flow(flows[i], a_.tcp(), clients_[i], b_.tcp(), servers_[i]);
      pump_flow(flows[n + i], b_.tcp(), servers_[i], a_.tcp(), clients_[i]);
    }
  };
  const auto all_done = [&] {
    for (const flow& f : flows) {
      if (f.got != f.total) {
        return false;
      }
    }
    return true;
  };
  for (flow& f : flows) {
    f.total = 256 * 1024;
  }
  run(now_ + 30 * second, app, all_done);
  ASSERT_TRUE(all_done());

  for (flow& f : flows) {
    f.total += 1 << 20;
  }
  const std::uint64_t segments0 = a_.counters().tcp.segments_in + b_.counters().tcp.segments_in;
  const std::uint64_t before = dpdk_net::test::allocation_count();
  run(now_ + 60 * second, app, all_done);
  const std::uint64_t allocations = dpdk_net::test::allocation_count() - before;
  ASSERT_TRUE(all_done());
  for (const flow& f : flows) {
    EXPECT_EQ(f.wrong, 0U) << "flow seed " << f.seed;
  }
  // 8 MiB in full-sized segments, plus their ACKs.
  EXPECT_GT(a_.counters().tcp.segments_in + b_.counters().tcp.segments_in - segments0, 5000U);
  EXPECT_EQ(allocations, 0U) << "mode " << dpdk_net::test::allocation_counting_mode();
}

}  // namespace tcp_zero_alloc_test
}  // namespace
}  // namespace dpdk_net::stack
