// Scripted RFC 6675 loss recovery (the sender's side of SACK): which segment goes next for scripted
// SACK feedback, how much new data pipe lets go, when recovery begins and ends. Every expected
// segment, cwnd and ssthresh below is printed by scripts/sack_expected.py, a transcription of
// RFC 6675's Update(), IsLost(), SetPipe(), NextSeg() and section 5 written from the RFC (never
// from our engine); the comments repeat its reasoning. The script also checks that the scenarios
// do not depend on how IsLost's "discontiguous SACKed sequences" is read (ranges or segments).
//
// Every test: active open without timestamps (1460-byte segments, raw windows), the peer offers
// SACK-permitted, NewReno's reduction (RFC 5681 (4): ssthresh = max(FlightSize / 2, 2 SMSS), which
// is RFC 6675 (4.2)'s FlightSize / 2 here); ten segments S0..S9 (the initial window) in flight at
// 100 ms; s(k) is segment k's range [1 + 1460 k, 1 + 1460 (k + 1)), s(a, b) segments a..b. The
// handshake's RTT of 100 ms gives an RTO of 300 ms: the scripts end before any timer matters.
#include "tcp_sack_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_sack_recovery_test {

class TcpSackRecovery : public TcpSack {
 protected:
  /// The connection with S0..S9 in flight and `more` bytes queued behind them.
  socket_id ten_in_flight(std::size_t more = 0, where w = where::current()) {
    const socket_id c = open_sender(true, 1460, w);
    send_stream(c, 14600 + more, w);
    EXPECT_EQ(data_segments().size(), 10U);
    at(200, w);
    return c;
  }
  /// The next segment we send is the 1460 bytes at `rel_seq`.
  void expect_segment(std::uint32_t rel_seq, where w = where::current()) {
    expect({.flags = ".", .seq = rel_seq, .len = 1460}, w);
  }
};

// scripts/sack_expected.py, "TcpSack.RecoveryFollowsRfc6675": S0 and S3 lost, one ACK per
// arriving segment:
//   <S1>, <S1-S2>: not duplicates enough, IsLost(1) false (1460, 2920 SACKed: not > 2920)
//   <S4, S1-S2>: DupAcks = 3 -> step (4): RecoveryPoint = 14600, ssthresh = cwnd = 7300,
//       retransmit S0; pipe = S0 (lost, retransmitted: 1460) + S3 (1460) + S5..S9 (7300) = 10220
//   the application writes S10..S19: nothing goes (pipe > cwnd)
//   <S4-S5, ...>: pipe 8760: nothing
//   <S4-S6, ...>: S3 lost (4380 SACKed above it): pipe 5840 -> NextSeg rule 1: S3
//   <S4-S7>, <S4-S8>, <S4-S9>: pipe 5840 each time -> rule 2: S10, S11, S12
//   ACK 4381 <S4-S9>: partial; pipe 5840 -> S13; cwnd stays 7300 (no deflation in RFC 6675)
//   ACK 14601: covers RecoveryPoint -> recovery ends, cwnd = ssthresh = 7300; flight 5840 -> S14
TEST_F(TcpSackRecovery, RecoveryFollowsRfc6675) {
  const socket_id c = ten_in_flight();
  ack(1, {s(1)});
  expect_nothing();
  EXPECT_EQ(info(c).sacked_bytes, 1460U);
  ack(1, {s(1, 2)});
  expect_nothing();
  EXPECT_EQ(info(c).sacked_bytes, 2920U);
  ack(1, {s(4), s(1, 2)});
  expect_segment(1);
  expect_nothing();
  EXPECT_EQ(info(c).ssthresh, 7300U);
  EXPECT_EQ(info(c).cwnd, 7300U) << "RFC 6675 (4.2): cwnd = ssthresh, no inflation";
  EXPECT_EQ(info(c).sacked_bytes, 4380U);
  send_stream(c, 14600);
  expect_nothing();
  ack(1, {s(4, 5), s(1, 2)});
  expect_nothing();
  ack(1, {s(4, 6), s(1, 2)});
  expect_segment(4381);
  expect_nothing();
  for (const std::uint32_t k : {7U, 8U, 9U}) {
    ack(1, {s(4, k), s(1, 2)});
    expect_segment(14601 + 1460 * (k - 7));
    expect_nothing();
  }
  EXPECT_EQ(info(c).cwnd, 7300U);
  at(250);
  ack(4381, {s(4, 9)});
  expect_segment(18981);
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 7300U);
  EXPECT_EQ(info(c).sacked_bytes, 8760U);
  at(300);
  ack(14601);
  expect_segment(20441);
  expect_nothing();
  const tcp_info i = info(c);
  EXPECT_EQ(i.cwnd, 7300U);
  EXPECT_EQ(i.ssthresh, 7300U);
  EXPECT_EQ(i.sacked_bytes, 0U);
  EXPECT_EQ(i.fast_retransmits, 1U);
  EXPECT_EQ(i.retransmits, 2U) << "S0 and S3, nothing else";
  const tcp_counters& k = tcp().counters();
  EXPECT_EQ(k.sack_recoveries, 1U);
  EXPECT_EQ(k.sack_blocks_received, 15U);
  EXPECT_EQ(k.sack_blocks_ignored, 0U);
  EXPECT_EQ(k.dsack_received, 0U);
  // NextSeg chose S3; S0 is step (4.3)'s, which NextSeg's rule 1 would also have chosen (S0 is
  // lost and above HighRxt = HighACK): an engine may count it either way.
  EXPECT_GE(k.sack_retransmits, 1U);
  EXPECT_LE(k.sack_retransmits, 2U);
  EXPECT_EQ(k.rto_expirations, 0U);
}

