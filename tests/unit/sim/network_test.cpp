// The simulated network: links, switches, RSS, partitions, hosts, clocks, scripted rules.
#include "dpdk_net/sim/network.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "dpdk_net/rss.hpp"
#include "sim_frames.hpp"

namespace dpdk_net::sim {
namespace {
namespace network_test {

using namespace test;

struct pair_net {
  network net;
  host& a;
  host& b;
  sim_nic& na;
  sim_nic& nb;
  explicit pair_net(std::uint64_t seed, const link_config& c = {}, const nic_config& nc = {})
      : net(seed),
        a(net.add_host("a")),
        b(net.add_host("b")),
        na(net.add_nic(a, nc)),
        nb(net.add_nic(b, nc)) {
    net.connect(na, nb, c);
  }
};

TEST(SimNetwork, FramesArriveAfterTheLinkDelayAndWakeTheHost) {
  link_config c;
  c.delay = 250 * microsecond;
  pair_net p(1, c);
  std::vector<time_ns> woke_at;
  p.b.on_receive = [&](host&) {
    woke_at.push_back(p.net.now());
    EXPECT_EQ(drain(p.nb), (std::vector<std::uint32_t>{7}));
  };
  send(p.na, udp_frame(p.na, p.nb, 7));
  p.net.run_for(second);
  EXPECT_EQ(woke_at, (std::vector<time_ns>{250 * microsecond}));
  EXPECT_EQ(p.na.stats().tx_packets, 1U);
  EXPECT_EQ(p.nb.stats().rx_packets, 1U);
  EXPECT_EQ(p.nb.info().mac, (mac_address{{0x02, 0, 0, 0, 1, 0}}));
  EXPECT_EQ(p.na.name(), "a.eth0");
  EXPECT_NE(p.net.direction("a.eth0>b.eth0"), nullptr);
}

TEST(SimNetwork, SwitchFloodsUnknownThenLearns) {
  network net(2);
  sim_switch& sw = net.add_switch("sw");
  std::vector<sim_nic*> nics;
  for (const char* name : {"h0", "h1", "h2"}) {
    sim_nic& n = net.add_nic(net.add_host(name));
    net.connect(n, sw);
    nics.push_back(&n);
  }
  send(*nics[0], udp_frame(*nics[0], *nics[1], 1));  // h1 unknown: flooded to h1 and h2
  net.run_for(millisecond);
  EXPECT_EQ(drain(*nics[1]).size(), 1U);
  EXPECT_EQ(drain(*nics[2]).size(), 1U);  // h2 saw the flood (and ignores it)
  EXPECT_EQ(sw.flooded(), 1U);
  send(*nics[1], udp_frame(*nics[1], *nics[0], 2));  // h0 learned: unicast
  net.run_for(millisecond);
  EXPECT_EQ(drain(*nics[0]), (std::vector<std::uint32_t>{2}));
  EXPECT_TRUE(drain(*nics[2]).empty());
  send(*nics[0], udp_frame(*nics[0], *nics[1], 3));  // h1 learned now too
  net.run_for(millisecond);
  EXPECT_EQ(drain(*nics[1]), (std::vector<std::uint32_t>{3}));
  EXPECT_TRUE(drain(*nics[2]).empty());
  EXPECT_EQ(sw.flooded(), 1U);
}

TEST(SimNetwork, RssSpreadsFlowsAndKeepsEachFlowOnOneQueue) {
  nic_config nc;
  nc.queues = 4;
  pair_net p(3, {}, nc);
  std::map<std::uint16_t, std::set<std::uint16_t>> queues_of_port;
  std::array<packet, 256> in;
  for (std::uint16_t port = 1000; port < 1064; ++port) {
    for (int k = 0; k < 3; ++k) {
      send(p.na, udp_frame(p.na, p.nb, k, port, 80));
    }
  }
  p.net.run_for(millisecond);
  std::size_t total = 0;
  for (std::uint16_t q = 0; q < 4; ++q) {
    const std::size_t n = p.nb.rx_burst(q, in);
    total += n;
    ASSERT_LT(n, in.size());
    for (std::size_t i = 0; i < n; ++i) {
      const auto d = wire::decode_frame(in[i].front());
      ASSERT_TRUE(d.udp);
      ASSERT_TRUE(in[i].meta().rss_hash_valid);
      // The hash is the Toeplitz 4-tuple hash, and the queue is reta[hash % 128].
      const std::uint32_t h = rss_hash_ipv4_l4(default_rss_key, d.ipv4->src, d.ipv4->dst,
                                               d.udp->src_port, d.udp->dst_port);
      EXPECT_EQ(in[i].meta().rss_hash, h);
      EXPECT_EQ(q, (h % 128) % 4);
      EXPECT_EQ(in[i].meta().queue, q);
      queues_of_port[d.udp->src_port].insert(q);
    }
    free_burst(std::span(in.data(), n));
  }
  EXPECT_EQ(total, 64U * 3U);
  std::set<std::uint16_t> used;
  for (const auto& [port, qs] : queues_of_port) {
    EXPECT_EQ(qs.size(), 1U) << port;  // a flow never moves
    used.insert(*qs.begin());
  }
  EXPECT_EQ(used.size(), 4U);  // 64 flows use all four queues

  // Steer everything to queue 2 through the redirection table.
  rss_config cfg = p.nb.rss();
  std::fill(cfg.reta.begin(), cfg.reta.end(), 2);
  ASSERT_FALSE(p.nb.configure_rss(cfg));
  send(p.na, udp_frame(p.na, p.nb, 9, 4242, 80));
  p.net.run_for(millisecond);
  EXPECT_EQ(p.nb.rx_pending(2), 1U);
  cfg.reta[0] = 9;  // no queue 9
  EXPECT_EQ(p.nb.configure_rss(cfg), std::make_error_code(std::errc::invalid_argument));
}

TEST(SimNetwork, RxRingOverflowIsCountedAndLogged) {
  nic_config nc;
  nc.rx_ring = 8;
  pair_net p(4, {}, nc);
  for (std::uint32_t i = 0; i < 20; ++i) {
    send(p.na, udp_frame(p.na, p.nb, i));
  }
  p.net.run_for(millisecond);  // b has no on_receive: nothing drains the ring
  EXPECT_EQ(p.nb.rx_pending(0), 8U);
  EXPECT_EQ(p.nb.stats().rx_dropped, 12U);
  EXPECT_EQ(std::count_if(p.net.event_log().begin(), p.net.event_log().end(),
                          [](const event_record& e) { return e.what == fault::rx_full; }),
            12);
}

TEST(SimPartition, SymmetricOneWayScheduledAndFlapping) {
  network net(5);
  host& a = net.add_host("a");
  host& b = net.add_host("b");
  host& c = net.add_host("c");
  EXPECT_FALSE(net.blocked(a, b));
  const std::size_t both = net.partition({&a}, {&b, &c});
  EXPECT_TRUE(net.blocked(a, b));
  EXPECT_TRUE(net.blocked(c, a));
  EXPECT_FALSE(net.blocked(b, c));
  net.heal(both);
  EXPECT_FALSE(net.blocked(a, b));

  partition_options one_way;
  one_way.one_way = true;
  net.partition({&a}, {&b}, one_way);
  EXPECT_TRUE(net.blocked(a, b));
  EXPECT_FALSE(net.blocked(b, a));

  partition_options later;
  later.start = 10 * millisecond;
  later.end = 20 * millisecond;
  net.partition({&b}, {&c}, later);
  EXPECT_FALSE(net.blocked(b, c));
  net.run_for(15 * millisecond);
  EXPECT_TRUE(net.blocked(b, c));
  net.run_for(10 * millisecond);
  EXPECT_FALSE(net.blocked(b, c));

  partition_options flap;
  flap.start = net.now();
  flap.flap_down = millisecond;
  flap.flap_up = 3 * millisecond;
  net.partition({&c}, {&a}, flap);
  int down = 0;
  for (int i = 0; i < 400; ++i) {  // 400 samples, 100 us apart, over 10 cycles
    down += net.blocked(c, a) ? 1 : 0;
    net.run_for(100 * microsecond);
  }
  EXPECT_EQ(down, 100);  // a quarter of the time
}

TEST(SimPartition, FramesAcrossAPartitionAreDroppedAndLogged) {
  pair_net p(6);
  blaster traffic(p.net, p.na, p.nb);
  partition_options o;
  o.start = 10 * millisecond;
  o.end = 20 * millisecond;
  p.net.partition({&p.a}, {&p.b}, o);
  traffic.start(30, millisecond);  // one frame per ms for 30 ms
  p.net.run_for(100 * millisecond);
  // Frames sent at 10..19 ms arrive 10 us later, inside the partition: 10 lost.
  EXPECT_EQ(traffic.received.size(), 20U);
  EXPECT_EQ(std::count(traffic.received.begin(), traffic.received.end(), 15U), 0);
  EXPECT_EQ(std::count_if(p.net.event_log().begin(), p.net.event_log().end(),
                          [](const event_record& e) { return e.what == fault::partition; }),
            10);
}

TEST(SimHost, PauseDefersCrashDiscardsRestartRecovers) {
  pair_net p(7);
  blaster traffic(p.net, p.na, p.nb);
  int timers = 0;
  p.b.after(5 * millisecond, [&] { ++timers; });
  p.net.run_for(millisecond);
  p.b.pause();
  traffic.start(3, millisecond);
  p.net.run_for(10 * millisecond);
  EXPECT_TRUE(traffic.received.empty());  // paused: frames wait in the ring
  EXPECT_EQ(timers, 0);                   // the 5 ms timer fired while paused: deferred
  EXPECT_EQ(p.nb.rx_pending(0), 3U);
  p.b.resume();
  p.net.run_for(millisecond);
  EXPECT_EQ(timers, 1);
  EXPECT_EQ(traffic.received.size(), 3U);

  p.b.after(5 * millisecond, [&] { ++timers; });
  p.b.crash();
  EXPECT_FALSE(p.nb.link().up);
  traffic.start(2, millisecond);
  p.net.run_for(10 * millisecond);
  EXPECT_EQ(timers, 1);  // discarded by the crash
  EXPECT_EQ(traffic.received.size(), 3U);
  EXPECT_EQ(std::count_if(p.net.event_log().begin(), p.net.event_log().end(),
                          [](const event_record& e) { return e.what == fault::host_down; }),
            2);
  int restarts = 0;
  p.b.on_restart = [&](host&) { ++restarts; };
  p.b.restart();
  EXPECT_EQ(restarts, 1);
  traffic.start(1, millisecond);
  p.net.run_for(10 * millisecond);
  EXPECT_EQ(traffic.received.size(), 4U);
}

TEST(SimHost, ACallbackThatPausesAgainKeepsTheRestDeferred) {
  network net(12);
  host& h = net.add_host("h");
  std::vector<int> ran;
  h.after(millisecond, [&] {
    ran.push_back(1);
    h.pause();  // the second timer must wait for the next resume, not vanish
  });
  h.after(millisecond, [&] { ran.push_back(2); });
  h.pause();
  net.run_for(5 * millisecond);
  h.resume();
  EXPECT_EQ(ran, (std::vector<int>{1}));
  EXPECT_EQ(h.status(), host::state::paused);
  h.resume();
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
}

TEST(SimNetwork, RunUntilWithoutDeadlineStopsWhenNothingIsLeft) {
  network net(13);
  bool done = false;
  net.events().after(millisecond, [&] { done = true; });
  EXPECT_TRUE(net.run_until([&] { return done; }, UINT64_MAX));
  EXPECT_FALSE(net.run_until([] { return false; }, UINT64_MAX));  // returns, does not spin
  net.events().after(UINT64_MAX, [] {});                          // saturates, no wrap-around
  EXPECT_EQ(net.events().next_event_time(), UINT64_MAX);
}

TEST(SimHost, ClockSkewAndDrift) {
  network net(8);
  host_config fast;
  fast.clock_offset = 5 * second;
  fast.drift_ppm = 100;  // 100 us per second fast
  host& h = net.add_host("fast", fast);
  host& plain = net.add_host("plain");
  net.run_for(10 * second);
  EXPECT_EQ(plain.local_now(), 10 * second);
  EXPECT_EQ(h.local_now(), 5 * second + 10 * second + millisecond);
  // A 1 s timer on the fast clock fires after 1 s / 1.0001 of simulated time.
  time_ns fired = 0;
  h.after(second, [&] { fired = net.now(); });
  net.run_for(2 * second);
  const time_ns expected = 10 * second + static_cast<time_ns>(1e9 / 1.0001 + 0.5);
  EXPECT_EQ(fired, expected);
}

TEST(SimRules, DropTheThirdSynFromA) {
  pair_net p(9);
  link_rule r;
  r.description = "drop the 3rd TCP segment with SYN from a";
  r.match = match::tcp(wire::tcp_flag::syn);
  r.nth = 3;
  p.net.direction("a.eth0>b.eth0")->add_rule(r);
  std::vector<std::uint32_t> got;
  p.b.on_receive = [&](host&) {
    for (std::uint32_t s : drain(p.nb)) {
      got.push_back(s);
    }
  };
  for (std::uint32_t i = 1; i <= 5; ++i) {
    send(p.na, tcp_frame(p.na, p.nb, wire::tcp_flag::syn, i));
    send(p.na, tcp_frame(p.na, p.nb, wire::tcp_flag::ack, 100 + i));
  }
  p.net.run_for(millisecond);
  EXPECT_EQ(got, (std::vector<std::uint32_t>{1, 101, 2, 102, 103, 4, 104, 5, 105}));
}

TEST(SimRules, BlackholeAcksBetweenT1AndT2) {
  pair_net p(10);
  link_rule r;
  r.match = match::tcp(wire::tcp_flag::ack);
  r.from = 10 * millisecond;
  r.until = 20 * millisecond;
  p.net.direction("b.eth0>a.eth0")->add_rule(r);
  std::vector<std::uint32_t> got;
  p.a.on_receive = [&](host&) {
    for (std::uint32_t s : drain(p.na)) {
      got.push_back(s);
    }
  };
  for (std::uint32_t ms = 0; ms < 30; ++ms) {
    p.net.events().at(ms * millisecond,
                      [&p, ms] { send(p.nb, tcp_frame(p.nb, p.na, wire::tcp_flag::ack, ms)); });
  }
  p.net.events().at(15 * millisecond, [&p] {
    send(p.nb, tcp_frame(p.nb, p.na, wire::tcp_flag::syn, 999));  // not an ACK: passes
  });
  p.net.run_for(100 * millisecond);
  EXPECT_EQ(got.size(), 21U);
  for (std::uint32_t ms = 10; ms < 20; ++ms) {
    EXPECT_EQ(std::count(got.begin(), got.end(), ms), 0) << ms;
  }
  EXPECT_EQ(std::count(got.begin(), got.end(), 999U), 1);
}

TEST(SimNetwork, CorruptedFramesFailTheirChecksums) {
  link_config c;
  c.corrupt = 0.5;
  pair_net p(11, c);
  blaster traffic(p.net, p.na, p.nb);
  traffic.start(400, 10 * microsecond);
  p.net.run_for(100 * millisecond);
  ASSERT_EQ(traffic.received.size(), 400U);
  const auto bad = std::count(traffic.received.begin(), traffic.received.end(), UINT32_MAX);
  const auto corrupted = p.net.direction("a.eth0>b.eth0")->counters().corrupted;
  EXPECT_GT(corrupted, 150U);
  // A flipped bit in a MAC address or the IP ID is not caught by any checksum; most are.
  EXPECT_GT(bad, static_cast<long>(corrupted) / 2);
  EXPECT_LE(bad, static_cast<long>(corrupted));
}

}  // namespace network_test
}  // namespace
}  // namespace dpdk_net::sim
