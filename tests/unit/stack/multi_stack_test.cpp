// Several stacks on one address (the multi-worker runtime's pieces, without threads): flow
// steering of every kind of frame, the port tables and the stack's hooks (port coordinator, ARP
// copies, handed-over datagrams). multi_mesh_test.cpp has the data path.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "../counting_allocator.hpp"
#include "dpdk_net/detail/spsc_ring.hpp"
#include "dpdk_net/rss.hpp"
#include "dpdk_net/runtime/flow_steering.hpp"
#include "dpdk_net/runtime/worker_mesh.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"
#include "multi_fixture.hpp"

namespace dpdk_net::stack {
namespace {
namespace multi_stack_test {

using socket_id = stack::socket_id;
using dpdk_net::stack::port_claim;

class MultiStack : public StackTest {
 protected:
  packet tcp_from_peer(std::uint16_t sport, std::uint16_t dport) {
    std::array<std::byte, 20> l4{};
    wire::store16(l4.data(), sport);
    wire::store16(l4.data() + 2, dport);
    l4[12] = std::byte{0x50};
    return frame(wire::ip_protocol::tcp, l4);
  }
  packet udp_from_peer(std::uint16_t sport, std::uint16_t dport) {
    std::array<std::byte, 12> l4{};
    wire::write_udp(l4, wire::udp_header{sport, dport, 0, 0}, std::span(l4).subspan(8),
                    wire::pseudo_header{peer_ip, our_ip});
    return frame(wire::ip_protocol::udp, l4);
  }
  /// An ICMP error (type/code) from the peer quoting a datagram we sent from local to remote.
  packet icmp_error_about(std::uint8_t type, std::uint8_t code, std::uint8_t protocol,
                          std::uint16_t local, std::uint16_t remote) {
    std::array<std::byte, 8 + 28> msg{};
    wire::ipv4_header inner;
    inner.total_length = 100;
    inner.protocol = protocol;
    inner.dont_fragment = true;
    inner.src = our_ip;
    inner.dst = peer_ip;
    wire::write_ipv4(std::span(msg).subspan(8, 20), inner);
    wire::store16(msg.data() + 28, local);
    wire::store16(msg.data() + 30, remote);
    wire::write_icmp(msg, wire::icmp_header{type, code, 0, 1000}, std::span(msg).subspan(8));
    return frame(wire::ip_protocol::icmp, msg);
  }
  packet echo_reply(std::uint16_t id) {
    std::array<std::byte, 8> icmp{};
    wire::write_icmp(
        icmp, wire::icmp_header{wire::icmp_type::echo_reply, 0, 0, std::uint32_t{id} << 16U}, {});
    return frame(wire::ip_protocol::icmp, icmp);
  }
  packet arp_request() {
    std::array<std::byte, 42> f{};
    wire::write_ethernet(f, wire::ethernet_header{mac_address::broadcast(), peer_mac,
                                                  wire::ethertype::arp, false, 0});
    wire::write_arp(std::span(f).subspan(14),
                    wire::arp_packet{wire::arp_op::request, peer_mac, peer_ip, {}, our_ip});
    packet p = pool_.alloc();
    std::memcpy(p.append(f.size()), f.data(), f.size());
    return p;
  }
};

TEST_F(MultiStack, SoftwareSteeringClassifiesEveryKindOfFrame) {
  const flow_steering s(steering(4, steering_mode::software));
  using kind = frame_verdict::kind;
  // TCP and UDP: the Toeplitz hash of the flow as received (source first), through the table.
  for (std::uint16_t sport = 40000; sport < 40064; ++sport) {
    const std::uint32_t h = rss_hash_ipv4_l4(default_rss_key, peer_ip, our_ip, sport, 80);
    const std::uint16_t owner = static_cast<std::uint16_t>((h % 128) % 4);
    for (int which = 0; which < 2; ++which) {
      const packet p = which == 0 ? tcp_from_peer(sport, 80) : udp_from_peer(sport, 80);
      const frame_verdict v = s.classify(p, 1);
      EXPECT_TRUE(v.hashed);
      EXPECT_EQ(v.to, owner == 1 ? kind::here : kind::owner);
      EXPECT_EQ(v.to == kind::here ? 1 : v.worker, owner) << sport;
    }
    EXPECT_EQ(s.hash_owner(peer_ip, sport, 80), owner);
  }
  // ARP: here and to all.
  EXPECT_EQ(s.classify(arp_request(), 2).to, kind::all);
  // ICMP errors: the owner of the quoted flow (our local port is the quote's source).
  for (std::uint16_t local = 50000; local < 50016; ++local) {
    const std::uint16_t owner = s.hash_owner(peer_ip, 443, local);
    for (const std::uint8_t proto : {wire::ip_protocol::tcp, wire::ip_protocol::udp}) {
      const frame_verdict v = s.classify(icmp_error_about(3, 4, proto, local, 443), 0);
      EXPECT_EQ(owner == 0 ? kind::here : kind::owner, v.to);
      if (v.to == kind::owner) {
        EXPECT_EQ(v.worker, owner);
      }
    }
    const frame_verdict te =
        s.classify(icmp_error_about(11, 0, wire::ip_protocol::tcp, local, 443), 0);
    EXPECT_EQ(te.to == kind::here ? 0 : te.worker, owner);
  }
  // Echo replies: the id's worker; echo requests and other ICMP: here.
  for (std::uint16_t id = 0; id < 8; ++id) {
    const frame_verdict v = s.classify(echo_reply(id), 1);
    EXPECT_EQ(v.to == kind::here ? 1 : v.worker, id % 4);
  }
  EXPECT_EQ(s.classify(ping(1), 3).to, kind::here);
  // Fragments: here (reassembled where they land); datagram_owner then decides.
  wire::ipv4_header frag;
  frag.protocol = wire::ip_protocol::udp;
  frag.src = peer_ip;
  frag.dst = our_ip;
  frag.more_fragments = true;
  std::array<std::byte, 16> part{};
  EXPECT_EQ(s.classify(ip_frame(frag, part), 3).to, kind::here);
  frag.more_fragments = false;
  frag.fragment_offset = 185;
  EXPECT_EQ(s.classify(ip_frame(frag, part), 3).to, kind::here);
  // A reassembled datagram (IP header first): its flow's owner.
  packet whole = udp_from_peer(40001, 53);
  whole.trim_front(14);
  EXPECT_EQ(s.datagram_owner(whole, 0), s.hash_owner(peer_ip, 40001, 53));
  // Runt and non-IPv4 frames stay where they land (the stack counts them).
  packet runt = pool_.alloc();
  runt.append(10);
  EXPECT_EQ(s.classify(runt, 2).to, kind::here);
}

TEST_F(MultiStack, HardwareSteeringTrustsTheQueueButHashesIcmpErrors) {
  const flow_steering s(steering(2, steering_mode::hardware));
  for (std::uint16_t sport = 40000; sport < 40016; ++sport) {
    const frame_verdict v = s.classify(tcp_from_peer(sport, 80), 1);
    EXPECT_EQ(v.to, frame_verdict::kind::here);
    EXPECT_FALSE(v.hashed);
  }
  // An ICMP error lands by the address-pair hash: its flow's owner is computed.
  int moved = 0;
  for (std::uint16_t local = 50000; local < 50016; ++local) {
    const frame_verdict v =
        s.classify(icmp_error_about(3, 4, wire::ip_protocol::tcp, local, 443), 0);
    EXPECT_TRUE(v.hashed);
    EXPECT_EQ(v.to == frame_verdict::kind::here ? 0 : v.worker, s.hash_owner(peer_ip, 443, local));
    moved += v.to == frame_verdict::kind::owner ? 1 : 0;
  }
  EXPECT_GT(moved, 0);
}

TEST_F(MultiStack, APortBoundOnOneWorkerBelongsToIt) {
  flow_steering s(steering(3, steering_mode::hardware));
  const ipv4_address none{};
  ASSERT_TRUE(s.acquire(2, port_claim::bind, 6, 8080, none, 0));
  EXPECT_EQ(s.port_mask(6, 8080), 4U);
  EXPECT_EQ(s.port_mask(17, 8080), 0U);  // per protocol
  for (std::uint16_t sport = 40000; sport < 40010; ++sport) {
    const frame_verdict v = s.classify(tcp_from_peer(sport, 8080), 0);
    EXPECT_EQ(v.to, frame_verdict::kind::owner);
    EXPECT_EQ(v.worker, 2);
    EXPECT_EQ(s.flow_owner(6, peer_ip, sport, 8080), 2);
  }
  ASSERT_TRUE(s.acquire(0, port_claim::bind, 6, 8080, none, 0));
  // Bound on 0 and 2 of 3: a flow goes to the first bound worker at or after its hash's
  // (cyclically), so nothing reaches worker 1, which does not listen.
  for (std::uint16_t sport = 40000; sport < 40064; ++sport) {
    const std::uint16_t h = s.hash_owner(peer_ip, sport, 8080);
    const std::uint16_t want = h == 0 ? 0 : 2;
    EXPECT_EQ(s.flow_owner(6, peer_ip, sport, 8080), want);
    // Hardware: the NIC put it on queue h.
    const frame_verdict v = s.classify(tcp_from_peer(sport, 8080), h);
    EXPECT_EQ(v.to == frame_verdict::kind::here ? h : v.worker, want) << sport;
  }
  s.release(0, port_claim::bind, 6, 8080);
  s.release(2, port_claim::bind, 6, 8080);
  EXPECT_EQ(s.port_mask(6, 8080), 0U);
  // bind(0): exclusive (two workers walking the same candidates get one each).
  EXPECT_TRUE(s.acquire(1, port_claim::ephemeral, 17, 50000, none, 0));
  EXPECT_TRUE(s.acquire(1, port_claim::ephemeral, 17, 50000, none, 0));  // idempotent
  EXPECT_FALSE(s.acquire(0, port_claim::ephemeral, 17, 50000, none, 0));
  // A UDP socket's ephemeral port stays its worker's alone: another worker's explicit bind of it
  // would take the replies its hash points at.
  EXPECT_FALSE(s.acquire(0, port_claim::bind, 17, 50000, none, 0));
  EXPECT_EQ(s.port_mask(17, 50000), 2U);
  // Explicit binds share a port (REUSEPORT-like).
  ASSERT_TRUE(s.acquire(0, port_claim::bind, 17, 5353, none, 0));
  ASSERT_TRUE(s.acquire(2, port_claim::bind, 17, 5353, none, 0));
  EXPECT_EQ(s.port_mask(17, 5353), 5U);
  // connect: a port another worker has bound is never chosen; else the hash decides.
  ASSERT_TRUE(s.acquire(1, port_claim::bind, 6, 50001, none, 0));
  EXPECT_FALSE(s.acquire(0, port_claim::connect, 6, 50001, peer_ip, 80));
  std::size_t ok[3] = {0, 0, 0};
  for (std::uint16_t port = 50100; port < 50400; ++port) {
    for (std::uint16_t w = 0; w < 3; ++w) {
      if (s.acquire(w, port_claim::connect, 6, port, peer_ip, 80)) {
        ++ok[w];
        EXPECT_EQ(s.hash_owner(peer_ip, 80, port), w);
        EXPECT_EQ(s.connect_mask(6, port), 1U << w);
      }
    }
  }
  EXPECT_EQ(ok[0] + ok[1] + ok[2], 300U);  // each port is some one worker's
  for (const std::size_t n : ok) {
    EXPECT_GT(n, 60U);  // spread (the default key spreads sequential ports)
  }
  // A port another worker's connection uses cannot be bound (bind(0) or explicit) elsewhere.
  std::uint16_t used = 50100;
  while (s.connect_mask(6, used) != 1U) {
    ++used;
  }
  EXPECT_FALSE(s.acquire(1, port_claim::ephemeral, 6, used, none, 0));
  EXPECT_FALSE(s.acquire(2, port_claim::bind, 6, used, none, 0));
  EXPECT_TRUE(s.acquire(0, port_claim::bind, 6, used, none, 0));  // its own: fine
  s.release(0, port_claim::connect, 6, used);
  EXPECT_EQ(s.connect_mask(6, used), 0U);
  EXPECT_TRUE(s.acquire(2, port_claim::bind, 6, used, none, 0));
}

TEST_F(MultiStack, ALoneListenersOffHashConnectionsKeepOthersFromJoining) {
  flow_steering s(steering(2, steering_mode::software));
  const ipv4_address none{};
  ASSERT_TRUE(s.acquire(0, port_claim::bind, 6, 7, none, 0));
  // Children of worker 0: those whose hash picks worker 1 are held as off-hash.
  std::uint16_t off = 0, on = 0;
  for (std::uint16_t sport = 1000; off == 0 || on == 0; ++sport) {
    (s.hash_owner(peer_ip, sport, 7) == 0 ? on : off) = sport;
  }
  EXPECT_FALSE(s.acquire(0, port_claim::child, 6, 7, peer_ip, on));  // hash-consistent
  EXPECT_TRUE(s.acquire(0, port_claim::child, 6, 7, peer_ip, off));
  // Worker 1 listening now would take that flow: refused while it lives.
  EXPECT_FALSE(s.acquire(1, port_claim::bind, 6, 7, none, 0));
  s.release(0, port_claim::child, 6, 7);
  EXPECT_TRUE(s.acquire(1, port_claim::bind, 6, 7, none, 0));
  EXPECT_EQ(s.port_mask(6, 7), 3U);
}

TEST_F(MultiStack, SymmetricHashGivesBothEndsTheSameWorker) {
  steering_config a = steering(4, steering_mode::software, true);
  steering_config b = a;
  b.address = peer_ip;
  const flow_steering sa(a), sb(b);
  for (std::uint16_t p = 1000; p < 1100; ++p) {
    EXPECT_EQ(sa.hash_owner(peer_ip, 80, p), sb.hash_owner(our_ip, p, 80)) << p;
  }
}

TEST_F(MultiStack, BadSteeringConfigsAreRefusedNamingTheField) {
  auto message = [](steering_config c) -> std::string {
    try {
      const flow_steering s(std::move(c));
      return "";
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
  };
  steering_config c = steering(2, steering_mode::software);
  c.workers = 0;
  EXPECT_NE(message(c).find("workers"), std::string::npos);
  c = steering(2, steering_mode::software);
  c.workers = 33;
  EXPECT_NE(message(c).find("workers"), std::string::npos);
  c = steering(2, steering_mode::software);
  c.key.resize(8);
  EXPECT_NE(message(c).find("key"), std::string::npos);
  c = steering(2, steering_mode::software);
  c.reta[5] = 2;
  EXPECT_NE(message(c).find("reta"), std::string::npos);
  c.reta.clear();
  EXPECT_NE(message(c).find("reta"), std::string::npos);
}

/// Records what a stack asks its coordinator; refuses ephemeral and connect ports below `floor`.
struct recording_coordinator final : port_coordinator {
  std::vector<std::string> calls;
  std::uint16_t floor = 0;
  static const char* name(port_claim k) {
    switch (k) {
      case port_claim::bind:
        return "bind";
      case port_claim::ephemeral:
        return "ephemeral";
      case port_claim::connect:
        return "connect";
      default:
        return "child";
    }
  }
  bool acquire(port_claim kind, std::uint8_t protocol, std::uint16_t port, wire::ipv4_address,
               std::uint16_t) noexcept override {
    calls.push_back(std::string("acquire ") + name(kind) + " " + std::to_string(protocol) + "/" +
                    std::to_string(port));
    return kind == port_claim::bind || kind == port_claim::child ? kind == port_claim::bind
                                                                 : port >= floor;
  }
  void release(port_claim kind, std::uint8_t protocol, std::uint16_t port) noexcept override {
    calls.push_back(std::string("release ") + name(kind) + " " + std::to_string(protocol) + "/" +
                    std::to_string(port));
  }
};

TEST_F(MultiStack, StackReportsBoundPortsAndAsksBeforeTakingEphemeralOnes) {
  recording_coordinator rc;
  st_.set_port_coordinator(&rc);
  tcp_layer& t = st_.tcp();
  socket_id l = 0;
  ASSERT_FALSE(t.open(l));
  ASSERT_FALSE(t.bind(l, 80));
  ASSERT_FALSE(t.listen(l, 16));
  EXPECT_EQ(rc.calls, std::vector<std::string>{"acquire bind 6/80"});
  rc.calls.clear();
  socket_id e = 0;
  ASSERT_FALSE(t.open(e));
  ASSERT_FALSE(t.listen(e, 4));  // bind(0) inside: an ephemeral candidate is acquired
  ASSERT_EQ(rc.calls.size(), 1U);
  EXPECT_EQ(rc.calls[0].rfind("acquire ephemeral 6/", 0), 0U) << rc.calls[0];
  rc.calls.clear();
  t.close(l, now_);
  t.close(e, now_);
  ASSERT_EQ(rc.calls.size(), 2U);
  EXPECT_EQ(rc.calls[0], "release bind 6/80");
  EXPECT_EQ(rc.calls[1].rfind("release bind 6/", 0), 0U);
  rc.calls.clear();
  // connect: candidates are offered with the remote; a refusal moves on, none left fails.
  learn_peer();
  rc.floor = 65535;  // only the last port of the range is acceptable
  socket_id c = 0;
  ASSERT_FALSE(t.open(c));
  ASSERT_FALSE(t.connect(c, tcp_endpoint{peer_ip, 443}, now_));
  ASSERT_TRUE(t.local_endpoint(c));
  EXPECT_EQ(t.local_endpoint(c)->port, 65535);
  EXPECT_GT(rc.calls.size(), 1U);
  EXPECT_EQ(rc.calls.back(), "acquire connect 6/65535");
  socket_id c2 = 0;
  ASSERT_FALSE(t.open(c2));
  EXPECT_EQ(t.connect(c2, tcp_endpoint{peer_ip, 443}, now_),
            std::make_error_code(std::errc::address_not_available));
  rc.calls.clear();
  t.abort(c, now_);  // the connection goes: its port is released
  t.close(c, now_);
  t.close(c2, now_);
  EXPECT_EQ(rc.calls, std::vector<std::string>{"release connect 6/65535"});
  // A bind the coordinator refuses fails with address_in_use (another worker holds the port).
  rc.calls.clear();
  rc.floor = 0;
  struct refusing final : port_coordinator {
    bool acquire(port_claim, std::uint8_t, std::uint16_t, wire::ipv4_address,
                 std::uint16_t) noexcept override {
      return false;
    }
    void release(port_claim, std::uint8_t, std::uint16_t) noexcept override {}
  } no;
  st_.set_port_coordinator(&no);
  socket_id r = 0;
  ASSERT_FALSE(t.open(r));
  EXPECT_EQ(t.bind(r, 8080), std::make_error_code(std::errc::address_in_use));
  socket_id ur = 0;
  EXPECT_EQ(st_.udp_bind(8080, ur), std::make_error_code(std::errc::address_in_use));
  t.close(r, now_);
  st_.set_port_coordinator(&rc);
  // UDP: explicit binds and ephemeral ones acquired, closes released.
  socket_id u1 = 0, u2 = 0;
  ASSERT_FALSE(st_.udp_bind(53, u1));
  ASSERT_FALSE(st_.udp_bind(0, u2));
  ASSERT_EQ(rc.calls.size(), 2U);
  EXPECT_EQ(rc.calls[0], "acquire bind 17/53");
  EXPECT_EQ(rc.calls[1], "acquire ephemeral 17/" + std::to_string(st_.udp_port(u2)));
  st_.udp_close(u1);
  EXPECT_EQ(rc.calls.back(), "release bind 17/53");
  st_.set_port_coordinator(nullptr);
}

TEST_F(MultiStack, AnArpCopyIsLearnedButNotAnswered) {
  st_.receive_arp_copy(arp_request(), now_);
  EXPECT_TRUE(out().empty());  // the worker that received it answers, not us
  // ...but we learned the peer: a ping reply goes out at once, no ARP request first.
  st_.receive(ping(1), now_);
  const auto frames = out();
  ASSERT_EQ(frames.size(), 1U);
  const auto d = wire::decode_frame(frames[0]);
  ASSERT_TRUE(d.icmp);
  EXPECT_EQ(d.eth.dst, peer_mac);
  // The original is answered.
  st_.receive(arp_request(), now_);
  EXPECT_EQ(out().size(), 1U);
}

TEST_F(MultiStack, HandedOverDatagramIsDeliveredAndTheHookSeesReassembledOnes) {
  learn_peer();
  socket_id s = 0;
  ASSERT_FALSE(st_.udp_bind(53, s));
  packet d = udp(53, "handed");
  d.trim_front(14);  // a datagram: IP header first
  st_.receive_datagram(std::move(d), now_);
  auto got = st_.udp_receive(s);
  ASSERT_TRUE(got);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(got->payload().data()), got->length),
            "handed");
  // The hook is offered reassembled datagrams only; taking one keeps it from delivery.
  struct taker {
    int offered = 0;
    static bool take(void* self, packet& p) noexcept {
      ++static_cast<taker*>(self)->offered;
      p.reset();
      return true;
    }
  } tk;
  st_.set_datagram_hook(datagram_hook{&taker::take, &tk});
  st_.receive(udp(53, "whole"), now_);  // not a fragment: delivered, not offered
  EXPECT_EQ(tk.offered, 0);
  std::array<std::byte, 8 + 16> l4{};
  wire::write_udp(l4, wire::udp_header{5555, 53, 0, 0}, std::span(l4).subspan(8),
                  wire::pseudo_header{peer_ip, our_ip});
  wire::ipv4_header h;
  h.protocol = wire::ip_protocol::udp;
  h.src = peer_ip;
  h.dst = our_ip;
  h.id = 77;
  h.more_fragments = true;
  st_.receive(ip_frame(h, std::span(l4).first(16)), now_);
  h.more_fragments = false;
  h.fragment_offset = 2;
  st_.receive(ip_frame(h, std::span(l4).subspan(16)), now_);
  EXPECT_EQ(tk.offered, 1);
  EXPECT_TRUE(st_.udp_receive(s));   // "whole"
  EXPECT_FALSE(st_.udp_receive(s));  // the reassembled one was taken
  st_.set_datagram_hook({});
}

}  // namespace multi_stack_test
}  // namespace
}  // namespace dpdk_net::stack