// scripts/sack_expected.py, "TcpSack.IsLostEntersRecoveryBeforeThreeDuplicates" (RFC 6675 5
// step (2)): S0 lost; the first duplicate SACKs S1-S2 (2920 bytes: IsLost(1) needs more than
// (DupThresh - 1) * SMSS = 2920): nothing; the second SACKs S1-S3 (4380): IsLost(HighACK + 1)
// with DupAcks = 2 -> recovery: S0, ssthresh = cwnd = 7300, pipe 10220 (nothing else).
TEST_F(TcpSackRecovery, IsLostEntersRecoveryBeforeThreeDuplicates) {
  const socket_id c = ten_in_flight();
  ack(1, {s(1, 2)});
  expect_nothing();
  EXPECT_EQ(info(c).fast_retransmits, 0U) << "2920 SACKed bytes are not more than 2 SMSS";
  ack(1, {s(1, 3)});
  expect_segment(1);
  expect_nothing();
  EXPECT_EQ(info(c).fast_retransmits, 1U);
  EXPECT_EQ(info(c).ssthresh, 7300U);
  EXPECT_EQ(info(c).cwnd, 7300U);
  EXPECT_EQ(tcp().counters().sack_recoveries, 1U);
  at(300);
  ack(14601);
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 7300U);
  EXPECT_EQ(info(c).retransmits, 1U);
}

// scripts/sack_expected.py, "TcpSack.NextSegRetransmitsHolesBeforeNewData": S0, S2, S4 lost, ten
// more segments queued; the first ACK SACKs S1, S3 and S5-S9 at once (DupAcks 1, IsLost(1)):
//   step (4): S0; pipe = 1460 (S2 and S4 are lost: 6 and 5 segments SACKed above them);
//   step (C): rule 1: S2, S4 (holes first, lowest first), then rule 2: S10, S11 (pipe 7300)
//   ACK 2921 <S3, S5-S9>: pipe 5840 -> S12;  ACK 5841 <S5-S9>: pipe 5840 -> S13
//   ACK 14601: recovery ends, cwnd = 7300, flight 5840 -> S14
TEST_F(TcpSackRecovery, NextSegRetransmitsHolesBeforeNewData) {
  const socket_id c = ten_in_flight(14600);
  ack(1, {s(5, 9), s(3), s(1)});
  for (const std::uint32_t seq : {1U, 2921U, 5841U, 14601U, 16061U}) {
    expect_segment(seq);
  }
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 7300U);
  EXPECT_EQ(info(c).sacked_bytes, 10220U);
  at(250);
  ack(2921, {s(3), s(5, 9)});
  expect_segment(17521);
  expect_nothing();
  ack(5841, {s(5, 9)});
  expect_segment(18981);
  expect_nothing();
  at(300);
  ack(14601);
  expect_segment(20441);
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 7300U);
  EXPECT_EQ(info(c).retransmits, 3U);
  EXPECT_EQ(tcp().counters().sack_recoveries, 1U);
}

