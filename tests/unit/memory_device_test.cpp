#include "dpdk_net/memory_device.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dpdk_net {
namespace {
namespace memory_device_test {

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
  out[0].meta().tx.l2_len = 14;  // no flags: a plain link drops a frame asking for offloads
  out[0].meta().rss_hash_valid = true;
  ASSERT_EQ(link.a().tx_burst(0, out), 1U);
  std::array<packet, 1> in;
  ASSERT_EQ(link.b().rx_burst(0, in), 1U);
  EXPECT_EQ(in[0].meta().tx.l2_len, 0);
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

TEST(MemoryDeviceOffloadInfo, AdvertisesTheConfiguredOffloadsAndChaining) {
  memory_link_config c;
  c.pool_size = 16;
  memory_link plain(c);
  EXPECT_TRUE(plain.a().info().tx_multi_segment);  // chains always went through
  EXPECT_EQ(plain.a().info().tx_offloads, offload_set{});
  EXPECT_EQ(plain.b().info().rx_offloads, offload_set{});
  c.offloads = {offload::ipv4_checksum, offload::tcp_checksum, offload::udp_checksum,
                offload::tcp_segmentation};
  memory_link link(c);
  for (memory_device* d : {&link.a(), &link.b()}) {
    EXPECT_EQ(d->info().tx_offloads, c.offloads);
    EXPECT_EQ(d->info().rx_offloads,
              (offload_set{offload::ipv4_checksum, offload::tcp_checksum, offload::udp_checksum}));
  }
}

// --- Offload emulation -------------------------------------------------------------------------
// Golden frames made by scapy with /usr/bin/python3 scripts/offload_golden.py (its output pasted
// here unchanged; see the script for how inputs carry DPDK's pseudo-header seeds). Payload byte k
// is (7 * k + 3) & 0xff on both sides; the TSO pieces are quoted as their 66 header bytes (their
// checksums cover the payload slice).

// 66 bytes
constexpr const char* tso_super_headers =
    "02000000000b02000000000a080045000cbefffe4000400600000a0000010a0000029c400050fffffc000102"
    "0304809901f6140900000101080a1122334455667788";
// 66 bytes
constexpr const char* tso_piece0_headers =
    "02000000000b02000000000a08004500041cfffe4000400622db0a0000010a0000029c400050fffffc000102"
    "0304809001f697ab00000101080a1122334455667788";
// 66 bytes
constexpr const char* tso_piece1_headers =
    "02000000000b02000000000a08004500041cffff4000400622da0a0000010a0000029c400050ffffffe80102"
    "0304801001f6b16100000101080a1122334455667788";
// 66 bytes
constexpr const char* tso_piece2_headers =
    "02000000000b02000000000a08004500041c00004000400622da0a0000010a0000029c400050000003d00102"
    "0304801001f6cc9800000101080a1122334455667788";
// 66 bytes
constexpr const char* tso_piece3_headers =
    "02000000000b02000000000a08004500010600014000400625ef0a0000010a0000029c400050000007b80102"
    "0304801901f6581900000101080a1122334455667788";
// 91 bytes
constexpr const char* tcp_input =
    "02000000000b02000000000a08004500004d01014000400600000a0000010a00000204d2162e000000010000"
    "0002501803e814420000030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3ea"
    "f1f8ff";
// 91 bytes
constexpr const char* tcp_expected =
    "02000000000b02000000000a08004500004d01014000400625a80a0000010a00000204d2162e000000010000"
    "0002501803e8e09e0000030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3ea"
    "f1f8ff";
// 87 bytes
constexpr const char* udp_input =
    "02000000000b02000000000a08004500004902024000401100000a0000010a00000214e9270f00351449030a"
    "11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b22293037";
// 87 bytes
constexpr const char* udp_expected =
    "02000000000b02000000000a08004500004902024000401124a00a0000010a00000214e9270f00358b01030a"
    "11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b22293037";
// 58 bytes
constexpr const char* udp_zero_input =
    "02000000000b02000000000a08004500002c03034000401100000a0000010a000002000700070018142c030a"
    "11181f262d343b424950575eaf40";
// 58 bytes
constexpr const char* udp_zero_expected =
    "02000000000b02000000000a08004500002c03034000401123bc0a0000010a000002000700070018ffff030a"
    "11181f262d343b424950575eaf40";
// 66 bytes
constexpr const char* udp_fragment =
    "02000000000b02000000000a08004500003404042000401142b30a0000010a00000214e9270f00481234030a"
    "11181f262d343b424950575e656c737a81888f969da4";

using bytes = std::vector<std::byte>;

bytes hex(const char* text) {
  bytes out;
  for (std::size_t i = 0; text[i] != '\0' && text[i + 1] != '\0'; i += 2) {
    out.push_back(static_cast<std::byte>(std::stoul(std::string(text + i, 2), nullptr, 16)));
  }
  return out;
}

bytes pattern(std::size_t n, std::size_t start = 0) {
  bytes out(n);
  for (std::size_t k = 0; k < n; ++k) {
    out[k] = static_cast<std::byte>((7 * (start + k) + 3) & 0xffU);
  }
  return out;
}

bytes operator+(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

packet make(device& dev, const bytes& data) {
  packet p = dev.tx_pool(0).alloc();
  std::memcpy(p.append(data.size()), data.data(), data.size());
  return p;
}

bytes contents(const packet& p) {
  bytes out(p.length());
  EXPECT_EQ(p.copy_out(0, out), out.size());
  return out;
}

void request(packet& p, std::uint8_t flags, std::uint8_t l4_len = 0, std::uint16_t mss = 0) {
  p.meta().tx = tx_offload_request{flags, 14, 20, l4_len, mss};
}

constexpr std::uint8_t ip_ck = tx_offload_request::ipv4_checksum;
constexpr std::uint8_t tcp_ck = tx_offload_request::tcp_checksum;
constexpr std::uint8_t udp_ck = tx_offload_request::udp_checksum;
constexpr std::uint8_t tso = tx_offload_request::tcp_segmentation;

/// Small pools: a default link's 2 x 4096 buffers cost ~80 ms to set up under ASan.
memory_link_config small() {
  memory_link_config c;
  c.pool_size = 64;
  return c;
}

memory_link_config offloading(std::size_t pool_size = 64) {
  memory_link_config c;
  c.offloads = {offload::ipv4_checksum, offload::tcp_checksum, offload::udp_checksum,
                offload::tcp_segmentation};
  c.pool_size = pool_size;
  return c;
}

/// Sends one packet a -> b and returns what b receives (empty if nothing arrived).
packet through(memory_link& link, packet p) {
  std::array<packet, 1> out{std::move(p)};
  EXPECT_EQ(link.a().tx_burst(0, out), 1U);
  std::array<packet, 1> in;
  return link.b().rx_burst(0, in) == 1 ? std::move(in[0]) : packet{};
}

/// An external buffer that counts its releases.
struct counted_external {
  bytes data;
  int released = 0;
  external_buffer ext;
  counted_external(const counted_external&) = delete;  // ext points into it
  counted_external& operator=(const counted_external&) = delete;
  explicit counted_external(bytes d) : data(std::move(d)) {
    ext.data = data.data();
    ext.size = data.size();
    ext.context = &released;
    ext.on_release = [](external_buffer&, void* ctx) noexcept { ++*static_cast<int*>(ctx); };
  }
};

TEST(MemoryDeviceOffloadTx, FillsTcpAndUdpChecksumsLikeScapy) {
  memory_link link(offloading());
  const std::pair<const char*, const char*> cases[] = {
      {tcp_input, tcp_expected}, {udp_input, udp_expected}, {udp_zero_input, udp_zero_expected}};
  for (const auto& [input, expected] : cases) {
    packet p = make(link.a(), hex(input));
    request(p, static_cast<std::uint8_t>(ip_ck | (input == tcp_input ? tcp_ck : udp_ck)));
    packet got = through(link, std::move(p));
    ASSERT_TRUE(got);
    EXPECT_EQ(contents(got), hex(expected)) << expected;
    EXPECT_EQ(got.meta().tx.flags, 0);  // the request does not travel
    EXPECT_EQ(got.meta().ip_checksum, checksum_status::good);
    EXPECT_EQ(got.meta().l4_checksum, checksum_status::good);
  }
  EXPECT_EQ(link.a().offload_stats().tx_checksummed, 3U);
  EXPECT_EQ(link.a().offload_stats().tx_seed_mismatch, 0U);
}

TEST(MemoryDeviceOffloadTx, ChecksumOverChainedAndExternalPayload) {
  memory_link link(offloading());
  const bytes input = hex(tcp_input);  // 54 header bytes + 37 payload
  counted_external ext(bytes(input.begin() + 59, input.begin() + 80));
  {
    packet p = make(link.a(), bytes(input.begin(), input.begin() + 59));  // odd: splits a word
    ASSERT_TRUE(p.chain(link.a().tx_pool(0).attach_external(ext.ext, 0, ext.data.size())));
    ASSERT_TRUE(p.chain(make(link.a(), bytes(input.begin() + 80, input.end()))));
    request(p, ip_ck | tcp_ck);
    packet got = through(link, std::move(p));
    ASSERT_TRUE(got);
    EXPECT_EQ(got.segment_count(), 3U);
    EXPECT_EQ(contents(got), hex(tcp_expected));
    EXPECT_EQ(got.meta().l4_checksum, checksum_status::good);  // rx check walks the chain too
  }
  EXPECT_EQ(ext.ext.references, 1U);  // the segment's reference went with the frame
}

TEST(MemoryDeviceOffloadTx, WrongSeedGivesAWrongChecksumAsOnHardware) {
  // A seed without the length (the TSO kind) on a plain checksum request: the NIC's sum is off by
  // the length, the receiver sees a bad checksum, and the sender counts the mismatch.
  memory_link link(offloading());
  bytes input = hex(tcp_input);
  input[50] = std::byte{0x14};
  input[51] = std::byte{0x09};
  packet p = make(link.a(), input);
  request(p, ip_ck | tcp_ck);
  packet got = through(link, std::move(p));
  ASSERT_TRUE(got);
  EXPECT_EQ(got.meta().ip_checksum, checksum_status::good);
  EXPECT_EQ(got.meta().l4_checksum, checksum_status::bad);
  EXPECT_EQ(link.a().offload_stats().tx_seed_mismatch, 1U);
  EXPECT_EQ(link.b().offload_stats().rx_l4_bad, 1U);
}

TEST(MemoryDeviceOffloadTx, UnadvertisedOrContradictoryRequestsAreDropped) {
  memory_link_config c = small();
  c.offloads = {offload::ipv4_checksum, offload::tcp_checksum};
  memory_link link(c);
  const auto send = [&](const char* frame, std::uint8_t flags, std::uint8_t l3 = 20) {
    packet p = make(link.a(), hex(frame));
    request(p, flags);
    p.meta().tx.l3_len = l3;
    std::array<packet, 1> out{std::move(p)};
    EXPECT_EQ(link.a().tx_burst(0, out), 1U);  // taken, then dropped
  };
  send(udp_input, ip_ck | udp_ck);  // not advertised
  send(tcp_input, ip_ck | tcp_ck | tso);
  EXPECT_EQ(link.a().offload_stats().tx_unadvertised, 2U);
  send(udp_input, ip_ck | tcp_ck);      // TCP checksum on a UDP frame
  send(tcp_input, ip_ck | tcp_ck, 24);  // l3_len not the IHL
  send(udp_fragment, ip_ck | tcp_ck);   // L4 checksum on a fragment (and not TCP)
  EXPECT_EQ(link.a().offload_stats().tx_malformed, 3U);
  EXPECT_EQ(link.a().stats().tx_dropped, 5U);
  EXPECT_EQ(link.b().rx_pending(0), 0U);
  EXPECT_EQ(link.a().pool().available(), link.a().pool().capacity());
  memory_link plain(small());  // a device without offloads refuses every request
  packet p = make(plain.a(), hex(tcp_input));
  request(p, ip_ck);
  std::array<packet, 1> out{std::move(p)};
  EXPECT_EQ(plain.a().tx_burst(0, out), 1U);
  EXPECT_EQ(plain.a().offload_stats().tx_unadvertised, 1U);
  EXPECT_EQ(plain.b().rx_pending(0), 0U);
}

/// The TSO super-frame of the golden vectors: headers and 700 payload bytes in the first segment,
/// 1500 bytes by reference to ext, the remaining 1010 in a third segment.
packet super_frame(device& dev, counted_external& ext, std::uint16_t mss) {
  const bytes payload = pattern(3210);
  packet p = make(dev, hex(tso_super_headers) + bytes(payload.begin(), payload.begin() + 700));
  EXPECT_TRUE(p.chain(dev.tx_pool(0).attach_external(ext.ext, 0, 1500)));
  EXPECT_TRUE(p.chain(make(dev, bytes(payload.begin() + 2200, payload.end()))));
  request(p, ip_ck | tcp_ck | tso, 32, mss);
  return p;
}

counted_external tso_external() {
  return counted_external(pattern(1500, 700));
}

TEST(MemoryDeviceOffloadTso, SplitsLikeScapy) {
  memory_link link(offloading());
  const std::size_t start = link.a().pool().available();
  counted_external ext = tso_external();
  std::array<packet, 1> out{super_frame(link.a(), ext, 1000)};  // 3276 bytes: over the MTU
  ASSERT_EQ(link.a().tx_burst(0, out), 1U);
  EXPECT_EQ(ext.ext.references, 1U);  // the super-frame is gone, its reference dropped
  EXPECT_EQ(link.a().pool().available(), start - 4);  // only the four pieces are out
  std::array<packet, 8> in;
  ASSERT_EQ(link.b().rx_burst(0, in), 4U);
  const char* golden[] = {tso_piece0_headers, tso_piece1_headers, tso_piece2_headers,
                          tso_piece3_headers};
  std::size_t bytes_sent = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t n = i < 3 ? 1000 : 210;
    EXPECT_EQ(contents(in[i]), hex(golden[i]) + pattern(n, i * 1000)) << "piece " << i;
    EXPECT_EQ(in[i].meta().ip_checksum, checksum_status::good);
    EXPECT_EQ(in[i].meta().l4_checksum, checksum_status::good);
    bytes_sent += in[i].length();
  }
  const memory_offload_counters& o = link.a().offload_stats();
  EXPECT_EQ(o.tx_segmented, 1U);
  EXPECT_EQ(o.tx_segments, 4U);
  EXPECT_EQ(o.tx_seed_mismatch, 0U);
  EXPECT_EQ(link.a().stats().tx_packets, 4U);
  EXPECT_EQ(link.a().stats().tx_bytes, bytes_sent);
  EXPECT_EQ(link.a().stats().tx_dropped, 0U);
  free_burst(in);
  EXPECT_EQ(link.a().pool().available(), start);
}

TEST(MemoryDeviceOffloadTso, PiecesOverTheMtuAreDropped) {
  memory_link link(offloading());
  counted_external ext = tso_external();
  std::array<packet, 1> out{super_frame(link.a(), ext, 1453)};  // 66 + 1453 = 1519 > 1518
  ASSERT_EQ(link.a().tx_burst(0, out), 1U);
  EXPECT_EQ(link.a().stats().tx_dropped, 1U);
  EXPECT_EQ(link.b().rx_pending(0), 0U);
  out[0] = super_frame(link.a(), ext, 1452);  // exactly 1518: fits
  ASSERT_EQ(link.a().tx_burst(0, out), 1U);
  EXPECT_EQ(link.b().rx_pending(0), 3U);
  EXPECT_EQ(ext.ext.references, 1U);
}

TEST(MemoryDeviceOffloadTso, PoolRunningDryDropsTheSuperFrameAndLeaksNothing) {
  memory_link link(offloading(6));  // the super-frame takes 3 buffers (one holds ext): 3 left
  counted_external ext = tso_external();
  std::array<packet, 1> out{super_frame(link.a(), ext, 1000)};  // needs 4 pieces
  ASSERT_EQ(link.a().pool().available(), 3U);
  ASSERT_EQ(link.a().tx_burst(0, out), 1U);
  EXPECT_FALSE(out[0]);
  EXPECT_EQ(link.a().stats().tx_dropped, 1U);
  EXPECT_EQ(link.a().offload_stats().tx_no_buffer, 1U);
  EXPECT_EQ(link.a().stats().tx_packets, 0U);
  EXPECT_EQ(link.b().rx_pending(0), 0U);
  EXPECT_EQ(link.a().pool().available(), 6U);  // pieces built so far and the super-frame: back
  EXPECT_EQ(ext.ext.references, 1U);
  out[0] = super_frame(link.a(), ext, 1070);  // 3 pieces fit in what is left
  ASSERT_EQ(link.a().tx_burst(0, out), 1U);
  EXPECT_EQ(link.b().rx_pending(0), 3U);
}

TEST(MemoryDeviceOffloadTso, RingWithoutRoomDeclinesTheSuperFrameUntouched) {
  memory_link_config c = offloading();
  c.ring_size = 4;
  memory_link link(c);
  counted_external ext = tso_external();
  std::array<packet, 2> out{make(link.a(), hex(tcp_expected)), super_frame(link.a(), ext, 1000)};
  const bytes before = contents(out[1]);
  EXPECT_EQ(link.a().tx_burst(0, out), 1U);  // the plain frame; 3 slots left for 4 pieces
  ASSERT_TRUE(out[1]);
  EXPECT_EQ(contents(out[1]), before);  // the caller gets back what it offered
  EXPECT_EQ(link.a().stats().tx_busy, 1U);
  std::array<packet, 1> in;
  ASSERT_EQ(link.b().rx_burst(0, in), 1U);
  EXPECT_EQ(link.a().tx_burst(0, std::span<packet>(out).subspan(1)), 1U);  // the retry
  EXPECT_EQ(link.b().rx_pending(0), 4U);
  out[0] = super_frame(link.a(), ext, 500);  // 7 pieces never fit a ring of 4: dropped
  free_burst(std::span<packet>(in));
  std::array<packet, 4> drain;
  ASSERT_EQ(link.b().rx_burst(0, drain), 4U);
  EXPECT_EQ(link.a().tx_burst(0, std::span<packet>(out).first(1)), 1U);
  EXPECT_EQ(link.a().stats().tx_dropped, 1U);
}

TEST(MemoryDeviceOffloadRx, VerdictsGoodBadAndUnknown) {
  memory_link link(offloading());
  const auto receive = [&](bytes frame) { return through(link, make(link.a(), frame)); };
  struct expectation {
    bytes frame;
    checksum_status ip, l4;
  };
  bytes payload_flip = hex(tcp_expected);
  payload_flip[70] ^= std::byte{0x01};
  bytes ttl_flip = hex(udp_expected);
  ttl_flip[22] ^= std::byte{0x01};  // TTL: in the IPv4 header, not in the pseudo-header
  bytes arp(60);
  arp[12] = std::byte{0x08};
  arp[13] = std::byte{0x06};
  const checksum_status good = checksum_status::good;
  const checksum_status bad = checksum_status::bad;
  const checksum_status unknown = checksum_status::unknown;
  const expectation cases[] = {
      {hex(tcp_expected), good, good},
      {hex(udp_expected), good, good},
      {hex(udp_zero_expected), good, good},
      {payload_flip, good, bad},
      {ttl_flip, bad, good},
      {hex(udp_fragment), good, unknown},
      {arp, unknown, unknown},
  };
  for (const expectation& e : cases) {
    packet got = receive(e.frame);
    ASSERT_TRUE(got);
    EXPECT_EQ(got.meta().ip_checksum, e.ip);
    EXPECT_EQ(got.meta().l4_checksum, e.l4);
  }
  EXPECT_EQ(link.b().offload_stats().rx_ip_bad, 1U);
  EXPECT_EQ(link.b().offload_stats().rx_l4_bad, 1U);
  // Headers split mid-IPv4 over a chain are read across it.
  const bytes good_tcp = hex(tcp_expected);
  packet chained = make(link.a(), bytes(good_tcp.begin(), good_tcp.begin() + 25));
  ASSERT_TRUE(chained.chain(make(link.a(), bytes(good_tcp.begin() + 25, good_tcp.end()))));
  packet got = through(link, std::move(chained));
  EXPECT_EQ(got.meta().ip_checksum, good);
  EXPECT_EQ(got.meta().l4_checksum, good);
  // A device that does not advertise rx offloads leaves every verdict unknown.
  memory_link plain(small());
  packet unchecked = through(plain, make(plain.a(), payload_flip));  // dies before plain
  EXPECT_EQ(unchecked.meta().ip_checksum, unknown);
  EXPECT_EQ(unchecked.meta().l4_checksum, unknown);
}

}  // namespace memory_device_test
}  // namespace
}  // namespace dpdk_net
