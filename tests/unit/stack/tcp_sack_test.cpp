// Scripted SACK (RFC 2018, RFC 2883), packet by packet: the negotiation on SYN and SYN-ACK, the
// blocks the receiver sends for out-of-order data, and the sender's defences against hostile
// blocks (bogus ones ignored and counted, the SACK-panic class bounded). The sender's RFC 6675
// recovery decisions are in tcp_sack_recovery_test.cpp; the fixture in tcp_sack_script.hpp.
#include <algorithm>
#include <cstdio>
#include <set>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "tcp_sack_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_sack_test {

// --- negotiation (RFC 2018 2) ----------------------------------------------------------------

// Our SYN offers SACK-permitted (tcp_config::sack defaults to true); a SYN-ACK offering it too
// makes the connection SACK (tcp_info::sack). The option is for SYNs only ("MUST NOT be sent on
// non-SYN segments"): not on the handshake's ACK nor on data.
TEST_F(TcpSack, SynOffersSackPermittedAndTheSynAckCompletesIt) {
  const socket_id c = open_sender(true);  // checks our SYN and tcp_info::sack
  EXPECT_TRUE(info(c).sack);
  send_stream(c, 100);
  const observed d = expect({.flags = ".", .seq = 1, .len = 100});
  EXPECT_FALSE(d.tcp.options.sack_permitted) << d.str();
}

TEST_F(TcpSack, PeerWithoutSackPermittedMeansNoSack) {
  const socket_id c = open_sender(false);
  EXPECT_FALSE(info(c).sack);
}

// tcp_config::sack = false: our SYN does not offer it (checked in open_sender), so the
// connection is not SACK even though the peer's SYN-ACK offers it.
TEST_F(TcpSack, SackOffOffersNothing) {
  cfg_.tcp.sack = false;
  const socket_id c = open_sender(true);
  EXPECT_FALSE(info(c).sack);
}

// Passive side: the SYN-ACK carries SACK-permitted when the SYN did (RFC 2018 2).
TEST_F(TcpSack, SynAckOffersSackPermittedWhenTheSynDid) {
  observed sa;
  const socket_id c = open_receiver(true, true, &sa);
  EXPECT_TRUE(sa.tcp.options.sack_permitted) << sa.str();
  EXPECT_TRUE(info(c).sack);
}

// A SYN without it gets a SYN-ACK without it: RFC 2018 2 has the option "sent in a SYN" to say
// the sender can receive SACK; answering a SYN that did not offer it says nothing the peer can
// use (Linux: tcp_synack_options adds it only if the SYN had it; RFC 7323 treats window scale
// the same way).
TEST_F(TcpSack, SynAckDoesNotOfferSackToASynWithoutIt) {
  observed sa;
  const socket_id c = open_receiver(false, true, &sa);
  EXPECT_FALSE(sa.tcp.options.sack_permitted) << sa.str();
  EXPECT_FALSE(info(c).sack);
}

TEST_F(TcpSack, SackOffSynAckOffersNothing) {
  cfg_.tcp.sack = false;
  observed sa;
  const socket_id c = open_receiver(true, true, &sa);
  EXPECT_FALSE(sa.tcp.options.sack_permitted) << sa.str();
  EXPECT_FALSE(info(c).sack);
  data(1001, 1000);  // out of order: a duplicate ACK without blocks
  const observed a = expect({.flags = ".", .ack = 1});
  EXPECT_EQ(a.tcp.options.sack_count, 0U) << str(blocks_of(a));
}

// --- the receiver's blocks (RFC 2018 3 and 4) --------------------------------------------------

