// The ARP layer packet by packet: craft a frame, feed it at time t, check what comes out.
#include "dpdk_net/stack/arp.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "../counting_allocator.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::stack {
namespace {
namespace arp_test {

using wire::ipv4_address;

const mac_address our_mac{{0x02, 0, 0, 0, 0, 0x01}};
const mac_address peer_mac{{0x02, 0, 0, 0, 0, 0x02}};
const ipv4_address our_ip = ipv4_address::from_octets(198, 18, 0, 1);
const ipv4_address peer_ip = ipv4_address::from_octets(198, 18, 0, 2);

class ArpTest : public ::testing::Test {
 protected:
  explicit ArpTest(arp_config c = config())
      : arp_(
            c, pool_, wheel_, [this](packet p) { out_.push_back(std::move(p)); }, sip_key{1, 2}) {}

  static arp_config config() {
    arp_config c;
    c.mac = our_mac;
    c.address = our_ip;
    return c;
  }

  /// The ARP payload (28 bytes) of a packet from `sender`.
  static std::vector<std::byte> arp_payload(std::uint16_t op, mac_address sender_mac,
                                            ipv4_address sender_ip, mac_address target_mac,
                                            ipv4_address target_ip) {
    std::vector<std::byte> b(wire::arp_length);
    wire::write_arp(b, wire::arp_packet{op, sender_mac, sender_ip, target_mac, target_ip});
    return b;
  }
  /// An IPv4 datagram with headroom for the Ethernet header, tagged by its IP id.
  packet datagram(std::uint16_t id) {
    packet p = pool_.alloc();
    wire::ipv4_header h;
    h.total_length = 20;
    h.id = id;
    h.protocol = 253;
    h.src = our_ip;
    h.dst = peer_ip;
    wire::write_ipv4(std::span(p.append(20), 20), h);
    return p;
  }
  std::vector<wire::decoded_frame> sent() {
    std::vector<wire::decoded_frame> d;
    for (packet& p : out_) {
      frames_.emplace_back(p.front().begin(), p.front().end());
    }
    for (std::size_t i = frames_.size() - out_.size(); i < frames_.size(); ++i) {
      d.push_back(wire::decode_frame(frames_[i]));
    }
    out_.clear();
    return d;
  }
  void at(time_ns t) {
    now_ = t;
    wheel_.advance(t);
  }

  packet_pool pool_{packet_pool_config{}};
  timer_wheel wheel_{millisecond};
  std::vector<packet> out_;
  std::vector<std::vector<std::byte>> frames_;  // keeps decoded bytes alive
  time_ns now_ = 0;
  arp arp_;
};

TEST_F(ArpTest, AnswersRequestsForOurAddressAndLearnsTheAsker) {
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, our_ip), 0);
  const auto out = sent();
  ASSERT_EQ(out.size(), 1U);
  ASSERT_TRUE(out[0].arp);
  EXPECT_EQ(out[0].eth.dst, peer_mac);
  EXPECT_EQ(out[0].eth.src, our_mac);
  EXPECT_EQ(out[0].arp->operation, wire::arp_op::reply);
  EXPECT_EQ(out[0].arp->sender_mac, our_mac);
  EXPECT_EQ(out[0].arp->sender_ip, our_ip);
  EXPECT_EQ(out[0].arp->target_mac, peer_mac);
  EXPECT_EQ(out[0].arp->target_ip, peer_ip);
  EXPECT_EQ(arp_.lookup(peer_ip), peer_mac);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::reachable);
}

TEST_F(ArpTest, IgnoresRequestsForOthersAndUnsolicitedReplies) {
  const ipv4_address other = ipv4_address::from_octets(198, 18, 0, 9);
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, other), 0);
  arp_.receive(arp_payload(wire::arp_op::reply, peer_mac, peer_ip, our_mac, our_ip), 0);
  EXPECT_TRUE(sent().empty());
  EXPECT_FALSE(arp_.lookup(peer_ip));  // no poisoning from a reply we did not ask for
  EXPECT_EQ(arp_.counters().unsolicited_ignored, 1U);
  std::vector<std::byte> junk(27);
  arp_.receive(junk, 0);
  EXPECT_EQ(arp_.counters().malformed, 1U);
}

class ArpAcceptingTest : public ArpTest {
 protected:
  ArpAcceptingTest()
      : ArpTest([] {
          arp_config c = config();
          c.accept_unsolicited = true;
          return c;
        }()) {}
};

