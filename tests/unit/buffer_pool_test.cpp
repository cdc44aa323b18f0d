#include "dpdk_net/buffer_pool.hpp"

#include <gtest/gtest.h>

#include <array>
#include <stdexcept>
#include <vector>

namespace dpdk_net {
namespace {
namespace buffer_pool_test {

packet_pool make_pool(std::size_t count, std::uint32_t size = 256, std::uint32_t headroom = 64) {
  packet_pool_config config;
  config.name = "test";
  config.count = count;
  config.buffer_size = size;
  config.headroom = headroom;
  return packet_pool(config);
}

TEST(BufferPool, RejectsConfigsThatCannotWork) {
  packet_pool_config zero;
  zero.count = 0;
  EXPECT_THROW(packet_pool{zero}, std::invalid_argument);
  packet_pool_config no_room;
  no_room.buffer_size = 128;
  no_room.headroom = 128;
  EXPECT_THROW(packet_pool{no_room}, std::invalid_argument);
}

TEST(BufferPool, FreshSegmentHasHeadroomAndNoData) {
  packet_pool pool = make_pool(4, 256, 64);
  packet p = pool.alloc();
  ASSERT_TRUE(p);
  EXPECT_EQ(p.length(), 0U);
  EXPECT_EQ(p.segment_count(), 1U);
  EXPECT_EQ(p.headroom(), 64U);
  EXPECT_EQ(p.tailroom(), 256U - 64U);
  EXPECT_EQ(p.head()->pool, &pool);
  EXPECT_EQ(p.head()->native, nullptr);
  EXPECT_EQ(p.meta().l4_checksum, checksum_status::unknown);
}

TEST(BufferPool, ExhaustionReturnsEmptyAndIsCounted) {
  packet_pool pool = make_pool(3);
  std::vector<packet> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(pool.alloc());
    ASSERT_TRUE(held.back());
  }
  EXPECT_EQ(pool.available(), 0U);
  packet none = pool.alloc();
  EXPECT_FALSE(none);
  EXPECT_EQ(pool.stats().alloc_failures, 1U);
  held.pop_back();  // frees one
  EXPECT_EQ(pool.available(), 1U);
  EXPECT_TRUE(pool.alloc());
}

TEST(BufferPool, BurstAllocationStopsAtExhaustion) {
  packet_pool pool = make_pool(10);
  std::vector<packet> burst(16);
  EXPECT_EQ(pool.alloc_burst(burst), 10U);
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_TRUE(burst[i]);
  }
  for (std::size_t i = 10; i < 16; ++i) {
    EXPECT_FALSE(burst[i]);
  }
  free_burst(burst);
  EXPECT_EQ(pool.available(), 10U);
  EXPECT_FALSE(burst[0]);
}

TEST(BufferPool, EveryBufferIsDistinctAndReturnsOnDestruction) {
  packet_pool pool = make_pool(64, 128, 0);
  {
    std::vector<packet> all(64);
    ASSERT_EQ(pool.alloc_burst(all), 64U);
    // Write a distinct byte pattern to each buffer and read them all back: no two overlap.
    for (std::size_t i = 0; i < all.size(); ++i) {
      std::byte* d = all[i].append(128);
      ASSERT_NE(d, nullptr);
      std::memset(d, static_cast<int>(i), 128);
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
      for (std::byte b : all[i].front()) {
        ASSERT_EQ(b, static_cast<std::byte>(i));
      }
    }
  }
  EXPECT_EQ(pool.available(), 64U);
  EXPECT_EQ(pool.stats().allocations, 64U);
}

TEST(BufferPool, DoubleFreeIsCountedNotCorrupting) {
  packet_pool pool = make_pool(2);
  packet p = pool.alloc();
  segment* raw = p.release();
  pool.free_bulk(std::span<segment* const>(&raw, 1));
  EXPECT_EQ(pool.available(), 2U);
  pool.free_bulk(std::span<segment* const>(&raw, 1));  // misuse
  EXPECT_EQ(pool.stats().double_frees, 1U);
  EXPECT_EQ(pool.available(), 2U);  // the free list did not take it twice
  // The pool still hands out two distinct buffers.
  packet a = pool.alloc();
  packet b = pool.alloc();
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a.head(), b.head());
  EXPECT_FALSE(pool.alloc());
}

