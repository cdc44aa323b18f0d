#include "dpdk_net/packet.hpp"

#include <gtest/gtest.h>

#include <array>
#include <numeric>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"

namespace dpdk_net {
namespace {
namespace packet_test {

class PacketTest : public ::testing::Test {
 protected:
  static packet_pool_config config() {
    packet_pool_config c;
    c.name = "packet-test";
    c.count = 32;
    c.buffer_size = 256;
    c.headroom = 64;
    return c;
  }
  packet_pool pool{config()};

  /// A packet holding bytes first, first+1, ... (mod 256).
  packet filled(std::size_t n, std::uint8_t first) {
    packet p = pool.alloc();
    std::byte* d = p.append(n);
    for (std::size_t i = 0; i < n; ++i) {
      d[i] = static_cast<std::byte>(first + i);
    }
    return p;
  }
};

TEST_F(PacketTest, PrependUsesHeadroomAndFailsCleanlyBeyondIt) {
  packet p = filled(10, 0);
  std::byte* h = p.prepend(14);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h, p.front().data());
  EXPECT_EQ(p.length(), 24U);
  EXPECT_EQ(p.headroom(), 50U);
  // The old data now follows the new header bytes.
  EXPECT_EQ(p.front()[14], std::byte{0});
  EXPECT_EQ(p.prepend(51), nullptr);  // more than the headroom left: unchanged
  EXPECT_EQ(p.length(), 24U);
  EXPECT_NE(p.prepend(50), nullptr);
  EXPECT_EQ(p.headroom(), 0U);
}

TEST_F(PacketTest, AppendUsesTailroomAndFailsCleanlyBeyondIt) {
  packet p = pool.alloc();
  EXPECT_EQ(p.append(193), nullptr);  // 256 - 64 = 192 bytes of room
  EXPECT_EQ(p.length(), 0U);
  ASSERT_NE(p.append(192), nullptr);
  EXPECT_EQ(p.tailroom(), 0U);
  EXPECT_EQ(p.append(1), nullptr);
}

TEST_F(PacketTest, TrimFrontAndBack) {
  packet p = filled(20, 0);
  EXPECT_TRUE(p.trim_front(5));
  EXPECT_EQ(p.front()[0], std::byte{5});
  EXPECT_TRUE(p.trim_back(5));
  EXPECT_EQ(p.length(), 10U);
  EXPECT_EQ(p.front()[9], std::byte{14});
  EXPECT_FALSE(p.trim_front(11));
  EXPECT_FALSE(p.trim_back(11));
  EXPECT_EQ(p.length(), 10U);
}

TEST_F(PacketTest, EmptyPacketOperationsAreHarmless) {
  packet p;
  EXPECT_FALSE(p);
  EXPECT_EQ(p.length(), 0U);
  EXPECT_EQ(p.prepend(1), nullptr);
  EXPECT_EQ(p.append(1), nullptr);
  EXPECT_FALSE(p.trim_front(0));
  EXPECT_TRUE(p.front().empty());
  p.reset();
  EXPECT_EQ(p.release(), nullptr);
}

TEST_F(PacketTest, MoveTransfersOwnership) {
  packet a = filled(8, 1);
  segment* s = a.head();
  packet b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(b.head(), s);
  const std::size_t before = pool.available();
  packet c = filled(1, 0);
  c = std::move(b);  // c's old buffer is freed, b's moves in
  EXPECT_EQ(pool.available(), before);
  EXPECT_EQ(c.head(), s);
  c = std::move(c);  // self-move keeps the packet
  EXPECT_EQ(c.head(), s);
}

TEST_F(PacketTest, ReleaseAndAdoptRoundTrip) {
  const std::size_t before = pool.available();
  packet p = filled(4, 9);
  segment* raw = p.release();
  EXPECT_FALSE(p);
  EXPECT_EQ(pool.available(), before - 1);  // the released chain is not freed
  packet q = packet::adopt(raw);
  EXPECT_EQ(q.length(), 4U);
  q.reset();
  EXPECT_EQ(pool.available(), before);
}

TEST_F(PacketTest, ChainBuildsHeaderPlusPayloadSegments) {
  packet header = filled(54, 0);
  packet payload1 = filled(100, 54);
  packet payload2 = filled(46, 154);
  ASSERT_TRUE(header.chain(std::move(payload1)));
  ASSERT_TRUE(header.chain(std::move(payload2)));
  EXPECT_FALSE(payload1);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(header.length(), 200U);
  EXPECT_EQ(header.segment_count(), 3U);
  std::vector<std::uint32_t> lengths;
  for (const segment& s : header.segments()) {
    lengths.push_back(s.data_len);
  }
  EXPECT_EQ(lengths, (std::vector<std::uint32_t>{54, 100, 46}));
  // Gathered bytes are 0..199 in order, across segment boundaries.
  std::array<std::byte, 200> all{};
  ASSERT_EQ(header.copy_out(0, all), 200U);
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i], static_cast<std::byte>(i));
  }
  std::array<std::byte, 10> mid{};
  ASSERT_EQ(header.copy_out(150, mid), 10U);
  EXPECT_EQ(mid[0], std::byte{150});
  EXPECT_EQ(header.copy_out(195, mid), 5U);  // short read at the end
  EXPECT_EQ(header.copy_out(500, mid), 0U);
  // Append goes to the last segment.
  ASSERT_NE(header.append(4), nullptr);
  EXPECT_EQ(header.length(), 204U);
  const std::size_t before = pool.available();
  header.reset();  // frees all three segments
  EXPECT_EQ(pool.available(), before + 3);
}