TEST_F(ArpAcceptingTest, LearnsUnsolicitedRepliesWhenConfiguredTo) {
  arp_.receive(arp_payload(wire::arp_op::reply, peer_mac, peer_ip, our_mac, our_ip), 0);
  EXPECT_EQ(arp_.lookup(peer_ip), peer_mac);
}

TEST_F(ArpTest, ResolvesThenSendsWhatWaited) {
  arp_.send(datagram(1), peer_ip, 0);
  arp_.send(datagram(2), peer_ip, 0);
  auto out = sent();
  ASSERT_EQ(out.size(), 1U);  // one request, the datagrams wait
  EXPECT_TRUE(out[0].eth.dst.is_broadcast());
  EXPECT_EQ(out[0].arp->operation, wire::arp_op::request);
  EXPECT_EQ(out[0].arp->target_ip, peer_ip);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::incomplete);
  at(5 * millisecond);
  arp_.receive(arp_payload(wire::arp_op::reply, peer_mac, peer_ip, our_mac, our_ip), now_);
  out = sent();
  ASSERT_EQ(out.size(), 2U);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(out[i].ipv4);
    EXPECT_EQ(out[i].eth.dst, peer_mac);
    EXPECT_EQ(out[i].eth.src, our_mac);
    EXPECT_EQ(out[i].ipv4->id, i + 1);  // in the order they were sent
  }
  arp_.send(datagram(3), peer_ip, now_);  // known now: straight out
  EXPECT_EQ(sent().size(), 1U);
}

TEST_F(ArpTest, RetriesThenGivesUpAndCountsTheDrops) {
  arp_.send(datagram(1), peer_ip, 0);
  EXPECT_EQ(sent().size(), 1U);
  at(999 * millisecond);
  EXPECT_TRUE(sent().empty());
  at(second);
  EXPECT_EQ(sent().size(), 1U);  // second request
  at(2 * second);
  EXPECT_EQ(sent().size(), 1U);  // third
  at(3 * second);
  EXPECT_TRUE(sent().empty());  // gave up
  EXPECT_EQ(arp_.counters().requests_sent, 3U);
  EXPECT_EQ(arp_.counters().resolution_failed, 1U);
  EXPECT_EQ(arp_.counters().pending_dropped, 1U);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::free);
  EXPECT_EQ(pool_.available(), pool_.capacity());  // the dropped datagram went back
}

TEST_F(ArpTest, PerDestinationQueueKeepsTheNewest) {
  for (std::uint16_t id = 1; id <= 6; ++id) {
    arp_.send(datagram(id), peer_ip, 0);
  }
  sent();
  arp_.receive(arp_payload(wire::arp_op::reply, peer_mac, peer_ip, our_mac, our_ip), 0);
  const auto out = sent();
  ASSERT_EQ(out.size(), 4U);  // pending_per_entry = 4
  EXPECT_EQ(out.front().ipv4->id, 3);
  EXPECT_EQ(out.back().ipv4->id, 6);
  EXPECT_EQ(arp_.counters().pending_dropped, 2U);
}

TEST_F(ArpTest, ReachableGoesStaleStaysUsableThenIsForgotten) {
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, our_ip), 0);
  sent();
  at(30 * second);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::stale);
  at(10 * 60 * second - millisecond);  // unused: stale until stale_time after its last use
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::stale);
  at(10 * 60 * second);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::free);
  // Used while stale: still used (the datagram goes out) and re-verified (a probe goes too).
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, our_ip), now_);
  sent();
  at(now_ + 30 * second);
  ASSERT_EQ(arp_.state_of(peer_ip), arp::state::stale);
  arp_.send(datagram(1), peer_ip, now_);
  EXPECT_EQ(sent().size(), 2U);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::probe);
}

TEST_F(ArpTest, DefendsOurAddressAgainstProbesAndLearnsNothingFromThem) {
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, ipv4_address{}, {}, our_ip), 0);
  const auto out = sent();
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].arp->operation, wire::arp_op::reply);
  EXPECT_EQ(out[0].eth.dst, peer_mac);
  EXPECT_FALSE(arp_.lookup(ipv4_address{}));
  EXPECT_EQ(arp_.counters().probes_answered, 1U);
}

