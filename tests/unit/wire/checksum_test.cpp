#include "dpdk_net/wire/checksum.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "golden.hpp"

namespace dpdk_net::wire {
namespace {
namespace checksum_test {

using test::from_hex;

TEST(Checksum, Rfc1071WorkedExample) {
  // RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2 (one's complement).
  const auto data = from_hex("0001f203f4f5f6f7");
  checksum_accumulator acc;
  acc.add(data);
  EXPECT_EQ(acc.sum(), 0xddf2);
  EXPECT_EQ(acc.finish(), 0x220d);
  EXPECT_EQ(internet_checksum(data), 0x220d);
}

TEST(Checksum, OddLengthPadsWithZero) {
  EXPECT_EQ(internet_checksum(from_hex("0102030405")), internet_checksum(from_hex("010203040500")));
}

TEST(Checksum, VerifiedHeaderSumsToZero) {
  // The IPv4 header of a scapy-made frame: its own checksum makes the sum 0xffff.
  const auto frame = from_hex(test::golden::tcp_syn);
  EXPECT_EQ(internet_checksum(std::span(frame).subspan(14, 20)), 0);
}

TEST(Checksum, SplitRangesEqualContiguous) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::byte> data(rng() % 300);
    for (auto& b : data) {
      b = static_cast<std::byte>(rng());
    }
    checksum_accumulator split;
    std::size_t at = 0;
    while (at < data.size()) {
      const std::size_t n = std::min<std::size_t>(rng() % 7, data.size() - at);
      split.add(std::span(data).subspan(at, n));
      at += n;
    }
    ASSERT_EQ(split.finish(), internet_checksum(data)) << "round " << round;
  }
}

TEST(Checksum, Rfc1624IncrementalUpdate) {
  // RFC 1624 section 4: HC = 0xdd2f, m = 0x5555 changed to m' = 0x3285 gives HC' = 0x0000.
  EXPECT_EQ(checksum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

TEST(Checksum, IncrementalUpdateMatchesRecomputation) {
  std::mt19937 rng(777);
  for (int round = 0; round < 500; ++round) {
    std::vector<std::byte> data(20 + 2 * (rng() % 20));
    for (auto& b : data) {
      b = static_cast<std::byte>(rng());
    }
    const std::uint16_t before = internet_checksum(data);
    // Change one aligned 32-bit field (an address, a sequence number).
    const std::size_t at = 4 * (rng() % (data.size() / 4));
    const std::uint32_t old_value = (std::to_integer<std::uint32_t>(data[at]) << 24U) |
                                    (std::to_integer<std::uint32_t>(data[at + 1]) << 16U) |
                                    (std::to_integer<std::uint32_t>(data[at + 2]) << 8U) |
                                    std::to_integer<std::uint32_t>(data[at + 3]);
    const std::uint32_t new_value = rng();
    for (int i = 0; i < 4; ++i) {
      data[at + static_cast<std::size_t>(i)] =
          static_cast<std::byte>(new_value >> (24U - 8U * static_cast<unsigned>(i)));
    }
    ASSERT_EQ(checksum_update32(before, old_value, new_value), internet_checksum(data))
        << "round " << round;
  }
}

TEST(Checksum, PacketAcrossSegments) {
  packet_pool_config c;
  c.count = 4;
  c.buffer_size = 64;
  c.headroom = 0;
  packet_pool pool(c);
  const auto data = from_hex(test::golden::udp);
  packet p = pool.alloc();
  std::memcpy(p.append(33), data.data(), 33);  // odd split: a word straddles segments
  packet tail = pool.alloc();
  std::memcpy(tail.append(data.size() - 33), data.data() + 33, data.size() - 33);
  ASSERT_TRUE(p.chain(std::move(tail)));
  for (std::size_t offset : {0UL, 1UL, 14UL, 20UL}) {
    checksum_accumulator acc;
    add_packet(acc, p, offset, data.size() - offset);
    EXPECT_EQ(acc.finish(), internet_checksum(std::span(data).subspan(offset))) << offset;
  }
}

TEST(Ipv4Address, ParsesAndFormats) {
  EXPECT_EQ(ipv4_address::parse("198.18.0.1"), ipv4_address::from_octets(198, 18, 0, 1));
  EXPECT_EQ(ipv4_address::parse("0.0.0.0"), ipv4_address{});
  EXPECT_EQ(ipv4_address::parse("255.255.255.255")->value, 0xffffffffU);
  EXPECT_EQ(ipv4_address::from_octets(198, 19, 255, 254).to_string(), "198.19.255.254");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "01.2.3.4", "a.b.c.d",
                          "1..2.3", "1.2.3.", "1234.1.1.1"}) {
    EXPECT_FALSE(ipv4_address::parse(bad)) << bad;
  }
  EXPECT_TRUE(ipv4_address::from_octets(224, 0, 0, 1).is_multicast());
  EXPECT_TRUE(ipv4_address::from_octets(127, 0, 0, 1).is_loopback());
}

}  // namespace checksum_test
}  // namespace
}  // namespace dpdk_net::wire
