// Scripted TCP: data and acknowledgments - delayed ACK, out-of-order data, duplicates, segment
// sizes, the initial window and slow start, Nagle, and the readiness events around them.
// passive_open() ends at t=100 ms; peers without timestamps make full-sized segments 1460 bytes.
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_data_test {

class TcpData : public TcpScript {
 protected:
  /// The segment carries our stream pattern at its offset (send_stream() writes it).
  static void carries_stream(const observed& o) {
    EXPECT_EQ(o.text(), stream_bytes(o.rel_seq - 1, o.len())) << o.str();
  }
};

const peer_syn no_ts{.mss = 1460, .ws = 7, .ts = false};

// RFC 1122 4.2.3.2 / RFC 5681 4.2: an ACK may be delayed, by less than 0.5 s (40 ms here), and
// the delayed-ACK timer sends it; counted in delayed_acks.
TEST_F(TcpData, DelayedAckIsSentWithinFortyMilliseconds) {
  const socket_id c = passive_open();
  inject({.flags = "P.", .seq = 1, .ack = 1, .data = "hello"});
  expect_nothing();  // not at once
  at(140);
  expect({.flags = ".", .seq = 1, .ack = 6});
  EXPECT_EQ(read(c), "hello");
  EXPECT_EQ(tcp().counters().delayed_acks, 1U);
}

// tcp_config::delayed_ack = 0: every segment is acknowledged at once.
TEST_F(TcpData, DelayedAckZeroAcksAtOnce) {
  cfg_.tcp.delayed_ack = 0;
  passive_open();
  inject({.flags = "P.", .seq = 1, .ack = 1, .data = "hello"});
  expect({.flags = ".", .seq = 1, .ack = 6});
}

// RFC 1122 4.2.3.2 / RFC 5681 4.2: at least every second full-sized segment is acknowledged
// without delay.
TEST_F(TcpData, EverySecondFullSizedSegmentIsAcknowledgedAtOnce) {
  passive_open(no_ts);
  inject({.flags = ".", .seq = 1, .ack = 1, .len = 1460});
  expect_nothing();
  inject({.flags = ".", .seq = 1461, .ack = 1, .len = 1460});
  expect({.flags = ".", .seq = 1, .ack = 2921});
  inject({.flags = ".", .seq = 2921, .ack = 1, .len = 1460});
  expect_nothing();
  inject({.flags = ".", .seq = 4381, .ack = 1, .len = 1460});
  expect({.flags = ".", .seq = 1, .ack = 5841});
}

// RFC 5681 4.2 / RFC 9293 3.10.7.4 seventh: an out-of-order segment is acknowledged at once (a
// duplicate ACK for RCV.NXT), and so is the segment that fills the hole; the data is delivered
// in order.
TEST_F(TcpData, OutOfOrderDataAndTheHoleFillerAreAcknowledgedAtOnce) {
  const socket_id c = passive_open(no_ts);
  inject({.flags = ".", .seq = 1461, .ack = 1, .len = 1460});
  expect({.flags = ".", .seq = 1, .ack = 1});
  EXPECT_EQ(tcp().readable_bytes(c), 0U);
  EXPECT_EQ(tcp().counters().out_of_order, 1U);
  inject({.flags = ".", .seq = 1, .ack = 1, .len = 1460});
  expect({.flags = ".", .seq = 1, .ack = 2921});
  EXPECT_EQ(read(c), stream_bytes(0, 2920));
}

// RFC 9293 3.10.7.4 first: a retransmission of data already received is not acceptable and gets
// an ACK at once; it is not delivered twice (spurious_rtx_data). An overlapping segment
// delivers only its new bytes.
TEST_F(TcpData, DuplicateDataIsReAcknowledgedAndOverlapsDeliverOnlyNewBytes) {
  const socket_id c = passive_open();
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "abcdef"});
  at(140);
  expect({.flags = ".", .seq = 1, .ack = 7});
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "abcdef"});
  expect({.flags = ".", .seq = 1, .ack = 7});
  EXPECT_EQ(tcp().counters().spurious_rtx_data, 1U);
  inject({.flags = ".", .seq = 4, .ack = 1, .data = "defghi"});
  at(180);
  expect({.flags = ".", .seq = 1, .ack = 10});
  EXPECT_EQ(read(c), "abcdefghi");
}

