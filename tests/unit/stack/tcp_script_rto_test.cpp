// Scripted TCP: retransmission timeouts (RFC 6298, Karn), retries, keepalive, user timeout, and
// congestion control: RFC 5681 + RFC 6582 NewReno, and RFC 9438 CUBIC's reductions (4.6, 4.8)
// under the same loss recovery. Every expected time and window below is printed from the RFC
// formulas by scripts/tcp_expected.py (NewReno) or scripts/cubic_expected.py ("Script tests",
// CUBIC); the arithmetic is repeated in the comments. The window tests pick their controller
// explicitly (CUBIC is the default): a NewReno test must not silently become a CUBIC one.
// active_open() takes an RTT sample of 100 ms in the handshake (SYN at 0, SYN-ACK at 100):
// SRTT = 100, RTTVAR = 50, RTO = 100 + max(G, 4 * 50) = 300 ms.
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_rto_test {

class TcpRto : public TcpScript {
 protected:
  /// active_open() with the controller chosen before the handshake completes (it is taken when
  /// the connection is established). No timestamps, no window scaling (see no_ts below).
  socket_id active_open_with(congestion_algorithm algorithm, where w = where::current()) {
    const socket_id c = connect(80, w);
    tcp_socket_options o = tcp().options(c);
    o.congestion = algorithm;
    EXPECT_FALSE(tcp().set_options(c, o));
    expect({.flags = "S", .seq = 0}, w);
    at(now_ms() + 100, w);
    inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460}, w);
    expect({.flags = ".", .seq = 1, .ack = 1}, w);
    return c;
  }
};

// No timestamps (so Karn's rule matters and segments are 1460 bytes) and no window scaling (so the
// SYN-ACK's window equals the later ACKs' and the first of them is a true duplicate, RFC 5681 2).
const peer_syn no_ts{.mss = 1460, .ws = std::nullopt, .ts = false};

// RFC 6298 2.2 (first sample) and 5.5 (backoff): data sent at 100 is retransmitted after 300,
// 600, 1200, 2400 ms: at 400, 1000, 2200, 4600.
TEST_F(TcpRto, RtoFromFirstSampleThenExponentialBackoff) {
  const socket_id c = active_open(no_ts);
  const tcp_info i = info(c);
  EXPECT_EQ(i.srtt, 100 * millisecond);
  EXPECT_EQ(i.rttvar, 50 * millisecond);
  EXPECT_EQ(i.rto, 300 * millisecond);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  for (const std::uint64_t t : {400U, 1000U, 2200U, 4600U}) {
    at(t - 1);
    expect_nothing();
    at(t);
    expect({.flags = ".", .seq = 1, .ack = 1, .len = 100});
  }
  EXPECT_EQ(info(c).rto_expirations, 4U);
}

// The passive side times its SYN-ACK too (Linux: tcp_synack_rtt_meas), without timestamps:
// SYN-ACK at 0, its ACK at 100 -> the same first sample, RTO 300 instead of the initial 1 s.
TEST_F(TcpRto, PassiveOpenTimesTheSynAck) {
  const socket_id c = passive_open(no_ts);
  const tcp_info i = info(c);
  EXPECT_EQ(i.srtt, 100 * millisecond);
  EXPECT_EQ(i.rto, 300 * millisecond);
}

// RFC 6298 2.4 with tcp_config::rto_min = 200 ms: R = 10 gives 10 + 4 * 5 = 30 -> 200.
TEST_F(TcpRto, RtoIsAtLeastTheMinimum) {
  const socket_id c = active_open(no_ts, 10);
  EXPECT_EQ(info(c).rto, 200 * millisecond);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  at(10 + 199);
  expect_nothing();
  at(10 + 200);
  expect({.flags = ".", .seq = 1, .len = 100});
}

// RFC 6298 2.5 with tcp_config::rto_max = 1 s: the backoff stops there: +300, +600, +1000,
// +1000 (scripts/tcp_expected.py: 300, 900, 1900, 2900 after sending at 100).
TEST_F(TcpRto, BackoffIsCappedByTheMaximum) {
  cfg_.tcp.rto_max = 1 * second;
  const socket_id c = active_open(no_ts);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  for (const std::uint64_t t : {400U, 1000U, 2000U, 3000U}) {
    at(t - 1);
    expect_nothing();
    at(t);
    expect({.flags = ".", .seq = 1, .len = 100});
  }
}

