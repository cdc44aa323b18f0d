// Second review of the TCP engine: each finding a scripted regression test that fails until the
// defect it names is fixed (one defect per test; the RFC rule or project rule it breaks in the
// comment above it).
#include <cstdlib>

#include "dpdk_net/stack/arp.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_review2_test {

// A peer without window scaling or timestamps: raw windows are the windows, segments 1460.
const peer_syn plain{.mss = 1460, .ws = std::nullopt, .ts = false};

// The peer's ARP entry is forgotten after 2 s unused (reachable 1 s, then stale 1 s), so the
// next segment towards it waits for a fresh resolution (the fixture answers the request).
class TcpReview2Arp : public TcpScript {
 protected:
  TcpReview2Arp() {
    cfg_.arp.reachable_time = 1 * second;
    cfg_.arp.stale_time = 1 * second;
  }
};

// The persist timer is only armed when `flight() != 0 || !retransmit_timer.armed()`
// (tcp_output.cpp, end of the data block). A connection whose data had to wait for ARP has its
// retransmission timer armed by emit_connection's ARP branch with nothing in flight; when ARP
// resolves and the peer's window is zero, that timer blocks the persist timer, then expires in
// retransmit_timeout, which returns at once ("flight() == 0 && !waiting_for_arp": "everything
// was acknowledged meanwhile") without arming anything. From then on no timer runs: data waits
// behind a zero window with nothing probing it, and if the peer's window update (a pure ACK,
// never retransmitted) is lost the connection hangs forever. RFC 9293 3.8.6.1 / RFC 1122
// 4.2.2.17: a sender with data and a zero window MUST probe it (the same hang happens for data
// held by sender SWS avoidance in a small window: the override timer is never armed either).
TEST_F(TcpReview2Arp, ZeroWindowDataThatWaitedForArpIsStillProbed) {
  const socket_id c = passive_open(plain);
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 0});  // the peer's window closes
  expect_nothing();
  at(5000);  // the peer's ARP entry is gone
  ASSERT_EQ(st().arp_layer().state_of(peer_ip), arp::state::free);
  const std::uint64_t waited = tcp().counters().waiting_for_arp;
  EXPECT_EQ(send(c, "hello"), 5U);
  at(5001);  // the connection waits for ARP; the fixture answers the request
  ASSERT_EQ(tcp().counters().waiting_for_arp, waited + 1) << "premise: the data waited for ARP";
  // The peer opens its window later, and that window update is lost: only a probe from us can
  // find out. Persist probes start within an RTO or so; two minutes is generous.
  const observed o = run_until_segment(5001 + 120 * 1000);
  ASSERT_TRUE(o.valid) << "zero window, 5 bytes waiting, no probe in 120 s (no timer armed)";
  EXPECT_TRUE(o.rel_seq == 0U || o.rel_seq == 1U) << o.str();
}

// The control: the same script without the ARP wait probes the zero window (so the hang above
// comes from the ARP wait's timer alone).
TEST_F(TcpReview2Arp, ZeroWindowDataIsProbedWithoutArpWait) {
  const socket_id c = passive_open(plain);
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 0});
  expect_nothing();
  at(500);  // the peer's ARP entry is still fresh
  const std::uint64_t waited = tcp().counters().waiting_for_arp;
  EXPECT_EQ(send(c, "hello"), 5U);
  const observed o = run_until_segment(500 + 120 * 1000);
  EXPECT_EQ(tcp().counters().waiting_for_arp, waited);
  ASSERT_TRUE(o.valid);
  EXPECT_TRUE(o.rel_seq == 0U || o.rel_seq == 1U) << o.str();
}

class TcpReview2 : public TcpScript {};