TEST_F(PacketTest, ChainRefusesEmptyAndTooLong) {
  packet a = filled(1, 0);
  packet empty;
  EXPECT_FALSE(a.chain(std::move(empty)));
  EXPECT_FALSE(empty.chain(filled(1, 0)));
  EXPECT_FALSE(a.chain(std::move(a)));
  // Build max_segments by chaining; one more is refused and both packets stay intact.
  packet_pool_config c;
  c.count = packet::max_segments + 1;
  c.buffer_size = 64;
  c.headroom = 0;
  packet_pool big(c);
  packet chain = big.alloc();
  for (std::size_t i = 1; i < packet::max_segments; ++i) {
    ASSERT_TRUE(chain.chain(big.alloc()));
  }
  packet extra = big.alloc();
  EXPECT_FALSE(chain.chain(std::move(extra)));
  EXPECT_TRUE(extra);
  EXPECT_EQ(chain.segment_count(), packet::max_segments);
}

TEST_F(PacketTest, ExternalBufferIsSharedWithoutCopyAndReleasedOnce) {
  std::array<std::byte, 1000> storage{};
  std::iota(reinterpret_cast<std::uint8_t*>(storage.data()),
            reinterpret_cast<std::uint8_t*>(storage.data()) + storage.size(), 0);
  int released = 0;
  external_buffer ext;
  ext.data = storage.data();
  ext.size = storage.size();
  ext.context = &released;
  ext.on_release = [](external_buffer&, void* ctx) noexcept { ++*static_cast<int*>(ctx); };

  packet header = filled(40, 0);
  packet body = pool.attach_external(ext, 100, 500);
  ASSERT_TRUE(body);
  EXPECT_EQ(body.front().data(), storage.data() + 100);  // zero copy
  EXPECT_EQ(body.append(1), nullptr);                    // external data is not ours to grow
  ASSERT_TRUE(body.trim_front(10));
  EXPECT_EQ(body.prepend(10), nullptr);  // nor to write headers into (it is the app's buffer)
  EXPECT_EQ(storage[100], std::byte{100});
  EXPECT_EQ(ext.references, 2U);
  packet second = pool.attach_external(ext, 0, 1000);
  EXPECT_EQ(ext.references, 3U);
  EXPECT_FALSE(pool.attach_external(ext, 900, 101));  // past the end
  EXPECT_FALSE(pool.attach_external(ext, 1001, 0));
  ASSERT_TRUE(header.chain(std::move(body)));
  EXPECT_EQ(header.length(), 530U);  // 40 + 500 - the 10 trimmed

  header.reset();
  second.reset();
  EXPECT_EQ(ext.references, 1U);
  EXPECT_EQ(released, 0);  // the creator still holds its reference
  ext.drop_reference();
  EXPECT_EQ(released, 1);
  // The pool's descriptors point at pool memory again once reused.
  packet again = pool.alloc();
  EXPECT_EQ(again.tailroom(), 256U - 64U);
}