// With timestamps (12 option bytes) three blocks fit (tcp_max_sack_blocks). Every out-of-order
// segment is ACKed at once, the first block being the block that contains it (RFC 2018 4: MUST);
// the other blocks are other ranges we hold, distinct, never overlapping the first. As holes
// fill, the ACK moves and the blocks follow; the last hole filled, no SACK option at all.
TEST_F(TcpSack, ReceiverReportsTheMostRecentSegmentFirst) {
  const socket_id c = open_receiver(true, true);
  std::uint64_t blocks_sent = 0;
  // Out of order, one at a time: {segment, its block after merging, the other ranges held}.
  struct step {
    block segment, first;
    std::vector<block> others;
    std::uint32_t ack;
  };
  const std::vector<step> steps = {
      {{1001, 2001}, {1001, 2001}, {}, 1},
      {{3001, 4001}, {3001, 4001}, {{1001, 2001}}, 1},
      {{4001, 5001}, {3001, 5001}, {{1001, 2001}}, 1},  // extends a range: the merged block
      {{6001, 7001}, {6001, 7001}, {{3001, 5001}, {1001, 2001}}, 1},
      {{8001, 9001}, {8001, 9001}, {{6001, 7001}, {3001, 5001}, {1001, 2001}}, 1},
  };
  for (const step& x : steps) {
    data(x.segment.first, x.segment.second - x.segment.first);
    const observed a = expect({.flags = ".", .ack = x.ack});
    const std::vector<block> b = blocks_of(a);
    blocks_sent += b.size();
    SCOPED_TRACE("after [" + std::to_string(x.segment.first) + "," +
                 std::to_string(x.segment.second) + "): " + str(b));
    ASSERT_FALSE(b.empty());
    EXPECT_EQ(b.front(), x.first) << "RFC 2018 4: the first block holds the newest segment";
    EXPECT_EQ(b.size(), std::min<std::size_t>(3, 1 + x.others.size()))
        << "as many blocks as we have ranges, at most 3 beside timestamps";
    const std::set<block> others(x.others.begin(), x.others.end());
    const std::set<block> rest(b.begin() + 1, b.end());
    EXPECT_EQ(rest.size(), b.size() - 1) << "no block twice";
    for (const block& y : rest) {
      EXPECT_TRUE(others.contains(y))
          << "not a range we hold: [" << y.first << "," << y.second << ")";
    }
  }
  // Filling the holes from the left: {segment, ACK, the ranges still held}.
  struct fill {
    block segment;
    std::uint32_t ack;
    std::set<block> held;
  };
  const std::vector<fill> fills = {
      {{1, 1001}, 2001, {{3001, 5001}, {6001, 7001}, {8001, 9001}}},
      {{2001, 3001}, 5001, {{6001, 7001}, {8001, 9001}}},
      {{5001, 6001}, 7001, {{8001, 9001}}},
      {{7001, 8001}, 9001, {}},
  };
  for (const fill& f : fills) {
    data(f.segment.first, f.segment.second - f.segment.first);
    const observed a = expect({.flags = ".", .ack = f.ack});
    const std::vector<block> b = blocks_of(a);
    blocks_sent += b.size();
    const std::set<block> got(b.begin(), b.end());
    EXPECT_EQ(got, f.held) << "ACK " << f.ack << ": " << str(b)
                           << " (RFC 2018 4: SACK in every ACK not acknowledging all we hold)";
    EXPECT_EQ(got.size(), b.size()) << "no block twice: " << str(b);
  }
  EXPECT_EQ(read(c), stream_bytes(0, 9000));
  EXPECT_EQ(tcp().counters().sack_blocks_sent, blocks_sent);
}

// RFC 2018 4 (SHOULD): after the first block, "the most recently reported SACK blocks ... that
// are not subsets of a SACK block already included": when more ranges are held than fit, the
// oldest report is the one left out, so each block is repeated in several ACKs (robust to lost
// ACKs). Ranges received in the order 1001, 3001, 6001, 8001: the ACK for 8001 carries 8001,
// 6001, 3001 - not 1001 (a choice by sequence order would keep 1001 and drop 6001 or 3001).
TEST_F(TcpSack, ReceiverRepeatsTheMostRecentlyReportedBlocks) {
  open_receiver(true, true);
  for (const std::uint32_t left : {1001U, 3001U, 6001U}) {
    data(left, 1000);
    expect({.flags = ".", .ack = 1});
  }
  data(8001, 1000);
  const observed a = expect({.flags = ".", .ack = 1});
  const std::vector<block> want = {{8001, 9001}, {6001, 7001}, {3001, 4001}};
  EXPECT_EQ(blocks_of(a), want) << str(blocks_of(a));
}