// tcp_config::data_retries = 3: three retransmissions (at +300, +900, +2100), and the
// connection fails with timed_out when the next is due (+4500, scripts/tcp_expected.py): a
// connection never retransmits forever.
TEST_F(TcpRto, DataRetriesRunOutWithTimedOut) {
  cfg_.tcp.data_retries = 3;
  const socket_id c = active_open(no_ts);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  for (const std::uint64_t t : {400U, 1000U, 2200U}) {
    at(t);
    expect({.flags = ".", .seq = 1, .len = 100});
  }
  at(4599);
  expect_nothing();
  EXPECT_FALSE(tcp().error(c));
  at(4600);
  for (const observed& o : drain()) {
    EXPECT_TRUE(o.has(wire::tcp_flag::rst)) << "only a reset may follow: " << o.str();
  }
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::timed_out));
  EXPECT_NE(events(c) & socket_events::error, 0);
  EXPECT_EQ(tcp().counters().timeouts, 1U);
  at(60000);
  expect_nothing();
}

// RFC 6298 3 (Karn): the ACK of a retransmitted segment gives no RTT sample (without timestamps
// it is ambiguous), so SRTT stays 100; and RFC 6298 5 (the note after 5.7): the backed-off RTO
// (600) is kept until a valid sample, so new data sent at 450 is retransmitted at 1050, not 750.
TEST_F(TcpRto, KarnNoSampleFromRetransmissionAndBackoffKept) {
  const socket_id c = active_open(no_ts);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  at(400);
  expect({.flags = ".", .seq = 1, .len = 100});
  at(450);
  inject({.flags = ".", .seq = 1, .ack = 101});
  EXPECT_EQ(info(c).srtt, 100 * millisecond);
  EXPECT_EQ(info(c).rttvar, 50 * millisecond);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 101, .len = 100});
  at(1049);
  expect_nothing();
  at(1050);
  expect({.flags = ".", .seq = 101, .len = 100});
}

// RFC 6298 2.3: a second sample R = 60 gives RTTVAR = 3/4*50 + 1/4*|100-60| = 47.5,
// SRTT = 7/8*100 + 1/8*60 = 95, RTO = 95 + 4*47.5 = 285 ms (scripts/tcp_expected.py). Integer
// arithmetic may round by a millisecond or two, which is allowed.
TEST_F(TcpRto, SecondSampleUpdatesRtoPerRfc6298) {
  const socket_id c = active_open(no_ts);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  at(160);
  inject({.flags = ".", .seq = 1, .ack = 101});
  const tcp_info i = info(c);
  EXPECT_NEAR(static_cast<double>(i.srtt) / millisecond, 95.0, 1.0);
  EXPECT_NEAR(static_cast<double>(i.rttvar) / millisecond, 47.5, 1.0);
  EXPECT_NEAR(static_cast<double>(i.rto) / millisecond, 285.0, 2.0);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 101, .len = 100});
  at(160 + 282);
  expect_nothing();
  at(160 + 288);
  expect({.flags = ".", .seq = 101, .len = 100});
}

// RFC 7323 4 (RTTM): with timestamps, the echoed TSval gives the sample: the data segment sent
// at 100 is acknowledged at 160 echoing its TSval -> the same 60 ms sample as above.
TEST_F(TcpRto, TimestampsGiveRttSamples) {
  const socket_id c = passive_open();
  send_stream(c, 100);
  const observed d = expect({.flags = ".", .seq = 1, .ts = present, .len = 100});
  at(160);
  inject({.flags = ".", .seq = 1, .ack = 101, .ts = tsopt(peer_tsval(), d.tsval())});
  const tcp_info i = info(c);
  EXPECT_NEAR(static_cast<double>(i.srtt) / millisecond, 95.0, 1.0);
  EXPECT_NEAR(static_cast<double>(i.rto) / millisecond, 285.0, 2.0);
}