TEST_F(ArpTest, AnnouncesWithAGratuitousRequest) {
  arp_.announce(0);
  const auto out = sent();
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].eth.dst.is_broadcast());
  EXPECT_EQ(out[0].arp->operation, wire::arp_op::request);
  EXPECT_EQ(out[0].arp->sender_ip, our_ip);
  EXPECT_EQ(out[0].arp->target_ip, our_ip);
}

TEST_F(ArpTest, RequestsAreRateLimited) {
  for (std::uint32_t i = 0; i < 150; ++i) {
    arp_.send(datagram(1), ipv4_address{0xc6130000U + i}, 0);  // 150 unresolvable at once
  }
  EXPECT_EQ(arp_.counters().requests_sent, 100U);  // the bucket holds 100
  EXPECT_EQ(arp_.counters().rate_limited, 50U);
  EXPECT_EQ(arp_.counters().pending_dropped, 22U);  // 128 may wait in all
}

class ArpSmallTableTest : public ArpTest {
 protected:
  ArpSmallTableTest()
      : ArpTest([] {
          arp_config c = config();
          c.entries = 4;
          return c;
        }()) {}
};

TEST_F(ArpSmallTableTest, FullTableEvictsTheOldestStaleEntryOnly) {
  for (std::uint8_t i = 0; i < 4; ++i) {
    const ipv4_address ip = ipv4_address::from_octets(198, 18, 1, i);
    arp_.receive(arp_payload(wire::arp_op::request, peer_mac, ip, {}, our_ip), i * second);
    arp_.send(datagram(i), ip, i * second);  // in use by us: not evictable while fresh
  }
  sent();
  const ipv4_address newcomer = ipv4_address::from_octets(198, 18, 2, 1);
  arp_.send(datagram(1), newcomer, 4 * second);  // all four are reachable: no room
  EXPECT_EQ(arp_.counters().table_full, 1U);
  at(40 * second);  // all stale now
  arp_.send(datagram(2), newcomer, now_);
  EXPECT_EQ(arp_.state_of(newcomer), arp::state::incomplete);
  EXPECT_EQ(arp_.state_of(ipv4_address::from_octets(198, 18, 1, 0)), arp::state::free);  // oldest
  EXPECT_EQ(arp_.state_of(ipv4_address::from_octets(198, 18, 1, 3)), arp::state::stale);
}

TEST_F(ArpTest, IndexSurvivesChurn) {
  // Many addresses learned and forgotten: every lookup still finds exactly the live ones.
  for (std::uint32_t round = 0; round < 20; ++round) {
    for (std::uint32_t i = 0; i < 200; ++i) {
      const ipv4_address ip{0xc6120000U + round * 1000 + i};
      arp_.receive(arp_payload(wire::arp_op::request, peer_mac, ip, {}, our_ip), now_);
    }
    sent();
    at(now_ + 11 * 60 * second);  // stale, then forgotten
    for (std::uint32_t i = 0; i < 200; ++i) {
      ASSERT_EQ(arp_.state_of(ipv4_address{0xc6120000U + round * 1000 + i}), arp::state::free);
    }
  }
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, our_ip), now_);
  EXPECT_EQ(arp_.lookup(peer_ip), peer_mac);
}

TEST_F(ArpTest, SendingToAKnownNeighbourAllocatesNothing) {
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, our_ip), 0);
  sent();
  out_.reserve(16);
  const std::uint64_t before = dpdk_net::test::allocation_count();
  for (int i = 0; i < 1000; ++i) {
    arp_.send(datagram(1), peer_ip, 0);
    out_.clear();
  }
  EXPECT_EQ(dpdk_net::test::allocation_count() - before, 0U);
}

}  // namespace arp_test
}  // namespace
}  // namespace dpdk_net::stack