// Without timestamps four blocks fit (2 + 4 * 8 = 34 of the 40 option bytes).
TEST_F(TcpSack, WithoutTimestampsFourBlocksFit) {
  open_receiver(true, false);
  std::set<block> held;
  for (const std::uint32_t left : {1001U, 3001U, 5001U, 7001U, 9001U}) {
    data(left, 1000);
    held.insert({left, left + 1000});
    const observed a = expect({.flags = ".", .ack = 1});
    const std::vector<block> b = blocks_of(a);
    ASSERT_FALSE(b.empty()) << a.str();
    EXPECT_EQ(b.front(), block(left, left + 1000)) << str(b);
    EXPECT_EQ(b.size(), std::min<std::size_t>(4, held.size())) << str(b);
    for (const block& x : b) {
      EXPECT_TRUE(held.contains(x)) << str(b);
    }
  }
}

// A segment we already have: RFC 2883 D-SACK is optional. Either the ACK reports the duplicate as
// its first block (below the ACK, or within the second block when above it) or it carries only
// ordinary blocks; never a block for data we do not hold. The test prints which we do.
TEST_F(TcpSack, DuplicateSegmentsGetDsackOrAPlainAck) {
  open_receiver(true, true);
  data(1, 1000);
  data(1001, 1000);
  expect({.flags = ".", .ack = 2001});  // the second full segment is ACKed at once
  // Below the cumulative ACK (RFC 2883 4.1.1).
  data(1, 1000);
  const observed below = expect({.flags = ".", .ack = 2001});
  const std::vector<block> b1 = blocks_of(below);
  if (!b1.empty()) {
    EXPECT_EQ(b1.front(), block(1, 1001)) << "a D-SACK names the duplicate: " << str(b1);
    EXPECT_EQ(b1.size(), 1U) << "nothing else is held: " << str(b1);
  }
  // Above it, inside a held range (RFC 2883 4.1.2: D-SACK first, then the range containing it).
  data(3001, 1000);
  expect({.flags = ".", .ack = 2001});
  data(3001, 1000);
  const observed above = expect({.flags = ".", .ack = 2001});
  const std::vector<block> b2 = blocks_of(above);
  ASSERT_FALSE(b2.empty()) << "out-of-order data is held: blocks are due";
  EXPECT_EQ(b2.front(), block(3001, 4001)) << str(b2);
  const bool dsack_above = b2.size() == 2 && b2[1] == block(3001, 4001);
  EXPECT_TRUE(b2.size() == 1 || dsack_above) << str(b2);
  std::printf("Duplicate below the ACK: %s; duplicate above it: %s\n",
              b1.empty() ? "plain ACK (no D-SACK)" : ("D-SACK " + str(b1)).c_str(),
              dsack_above ? ("D-SACK " + str(b2)).c_str() : ("no D-SACK, " + str(b2)).c_str());
}

// --- hostile blocks (the sender's side) --------------------------------------------------------

