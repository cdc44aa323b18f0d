// UDP and TCP (with every option) against scapy's bytes, and the malformations of docs/wire.md.
#include <gtest/gtest.h>

#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "dpdk_net/wire/tcp.hpp"
#include "dpdk_net/wire/udp.hpp"
#include "golden.hpp"

namespace dpdk_net::wire {
namespace {
namespace transport_test {

using test::from_hex;
namespace golden = test::golden;

struct l4 {
  pseudo_header ph;
  std::vector<std::byte> bytes;  // the IP payload
};

l4 l4_of(std::string_view vec) {
  const auto f = from_hex(vec);
  const auto ip = parse_ipv4(std::span(f).subspan(14));
  EXPECT_TRUE(ip);
  return {pseudo_header{ip.header.src, ip.header.dst}, {ip.payload.begin(), ip.payload.end()}};
}

/// Rewrites the TCP checksum after a test edits the segment (so only the edit is wrong).
void fix_tcp(l4& s) {
  set_tcp_checksum(s.bytes, s.ph);
}

TEST(Udp, ParsesGoldenAndVerifiesChecksum) {
  const l4 u = l4_of(golden::udp);
  const auto r = parse_udp(u.bytes, &u.ph);
  ASSERT_TRUE(r) << to_string(r.error);
  EXPECT_EQ(r.header.src_port, 5353);
  EXPECT_EQ(r.header.dst_port, 53);
  EXPECT_EQ(r.header.length, 20);
  EXPECT_EQ(r.header.checksum, 0x1e36);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size()),
            "hello, world");
}

TEST(Udp, BuildsTheSameBytesAsScapy) {
  const l4 u = l4_of(golden::udp);
  const auto r = parse_udp(u.bytes, &u.ph);
  ASSERT_TRUE(r);
  std::array<std::byte, 8> out{};
  ASSERT_EQ(write_udp(out, r.header, r.payload, u.ph), 8U);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), u.bytes.begin()));
}

TEST(Udp, Malformed) {
  const l4 u = l4_of(golden::udp);
  for (std::size_t n = 0; n < 8; ++n) {
    EXPECT_EQ(parse_udp(std::span(u.bytes).first(n)).error, wire_error::truncated) << n;
  }
  auto v = u.bytes;
  v[5] = std::byte{7};  // length 7 < 8
  EXPECT_EQ(parse_udp(v).error, wire_error::udp_bad_length);
  v[5] = std::byte{21};  // one more than the IP payload
  EXPECT_EQ(parse_udp(v).error, wire_error::udp_length_exceeds_ip);
  v = u.bytes;
  v[10] = std::byte{'j'};  // payload changed, checksum not
  EXPECT_EQ(parse_udp(v, &u.ph).error, wire_error::udp_bad_checksum);
  EXPECT_TRUE(parse_udp(v));   // not verified without a pseudo-header
  v[6] = v[7] = std::byte{0};  // checksum 0: "none" over IPv4
  EXPECT_TRUE(parse_udp(v, &u.ph));
  v = u.bytes;
  v[5] = std::byte{16};  // shorter than the IP payload: the rest is ignored
  const auto r = parse_udp(v);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.payload.size(), 8U);
}

TEST(Udp, ZeroChecksumIsSentAsAllOnes) {
  // Find a body whose checksum computes to 0 and check it goes out as 0xffff (RFC 768).
  pseudo_header ph{ipv4_address::from_octets(198, 18, 0, 1),
                   ipv4_address::from_octets(198, 18, 0, 2)};
  udp_header h{1, 2, 0, 0};
  std::array<std::byte, 2> body{};
  std::array<std::byte, 8> out{};
  for (unsigned v = 0; v <= 0xffff; ++v) {
    body[0] = static_cast<std::byte>(v >> 8U);
    body[1] = static_cast<std::byte>(v & 0xffU);
    write_udp(out, h, body, ph);
    checksum_accumulator acc;
    add_pseudo_header(acc, ph.src, ph.dst, ip_protocol::udp, 10);
    acc.add(std::span(out).first(6));
    acc.add(body);
    if (acc.finish() == 0) {
      EXPECT_EQ(out[6], std::byte{0xff});
      EXPECT_EQ(out[7], std::byte{0xff});
      return;
    }
  }
  FAIL() << "no body with a zero checksum found";
}

TEST(Tcp, ParsesGoldenSynWithEveryHandshakeOption) {
  const l4 s = l4_of(golden::tcp_syn);
  const auto r = parse_tcp(s.bytes, &s.ph);
  ASSERT_TRUE(r) << to_string(r.error);
  const tcp_header& h = r.header;
  EXPECT_EQ(h.src_port, 40000);
  EXPECT_EQ(h.dst_port, 80);
  EXPECT_EQ(h.seq, 0x01020304U);
  EXPECT_EQ(h.ack, 0U);
  EXPECT_EQ(h.header_length, 40);
  EXPECT_EQ(h.flags, tcp_flag::syn);
  EXPECT_EQ(h.window, 64240);
  EXPECT_EQ(h.checksum, 0xa8b7);
  EXPECT_EQ(h.options.mss, 1460);
  EXPECT_TRUE(h.options.sack_permitted);
  ASSERT_TRUE(h.options.timestamps);
  EXPECT_EQ(h.options.timestamps->value, 0xaabbccddU);
  EXPECT_EQ(h.options.timestamps->echo_reply, 0U);
  EXPECT_EQ(h.options.window_scale, 7);
  EXPECT_EQ(h.options.sack_count, 0);
  EXPECT_TRUE(r.payload.empty());
}

