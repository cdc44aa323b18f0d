// The stack packet by packet: craft a frame, feed it at time t, check the frames that come out.
#include "dpdk_net/stack/stack.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <vector>

#include "../counting_allocator.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"
#include "stack_fixture.hpp"

namespace dpdk_net::stack {
namespace {
namespace stack_test {

TEST_F(StackTest, AnswersPingWithTheSameIdSequenceAndData) {
  learn_peer();
  st_.receive(ping(7), now_);
  const auto frames = out();
  ASSERT_EQ(frames.size(), 1U);
  const auto d = wire::decode_frame(frames[0]);  // checksums verified by the decoder
  ASSERT_TRUE(d.accepted()) << wire::to_string(d.error);
  ASSERT_TRUE(d.icmp);
  EXPECT_EQ(d.eth.dst, peer_mac);
  EXPECT_EQ(d.eth.src, our_mac);
  EXPECT_EQ(d.ipv4->src, our_ip);
  EXPECT_EQ(d.ipv4->dst, peer_ip);
  EXPECT_EQ(d.icmp->type, wire::icmp_type::echo_reply);
  EXPECT_EQ(d.icmp->identifier(), 0x4242);
  EXPECT_EQ(d.icmp->sequence(), 7);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.payload.data()), d.payload.size()),
            "pingdata");
  EXPECT_EQ(st_.counters().icmp_echo_replies, 1U);
}

TEST_F(StackTest, DropsWhatIsNotForUsByReason) {
  learn_peer();
  st_.receive(ping(1, ipv4_address::from_octets(198, 18, 0, 77)), now_);  // another host
  st_.receive(frame(wire::ip_protocol::icmp, std::array<std::byte, 8>{}, our_ip,
                    mac_address{{0x02, 9, 9, 9, 9, 9}}),  // another host's MAC
              now_);
  st_.receive(ping(3, ipv4_address::from_octets(198, 18, 0, 255)), now_);  // broadcast ping
  packet bad = ping(4);
  bad.front()[14 + 8] = std::byte{1};  // TTL changed, header checksum not
  st_.receive(std::move(bad), now_);
  EXPECT_TRUE(out().empty());
  const stack_counters c = st_.counters();
  EXPECT_EQ(c.ip_not_for_us, 1U);
  EXPECT_EQ(c.eth_not_for_us, 1U);
  EXPECT_EQ(c.icmp_ignored, 1U);
  EXPECT_EQ(c.malformed[static_cast<std::size_t>(wire::wire_error::ip_bad_checksum)], 1U);
}

TEST_F(StackTest, UdpDeliversZeroCopyAndCountsQueueOverflow) {
  learn_peer();
  stack::socket_id s = 0;
  ASSERT_FALSE(st_.udp_bind(53, s));
  stack::socket_id dup = 0;
  EXPECT_EQ(st_.udp_bind(53, dup), std::make_error_code(std::errc::address_in_use));
  EXPECT_EQ(st_.udp_bind(54, dup, peer_ip), std::make_error_code(std::errc::address_not_available));
  EXPECT_FALSE(st_.udp_bind(54, dup, our_ip));
  st_.udp_close(dup);
  EXPECT_FALSE(st_.udp_bind(54, dup, ipv4_address{}));  // closed ports can be bound again
  st_.udp_close(dup);
  for (int i = 0; i < 6; ++i) {
    st_.receive(udp(53, "query"), now_);
  }
  EXPECT_EQ(st_.counters().udp_queue_full, 2U);  // udp_queue = 4
  int got = 0;
  while (auto d = st_.udp_receive(s)) {
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(d->payload().data()), d->length), "query");
    EXPECT_EQ(d->source, peer_ip);
    EXPECT_EQ(d->source_port, 5555);
    ++got;
  }
  EXPECT_EQ(got, 4);
  // Reply: goes out with a checksum the decoder accepts.
  ASSERT_FALSE(st_.udp_send_to(s, peer_ip, 5555, std::as_bytes(std::span("answer", 6)), now_));
  const auto frames = out();
  ASSERT_EQ(frames.size(), 1U);
  const auto d = wire::decode_frame(frames[0]);
  ASSERT_TRUE(d.accepted() && d.udp);
  EXPECT_EQ(d.udp->src_port, 53);
  EXPECT_EQ(d.payload.size(), 6U);
  std::vector<std::byte> big(65508);  // more than any IPv4 datagram can carry
  EXPECT_EQ(st_.udp_send_to(s, peer_ip, 1, big, now_),
            std::make_error_code(std::errc::message_size));
}

