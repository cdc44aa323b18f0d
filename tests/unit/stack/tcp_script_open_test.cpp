// Scripted TCP: opening connections (active, passive, simultaneous), SYN and SYN-ACK retries,
// segments for closed ports and listeners, and SYN-SENT's answers (RFC 9293 3.10.7.1-3).
// Expected timings come from scripts/tcp_expected.py (RFC 6298), never from the engine.
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_open_test {

class TcpOpen : public TcpScript {};

// RFC 9293 3.10.7.2 (LISTEN gets a SYN): SYN-ACK <SEQ=ISS><ACK=RCV.NXT>. RFC 6691: our MSS is
// MTU - 40 = 1460. RFC 7323 2.3: shift 3 for the 256 KiB receive buffer (262144 >> 3 = 32768 <=
// 65535, >> 2 = 65536 is not); 2.2: the window of a SYN-ACK is never scaled. RFC 7323 3.2: the
// SYN's TSval is echoed.
TEST_F(TcpOpen, PassiveOpenAnswersSynWithSynAckAndOptions) {
  const socket_id l = listen();
  inject({.flags = "S", .seq = 0, .win = 65535, .mss = 1460, .ws = 7, .ts = tsopt(777, 0)});
  expect({.flags = "S.",
          .seq = 0,
          .ack = 1,
          .win = 65535,
          .mss = 1460,
          .ws = 3,
          .ts = present,
          .tsecr = 777});
  EXPECT_EQ(events(l) & socket_events::acceptable, 0);  // not before the handshake completes
  at(100);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  EXPECT_NE(events(l) & socket_events::acceptable, 0);
  const socket_id c = accept_one(l);
  const tcp_info i = info(c);
  EXPECT_EQ(i.state, tcp_state::established);
  EXPECT_EQ(i.send_scale, 7);
  EXPECT_EQ(i.receive_scale, 3);
  EXPECT_TRUE(i.timestamps);
  // RFC 6691: with the 12-byte timestamps option in every segment, data is MSS - 12.
  EXPECT_EQ(i.mss, 1448U);
  EXPECT_EQ(tcp().remote_endpoint(c), (tcp_endpoint{peer_ip, 40000}));
  EXPECT_EQ(tcp().local_endpoint(c), (tcp_endpoint{our_ip, 8080}));
  EXPECT_EQ(tcp().counters().passive_opens, 1U);
}

// RFC 7323 1.3/2.2/3.2: window scale and timestamps are used only if both SYNs carry them, so a
// SYN-ACK answering a SYN without them has neither; MSS is always sent (RFC 9293 3.7.1).
TEST_F(TcpOpen, SynAckEchoesOnlyTheOptionsTheSynHad) {
  const socket_id l = listen();
  inject({.flags = "S", .seq = 0, .win = 65535, .mss = 1000});
  expect(
      {.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460, .ws = absent, .ts = absent});
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 65535});
  const socket_id c = accept_one(l);
  const tcp_info i = info(c);
  EXPECT_EQ(i.send_scale, 0);
  EXPECT_EQ(i.receive_scale, 0);
  EXPECT_FALSE(i.timestamps);
  EXPECT_EQ(i.mss, 1000U);
  // The peer's MSS bounds our segments; no options in data segments.
  send_stream(c, 2500);
  expect({.flags = ".", .seq = 1, .ack = 1, .win = 65535, .ts = absent, .len = 1000});
  expect({.flags = ".", .seq = 1001, .ack = 1, .len = 1000});
  expect_nothing();  // Nagle: the 500-byte tail waits for an ACK
  inject({.flags = ".", .seq = 1, .ack = 2001});
  expect({.flags = ".", .seq = 2001, .ack = 1, .len = 500});
}

// RFC 9293 3.10.7.3 + 3.5: SYN <SEQ=ISS> with our options; the SYN-ACK acknowledging it
// completes the connection, our ACK is <SEQ=ISS+1><ACK=RCV.NXT>, `connected` is signalled.
TEST_F(TcpOpen, ActiveOpenSendsSynAndCompletesOnSynAck) {
  const socket_id c = connect(80);
  const observed syn = expect(
      {.flags = "S", .seq = 0, .win = 65535, .mss = 1460, .ws = 3, .ts = present, .tsecr = 0});
  // RFC 6056: an ephemeral port from the configured range.
  EXPECT_GE(syn.tcp.src_port, cfg_.ephemeral_first);
  EXPECT_EQ(state(c), tcp_state::syn_sent);
  EXPECT_EQ(events(c) & socket_events::connected, 0);
  at(50);
  inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1400, .ws = 2, .ts = present});
  expect({.flags = ".", .seq = 1, .ack = 1, .tsecr = peer_tsval()});
  EXPECT_NE(events(c) & socket_events::connected, 0);
  const tcp_info i = info(c);
  EXPECT_EQ(i.state, tcp_state::established);
  EXPECT_EQ(i.send_scale, 2);
  EXPECT_EQ(i.receive_scale, 3);
  EXPECT_EQ(i.mss, 1388U);  // 1400 - 12 (timestamps)
  EXPECT_EQ(tcp().counters().active_opens, 1U);
}