// S0..S9 in flight, S0-S1 acknowledged: SND.UNA = 2921, SND.MAX = 14601 (relative). Each hostile
// ACK below changes the window by a byte, so that none is a duplicate ACK by RFC 5681's
// definition either: whatever the engine counts as a duplicate, only the blocks could make it
// retransmit. Refused (counted in sack_blocks_ignored): inverted; above SND.MAX; garbage (a
// block 2^30 above SND.MAX, two more than 2^31 away, i.e. below SND.UNA in sequence space, and an
// inverted one); a block below SND.UNA that is not the first (only the first may be a D-SACK,
// RFC 2883 4). The D-SACK itself is counted as such, not ignored, and changes nothing.
TEST_F(TcpSack, BogusBlocksAreIgnoredAndCounted) {
  const socket_id c = open_sender();
  send_stream(c, 14600);
  EXPECT_EQ(data_segments().size(), 10U);
  at(150);
  ack(2921);
  expect_nothing();
  const tcp_counters before = tcp().counters();
  std::uint16_t win = 65535;
  ack(2921, {{8761, 7301}}, --win);    // inverted
  ack(2921, {{14601, 16061}}, --win);  // above SND.MAX
  ack(2921,
      {{0x40000000, 0x40001000},   // far above SND.MAX
       {0x90000000, 0x90000010},   // > 2^31 away: below SND.UNA
       {0xfffff000, 0xfffff100},   // 4 KiB below our ISN: below SND.UNA
       {0x7fff0000, 0x00000010}},  // inverted (right before left)
      --win);
  ack(2921, {{1461, 2921}, {1, 1461}}, --win);  // a D-SACK, then a block below SND.UNA
  const std::vector<observed> sent = data_segments();
  EXPECT_TRUE(sent.empty()) << "a retransmission from bogus blocks: " << sent.front().str();
  const tcp_counters& k = tcp().counters();
  EXPECT_EQ(k.sack_blocks_received - before.sack_blocks_received, 8U);
  EXPECT_EQ(k.sack_blocks_ignored - before.sack_blocks_ignored, 7U);
  EXPECT_EQ(k.dsack_received - before.dsack_received, 1U);
  EXPECT_EQ(k.sack_recoveries, 0U);
  EXPECT_EQ(info(c).sacked_bytes, 0U);
  EXPECT_EQ(info(c).retransmits, 0U);
  // Still a working connection: the rest acknowledged, new data flows.
  at(200);
  ack(14601);
  EXPECT_EQ(info(c).in_flight, 0U);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 14601, .len = 100});
}

// Blocks that straddle SND.UNA or SND.MAX: whether the engine clips or refuses them, nothing
// outside [SND.UNA, SND.MAX) is ever counted as SACKed, and nothing is retransmitted.
TEST_F(TcpSack, StraddlingBlocksNeverCountOutsideTheWindow) {
  const socket_id c = open_sender();
  send_stream(c, 14600);
  EXPECT_EQ(data_segments().size(), 10U);
  at(150);
  ack(2921);
  ack(2921, {{13141, 14701}}, 65534);  // S9 and 100 bytes never sent
  EXPECT_LE(info(c).sacked_bytes, 1460U);
  ack(2921, {{1461, 4381}}, 65533);  // S1 (acknowledged) and S2
  EXPECT_LE(info(c).sacked_bytes, 2920U);
  EXPECT_TRUE(data_segments().empty());
  std::printf("Straddling blocks: %u bytes counted as SACKed (of the 2920 in the window)\n",
              info(c).sacked_bytes);
}

// scripts/sack_expected.py, "TcpSack.OverlappingAndRepeatedBlocksCountOnce": overlapping and
// repeated blocks mean their union: [5841,7301) [6571,8031) [6571,8031) is 2190 bytes, below
// IsLost's 2920 (counted three times, 4380 would make it retransmit). Adding [4381,5841) makes
// 3650 > 2920: IsLost(2921) -> recovery: S2, ssthresh = 11680 / 2 = 5840; pipe 8030 > cwnd,
// nothing else.
TEST_F(TcpSack, OverlappingAndRepeatedBlocksCountOnce) {
  const socket_id c = open_sender();
  send_stream(c, 14600);
  EXPECT_EQ(data_segments().size(), 10U);
  at(150);
  ack(2921);
  ack(2921, {{5841, 7301}, {6571, 8031}, {6571, 8031}});
  expect_nothing();
  EXPECT_EQ(info(c).sacked_bytes, 2190U);
  ack(2921, {{4381, 5841}, {5841, 8031}});
  expect({.flags = ".", .seq = 2921, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).sacked_bytes, 3650U);
  EXPECT_EQ(info(c).ssthresh, 5840U);
  EXPECT_EQ(tcp().counters().sack_blocks_ignored, 0U) << "overlaps are not bogus";
}