TEST_F(StackTest, ClosedPortGetsRateLimitedPortUnreachable) {
  learn_peer();
  for (int i = 0; i < 80; ++i) {
    st_.receive(udp(9, "nobody"), now_);  // 80 at once; the bucket holds 50
  }
  auto frames = out();
  ASSERT_EQ(frames.size(), 50U);
  const auto d = wire::decode_frame(frames[0]);
  ASSERT_TRUE(d.accepted() && d.icmp);
  EXPECT_EQ(d.icmp->type, wire::icmp_type::destination_unreachable);
  EXPECT_EQ(d.icmp->code, wire::icmp_unreachable::port);
  // The quote starts with the offending IP header (source = the peer).
  EXPECT_EQ(wire::load32(d.payload.data() + 12), peer_ip.value);
  EXPECT_EQ(st_.counters().icmp_errors_rate_limited, 30U);
  now_ += 100 * millisecond;  // 100/s refills 10 tokens
  for (int i = 0; i < 20; ++i) {
    st_.receive(udp(9, "nobody"), now_);
  }
  EXPECT_EQ(out().size(), 10U);
}

TEST_F(StackTest, EphemeralPortsAreInRangeDistinctAndKeyed) {
  std::set<std::uint16_t> ports;
  std::uint16_t first = 0;
  for (int i = 0; i < 20; ++i) {
    stack::socket_id s = 0;
    ASSERT_FALSE(st_.udp_bind(0, s));
    const std::uint16_t p = st_.udp_port(s);
    EXPECT_GE(p, 49152);
    if (i == 0) {
      first = p;
    }
    ports.insert(p);
  }
  EXPECT_EQ(ports.size(), 20U);
  stack other(config(), pool_, stack_secret{99999, 0});  // another secret: another sequence
  stack::socket_id s = 0;
  ASSERT_FALSE(other.udp_bind(0, s));
  stack same(config(), pool_, stack_secret{1234, 0});
  stack::socket_id t = 0;
  ASSERT_FALSE(same.udp_bind(0, t));
  EXPECT_EQ(same.udp_port(t), first);              // same secret: same choice (reproducible)
  EXPECT_NE(other.udp_port(s), same.udp_port(t));  // the secret keys it
}

TEST_F(StackTest, SteadyStateEchoAllocatesNothing) {
  learn_peer();
  for (int i = 0; i < 10; ++i) {  // warm-up
    st_.receive(ping(static_cast<std::uint16_t>(i)), now_);
    out();
  }
  std::array<packet, 8> burst;
  const std::uint64_t before = dpdk_net::test::allocation_count();
  std::size_t replies = 0;
  for (int i = 0; i < 1000; ++i) {
    packet p = pool_.alloc();  // a ping built by hand (the helpers allocate vectors)
    std::byte* d = p.append(50);
    std::memset(d, 0, 50);
    wire::write_ethernet(std::span(d, 14),
                         wire::ethernet_header{our_mac, peer_mac, wire::ethertype::ipv4, false, 0});
    wire::ipv4_header h;
    h.total_length = 36;
    h.protocol = wire::ip_protocol::icmp;
    h.src = peer_ip;
    h.dst = our_ip;
    wire::write_ipv4(std::span(d + 14, 20), h);
    wire::write_icmp(std::span(d + 34, 16), wire::icmp_header{8, 0, 0, 1},
                     std::span<const std::byte>(d + 42, 8));
    st_.receive(std::move(p), now_);
    const std::size_t n = st_.drain_tx(burst);
    replies += n;
    free_burst(std::span(burst.data(), n));
  }
  EXPECT_EQ(dpdk_net::test::allocation_count() - before, 0U);
  EXPECT_EQ(replies, 1000U);
}

}  // namespace stack_test
}  // namespace
}  // namespace dpdk_net::stack