// Keepalive covers FIN-WAIT-2 (tcp_timers.cpp keepalive_state, commit e0b14f4) but not
// FIN-WAIT-1, and on_idle_timer firing in a state keepalive does not cover calls arm_idle, which
// cancels the idle timer. The FIN-WAIT-1 -> FIN-WAIT-2 transition (process_ack) re-arms it only
// for orphans (close_deadline). So a half-closed connection whose FIN took longer than
// keepalive_idle to be acknowledged (lost ACKs, or a zero window holding the FIN) reaches
// FIN-WAIT-2 with no timer at all: if the peer then dies, the application waits forever for
// data or end of stream. RFC 1122 4.2.3.6 / docs/tcp.md: keepalive in FIN-WAIT-2 is there to
// find exactly that dead peer.
TEST_F(TcpReview2, KeepaliveStillRunsInFinWait2AfterALongFinWait1) {
  const socket_id c = active_open(plain);  // established at 100
  tcp_socket_options o = tcp().options(c);
  o.keepalive_idle = 10 * second;
  o.keepalive_interval = 1 * second;
  o.keepalive_probes = 3;
  ASSERT_FALSE(tcp().set_options(c, o));
  EXPECT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  at(12000);  // the peer's ACKs of our FIN are lost for 12 s (the FIN is retransmitted)
  (void)drain();
  inject({.flags = ".", .seq = 1, .ack = 2});
  ASSERT_EQ(state(c), tcp_state::fin_wait_2);
  // The peer dies now. Idle 10 s, then 3 probes 1 s apart: a probe by 22 s, timed_out by 25 s.
  const observed p = run_until_segment(30000);
  EXPECT_TRUE(p.valid) << "no keepalive probe in FIN-WAIT-2 18 s after the last segment";
  at(60000);
  (void)drain();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::timed_out))
      << "still " << to_string(state(c)) << " 48 s after the peer went silent";
}

// The control: keepalive set in ESTABLISHED and a FIN acknowledged at once - FIN-WAIT-2 probes.
TEST_F(TcpReview2, KeepaliveRunsInFinWait2AfterAShortFinWait1) {
  const socket_id c = active_open(plain);
  tcp_socket_options o = tcp().options(c);
  o.keepalive_idle = 10 * second;
  o.keepalive_interval = 1 * second;
  o.keepalive_probes = 3;
  ASSERT_FALSE(tcp().set_options(c, o));
  EXPECT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 2});
  ASSERT_EQ(state(c), tcp_state::fin_wait_2);
  const observed p = run_until_segment(30000);
  ASSERT_TRUE(p.valid);
  EXPECT_EQ(p.rel_seq, 1U) << p.str();
}

// set_options arms keepalive only in ESTABLISHED (`if (state == established) arm_idle`), though
// keepalive runs in CLOSE-WAIT and FIN-WAIT-2 too: turned on after shutdown(send) - the usual
// moment for a client that has sent its request and now only waits - it never starts (the idle
// timer was cancelled when the connection was established without keepalive). Same hang as
// above when the peer dies.
TEST_F(TcpReview2, KeepaliveTurnedOnInFinWait2Runs) {
  const socket_id c = active_open(plain);
  EXPECT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 2});
  ASSERT_EQ(state(c), tcp_state::fin_wait_2);
  tcp_socket_options o = tcp().options(c);
  o.keepalive_idle = 10 * second;
  o.keepalive_interval = 1 * second;
  o.keepalive_probes = 3;
  ASSERT_FALSE(tcp().set_options(c, o));
  const observed p = run_until_segment(30000);
  ASSERT_TRUE(p.valid) << "keepalive enabled in FIN-WAIT-2 never probes";
  EXPECT_EQ(p.rel_seq, 1U) << p.str();  // SND.NXT - 1 (the FIN is acknowledged)
}