TEST(Tcp, ParsesGoldenAckWithSackBlocksAndData) {
  const l4 s = l4_of(golden::tcp_ack_sack);
  const auto r = parse_tcp(s.bytes, &s.ph);
  ASSERT_TRUE(r) << to_string(r.error);
  const tcp_header& h = r.header;
  EXPECT_EQ(h.flags, tcp_flag::psh | tcp_flag::ack);
  EXPECT_EQ(h.seq, 1000U);
  EXPECT_EQ(h.ack, 2000U);
  EXPECT_EQ(h.window, 501);
  EXPECT_FALSE(h.options.mss);
  ASSERT_TRUE(h.options.timestamps);
  EXPECT_EQ(*h.options.timestamps, (tcp_timestamps{11, 22}));
  ASSERT_EQ(h.options.sack_count, 2);
  EXPECT_EQ(h.options.sack[0], (sack_block{3000, 4000}));
  EXPECT_EQ(h.options.sack[1], (sack_block{5000, 6000}));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size()),
            "GET / HTTP/1.1\r\n\r\n");
}

TEST(Tcp, BuildsTheSameBytesAsScapy) {
  for (auto vec : {golden::tcp_syn, golden::tcp_ack_sack}) {
    const l4 s = l4_of(vec);
    const auto r = parse_tcp(s.bytes, &s.ph);
    ASSERT_TRUE(r);
    std::vector<std::byte> out(s.bytes.size());
    const std::size_t hl = write_tcp(out, r.header);
    ASSERT_EQ(hl, r.header.header_length);
    std::copy(r.payload.begin(), r.payload.end(), out.begin() + static_cast<std::ptrdiff_t>(hl));
    set_tcp_checksum(out, s.ph);
    EXPECT_EQ(out, s.bytes) << "vector " << vec.substr(0, 20);
  }
}

TEST(Tcp, OptionLayoutsRoundTrip) {
  // Every combination of options the writer supports parses back to itself.
  for (int mask = 0; mask < 32; ++mask) {
    tcp_header h;
    h.src_port = 1;
    h.dst_port = 2;
    h.flags = tcp_flag::ack;
    if (mask & 1)
      h.options.mss = 8960;
    if (mask & 2)
      h.options.window_scale = 14;
    if (mask & 4)
      h.options.sack_permitted = true;
    if (mask & 8)
      h.options.timestamps = tcp_timestamps{123456789, 987654321};
    if (mask & 16) {
      h.options.sack_count = tcp_max_sack_blocks(h.options.timestamps.has_value());
      for (std::uint8_t b = 0; b < h.options.sack_count; ++b) {
        h.options.sack[b] = sack_block{100U * b, 100U * b + 50};
      }
    }
    const std::size_t opt_len = tcp_options_length(h.options);
    if (opt_len == SIZE_MAX) {
      continue;  // MSS + WS + SACK-permitted + TS + 3 SACK blocks exceed 40 bytes
    }
    std::array<std::byte, 60> out{};
    const std::size_t hl = write_tcp(out, h);
    ASSERT_EQ(hl, 20 + opt_len) << mask;
    ASSERT_EQ(hl % 4, 0U);
    const auto r = parse_tcp(std::span(out).first(hl));
    ASSERT_TRUE(r) << mask << " " << to_string(r.error);
    EXPECT_EQ(r.header.options.mss, h.options.mss);
    EXPECT_EQ(r.header.options.window_scale, h.options.window_scale);
    EXPECT_EQ(r.header.options.sack_permitted, h.options.sack_permitted);
    EXPECT_EQ(r.header.options.timestamps, h.options.timestamps);
    ASSERT_EQ(r.header.options.sack_count, h.options.sack_count);
    for (std::uint8_t b = 0; b < h.options.sack_count; ++b) {
      EXPECT_EQ(r.header.options.sack[b], h.options.sack[b]);
    }
  }
}

TEST(Tcp, OptionsThatDoNotFitAreRefusedByTheWriter) {
  tcp_header h;
  h.options.timestamps = tcp_timestamps{1, 2};
  h.options.sack_count = 4;  // 12 + 36 = 48 > 40
  EXPECT_EQ(tcp_options_length(h.options), SIZE_MAX);
  std::array<std::byte, 60> out{};
  EXPECT_EQ(write_tcp(out, h), 0U);
  h.options.sack_count = 3;
  EXPECT_EQ(write_tcp(out, h), 20U + 12U + 28U);
  std::array<std::byte, 59> small{};
  EXPECT_EQ(write_tcp(small, h), 0U);
}