namespace dpdk_net::stack {
namespace {
namespace stack_test {

/// Two stacks wired back to back by hand: whatever one sends, the other receives.
struct stack_pair {
  packet_pool pool{packet_pool_config{}};
  stack a{cfg(our_mac, our_ip), pool, stack_secret{1, 0}};
  stack b{cfg(peer_mac, peer_ip), pool, stack_secret{2, 0}};
  static stack_config cfg(mac_address m, ipv4_address ip) {
    stack_config c;
    c.mac = m;
    c.address = ip;
    return c;
  }
  /// Moves frames a->b and b->a until both are quiet; reorder reverses each batch.
  std::size_t exchange(time_ns now, bool reverse = false) {
    std::size_t moved = 0;
    for (int round = 0; round < 10; ++round) {
      std::size_t here = 0;
      for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
        std::array<packet, 64> burst;
        const std::size_t n = from->drain_tx(burst);
        if (reverse) {
          std::reverse(burst.begin(), burst.begin() + static_cast<std::ptrdiff_t>(n));
        }
        for (std::size_t i = 0; i < n; ++i) {
          to->receive(std::move(burst[i]), now);
        }
        here += n;
      }
      moved += here;
      if (here == 0) {
        break;
      }
    }
    return moved;
  }
};

TEST_F(StackTest, FragmentedTcpSynIsReassembledAndAnswered) {
  // A SYN split in two fragments (a path that fragments despite DF being customary): once
  // reassembled it is an ordinary unicast segment, answered with a SYN-ACK.
  learn_peer();
  stack::socket_id l = 0;
  ASSERT_FALSE(st_.tcp().open(l));
  ASSERT_FALSE(st_.tcp().bind(l, 80));
  ASSERT_FALSE(st_.tcp().listen(l, 4));
  std::array<std::byte, 24> syn{};
  wire::tcp_header th;
  th.src_port = 5555;
  th.dst_port = 80;
  th.seq = 1000;
  th.flags = wire::tcp_flag::syn;
  th.window = 65535;
  th.options.mss = 1460;
  const std::size_t n = wire::write_tcp(syn, th);
  ASSERT_EQ(n, 24U);
  wire::set_tcp_checksum(syn, wire::pseudo_header{peer_ip, our_ip});
  wire::ipv4_header h;
  h.protocol = wire::ip_protocol::tcp;
  h.src = peer_ip;
  h.dst = our_ip;
  h.id = 99;
  h.more_fragments = true;
  st_.receive(ip_frame(h, std::span(syn).first(16)), now_);
  h.more_fragments = false;
  h.fragment_offset = 2;
  st_.receive(ip_frame(h, std::span(syn).subspan(16)), now_);
  EXPECT_EQ(st_.counters().tcp_to_broadcast, 0U);
  bool syn_ack = false;
  for (const auto& f : out()) {
    const auto d = wire::decode_frame(f);
    if (d.tcp && d.tcp->src_port == 80 && d.tcp->has(wire::tcp_flag::syn) &&
        d.tcp->has(wire::tcp_flag::ack)) {
      syn_ack = true;
      EXPECT_EQ(d.tcp->ack, 1001U);
    }
  }
  EXPECT_TRUE(syn_ack);
}

TEST(StackFragments, LargeUdpIsFragmentedAndReassembledInAnyOrder) {
  for (bool reverse : {false, true}) {
    stack_pair p;
    stack::socket_id sa = 0;
    stack::socket_id sb = 0;
    ASSERT_FALSE(p.a.udp_bind(1000, sa));
    ASSERT_FALSE(p.b.udp_bind(2000, sb));
    std::vector<std::byte> big(4000);
    for (std::size_t i = 0; i < big.size(); ++i) {
      big[i] = static_cast<std::byte>(i * 7);
    }
    ASSERT_FALSE(p.a.udp_send_to(sa, peer_ip, 2000, big, 0));
    p.exchange(0, reverse);                           // ARP first, then the three fragments
    EXPECT_EQ(p.a.counters().ip_fragments_sent, 3U);  // 1480 + 1480 + 1048 bytes of UDP
    auto d = p.b.udp_receive(sb);
    ASSERT_TRUE(d) << "reverse=" << reverse;
    EXPECT_FALSE(d->contiguous());  // a chain of the three fragments' buffers: no copy
    std::vector<std::byte> got(5000);
    ASSERT_EQ(d->copy_payload(got), 4000U);
    got.resize(4000);
    EXPECT_EQ(got, big);
    EXPECT_EQ(p.b.counters().reassembly.reassembled, 1U);
    // And back: b answers with the same 4000 bytes.
    ASSERT_FALSE(p.b.udp_send_to(sb, our_ip, 1000, got, 0));
    p.exchange(0, reverse);
    auto back = p.a.udp_receive(sa);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->length, 4000U);
  }
}

}  // namespace stack_test
}  // namespace
}  // namespace dpdk_net::stack