// RFC 5681 3.1 (equation 4 and LW), NewReno: on RTO, ssthresh = max(FlightSize/2, 2*SMSS) = 7300
// and cwnd = 1 SMSS: only the first segment is retransmitted; its ACK (slow start: cwnd 2920)
// releases the next two.
TEST_F(TcpRto, TimeoutCollapsesCwndToOneSegment) {
  const socket_id c = active_open_with(congestion_algorithm::new_reno);
  send_stream(c, 14600);
  EXPECT_EQ(drain().size(), 10U);
  at(400);
  expect({.flags = ".", .seq = 1, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).ssthresh, 7300U);
  EXPECT_EQ(info(c).cwnd, 1460U);
  at(450);
  inject({.flags = ".", .seq = 1, .ack = 1461});
  expect({.flags = ".", .seq = 1461, .len = 1460});
  expect({.flags = ".", .seq = 2921, .len = 1460});
  expect_nothing();
}

// RFC 9438 4.8, CUBIC: on RTO, ssthresh as on a fast retransmit (4.6: FlightSize * beta_cubic =
// 14600 * 0.7 = 10220, at least 2 SMSS) and cwnd = 1 SMSS as Reno's (RFC 5681 3.1 LW); then
// slow start as Reno's (4.10): the ACK of the retransmission takes cwnd to 2920, two segments.
TEST_F(TcpRto, CubicTimeoutCollapsesCwndToOneSegment) {
  const socket_id c = active_open_with(congestion_algorithm::cubic);
  send_stream(c, 14600);
  EXPECT_EQ(drain().size(), 10U);
  at(400);
  expect({.flags = ".", .seq = 1, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).ssthresh, 10220U);
  EXPECT_EQ(info(c).cwnd, 1460U);
  at(450);
  inject({.flags = ".", .seq = 1, .ack = 1461});
  expect({.flags = ".", .seq = 1461, .len = 1460});
  expect({.flags = ".", .seq = 2921, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 2920U);
}

// RFC 5681 3.2, NewReno: the third duplicate ACK triggers fast retransmit; ssthresh =
// max(FlightSize/2, 2*SMSS): with 3 segments (4380) in flight that is 2*SMSS = 2920, and
// cwnd = ssthresh + 3*SMSS = 7300.
TEST_F(TcpRto, FastRetransmitOnThirdDuplicateAck) {
  const socket_id c = active_open_with(congestion_algorithm::new_reno);
  send_stream(c, 3 * 1460);
  EXPECT_EQ(drain().size(), 3U);
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect({.flags = ".", .seq = 1, .len = 1460});
  const tcp_info i = info(c);
  EXPECT_EQ(i.ssthresh, 2920U);
  EXPECT_EQ(i.cwnd, 7300U);
  EXPECT_EQ(i.fast_retransmits, 1U);
  EXPECT_EQ(tcp().counters().duplicate_acks, 3U);
}

// RFC 9438 4.6, CUBIC, the same three segments: ssthresh = max(FlightSize * 0.7, 2*SMSS) =
// max(3066, 2920) = 3066 (where NewReno's half is floored to 2920), and fast recovery's inflation
// (RFC 5681 3.2 step 3, which CUBIC keeps) gives cwnd = 3066 + 3*1460 = 7446.
TEST_F(TcpRto, CubicFastRetransmitOnThirdDuplicateAck) {
  const socket_id c = active_open_with(congestion_algorithm::cubic);
  send_stream(c, 3 * 1460);
  EXPECT_EQ(drain().size(), 3U);
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect({.flags = ".", .seq = 1, .len = 1460});
  const tcp_info i = info(c);
  EXPECT_EQ(i.ssthresh, 3066U);
  EXPECT_EQ(i.cwnd, 7446U);
  EXPECT_EQ(i.fast_retransmits, 1U);
}

// RFC 5681 2 (DUPLICATE ACKNOWLEDGMENT): an ACK that changes the window, or carries data, is
// not a duplicate: no fast retransmit.
TEST_F(TcpRto, WindowUpdatesAndDataAreNotDuplicateAcks) {
  const socket_id c = active_open(no_ts);
  send_stream(c, 5 * 1460);
  EXPECT_EQ(drain().size(), 5U);
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 60000});
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 59000});
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 58000});
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 58000, .data = "a"});
  at(240);
  for (const observed& o : drain()) {
    EXPECT_EQ(o.len(), 0U) << "nothing retransmitted: " << o.str();
  }
  EXPECT_EQ(info(c).fast_retransmits, 0U);
}

