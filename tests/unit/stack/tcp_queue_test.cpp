// The SYN queue, the accept queue and RFC 4987 SYN cookies (docs/tcp.md "Queues and SYN
// cookies"), scripted on the packetdrill-style fixture. tcp_queue_cookie_test.cpp has two stacks
// sharing a secret (the multi-core property) and the encoding's properties. Expected cookie
// values come from scripts/syn_cookie_expected.py (the documented layout, SipHash written out in
// Python), never from our encoder.
#include <set>

#include "tcp_raw_peer.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_queue_test {

namespace flag = wire::tcp_flag;

class TcpQueue : public TcpScript {
 protected:
  /// A SYN from `port` with SACK-permitted (which `seg` cannot say), through raw frames.
  void raw_syn(std::uint16_t port, std::optional<std::uint8_t> ws, bool sack,
               std::optional<std::uint32_t> tsval) {
    raw_.send(st(), syn_header(port, peer_isn_of(port), 1460, ws, sack, tsval), {}, now());
  }
  /// SYN, SYN-ACK, ACK on `port` (no timestamps); returns the SYN-ACK.
  observed handshake(std::uint16_t port, where w = where::current()) {
    use_port(port);
    inject({.flags = "S", .seq = 0, .mss = 1460}, w);
    const observed sa = expect({.flags = "S.", .seq = 0, .ack = 1}, w);
    inject({.flags = ".", .seq = 1, .ack = 1}, w);
    return sa;
  }
  raw_peer raw_;
};

// The SYN queue full (syn_queue 1): the next SYN gets a cookie SYN-ACK and no state. Without
// timestamps it offers MSS only (no window scale, no SACK-permitted: there is nowhere to keep
// them, as in Linux); the peer's MSS 1000 is rounded down to the table's 536 (index 1 in the
// ISN's low bits). A retransmitted SYN gets the same cookie. The returning ACK, carrying data,
// makes an established connection that accept() returns and data flows both ways.
TEST_F(TcpQueue, SynQueueFullAnswersWithACookieAndItsAckMakesTheConnection) {
  cfg_.tcp.syn_queue = 1;
  const socket_id l = listen(8080, 16);
  use_port(40001);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  EXPECT_EQ(tcp().connections(), 1U);
  use_port(40002);
  inject({.flags = "S", .seq = 0, .win = 65535, .mss = 1000, .ws = 7});
  const observed sa = expect(
      {.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460, .ws = absent, .ts = absent});
  EXPECT_FALSE(sa.tcp.options.sack_permitted);
  EXPECT_EQ(sa.tcp.seq & 7U, 1U) << "the MSS index of 536";
  EXPECT_EQ(tcp().connections(), 1U) << "a cookie keeps no state";
  EXPECT_EQ(tcp().counters().syn_queue_overflow, 1U);
  EXPECT_EQ(tcp().counters().syn_cookies_sent, 1U);
  at(300);
  inject({.flags = "S", .seq = 0, .win = 65535, .mss = 1000, .ws = 7});
  EXPECT_EQ(expect({.flags = "S.", .seq = 0, .ack = 1}).tcp.seq, sa.tcp.seq) << "same cookie";
  at(400);
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 65535, .data = "hello"});
  EXPECT_EQ(tcp().counters().syn_cookies_accepted, 1U);
  EXPECT_EQ(tcp().connections(), 2U);
  EXPECT_NE(events(l) & socket_events::acceptable, 0);
  const socket_id c = accept_one(l);
  EXPECT_EQ(tcp().remote_endpoint(c), (tcp_endpoint{peer_ip, 40002}));
  const tcp_info i = info(c);
  EXPECT_EQ(i.state, tcp_state::established);
  EXPECT_EQ(i.mss, 536U);
  EXPECT_EQ(i.send_scale, 0);
  EXPECT_EQ(i.receive_scale, 0);
  EXPECT_FALSE(i.timestamps);
  EXPECT_FALSE(i.sack);
  EXPECT_EQ(read(c), "hello");
  send_stream(c, 1000);
  expect({.flags = ".", .seq = 1, .ack = 6, .len = 536});
  expect_nothing();  // Nagle holds the 464-byte tail until the ACK
  inject({.flags = ".", .seq = 6, .ack = 537});
  expect({.flags = ".", .seq = 537, .ack = 6, .len = 464});
  EXPECT_EQ(tcp().counters().syn_cookies_rejected, 0U);
}

