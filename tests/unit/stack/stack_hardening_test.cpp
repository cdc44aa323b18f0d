// The stack's defences, packet by packet: config validation, martian sources, when ICMP errors
// are never sent, the path-MTU floor, a tiny-fragment flood, and zero allocations on every path.
#include <gtest/gtest.h>

#include <stdexcept>

#include "../counting_allocator.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "stack_fixture.hpp"

namespace dpdk_net::stack {
namespace {
namespace stack_hardening_test {

stack_config good_config() {
  stack_config c;
  c.mac = our_mac;
  c.address = our_ip;
  return c;
}

// --- 1. config validation -----------------------------------------------------------------

TEST(StackLifetime, FramesNotDrainedGoBackToThePoolWhenTheStackIsDestroyed) {
  packet_pool pool{packet_pool_config{}};
  const std::size_t before = pool.available();
  {
    stack st(good_config(), pool, stack_secret{1, 2});
    st.start(0);  // a gratuitous ARP waits in the tx queue
    ASSERT_EQ(st.tx_pending(), 1U);
  }
  EXPECT_EQ(pool.available(), before);
}

TEST(StackConfig, ValidateNamesTheFieldAndTheConstructorRefuses) {
  EXPECT_EQ(validate(good_config(), 1500), "");
  struct bad_case {
    const char* field;
    void (*edit)(stack_config&);
  };
  const bad_case cases[] = {
      {"prefix_length", [](stack_config& c) { c.prefix_length = 33; }},
      {"prefix_length", [](stack_config& c) { c.prefix_length = 255; }},
      {"mtu", [](stack_config& c) { c.mtu = 9000; }},  // over the device's 1500
      {"mtu", [](stack_config& c) { c.mtu = 67; }},
      {"min_pmtu", [](stack_config& c) { c.min_pmtu = 40; }},
      {"udp_queue", [](stack_config& c) { c.udp_queue = 0; }},
      {"tx_queue", [](stack_config& c) { c.tx_queue = 0; }},
      {"udp_sockets", [](stack_config& c) { c.udp_sockets = 0; }},
      {"arp.entries", [](stack_config& c) { c.arp.entries = 0; }},
      {"reassembly.max_buffers", [](stack_config& c) { c.reassembly.max_buffers = 0; }},
      {"gateway", [](stack_config& c) { c.gateway = ipv4_address::from_octets(198, 19, 0, 1); }},
      {"gateway", [](stack_config& c) { c.gateway = our_ip; }},
      {"address", [](stack_config& c) { c.address = ipv4_address{}; }},
      {"address", [](stack_config& c) { c.address = ipv4_address::from_octets(198, 18, 0, 255); }},
      {"address", [](stack_config& c) { c.address = ipv4_address::from_octets(127, 0, 0, 1); }},
      {"mac", [](stack_config& c) { c.mac = mac_address::broadcast(); }},
      {"ephemeral_first",
       [](stack_config& c) { c.ephemeral_first = 60000, c.ephemeral_last = 50000; }},
  };
  packet_pool pool{packet_pool_config{}};
  for (const bad_case& b : cases) {
    stack_config c = good_config();
    b.edit(c);
    const std::string e = validate(c, 1500);
    EXPECT_NE(e.find(std::string("stack_config.") + b.field), std::string::npos)
        << b.field << ": " << e;
    if (c.mtu <= 1500) {  // the constructor checks at the config's own MTU
      EXPECT_THROW(stack(c, pool, stack_secret{1, 2}), std::invalid_argument) << b.field;
    }
  }
  stack_config p31 = good_config();
  p31.prefix_length = 31;
  EXPECT_EQ(validate(p31, 1500), "");
  stack_config p32 = good_config();
  p32.prefix_length = 32;
  p32.gateway = ipv4_address::from_octets(198, 18, 9, 9);  // a /32's gateway is taken as on-link
  EXPECT_EQ(validate(p32, 1500), "");
  stack_config p0 = good_config();
  p0.prefix_length = 0;
  EXPECT_EQ(validate(p0, 1500), "");
  stack_config small_mtu = good_config();
  small_mtu.mtu = 500;  // under the default min_pmtu (552): the MTU is then the floor
  EXPECT_EQ(validate(small_mtu, 1500), "");
  stack_config no_arp = good_config();
  no_arp.arp.requests_per_second = 0;  // would never resolve anything
  EXPECT_NE(validate(no_arp, 1500).find("arp.requests_per_second"), std::string::npos);
  stack_config forever = good_config();
  forever.reassembly.timeout = UINT64_MAX;  // now + timeout would wrap into the past
  EXPECT_NE(validate(forever, 1500).find("reassembly.timeout"), std::string::npos);
  stack_config loop_gw = good_config();
  loop_gw.prefix_length = 32;
  loop_gw.gateway = ipv4_address::from_octets(127, 0, 0, 1);
  EXPECT_NE(validate(loop_gw, 1500).find("gateway"), std::string::npos);
}

class Prefix31Test : public StackTest {
 protected:
  Prefix31Test() : StackTest(with_prefix(31)) {}
  static stack_config with_prefix(std::uint8_t p) {
    stack_config c = config();
    c.prefix_length = p;
    return c;
  }
};

TEST_F(Prefix31Test, BothAddressesOfASlash31AreHosts) {
  // 198.18.0.0/31: our .1 is the "all ones" host. Under a /24-style broadcast rule it would be
  // the broadcast address and pings to us ignored (RFC 3021 says they are hosts).
  const ipv4_address other = ipv4_address::from_octets(198, 18, 0, 0);
  learn(other, peer_mac);
  st_.receive(ping(1, our_ip, other), now_);
  const auto frames = out();
  ASSERT_EQ(frames.size(), 1U);
  const auto d = wire::decode_frame(frames[0]);
  ASSERT_TRUE(d.icmp);
  EXPECT_EQ(d.icmp->type, wire::icmp_type::echo_reply);
  EXPECT_EQ(d.eth.dst, peer_mac);  // unicast
  EXPECT_EQ(d.ipv4->dst, other);
}

class Prefix32Test : public StackTest {
 protected:
  Prefix32Test()
      : StackTest([] {
          stack_config c = config();
          c.prefix_length = 32;
          c.gateway = gateway;
          return c;
        }()) {}
  static inline const ipv4_address gateway = ipv4_address::from_octets(198, 18, 0, 254);
};

TEST_F(Prefix32Test, OurAddressIsNotBroadcastAndEverythingGoesThroughTheGateway) {
  const mac_address gw_mac{{0x02, 0, 0, 0, 0, 0xfe}};
  learn(gateway, gw_mac);
  const ipv4_address far = ipv4_address::from_octets(198, 19, 7, 7);
  st_.receive(ping(1, our_ip, far), now_);
  const auto frames = out();
  ASSERT_EQ(frames.size(), 1U);  // /32 made our own address "broadcast" before: no reply
  const auto d = wire::decode_frame(frames[0]);
  ASSERT_TRUE(d.icmp);
  EXPECT_EQ(d.icmp->type, wire::icmp_type::echo_reply);
  EXPECT_EQ(d.eth.dst, gw_mac);
  EXPECT_EQ(d.ipv4->dst, far);
}

// --- 2. martian sources and ICMP errors that are never sent ----------------------------------

TEST_F(StackTest, MartianSourcesAreDroppedAndCountedNeverAnswered) {
  learn_peer();
  const ipv4_address martians[] = {
      ipv4_address::from_octets(198, 18, 0, 255),     // our subnet's directed broadcast
      ipv4_address::from_octets(255, 255, 255, 255),  // limited broadcast
      ipv4_address::from_octets(0, 0, 0, 0),
      ipv4_address::from_octets(224, 0, 0, 5),  // multicast
      ipv4_address::from_octets(127, 0, 0, 1),
      our_ip,
      ipv4_address::from_octets(198, 18, 0, 0),  // our subnet's network address
      ipv4_address::from_octets(0, 1, 2, 3),     // "this network" 0/8 (RFC 1122 3.2.1.3 (b))
  };
  std::uint16_t seq = 0;
  for (const ipv4_address src : martians) {
    st_.receive(ping(++seq, our_ip, src), now_);  // unicast to us, in a unicast frame
    std::vector<std::byte> l4(12);
    wire::write_udp(l4, wire::udp_header{5555, 9, 0, 0}, std::span(l4).subspan(8),
                    wire::pseudo_header{src, our_ip});
    st_.receive(frame(wire::ip_protocol::udp, l4, our_ip, our_mac, src), now_);  // closed port
    // Never a reply, and above all never one sent to Ethernet broadcast.
    EXPECT_TRUE(out().empty()) << src.to_string();
  }
  EXPECT_EQ(st_.counters().ip_martian_source, 2 * std::size(martians));
  EXPECT_EQ(st_.counters().icmp_echo_replies, 0U);
  // Positive control: the same ping from a real host is answered.
  st_.receive(ping(99), now_);
  EXPECT_EQ(out().size(), 1U);
}

TEST_F(StackTest, NoIcmpErrorAboutBroadcastsMulticastsOrLinkBroadcastFrames) {
  learn_peer();
  // A closed port reached in a link-layer broadcast frame (IP unicast to us): no error.
  st_.receive(udp(9, "x", our_ip, mac_address::broadcast()), now_);
  // A closed port at our subnet's broadcast and at the limited broadcast: no error.
  st_.receive(udp(9, "x", ipv4_address::from_octets(198, 18, 0, 255), mac_address::broadcast()),
              now_);
  st_.receive(udp(9, "x", ipv4_address::from_octets(255, 255, 255, 255), mac_address::broadcast()),
              now_);
  // An unknown protocol sent to the subnet broadcast: no protocol unreachable.
  st_.receive(frame(200, std::array<std::byte, 8>{}, ipv4_address::from_octets(198, 18, 0, 255),
                    mac_address::broadcast()),
              now_);
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(st_.counters().icmp_errors_sent, 0U);
  EXPECT_EQ(st_.counters().icmp_errors_suppressed, 4U);
  // Positive control: the same datagram to our MAC and address draws a port unreachable.
  st_.receive(udp(9, "x"), now_);
  const auto frames = out();
  ASSERT_EQ(frames.size(), 1U);
  const auto d = wire::decode_frame(frames[0]);
  ASSERT_TRUE(d.icmp);
  EXPECT_EQ(d.icmp->type, wire::icmp_type::destination_unreachable);
  EXPECT_EQ(d.icmp->code, wire::icmp_unreachable::port);
}

TEST_F(StackTest, AnIcmpErrorToUsDrawsNoAnswer) {
  learn_peer();
  // A port unreachable about something we never sent: counted, never answered.
  std::array<std::byte, 8 + 28> icmp{};
  wire::ipv4_header inner;
  inner.total_length = 28;
  inner.protocol = wire::ip_protocol::udp;
  inner.src = our_ip;
  inner.dst = peer_ip;
  wire::write_ipv4(std::span(icmp).subspan(8, 20), inner);
  wire::write_icmp(icmp,
                   wire::icmp_header{wire::icmp_type::destination_unreachable,
                                     wire::icmp_unreachable::port, 0, 0},
                   std::span(icmp).subspan(8));
  st_.receive(frame(wire::ip_protocol::icmp, icmp), now_);
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(st_.counters().icmp_errors_sent, 0U);
}

// --- 3. path MTU: the floor and the lock ----------------------------------------------------

class PmtuFloorTest : public StackTest {
 protected:
  void SetUp() override {
    learn_peer();
    ASSERT_FALSE(st_.udp_bind(53, sock_));
  }
  std::vector<std::vector<std::byte>> send_udp(std::size_t n) {
    std::vector<std::byte> payload(n, std::byte{0x5a});
    EXPECT_FALSE(st_.udp_send_to(sock_, peer_ip, 5555, payload, now_));
    return out();
  }
  packet frag_needed(const std::vector<std::byte>& sent, std::uint16_t mtu) {
    std::vector<std::byte> icmp(8 + 28);
    wire::write_icmp(icmp,
                     wire::icmp_header{wire::icmp_type::destination_unreachable,
                                       wire::icmp_unreachable::fragmentation_needed, 0, mtu},
                     std::span(sent).subspan(14, 28));
    return frame(wire::ip_protocol::icmp, icmp);
  }
  stack::socket_id sock_ = 0;
};

TEST_F(PmtuFloorTest, TinyMtuIsClampedToTheFloorAndThePathLocked) {
  const auto sent = send_udp(1400);
  ASSERT_EQ(sent.size(), 1U);
  st_.receive(frag_needed(sent[0], 100), now_);  // legal (>= 68) but absurd: clamp to 552
  EXPECT_EQ(st_.counters().pmtu_lowered, 1U);
  EXPECT_EQ(st_.path_mtu(peer_ip, now_), 552);
  const auto again = send_udp(1400);
  ASSERT_EQ(again.size(), 3U);  // 1408 bytes of UDP in 532 + 532 + 344: never 100-byte pieces
  for (const auto& f : again) {
    const auto d = wire::decode_frame(f);
    ASSERT_TRUE(d.ipv4);
    EXPECT_LE(f.size() - 14, 552U);
    EXPECT_FALSE(d.ipv4->dont_fragment);
  }
  const auto small = send_udp(100);  // fits, but the path is locked: no DF (routers may split)
  ASSERT_EQ(small.size(), 1U);
  EXPECT_FALSE(wire::decode_frame(small[0]).ipv4->dont_fragment);
  st_.receive(frag_needed(sent[0], 80), now_);  // already locked at the floor: nothing to learn
  EXPECT_EQ(st_.counters().pmtu_ignored, 1U);
  EXPECT_EQ(st_.path_mtu(peer_ip, now_), 552);
}

TEST_F(PmtuFloorTest, APathAtTheFloorIsLockedWhenASmallerMtuIsReported) {
  // 552 (not locked), then 300: the floor stays 552 but the path must now go without DF, or
  // every datagram over 300 bytes is black-holed until the entry expires.
  const auto sent = send_udp(1400);
  st_.receive(frag_needed(sent[0], 552), now_);
  ASSERT_TRUE(wire::decode_frame(send_udp(100)[0]).ipv4->dont_fragment);
  st_.receive(frag_needed(sent[0], 300), now_);
  EXPECT_EQ(st_.counters().pmtu_lowered, 2U);
  EXPECT_EQ(st_.path_mtu(peer_ip, now_), 552);
  EXPECT_FALSE(wire::decode_frame(send_udp(100)[0]).ipv4->dont_fragment);
}

TEST_F(PmtuFloorTest, AtOrAboveTheFloorIsNotLocked) {
  const auto sent = send_udp(1400);
  st_.receive(frag_needed(sent[0], 552), now_);
  EXPECT_EQ(st_.path_mtu(peer_ip, now_), 552);
  const auto small = send_udp(100);
  ASSERT_EQ(small.size(), 1U);
  EXPECT_TRUE(wire::decode_frame(small[0]).ipv4->dont_fragment);
}

TEST(PmtuCache, BoundedEvictsTheOldestAndExpires) {
  pmtu_cache cache(4, 10 * second, sip_key{5, 6});
  for (std::uint8_t i = 0; i < 5; ++i) {
    cache.learn(ipv4_address::from_octets(198, 18, 3, i), pmtu_cache::path{1000, false},
                i * millisecond);
  }
  EXPECT_EQ(cache.size(), 4U);
  EXPECT_EQ(cache.evictions(), 1U);
  EXPECT_FALSE(cache.find(ipv4_address::from_octets(198, 18, 3, 0), 5 * millisecond));  // oldest
  EXPECT_TRUE(cache.find(ipv4_address::from_octets(198, 18, 3, 4), 5 * millisecond));
  // Relearning an entry moves it to the back: 1 is now the oldest and goes next.
  cache.learn(ipv4_address::from_octets(198, 18, 3, 1), pmtu_cache::path{900, false},
              6 * millisecond);
  cache.learn(ipv4_address::from_octets(198, 18, 3, 9), pmtu_cache::path{900, false},
              7 * millisecond);
  EXPECT_FALSE(cache.find(ipv4_address::from_octets(198, 18, 3, 2), 8 * millisecond));
  EXPECT_EQ(cache.find(ipv4_address::from_octets(198, 18, 3, 1), 8 * millisecond)->mtu, 900);
  EXPECT_FALSE(cache.find(ipv4_address::from_octets(198, 18, 3, 1), 20 * second));  // expired
  // A churn of 100,000 destinations never grows it.
  for (std::uint32_t i = 0; i < 100'000; ++i) {
    cache.learn(ipv4_address{0xc6130000U + i}, pmtu_cache::path{1200, false}, 30 * second + i);
    ASSERT_LE(cache.size(), 4U);
  }
}

// --- 4. a tiny-fragment flood leaves the stack working ---------------------------------------

class FragmentFloodTest : public StackTest {
 protected:
  /// An IPv4 fragment from the peer: [offset, offset + data.size()) of datagram id.
  packet fragment(std::uint16_t id, std::size_t offset, bool more, std::span<const std::byte> data,
                  std::uint8_t protocol = wire::ip_protocol::icmp) {
    wire::ipv4_header h;
    h.id = id;
    h.protocol = protocol;
    h.src = peer_ip;
    h.dst = our_ip;
    h.more_fragments = more;
    h.fragment_offset = static_cast<std::uint16_t>(offset / 8);
    return ip_frame(h, data);
  }
  /// A 3000-byte ping in three fragments; true if it was answered.
  bool fragmented_ping(std::uint16_t id) {
    std::vector<std::byte> icmp(3000);
    for (std::size_t i = 8; i < icmp.size(); ++i) {
      icmp[i] = static_cast<std::byte>(i);
    }
    wire::write_icmp(icmp, wire::icmp_header{wire::icmp_type::echo_request, 0, 0, 0x77770001U},
                     std::span(icmp).subspan(8));
    for (std::size_t at = 0; at < icmp.size(); at += 1480) {
      const std::size_t n = std::min<std::size_t>(1480, icmp.size() - at);
      st_.receive(fragment(id, at, at + n < icmp.size(), std::span(icmp).subspan(at, n)), now_);
    }
    const auto frames = out();
    return frames.size() == 3;  // the reply, fragmented again
  }
};

TEST_F(FragmentFloodTest, PingAndUdpWorkDuringAFloodAndFragmentedTrafficRightAfterIt) {
  learn_peer();
  stack::socket_id sock = 0;
  ASSERT_FALSE(st_.udp_bind(7, sock));
  const std::size_t pool_size = pool_.available();
  const std::array<std::byte, 8> tiny{};
  std::size_t pings = 0;
  std::size_t datagrams = 0;
  // 8,000 tiny fragments of datagrams that never complete (the count after which Linux refuses
  // all fragmented traffic for 30 s).
  for (std::uint32_t i = 0; i < 8000; ++i) {
    st_.receive(fragment(static_cast<std::uint16_t>(i / 60), (i % 60) * 8, true, tiny), now_);
    ASSERT_GE(pool_.available(), pool_size - 300) << "the flood pins the pool at fragment " << i;
    if (i % 500 == 0) {
      st_.receive(ping(static_cast<std::uint16_t>(i)), now_);
      pings += out().size();
      st_.receive(udp(7, "during"), now_);
      datagrams += st_.udp_receive(sock) ? 1 : 0;
    }
  }
  EXPECT_EQ(pings, 16U);
  EXPECT_EQ(datagrams, 16U);
  EXPECT_GT(st_.counters().reassembly.evicted, 0U);
  // Right after the flood, at the same instant: a fragmented ping is answered.
  EXPECT_TRUE(fragmented_ping(60000));
}

// --- 15. zero allocations on every path -----------------------------------------------------

TEST_F(FragmentFloodTest, SteadyStateAllocatesNothingOnAnyPath) {
  learn_peer();
  stack::socket_id sock = 0;
  ASSERT_FALSE(st_.udp_bind(7, sock));
  std::vector<std::byte> big(4000, std::byte{0x33});
  // Every input is built before counting (the helpers allocate vectors); the stack's work is
  // what is counted.
  constexpr int rounds = 200;
  std::vector<packet> udp_in;
  std::vector<packet> closed_port_in;
  std::vector<packet> fragments_in;
  std::vector<std::byte> icmp(3000);
  wire::write_icmp(icmp, wire::icmp_header{wire::icmp_type::echo_request, 0, 0, 0x77770001U},
                   std::span(icmp).subspan(8));
  for (int r = 0; r < rounds + 10; ++r) {
    udp_in.push_back(udp(7, "steady"));
    closed_port_in.push_back(udp(9, "closed"));
    for (std::size_t at = 0; at < icmp.size(); at += 1480) {
      const std::size_t n = std::min<std::size_t>(1480, icmp.size() - at);
      fragments_in.push_back(fragment(static_cast<std::uint16_t>(r), at, at + n < icmp.size(),
                                      std::span(icmp).subspan(at, n)));
    }
  }
  std::array<packet, 16> burst;
  auto drain = [&] {
    std::size_t n = 0;
    std::size_t total = 0;
    while ((n = st_.drain_tx(burst)) != 0) {
      total += n;
      free_burst(std::span(burst.data(), n));
    }
    return total;
  };
  std::size_t sent = 0;
  std::size_t received = 0;
  std::uint64_t allocations = 0;
  for (int r = 0; r < rounds + 10; ++r) {
    if (r == 10) {
      allocations = dpdk_net::test::allocation_count();  // after warm-up
      sent = received = 0;
    }
    st_.receive(std::move(udp_in[static_cast<std::size_t>(r)]), now_);  // UDP receive
    if (auto d = st_.udp_receive(sock)) {
      ++received;
      EXPECT_FALSE(st_.udp_send_to(sock, peer_ip, 5555, d->payload(), now_));  // UDP send
    }
    EXPECT_FALSE(st_.udp_send_to(sock, peer_ip, 5555, big, now_));              // fragmentation
    st_.receive(std::move(closed_port_in[static_cast<std::size_t>(r)]), now_);  // ICMP error
    for (int k = 0; k < 3; ++k) {  // reassembly, and the reply from the chain
      st_.receive(std::move(fragments_in[static_cast<std::size_t>(r) * 3 + k]), now_);
    }
    sent += drain();
    now_ += 20 * millisecond;  // lets the ICMP error rate limit refill
  }
  EXPECT_EQ(dpdk_net::test::allocation_count() - allocations, 0U);
  EXPECT_EQ(received, static_cast<std::size_t>(rounds));
  // Per round: the echo, 3 fragments of `big`, a port unreachable, 3 fragments of the reply.
  EXPECT_EQ(sent, static_cast<std::size_t>(rounds) * 8);
}

}  // namespace stack_hardening_test
}  // namespace
}  // namespace dpdk_net::stack