// RFC 7323 2.2: the SYN offered a shift but the SYN-ACK did not: no scaling either way, so our
// window field is the window itself (at most 65535).
TEST_F(TcpOpen, NoWindowScalingUnlessBothSynsCarryIt) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0, .ws = 3});
  inject({.flags = "S.", .seq = 0, .ack = 1, .win = 5000, .mss = 1460});
  expect({.flags = ".", .seq = 1, .ack = 1, .win = 65535, .ts = absent});
  const tcp_info i = info(c);
  EXPECT_EQ(i.send_scale, 0);
  EXPECT_EQ(i.receive_scale, 0);
  EXPECT_EQ(i.send_window, 5000U);
  EXPECT_FALSE(i.timestamps);
}

// RFC 9293 3.5 figure 8 (simultaneous open): SYN-SENT gets a SYN -> SYN-RECEIVED, SYN-ACK
// <SEQ=ISS><ACK=RCV.NXT>; the peer's SYN-ACK acknowledging our SYN then makes it ESTABLISHED
// (Linux passes this SYN-ACK in SYN-RECV the same way). No reset anywhere.
TEST_F(TcpOpen, SimultaneousOpen) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  at(10);
  inject({.flags = "S", .seq = 0, .win = 65535, .mss = 1460, .ws = 7, .ts = present});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  EXPECT_EQ(state(c), tcp_state::syn_received);
  at(20);
  inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460, .ws = 7, .ts = present});
  for (const observed& o : drain()) {
    EXPECT_FALSE(o.has(wire::tcp_flag::rst)) << o.str();
    EXPECT_FALSE(o.has(wire::tcp_flag::syn)) << o.str();
  }
  EXPECT_EQ(state(c), tcp_state::established);
  EXPECT_NE(events(c) & socket_events::connected, 0);
  // Data flows both ways afterwards.
  send(c, "hello");
  expect({.flags = ".", .seq = 1, .ack = 1, .data = "hello"});
  inject({.flags = ".", .seq = 1, .ack = 6, .data = "world"});
  at(60);
  EXPECT_EQ(read(c), "world");
}

// Issue 9: a retransmitted SYN in SYN-RECEIVED gets the same SYN-ACK (same ISN), not a second
// connection or a reset.
TEST_F(TcpOpen, RetransmittedSynGetsTheSameSynAck) {
  listen();
  inject({.flags = "S", .seq = 0, .mss = 1460, .ts = present});
  const observed first = expect({.flags = "S.", .seq = 0, .ack = 1});
  at(300);
  inject({.flags = "S", .seq = 0, .mss = 1460, .ts = present});
  const observed again = expect({.flags = "S.", .seq = 0, .ack = 1});
  EXPECT_EQ(again.tcp.seq, first.tcp.seq);
  EXPECT_EQ(tcp().connections(), 1U);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  EXPECT_EQ(tcp().counters().established, 1U);
}

// RFC 6298 2.1/5.5 and tcp_config::synack_retries: SYN-ACK retransmitted after 1 s, then 2 s
// (scripts/tcp_expected.py: [1000, 3000], dropped at 7000). The half-open connection is then
// gone: its ACK arriving late meets the listener, which answers <SEQ=SEG.ACK><CTL=RST>
// (RFC 9293 3.10.7.2).
TEST_F(TcpOpen, SynAckRetransmittedWithBackoffThenHalfOpenDropped) {
  cfg_.tcp.synack_retries = 2;
  listen();
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  at(999);
  expect_nothing();
  at(1000);
  expect({.flags = "S.", .seq = 0, .ack = 1});
  at(2999);
  expect_nothing();
  at(3000);
  expect({.flags = "S.", .seq = 0, .ack = 1});
  at(6999);
  expect_nothing();
  EXPECT_EQ(tcp().connections(), 1U);
  at(7000);
  expect_nothing();  // the half-open connection is dropped silently
  EXPECT_EQ(tcp().connections(), 0U);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect({.flags = "R", .seq = 1});
}

// RFC 6298 2.1/5.5 and tcp_config::syn_retries: SYN at 0, retransmitted at 1000, 3000, 7000;
// connect fails with timed_out at 15000 (scripts/tcp_expected.py), reported by `error`.
TEST_F(TcpOpen, SynRetransmittedWithBackoffThenConnectTimesOut) {
  cfg_.tcp.syn_retries = 3;
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  for (const std::uint64_t t : {1000U, 3000U, 7000U}) {
    at(t - 1);
    expect_nothing();
    at(t);
    expect({.flags = "S", .seq = 0, .mss = 1460});
  }
  at(14999);
  expect_nothing();
  EXPECT_FALSE(tcp().error(c));
  at(15000);
  expect_nothing();  // nothing to reset: the peer never answered
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::timed_out));
  EXPECT_NE(events(c) & socket_events::error, 0);
  EXPECT_EQ(tcp().counters().connect_failed, 1U);
  EXPECT_EQ(tcp().connections(), 0U);
}