TEST(Tcp, MalformedHeaders) {
  const l4 s = l4_of(golden::tcp_ack_sack);
  for (std::size_t n = 0; n < 20; ++n) {
    EXPECT_EQ(parse_tcp(std::span(s.bytes).first(n)).error, wire_error::truncated) << n;
  }
  for (unsigned off = 0; off < 5; ++off) {
    auto v = s.bytes;
    v[12] = static_cast<std::byte>(off << 4U);
    EXPECT_EQ(parse_tcp(v).error, wire_error::tcp_bad_data_offset) << off;
  }
  // Data offset 13 (52 bytes) in a 40-byte segment.
  auto v = s.bytes;
  v.resize(40);
  v[12] = std::byte{0xd0};
  EXPECT_EQ(parse_tcp(v).error, wire_error::tcp_data_offset_exceeds_segment);
  v = s.bytes;
  v.back() = std::byte{'!'};  // data changed, checksum not
  EXPECT_EQ(parse_tcp(v, &s.ph).error, wire_error::tcp_bad_checksum);
  EXPECT_TRUE(parse_tcp(v));
}

/// A SYN whose options area is exactly `opts` (padded with EOL to a multiple of 4).
l4 syn_with_options(std::vector<std::uint8_t> opts) {
  l4 s = l4_of(golden::tcp_syn);
  while (opts.size() % 4 != 0) {
    opts.push_back(0);
  }
  s.bytes.resize(20);
  for (std::uint8_t b : opts) {
    s.bytes.push_back(static_cast<std::byte>(b));
  }
  s.bytes[12] = static_cast<std::byte>(((20 + opts.size()) / 4) << 4U);
  fix_tcp(s);
  return s;
}

TEST(Tcp, MalformedOptionsRejected) {
  struct bad {
    const char* what;
    std::vector<std::uint8_t> opts;
  };
  const bad cases[] = {
      {"length 0", {2, 0, 5, 180}},
      {"length 1", {1, 1, 8, 1}},
      {"past the header", {1, 1, 2, 9}},
      {"kind without length at the end", {1, 1, 1, 30}},
      {"MSS of length 3", {2, 3, 5, 1}},
      {"window scale of length 4", {3, 4, 7, 1}},
      {"SACK-permitted of length 3", {4, 3, 0, 1}},
      {"timestamps of length 8", {8, 8, 0, 0, 0, 1, 0, 0}},
      {"SACK with no block", {1, 1, 5, 2}},
      {"SACK of length 11", {5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0}},
      {"unknown kind with length 0", {99, 0, 1, 1}},
  };
  for (const bad& c : cases) {
    l4 s = syn_with_options(c.opts);
    EXPECT_EQ(parse_tcp(s.bytes, &s.ph).error, wire_error::tcp_bad_option) << c.what;
  }
}

TEST(Tcp, ToleratedOptionCases) {
  // Unknown well-formed options are skipped.
  l4 s = syn_with_options({99, 4, 0xde, 0xad, 2, 4, 5, 180});
  auto r = parse_tcp(s.bytes, &s.ph);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.header.options.unknown, 1);
  EXPECT_EQ(r.header.options.mss, 1460);
  // EOL ends the list: what follows is padding, even if it looks malformed.
  s = syn_with_options({2, 4, 5, 180, 0, 2, 0, 0});
  r = parse_tcp(s.bytes, &s.ph);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.header.options.mss, 1460);
  // MSS 0 and window scale 20 are reported raw; the scale is used as 14 (RFC 7323 2.3).
  s = syn_with_options({2, 4, 0, 0, 1, 3, 3, 20});
  r = parse_tcp(s.bytes, &s.ph);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.header.options.mss, 0);
  EXPECT_EQ(r.header.options.window_scale, 20);
  EXPECT_EQ(r.header.options.effective_window_scale(), 14);
  // A repeated option: the last one wins (as in Linux).
  s = syn_with_options({2, 4, 0, 100, 2, 4, 0, 200});
  r = parse_tcp(s.bytes, &s.ph);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.header.options.mss, 200);
}

TEST(Tcp, UrgentPointerPastTheSegmentIsTolerated) {
  l4 s = l4_of(golden::tcp_ack_sack);
  s.bytes[13] = static_cast<std::byte>(std::to_integer<unsigned>(s.bytes[13]) | tcp_flag::urg);
  s.bytes[18] = std::byte{0xff};
  s.bytes[19] = std::byte{0xff};
  fix_tcp(s);
  const auto r = parse_tcp(s.bytes, &s.ph);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.header.has(tcp_flag::urg));
  EXPECT_EQ(r.header.urgent_pointer, 0xffff);
  EXPECT_EQ(r.payload.size(), 18U);
}

}  // namespace transport_test
}  // namespace
}  // namespace dpdk_net::wire