// RFC 1122 4.2.3.2: an ACK waiting to be sent rides on the next data segment; no separate ACK.
TEST_F(TcpData, PendingAckRidesOnData) {
  const socket_id c = passive_open();
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "ping"});
  send(c, "pong");
  expect({.flags = ".", .seq = 1, .ack = 5, .data = "pong"});
  at(200);
  expect_nothing();
}

// RFC 6691: the MSS option excludes TCP options, so with timestamps (12 bytes in every segment)
// a segment carries at most MSS - 12 = 1448 bytes.
TEST_F(TcpData, SegmentsCarryMssMinusTimestampOption) {
  const socket_id c = passive_open();
  send_stream(c, 5000);
  for (const std::uint32_t seq : {1U, 1449U, 2897U}) {
    carries_stream(expect({.flags = ".", .seq = seq, .ack = 1, .ts = present, .len = 1448}));
  }
  expect_nothing();  // Nagle: the 656-byte tail waits for an ACK
  at(150);
  inject({.flags = ".", .seq = 1, .ack = 4345});
  carries_stream(expect({.flags = ".", .seq = 4345, .ack = 1, .len = 656}));
}

// RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)) = 14600 for MSS 1460 and 5000 for MSS 500
// (scripts/tcp_expected.py): ten segments before any ACK.
TEST_F(TcpData, InitialWindowIsTenSegments) {
  const socket_id c = passive_open(no_ts);
  send_stream(c, 30000);
  for (std::uint32_t i = 0; i < 10; ++i) {
    carries_stream(expect({.flags = ".", .seq = 1 + i * 1460, .ack = 1, .len = 1460}));
  }
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 14600U);
  EXPECT_EQ(info(c).in_flight, 14600U);
}

TEST_F(TcpData, InitialWindowWithSmallMssIsTenSegments) {
  const socket_id c = passive_open({.mss = 500, .ws = 7, .ts = false});
  send_stream(c, 30000);
  for (std::uint32_t i = 0; i < 10; ++i) {
    expect({.flags = ".", .seq = 1 + i * 500, .ack = 1, .len = 500});
  }
  expect_nothing();
  EXPECT_EQ(info(c).cwnd, 5000U);
}

// RFC 5681 3.1 slow start: cwnd += min(N, SMSS) per ACK; ten ACKs of one segment each take cwnd
// from 14600 to 29200 (scripts/tcp_expected.py), each releasing two segments.
TEST_F(TcpData, SlowStartAddsOneSegmentPerAck) {
  const socket_id c = passive_open(no_ts);
  send_stream(c, 100000);
  EXPECT_EQ(drain().size(), 10U);
  std::uint32_t next = 1 + 10 * 1460;
  for (std::uint32_t i = 1; i <= 10; ++i) {
    at(100 + 100 + i);
    inject({.flags = ".", .seq = 1, .ack = 1 + i * 1460});
    expect({.flags = ".", .seq = next, .len = 1460});
    expect({.flags = ".", .seq = next + 1460, .len = 1460});
    expect_nothing();
    next += 2 * 1460;
  }
  EXPECT_EQ(info(c).cwnd, 29200U);
}

// RFC 3465 2.2 (L = 2 SMSS, our choice over RFC 5681's 1 SMSS, docs/tcp.md): a stretch ACK
// covering four segments grows the window by two segments, not four and not one.
TEST_F(TcpData, SlowStartStretchAckGrowsByAtMostTwoSegments) {
  const socket_id c = passive_open(no_ts);
  send_stream(c, 100000);
  EXPECT_EQ(drain().size(), 10U);
  at(210);
  inject({.flags = ".", .seq = 1, .ack = 1 + 4 * 1460});
  // cwnd 14600 + 2920 = 17520: 12 segments may be in flight, 6 are: 6 new segments go.
  EXPECT_EQ(drain().size(), 6U);
  EXPECT_EQ(info(c).cwnd, 17520U);
}

