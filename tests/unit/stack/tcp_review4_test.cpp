// Fourth review of the TCP engine (issue 11: SACK, RFC 6675 recovery): each finding a regression
// test that fails until the defect it names is fixed (one defect per test; the rule it breaks in
// the comment above it). Packet scripts (tcp_sack_script.hpp): active open without timestamps
// (1460-byte segments), the peer offers SACK-permitted, NewReno; S0..S9 in flight at 100 ms, as
// in tcp_sack_recovery_test.cpp; every run is bounded by simulated time.
#include "dpdk_net/wire/icmp.hpp"
#include "tcp_sack_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_review4_test {

class TcpReview4 : public TcpSack {
 protected:
  socket_id ten_in_flight(std::size_t more = 0, where w = where::current()) {
    const socket_id c = open_sender(true, 1460, w);
    send_stream(c, 14600 + more, w);
    EXPECT_EQ(data_segments().size(), 10U);
    at(200, w);
    return c;
  }
  void expect_segment(std::uint32_t rel_seq, where w = where::current()) {
    expect({.flags = ".", .seq = rel_seq, .len = 1460}, w);
  }
};

// RFC 2883 4 / RFC 6675 2 (DupAck (e)): a D-SACK reports a duplicate the receiver got (a
// spurious retransmission, a segment the network duplicated); it SACKs no new data and is no
// loss signal. Linux sends D-SACK by default (tcp_dsack = 1). process_ack counts an ACK with
// blocks as a duplicate whenever the connection holds no scoreboard ("blocks but no scoreboard"),
// and sack_update `continue`s past a D-SACK block before allocating one: so D-SACK-only ACKs are
// duplicates exactly when nothing else was SACKed, and three of them (one spurious
// retransmission burst, or a duplicating path) start an RFC 6582 recovery: a needless
// retransmission and cwnd halved - the very case DuplicateAcksWithoutBlocksAreNotLossSignals
// guards against, back through the D-SACK door. (Bogus blocks, e.g. above SND.MAX, do the same.)
TEST_F(TcpReview4, DsackOnlyAcksAreNotDuplicates) {
  const socket_id c = ten_in_flight();
  ack(1461);  // S0 arrives
  expect_nothing();
  for (int i = 0; i < 3; ++i) {
    ack(1461, {s(0)});  // S0 arrived again (duplicated by the path): D-SACK, below the ACK
    expect_nothing();
  }
  EXPECT_EQ(tcp().counters().dsack_received, 3U);
  EXPECT_EQ(info(c).fast_retransmits, 0U) << "D-SACK-only ACKs counted as duplicate ACKs";
  EXPECT_EQ(info(c).retransmits, 0U);
}

// The same with blocks the scoreboard refuses (beyond SND.MAX: RFC 2018 bogus): ignored blocks
// are no evidence of anything, yet with no scoreboard they count as duplicates.
TEST_F(TcpReview4, IgnoredBlocksAreNotDuplicates) {
  const socket_id c = ten_in_flight();
  ack(1461);
  expect_nothing();
  for (int i = 0; i < 3; ++i) {
    ack(1461, {{20001, 21461}});  // above SND.MAX (14601): refused
    expect_nothing();
  }
  EXPECT_EQ(tcp().counters().sack_blocks_ignored, 3U);
  EXPECT_EQ(info(c).fast_retransmits, 0U) << "refused blocks counted as duplicate ACKs";
}

// RFC 6298 5.4: on a retransmission timeout, retransmit the earliest segment not acknowledged;
// RFC 2018 8: after an RTO the sender must ignore prior SACK information in choosing what to
// resend, because the receiver may have reneged (discarded data it SACKed). The go-back skips
// SACKed data on the first RTO (tcp_output.cpp, `sack_skip`; the scoreboard is freed only when
// backoff > 1, tcp_timers.cpp). Here the peer SACKs S2..S9, then ACKs the retransmitted S0 and
// S1 without blocks: it reneged, SND.UNA is at the start of the range it no longer holds. The
// first RTO then sends nothing at all (the skip takes SND.NXT straight to SND.MAX) and only the
// second, after a doubled RTO, resends S2: a stall of one backed-off RTO for every reneging.
TEST_F(TcpReview4, RtoAfterRenegingRetransmitsSndUna) {
  const socket_id c = ten_in_flight();
  ack(1, {s(2, 9)});  // IsLost(1): recovery; S0 and S1 are both lost
  expect_segment(1);
  expect_segment(1461);
  expect_nothing();
  at(250);
  ack(2921);  // S0, S1 repaired; the peer reneged on S2..S9 (no blocks any more)
  expect_nothing();
  const observed o = run_until_segment(5000);
  ASSERT_TRUE(o.valid) << "nothing sent within 5 s";
  EXPECT_EQ(o.rel_seq, 2921U) << "the RTO must resend SND.UNA: " << o.str();
  EXPECT_EQ(info(c).rto_expirations, 1U)
      << "the first RTO sent nothing (SACKed data skipped though the peer reneged); resent at "
      << o.at / millisecond << " ms";
}