namespace dpdk_net::stack {
namespace {
namespace stack_hardening_test {

TEST_F(PmtuFloorTest, EchoRepliesRespectALearnedPathMtu) {
  // A 1400-byte ping is answered in place (one frame); once the path back is known to be 1000,
  // the same ping is answered in fragments that fit it (found by the differential test: Linux
  // does this, the in-place reply did not).
  std::vector<std::byte> icmp(8 + 1400, std::byte{0x42});
  wire::write_icmp(icmp, wire::icmp_header{wire::icmp_type::echo_request, 0, 0, 0x11110001U},
                   std::span(icmp).subspan(8));
  auto with_df = [&] {  // as ping sends it: DF set, which the in-place reply keeps
    packet p = frame(wire::ip_protocol::icmp, icmp);
    std::byte* ip = p.front().data() + 14;
    wire::store8(ip + 6, 0x40);
    wire::store16(ip + 10, 0);
    wire::store16(ip + 10, wire::internet_checksum(std::span<const std::byte>(ip, 20)));
    return p;
  };
  st_.receive(with_df(), now_);
  const auto first = out();
  ASSERT_EQ(first.size(), 1U);
  st_.receive(frag_needed(first[0], 1000), now_);
  ASSERT_EQ(st_.path_mtu(peer_ip, now_), 1000);
  st_.receive(with_df(), now_);
  const auto again = out();
  ASSERT_EQ(again.size(), 2U);
  for (const auto& f : again) {
    EXPECT_LE(f.size() - 14, 1000U);
  }
  EXPECT_EQ(st_.counters().icmp_echo_replies, 2U);
}

}  // namespace stack_hardening_test
}  // namespace
}  // namespace dpdk_net::stack
