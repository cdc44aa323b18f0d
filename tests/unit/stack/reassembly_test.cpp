#include "dpdk_net/stack/reassembly.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/wire/checksum.hpp"

namespace dpdk_net::stack {
namespace {
namespace reassembly_test {

using wire::ipv4_address;

class ReassemblyTest : public ::testing::Test {
 protected:
  explicit ReassemblyTest(reassembly_config c = {}) : r_(c, wheel_, sip_key{3, 4}) {}

  /// Fragment [offset, offset + len) of datagram `id` (payload bytes = their index mod 251).
  std::pair<packet, wire::ipv4_header> fragment(std::uint16_t id, std::uint32_t offset,
                                                std::uint32_t len, bool more) {
    packet p = pool_.alloc();
    std::byte* d = p.append(20 + len);
    wire::ipv4_header h;
    h.total_length = static_cast<std::uint16_t>(20 + len);
    h.id = id;
    h.protocol = wire::ip_protocol::udp;
    h.src = ipv4_address::from_octets(198, 18, 0, 2);
    h.dst = ipv4_address::from_octets(198, 18, 0, 1);
    h.more_fragments = more;
    h.fragment_offset = static_cast<std::uint16_t>(offset / 8);
    wire::write_ipv4(std::span(d, 20), h);
    for (std::uint32_t i = 0; i < len; ++i) {
      d[20 + i] = static_cast<std::byte>((offset + i) % 251);
    }
    return {std::move(p), h};
  }
  std::optional<packet> add(std::uint16_t id, std::uint32_t offset, std::uint32_t len, bool more) {
    auto [p, h] = fragment(id, offset, len, more);
    return r_.add(std::move(p), h, now_);
  }
  static void expect_whole(const packet& p, std::uint32_t len) {
    ASSERT_EQ(p.length(), 20U + len);
    std::vector<std::byte> bytes(p.length());
    p.copy_out(0, bytes);
    const auto ip = wire::parse_ipv4(bytes);
    ASSERT_TRUE(ip) << wire::to_string(ip.error);  // header and checksum are right
    EXPECT_FALSE(ip.header.is_fragment());
    for (std::uint32_t i = 0; i < len; ++i) {
      ASSERT_EQ(bytes[20 + i], static_cast<std::byte>(i % 251)) << i;
    }
  }