// With timestamps the cookie keeps the peer's window scale and SACK-permitted in the TSval's
// low 6 bits (ws | sack << 4; 15: no scaling), and the connection made from the ACK has them:
// shift 7 both ways' worth (ours 3 for the 256 KiB buffer), SACK, MSS 1460 - 12.
TEST_F(TcpQueue, CookieKeepsWindowScaleAndSackInTheTimestamp) {
  cfg_.tcp.syn_queue = 0;  // every SYN gets a cookie
  const socket_id l = listen();
  struct variant {
    std::uint16_t port;
    std::optional<std::uint8_t> ws;
    bool sack;
    std::uint32_t bits;
  };
  for (const variant v :
       {variant{40001, 7, true, 7 | 16}, variant{40002, std::nullopt, false, 15},
        variant{40003, std::nullopt, true, 15 | 16}, variant{40004, 14, false, 14}}) {
    SCOPED_TRACE(v.port);
    use_port(v.port);
    raw_syn(v.port, v.ws, v.sack, peer_tsval());
    seg want{.flags = "S.",
             .seq = 0,
             .ack = 1,
             .win = 65535,
             .mss = 1460,
             .ts = present,
             .tsecr = peer_tsval()};
    if (v.ws) {
      want.ws = 3;
    } else {
      want.ws = absent;
    }
    const observed sa = expect(want);
    EXPECT_EQ(sa.tcp.options.sack_permitted, v.sack);
    EXPECT_EQ(sa.tsval() & 63U, v.bits);
    EXPECT_EQ(tcp().connections(), v.port - 40001U);
    at(now_ms() + 50);
    inject({.flags = ".", .seq = 1, .ack = 1, .win = 1000, .ts = tsopt(peer_tsval(), sa.tsval())});
    const socket_id c = accept_one(l);
    const tcp_info i = info(c);
    EXPECT_EQ(i.state, tcp_state::established);
    EXPECT_TRUE(i.timestamps);
    EXPECT_EQ(i.sack, v.sack);
    EXPECT_EQ(i.send_scale, v.ws.value_or(0));
    EXPECT_EQ(i.receive_scale, v.ws ? 3 : 0);
    EXPECT_EQ(i.send_window, 1000U << v.ws.value_or(0));
    EXPECT_EQ(i.mss, 1448U);
    // Data both ways; our TSvals go on from the cookie's (never backwards).
    inject({.flags = ".",
            .seq = 1,
            .ack = 1,
            .win = 1000,
            .ts = tsopt(peer_tsval(), sa.tsval()),
            .data = "ping"});
    EXPECT_EQ(read(c), "ping");
    send(c, "pong");
    const observed d =
        expect({.flags = ".", .seq = 1, .ack = 5, .tsecr = peer_tsval(), .data = "pong"});
    EXPECT_FALSE(detail::seq_after(sa.tsval(), d.tsval()));
  }
  EXPECT_EQ(tcp().counters().syn_cookies_accepted, 4U);
}

// The cookie and the TSval of one SYN, and the next period's cookie, as
// scripts/syn_cookie_expected.py computes them from the documented layout (secret {0x5eed,
// 0x7c9}, 198.18.0.2:40000 -> 198.18.0.1:8080, peer ISN 1000000, now 1 s, period 64 s).
TEST_F(TcpQueue, CookieMatchesAnIndependentComputation) {
  cfg_.tcp.syn_queue = 0;
  listen();
  use_port(40000);
  inject({.flags = "S", .seq = 0, .mss = 1460, .ws = 7, .ts = tsopt(777, 0)});
  const observed sa = expect({.flags = "S.", .ack = 1, .tsecr = 777});
  EXPECT_EQ(sa.tcp.seq, 0x1b82aabeU);
  EXPECT_EQ(sa.tsval(), 0x37cf2147U);
  use_port(40001);
  inject({.flags = "S", .seq = 0, .mss = 1000});
  EXPECT_EQ(expect({.flags = "S.", .ack = 1}).tcp.seq, 0x57127861U);
  at(64000);  // now 65 s: the next period
  use_port(40000);
  inject({.flags = "S", .seq = 0, .mss = 1460, .ws = 7, .ts = tsopt(777, 0)});
  EXPECT_EQ(expect({.flags = "S.", .ack = 1}).tcp.seq, 0xb669d8c6U);
}

