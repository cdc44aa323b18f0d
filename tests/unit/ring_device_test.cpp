// ring_device, one thread: configuration, steering, back-pressure, misuse.
#include "ring_device_util.hpp"

namespace dpdk_net {
namespace {
namespace ring_device_test {

using namespace ring_testing;

TEST(RingDevice, RejectsBadConfig) {
  const auto bad = [](auto change) {
    ring_link_config c;
    change(c);
    EXPECT_THROW(ring_link{c}, std::invalid_argument);
  };
  bad([](ring_link_config& c) { c.queues = 0; });
  bad([](ring_link_config& c) { c.queues = 65; });
  bad([](ring_link_config& c) { c.ring_size = 0; });
  bad([](ring_link_config& c) { c.ring_size = (std::size_t{1} << 20U) + 1; });
  bad([](ring_link_config& c) { c.pool_size = 0; });
  bad([](ring_link_config& c) { c.mtu = 67; });
  // 64 x 64 rings of 2^20 jumbo slots: refused before anything is allocated.
  bad([](ring_link_config& c) {
    c.queues = 64;
    c.ring_size = std::size_t{1} << 20U;
    c.mtu = 9000;
  });
  ring_link_config ok;
  ok.queues = 64;
  ok.ring_size = 3;  // rounded up to 4
  ok.pool_size = 8;
  ok.mtu = 68;
  EXPECT_NO_THROW(ring_link{ok});
}

TEST(RingDevice, DescribesItself) {
  ring_link_config c = small(3);
  c.mtu = 9000;
  ring_link link(c);
  const device_info& a = link.a().info();
  EXPECT_EQ(a.rx_queues, 3);
  EXPECT_EQ(a.tx_queues, 3);
  EXPECT_EQ(a.mtu, 9000);
  EXPECT_EQ(a.mac, c.mac_a);
  EXPECT_EQ(link.b().info().mac, c.mac_b);
  EXPECT_NE(a.name, link.b().info().name);
  EXPECT_TRUE(a.thread_safe_queues);
  EXPECT_FALSE(a.tx_multi_segment);
  EXPECT_EQ(a.tx_offloads.bits(), 0U);
  EXPECT_EQ(a.rx_offloads.bits(), 0U);
  EXPECT_EQ(a.rss.hash_types, rss_hash::ipv4 | rss_hash::tcp_ipv4 | rss_hash::udp_ipv4);
  EXPECT_EQ(a.rss.key_size, 40);
  EXPECT_EQ(a.rss.reta_size, 128);
  EXPECT_TRUE(link.a().link().up);
  EXPECT_EQ(link.a().rx_wait_handle(2).mode, wait_handle::kind::poll);
  EXPECT_EQ(link.a().max_frame(), 9022U);

  const rss_config r = link.b().rss();
  EXPECT_EQ(r.hash_types, a.rss.hash_types);
  EXPECT_TRUE(
      std::equal(r.key.begin(), r.key.end(), default_rss_key.begin(), default_rss_key.end()));
  ASSERT_EQ(r.reta.size(), 128U);
  for (std::size_t i = 0; i < r.reta.size(); ++i) {
    EXPECT_EQ(r.reta[i], i % 3);
  }
  // Pools: one per queue, buffers holding a max frame after the headroom.
  for (std::uint16_t q = 0; q < 3; ++q) {
    EXPECT_EQ(&link.a().tx_pool(q), &link.a().pool(q));
    EXPECT_EQ(link.a().pool(q).capacity(), c.pool_size);
    const packet_pool_config& pc = link.a().pool(q).config();
    EXPECT_GE(pc.buffer_size - pc.headroom, 9022U);
  }
  EXPECT_NE(&link.a().pool(0), &link.a().pool(1));
  EXPECT_NE(&link.a().pool(0), &link.b().pool(0));

  for (ring_steering s : {ring_steering::same_queue, ring_steering::queue0}) {
    c.steering = s;
    ring_link plain(c);
    EXPECT_EQ(plain.a().info().rss.hash_types, 0U);
    EXPECT_EQ(plain.a().info().rss.reta_size, 0U);
    EXPECT_EQ(plain.a().rss().hash_types, 0U);
    EXPECT_TRUE(plain.a().rss().reta.empty());
    EXPECT_EQ(plain.a().configure_rss(r), std::make_error_code(std::errc::not_supported));
  }
}

TEST(RingDevice, SameQueueSteeringBothWays) {
  const ring_link_config c = small(3, ring_steering::same_queue);
  ring_link link(c);
  for (ring_device* from : {&link.a(), &link.b()}) {
    ring_device* to = from == &link.a() ? &link.b() : &link.a();
    for (std::uint16_t q = 0; q < 3; ++q) {
      frame_spec f;
      f.sport = static_cast<std::uint16_t>(5000 + q);  // any flow: no hashing
      f.tag = 100U + q;
      ASSERT_EQ(send(*from, q, make(*from, q, build(f))), 1U);
    }
    for (std::uint16_t q = 0; q < 3; ++q) {
      EXPECT_EQ(to->rx_pending(q), 1U);
      std::vector<packet> got = drain(*to, q);
      ASSERT_EQ(got.size(), 1U);
      frame_spec f;
      f.sport = static_cast<std::uint16_t>(5000 + q);
      f.tag = 100U + q;
      EXPECT_EQ(bytes_of(got[0]), build(f));
      EXPECT_EQ(got[0].meta().queue, q);
      EXPECT_FALSE(got[0].meta().rss_hash_valid);
      EXPECT_EQ(got[0].head()->pool, &to->pool(q));  // received into the receiving queue's pool
      EXPECT_EQ(to->queue_stats(q).rx_packets, 1U);
      EXPECT_EQ(from->queue_stats(q).tx_packets, 1U);
      EXPECT_EQ(from->queue_stats(q).tx_bytes, build(f).size());
    }
  }
  EXPECT_EQ(link.a().stats().tx_packets, 3U);
  EXPECT_EQ(link.a().stats().rx_packets, 3U);
  EXPECT_EQ(link.b().stats().rx_bytes, link.a().stats().tx_bytes);
  expect_pools_clean(link);
}

TEST(RingDevice, Queue0SteeringAndFairPolling) {
  const ring_link_config c = small(3, ring_steering::queue0);
  ring_link link(c);
  // Two senders, 8 frames each, all bound for rx queue 0 of b.
  for (std::uint16_t q = 1; q < 3; ++q) {
    for (std::uint32_t i = 0; i < 8; ++i) {
      frame_spec f;
      f.tag = q * 100U + i;
      ASSERT_EQ(send(link.a(), q, make(link.a(), q, build(f))), 1U);
    }
  }
  EXPECT_EQ(link.b().rx_pending(0), 16U);
  EXPECT_EQ(link.b().rx_pending(1), 0U);
  std::array<packet, 1> one;
  EXPECT_EQ(link.b().rx_burst(1, one), 0U);
  EXPECT_EQ(link.b().rx_burst(2, one), 0U);
  // Each call starts one ring further: bursts of 4 alternate between the senders.
  std::array<packet, 4> out;
  std::vector<std::uint32_t> senders;
  std::vector<std::uint32_t> next(3, 0);
  for (std::size_t n; (n = link.b().rx_burst(0, out)) != 0;) {
    ASSERT_EQ(n, 4U);
    const std::uint32_t sender = udp_tag(out[0]) / 100;
    senders.push_back(sender);
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ(out[i].meta().queue, 0);
      EXPECT_EQ(udp_tag(out[i]) / 100, sender);
      EXPECT_EQ(udp_tag(out[i]) % 100, next[sender]++);  // in order per sender
      out[i].reset();
    }
  }
  EXPECT_EQ(senders.size(), 4U);
  for (std::size_t i = 1; i < senders.size(); ++i) {
    EXPECT_NE(senders[i], senders[i - 1]) << "rx_burst starved a sender";
  }
  EXPECT_EQ(next[1], 8U);
  EXPECT_EQ(next[2], 8U);
  expect_pools_clean(link);
}

TEST(RingDevice, RssSteersLikeANic) {
  ring_link link(small(4));
  struct expected {
    std::vector<std::byte> bytes;
    std::uint16_t queue;
    bool hashed;
    std::uint32_t hash;
  };
  std::vector<expected> frames;
  const std::span<const std::uint8_t> key(default_rss_key);
  std::array<std::size_t, 4> per_queue{};
  for (std::uint16_t i = 0; i < 64; ++i) {
    frame_spec f;
    f.protocol = i % 2 == 0 ? proto_tcp : proto_udp;
    f.src = ipv4_address::from_octets(198, 18, 0, static_cast<std::uint8_t>(1 + i % 7));
    f.sport = static_cast<std::uint16_t>(40000 + i * 37);
    f.dport = static_cast<std::uint16_t>(80 + i % 3);
    f.vlan = i % 5 == 0;
    const std::uint32_t h = rss_hash_ipv4_l4(key, f.src, f.dst, f.sport, f.dport);
    frames.push_back({build(f), default_queue(h, 4), true, h});
    ++per_queue[default_queue(h, 4)];
  }
  for (std::size_t n : per_queue) {
    EXPECT_GT(n, 0U);  // the flows spread over every queue
  }
  // Address pair only: ICMP, and fragments of TCP/UDP (MF set, or an offset).
  frame_spec icmp;
  icmp.protocol = proto_icmp;
  icmp.src = ipv4_address::from_octets(198, 18, 7, 7);
  const std::uint32_t h2 = rss_hash_ipv4(key, icmp.src, icmp.dst);
  frames.push_back({build(icmp), default_queue(h2, 4), true, h2});
  for (std::uint16_t frag : {std::uint16_t{0x2000}, std::uint16_t{0x0010}}) {
    frame_spec f;
    f.protocol = frag == 0x2000 ? proto_udp : proto_tcp;
    f.src = ipv4_address::from_octets(198, 18, 9, static_cast<std::uint8_t>(frag & 0xffU));
    f.frag = frag;
    const std::uint32_t h = rss_hash_ipv4(key, f.src, f.dst);
    ASSERT_NE(h, rss_hash_ipv4_l4(key, f.src, f.dst, f.sport, f.dport));
    frames.push_back({build(f), default_queue(h, 4), true, h});
  }
  frames.push_back({arp_frame(), 0, false, 0});  // not IPv4: queue 0, no hash

  std::array<std::vector<const expected*>, 4> want;
  for (const expected& e : frames) {
    // Sent from tx queue 3 regardless: steering depends on the frame only.
    ASSERT_EQ(send(link.a(), 3, make(link.a(), 3, e.bytes)), 1U);
    want[e.queue].push_back(&e);
  }
  for (std::uint16_t q = 0; q < 4; ++q) {
    std::vector<packet> got = drain(link.b(), q);
    ASSERT_EQ(got.size(), want[q].size()) << "queue " << q;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(bytes_of(got[i]), want[q][i]->bytes);
      EXPECT_EQ(got[i].meta().queue, q);
      EXPECT_EQ(got[i].meta().rss_hash_valid, want[q][i]->hashed);
      if (want[q][i]->hashed) {
        EXPECT_EQ(got[i].meta().rss_hash, want[q][i]->hash);
      }
    }
    EXPECT_EQ(link.b().queue_stats(q).rx_packets, want[q].size());
  }
  EXPECT_EQ(link.a().queue_stats(3).tx_packets, frames.size());
  EXPECT_EQ(link.a().stats().tx_packets, frames.size());
  expect_pools_clean(link);
}

TEST(RingDevice, FullRingPushesBackAndKeepsOrder) {
  ring_link_config c = small(1);
  c.ring_size = 3;  // 4 slots
  ring_link link(c);
  std::array<packet, 10> burst;
  for (std::uint32_t i = 0; i < burst.size(); ++i) {
    frame_spec f;
    f.tag = i;
    burst[i] = make(link.a(), 0, build(f));
  }
  EXPECT_EQ(link.a().tx_burst(0, burst), 4U);
  EXPECT_EQ(link.a().stats().tx_busy, 6U);
  EXPECT_EQ(link.a().stats().tx_packets, 4U);
  EXPECT_FALSE(burst[3]);
  EXPECT_TRUE(burst[4]);  // the rest stays with the caller, untouched
  EXPECT_EQ(link.b().rx_pending(0), 4U);

  std::vector<std::uint32_t> order;
  std::size_t first = 4;
  while (first < burst.size()) {
    for (packet& p : drain(link.b(), 0)) {
      order.push_back(udp_tag(p));
    }
    first += link.a().tx_burst(0, std::span(burst).subspan(first));
  }
  for (packet& p : drain(link.b(), 0)) {
    order.push_back(udp_tag(p));
  }
  ASSERT_EQ(order.size(), 10U);
  for (std::uint32_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(order[i], i);
  }
  expect_pools_clean(link);
}

TEST(RingDevice, FullRingStopsTheBurstEvenForFramesBoundElsewhere) {
  ring_link_config c = small(2);
  c.ring_size = 2;
  ring_link link(c);
  const std::span<const std::uint8_t> key(default_rss_key);
  // One flow for each rx queue.
  std::array<frame_spec, 2> flow;
  std::array<bool, 2> found{};
  for (std::uint16_t port = 1000; !(found[0] && found[1]); ++port) {
    frame_spec f;
    f.sport = port;
    const std::uint16_t q = default_queue(rss_hash_ipv4_l4(key, f.src, f.dst, f.sport, f.dport), 2);
    if (!found[q]) {
      found[q] = true;
      flow[q] = f;
    }
  }
  // Queue-0 ring: 2 slots. Burst: q0, q0, q0 (full here), q1 (room, but behind the full one).
  std::array<packet, 4> burst;
  for (std::size_t i = 0; i < burst.size(); ++i) {
    frame_spec f = flow[i < 3 ? 0 : 1];
    f.tag = static_cast<std::uint32_t>(i);
    burst[i] = make(link.a(), 0, build(f));
  }
  EXPECT_EQ(link.a().tx_burst(0, burst), 2U);
  EXPECT_EQ(link.a().queue_stats(0).tx_busy, 2U);
  EXPECT_EQ(link.b().rx_pending(0), 2U);
  EXPECT_EQ(link.b().rx_pending(1), 0U);
  EXPECT_EQ(drain(link.b(), 0).size(), 2U);
  EXPECT_EQ(link.a().tx_burst(0, std::span(burst).subspan(2)), 2U);
  EXPECT_EQ(drain(link.b(), 0).size(), 1U);
  std::vector<packet> q1 = drain(link.b(), 1);
  ASSERT_EQ(q1.size(), 1U);
  EXPECT_EQ(udp_tag(q1[0]), 3U);
  q1.clear();
  expect_pools_clean(link);
}

TEST(RingDevice, OversizeFramesDroppedAndChainsLinearized) {
  ring_link_config c = small(1);
  c.mtu = 1500;
  ring_link link(c);
  ring_device& a = link.a();
  const auto chain_of = [&a](std::size_t total, std::size_t first) {
    packet head = a.tx_pool(0).alloc();
    std::byte* d = head.append(first);
    for (std::size_t i = 0; i < first; ++i) {
      d[i] = static_cast<std::byte>(i);
    }
    packet tail = a.tx_pool(0).alloc();
    d = tail.append(total - first);
    for (std::size_t i = first; i < total; ++i) {
      d[i - first] = static_cast<std::byte>(i);
    }
    EXPECT_TRUE(head.chain(std::move(tail)));
    return head;
  };
  std::array<packet, 3> burst{chain_of(1523, 1000), chain_of(1522, 700), chain_of(300, 20)};
  EXPECT_EQ(a.tx_burst(0, burst), 3U);  // the oversize frame is taken, and dropped
  EXPECT_EQ(a.stats().tx_dropped, 1U);
  EXPECT_EQ(a.stats().tx_packets, 2U);
  EXPECT_EQ(a.stats().tx_bytes, 1822U);
  std::vector<packet> got = drain(link.b(), 0);
  ASSERT_EQ(got.size(), 2U);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(got[k].segment_count(), 1U);       // one buffer holds a max frame
    EXPECT_FALSE(got[k].meta().rss_hash_valid);  // not IPv4 (the bytes 12, 13 are 0x0c0d)
    for (std::size_t i = 0; i < got[k].length(); ++i) {
      ASSERT_EQ(got[k].front()[i], static_cast<std::byte>(i));
    }
  }
  EXPECT_EQ(got[0].length(), 1522U);
  EXPECT_EQ(got[1].length(), 300U);
  got.clear();
  expect_pools_clean(link);
}

