// IPv4 and ICMPv4 against scapy's bytes, and the malformations of docs/wire.md.
#include <gtest/gtest.h>

#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "dpdk_net/wire/tcp.hpp"
#include "golden.hpp"

namespace dpdk_net::wire {
namespace {
namespace ip_test {

using test::from_hex;
namespace golden = test::golden;

/// The IPv4 part of a golden frame (after a 14-byte Ethernet header, or 18 with a tag).
std::vector<std::byte> ip_of(std::string_view vec, std::size_t l2 = 14) {
  auto f = from_hex(vec);
  return {f.begin() + static_cast<std::ptrdiff_t>(l2), f.end()};
}

/// Rewrites the header checksum after a test edits header bytes (so only the edit is wrong).
void fix_checksum(std::vector<std::byte>& ip) {
  const std::size_t ihl = (std::to_integer<unsigned>(ip[0]) & 0xfU) * 4U;
  ip[10] = ip[11] = std::byte{0};
  const std::uint16_t c = internet_checksum(std::span(ip).first(std::min(ihl, ip.size())));
  ip[10] = static_cast<std::byte>(c >> 8U);
  ip[11] = static_cast<std::byte>(c & 0xffU);
}

TEST(Ipv4, ParsesGolden) {
  const auto ip = ip_of(golden::tcp_syn);
  const auto r = parse_ipv4(ip);
  ASSERT_TRUE(r) << to_string(r.error);
  const ipv4_header& h = r.header;
  EXPECT_EQ(h.header_length, 20);
  EXPECT_EQ(h.total_length, 60);
  EXPECT_EQ(h.id, 0x1234);
  EXPECT_TRUE(h.dont_fragment);
  EXPECT_FALSE(h.more_fragments);
  EXPECT_FALSE(h.is_fragment());
  EXPECT_EQ(h.ttl, 64);
  EXPECT_EQ(h.protocol, ip_protocol::tcp);
  EXPECT_EQ(h.checksum, 0x9c60);
  EXPECT_EQ(h.src, ipv4_address::from_octets(198, 18, 0, 1));
  EXPECT_EQ(h.dst, ipv4_address::from_octets(198, 18, 0, 2));
  EXPECT_EQ(r.payload.size(), 40U);
}

TEST(Ipv4, BuildsTheSameBytesAsScapy) {
  for (auto vec : {golden::tcp_syn, golden::tcp_ack_sack, golden::udp, golden::icmp_frag_needed}) {
    const auto ip = ip_of(vec);
    const auto r = parse_ipv4(ip);
    ASSERT_TRUE(r);
    std::array<std::byte, 20> out{};
    ASSERT_EQ(write_ipv4(out, r.header), 20U);
    EXPECT_TRUE(std::equal(out.begin(), out.end(), ip.begin()));  // checksum included
  }
}

TEST(Ipv4, OptionsAndFragmentFields) {
  const auto ip = ip_of(golden::ip_options_fragment);
  const auto r = parse_ipv4(ip);
  ASSERT_TRUE(r) << to_string(r.error);
  EXPECT_EQ(r.header.header_length, 28);  // 8 bytes of options (record route), skipped
  EXPECT_TRUE(r.header.more_fragments);
  EXPECT_TRUE(r.header.is_fragment());
  EXPECT_EQ(r.payload.size(), 16U);
  EXPECT_EQ(r.payload.data(), ip.data() + 28);
}

TEST(Ipv4, EthernetPaddingIsTrimmed) {
  auto ip = ip_of(golden::udp);
  ip.resize(ip.size() + 6);  // padding up to the 60-byte minimum frame
  const auto r = parse_ipv4(ip);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.payload.size(), 40U - 20U);
}

TEST(Ipv4, MalformedHeaders) {
  const auto good = ip_of(golden::tcp_syn);
  for (std::size_t n = 0; n < 20; ++n) {
    EXPECT_EQ(parse_ipv4(std::span(good).first(n)).error, wire_error::truncated) << n;
  }
  auto v = good;
  v[0] = std::byte{0x65};  // version 6
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_bad_version);
  for (unsigned ihl = 0; ihl < 5; ++ihl) {
    v = good;
    v[0] = static_cast<std::byte>(0x40U | ihl);
    EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_bad_header_length) << ihl;
  }
  v = good;
  v[0] = std::byte{0x4f};  // 60-byte header in 60 bytes: fits, but total length 60 < ...
  v.resize(40);            // ... here only 40 bytes exist
  EXPECT_EQ(parse_ipv4(v).error, wire_error::truncated);
  v = good;
  v[2] = std::byte{0};
  v[3] = std::byte{19};  // total length 19 < header 20
  fix_checksum(v);
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_bad_total_length);
  v = good;
  v[3] = std::byte{61};  // one byte more than the frame holds
  fix_checksum(v);
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_length_exceeds_frame);
  v = good;
  v[8] = std::byte{1};  // TTL changed, checksum not
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_bad_checksum);
  EXPECT_TRUE(
      parse_ipv4(v, ipv4_parse_options{.verify_checksum = false}));  // device vouched: not verified
}