namespace dpdk_net::stack {
namespace {
namespace arp_test {

// RFC 1122 2.3.2.1: an entry in use is re-verified once stale, so a host that moved to a new MAC
// (without announcing it) is reached again within a bound, instead of black-holed forever.
TEST_F(ArpTest, StaleEntryInUseIsReverifiedUnicastThenBroadcastAndFollowsAMacChange) {
  const mac_address new_mac{{0x02, 0, 0, 0, 0, 0x22}};
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, our_ip), 0);
  sent();
  at(31 * second);  // reachable_time (30 s) passed: stale, still used
  ASSERT_EQ(arp_.state_of(peer_ip), arp::state::stale);
  arp_.send(datagram(1), peer_ip, now_);
  auto s = sent();
  ASSERT_EQ(s.size(), 2U);  // a unicast probe to the cached MAC, and the datagram, still to it
  ASSERT_TRUE(s[0].arp);
  EXPECT_EQ(s[0].eth.dst, peer_mac);
  EXPECT_EQ(s[0].arp->operation, wire::arp_op::request);
  EXPECT_EQ(s[0].arp->target_ip, peer_ip);
  EXPECT_EQ(s[1].eth.dst, peer_mac);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::probe);
  // The host moved to new_mac: unicast probes to the old MAC go unanswered.
  std::size_t unicast = 1;
  std::size_t broadcast = 0;
  time_ns answered_at = 0;
  for (int tick = 0; tick < 10 && answered_at == 0; ++tick) {
    at(now_ + second);
    for (const auto& f : sent()) {
      ASSERT_TRUE(f.arp);
      if (f.eth.dst == peer_mac) {
        ++unicast;
      } else if (f.eth.dst == mac_address::broadcast()) {
        ++broadcast;
        // The moved host answers a broadcast request from its new MAC.
        arp_.receive(arp_payload(wire::arp_op::reply, new_mac, peer_ip, our_mac, our_ip), now_);
        answered_at = now_;
      }
    }
  }
  EXPECT_EQ(unicast, 3U);  // unicast_probes
  EXPECT_EQ(broadcast, 1U);
  EXPECT_EQ(arp_.lookup(peer_ip), new_mac);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::reachable);
  // The documented bound: reachable_time + unicast_probes x retry_interval after the last proof.
  EXPECT_LE(answered_at, 30 * second + 3 * second + 2 * second);
  arp_.send(datagram(2), peer_ip, now_);
  s = sent();
  ASSERT_EQ(s.size(), 1U);
  EXPECT_EQ(s[0].eth.dst, new_mac);
  EXPECT_EQ(arp_.counters().probes_sent, 3U);
}

TEST_F(ArpTest, AnEntryInUseThatStopsAnsweringIsForgottenAfterItsProbes) {
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, our_ip), 0);
  at(31 * second);
  arp_.send(datagram(1), peer_ip, now_);
  for (int i = 0; i < 8; ++i) {
    at(now_ + second);
  }
  sent();
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::free);
  EXPECT_EQ(arp_.counters().verify_failed, 1U);
  EXPECT_EQ(arp_.counters().probes_sent, 3U);
}

TEST_F(ArpTest, ConfirmationFromAboveKeepsAnEntryReachableWithoutProbes) {
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer_ip, {}, our_ip), 0);
  sent();
  at(29 * second);
  arp_.confirm_reachable(peer_ip, now_);  // e.g. TCP saw its data acknowledged
  at(40 * second);
  EXPECT_EQ(arp_.state_of(peer_ip), arp::state::reachable);
  arp_.send(datagram(1), peer_ip, now_);
  EXPECT_EQ(sent().size(), 1U);  // no probe
}

TEST_F(ArpTest, KeyedIndexGivesNoCollisionChainsForAddressesChosenToCollide) {
  // 200 sources equal in their low 10 bits: under an unkeyed multiplicative hash (the index
  // used before) every one lands in the same home cell, a 200-long probe run. Keyed, the
  // attacker cannot aim: runs stay short.
  for (std::uint32_t i = 0; i < 200; ++i) {
    const ipv4_address ip{0xc6120000U + (i << 10U)};
    arp_.receive(arp_payload(wire::arp_op::request, peer_mac, ip, {}, our_ip), now_);
  }
  sent();
  std::size_t longest = 0;
  for (std::uint32_t i = 0; i < 200; ++i) {
    const ipv4_address ip{0xc6120000U + (i << 10U)};
    ASSERT_EQ(arp_.lookup(ip), peer_mac);
    longest = std::max(longest, arp_.probe_length(ip));
  }
  EXPECT_LE(longest, 16U);  // 200 in 512 cells: a random hash's longest run is ~10
  // Other keys, other homes: the layout is the key's, not the addresses'.
  packet_pool pool{packet_pool_config{}};
  std::vector<packet> sink;
  arp other(
      config(), pool, wheel_, [&](packet p) { sink.push_back(std::move(p)); }, sip_key{99, 100});
  std::size_t same_probe = 0;
  for (std::uint32_t i = 0; i < 200; ++i) {
    const ipv4_address ip{0xc6120000U + (i << 10U)};
    other.receive(arp_payload(wire::arp_op::request, peer_mac, ip, {}, our_ip), now_);
  }
  for (std::uint32_t i = 0; i < 200; ++i) {
    const ipv4_address ip{0xc6120000U + (i << 10U)};
    same_probe += other.probe_length(ip) == arp_.probe_length(ip) ? 1 : 0;
  }
  EXPECT_LT(same_probe, 200U);
}