TEST(RingDevice, ConfigureRssValidatesAndSteers) {
  ring_link link(small(4));
  ring_device& b = link.b();
  rss_config good = b.rss();
  rss_config r = good;
  r.key.pop_back();
  EXPECT_EQ(b.configure_rss(r), std::make_error_code(std::errc::invalid_argument));
  r = good;
  r.reta.resize(64);
  EXPECT_EQ(b.configure_rss(r), std::make_error_code(std::errc::invalid_argument));
  r = good;
  r.reta[77] = 4;
  EXPECT_EQ(b.configure_rss(r), std::make_error_code(std::errc::invalid_argument));
  r = good;
  r.hash_types |= rss_hash::tcp_ipv6;
  EXPECT_EQ(b.configure_rss(r), std::make_error_code(std::errc::invalid_argument));
  EXPECT_EQ(b.rss().reta, good.reta);  // refused: unchanged

  // Everything to queue 3, and a different key: the hash follows it.
  r = good;
  std::fill(r.reta.begin(), r.reta.end(), std::uint16_t{3});
  r.key[0] ^= 0xffU;
  ASSERT_FALSE(b.configure_rss(r));
  EXPECT_EQ(b.rss().reta, r.reta);
  EXPECT_EQ(b.rss().key, r.key);
  frame_spec f;
  f.protocol = proto_tcp;
  ASSERT_EQ(send(link.a(), 0, make(link.a(), 0, build(f))), 1U);
  std::vector<packet> got = drain(b, 3);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].meta().rss_hash_valid);
  EXPECT_EQ(got[0].meta().rss_hash, rss_hash_ipv4_l4(r.key, f.src, f.dst, f.sport, f.dport));
  got.clear();
  // Only the address pair: TCP hashed by it.
  r.hash_types = rss_hash::ipv4;
  ASSERT_FALSE(b.configure_rss(r));
  ASSERT_EQ(send(link.a(), 0, make(link.a(), 0, build(f))), 1U);
  got = drain(b, 3);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].meta().rss_hash, rss_hash_ipv4(r.key, f.src, f.dst));
  got.clear();
  // RSS off: queue 0, no hash.
  r.hash_types = 0;
  ASSERT_FALSE(b.configure_rss(r));
  ASSERT_EQ(send(link.a(), 0, make(link.a(), 0, build(f))), 1U);
  got = drain(b, 0);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_FALSE(got[0].meta().rss_hash_valid);
  got.clear();
  // The other end kept its own configuration.
  EXPECT_EQ(link.a().rss().reta, good.reta);
  expect_pools_clean(link);
}