TEST_F(PacketTest, FreeBurstReturnsEverythingAcrossPools) {
  packet_pool_config c = config();
  c.name = "other";
  packet_pool other(c);
  std::vector<packet> burst;
  burst.push_back(filled(1, 0));
  burst.push_back(other.alloc());
  burst.push_back(filled(1, 0));
  burst.emplace_back();  // an empty slot is fine
  ASSERT_TRUE(burst[0].chain(other.alloc()));
  free_burst(burst);
  EXPECT_EQ(pool.available(), pool.capacity());
  EXPECT_EQ(other.available(), other.capacity());
  EXPECT_EQ(pool.stats().foreign_frees, 0U);
  EXPECT_EQ(other.stats().foreign_frees, 0U);
}

TEST_F(PacketTest, MetadataLivesInTheHead) {
  packet p = filled(10, 0);
  p.meta().rss_hash = 0xdeadbeef;
  p.meta().rss_hash_valid = true;
  p.meta().l4_checksum = checksum_status::good;
  packet tail = filled(10, 0);
  tail.meta().rss_hash = 1;
  ASSERT_TRUE(p.chain(std::move(tail)));
  EXPECT_EQ(p.meta().rss_hash, 0xdeadbeefU);
  EXPECT_EQ(p.meta().l4_checksum, checksum_status::good);
}

// A handle adopted from a chain that has been freed and re-allocated since (by LIFO, the very next
// allocation hands the same buffer out) must not free the new owner's buffer.
TEST_F(PacketTest, StaleFreeOfAReallocatedSegmentIsCountedAndIgnored) {
  if constexpr (!segment_generations) {
    GTEST_SKIP() << "generation tags are on only in Debug and sanitizer builds";
  }
  const std::size_t capacity = pool.capacity();
  packet original = pool.alloc();
  segment* raw = original.release();
  packet first = packet::adopt(raw);
  packet stale = packet::adopt(raw);  // the misuse: the same chain adopted twice
  first.reset();
  packet live = filled(16, 0x40);
  ASSERT_EQ(live.head(), raw);  // LIFO: the stale handle now points at a live buffer
  EXPECT_FALSE(stale.current());
  EXPECT_TRUE(live.current());

  stale.reset();
  EXPECT_EQ(pool.stats().stale_frees, 1U);
  EXPECT_EQ(pool.stats().double_frees, 0U);
  EXPECT_EQ(pool.available(), capacity - 1);  // live's buffer did not go back
  packet next = pool.alloc();
  EXPECT_NE(next.head(), raw);  // ...so it is not handed out twice
  ASSERT_EQ(live.length(), 16U);
  EXPECT_EQ(live.front()[15], std::byte{0x4f});
  EXPECT_EQ(live.head()->status, segment::state::in_use);

  // free_burst and chain refuse a stale handle too.
  packet again = packet::adopt(raw);
  segment* raw_next = next.release();
  std::array<packet, 2> burst{packet::adopt(raw_next), packet::adopt(raw_next)};
  burst[0].reset();
  packet reused = pool.alloc();
  ASSERT_EQ(reused.head(), raw_next);
  free_burst(std::span<packet>(burst.data() + 1, 1));
  EXPECT_EQ(pool.stats().stale_frees, 2U);
  EXPECT_EQ(pool.available(), capacity - 2);
  packet tail = packet::adopt(raw_next);
  reused.reset();
  packet other = filled(4, 0);
  EXPECT_FALSE(other.chain(std::move(tail)));  // tail is stale: not spliced
  EXPECT_EQ(other.segment_count(), 1U);

  live.reset();
  (void)again.release();  // a second live handle to live's old buffer: not freed twice
  other.reset();
  tail.reset();  // stale (its segment was freed by `reused`): counted, nothing freed
  EXPECT_EQ(pool.available(), capacity);
  EXPECT_EQ(pool.stats().double_frees, 0U);
}

}  // namespace packet_test
}  // namespace
}  // namespace dpdk_net