// An ACK that reaches the listener with no valid cookie gets <SEQ=SEG.ACK><CTL=RST> and is
// counted (Linux answers a failed cookie with a RST too): a blind guess, the right cookie from
// another port (the tuple is bound), with another peer ISN, or with the MSS bits changed (the
// index is authenticated). The true ACK still works afterwards.
TEST_F(TcpQueue, ForgedOrMismatchedAcksAreRejectedWithAReset) {
  cfg_.tcp.syn_queue = 0;
  listen();
  use_port(40000);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  const std::uint32_t cookie = expect({.flags = "S.", .ack = 1}).tcp.seq;
  inject({.flags = ".", .seq = 1, .ack = 1000});
  expect({.flags = "R", .seq = 1000});
  inject({.flags = ".", .seq = 2, .ack = 1});
  expect({.flags = "R", .seq = 1});
  const std::uint32_t other_mss = ((cookie ^ 1U) + 1U) - cookie;  // relative to our ISN
  inject({.flags = ".", .seq = 1, .ack = other_mss});
  expect({.flags = "R", .seq = other_mss});
  // Port 40001 never saw a SYN-ACK: its relative numbers are absolute.
  inject({.flags = ".", .seq = 1, .ack = cookie + 1, .port = 40001});
  const std::vector<observed> rst = drain();
  ASSERT_EQ(rst.size(), 1U);
  EXPECT_TRUE(rst[0].has(flag::rst));
  EXPECT_EQ(rst[0].tcp.seq, cookie + 1);
  EXPECT_EQ(rst[0].tcp.dst_port, 40001);
  EXPECT_EQ(tcp().counters().syn_cookies_rejected, 4U);
  EXPECT_EQ(tcp().connections(), 0U);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  EXPECT_EQ(tcp().counters().syn_cookies_accepted, 1U);
  EXPECT_EQ(tcp().connections(), 1U);
}

// Keys rotate every syn_cookie_period (64 s): a cookie from the previous period validates, one
// from two periods ago does not. Periods are now / 64 s, and the script's clock starts at 1 s.
TEST_F(TcpQueue, KeysRotateThePreviousPeriodValidatesTwoAgoDoesNot) {
  cfg_.tcp.syn_queue = 0;
  listen();
  for (const std::uint16_t p : {40001, 40002}) {  // now 1 s: period 0
    use_port(p);
    inject({.flags = "S", .seq = 0, .mss = 1460});
    expect({.flags = "S.", .ack = 1});
  }
  at(126999);  // now 127.999 s: period 1
  use_port(40003);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .ack = 1});
  use_port(40001);
  inject({.flags = ".", .seq = 1, .ack = 1});  // period 0's cookie in period 1
  expect_nothing();
  EXPECT_EQ(tcp().connections(), 1U);
  at(127000);  // now 128 s: period 2
  use_port(40002);
  inject({.flags = ".", .seq = 1, .ack = 1});  // period 0's cookie in period 2
  expect({.flags = "R", .seq = 1});
  use_port(40003);
  inject({.flags = ".", .seq = 1, .ack = 1});  // period 1's, 1 ms old
  expect_nothing();
  EXPECT_EQ(tcp().connections(), 2U);
  EXPECT_EQ(tcp().counters().syn_cookies_accepted, 2U);
  EXPECT_EQ(tcp().counters().syn_cookies_rejected, 1U);
}

