// The keyed hash under every table (SipHash-2-4 against the reference vectors), key derivation,
// and the O(1) building blocks: the keyed slot index, the eviction list, the token bucket.
#include "dpdk_net/stack/secret.hpp"

#include <gtest/gtest.h>

#include <array>
#include <set>

#include "dpdk_net/stack/detail/slot_index.hpp"
#include "dpdk_net/stack/detail/token_bucket.hpp"

namespace dpdk_net::stack {
namespace {
namespace secret_test {

// The reference vectors (Aumasson and Bernstein's siphash24.c): key 00 01 .. 0f, messages
// 00 01 .. (n-1) for n = 0..15. Independent of our code: published with the algorithm.
constexpr std::array<std::uint64_t, 16> reference = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
    0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
    0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
};
constexpr sip_key reference_key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

TEST(SipHash, MatchesTheReferenceVectors) {
  std::array<std::byte, 16> msg{};
  for (std::size_t i = 0; i < msg.size(); ++i) {
    msg[i] = static_cast<std::byte>(i);
  }
  for (std::size_t n = 0; n < reference.size(); ++n) {
    EXPECT_EQ(siphash24(reference_key, std::span(msg).first(n)), reference[n]) << n;
  }
  // The word forms hash the same bytes (little-endian words).
  EXPECT_EQ(siphash24(reference_key, 0x0706050403020100ULL), reference[8]);
  EXPECT_EQ(siphash24(reference_key, 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL),
            siphash24(reference_key, std::span(msg)));
}

TEST(StackSecret, EachPurposeGetsItsOwnKeyAndBothHalvesOfTheSecretMatter) {
  const stack_secret s{0x1111, 0x2222};
  std::set<std::pair<std::uint64_t, std::uint64_t>> keys;
  for (auto p : {key_purpose::arp_index, key_purpose::pmtu_index, key_purpose::reassembly_index,
                 key_purpose::ephemeral_port, key_purpose::tcp_isn, key_purpose::tcp_syn_cookie,
                 key_purpose::tcp_connection_index}) {
    const sip_key k = derive_key(s, p);
    keys.insert({k.k0, k.k1});
  }
  EXPECT_EQ(keys.size(), 7U);
  const sip_key a = derive_key(stack_secret{0x1111, 0x2222}, key_purpose::arp_index);
  const sip_key b = derive_key(stack_secret{0x1111, 0x2223}, key_purpose::arp_index);  // k1 only
  const sip_key c = derive_key(stack_secret{0x1112, 0x2222}, key_purpose::arp_index);  // k0 only
  EXPECT_NE(a.k0, b.k0);
  EXPECT_NE(a.k0, c.k0);
}

TEST(SlotIndex, KeyedHashKeepsProbeRunsShortForKeysChosenToCollide) {
  // 1000 keys equal in their low 12 bits: an identity or multiplicative hash puts them all in
  // one probe run of a 2048-cell table; SipHash-keyed homes do not.
  detail::slot_index index(1000);
  const sip_key key{42, 43};
  std::vector<std::uint64_t> keys;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    keys.push_back(std::uint64_t{i} << 12U);
    index.insert(siphash24(key, keys.back()), i);
  }
  std::size_t longest = 0;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    const std::uint64_t h = siphash24(key, keys[i]);
    ASSERT_EQ(index.find(h, [&](std::uint32_t s) { return s == i; }), i);
    longest = std::max(longest, index.probe_length(h));
  }
  EXPECT_LE(longest, 40U);  // expected longest run at load 1/2: ~15; unkeyed: 1000
  // Deleting half keeps the rest findable (backward shift, no tombstones).
  for (std::uint32_t i = 0; i < 1000; i += 2) {
    index.erase(siphash24(key, keys[i]), i);
  }
  for (std::uint32_t i = 0; i < 1000; ++i) {
    const std::uint32_t want = i % 2 == 0 ? detail::no_slot : i;
    ASSERT_EQ(index.find(siphash24(key, keys[i]), [&](std::uint32_t s) { return s == i; }), want);
  }
}

TEST(SlotIndex, BackwardShiftDeletionAcrossTheWrapAtTheTableEnd) {
  // 8 cells (room for 4). Raw hashes chosen so a probe run wraps from the last cell to the first.
  detail::slot_index index(4);
  index.insert(6, 0);   // home 6
  index.insert(7, 1);   // home 7
  index.insert(14, 2);  // home 6: run 6, 7, 0 -> lands in 0
  index.insert(15, 3);  // home 7: lands in 1
  const auto has = [&](std::uint64_t h, std::uint32_t slot) {
    return index.find(h, [&](std::uint32_t s) { return s == slot; }) == slot;
  };
  index.erase(6, 0);  // the hole at 6 must be refilled from across the wrap
  EXPECT_TRUE(has(7, 1));
  EXPECT_TRUE(has(14, 2));
  EXPECT_TRUE(has(15, 3));
  EXPECT_FALSE(has(6, 0));
  index.erase(7, 1);
  EXPECT_TRUE(has(14, 2));
  EXPECT_TRUE(has(15, 3));
  EXPECT_EQ(index.probe_length(14), 2U);  // 14 moved home to 6, 15 next to it at 7
}

TEST(IdList, FifoWithRemovalAnywhere) {
  detail::id_list l(8);
  for (std::uint32_t i : {3U, 1U, 4U, 5U}) {
    l.push_back(i);
  }
  EXPECT_EQ(l.front(), 3U);
  l.remove(3);
  EXPECT_EQ(l.front(), 1U);
  l.push_back(1);  // moves to the back
  EXPECT_EQ(l.front(), 4U);
  l.remove(5);
  l.remove(5);  // not there: ignored
  EXPECT_EQ(l.size(), 2U);
  l.remove(4);
  EXPECT_EQ(l.front(), 1U);
  l.remove(1);
  EXPECT_TRUE(l.empty());
}

TEST(TokenBucket, IntegerRefillBurstAndRate) {
  detail::token_bucket b(100, 50, 0);  // 100/s, burst 50
  int taken = 0;
  while (b.take(0)) {
    ++taken;
  }
  EXPECT_EQ(taken, 50);
  EXPECT_FALSE(b.take(9 * millisecond));  // 0.9 of a token
  EXPECT_TRUE(b.take(10 * millisecond));  // one token after 10 ms
  taken = 0;
  while (b.take(10 * second)) {  // a long idle time refills to the burst, not beyond
    ++taken;
  }
  EXPECT_EQ(taken, 50);
  detail::token_bucket huge(4'000'000'000U, 4'000'000'000U, 0);
  EXPECT_TRUE(huge.take(UINT64_MAX / 2));  // no overflow after a huge gap
}

}  // namespace secret_test
}  // namespace
}  // namespace dpdk_net::stack