  packet_pool pool_{packet_pool_config{}};
  timer_wheel wheel_{millisecond};
  time_ns now_ = 0;
  reassembly r_;
};

TEST_F(ReassemblyTest, InOrderOutOfOrderAndShuffled) {
  EXPECT_FALSE(add(1, 0, 1000, true));
  EXPECT_FALSE(add(1, 1000, 1000, true));
  auto whole = add(1, 2000, 500, false);
  ASSERT_TRUE(whole);
  expect_whole(*whole, 2500);
  EXPECT_EQ(whole->segment_count(), 3U);  // the fragments' own buffers, chained
  EXPECT_FALSE(add(2, 2000, 500, false));
  EXPECT_FALSE(add(2, 0, 1000, true));
  whole = add(2, 1000, 1000, true);
  ASSERT_TRUE(whole);
  expect_whole(*whole, 2500);
  EXPECT_EQ(r_.in_progress(), 0U);
  EXPECT_EQ(r_.bytes_held(), 0U);
  EXPECT_EQ(r_.counters().reassembled, 2U);
}

TEST_F(ReassemblyTest, InterleavedDatagramsStayApart) {
  EXPECT_FALSE(add(7, 0, 8, true));
  EXPECT_FALSE(add(8, 0, 16, true));
  auto a = add(8, 16, 4, false);
  auto b = add(7, 8, 4, false);
  ASSERT_TRUE(a && b);
  expect_whole(*a, 20);
  expect_whole(*b, 12);
}

TEST_F(ReassemblyTest, OverlapsDropTheDatagramDuplicatesAreIgnored) {
  EXPECT_FALSE(add(1, 0, 1000, true));
  EXPECT_FALSE(add(1, 0, 1000, true));  // an exact duplicate
  EXPECT_EQ(r_.counters().duplicates, 1U);
  EXPECT_FALSE(add(1, 992, 16, true));  // overlaps the first by 8 bytes (teardrop-style)
  EXPECT_EQ(r_.counters().overlaps, 1U);
  EXPECT_EQ(r_.in_progress(), 0U);       // the whole datagram is gone
  EXPECT_FALSE(add(1, 1000, 8, false));  // so a later piece starts over and completes nothing
  EXPECT_EQ(pool_.available(), pool_.capacity() - 1);  // only that piece is held
  // A second "last" fragment, or data past the end, also condemns it.
  EXPECT_FALSE(add(2, 1000, 8, false));
  EXPECT_FALSE(add(2, 2000, 8, false));
  EXPECT_EQ(r_.counters().overlaps, 2U);
}

TEST_F(ReassemblyTest, BadLengthsAreRefused) {
  EXPECT_FALSE(add(1, 0, 12, true));  // not a multiple of 8 and not last
  EXPECT_FALSE(add(1, 0, 0, true));
  EXPECT_EQ(r_.counters().bad_length, 2U);
  EXPECT_EQ(r_.in_progress(), 0U);
}

TEST_F(ReassemblyTest, IncompleteDatagramsTimeOut) {
  EXPECT_FALSE(add(1, 0, 1000, true));
  EXPECT_EQ(r_.in_progress(), 1U);
  now_ = 30 * second - millisecond;
  wheel_.advance(now_);
  EXPECT_EQ(r_.in_progress(), 1U);
  now_ = 30 * second;
  wheel_.advance(now_);
  EXPECT_EQ(r_.in_progress(), 0U);
  EXPECT_EQ(r_.counters().timeouts, 1U);
  EXPECT_EQ(pool_.available(), pool_.capacity());  // the held buffer went back
}

class SmallReassemblyTest : public ReassemblyTest {
 protected:
  SmallReassemblyTest()
      : ReassemblyTest([] {
          reassembly_config c;
          c.max_datagrams = 2;
          c.max_bytes = 3000;
          c.max_fragments = 3;
          return c;
        }()) {}
};

TEST_F(SmallReassemblyTest, LimitsOnDatagramsBytesAndFragments) {
  EXPECT_FALSE(add(1, 0, 8, true));
  EXPECT_FALSE(add(2, 0, 8, true));
  EXPECT_FALSE(add(3, 0, 8, true));  // a third datagram in progress: the oldest (1) makes room
  EXPECT_EQ(r_.counters().too_many_datagrams, 1U);
  EXPECT_EQ(r_.counters().evicted, 1U);
  EXPECT_EQ(r_.in_progress(), 2U);
  EXPECT_FALSE(add(2, 8, 1496, true));
  EXPECT_FALSE(add(2, 1504, 1496, true));  // 8 + 8 + 1496 + 1496 > 3000: the oldest other goes
  EXPECT_EQ(r_.counters().evicted, 2U);    // datagram 3
  EXPECT_EQ(r_.in_progress(), 1U);
  EXPECT_FALSE(add(4, 0, 1496, true));  // room made by evicting 2
  EXPECT_EQ(r_.counters().evicted, 3U);
  EXPECT_FALSE(add(4, 1496, 1496, true));
  EXPECT_FALSE(add(4, 2992, 16, true));  // alone over the byte limit: dropped, nothing to evict
  EXPECT_EQ(r_.counters().over_memory, 1U);
  EXPECT_FALSE(add(5, 0, 8, true));
  EXPECT_FALSE(add(5, 8, 8, true));
  EXPECT_FALSE(add(5, 16, 8, true));
  EXPECT_FALSE(add(5, 24, 8, true));  // a fourth fragment: over max_fragments
  EXPECT_EQ(r_.counters().too_many_fragments, 1U);
  EXPECT_EQ(r_.in_progress(), 0U);
  EXPECT_EQ(r_.bytes_held(), 0U);
  EXPECT_EQ(r_.buffers_held(), 0U);
}

TEST_F(SmallReassemblyTest, ADuplicateOrAnOversizedFragmentEvictsNobody) {
  EXPECT_FALSE(add(1, 0, 1496, true));
  EXPECT_FALSE(add(2, 0, 1496, true));  // 2992 of 3000 bytes held
  EXPECT_FALSE(add(2, 0, 1496, true));  // an exact duplicate: ignored before any room is made
  EXPECT_EQ(r_.counters().duplicates, 1U);
  EXPECT_EQ(r_.counters().evicted, 0U);
  EXPECT_EQ(r_.in_progress(), 2U);
}

TEST(ReassemblyLimits, AFragmentThatCouldNeverFitEvictsNobody) {
  packet_pool pool{packet_pool_config{}};
  timer_wheel wheel{millisecond};
  reassembly_config c;
  c.max_bytes = 1000;
  reassembly r(c, wheel, sip_key{7, 8});
  auto frag = [&](std::uint16_t id, std::uint32_t len) {
    packet p = pool.alloc();
    wire::ipv4_header h;
    h.total_length = static_cast<std::uint16_t>(20 + len);
    h.id = id;
    h.protocol = wire::ip_protocol::udp;
    h.more_fragments = true;
    wire::write_ipv4(std::span(p.append(20 + len), 20), h);
    return r.add(std::move(p), h, 0);
  };
  EXPECT_FALSE(frag(1, 8));
  EXPECT_FALSE(frag(2, 1496));  // alone over max_bytes: refused, datagram 1 untouched
  EXPECT_EQ(r.counters().over_memory, 1U);
  EXPECT_EQ(r.counters().evicted, 0U);
  EXPECT_EQ(r.in_progress(), 1U);
}

TEST_F(ReassemblyTest, TinyFragmentFloodHoldsAtMostMaxBuffersAndNewDatagramsStillComplete) {
  // 64 datagrams x 64 eight-byte fragments used to pin 4,096 buffers: a whole default pool.
  const std::size_t available_before = pool_.available();
  for (std::uint16_t id = 0; id < 64; ++id) {
    for (std::uint32_t k = 0; k < 64; ++k) {
      EXPECT_FALSE(add(static_cast<std::uint16_t>(1000 + id), k * 8, 8, true));
      ASSERT_LE(r_.buffers_held(), 256U);  // the default max_buffers
    }
  }
  EXPECT_GE(pool_.available(), available_before - 256);  // the rest of the pool is free
  EXPECT_GT(r_.counters().evicted, 0U);
  // Right after the flood (no time passes): a fragmented datagram completes at once.
  EXPECT_FALSE(add(7, 0, 1480, true));
  auto whole = add(7, 1480, 100, false);
  ASSERT_TRUE(whole);
  expect_whole(*whole, 1580);
}

TEST_F(ReassemblyTest, FullContextsEvictTheOldestIncompleteSoNewTrafficGetsThrough) {
  // Every context taken by a datagram that never completes (the flood), as Linux's are after
  // ~8,000 tiny fragments; Linux then refuses all fragments until its 30 s timeouts expire.
  for (std::uint16_t id = 0; id < 64; ++id) {
    EXPECT_FALSE(add(static_cast<std::uint16_t>(2000 + id), 0, 8, true));
  }
  EXPECT_EQ(r_.in_progress(), 64U);
  for (std::uint16_t id = 0; id < 5; ++id) {  // five honest datagrams, one after the other
    EXPECT_FALSE(add(id, 0, 1480, true));
    auto whole = add(id, 1480, 520, false);
    ASSERT_TRUE(whole) << id;
    expect_whole(*whole, 2000);
  }
  EXPECT_EQ(r_.counters().evicted, 1U);  // the first made room; each completed one freed its own
  EXPECT_EQ(r_.counters().reassembled, 5U);
}

TEST_F(ReassemblyTest, ContextKeyIsSourceDestinationIdAndProtocol) {
  // The same id from another source, or for another protocol, is another datagram.
  auto [p1, h1] = fragment(9, 0, 8, true);
  EXPECT_FALSE(r_.add(std::move(p1), h1, now_));
  auto [p2, h2] = fragment(9, 8, 8, false);
  h2.src = ipv4_address::from_octets(198, 18, 0, 99);
  EXPECT_FALSE(r_.add(std::move(p2), h2, now_));
  auto [p3, h3] = fragment(9, 8, 8, false);
  h3.protocol = wire::ip_protocol::icmp;
  EXPECT_FALSE(r_.add(std::move(p3), h3, now_));
  EXPECT_EQ(r_.in_progress(), 3U);
  auto whole = add(9, 8, 8, false);  // the right one completes datagram 9
  ASSERT_TRUE(whole);
  EXPECT_EQ(r_.in_progress(), 2U);
}

}  // namespace reassembly_test
}  // namespace
}  // namespace dpdk_net::stack