TEST(BufferPool, ForeignSegmentIsRefused) {
  packet_pool one = make_pool(2);
  packet_pool two = make_pool(2);
  packet p = one.alloc();
  segment* raw = p.head();
  two.free_bulk(std::span<segment* const>(&raw, 1));  // misuse: wrong pool
  EXPECT_EQ(two.stats().foreign_frees, 1U);
  EXPECT_EQ(two.available(), 2U);
  EXPECT_TRUE(one.owns(raw));
  EXPECT_FALSE(two.owns(raw));
}

TEST(BufferPool, ReusedSegmentIsReset) {
  packet_pool pool = make_pool(1, 256, 32);
  {
    packet p = pool.alloc();
    ASSERT_NE(p.append(100), nullptr);
    ASSERT_TRUE(p.trim_front(10));
    p.meta().rss_hash = 7;
    p.meta().rss_hash_valid = true;
  }
  packet q = pool.alloc();
  ASSERT_TRUE(q);
  EXPECT_EQ(q.length(), 0U);
  EXPECT_EQ(q.headroom(), 32U);
  EXPECT_FALSE(q.meta().rss_hash_valid);
  EXPECT_EQ(q.meta().rss_hash, 0U);
}

// A pool that is not a packet_pool (as the DPDK mbuf pool is not): forwards to one and counts the
// virtual alloc_bulk calls it receives.
class forwarding_pool final : public buffer_pool {
 public:
  explicit forwarding_pool(packet_pool& inner) : inner_(inner) {}
  ~forwarding_pool() override { drain_cache(); }
  forwarding_pool(const forwarding_pool&) = delete;
  forwarding_pool& operator=(const forwarding_pool&) = delete;
  std::size_t alloc_bulk(std::span<segment*> out) noexcept override {
    ++alloc_bulk_calls;
    const std::size_t n = inner_.alloc_bulk(out);
    for (std::size_t i = 0; i < n; ++i) {
      out[i]->pool = this;  // freed through us, like an mbuf pool's descriptors
    }
    return n;
  }
  void free_bulk(std::span<segment* const> segments) noexcept override {
    for (segment* s : segments) {
      s->pool = &inner_;
    }
    inner_.free_bulk(segments);
  }
  std::uint64_t alloc_bulk_calls = 0;

 private:
  packet_pool& inner_;
};

TEST(BufferPool, PacketPoolAllocMakesNoVirtualCall) {
  packet_pool pool = make_pool(8);
  for (int i = 0; i < 1000; ++i) {
    packet p = pool.alloc();
    ASSERT_TRUE(p);
  }
  std::array<packet, 8> burst;
  EXPECT_EQ(pool.alloc_burst(burst), 8U);
  EXPECT_EQ(pool.virtual_alloc_calls(), 0U);  // the inline LIFO pop, never alloc_bulk
  EXPECT_EQ(pool.stats().allocations, 1008U);
}

TEST(BufferPool, OtherPoolsRefillACacheWithOneVirtualCallPer32Packets) {
  packet_pool inner = make_pool(64);
  {
    forwarding_pool pool(inner);
    std::vector<packet> held;
    for (int i = 0; i < 1000; ++i) {
      packet p = pool.alloc();
      ASSERT_TRUE(p);
      EXPECT_EQ(p.head()->status, segment::state::in_use);
      EXPECT_EQ(p.length(), 0U);
      if (i % 100 == 0) {
        held.push_back(std::move(p));  // some stay out: the cache is not a stack of one
      }
    }
    // 1000 packets at 32 per refill: 32 calls (the old path made 1000, one per packet).
    EXPECT_LE(pool.alloc_bulk_calls, 1000U / buffer_pool::alloc_cache_size + 1);
    EXPECT_EQ(pool.virtual_alloc_calls(), pool.alloc_bulk_calls);
    // A cached segment is marked free: a stray free of one is a counted double free.
    EXPECT_LT(inner.available(), inner.capacity() - held.size());
    held.clear();
  }
  // The destructor gave the cache back: nothing leaked from the inner pool.
  EXPECT_EQ(inner.available(), inner.capacity());
  EXPECT_EQ(inner.stats().double_frees, 0U);
}

TEST(BufferPool, CacheRunsDryCleanly) {
  packet_pool inner = make_pool(5);
  forwarding_pool pool(inner);
  std::vector<packet> all;
  for (int i = 0; i < 5; ++i) {
    all.push_back(pool.alloc());
    ASSERT_TRUE(all.back());
  }
  EXPECT_FALSE(pool.alloc());  // pool empty, cache empty: an empty packet, no crash
  all.pop_back();
  EXPECT_TRUE(pool.alloc());  // a freed buffer comes back through the next refill
}

}  // namespace buffer_pool_test
}  // namespace
}  // namespace dpdk_net