TEST(Ipv4, MalformedOptionsRejected) {
  const auto good = ip_of(golden::ip_options_fragment);
  // Options area: bytes 20..27 = 07 07 04 c6 12 00 05 00 (record route, EOL).
  auto v = good;
  v[21] = std::byte{0};  // option length 0
  fix_checksum(v);
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_bad_option);
  v = good;
  v[21] = std::byte{1};  // option length 1
  fix_checksum(v);
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_bad_option);
  v = good;
  v[21] = std::byte{9};  // past the 8-byte area
  fix_checksum(v);
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_bad_option);
  v = good;
  v[27] = std::byte{0x44};  // a kind in the last byte, with no room for its length
  fix_checksum(v);
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_bad_option);
  v = good;
  for (std::size_t i = 20; i < 28; ++i) {
    v[i] = std::byte{1};  // all NOPs: fine
  }
  fix_checksum(v);
  EXPECT_TRUE(parse_ipv4(v));
}

TEST(Ipv4, OversizedFragmentRejected) {
  auto v = ip_of(golden::ip_options_fragment);
  // Offset 8190 * 8 = 65520; + 16 bytes of payload = 65536 > 65535.
  v[6] = static_cast<std::byte>(0x20U | (8190U >> 8U));
  v[7] = static_cast<std::byte>(8190U & 0xffU);
  fix_checksum(v);
  EXPECT_EQ(parse_ipv4(v).error, wire_error::ip_fragment_too_large);
  v[7] = static_cast<std::byte>(8189U & 0xffU);  // 65512 + 16 = 65528: fine
  fix_checksum(v);
  EXPECT_TRUE(parse_ipv4(v));
}

TEST(Icmp, ParsesGoldenEcho) {
  const auto ip = ip_of(golden::icmp_echo, 18);
  const auto r = parse_ipv4(ip);
  ASSERT_TRUE(r);
  const auto c = parse_icmp(r.payload);
  ASSERT_TRUE(c) << to_string(c.error);
  EXPECT_EQ(c.header.type, icmp_type::echo_request);
  EXPECT_EQ(c.header.code, 0);
  EXPECT_EQ(c.header.identifier(), 0x4242);
  EXPECT_EQ(c.header.sequence(), 7);
  EXPECT_EQ(c.header.checksum, 0x2421);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c.payload.data()), c.payload.size()),
            "abcdefgh");
  // Builder: same header, same body, same checksum as scapy.
  std::vector<std::byte> out(16);
  ASSERT_EQ(write_icmp(out, c.header, c.payload), 16U);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), r.payload.begin()));
}