// RFC 1122 4.2.3.4 / RFC 9293 3.7.4 (Nagle, on by default): while data is unacknowledged, small
// writes wait and are sent together when the ACK arrives.
TEST_F(TcpData, NagleHoldsSmallSegmentsWhileDataIsUnacknowledged) {
  const socket_id c = passive_open();
  send(c, "a");
  expect({.flags = ".", .seq = 1, .data = "a"});
  send(c, "b");
  send(c, "c");
  expect_nothing();
  at(150);
  inject({.flags = ".", .seq = 1, .ack = 2});
  expect({.flags = ".", .seq = 2, .data = "bc"});
}

// Nagle lets full-sized segments go; only the small tail waits for the ACK.
TEST_F(TcpData, NagleSendsFullSegmentsAndHoldsTheTail) {
  const socket_id c = passive_open(no_ts);
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  send_stream(c, 3000);
  expect({.flags = ".", .seq = 101, .len = 1460});
  expect({.flags = ".", .seq = 1561, .len = 1460});
  expect_nothing();  // 80 bytes left, data unacknowledged
  at(150);
  inject({.flags = ".", .seq = 1, .ack = 3021});
  carries_stream(expect({.flags = ".", .seq = 3021, .len = 80}));
}

// tcp_socket_options::no_delay turns Nagle off: every write goes at once.
TEST_F(TcpData, NoDelaySendsSmallSegmentsAtOnce) {
  const socket_id c = passive_open();
  tcp_socket_options o = tcp().options(c);
  o.no_delay = true;
  ASSERT_FALSE(tcp().set_options(c, o));
  send(c, "a");
  expect({.flags = ".", .seq = 1, .data = "a"});
  send(c, "b");
  expect({.flags = ".", .seq = 2, .data = "b"});
}

// A full send buffer takes nothing (try again) and `writable` comes when ACKs free space.
TEST_F(TcpData, WritableWhenAcknowledgmentsFreeSendBuffer) {
  socket_id c = 0;
  ASSERT_FALSE(tcp().open(c));
  tcp_socket_options o;
  o.send_buffer = 4096;  // buffers are set before connect
  ASSERT_FALSE(tcp().set_options(c, o));
  ASSERT_FALSE(tcp().connect(c, tcp_endpoint{peer_ip, 80}, now()));
  use_port(80);
  expect({.flags = "S", .seq = 0});
  inject({.flags = "S.", .seq = 0, .ack = 1, .mss = 1460});
  expect({.flags = ".", .seq = 1, .ack = 1});
  events(c);
  EXPECT_EQ(send_stream(c, 10000), 4096U);
  const io_result r = tcp().send(c, std::as_bytes(std::span("x", 1)));
  EXPECT_EQ(r.bytes, 0U);
  EXPECT_EQ(r.error, std::make_error_code(std::errc::resource_unavailable_try_again));
  expect({.flags = ".", .seq = 1, .len = 1460});
  expect({.flags = ".", .seq = 1461, .len = 1460});
  expect_nothing();  // Nagle holds the 1176-byte tail while data is unacknowledged
  EXPECT_EQ(events(c) & socket_events::writable, 0);
  at(150);  // before the RTO (200 ms: the handshake's sample was 0 ms)
  inject({.flags = ".", .seq = 1, .ack = 2921});
  EXPECT_NE(events(c) & socket_events::writable, 0);
  EXPECT_EQ(tcp().writable_bytes(c), 4096U - 1176U);
  expect({.flags = ".", .seq = 2921, .len = 1176});
}

// `readable` when data arrives; receive() says try-again when there is nothing.
TEST_F(TcpData, ReadableWhenDataArrives) {
  const socket_id c = passive_open();
  events(c);
  std::array<std::byte, 8> buf{};
  EXPECT_EQ(tcp().receive(c, buf).error,
            std::make_error_code(std::errc::resource_unavailable_try_again));
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "x"});
  EXPECT_NE(events(c) & socket_events::readable, 0);
  EXPECT_EQ(tcp().readable_bytes(c), 1U);
}