// The accept queue (backlog 1) full: the final ACK of a half-open child is dropped, as Linux
// does (no RST; counted), the child stays half-open and its SYN-ACK is retransmitted at 1 s;
// new SYNs are dropped (listen_overflow). Once the application accepts, the peer's answer to
// the retransmission completes the handshake. The same for a cookie: its ACK is dropped (no
// state, no RST), and the peer's later data segment carries the same cookie.
TEST_F(TcpQueue, AcceptQueueFullDropsTheFinalAckAndTheHandshakeCompletesLater) {
  cfg_.tcp.syn_queue = 2;
  const socket_id l = listen(8080, 1);
  for (const std::uint16_t p : {40001, 40002, 40003}) {  // two children, then a cookie
    use_port(p);
    inject({.flags = "S", .seq = 0, .mss = 1460});
    expect({.flags = "S.", .seq = 0, .ack = 1});
  }
  EXPECT_EQ(tcp().counters().syn_cookies_sent, 1U);
  use_port(40001);
  inject({.flags = ".", .seq = 1, .ack = 1});
  use_port(40002);
  inject({.flags = ".", .seq = 1, .ack = 1});
  use_port(40003);
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "late"});
  expect_nothing();
  EXPECT_EQ(tcp().counters().accept_queue_overflow, 2U);
  EXPECT_EQ(tcp().counters().syn_cookies_accepted, 0U);
  EXPECT_EQ(tcp().connections(), 2U);  // 40001 queued, 40002 half-open; 40003 nothing
  use_port(40004);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect_nothing();
  EXPECT_EQ(tcp().counters().listen_overflow, 1U);
  at(1000);
  expect({.flags = "S.", .seq = 0, .ack = 1, .port = 40002});
  EXPECT_EQ(tcp().remote_endpoint(accept_one(l)), (tcp_endpoint{peer_ip, 40001}));
  use_port(40002);
  inject({.flags = ".", .seq = 1, .ack = 1});
  EXPECT_EQ(tcp().remote_endpoint(accept_one(l)), (tcp_endpoint{peer_ip, 40002}));
  use_port(40003);
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "late"});
  const socket_id c = accept_one(l);
  EXPECT_EQ(tcp().remote_endpoint(c), (tcp_endpoint{peer_ip, 40003}));
  EXPECT_EQ(read(c), "late");
  EXPECT_EQ(tcp().counters().syn_cookies_accepted, 1U);
}

// A flood of 2000 spoofed SYNs that never complete: the SYN queue holds 8 children, the rest
// are answered with cookies and keep nothing; a legitimate client completes its handshake (by
// cookie) and exchanges data in the middle of it. After the SYN-ACK retries the children are
// gone: only the real connection is left.
TEST_F(TcpQueue, SynFloodKeepsTheSynQueueBoundedWhileARealClientConnects) {
  cfg_.tcp.syn_queue = 8;
  cfg_.tcp.synack_retries = 2;
  const socket_id l = listen(8080, 4);
  std::size_t max_connections = 0;
  const auto flood = [&](std::uint16_t from, std::uint16_t count) {
    for (std::uint16_t i = 0; i < count; ++i) {
      inject({.flags = "S", .seq = 0, .mss = 1460, .port = static_cast<std::uint16_t>(from + i)});
      max_connections = std::max(max_connections, tcp().connections());
      if (i % 100 == 99) {
        (void)drain();  // the event loop drains between bursts
      }
    }
    (void)drain();
  };
  flood(20000, 1000);
  const observed sa = handshake(40000);
  EXPECT_EQ(sa.tcp.seq & 7U, 6U) << "a cookie (MSS index of 1460)";
  const socket_id c = accept_one(l);
  flood(21000, 1000);
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "real"});
  EXPECT_EQ(read(c), "real");
  send(c, "reply");
  expect({.flags = ".", .seq = 1, .ack = 5, .data = "reply"});
  EXPECT_LE(max_connections, 9U);
  EXPECT_EQ(tcp().counters().syn_queue_overflow, 2000U - 8U + 1U);
  EXPECT_EQ(tcp().counters().syn_cookies_sent, 2000U - 8U + 1U);
  at(10000);  // SYN-ACKs at 0, 1 s, 3 s; the children go at 7 s
  (void)drain();
  EXPECT_EQ(tcp().connections(), 1U);
  EXPECT_EQ(state(c), tcp_state::established);
}

// An application that never accepts: handshakes keep completing (children and cookies), the
// accept queue stays at its backlog, the SYN queue at syn_queue, and everything past them is
// dropped and counted; accept() then hands out exactly the backlog.
TEST_F(TcpQueue, AnAcceptQueueTheApplicationNeverDrainsStaysBounded) {
  cfg_.tcp.syn_queue = 4;
  const socket_id l = listen(8080, 4);
  std::size_t max_connections = 0;
  for (std::uint16_t round = 0; round < 20; ++round) {
    const auto base = static_cast<std::uint16_t>(30000 + round * 10);
    for (std::uint16_t i = 0; i < 10; ++i) {
      inject({.flags = "S", .seq = 0, .mss = 1460, .port = static_cast<std::uint16_t>(base + i)});
    }
    (void)drain();
    for (std::uint16_t i = 0; i < 10; ++i) {
      inject({.flags = ".", .seq = 1, .ack = 1, .port = static_cast<std::uint16_t>(base + i)});
    }
    (void)drain();
    max_connections = std::max(max_connections, tcp().connections());
  }
  EXPECT_LE(max_connections, 8U);
  const tcp_counters& k = tcp().counters();
  EXPECT_GT(k.listen_overflow, 0U);
  EXPECT_GT(k.accept_queue_overflow, 0U);
  EXPECT_GT(k.syn_cookies_sent, 0U);
  for (int i = 0; i < 4; ++i) {
    (void)accept_one(l);
  }
  socket_id none = 0;
  EXPECT_EQ(tcp().accept(l, none), std::make_error_code(std::errc::resource_unavailable_try_again));
}