TEST(Icmp, ParsesGoldenFragNeededAndItsQuote) {
  const auto ip = ip_of(golden::icmp_frag_needed);
  const auto r = parse_ipv4(ip);
  ASSERT_TRUE(r);
  const auto c = parse_icmp(r.payload);
  ASSERT_TRUE(c) << to_string(c.error);
  EXPECT_EQ(c.header.type, icmp_type::destination_unreachable);
  EXPECT_EQ(c.header.code, icmp_unreachable::fragmentation_needed);
  EXPECT_EQ(c.header.next_hop_mtu(), 1400);
  EXPECT_TRUE(c.header.is_error());
  // The quoted header claims 1500 bytes but only 40 are quoted.
  EXPECT_EQ(parse_ipv4(c.payload).error, wire_error::ip_length_exceeds_frame);
  const auto q = parse_ipv4(c.payload, ipv4_parse_options{.verify_checksum = true, .quoted = true});
  ASSERT_TRUE(q) << to_string(q.error);
  EXPECT_EQ(q.header.total_length, 1500);
  EXPECT_EQ(q.payload.size(), 20U);
  EXPECT_EQ(q.header.src, ipv4_address::from_octets(198, 18, 0, 1));
  EXPECT_EQ(q.header.protocol, ip_protocol::tcp);
  const auto ports = parse_tcp(c.payload.subspan(q.header.header_length));
  ASSERT_TRUE(ports);
  EXPECT_EQ(ports.header.src_port, 40000);
  EXPECT_EQ(ports.header.seq, 5U);
}

TEST(Icmp, Malformed) {
  const auto ip = ip_of(golden::icmp_frag_needed);
  const auto msg = parse_ipv4(ip).payload;
  std::vector<std::byte> m(msg.begin(), msg.end());
  for (std::size_t n = 0; n < 8; ++n) {
    EXPECT_EQ(parse_icmp(std::span(m).first(n)).error, wire_error::truncated) << n;
  }
  auto bad = m;
  bad[7] = std::byte{0x77};  // MTU changed, checksum not
  EXPECT_EQ(parse_icmp(bad).error, wire_error::icmp_bad_checksum);
  // A quote of fewer than 20 + 8 bytes is unusable.
  icmp_header h{icmp_type::destination_unreachable, icmp_unreachable::port, 0, 0};
  std::vector<std::byte> out(8 + 27);
  ASSERT_EQ(write_icmp(out, h, std::span(m).subspan(8, 27)), out.size());
  EXPECT_EQ(parse_icmp(out).error, wire_error::icmp_bad_quote);
  out.resize(8 + 28);
  ASSERT_EQ(write_icmp(out, h, std::span(m).subspan(8, 28)), out.size());
  EXPECT_TRUE(parse_icmp(out));
  // A quote that is not IPv4.
  std::vector<std::byte> q(m.begin() + 8, m.end());
  q[0] = std::byte{0x60};
  out.resize(8 + q.size());
  ASSERT_EQ(write_icmp(out, h, q), out.size());
  EXPECT_EQ(parse_icmp(out).error, wire_error::icmp_bad_quote);
  // An echo needs no quote.
  icmp_header echo{icmp_type::echo_reply, 0, 0, 0x00010002};
  std::array<std::byte, 8> bare{};
  ASSERT_EQ(write_icmp(bare, echo, {}), 8U);
  const auto e = parse_icmp(bare);
  ASSERT_TRUE(e);
  EXPECT_EQ(e.header.sequence(), 2);
}

TEST(Icmp, FragNeededWithMtuZeroIsReportedAsIs) {
  // Rule table: the wire layer reports MTU 0; the stack refuses to lower the path MTU on it.
  icmp_header h{icmp_type::destination_unreachable, icmp_unreachable::fragmentation_needed, 0, 0};
  const auto ip = ip_of(golden::icmp_frag_needed);
  const auto quote = parse_ipv4(ip).payload.subspan(8);
  std::vector<std::byte> out(8 + quote.size());
  ASSERT_EQ(write_icmp(out, h, quote), out.size());
  const auto r = parse_icmp(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.header.next_hop_mtu(), 0);
}

}  // namespace ip_test
}  // namespace
}  // namespace dpdk_net::wire