// tcp_config's buffers are validated to 1024..2^30 (config.cpp: "a ring must fit in 32-bit
// sequence space"), but the per-socket options are not: set_options takes any send_buffer /
// receive_buffer. A send_buffer above 2^31 reaches byte_ring::allocate, whose std::bit_ceil of
// it is not representable (undefined behaviour: a shift by 32; a sanitizer abort here, a 1-byte
// ring in a release build); a receive_buffer above 2^31 makes RCV.WND larger than half the
// sequence space, so the acceptability test (seq_lt against RCV.NXT + RCV.WND) refuses every
// segment. Bad input must get a clear error (project rule): invalid_argument from set_options,
// or a working connection. Run in a child: the UB aborts the process.
using TcpReview2DeathTest = TcpReview2;
TEST_F(TcpReview2DeathTest, HugeSendBufferOptionIsRefusedOrWorks) {
  EXPECT_EXIT(
      {
        socket_id c = tcp_layer::invalid_socket;
        if (tcp().open(c)) {
          std::exit(2);
        }
        tcp_socket_options o;
        o.send_buffer = 0xC0000000U;
        if (tcp().set_options(c, o)) {
          std::exit(0);  // refused: fine
        }
        if (tcp().connect(c, tcp_endpoint{peer_ip, 80}, now())) {
          std::exit(3);
        }
        use_port(80);
        (void)drain();
        at(100);
        inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460});
        (void)drain();
        const io_result r = tcp().send(c, std::as_bytes(std::span("hello", 5)));
        std::exit(r.bytes == 5 && !r.error ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(TcpReview2DeathTest, HugeReceiveBufferOptionIsRefusedOrWorks) {
  EXPECT_EXIT(
      {
        socket_id c = tcp_layer::invalid_socket;
        if (tcp().open(c)) {
          std::exit(2);
        }
        tcp_socket_options o;
        o.receive_buffer = 0xC0000000U;
        if (tcp().set_options(c, o)) {
          std::exit(0);  // refused: fine
        }
        if (tcp().connect(c, tcp_endpoint{peer_ip, 80}, now())) {
          std::exit(3);
        }
        use_port(80);
        (void)drain();
        at(100);
        inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460, .ws = 7});
        (void)drain();
        inject({.flags = "P.", .seq = 1, .ack = 1, .data = "hello"});
        (void)drain();
        // 5: the data was refused as not acceptable (RCV.WND beyond half the sequence space).
        std::exit(tcp().readable_bytes(c) == 5 ? 0 : tcp().counters().not_acceptable != 0 ? 5 : 4);
      },
      ::testing::ExitedWithCode(0), "");
}

// process_ack (and segment_syn_sent) take every timestamp echo as an RTT sample:
// ts_clock(now) - (TSecr - offset), in unsigned 32-bit arithmetic. An echo of a TSval we never
// sent - "from the future", from a buggy peer or a middlebox rewriting timestamps - wraps to
// ~49 days; update_rtt takes it, SRTT becomes days and the RTO sits at rto_max (60 s), so every
// later loss stalls the connection a minute. RFC 7323 4.1/RFC 6298: a sample must measure a
// round trip; an echo newer than our clock cannot be one (Linux drops such samples:
// tcp_rtt_tsopt_us rejects a negative or absurd delta). Here an RTT of 100 ms, then one ACK
// echoing a TSval 1000 s ahead of ours.
TEST_F(TcpReview2, TimestampEchoFromTheFutureIsNoRttSample) {
  const socket_id c = active_open();  // timestamps, RTT 100 ms
  send(c, "hello");
  const observed d = expect({.flags = "P.", .seq = 1, .data = "hello"});
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 6, .ts = tsopt(peer_tsval(), d.tsval() + 1000000)});
  EXPECT_LE(info(c).srtt, 1 * second) << "srtt " << info(c).srtt / millisecond << " ms";
  EXPECT_LE(info(c).rto, 2 * second) << "rto " << info(c).rto / millisecond << " ms";
}

// An ICMP soft error (RFC 5927 / RFC 1122 4.2.3.9: host unreachable on an established
// connection) is kept in soft_error forever and reported if the connection ever times out,
// however long after the path recovered and the peer acknowledged data. Linux clears it on every
// acceptable ACK (tcp_ack: sk_err_soft = 0): a soft error explains a timeout only while it is
// current. Here a transient host unreachable at 150 ms, healed at once (the data is
// acknowledged), makes a timeout a minute later read host_unreachable instead of timed_out.
TEST_F(TcpReview2, StaleIcmpSoftErrorDoesNotMaskTimedOut) {
  cfg_.tcp.data_retries = 3;
  const socket_id c = active_open(plain);
  send(c, "hello");
  expect({.flags = "P.", .seq = 1, .data = "hello"});
  at(150);
  inject_icmp(wire::icmp_type::destination_unreachable, 1 /* host */, 1);
  EXPECT_EQ(tcp().counters().icmp_accepted, 1U);
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 6});  // the path works: data acknowledged
  at(60000);
  send(c, "world");  // the peer dies now
  at(60000 + 3600 * 1000);
  (void)drain();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::timed_out));
}

}  // namespace tcp_review2_test
}  // namespace
}  // namespace dpdk_net::stack::script