TEST(RingDevice, BadQueueIsCountedAndRefused) {
  ring_link link(small(2));
  std::array<packet, 2> burst{make(link.a(), 0, arp_frame()), make(link.a(), 0, arp_frame())};
  EXPECT_EQ(link.a().tx_burst(2, burst), 0U);
  EXPECT_TRUE(burst[0]);  // still the caller's
  std::array<packet, 2> out;
  EXPECT_EQ(link.a().rx_burst(7, out), 0U);
  EXPECT_EQ(&link.a().tx_pool(9), &link.a().pool(0));
  EXPECT_EQ(link.a().stats().bad_queue, 3U);
  EXPECT_EQ(link.a().queue_stats(9).tx_packets, 0U);
  EXPECT_EQ(link.a().rx_pending(9), 0U);
  EXPECT_EQ(link.a().tx_burst(0, burst), 2U);  // empty bursts and empty packets are fine
  EXPECT_EQ(link.a().tx_burst(0, burst), 2U);
  EXPECT_EQ(link.a().stats().tx_packets, 2U);
}

TEST(RingDevice, DryPoolLeavesFramesInTheRing) {
  ring_link_config c = small(1);
  c.pool_size = 4;
  ring_link link(c);
  for (std::uint32_t i = 0; i < 6; ++i) {
    frame_spec f;
    f.tag = i;
    ASSERT_EQ(send(link.a(), 0, make(link.a(), 0, build(f))), 1U);
  }
  std::array<packet, 8> out;
  EXPECT_EQ(link.b().rx_burst(0, out), 4U);  // the pool has 4 buffers
  EXPECT_EQ(link.b().rx_burst(0, std::span(out).subspan(4)), 0U);
  EXPECT_EQ(link.b().rx_pending(0), 2U);
  EXPECT_EQ(link.b().stats().rx_dropped, 0U);
  for (std::uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(udp_tag(out[i]), i);
    out[i].reset();
  }
  EXPECT_EQ(link.b().rx_burst(0, out), 2U);
  EXPECT_EQ(udp_tag(out[0]), 4U);
  EXPECT_EQ(udp_tag(out[1]), 5U);
  EXPECT_EQ(link.b().stats().rx_packets, 6U);
  for (packet& p : out) {
    p.reset();
  }
  expect_pools_clean(link);
}

TEST(RingDevice, FramesLeftInRingsAreFreedWithTheLink) {
  auto link = std::make_unique<ring_link>(small(2));
  for (std::uint16_t q = 0; q < 2; ++q) {
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(send(link->a(), q, make(link->a(), q, build(frame_spec{}))), 1U);
      ASSERT_EQ(send(link->b(), q, make(link->b(), q, build(frame_spec{}))), 1U);
    }
  }
  expect_pools_clean(*link);  // the rings hold copies: every buffer is back already
  link.reset();               // ASan: nothing leaks
}

// Real threads: 4 senders on end a (tx queue s each), 4 receivers on end b (rx queue r each).
// Every frame must arrive exactly once, in order per (sender, flow), on the queue RSS picks.
}  // namespace ring_device_test
}  // namespace
}  // namespace dpdk_net