// RFC 5681 3.2 + RFC 6582 3.2, the trace printed by scripts/tcp_expected.py (SMSS 1460, ten
// segments S0..S9 in flight, S0 and S3 lost, eight duplicate ACKs):
//   dup 3: retransmit 1; ssthresh = max(14600/2, 2920) = 7300, cwnd = 7300 + 3*1460 = 11680,
//          recover = 14600; the application then writes ten more segments
//   dup 4, 5: cwnd 13140, 14600: flight 14600, nothing new
//   dup 6, 7, 8: cwnd 16060, 17520, 18980: new segments 14601, 16061, 17521
//   partial ACK 4381: retransmit 4381; cwnd = 18980 - 4380 + 1460 = 16060; new segment 18981
//   full ACK 14601: cwnd = ssthresh = 7300 (= min(ssthresh, flight 5840 + SMSS) too); new 20441
TEST_F(TcpRto, NewRenoRecoveryFollowsRfc6582) {
  const socket_id c = active_open_with(congestion_algorithm::new_reno);
  send_stream(c, 14600);
  EXPECT_EQ(drain().size(), 10U);
  at(200);
  const auto dup_ack = [this] { inject({.flags = ".", .seq = 1, .ack = 1}); };
  dup_ack();
  expect_nothing();
  dup_ack();
  expect_nothing();
  dup_ack();
  expect({.flags = ".", .seq = 1, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).ssthresh, 7300U);
  EXPECT_EQ(info(c).cwnd, 11680U);
  send_stream(c, 14600);
  expect_nothing();
  dup_ack();
  expect_nothing();
  dup_ack();
  expect_nothing();
  for (const std::uint32_t seq : {14601U, 16061U, 17521U}) {
    dup_ack();
    expect({.flags = ".", .seq = seq, .len = 1460});
    expect_nothing();
  }
  EXPECT_EQ(info(c).cwnd, 18980U);
  at(250);
  inject({.flags = ".", .seq = 1, .ack = 4381});
  expect({.flags = ".", .seq = 4381, .len = 1460});
  expect({.flags = ".", .seq = 18981, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 16060U);
  EXPECT_EQ(tcp().counters().recovery_partial_acks, 1U);
  at(300);
  inject({.flags = ".", .seq = 1, .ack = 14601});
  expect({.flags = ".", .seq = 20441, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 7300U);
  EXPECT_EQ(info(c).ssthresh, 7300U);
  EXPECT_EQ(info(c).fast_retransmits, 1U);
}

// The same loss under CUBIC: RFC 9438 4.6 sets ssthresh = FlightSize * beta_cubic and leaves loss
// recovery to RFC 6582, so the trace differs only by the reduction (scripts/cubic_expected.py,
// "Script tests"):
//   dup 3: retransmit 1; ssthresh = 14600 * 0.7 = 10220, cwnd = 10220 + 3*1460 = 14600
//   dup 4..8: cwnd 16060 .. 21900: new segments 14601, 16061, 17521, 18981, 20441
//   partial ACK 4381: retransmit 4381; cwnd = 21900 - 4380 + 1460 = 18980; new segment 21901
//   full ACK 14601: cwnd = ssthresh = 10220 = 0.7 * the flight at the loss (RFC 6582 option (1)
//          gives min(10220, 8760 + 1460), the same); new segment 23361
TEST_F(TcpRto, CubicRecoveryEndsAtSeventyPercentOfTheFlight) {
  const socket_id c = active_open_with(congestion_algorithm::cubic);
  send_stream(c, 14600);
  EXPECT_EQ(drain().size(), 10U);
  at(200);
  const auto dup_ack = [this] { inject({.flags = ".", .seq = 1, .ack = 1}); };
  dup_ack();
  expect_nothing();
  dup_ack();
  expect_nothing();
  dup_ack();
  expect({.flags = ".", .seq = 1, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).ssthresh, 10220U);
  EXPECT_EQ(info(c).cwnd, 14600U);
  send_stream(c, 14600);
  expect_nothing();
  for (const std::uint32_t seq : {14601U, 16061U, 17521U, 18981U, 20441U}) {
    dup_ack();
    expect({.flags = ".", .seq = seq, .len = 1460});
    expect_nothing();
  }
  EXPECT_EQ(info(c).cwnd, 21900U);
  at(250);
  inject({.flags = ".", .seq = 1, .ack = 4381});
  expect({.flags = ".", .seq = 4381, .len = 1460});
  expect({.flags = ".", .seq = 21901, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 18980U);
  at(300);
  inject({.flags = ".", .seq = 1, .ack = 14601});
  expect({.flags = ".", .seq = 23361, .len = 1460});
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 10220U);
  EXPECT_EQ(info(c).ssthresh, 10220U);
  EXPECT_EQ(info(c).fast_retransmits, 1U);
}

// RFC 1122 4.2.3.6: keepalive (off by default; here idle 10 s, interval 1 s, 3 probes). A probe
// is <SEQ=SND.NXT-1> with at most one garbage byte, sent only after 10 s without anything
// received; an answer restarts the idle time (Linux probes again exactly 10 s after the answer;
// up to one interval later is allowed here); three unanswered probes, one per interval, fail the
// connection one interval after the last (timed_out, keepalive_timeouts).
TEST_F(TcpRto, KeepaliveProbesAndTimeout) {
  const socket_id c = passive_open();
  tcp_socket_options o = tcp().options(c);
  o.keepalive_idle = 10 * second;
  o.keepalive_interval = 1 * second;
  o.keepalive_probes = 3;
  ASSERT_FALSE(tcp().set_options(c, o));
  at(10099);
  expect_nothing();
  at(10100);
  const observed p = run_until_segment(10100);
  ASSERT_TRUE(p.valid);
  EXPECT_EQ(p.rel_seq, 0U);  // SND.NXT - 1
  EXPECT_LE(p.len(), 1U);
  EXPECT_EQ(tcp().counters().keepalives_sent, 1U);
  at(10150);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  const observed first = run_until_segment(21150);
  ASSERT_TRUE(first.valid) << "no probe within idle + interval of the answer";
  EXPECT_GE(first.at, 20150 * millisecond) << "the answer at 10150 restarts the idle time";
  EXPECT_EQ(first.rel_seq, 0U);
  const std::uint64_t t0 = first.at / millisecond;
  for (const std::uint64_t t : {t0 + 1000, t0 + 2000}) {
    at(t - 1);
    expect_nothing();
    at(t);
    const observed q = run_until_segment(t);
    EXPECT_TRUE(q.valid) << "probe at " << t;
    EXPECT_EQ(q.rel_seq, 0U);
  }
  at(t0 + 2999);
  EXPECT_FALSE(tcp().error(c));
  at(t0 + 3000);
  drain();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::timed_out));
  EXPECT_EQ(tcp().counters().keepalive_timeouts, 1U);
}

// RFC 5482 / tcp_socket_options::user_timeout = 1 s: data unacknowledged for 1 s fails the
// connection (timed_out) then, whatever the retry count says (retransmissions at 400 and 1000).
TEST_F(TcpRto, UserTimeoutFailsTheConnection) {
  const socket_id c = active_open(no_ts);
  tcp_socket_options o = tcp().options(c);
  o.user_timeout = 1 * second;
  ASSERT_FALSE(tcp().set_options(c, o));
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  at(400);
  expect({.flags = ".", .seq = 1, .len = 100});
  at(1000);
  expect({.flags = ".", .seq = 1, .len = 100});
  at(1099);
  EXPECT_FALSE(tcp().error(c));
  at(1100);
  drain();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::timed_out));
  std::uint64_t failed_at = 1100;
  while (!tcp().error(c) && failed_at < 10000) {  // for the report: when it did fail
    at(++failed_at);
  }
  EXPECT_EQ(failed_at, 1100U) << "failed only at " << failed_at << " ms";
}

}  // namespace tcp_script_rto_test
}  // namespace
}  // namespace dpdk_net::stack::script
