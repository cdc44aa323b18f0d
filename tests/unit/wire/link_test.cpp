// Ethernet and ARP against scapy's bytes.
#include <gtest/gtest.h>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/wire/arp.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "golden.hpp"

namespace dpdk_net::wire {
namespace {
namespace link_test {

using test::from_hex;
namespace golden = test::golden;

const mac_address mac1 = *mac_address::parse("02:00:00:00:00:01");
const mac_address mac2 = *mac_address::parse("02:00:00:00:00:02");

TEST(Ethernet, ParsesGolden) {
  const auto f = from_hex(golden::tcp_syn);
  const auto r = parse_ethernet(f);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.header.dst, mac1);
  EXPECT_EQ(r.header.src, mac2);
  EXPECT_EQ(r.header.ethertype, ethertype::ipv4);
  EXPECT_FALSE(r.header.has_vlan);
  EXPECT_EQ(r.payload.size(), f.size() - 14);
  EXPECT_EQ(r.payload.data(), f.data() + 14);
}

TEST(Ethernet, ParsesVlanTag) {
  const auto f = from_hex(golden::icmp_echo);
  const auto r = parse_ethernet(f);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.header.has_vlan);
  EXPECT_EQ(r.header.vlan_id(), 100);
  EXPECT_EQ(r.header.vlan_tci >> 13U, 5);  // priority
  EXPECT_EQ(r.header.ethertype, ethertype::ipv4);
  EXPECT_EQ(r.header.length(), 18U);
  EXPECT_EQ(r.payload.size(), f.size() - 18);
}

TEST(Ethernet, BuildsTheSameBytesAsScapy) {
  for (auto vec : {golden::tcp_syn, golden::icmp_echo, golden::arp_request}) {
    const auto f = from_hex(vec);
    const auto r = parse_ethernet(f);
    ASSERT_TRUE(r);
    std::vector<std::byte> out(r.header.length());
    ASSERT_EQ(write_ethernet(out, r.header), out.size());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), f.begin()));
  }
  std::array<std::byte, 13> small{};
  EXPECT_EQ(write_ethernet(small, ethernet_header{}), 0U);
}

TEST(Ethernet, PushPrependsIntoHeadroom) {
  packet_pool_config c;
  c.count = 2;
  c.headroom = 16;
  packet_pool pool(c);
  packet p = pool.alloc();
  ethernet_header h{mac1, mac2, ethertype::arp, false, 0};
  ASSERT_TRUE(push_ethernet(p, h));
  EXPECT_EQ(p.length(), 14U);
  const auto back = parse_ethernet(p.front());
  ASSERT_TRUE(back);
  EXPECT_EQ(back.header.ethertype, ethertype::arp);
  h.has_vlan = true;  // 18 bytes, only 2 of headroom left
  EXPECT_FALSE(push_ethernet(p, h));
  EXPECT_EQ(p.length(), 14U);
}

TEST(Ethernet, Malformed) {
  auto f = from_hex(golden::tcp_syn);
  for (std::size_t n = 0; n < 14; ++n) {
    EXPECT_EQ(parse_ethernet(std::span(f).first(n)).error, wire_error::truncated) << n;
  }
  const auto v = from_hex(golden::icmp_echo);
  for (std::size_t n = 14; n < 18; ++n) {
    EXPECT_EQ(parse_ethernet(std::span(v).first(n)).error, wire_error::truncated) << n;
  }
  auto nested = v;
  nested[16] = std::byte{0x81};  // inner type 0x8100: a second tag
  nested[17] = std::byte{0x00};
  EXPECT_EQ(parse_ethernet(nested).error, wire_error::eth_nested_vlan);
  f[12] = std::byte{0x05};  // 0x05dc: an 802.3 length, not an EtherType
  f[13] = std::byte{0xdc};
  EXPECT_EQ(parse_ethernet(f).error, wire_error::eth_llc_frame);
  f[12] = std::byte{0x06};  // 0x0600 is the first EtherType
  f[13] = std::byte{0x00};
  EXPECT_TRUE(parse_ethernet(f));
}

TEST(Arp, ParsesGoldenRequestAndReply) {
  const auto req = from_hex(golden::arp_request);
  const auto r = parse_arp(std::span(req).subspan(14));
  ASSERT_TRUE(r);
  EXPECT_EQ(r.header.operation, arp_op::request);
  EXPECT_EQ(r.header.sender_mac, mac2);
  EXPECT_EQ(r.header.sender_ip, ipv4_address::from_octets(198, 18, 0, 1));
  EXPECT_TRUE(r.header.target_mac.is_zero());
  EXPECT_EQ(r.header.target_ip, ipv4_address::from_octets(198, 18, 0, 2));
  const auto rep = from_hex(golden::arp_reply);
  const auto p = parse_arp(std::span(rep).subspan(14));
  ASSERT_TRUE(p);
  EXPECT_EQ(p.header.operation, arp_op::reply);
  EXPECT_EQ(p.header.target_mac, mac1);
}

TEST(Arp, BuildsTheSameBytesAsScapy) {
  for (auto vec : {golden::arp_request, golden::arp_reply}) {
    const auto f = from_hex(vec);
    const auto r = parse_arp(std::span(f).subspan(14));
    ASSERT_TRUE(r);
    std::array<std::byte, 28> out{};
    ASSERT_EQ(write_arp(out, r.header), 28U);
    EXPECT_TRUE(std::equal(out.begin(), out.end(), f.begin() + 14));
  }
}

TEST(Arp, PaddingToleratedMalformedRejected) {
  auto f = from_hex(golden::arp_request);
  std::vector<std::byte> padded(f.begin() + 14, f.end());
  padded.resize(46);  // minimum Ethernet payload: 18 bytes of padding
  EXPECT_TRUE(parse_arp(padded));
  EXPECT_EQ(parse_arp(std::span(padded).first(27)).error, wire_error::truncated);
  auto bad = padded;
  bad[1] = std::byte{6};  // htype 6 (IEEE 802)
  EXPECT_EQ(parse_arp(bad).error, wire_error::arp_unsupported);
  bad = padded;
  bad[4] = std::byte{8};  // hlen 8
  EXPECT_EQ(parse_arp(bad).error, wire_error::arp_unsupported);
  bad = padded;
  bad[7] = std::byte{3};  // RARP request
  EXPECT_EQ(parse_arp(bad).error, wire_error::arp_bad_operation);
}

}  // namespace link_test
}  // namespace
}  // namespace dpdk_net::wire