// RFC 9293 3.10.7.3 (SYN-SENT, first): an ACK outside ISS < SEG.ACK <= SND.NXT gets
// <SEQ=SEG.ACK><CTL=RST> (no ACK bit) and is dropped; the connection waits for a good SYN-ACK.
TEST_F(TcpOpen, SynSentAnswersUnacceptableAckWithReset) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  inject({.flags = "S.", .seq = 0, .ack = 5, .mss = 1460});
  expect({.flags = "R", .seq = 5});
  EXPECT_EQ(state(c), tcp_state::syn_sent);
  inject({.flags = "S.", .seq = 0, .ack = 1, .mss = 1460});
  expect({.flags = ".", .seq = 1, .ack = 1});
  EXPECT_EQ(state(c), tcp_state::established);
}

// RFC 9293 3.10.7.3 (SYN-SENT, second): RST with an acceptable ACK: "connection reset" -> the
// connect fails (connection_refused, as a socket API reports it), nothing is sent.
TEST_F(TcpOpen, SynSentResetWithAcceptableAckRefusesConnect) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  inject({.flags = "R.", .seq = 0, .ack = 1, .win = 0});
  expect_nothing();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::connection_refused));
  EXPECT_NE(events(c) & socket_events::error, 0);
  const io_result r = tcp().send(c, std::as_bytes(std::span("x", 1)));
  EXPECT_EQ(r.error, std::make_error_code(std::errc::connection_refused));
}

// RFC 9293 3.10.7.3: a RST whose ACK is unacceptable, or a RST without ACK, is dropped; and
// (fifth) a segment with neither SYN nor RST is dropped.
TEST_F(TcpOpen, SynSentIgnoresResetWithoutAcceptableAckAndPlainAcks) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  inject({.flags = "R.", .seq = 0, .ack = 7});
  inject({.flags = "R", .seq = 0});
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  EXPECT_EQ(state(c), tcp_state::syn_sent);
  EXPECT_FALSE(tcp().error(c));
  inject({.flags = "S.", .seq = 0, .ack = 1});
  expect({.flags = ".", .seq = 1, .ack = 1});
}

// RFC 9293 3.10.7.1 (CLOSED): no ACK -> <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> (SYN and FIN
// count in SEG.LEN); ACK -> <SEQ=SEG.ACK><CTL=RST>; a RST is discarded. Nothing listens here.
TEST_F(TcpOpen, ClosedPortAnswersPerRfc9293) {
  st();
  use_port(41000);
  inject({.flags = "S", .seq = 0});
  expect({.flags = "R.", .seq = 0, .ack = 1});  // our ISN is 0 here: seq is absolute
  inject({.flags = "S", .seq = 100, .data = "0123456789"});
  expect({.flags = "R.", .seq = 0, .ack = 111});  // 100 + SYN + 10
  inject({.flags = "F", .seq = 200, .data = "0123456789"});
  expect({.flags = "R.", .seq = 0, .ack = 211});  // 200 + 10 + FIN
  inject({.flags = ".", .seq = 5, .ack = 4242});
  expect({.flags = "R", .seq = 4242});
  inject({.flags = "R", .seq = 9});
  inject({.flags = "R.", .seq = 9, .ack = 9});
  expect_nothing();
  EXPECT_GE(tcp().counters().no_socket, 4U);  // at least the four answered
}

// RFC 9293 3.10.7.2 (LISTEN): a RST is ignored; any ACK (with or without SYN) gets
// <SEQ=SEG.ACK><CTL=RST>; a segment without SYN, RST or ACK is dropped.
TEST_F(TcpOpen, ListenerAnswersPerRfc9293) {
  const socket_id l = listen();
  inject({.flags = "R", .seq = 0});
  expect_nothing();
  inject({.flags = ".", .seq = 0, .ack = 77});
  expect({.flags = "R", .seq = 77});
  inject({.flags = "S.", .seq = 0, .ack = 99});
  expect({.flags = "R", .seq = 99});
  inject({.flags = "F", .seq = 0});
  inject({.flags = "P", .seq = 0, .data = "x"});
  expect_nothing();
  EXPECT_EQ(tcp().connections(), 0U);
  EXPECT_EQ(state(l), tcp_state::listen);
}

// Data written in SYN-SENT is queued (tcp.hpp: "data sent in SYN-SENT is queued") and goes out
// once the connection is established.
TEST_F(TcpOpen, DataWrittenInSynSentIsSentAfterTheHandshake) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  EXPECT_EQ(send(c, "early"), 5U);
  expect_nothing();  // not in the SYN
  inject({.flags = "S.", .seq = 0, .ack = 1, .mss = 1460});
  std::string data;
  for (const observed& o : drain()) {
    EXPECT_EQ(o.rel_ack, 1U);
    EXPECT_FALSE(o.has(wire::tcp_flag::syn));
    data += o.text();
  }
  EXPECT_EQ(data, "early");
}

}  // namespace tcp_script_open_test
}  // namespace
}  // namespace dpdk_net::stack::script