// Closing a listener frees every child: the queued ones (established, never accepted) get a RST
// <SEQ=SND.NXT>, the half-open ones go silently (both as Linux), nothing is retransmitted
// afterwards, and a late ACK from a half-open peer meets a closed port. A cookie SYN-ACK still
// owed when the listener closes is not sent.
TEST_F(TcpQueue, ClosingAListenerFreesHalfOpenAndQueuedChildren) {
  cfg_.tcp.syn_queue = 2;
  const socket_id l = listen(8080, 8);
  for (const std::uint16_t p : {40001, 40002, 40003}) {
    (void)handshake(p);
  }
  for (const std::uint16_t p : {40004, 40005}) {
    use_port(p);
    inject({.flags = "S", .seq = 0, .mss = 1460});
    expect({.flags = "S.", .seq = 0, .ack = 1});
  }
  use_port(40006);
  inject({.flags = "S", .seq = 0, .mss = 1460});  // a cookie owed, not drained yet
  EXPECT_EQ(tcp().connections(), 5U);
  ASSERT_FALSE(tcp().close(l, now()));
  EXPECT_EQ(tcp().connections(), 0U);
  std::set<std::uint16_t> reset;
  for (const observed& o : drain()) {
    EXPECT_TRUE(o.has(flag::rst)) << o.str();
    EXPECT_EQ(o.rel_seq, 1U) << o.str();
    reset.insert(o.tcp.dst_port);
  }
  EXPECT_EQ(reset, (std::set<std::uint16_t>{40001, 40002, 40003}));
  EXPECT_EQ(tcp().counters().syn_cookies_sent, 0U);
  at(10000);
  expect_nothing();
  use_port(40004);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect({.flags = "R", .seq = 1});
}

// Cookies off: past the SYN queue a SYN is dropped (counted), and an ACK to the listener is a
// plain RST, not a rejected cookie.
TEST_F(TcpQueue, WithoutCookiesAFullSynQueueDropsTheSyn) {
  cfg_.tcp.syn_queue = 1;
  cfg_.tcp.syn_cookies = false;
  listen();
  (void)handshake(40001);  // accepted queue: 1
  use_port(40002);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  use_port(40003);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect_nothing();
  EXPECT_EQ(tcp().counters().syn_queue_overflow, 1U);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect({.flags = "R", .seq = 1});
  EXPECT_EQ(tcp().counters().syn_cookies_rejected, 0U);
}

// backlog bounds the accept queue only: three SYNs on a backlog of 2 all get SYN-ACKs (the SYN
// queue is apart), two handshakes complete onto the queue, the third waits.
TEST_F(TcpQueue, BacklogBoundsOnlyTheAcceptQueue) {
  const socket_id l = listen(8080, 2);
  for (const std::uint16_t p : {40001, 40002, 40003}) {
    use_port(p);
    inject({.flags = "S", .seq = 0, .mss = 1460});
    expect({.flags = "S.", .seq = 0, .ack = 1});
  }
  for (const std::uint16_t p : {40001, 40002, 40003}) {
    use_port(p);
    inject({.flags = ".", .seq = 1, .ack = 1});
  }
  EXPECT_EQ(tcp().counters().accept_queue_overflow, 1U);
  EXPECT_EQ(tcp().counters().syn_queue_overflow + tcp().counters().listen_overflow, 0U);
  for (const std::uint16_t p : {40001, 40002}) {
    EXPECT_EQ(tcp().remote_endpoint(accept_one(l)), (tcp_endpoint{peer_ip, p}));
  }
}

}  // namespace tcp_queue_test
}  // namespace
}  // namespace dpdk_net::stack::script
