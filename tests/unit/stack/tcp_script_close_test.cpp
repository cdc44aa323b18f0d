// Scripted TCP: closing (active, passive, half, simultaneous, orphaned), aborts and resets.
// The handshake (passive_open) ends at t=100 ms with an RTT sample of 100 ms, so RTO = 300 ms
// (RFC 6298: SRTT 100, RTTVAR 50, 100 + 4*50; scripts/tcp_expected.py).
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_close_test {

class TcpClose : public TcpScript {};

std::error_code receive_error(tcp_layer& t, socket_id id) {
  std::array<std::byte, 16> buf{};
  return t.receive(id, buf).error;
}

// RFC 9293 3.6 (case 1) and 3.10.7.4: FIN-WAIT-1 -> (ACK of FIN) FIN-WAIT-2 -> (FIN) TIME-WAIT,
// which lasts 2 MSL (tcp_config::time_wait) and then frees the 4-tuple.
TEST_F(TcpClose, ActiveCloseGoesThroughFinWaitToTimeWait) {
  cfg_.tcp.time_wait = 2 * second;
  const socket_id c = passive_open();
  ASSERT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  EXPECT_EQ(state(c), tcp_state::fin_wait_1);
  at(150);
  inject({.flags = ".", .seq = 1, .ack = 2});
  expect_nothing();
  EXPECT_EQ(state(c), tcp_state::fin_wait_2);
  at(200);
  inject({.flags = "F.", .seq = 1, .ack = 2});
  expect({.flags = ".", .seq = 2, .ack = 2});  // RFC 9293: ACK the FIN at once in TIME-WAIT
  EXPECT_EQ(tcp().time_wait_count(), 1U);
  EXPECT_EQ(receive_error(tcp(), c), make_error_code(tcp_errc::end_of_stream));
  EXPECT_EQ(tcp().counters().time_wait_entered, 1U);
  at(2199);
  EXPECT_EQ(tcp().time_wait_count(), 1U);
  at(2200);
  EXPECT_EQ(tcp().time_wait_count(), 0U);
  expect_nothing();
}

// RFC 9293 3.6 (case 2): the peer's FIN is acknowledged (within the delayed-ACK time), the
// application reads end of stream, can still send (CLOSE-WAIT), and its close sends FIN
// (LAST-ACK); the ACK of that FIN closes the connection and `closed` is signalled.
TEST_F(TcpClose, PassiveCloseReadsEndOfStreamThenLastAck) {
  const socket_id c = passive_open();
  events(c);
  inject({.flags = "F.", .seq = 1, .ack = 1});
  at(140);
  expect({.flags = ".", .seq = 1, .ack = 2});
  EXPECT_EQ(state(c), tcp_state::close_wait);
  EXPECT_NE(events(c) & socket_events::readable, 0);
  EXPECT_EQ(read(c), "");
  EXPECT_EQ(receive_error(tcp(), c), make_error_code(tcp_errc::end_of_stream));
  EXPECT_EQ(send(c, "late"), 4U);
  expect({.flags = ".", .seq = 1, .ack = 2, .data = "late"});
  ASSERT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 5, .ack = 2});
  EXPECT_EQ(state(c), tcp_state::last_ack);
  at(200);
  inject({.flags = ".", .seq = 2, .ack = 6});
  expect_nothing();
  EXPECT_EQ(state(c), tcp_state::closed);
  EXPECT_NE(events(c) & socket_events::closed, 0);
  EXPECT_EQ(tcp().time_wait_count(), 0U);  // the passive closer has no TIME-WAIT
}

// RFC 9293 3.6: half-close. After our FIN (FIN-WAIT-2) the peer may go on sending; its data is
// delivered and acknowledged.
TEST_F(TcpClose, HalfClosedConnectionStillReceives) {
  const socket_id c = passive_open();
  ASSERT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  inject({.flags = ".", .seq = 1, .ack = 2});
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 2, .data = "still talking"});
  at(240);
  expect({.flags = ".", .seq = 2, .ack = 14});
  EXPECT_EQ(read(c), "still talking");
  const io_result r = tcp().send(c, std::as_bytes(std::span("x", 1)));
  EXPECT_EQ(r.error, std::make_error_code(std::errc::broken_pipe));
  inject({.flags = "F.", .seq = 14, .ack = 2});
  expect({.flags = ".", .seq = 2, .ack = 15});
  EXPECT_EQ(tcp().time_wait_count(), 1U);
}

