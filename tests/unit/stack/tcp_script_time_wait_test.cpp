// Scripted TCP: TIME-WAIT (RFC 9293 3.6 and 3.10.7.4) and its reuse (RFC 6191), and the listen
// queue (one bound: half-open plus not-yet-accepted <= backlog).
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_time_wait_test {

/// A port_filter context: accepts one port, counts how often it was asked.
struct port_wish {
  std::uint16_t port = 0;
  mutable int asked = 0;
};
bool only_wished_port(const void* ctx, std::uint16_t p, tcp_endpoint /*remote*/) {
  const auto* w = static_cast<const port_wish*>(ctx);
  ++w->asked;
  return p == w->port;
}

class TcpTimeWait : public TcpScript {
 protected:
  /// A passively opened connection on the current port that we close first, into TIME-WAIT
  /// (our FIN acknowledged, the peer's FIN acknowledged). Returns its id.
  socket_id into_time_wait(peer_syn p = {}) {
    const socket_id c = passive_open(p);
    const std::uint64_t entered = tcp().counters().time_wait_entered;
    EXPECT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
    expect({.flags = "F.", .seq = 1, .ack = 1});
    inject({.flags = ".", .seq = 1, .ack = 2});
    inject({.flags = "F.", .seq = 1, .ack = 2});
    expect({.flags = ".", .seq = 2, .ack = 2});
    EXPECT_EQ(tcp().counters().time_wait_entered, entered + 1);
    return c;
  }
};

// RFC 9293 3.10.7.4 (TIME-WAIT): "The only thing that can arrive in this state is a
// retransmission of the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
TEST_F(TcpTimeWait, RetransmittedFinIsAcknowledgedAndRestartsTheTimer) {
  cfg_.tcp.time_wait = 2 * second;
  into_time_wait();  // entered at 100
  at(1500);
  inject({.flags = "F.", .seq = 1, .ack = 2});
  expect({.flags = ".", .seq = 2, .ack = 2});
  at(2200);  // 100 + 2 s: would have expired without the restart
  EXPECT_EQ(tcp().time_wait_count(), 1U);
  at(3499);
  EXPECT_EQ(tcp().time_wait_count(), 1U);
  at(3500);
  EXPECT_EQ(tcp().time_wait_count(), 0U);
}

// RFC 6191 2 (previous incarnation with timestamps): a SYN whose TSval is greater than the last
// one seen is honoured whatever its sequence number (here below the old RCV.NXT): a new
// connection, SYN-ACK with a fresh ISN; time_wait_reused counts it.
TEST_F(TcpTimeWait, SynWithNewerTimestampReusesTheTuple) {
  into_time_wait();
  at(1000);
  new_flow(40000, peer_isn_of() - 50000);
  inject({.flags = "S", .seq = 0, .mss = 1460, .ws = 7, .ts = present});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  EXPECT_EQ(tcp().time_wait_count(), 0U);
  EXPECT_EQ(tcp().counters().time_wait_reused, 1U);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  EXPECT_EQ(tcp().counters().established, 2U);
}

// RFC 6191 2: with an older (or equal) TSval the SYN is not honoured - the TIME-WAIT record stays
// and no SYN-ACK goes out (RFC 6191 drops it; Linux answers with the TIME-WAIT ACK: either).
TEST_F(TcpTimeWait, SynWithOlderTimestampDoesNotReuse) {
  into_time_wait();
  at(1000);
  inject({.flags = "S", .seq = 1000, .mss = 1460, .ts = tsopt(1, 0)});
  for (const observed& o : drain()) {
    EXPECT_FALSE(o.has(wire::tcp_flag::syn)) << o.str();
    EXPECT_EQ(o.tcp.flags, wire::tcp_flag::ack) << o.str();
  }
  EXPECT_EQ(tcp().time_wait_count(), 1U);
  EXPECT_EQ(tcp().counters().time_wait_reused, 0U);
}

// RFC 6191 2 / RFC 1122 4.2.2.13 (no timestamps): a SYN with a sequence number above the old
// RCV.NXT is honoured; one below it is not.
TEST_F(TcpTimeWait, WithoutTimestampsOnlyAHigherSequenceNumberReuses) {
  into_time_wait({.mss = 1460, .ws = 7, .ts = false});
  at(1000);
  inject({.flags = "S", .seq = 1 - 100000, .mss = 1460});  // below: not honoured
  for (const observed& o : drain()) {
    EXPECT_FALSE(o.has(wire::tcp_flag::syn)) << o.str();
  }
  EXPECT_EQ(tcp().time_wait_count(), 1U);
  new_flow(40000, peer_isn_of() + 100000);
  inject({.flags = "S", .seq = 0, .mss = 1460});  // above the old RCV.NXT
  expect({.flags = "S.", .seq = 0, .ack = 1});
  EXPECT_EQ(tcp().time_wait_count(), 0U);
}

// Issue 9 / RFC 6191: connect() may reuse a local port whose tuple is in TIME-WAIT when the old
// connection used timestamps (the peer's PAWS tells the incarnations apart): the new SYN
// carries a TSval above the old connection's.
TEST_F(TcpTimeWait, ConnectReusesATimeWaitTupleWithTimestamps) {
  const socket_id first = active_open();
  const std::uint16_t local = our_port(80);
  ASSERT_FALSE(tcp().shutdown(first, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  inject({.flags = "F.", .seq = 1, .ack = 2});
  const observed last = expect({.flags = ".", .seq = 2, .ack = 2});
  ASSERT_EQ(tcp().time_wait_count(), 1U);
  ASSERT_FALSE(tcp().close(first, now()));  // the id goes; the tuple stays in TIME-WAIT
  at(2000);
  socket_id again = 0;
  ASSERT_FALSE(tcp().open(again));
  const port_wish want{local};
  const port_filter only_that_port{only_wished_port, &want};
  const std::error_code e = tcp().connect(again, tcp_endpoint{peer_ip, 80}, now(), only_that_port);
  ASSERT_FALSE(e) << e.message() << "; the filter was asked " << want.asked << " times";
  const observed syn = expect({.flags = "S", .seq = 0, .ts = present});
  EXPECT_EQ(syn.tcp.src_port, local);
  EXPECT_GT(static_cast<std::int32_t>(syn.tsval() - last.tsval()), 0);
  EXPECT_EQ(tcp().counters().time_wait_reused, 1U);
  EXPECT_EQ(tcp().time_wait_count(), 0U);
}

// Without timestamps the same connect finds no usable port (the tuple is in TIME-WAIT).
TEST_F(TcpTimeWait, ConnectDoesNotReuseATimeWaitTupleWithoutTimestamps) {
  const socket_id first = active_open({.mss = 1460, .ws = 7, .ts = false});
  std::uint16_t local = our_port(80);
  ASSERT_FALSE(tcp().shutdown(first, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  inject({.flags = "F.", .seq = 1, .ack = 2});
  expect({.flags = ".", .seq = 2, .ack = 2});
  ASSERT_FALSE(tcp().close(first, now()));
  socket_id again = 0;
  ASSERT_FALSE(tcp().open(again));
  const port_wish want{local};
  const port_filter only_that_port{only_wished_port, &want};
  EXPECT_EQ(tcp().connect(again, tcp_endpoint{peer_ip, 80}, now(), only_that_port),
            std::make_error_code(std::errc::address_not_available));
  EXPECT_EQ(tcp().time_wait_count(), 1U);
}

// tcp_config::time_wait_records bounds the records; when full the oldest goes (counted).
TEST_F(TcpTimeWait, RecordsAreBoundedOldestEvicted) {
  cfg_.tcp.time_wait_records = 2;
  for (const std::uint16_t p : {40001, 40002, 40003}) {
    use_port(p);
    into_time_wait();
  }
  EXPECT_EQ(tcp().time_wait_count(), 2U);
  EXPECT_EQ(tcp().counters().time_wait_evicted, 1U);
}

class TcpListen : public TcpScript {};

// Issue 11: half-open connections <= syn_queue (a SYN beyond it is dropped without cookies:
// syn_queue_overflow), established not-yet-accepted ones <= backlog (a SYN meeting a full accept
// queue is dropped: listen_overflow); accepting makes room again. tcp_queue_test.cpp has the
// rest (cookies, the final ACK onto a full accept queue).
TEST_F(TcpListen, SynQueueAndBacklogBoundHalfOpenAndNotAccepted) {
  cfg_.tcp.syn_queue = 2;
  cfg_.tcp.syn_cookies = false;
  const socket_id l = listen(8080, 2);
  use_port(40001);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  use_port(40002);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  use_port(40003);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect_nothing();  // two half-open: the SYN queue is full
  EXPECT_EQ(tcp().counters().syn_queue_overflow, 1U);
  for (const std::uint16_t p : {40001, 40002}) {
    use_port(p);
    inject({.flags = ".", .seq = 1, .ack = 1});  // established, not accepted: the accept queue
  }
  use_port(40004);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect_nothing();  // the accept queue is full
  EXPECT_EQ(tcp().counters().listen_overflow, 1U);
  const socket_id a = accept_one(l);
  EXPECT_EQ(tcp().remote_endpoint(a), (tcp_endpoint{peer_ip, 40001}));
  use_port(40005);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1, .port = 40005});
}

// accept() hands out the oldest established connection first (not the oldest SYN).
TEST_F(TcpListen, AcceptReturnsConnectionsInTheOrderTheyWereEstablished) {
  const socket_id l = listen(8080, 8);
  for (const std::uint16_t p : {40001, 40002, 40003}) {
    use_port(p);
    inject({.flags = "S", .seq = 0, .mss = 1460});
    expect({.flags = "S.", .seq = 0, .ack = 1});
  }
  for (const std::uint16_t p : {40002, 40003, 40001}) {
    use_port(p);
    inject({.flags = ".", .seq = 1, .ack = 1});
  }
  EXPECT_NE(events(l) & socket_events::acceptable, 0);
  for (const std::uint16_t p : {40002, 40003, 40001}) {
    EXPECT_EQ(tcp().remote_endpoint(accept_one(l)), (tcp_endpoint{peer_ip, p}));
  }
  socket_id none = 0;
  EXPECT_EQ(tcp().accept(l, none), std::make_error_code(std::errc::resource_unavailable_try_again));
}

// A half-open connection that times out (synack_retries) frees its place in the SYN queue.
TEST_F(TcpListen, ExpiredHalfOpenConnectionFreesItsPlace) {
  cfg_.tcp.synack_retries = 1;  // SYN-ACK at 0 and 1000, dropped at 3000
  cfg_.tcp.syn_queue = 1;
  cfg_.tcp.syn_cookies = false;
  listen(8080, 16);
  use_port(40001);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  use_port(40002);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect_nothing();
  at(3000);
  drain();  // the SYN-ACK retransmission at 1000
  EXPECT_EQ(tcp().connections(), 0U);
  use_port(40003);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1, .port = 40003});
}

// tcp_config::sockets bounds listeners plus connections: a SYN finding no free slot is dropped
// (sockets_exhausted), and open() says too_many_files_open.
TEST_F(TcpListen, SocketSlabExhaustion) {
  cfg_.tcp.sockets = 3;
  listen(8080, 16);
  for (const std::uint16_t p : {40001, 40002}) {
    use_port(p);
    inject({.flags = "S", .seq = 0, .mss = 1460});
    expect({.flags = "S.", .seq = 0, .ack = 1});
  }
  use_port(40003);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect_nothing();
  EXPECT_EQ(tcp().counters().sockets_exhausted, 1U);
  socket_id s = 0;
  EXPECT_EQ(tcp().open(s), std::make_error_code(std::errc::too_many_files_open));
}

}  // namespace tcp_script_time_wait_test
}  // namespace
}  // namespace dpdk_net::stack::script