// Issue 9 / RFC 791: a TCP segment that arrives in IP fragments (in order or not) is reassembled
// and delivered like any other - here a single-buffer datagram and, with a 1400-byte segment, one
// that spans two buffers of the reassembly (made contiguous for TCP).
TEST_F(TcpData, FragmentedSegmentsAreReassembledAndDelivered) {
  const socket_id c = passive_open();
  inject_fragmented({.flags = ".", .seq = 1, .ack = 1, .data = "fragmented-payload-01234567"}, 24);
  EXPECT_EQ(read(c), "fragmented-payload-01234567");
  at(200);  // the delayed ACK
  expect({.flags = ".", .ack = 28});
  const std::string big(1400, 'z');
  inject_fragmented({.flags = "P.", .seq = 28, .ack = 1, .data = big}, 704, /*reversed=*/true);
  at(200);
  EXPECT_EQ(read(c), big);
  EXPECT_GE(st().counters().reassembly.reassembled, 2U);
}

// The API refuses what it must: stale and unknown ids (bad_file_descriptor), operations in the
// wrong state, bad remotes, busy ports (tcp.hpp's documented errors).
TEST_F(TcpData, ApiErrors) {
  const auto err = [](std::errc e) { return std::make_error_code(e); };
  socket_id s = 0;
  ASSERT_FALSE(tcp().open(s));
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(tcp().send(s, buf).error, err(std::errc::not_connected));
  EXPECT_EQ(tcp().receive(s, buf).error, err(std::errc::not_connected));
  socket_id none = 0;
  EXPECT_EQ(tcp().accept(s, none), err(std::errc::invalid_argument));
  EXPECT_EQ(tcp().connect(s, tcp_endpoint{ipv4_address{}, 80}, now()),
            err(std::errc::invalid_argument));
  EXPECT_EQ(tcp().connect(s, tcp_endpoint{peer_ip, 0}, now()), err(std::errc::invalid_argument));
  EXPECT_EQ(tcp().connect(s, tcp_endpoint{our_ip, 80}, now()), err(std::errc::invalid_argument));
  ASSERT_FALSE(tcp().bind(s, 7000));
  socket_id t = 0;
  ASSERT_FALSE(tcp().open(t));
  EXPECT_EQ(tcp().bind(t, 7000), err(std::errc::address_in_use));
  EXPECT_EQ(tcp().bind(t, 7001, peer_ip), err(std::errc::address_not_available));
  ASSERT_FALSE(tcp().close(t, now()));
  ASSERT_FALSE(tcp().connect(s, tcp_endpoint{peer_ip, 80}, now()));
  EXPECT_EQ(tcp().connect(s, tcp_endpoint{peer_ip, 80}, now()),
            err(std::errc::connection_already_in_progress));
  EXPECT_EQ(tcp().listen(s, 4), err(std::errc::invalid_argument));
  ASSERT_FALSE(tcp().close(s, now()));
  // Stale ids: refused, never confused with the slot's next user.
  socket_id u = 0;
  ASSERT_FALSE(tcp().open(u));
  for (const socket_id stale : {s, t, socket_id{123456}}) {
    EXPECT_EQ(tcp().send(stale, buf).error, err(std::errc::bad_file_descriptor));
    EXPECT_EQ(tcp().receive(stale, buf).error, err(std::errc::bad_file_descriptor));
    EXPECT_EQ(tcp().close(stale, now()), err(std::errc::bad_file_descriptor));
    EXPECT_EQ(tcp().bind(stale, 9000), err(std::errc::bad_file_descriptor));
    EXPECT_EQ(tcp().listen(stale, 1), err(std::errc::bad_file_descriptor));
    EXPECT_EQ(tcp().shutdown(stale, shutdown_type::both, now()),
              err(std::errc::bad_file_descriptor));
    EXPECT_FALSE(tcp().info(stale).has_value());
  }
  const socket_id l = listen(8080);
  EXPECT_EQ(tcp().accept(l, none), err(std::errc::resource_unavailable_try_again));
  // A connected socket: connecting again is already_connected.
  drain();  // the SYN of the closed attempt
  const socket_id c = active_open();
  EXPECT_EQ(tcp().connect(c, tcp_endpoint{peer_ip, 80}, now()), err(std::errc::already_connected));
}

}  // namespace tcp_script_data_test
}  // namespace
}  // namespace dpdk_net::stack::script
