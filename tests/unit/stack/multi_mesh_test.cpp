// Several stacks on one address, the data path: IP id ranges, the hand-over of frames between
// workers (copy, return, no allocation, full ring) and the rings themselves.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "../counting_allocator.hpp"
#include "dpdk_net/detail/spsc_ring.hpp"
#include "dpdk_net/rss.hpp"
#include "dpdk_net/runtime/flow_steering.hpp"
#include "dpdk_net/runtime/worker_mesh.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"
#include "multi_fixture.hpp"

namespace dpdk_net::stack {
namespace {
namespace multi_mesh_test {

using socket_id = stack::socket_id;
using dpdk_net::stack::port_claim;

TEST(MultiStackIpId, IdsStayInTheConfiguredRange) {
  packet_pool pool{packet_pool_config{}};
  stack_config c;
  c.mac = our_mac;
  c.address = our_ip;
  c.ip_id_first = 1000;
  c.ip_id_count = 64;
  stack st(c, pool, stack_secret{1, 2});
  socket_id s = 0;
  ASSERT_FALSE(st.udp_bind(9, s));
  // Learn the peer, then send 200 datagrams: ids 1000..1063, wrapping.
  std::array<std::byte, 42> f{};
  wire::write_ethernet(
      f, wire::ethernet_header{mac_address::broadcast(), peer_mac, wire::ethertype::arp, false, 0});
  wire::write_arp(std::span(f).subspan(14),
                  wire::arp_packet{wire::arp_op::request, peer_mac, peer_ip, {}, our_ip});
  packet p = pool.alloc();
  std::memcpy(p.append(f.size()), f.data(), f.size());
  st.receive(std::move(p), 0);
  std::set<std::uint16_t> ids;
  std::array<packet, 64> burst;
  for (int i = 0; i < 200; ++i) {
    ASSERT_FALSE(st.udp_send_to(s, peer_ip, 9, std::as_bytes(std::span("x", 1)), 0));
    std::size_t n = 0;
    while ((n = st.drain_tx(burst)) != 0) {
      for (std::size_t j = 0; j < n; ++j) {
        const auto d = wire::decode_frame(std::span<const std::byte>(burst[j].front()));
        if (d.ipv4) {
          ids.insert(d.ipv4->id);
        }
      }
      free_burst(std::span(burst.data(), n));
    }
  }
  ASSERT_EQ(ids.size(), 64U);
  EXPECT_EQ(*ids.begin(), 1000);
  EXPECT_EQ(*ids.rbegin(), 1063);
  c.ip_id_count = 32;
  EXPECT_NE(validate(c, 1500).find("ip_id_count"), std::string::npos);
  c.ip_id_count = 64;
  c.ip_id_first = 65500;
  EXPECT_NE(validate(c, 1500).find("ip_id_count"), std::string::npos);
}

TEST(MultiStackMesh, HandsFramesToTheirOwnerCopyingAndReturningTheOriginals) {
  // Two stacks (workers 0 and 1) on one address, each with its own pool; software steering.
  packet_pool rx0{packet_pool_config{"rx0", 512}};
  packet_pool tx0{packet_pool_config{"tx0", 512}}, tx1{packet_pool_config{"tx1", 512}};
  stack_config c;
  c.mac = our_mac;
  c.address = our_ip;
  stack s0(c, tx0, stack_secret{1, 2}), s1(c, tx1, stack_secret{1, 2});
  flow_steering flows(steering(2, steering_mode::software));
  worker_mesh mesh(flows, 64);
  mesh.attach(0, s0);
  mesh.attach(1, s1);
  int woken = 0;
  mesh.set_wake(
      1, [](void* n) { ++*static_cast<int*>(n); }, &woken);
  socket_id u0 = 0, u1 = 0;
  ASSERT_FALSE(s0.udp_bind(53, u0));
  ASSERT_FALSE(s1.udp_bind(53, u1));
  ASSERT_EQ(flows.port_mask(17, 53), 3U);  // bound on both: the hash decides
  // UDP frames from 64 source ports, all received on worker 0's queue.
  auto udp_frame = [&](std::uint16_t sport) {
    std::array<std::byte, 12> l4{};
    std::memcpy(l4.data() + 8, &sport, 2);
    wire::write_udp(l4, wire::udp_header{sport, 53, 0, 0}, std::span(l4).subspan(8),
                    wire::pseudo_header{peer_ip, our_ip});
    wire::ipv4_header h;
    h.protocol = wire::ip_protocol::udp;
    h.src = peer_ip;
    h.dst = our_ip;
    h.total_length = 32;
    packet p = rx0.alloc();
    std::byte* d = p.append(14 + 32);
    wire::write_ethernet(std::span(d, 14),
                         wire::ethernet_header{our_mac, peer_mac, wire::ethertype::ipv4, false, 0});
    wire::write_ipv4(std::span(d + 14, 20), h);
    std::memcpy(d + 34, l4.data(), l4.size());
    return p;
  };
  std::size_t for_one = 0;
  for (std::uint16_t sport = 1000; sport < 1064; ++sport) {
    for_one += flows.hash_owner(peer_ip, sport, 53) == 1 ? 1 : 0;
    mesh.receive(0, s0, udp_frame(sport), 0, tx0);
  }
  mesh.flush(0);
  EXPECT_EQ(woken, 1);  // once per burst, not per frame
  ASSERT_GT(for_one, 0U);
  EXPECT_EQ(mesh.counters(0).handed_out, for_one);
  EXPECT_EQ(rx0.available(), 512 - 64);  // the originals are still out (queued, or in a ring)
  EXPECT_FALSE(mesh.idle(1));
  // Worker 1 takes them: copies into its pool, its socket gets them, originals go back.
  EXPECT_EQ(mesh.drain(1, s1, tx1, 0), for_one);
  EXPECT_EQ(mesh.counters(1).handed_in, for_one);
  std::size_t got1 = 0;
  while (auto d = s1.udp_receive(u1)) {
    EXPECT_EQ(flows.hash_owner(peer_ip, d->source_port, 53), 1);
    ++got1;
  }
  EXPECT_EQ(got1, for_one);
  std::size_t got0 = 0;
  while (auto d = s0.udp_receive(u0)) {
    EXPECT_EQ(flows.hash_owner(peer_ip, d->source_port, 53), 0);
    ++got0;
  }
  EXPECT_EQ(got0 + got1, 64U);
  // Worker 0 frees the originals it gets back: its rx pool is whole again.
  EXPECT_FALSE(mesh.idle(0));
  mesh.drain(0, s0, tx0, 0);
  EXPECT_TRUE(mesh.idle(0));
  EXPECT_EQ(rx0.available(), 512U);
  EXPECT_EQ(rx0.stats().foreign_frees + tx1.stats().foreign_frees, 0U);
  EXPECT_EQ(rx0.stats().double_frees + tx1.stats().double_frees, 0U);

  // Steady state: handing frames over and back allocates nothing.
  const std::uint64_t before = dpdk_net::test::allocation_count();
  for (int round = 0; round < 20; ++round) {
    for (std::uint16_t sport = 1000; sport < 1032; ++sport) {
      mesh.receive(0, s0, udp_frame(sport), 0, tx0);
    }
    mesh.flush(0);
    mesh.drain(1, s1, tx1, 0);
    mesh.drain(0, s0, tx0, 0);
    while (s0.udp_receive(u0)) {
    }
    while (s1.udp_receive(u1)) {
    }
  }
  EXPECT_EQ(dpdk_net::test::allocation_count() - before, 0U);

  // A full ring drops (counted) where the frame was received; nothing leaks.
  const std::uint64_t full_before = mesh.counters(0).ring_full;
  std::size_t sent = 0;
  for (std::uint16_t sport = 2000; sent < 200; ++sport) {
    if (flows.hash_owner(peer_ip, sport, 53) == 1) {
      mesh.receive(0, s0, udp_frame(sport), 0, tx0);
      ++sent;
    }
  }
  EXPECT_EQ(mesh.counters(0).ring_full - full_before, 200U - 64U);  // the ring holds 64
  mesh.drain(1, s1, tx1, 0);
  mesh.drain(0, s0, tx0, 0);
  while (s1.udp_receive(u1)) {
  }
  EXPECT_EQ(rx0.available(), 512U);
  s0.set_port_coordinator(nullptr);
  s1.set_port_coordinator(nullptr);
}

TEST(MultiStackMesh, CopyPacketKeepsBytesAndMetaAcrossChains) {
  packet_pool small{packet_pool_config{"small", 64, 256, 64}};
  packet_pool big{packet_pool_config{"big", 8}};
  packet src = big.alloc();
  std::byte* d = src.append(1500);
  for (std::size_t i = 0; i < 1500; ++i) {
    d[i] = static_cast<std::byte>(i * 7);
  }
  src.meta().rss_hash = 0xabcd;
  packet copy = copy_packet(src, small);  // 192 bytes per buffer: a chain of 8
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy.length(), 1500U);
  EXPECT_GT(copy.segment_count(), 1U);
  EXPECT_EQ(copy.meta().rss_hash, 0xabcdU);
  std::vector<std::byte> a(1500), b(1500);
  src.copy_out(0, a);
  copy.copy_out(0, b);
  EXPECT_EQ(a, b);
  // A pool too small: empty, and nothing held.
  packet_pool tiny{packet_pool_config{"tiny", 2, 256, 64}};
  EXPECT_FALSE(copy_packet(src, tiny));
  EXPECT_EQ(tiny.available(), 2U);
}

TEST(MultiStackRing, SpscRingKeepsOrderAndBounds) {
  dpdk_net::detail::spsc_ring<int> r(5);  // rounded up to 8
  EXPECT_EQ(r.capacity(), 8U);
  for (int i = 0; i < 8; ++i) {
    int v = i;
    ASSERT_TRUE(r.push(v));
  }
  int extra = 99;
  EXPECT_FALSE(r.push(extra));
  EXPECT_EQ(r.free_space(), 0U);
  for (int i = 0; i < 8; ++i) {
    int v = -1;
    ASSERT_TRUE(r.pop(v));
    EXPECT_EQ(v, i);
  }
  int none = 0;
  EXPECT_FALSE(r.pop(none));
  EXPECT_TRUE(r.empty());
}

}  // namespace multi_mesh_test
}  // namespace
}  // namespace dpdk_net::stack
