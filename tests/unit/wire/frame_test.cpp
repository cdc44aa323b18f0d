// Whole-frame decoding, and robustness: every truncation and many corruptions of every golden
// frame are decoded without an out-of-bounds read (ASan) and with a definite verdict.
#include "dpdk_net/wire/frame.hpp"

#include <gtest/gtest.h>

#include <random>

#include "golden.hpp"

namespace dpdk_net::wire {
namespace {
namespace frame_test {

using test::from_hex;
namespace golden = test::golden;

const std::string_view all_golden[] = {
    golden::tcp_syn,          golden::tcp_ack_sack, golden::udp,       golden::icmp_echo,
    golden::icmp_frag_needed, golden::arp_request,  golden::arp_reply, golden::ip_options_fragment};

TEST(DecodeFrame, GoldenFramesDecodeToTheRightLayers) {
  auto tcp = decode_frame(from_hex(golden::tcp_syn));
  ASSERT_TRUE(tcp.accepted());
  EXPECT_TRUE(tcp.ipv4 && tcp.tcp && !tcp.udp && !tcp.icmp && !tcp.arp);
  auto udp = decode_frame(from_hex(golden::udp));
  ASSERT_TRUE(udp.accepted());
  EXPECT_TRUE(udp.udp);
  EXPECT_EQ(udp.payload.size(), 12U);
  auto icmp = decode_frame(from_hex(golden::icmp_echo));
  ASSERT_TRUE(icmp.accepted());
  EXPECT_TRUE(icmp.eth.has_vlan && icmp.icmp);
  auto arp = decode_frame(from_hex(golden::arp_request));
  ASSERT_TRUE(arp.accepted());
  EXPECT_TRUE(arp.arp && !arp.ipv4);
  auto frag = decode_frame(from_hex(golden::ip_options_fragment));
  ASSERT_TRUE(frag.accepted());
  EXPECT_TRUE(frag.fragment);
  EXPECT_FALSE(frag.udp);  // L4 of a fragment waits for reassembly
  EXPECT_EQ(frag.payload.size(), 16U);
}

TEST(DecodeFrame, OtherEtherTypesAndProtocolsAreAcceptedUndecoded) {
  auto f = from_hex(golden::udp);
  f[12] = std::byte{0x86};
  f[13] = std::byte{0xdd};  // IPv6: not decoded (yet)
  auto d = decode_frame(f);
  EXPECT_TRUE(d.accepted());
  EXPECT_FALSE(d.ipv4);
  EXPECT_EQ(d.payload.size(), f.size() - 14);
}

TEST(DecodeFrame, ChecksumVerificationCanBeDelegated) {
  auto f = from_hex(golden::tcp_ack_sack);
  f.back() = std::byte{0};
  EXPECT_EQ(decode_frame(f).error, wire_error::tcp_bad_checksum);
  EXPECT_TRUE(decode_frame(f, decode_options{false}).accepted());
}

TEST(DecodeFrame, EveryTruncationHasAVerdict) {
  for (std::string_view vec : all_golden) {
    const auto f = from_hex(vec);
    for (std::size_t n = 0; n < f.size(); ++n) {
      // A copy of exactly n bytes, so ASan sees any read past the end.
      const std::vector<std::byte> cut(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
      const decoded_frame d = decode_frame(cut);
      if (d.accepted()) {
        // A cut frame may still be a whole frame of another EtherType, but never a partial IP
        // datagram or ARP packet (their length checks must refuse it).
        ASSERT_FALSE(d.ipv4) << vec.substr(0, 16) << " cut at " << n;
        ASSERT_FALSE(d.arp) << vec.substr(0, 16) << " cut at " << n;
      }
    }
  }
}

TEST(DecodeFrame, RandomCorruptionNeverReadsOutOfBounds) {
  std::mt19937 rng(20261125);
  std::size_t accepted = 0;
  std::size_t rejected = 0;
  for (int round = 0; round < 20000; ++round) {
    auto f = from_hex(all_golden[rng() % std::size(all_golden)]);
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      f[rng() % f.size()] = static_cast<std::byte>(rng());
    }
    if (rng() % 3 == 0) {
      f.resize(rng() % (f.size() + 1));
    }
    const decoded_frame d = decode_frame(f);
    (d.accepted() ? accepted : rejected) += 1;
    // An accepted frame's payload lies inside the frame.
    if (d.accepted() && !d.payload.empty()) {
      ASSERT_GE(d.payload.data(), f.data());
      ASSERT_LE(d.payload.data() + d.payload.size(), f.data() + f.size());
    }
  }
  // Checksums catch nearly every corruption of the covered bytes, but not all frames are dropped
  // (a flipped MAC or an EtherType change is not an error): both verdicts occur.
  EXPECT_GT(rejected, 10000U);
  EXPECT_GT(accepted, 100U);
}

}  // namespace frame_test
}  // namespace
}  // namespace dpdk_net::wire