// scripts/sack_expected.py, "TcpSack.NextSegRule3RetransmitsAnUnsackedHole": S0 and S5 lost,
// nothing more to send. Recovery at <S1-S3> (S0). At <S6-S7, S1-S4> pipe = 1460 (S0) + 1460 (S5:
// only 2920 SACKed above it, not lost) + 2920 (S8, S9) = 5840: rule 1 finds nothing lost, rule 2
// no new data, rule 3 (the SHOULD): S5, unSACKed above HighRxt below the highest SACK. Then
// nothing more: rule 4's rescue needs HighACK > RescueRxt, and no ACK moved SND.UNA.
TEST_F(TcpSackRecovery, NextSegRule3RetransmitsAnUnsackedHole) {
  const socket_id c = ten_in_flight();
  ack(1, {s(1)});
  ack(1, {s(1, 2)});
  expect_nothing();
  ack(1, {s(1, 3)});
  expect_segment(1);
  expect_nothing();
  ack(1, {s(1, 4)});
  expect_nothing();
  ack(1, {s(6), s(1, 4)});
  expect_nothing();
  ack(1, {s(6, 7), s(1, 4)});
  expect_segment(7301);
  expect_nothing();
  ack(1, {s(6, 8), s(1, 4)});
  expect_nothing();
  ack(1, {s(6, 9), s(1, 4)});
  expect_nothing();
  at(300);
  ack(14601);
  expect_nothing();
  EXPECT_EQ(info(c).retransmits, 2U);
  EXPECT_EQ(info(c).cwnd, 7300U);
}

// scripts/sack_expected.py, "TcpSack.NextSegPrefersNewDataToRule3": the same losses, with ten more
// segments written once recovery has begun. At <S6-S7, S1-S4> rule 2 (new data, S10) comes
// before rule 3; at <S6-S8, S1-S4> S5 is lost (4380 SACKed above it): pipe = 1460 + 0 + 1460 (S9)
// + 1460 (S10) = 4380 -> rule 1: S5, then rule 2: S11; at <S6-S9, S1-S4>: S12.
TEST_F(TcpSackRecovery, NextSegPrefersNewDataToRule3) {
  const socket_id c = ten_in_flight();
  ack(1, {s(1)});
  ack(1, {s(1, 2)});
  expect_nothing();
  ack(1, {s(1, 3)});
  expect_segment(1);
  expect_nothing();
  send_stream(c, 14600);
  expect_nothing();
  ack(1, {s(1, 4)});
  expect_nothing();
  ack(1, {s(6), s(1, 4)});
  expect_nothing();
  ack(1, {s(6, 7), s(1, 4)});
  expect_segment(14601);
  expect_nothing();
  ack(1, {s(6, 8), s(1, 4)});
  expect_segment(7301);
  expect_segment(16061);
  expect_nothing();
  ack(1, {s(6, 9), s(1, 4)});
  expect_segment(17521);
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 7300U);
  EXPECT_EQ(info(c).retransmits, 2U);
}

// scripts/sack_expected.py, "TcpSack.RescueRetransmitsTheTailOnAPartialAck": S0 and S9 lost, no
// more data: nothing is ever SACKed above S9, so rules 1 and 3 never find it. Recovery at
// <S1-S3> (S0); <S1-S4> .. <S1-S8>: nothing (rule 4 needs HighACK > RescueRxt = 1460). ACK 13141
// (S0 arrived): HighACK 13140 > RescueRxt -> rule 4, the rescue: SMSS bytes including the highest
// unSACKed byte: S9 (RescueRxt = RecoveryPoint: once). ACK 14601 ends recovery; no RTO.
TEST_F(TcpSackRecovery, RescueRetransmitsTheTailOnAPartialAck) {
  const socket_id c = ten_in_flight();
  ack(1, {s(1)});
  ack(1, {s(1, 2)});
  expect_nothing();
  ack(1, {s(1, 3)});
  expect_segment(1);
  expect_nothing();
  for (std::uint32_t k = 4; k <= 8; ++k) {
    ack(1, {s(1, k)});
    expect_nothing();
  }
  at(250);
  ack(13141);
  expect_segment(13141);
  expect_nothing();
  at(300);
  ack(14601);
  expect_nothing();
  EXPECT_EQ(info(c).retransmits, 2U);
  EXPECT_EQ(info(c).rto_expirations, 0U);
  EXPECT_EQ(info(c).cwnd, 7300U);
}

