#include "dpdk_net/memory_device.hpp"

#include <gtest/gtest.h>

#include <array>
#include <stdexcept>
#include <vector>

namespace dpdk_net {
namespace {

/// A frame of n bytes whose first byte is tag.
packet frame(device& dev, std::size_t n, std::uint8_t tag, std::uint16_t queue = 0) {
  packet p = dev.tx_pool(queue).alloc();
  std::byte* d = p.append(n);
  std::memset(d, 0, n);
  d[0] = static_cast<std::byte>(tag);
  return p;
}

std::uint8_t tag_of(const packet& p) {
  return static_cast<std::uint8_t>(p.front()[0]);
}

TEST(MemoryLink, RejectsBadConfig) {
  memory_link_config c;
  c.queues = 0;
  EXPECT_THROW(memory_link{c}, std::invalid_argument);
  c.queues = 1;
  c.ring_size = 0;
  EXPECT_THROW(memory_link{c}, std::invalid_argument);
}

TEST(MemoryLink, DescribesItself) {
  memory_link_config c;
  c.queues = 3;
  c.mtu = 9000;
  memory_link link(c);
  const device_info& a = link.a().info();
  EXPECT_EQ(a.rx_queues, 3);
  EXPECT_EQ(a.tx_queues, 3);
  EXPECT_EQ(a.mtu, 9000);
  EXPECT_EQ(a.mac, c.mac_a);
  EXPECT_EQ(link.b().info().mac, c.mac_b);
  EXPECT_TRUE(link.a().link().up);
  EXPECT_EQ(link.a().rx_wait_handle(0).mode, wait_handle::kind::poll);
  EXPECT_EQ(link.a().configure_rss({}), std::make_error_code(std::errc::not_supported));
}

TEST(MemoryLink, BurstArrivesInOrderWithoutCopy) {
  memory_link link;
  std::vector<packet> out(32);
  std::vector<segment*> sent;
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = frame(link.a(), 60 + i, static_cast<std::uint8_t>(i));
    sent.push_back(out[i].head());
  }
  EXPECT_EQ(link.a().tx_burst(0, out), 32U);
  for (const packet& p : out) {
    EXPECT_FALSE(p);  // taken
  }
  EXPECT_EQ(link.b().rx_pending(0), 32U);
  std::array<packet, 20> in;
  ASSERT_EQ(link.b().rx_burst(0, in), 20U);
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(tag_of(in[i]), i);
    EXPECT_EQ(in[i].head(), sent[i]);  // the same buffer: zero copy
  }
  free_burst(in);
  ASSERT_EQ(link.b().rx_burst(0, in), 12U);  // the rest
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(tag_of(in[i]), 20 + i);
    EXPECT_EQ(in[i].head(), sent[20 + i]);  // the same buffer: zero copy
    EXPECT_EQ(in[i].length(), 60 + 20 + i);
  }
  EXPECT_EQ(link.b().rx_burst(0, in), 0U);
  EXPECT_EQ(link.a().stats().tx_packets, 32U);
  EXPECT_EQ(link.b().stats().rx_packets, 32U);
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < 32; ++i) {
    bytes += 60 + i;
  }
  EXPECT_EQ(link.b().stats().rx_bytes, bytes);
  EXPECT_EQ(link.a().stats().tx_bytes, bytes);
}

TEST(MemoryLink, FullRingDeclinesTheRestWhichStayWithTheCaller) {
  memory_link_config c;
  c.ring_size = 8;
  memory_link link(c);
  std::vector<packet> out(12);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = frame(link.a(), 64, static_cast<std::uint8_t>(i));
  }
  EXPECT_EQ(link.a().tx_burst(0, out), 8U);
  for (std::size_t i = 8; i < 12; ++i) {
    ASSERT_TRUE(out[i]);  // still ours
    EXPECT_EQ(tag_of(out[i]), i);
  }
  EXPECT_EQ(link.a().stats().tx_busy, 4U);
  std::array<packet, 4> in;
  EXPECT_EQ(link.b().rx_burst(0, in), 4U);
  // Room for 4 again: the retry of the declined tail goes through.
  EXPECT_EQ(link.a().tx_burst(0, std::span<packet>(out).subspan(8)), 4U);
  std::array<packet, 16> rest;
  ASSERT_EQ(link.b().rx_burst(0, rest), 8U);
  EXPECT_EQ(tag_of(rest[0]), 4);
  EXPECT_EQ(tag_of(rest[7]), 11);
}