// A frag-needed during RFC 6675 recovery winds SND.NXT back to SND.UNA (tcp_icmp.cpp) but leaves
// sack_recovery set, and only the recovery loop runs then: its rule 2 ("new data") sends from
// SND.NXT, which is now below SND.MAX. pipe never grows (SND.MAX does not move), so it resends
// the whole flight back to back - data the peer SACKed included, far beyond cwnd - counting it as
// new bytes sent. RFC 6675: what is sent in recovery is bounded by cwnd - pipe, and SACKed data
// is never retransmitted.
TEST_F(TcpReview4, FragNeededDuringSackRecoveryResendsNoSackedData) {
  const socket_id c = ten_in_flight();
  ack(1, {s(1, 3)});  // IsLost(1): recovery, S0
  expect_segment(1);
  expect_nothing();
  ack(1, {s(1, 8)});  // pipe = 1460 (S0 resent) + 1460 (S9) = 2920 of cwnd 7300; nothing to send
  expect_nothing();
  const std::uint32_t cwnd = info(c).cwnd;
  inject_icmp(wire::icmp_type::destination_unreachable,
              wire::icmp_unreachable::fragmentation_needed, 1, 1400);
  std::uint32_t bytes = 0;
  for (const observed& o : data_segments()) {
    bytes += static_cast<std::uint32_t>(o.len());
    const std::uint32_t end = o.rel_seq + static_cast<std::uint32_t>(o.len());
    EXPECT_FALSE(o.rel_seq < s(1, 8).second && end > s(1, 8).first)
        << "resent data the peer SACKed: " << o.str();
  }
  EXPECT_LE(bytes, cwnd) << "a burst beyond cwnd during recovery";
}

// send_mss (tcp_output.cpp:37-42) subtracts the SACK option (4 + 8 a block) from an MSS that
// may already be smaller: with min_pmtu 68 (valid config) and a frag-needed for 68 the MSS is
// 68 - 40 - 12 (timestamps) = 16, and three blocks (28 bytes) wrap it to ~4 GiB; the min_mss
// floor (std::max) then keeps the wrapped value. Every segment goes out as large as window and
// cwnd allow while we hold out-of-order data. Expected: never above the floor the stack itself
// documents (min_mss - 12 = 52 with timestamps).
TEST_F(TcpReview4, SendMssDoesNotWrapWithSackBlocksOnATinyPath) {
  cfg_.min_pmtu = 68;
  const socket_id c = open_receiver(true, true);
  tcp_socket_options o = tcp().options(c);
  o.no_delay = true;
  EXPECT_FALSE(tcp().set_options(c, o));
  send(c, "x");
  (void)drain();
  inject_icmp(wire::icmp_type::destination_unreachable,
              wire::icmp_unreachable::fragmentation_needed, 1, 68);
  (void)drain();
  data(1001, 10);  // three ranges held out of order: three blocks on every segment we send
  data(2001, 10);
  data(3001, 10);
  (void)drain();
  send_stream(c, 3000);
  const std::vector<observed> segs = data_segments();
  EXPECT_FALSE(segs.empty()) << "nothing sent";
  for (const observed& sg : segs) {
    EXPECT_LE(sg.len(), 52U) << "a segment far above the path MTU: " << sg.str();
  }
}

// RFC 1122 4.2.3.4 (Nagle, SHOULD; on here: no_delay is off): while data is outstanding a
// segment shorter than the MSS waits until it is acknowledged or a full segment fills. RFC 6675
// rule 2 (new data in recovery) sends `n == avail` whatever its size (tcp_output.cpp, the
// recovery loop), so an application writing small messages during recovery puts one tinygram on
// the wire per write while pipe has room; outside recovery the same writes coalesce. (Linux
// applies Nagle in recovery too: tcp_write_xmit's tcp_nagle_test.)
TEST_F(TcpReview4, NagleHoldsSmallWritesDuringSackRecovery) {
  const socket_id c = ten_in_flight();
  ack(1, {s(1, 3)});  // recovery, S0
  expect_segment(1);
  expect_nothing();
  ack(1, {s(1, 8)});  // pipe 2920 of cwnd 7300
  expect_nothing();
  std::size_t small = 0;
  for (int i = 0; i < 3; ++i) {
    send(c, std::string(100, 'm'));
    for (const observed& o : data_segments()) {
      small += o.len() < 1460 ? 1 : 0;
    }
  }
  EXPECT_LE(small, 1U) << "tinygrams during recovery: Nagle ignored";
}

}  // namespace tcp_review4_test
}  // namespace
}  // namespace dpdk_net::stack::script