// scripts/sack_expected.py, "TcpSack.ThirdDuplicateEntersRecoveryWithSmallSegments" (RFC 6675 5
// step (1) and its note): five 100-byte segments (Nagle off), S0 lost. SACKed bytes stay under
// 2 SMSS, so IsLost's byte rule never fires; the third duplicate enters recovery anyway and
// retransmits from 1 (at least the hole [1, 101), at most the 500 bytes sent). ssthresh =
// max(500 / 2, 2 SMSS) = 2920.
TEST_F(TcpSackRecovery, ThirdDuplicateEntersRecoveryWithSmallSegments) {
  const socket_id c = open_sender();
  tcp_socket_options o = tcp().options(c);
  o.no_delay = true;
  ASSERT_FALSE(tcp().set_options(c, o));
  for (std::uint32_t k = 0; k < 5; ++k) {
    send_stream(c, 100);
    expect({.flags = ".", .seq = 1 + 100 * k, .len = 100});
  }
  at(200);
  ack(1, {{101, 201}});
  expect_nothing();
  ack(1, {{101, 301}});
  expect_nothing();
  ack(1, {{101, 401}});
  const std::vector<observed> r = data_segments();
  ASSERT_EQ(r.size(), 1U) << "one retransmission at the third duplicate";
  EXPECT_EQ(r[0].rel_seq, 1U);
  EXPECT_GE(r[0].len(), 100U);
  EXPECT_LE(r[0].len(), 500U);
  EXPECT_EQ(info(c).ssthresh, 2920U);
  EXPECT_EQ(tcp().counters().sack_recoveries, 1U);
  at(250);
  ack(501);
  EXPECT_EQ(info(c).sacked_bytes, 0U);
  EXPECT_EQ(info(c).in_flight, 0U);
}

// RFC 6675 2: on a SACK connection "a duplicate acknowledgment" is a segment carrying a SACK block
// that identifies new SACKed bytes; ACKs repeating SND.UNA without one are not loss signals (and
// Linux agrees: on a SACK connection its duplicate heuristic is the SACKed segment count). Such
// ACKs are what a receiver sends when a spurious retransmission arrives (we send no D-SACK), so
// counting them turns one spurious retransmission into more: in TcpSackSim seed 6 three of them
// began an RFC 6582 recovery whose every partial ACK resent SND.UNA - 57 segments (82 KB), none
// lost. Three plain duplicates here: nothing is sent (the RTO, at 400 ms, would repair a real
// loss).
TEST_F(TcpSackRecovery, DuplicateAcksWithoutBlocksAreNotLossSignals) {
  const socket_id c = ten_in_flight();
  for (int i = 0; i < 3; ++i) {
    ack(1);
    expect_nothing();
  }
  EXPECT_EQ(info(c).fast_retransmits, 0U);
  EXPECT_EQ(info(c).retransmits, 0U);
  at(300);
  ack(14601);
  expect_nothing();
  EXPECT_GT(info(c).cwnd, 14600U) << "no reduction: nothing was lost (slow start goes on)";
}

// SACK not negotiated (the peer did not offer it): blocks it sends anyway are not SACK
// information (RFC 2018 2). The same loss as IsLostEntersRecoveryBeforeThreeDuplicates: the ACK
// that would make IsLost true changes nothing; RFC 5681 / 6582 recovery on the third duplicate
// (cwnd = ssthresh + 3 SMSS = 11680: NewReno's inflation).
TEST_F(TcpSackRecovery, WithoutNegotiationBlocksAreNotSackInformation) {
  const socket_id c = open_sender(false);
  send_stream(c, 14600);
  EXPECT_EQ(data_segments().size(), 10U);
  at(200);
  ack(1, {s(1, 3)});
  expect_nothing();
  EXPECT_EQ(info(c).sacked_bytes, 0U);
  ack(1, {s(1, 4)});
  expect_nothing();
  ack(1, {s(1, 5)});
  expect_segment(1);
  expect_nothing();
  EXPECT_EQ(info(c).ssthresh, 7300U);
  EXPECT_EQ(info(c).cwnd, 11680U);
  EXPECT_EQ(tcp().counters().sack_recoveries, 0U);
}

// tcp_config::sack = false: nothing offered, so the same: NewReno recovery.
TEST_F(TcpSackRecovery, SackOffRecoversAsNewReno) {
  cfg_.tcp.sack = false;
  const socket_id c = open_sender(true);
  send_stream(c, 14600);
  EXPECT_EQ(data_segments().size(), 10U);
  at(200);
  ack(1, {s(1, 3)});
  expect_nothing();
  ack(1, {s(1, 4)});
  expect_nothing();
  ack(1, {s(1, 5)});
  expect_segment(1);
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 11680U);
  EXPECT_EQ(info(c).sacked_bytes, 0U);
  EXPECT_EQ(tcp().counters().sack_recoveries, 0U);
}

}  // namespace tcp_sack_recovery_test
}  // namespace
}  // namespace dpdk_net::stack::script