// RFC 9293 3.6 figure 13 (simultaneous close): FIN-WAIT-1 gets a FIN that does not acknowledge
// ours -> ACK it, CLOSING; the ACK of our FIN -> TIME-WAIT.
TEST_F(TcpClose, SimultaneousCloseGoesThroughClosing) {
  const socket_id c = passive_open();
  ASSERT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  inject({.flags = "F.", .seq = 1, .ack = 1});
  expect({.flags = ".", .seq = 2, .ack = 2});
  EXPECT_EQ(state(c), tcp_state::closing);
  at(200);
  inject({.flags = ".", .seq = 2, .ack = 2});
  expect_nothing();
  EXPECT_EQ(tcp().time_wait_count(), 1U);
}

// RFC 6298 5: a FIN is retransmitted like data (RTO 300 ms after the handshake sample).
TEST_F(TcpClose, UnacknowledgedFinIsRetransmitted) {
  const socket_id c = passive_open();
  ASSERT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  at(399);
  expect_nothing();
  at(400);
  expect({.flags = "F.", .seq = 1, .ack = 1});
  EXPECT_EQ(state(c), tcp_state::fin_wait_1);
}

// RFC 9293 3.6 / RFC 2525 2.17: closing with unread received data resets the connection
// (<SEQ=SND.NXT><CTL=RST>, ACK bit as the implementation likes: Linux sets it).
TEST_F(TcpClose, CloseWithUnreadDataSendsReset) {
  const socket_id c = passive_open();
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "unread"});
  at(140);
  expect({.flags = ".", .seq = 1, .ack = 7});
  ASSERT_FALSE(tcp().close(c, now()));
  expect({.flags = "R*", .seq = 1});
  EXPECT_EQ(tcp().connections(), 0U);
  EXPECT_EQ(tcp().time_wait_count(), 0U);
}

// RFC 9293 3.10.5 (ABORT): <SEQ=SND.NXT><CTL=RST>; the id is released at once.
TEST_F(TcpClose, AbortSendsResetAndReleasesTheId) {
  const socket_id c = passive_open();
  send(c, "abc");
  expect({.flags = ".", .seq = 1, .ack = 1, .data = "abc"});
  ASSERT_FALSE(tcp().abort(c, now()));
  expect({.flags = "R*", .seq = 4});
  EXPECT_EQ(tcp().counters().resets_sent, 1U);
  EXPECT_EQ(tcp().send(c, std::as_bytes(std::span("x", 1))).error,
            std::make_error_code(std::errc::bad_file_descriptor));
  EXPECT_EQ(tcp().connections(), 0U);
  // The peer's next segment meets no connection: <SEQ=SEG.ACK><CTL=RST>.
  inject({.flags = ".", .seq = 1, .ack = 4, .data = "late"});
  expect({.flags = "R", .seq = 4});
}

// tcp_socket_options::linger = 0: close() is an abort (RST).
TEST_F(TcpClose, LingerZeroCloseResets) {
  const socket_id c = passive_open();
  tcp_socket_options o;
  o.linger = 0;
  ASSERT_FALSE(tcp().set_options(c, o));
  ASSERT_FALSE(tcp().close(c, now()));
  expect({.flags = "R*", .seq = 1});
}