namespace dpdk_net::stack {
namespace {
namespace stack_test {

class PmtuTest : public StackTest {
 protected:
  /// Sends a UDP datagram of n payload bytes from port 53 and returns the frame(s) it became.
  std::vector<std::vector<std::byte>> send_udp(std::size_t n) {
    std::vector<std::byte> payload(n, std::byte{0x5a});
    EXPECT_FALSE(st_.udp_send_to(sock_, peer_ip, 5555, payload, now_));
    return out();
  }
  /// A frag-needed from a router quoting `sent` (an Ethernet frame we sent), with edits.
  packet frag_needed(const std::vector<std::byte>& sent, std::uint16_t mtu,
                     const std::function<void(std::vector<std::byte>&)>& edit = {}) {
    std::vector<std::byte> quote(sent.begin() + 14, sent.begin() + 14 + 28);
    if (edit) {
      edit(quote);
    }
    std::vector<std::byte> icmp(8 + quote.size());
    wire::write_icmp(icmp,
                     wire::icmp_header{wire::icmp_type::destination_unreachable,
                                       wire::icmp_unreachable::fragmentation_needed, 0, mtu},
                     quote);
    return frame(wire::ip_protocol::icmp, icmp);
  }
  void SetUp() override {
    learn_peer();
    ASSERT_FALSE(st_.udp_bind(53, sock_));
  }
  stack::socket_id sock_ = 0;
};

TEST_F(PmtuTest, FragNeededLowersThePathMtuAndLaterSendsFitIt) {
  const auto first = send_udp(1400);
  ASSERT_EQ(first.size(), 1U);
  const auto d = wire::decode_frame(first[0]);
  ASSERT_TRUE(d.ipv4);
  EXPECT_TRUE(d.ipv4->dont_fragment);  // fits the path: DF, so a smaller path can tell us
  st_.receive(frag_needed(first[0], 1000), now_);
  EXPECT_EQ(st_.counters().pmtu_lowered, 1U);
  EXPECT_EQ(st_.path_mtu(peer_ip, now_), 1000);
  const auto again = send_udp(1400);
  ASSERT_EQ(again.size(), 2U);  // fragmented to the new path MTU
  for (const auto& f : again) {
    EXPECT_LE(f.size() - 14, 1000U);
    EXPECT_FALSE(wire::decode_frame(f).ipv4->dont_fragment);
  }
  now_ += 10 * 60 * second;  // the learned value expires (RFC 1191)
  EXPECT_EQ(st_.path_mtu(peer_ip, now_), 1500);
}

TEST_F(PmtuTest, ImplausibleFragNeededIsIgnored) {
  const auto sent = send_udp(1400);
  ASSERT_EQ(sent.size(), 1U);
  st_.receive(frag_needed(sent[0], 0), now_);     // pre-RFC 1191 router: no MTU
  st_.receive(frag_needed(sent[0], 60), now_);    // below the IPv4 minimum of 68
  st_.receive(frag_needed(sent[0], 1500), now_);  // not lower than what we use
  st_.receive(frag_needed(sent[0], 1000,
                          [](std::vector<std::byte>& q) {
                            q[12] =
                                std::byte{10};  // not our source address: not a datagram of ours
                          }),
              now_);
  st_.receive(frag_needed(sent[0], 1000,
                          [](std::vector<std::byte>& q) {
                            q[6] =
                                std::byte{0};  // DF clear: it could not have caused a frag-needed
                          }),
              now_);
  st_.receive(frag_needed(sent[0], 1000,
                          [](std::vector<std::byte>& q) {
                            q[20] = std::byte{0x99};  // a source port we have no socket on
                          }),
              now_);
  EXPECT_EQ(st_.counters().pmtu_ignored, 6U);
  EXPECT_EQ(st_.counters().pmtu_lowered, 0U);
  EXPECT_EQ(st_.path_mtu(peer_ip, now_), 1500);
}

}  // namespace stack_test
}  // namespace
}  // namespace dpdk_net::stack
