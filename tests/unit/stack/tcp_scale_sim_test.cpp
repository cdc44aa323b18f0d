// TCP at scale in the simulator: 10,000 concurrent connections between two of our stacks, each
// exchanging requests (tcp_rr_app), with the costs asserted as counts: one demux lookup per
// received segment, output visits only for connections that had output (an idle stretch visits
// none), no buffers held once every connection is idle, and a documented bound on what an idle
// connection costs in memory.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstdio>

#include "tcp_rr_app.hpp"

namespace dpdk_net::stack::test {
namespace {
namespace tcp_scale_sim_test {

/// The bound on an idle connection's memory: its slab slot and its share of the
/// connection tables, no buffers (an idle connection holds none).
constexpr std::size_t idle_connection_bound = 1024;

/// What one connection slot costs beside tcp_layer::idle_connection_bytes(), from the
/// tables' documented shapes (not from the stack's own accounting): the 4-tuple index
/// (detail::slot_index: bit_ceil(2 * entries) cells of a 32-bit slot and 32 bits of hash, for
/// sockets + TIME-WAIT records) shared among the sockets, the five per-slot id lists (pending
/// output, ARP wait, events, budget wait, extent-table wait: prev, next and a flag each, 12
/// bytes), the free-slot stack, and the preallocated pools shared among the sockets: SACK
/// scoreboards (16 ranges of 8 bytes, a count and a link) and zero-copy extent tables (8 runs of
/// 16 bytes, head, count and a link).
double table_bytes_per_connection(const tcp_config& t) {
  const std::size_t cells = std::bit_ceil(2 * (t.sockets + t.time_wait_records));
  const auto sockets = static_cast<double>(t.sockets);
  const double index = static_cast<double>(cells * 2 * sizeof(std::uint32_t)) / sockets;
  constexpr double id_lists = 5 * 12;
  constexpr double free_slot = sizeof(std::uint32_t);
  const double scoreboards =
      static_cast<double>(std::min<std::size_t>(t.sack_scoreboards, t.sockets) * (16 * 8 + 8)) /
      sockets;
  const double extent_tables =
      static_cast<double>(t.zero_copy_connections) * (8 * 16 + 3 * 4) / sockets;
  return index + id_lists + free_slot + scoreboards + extent_tables;
}

TEST(TcpScaleSim, TenThousandConnectionsExchangeRequestsWithFlatCounts) {
  constexpr std::size_t n = 10000;
  rr_setup setup;
  setup.connections = n;
  setup.seed = 10;
  // A 10 Gbit/s NIC with a 1024-frame tx ring: when 10,000 delayed ACKs fall due in one timer
  // tick, the device paces them (the stack keeps the rest on its pending-output list) instead
  // of throwing 10,000 frames at the peer's rx ring at one instant.
  setup.nic.line_rate_bps = 10'000'000'000;
  setup.nic.tx_ring = 1024;
  rr_world w(setup);

  w.client.open(n, 256);
  ASSERT_TRUE(w.run(60 * second)) << w.problems();
  ASSERT_EQ(w.client.connected(), n) << w.problems();
  // The handshakes' last ACKs may still be on the wire when the client has them all.
  ASSERT_TRUE(w.net.run_until([&] { return w.server.accepted() == n; }, w.net.now() + second));
  ASSERT_EQ(w.server.accepted(), n) << w.problems();

  // Two rounds: every connection sends two requests (1000 outstanding at a time), and goes
  // idle in between (its buffers returned, then taken again).
  const tcp_counters c0 = w.client.tcp().counters();
  const tcp_counters s0 = w.server.tcp().counters();
  w.client.exchange(2 * n, 1000);
  ASSERT_TRUE(w.run(60 * second)) << w.problems() << " completed " << w.client.completed();
  EXPECT_EQ(w.client.completed(), 2 * n);
  EXPECT_EQ(w.server.served(), 2 * n);
  EXPECT_EQ(w.client.failed(), 0U);
  EXPECT_EQ(w.problems(), "");
  // Let the last delayed ACKs go and land: then every connection is idle.
  w.net.run_for(1 * second);
  const tcp_counters c1 = w.client.tcp().counters();
  const tcp_counters s1 = w.server.tcp().counters();

  // One 4-tuple lookup per received segment, whatever the number of connections.
  EXPECT_EQ(c1.demux_lookups, c1.segments_in);
  EXPECT_EQ(s1.demux_lookups, s1.segments_in);
  // Output: each visit produced at least one segment (no idle connection visited), and the
  // exchanges sent what request/response needs (request, response, at most one ACK each way),
  // nothing per idle connection.
  const std::uint64_t requests = 2 * n;
  EXPECT_LE(c1.output_visits - c0.output_visits, c1.segments_out - c0.segments_out);
  EXPECT_LE(s1.output_visits - s0.output_visits, s1.segments_out - s0.segments_out);
  EXPECT_LE(c1.segments_out - c0.segments_out, 2 * requests);
  EXPECT_LE(s1.segments_out - s0.segments_out, 2 * requests);
  EXPECT_GE(s1.segments_out - s0.segments_out, requests) << "a response per request";
  EXPECT_EQ(c1.retransmits + s1.retransmits, 0U);

  // All 10,000 open and idle: nothing is visited, nothing sent, over a long idle stretch
  // (no keepalive configured: an idle connection has no timers either).
  EXPECT_EQ(w.client.tcp().connections(), n);
  EXPECT_EQ(w.server.tcp().connections(), n);
  EXPECT_FALSE(w.client.tcp().output_pending());
  EXPECT_FALSE(w.server.tcp().output_pending());
  w.net.run_for(30 * second);
  const tcp_counters c2 = w.client.tcp().counters();
  const tcp_counters s2 = w.server.tcp().counters();
  EXPECT_EQ(c2.output_visits - c1.output_visits, 0U);
  EXPECT_EQ(s2.output_visits - s1.output_visits, 0U);
  EXPECT_EQ(c2.segments_out + s2.segments_out, c1.segments_out + s1.segments_out);

  // Memory: an idle connection holds no buffers (the budget returns rings once drained)...
  EXPECT_EQ(c2.buffer_bytes, 0U) << "client: idle connections still hold ring bytes";
  EXPECT_EQ(s2.buffer_bytes, 0U) << "server: idle connections still hold ring bytes";
  // ...and its slot plus its share of the tables stays within the documented bound.
  const stack_config config = rr_stack_config({}, setup);
  const tcp_config& t = config.tcp;
  const double per_connection =
      static_cast<double>(tcp_layer::idle_connection_bytes()) + table_bytes_per_connection(t);
  EXPECT_LE(per_connection, static_cast<double>(idle_connection_bound))
      << "slot " << tcp_layer::idle_connection_bytes() << " + tables "
      << table_bytes_per_connection(t);
  RecordProperty("idle_connection_bytes", static_cast<int>(per_connection));
  std::printf("idle connection: %zu-byte slot + %.0f bytes of shared tables = %.0f bytes\n",
              tcp_layer::idle_connection_bytes(), table_bytes_per_connection(t), per_connection);
}

}  // namespace tcp_scale_sim_test
}  // namespace
}  // namespace dpdk_net::stack::test