// tcp_socket_options::linger > 0: graceful, but reset if everything is not acknowledged within
// the linger time.
TEST_F(TcpClose, LingerTimeoutResetsAnUnacknowledgedClose) {
  const socket_id c = passive_open();
  tcp_socket_options o;
  o.linger = 1 * second;
  ASSERT_FALSE(tcp().set_options(c, o));
  ASSERT_FALSE(tcp().close(c, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  at(400);
  expect({.flags = "F.", .seq = 1, .ack = 1});  // RTO 300
  at(1000);
  expect({.flags = "F.", .seq = 1, .ack = 1});  // backed off: 600
  at(1099);
  expect_nothing();
  at(1100);
  expect({.flags = "R*", .seq = 2});  // SND.NXT, after the FIN
  EXPECT_EQ(tcp().connections(), 0U);
}

// tcp_config::fin_wait_2: a closed (orphaned) connection waits that long for the peer's FIN,
// then goes away; a later segment from the peer gets a reset (RFC 9293 3.10.7.1).
TEST_F(TcpClose, OrphanedFinWait2TimesOut) {
  cfg_.tcp.fin_wait_2 = 5 * second;
  const socket_id c = passive_open();
  ASSERT_FALSE(tcp().close(c, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  inject({.flags = ".", .seq = 1, .ack = 2});
  at(5000);
  EXPECT_EQ(tcp().connections(), 1U);
  at(5200);
  EXPECT_EQ(tcp().connections(), 0U);
  for (const observed& o : drain()) {  // Linux resets here (tcp_keepalive_timer); silence is fine
    EXPECT_TRUE(o.has(wire::tcp_flag::rst)) << o.str();
    EXPECT_EQ(o.rel_seq, 2U);
  }
  inject({.flags = ".", .seq = 1, .ack = 2, .data = "hello?"});
  expect({.flags = "R", .seq = 2});
}

// RFC 9293 3.10.7.4 (second, RFC 5961 3.2): a RST exactly at RCV.NXT resets an ESTABLISHED
// connection: the user gets "connection reset", nothing is sent.
TEST_F(TcpClose, ResetAtRcvNxtResetsTheConnection) {
  const socket_id c = passive_open();
  events(c);
  at(200);
  inject({.flags = "R", .seq = 1});
  expect_nothing();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::connection_reset));
  EXPECT_NE(events(c) & socket_events::error, 0);
  EXPECT_EQ(receive_error(tcp(), c), std::make_error_code(std::errc::connection_reset));
  EXPECT_EQ(tcp().send(c, std::as_bytes(std::span("x", 1))).error,
            std::make_error_code(std::errc::connection_reset));
  EXPECT_EQ(tcp().counters().resets_received, 1U);
  EXPECT_EQ(tcp().connections(), 0U);
}

// RFC 9293 3.10.7.4 (second, 3): a RST inside the window but not at RCV.NXT gets a challenge
// ACK <SEQ=SND.NXT><ACK=RCV.NXT> and changes nothing; (1) outside the window it is dropped.
TEST_F(TcpClose, ResetInWindowButNotExactGetsChallengeAckOutsideIsDropped) {
  const socket_id c = passive_open();
  inject({.flags = "R", .seq = 1000});
  expect({.flags = ".", .seq = 1, .ack = 1});
  inject({.flags = "R", .seq = 1 + 10'000'000});  // beyond the 65535 << 7 window
  inject({.flags = "R", .seq = 0});               // before RCV.NXT
  expect_nothing();
  EXPECT_EQ(state(c), tcp_state::established);
  EXPECT_FALSE(tcp().error(c));
}

// RFC 9293 3.10.7.4 (second, SYN-RECEIVED): a RST for a connection opened passively returns it
// to LISTEN: the half-open connection disappears, the listener stays, nothing is accepted.
TEST_F(TcpClose, ResetInSynReceivedReturnsToListen) {
  const socket_id l = listen();
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  inject({.flags = "R", .seq = 1});
  expect_nothing();
  EXPECT_EQ(tcp().connections(), 0U);
  socket_id none = 0;
  EXPECT_EQ(tcp().accept(l, none), std::make_error_code(std::errc::resource_unavailable_try_again));
  new_flow(40000, 7000000);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
}

}  // namespace tcp_script_close_test
}  // namespace
}  // namespace dpdk_net::stack::script