// D-SACK (RFC 2883) is tolerated: below the ACK (4.1.1), or above it inside the second block
// (4.1.2); counted, never a reason to retransmit, and the second block's SACK still counts.
TEST_F(TcpSack, DsackIsNotedNotActedOn) {
  const socket_id c = open_sender();
  send_stream(c, 14600);
  EXPECT_EQ(data_segments().size(), 10U);
  at(150);
  ack(2921);
  ack(2921, {{1461, 2921}}, 65534);
  EXPECT_EQ(tcp().counters().dsack_received, 1U);
  EXPECT_EQ(info(c).sacked_bytes, 0U);
  ack(2921, {s(5), s(4, 5)}, 65533);
  EXPECT_EQ(tcp().counters().dsack_received, 2U);
  EXPECT_EQ(info(c).sacked_bytes, 2920U);
  EXPECT_EQ(tcp().counters().sack_blocks_ignored, 0U);
  EXPECT_TRUE(data_segments().empty());
  EXPECT_EQ(info(c).retransmits, 0U);
}

// --- the SACK-panic class (CVE-2019-11477/11478) -----------------------------------------------

// The peer announces MSS 48 (raised to tcp_config::min_mss = 64) and the initial window is 64
// segments: 4096 bytes in flight in 64-byte segments. It then SACKs every other byte, one byte per
// block, four blocks per ACK, 2048 blocks in a scrambled order: the most fragmented scoreboard a
// peer can ask for. Bounded, whatever the order:
//  - the scoreboard holds at most detail::sack_scoreboard::capacity ranges (each range here is
//    one byte and none can merge, so sacked_bytes is the number of ranges held);
//  - the blocks it cannot hold are refused and counted (tcp_counters: "beyond the scoreboard");
//  - no ACK makes us send more segments than the window holds full-sized ones (cwnd after the
//    reduction: 2048 / 64 = 32, plus one): a byte-sized hole must not become a segment each;
//  - no byte is retransmitted twice in the episode but the rescue (RFC 6675 NextSeg: HighRxt only
//    moves up; rule 4 once): at most 4096 + 64 bytes.
// Then a cumulative ACK of everything leaves nothing SACKed and the connection sends on.
TEST_F(TcpSack, SackPanicKeepsTheScoreboardBounded) {
  cfg_.tcp.initial_window = 64;
  const socket_id c = open_sender(true, 48);
  ASSERT_EQ(info(c).mss, 64U);
  send_stream(c, 4096);
  ASSERT_EQ(data_segments().size(), 64U);
  at(150);
  constexpr std::uint32_t capacity = dpdk_net::stack::detail::sack_scoreboard::capacity;
  constexpr std::uint32_t blocks = 2048;  // bytes 2, 4, ..., 4096 (relative), one block each
  std::uint32_t worst_per_ack = 0, most_sacked = 0;
  std::uint64_t retransmitted = 0;
  for (std::uint32_t i = 0; i < blocks / 4; ++i) {
    std::vector<block> bs;
    for (std::uint32_t j = 0; j < 4; ++j) {
      const std::uint32_t k = ((4 * i + j) * 1031U) % blocks;  // 1031 is odd: a permutation
      bs.emplace_back(2 + 2 * k, 3 + 2 * k);
    }
    ack(1, bs);
    const std::vector<observed> sent = data_segments();
    worst_per_ack = std::max(worst_per_ack, static_cast<std::uint32_t>(sent.size()));
    for (const observed& o : sent) {
      EXPECT_LT(o.rel_seq, 4097U) << "no new data was queued: " << o.str();
      retransmitted += o.len();
    }
    const std::uint32_t sacked = info(c).sacked_bytes;
    most_sacked = std::max(most_sacked, sacked);
    ASSERT_LE(sacked, capacity) << "after ACK " << i << ": more ranges than the scoreboard holds";
  }
  const tcp_counters& k = tcp().counters();
  std::printf(
      "SACK panic: %u blocks sent, %lu ignored, at most %u ranges held (capacity %u), at most %u "
      "segments per ACK, %lu bytes retransmitted, %lu recoveries\n",
      blocks, static_cast<unsigned long>(k.sack_blocks_ignored), most_sacked, capacity,
      worst_per_ack, static_cast<unsigned long>(retransmitted),
      static_cast<unsigned long>(k.sack_recoveries));
  EXPECT_EQ(k.sack_blocks_received, blocks);
  EXPECT_GE(k.sack_blocks_ignored, blocks - capacity)
      << "every block beyond what the scoreboard holds is refused and counted";
  EXPECT_LE(worst_per_ack, 2048U / 64 + 1);
  EXPECT_LE(retransmitted, 4096U + 64);
  EXPECT_GT(most_sacked, 0U);
  at(200);
  ack(4097);
  EXPECT_EQ(info(c).sacked_bytes, 0U);
  EXPECT_EQ(info(c).in_flight, 0U);
  EXPECT_EQ(state(c), tcp_state::established);
  send_stream(c, 640);
  EXPECT_EQ(data_segments().size(), 10U) << "64-byte segments flow again";
}