TEST_F(ArpSmallTableTest, ResolutionsThatNeverFinishDoNotLockOutANewPeer) {
  // A SYN flood from spoofed on-link sources: every SYN-ACK starts a resolution that will never
  // finish. The table fills with incomplete entries; a real peer then asks for our address and
  // we must still learn it (and resolve it), the oldest resolution giving way.
  for (std::uint8_t i = 0; i < 4; ++i) {
    arp_.send(datagram(i), ipv4_address::from_octets(198, 18, 1, i), i * millisecond);
  }
  const ipv4_address peer = ipv4_address::from_octets(198, 18, 2, 1);
  arp_.receive(arp_payload(wire::arp_op::request, peer_mac, peer, {}, our_ip), 5 * millisecond);
  EXPECT_EQ(arp_.lookup(peer), peer_mac) << "learned despite a table full of resolutions";
  EXPECT_EQ(arp_.state_of(ipv4_address::from_octets(198, 18, 1, 0)), arp::state::free)
      << "the oldest resolution gave way";
  EXPECT_EQ(arp_.state_of(ipv4_address::from_octets(198, 18, 1, 3)), arp::state::incomplete);
  EXPECT_EQ(arp_.counters().table_full, 1U);
  EXPECT_GE(arp_.counters().pending_dropped, 1U) << "its waiting frame was dropped and counted";
}

TEST_F(ArpSmallTableTest, SpoofedRequestsCannotPushOutAnEntryInUse) {
  // The gateway, resolved for our own traffic; then a flood of requests from made-up senders.
  const ipv4_address gateway = ipv4_address::from_octets(198, 18, 0, 254);
  const mac_address gw_mac{{0x02, 0, 0, 0, 0, 0xfe}};
  arp_.send(datagram(1), gateway, 0);
  arp_.receive(arp_payload(wire::arp_op::reply, gw_mac, gateway, our_mac, our_ip), 0);
  sent();
  for (std::uint32_t i = 0; i < 100; ++i) {
    arp_.receive(
        arp_payload(wire::arp_op::request, peer_mac, ipv4_address{0xc6130000U + i}, {}, our_ip),
        millisecond * i);
  }
  sent();
  EXPECT_EQ(arp_.counters().table_full, 0U);  // flood entries evict each other
  EXPECT_GE(arp_.counters().evicted, 97U);
  EXPECT_EQ(arp_.lookup(gateway), gw_mac);
  arp_.send(datagram(2), gateway, 200 * millisecond);
  const auto s = sent();
  ASSERT_EQ(s.size(), 1U);
  EXPECT_EQ(s[0].eth.dst, gw_mac);
}

TEST_F(ArpSmallTableTest, FullTableEvictsTheLongestStaleInConstantTime) {
  // Four entries go stale in the order 2, 0, 3, 1 (their last proofs came in that order).
  const std::array<std::uint8_t, 4> order{2, 0, 3, 1};
  for (std::size_t k = 0; k < order.size(); ++k) {
    const ipv4_address ip = ipv4_address::from_octets(198, 18, 1, order[k]);
    arp_.receive(arp_payload(wire::arp_op::request, peer_mac, ip, {}, our_ip), k * second);
  }
  sent();
  at(40 * second);
  for (std::uint8_t n = 1; n <= 3; ++n) {
    arp_.send(datagram(n), ipv4_address::from_octets(198, 18, 2, n), now_);
  }
  EXPECT_EQ(arp_.counters().evicted, 3U);
  // Evicted in the order they went stale: 2, 0, 3; 1 (stale last) stays.
  EXPECT_EQ(arp_.state_of(ipv4_address::from_octets(198, 18, 1, 2)), arp::state::free);
  EXPECT_EQ(arp_.state_of(ipv4_address::from_octets(198, 18, 1, 0)), arp::state::free);
  EXPECT_EQ(arp_.state_of(ipv4_address::from_octets(198, 18, 1, 3)), arp::state::free);
  EXPECT_EQ(arp_.state_of(ipv4_address::from_octets(198, 18, 1, 1)), arp::state::stale);
}

}  // namespace arp_test
}  // namespace
}  // namespace dpdk_net::stack