TEST(MemoryLink, QueuesAreIndependent) {
  memory_link_config c;
  c.queues = 4;
  memory_link link(c);
  for (std::uint16_t q = 0; q < 4; ++q) {
    std::array<packet, 1> one{frame(link.a(), 64, static_cast<std::uint8_t>(10 + q), q)};
    for (std::uint16_t k = 0; k <= q; ++k) {  // queue q gets q+1 frames
      if (k > 0) {
        one[0] = frame(link.a(), 64, static_cast<std::uint8_t>(10 + q), q);
      }
      ASSERT_EQ(link.a().tx_burst(q, one), 1U);
    }
  }
  for (std::uint16_t q = 0; q < 4; ++q) {
    EXPECT_EQ(link.b().rx_pending(q), q + 1U);
    std::array<packet, 8> in;
    ASSERT_EQ(link.b().rx_burst(q, in), q + 1U);
    EXPECT_EQ(tag_of(in[0]), 10 + q);
    EXPECT_EQ(in[0].meta().queue, q);
  }
}

TEST(MemoryLink, BadQueueIsCountedNotFatal) {
  memory_link link;
  std::array<packet, 1> pkts{frame(link.a(), 64, 1)};
  EXPECT_EQ(link.a().tx_burst(1, pkts), 0U);
  EXPECT_TRUE(pkts[0]);
  EXPECT_EQ(link.b().rx_burst(7, pkts), 0U);
  EXPECT_EQ(link.a().stats().bad_queue, 1U);
  EXPECT_EQ(link.b().stats().bad_queue, 1U);
}

TEST(MemoryLink, OversizeAndLinkDownAreTakenAndDropped) {
  memory_link_config c;
  c.mtu = 100;
  memory_link link(c);
  const std::size_t before = link.a().pool().available();
  std::array<packet, 2> pkts{frame(link.a(), 118, 1), frame(link.a(), 119, 2)};
  EXPECT_EQ(link.a().tx_burst(0, pkts), 2U);
  EXPECT_EQ(link.a().stats().tx_dropped, 1U);  // 119 > 100 + 18
  EXPECT_EQ(link.b().rx_pending(0), 1U);
  link.set_up(false);
  EXPECT_FALSE(link.b().link().up);
  std::array<packet, 1> more{frame(link.a(), 64, 3)};
  EXPECT_EQ(link.a().tx_burst(0, more), 1U);
  EXPECT_EQ(link.a().stats().tx_dropped, 2U);
  EXPECT_EQ(link.a().pool().available(), before - 1);  // only the delivered one is out
}

TEST(MemoryLink, ReceiveMetadataIsFresh) {
  memory_link link;
  std::array<packet, 1> out{frame(link.a(), 64, 1)};
  out[0].meta().tx.flags = tx_offload_request::tcp_checksum;
  out[0].meta().rss_hash_valid = true;
  ASSERT_EQ(link.a().tx_burst(0, out), 1U);
  std::array<packet, 1> in;
  ASSERT_EQ(link.b().rx_burst(0, in), 1U);
  EXPECT_EQ(in[0].meta().tx.flags, 0);
  EXPECT_FALSE(in[0].meta().rss_hash_valid);
}

TEST(MemoryLink, InFlightFramesAreFreedWhenTheLinkGoes) {
  // Frames from both pools sit in both rings when the link is destroyed; ASan/LSan and the pools'
  // own checks catch a leak or a free into a dead pool.
  auto link = std::make_unique<memory_link>();
  std::array<packet, 2> ab{frame(link->a(), 64, 1), frame(link->a(), 64, 2)};
  std::array<packet, 2> ba{frame(link->b(), 64, 3), frame(link->b(), 64, 4)};
  ASSERT_EQ(link->a().tx_burst(0, ab), 2U);
  ASSERT_EQ(link->b().tx_burst(0, ba), 2U);
  packet_pool& pool_a = link->a().pool();
  EXPECT_EQ(pool_a.available(), pool_a.capacity() - 2);
  link.reset();  // must free all four before either pool is destroyed (ASan would report it)
}

}  // namespace
}  // namespace dpdk_net