// tcp_config::sack_scoreboards = 1: the pool's one scoreboard is held by connection A (its
// SACKed data is outstanding); connection B's blocks find none (sack_no_scoreboard) and B
// recovers as NewReno does: no retransmission before the third duplicate ACK however much is
// SACKed, then cwnd = ssthresh + 3 SMSS (RFC 5681 3.2), and sacked_bytes stays 0.
TEST_F(TcpSack, NoScoreboardLeftMeansNewRenoRecovery) {
  cfg_.tcp.sack_scoreboards = 1;
  const socket_id a = open_sender();  // peer port 80
  const socket_id b = [&] {
    const socket_id id = connect(81);
    tcp_socket_options o = tcp().options(id);
    o.congestion = congestion_algorithm::new_reno;
    EXPECT_FALSE(tcp().set_options(id, o));
    expect({.flags = "S", .seq = 0});
    at(now_ms() + 100);
    inject_raw({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460}, {.permitted = true});
    expect({.flags = ".", .seq = 1, .ack = 1});
    return id;
  }();
  ASSERT_TRUE(info(b).sack);
  send_stream(a, 14600);
  send_stream(b, 14600);
  EXPECT_EQ(data_segments().size(), 20U);
  at(300);
  inject_raw({.flags = ".", .seq = 1, .ack = 1, .win = 65535, .port = 80}, {.blocks = {s(1)}});
  EXPECT_EQ(info(a).sacked_bytes, 1460U) << "A has the scoreboard";
  use_port(81);
  ack(1, {s(1, 3)});
  expect_nothing();
  EXPECT_EQ(info(b).sacked_bytes, 0U);
  EXPECT_GE(tcp().counters().sack_no_scoreboard, 1U);
  ack(1, {s(1, 4)});
  expect_nothing();
  ack(1, {s(1, 5)});
  expect({.flags = ".", .seq = 1, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(b).ssthresh, 7300U);
  EXPECT_EQ(info(b).cwnd, 11680U);
  EXPECT_EQ(tcp().counters().sack_recoveries, 0U);
}

}  // namespace tcp_sack_test
}  // namespace
}  // namespace dpdk_net::stack::script
