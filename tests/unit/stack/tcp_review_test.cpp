// Review findings on the TCP engine, each a scripted regression test: it fails until the defect
// it names is fixed (see the review report; one defect per test, the RFC rule or the project rule
// it breaks in the comment above it).
#include <array>
#include <cstdlib>
#include <cstring>

#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_review_test {

// A pool for frames from hosts other than the fixture's peer. A base listed before TcpScript, so
// it outlives the fixture's stack (which may still hold frames from it when it is destroyed).
struct stranger_pool {
  packet_pool pool{packet_pool_config{.name = "tcp_review", .count = 64}};
};

class TcpReview : public stranger_pool, public TcpScript {
 protected:
  /// A SYN from `src` (on our link, never answering ARP) to our port 8080.
  void syn_from(ipv4_address src, std::uint16_t src_port) {
    wire::tcp_header h;
    h.src_port = src_port;
    h.dst_port = 8080;
    h.seq = 12345;
    h.flags = wire::tcp_flag::syn;
    h.window = 65535;
    h.options.mss = 1460;
    std::array<std::byte, 24> l4{};
    ASSERT_EQ(wire::write_tcp(l4, h), l4.size());
    wire::set_tcp_checksum(l4, wire::pseudo_header{src, our_ip});
    packet p = pool.alloc();
    ASSERT_TRUE(p);
    std::byte* d = p.append(34 + l4.size());
    const mac_address stranger_mac{{0x02, 0, 0, 0, 0, 0x63}};
    wire::write_ethernet(std::span(d, 14), wire::ethernet_header{our_mac, stranger_mac,
                                                                 wire::ethertype::ipv4, false, 0});
    wire::ipv4_header ih;
    ih.protocol = wire::ip_protocol::tcp;
    ih.src = src;
    ih.dst = our_ip;
    ih.total_length = static_cast<std::uint16_t>(20 + l4.size());
    wire::write_ipv4(std::span(d + 14, 20), ih);
    std::memcpy(d + 34, l4.data(), l4.size());
    st().receive(std::move(p), now());
  }
};

// A peer without window scaling or timestamps: raw windows are the windows, segments 1460.
const peer_syn plain{.mss = 1460, .ws = std::nullopt, .ts = false};

// The SYN's RTO wound SND.NXT back to the ISS; the SYN-ACK answering the first SYN arrives
// before the caller drains (the RTO ran in advance(), the SYN-ACK came in the next receive()).
// segment_syn_sent sets SND.UNA = ISS+1 but leaves SND.NXT = ISS (process_ack has the
// `snd_nxt < snd_una` repair, segment_syn_sent does not), so output "retransmits" from the ISS:
// a segment starting below SND.UNA whose first byte is read from the send ring one position
// before its first byte (a stale byte on the wire). Without data queued the ring is not even
// allocated and the 1-byte read is from a null pointer (see the death test below).
// RFC 9293 3.10.7.3: SND.UNA = SEG.ACK; data is sent from SND.NXT >= SND.UNA.
TEST_F(TcpReview, SynAckAfterSynRtoBeforeDrainSendsFromSndUna) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  EXPECT_EQ(send(c, "hello"), 5U);  // queued in SYN-SENT
  at(999);
  expect_nothing();
  st().advance(now() + 2 * millisecond);  // the SYN's RTO (1 s) runs; nothing drained yet
  inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460});
  const observed o = expect({.flags = "P.", .seq = 1, .ack = 1, .data = "hello"});
  EXPECT_EQ(o.text(), "hello") << o.str();
}

// The same without data queued: the send ring was never allocated, and build_segment reads one
// byte at sequence ISS from it (byte_ring::read on a null buffer: UB, a crash or a sanitizer
// abort). Run in a child so the crash fails this test instead of killing the test binary.
using TcpReviewDeathTest = TcpReview;
TEST_F(TcpReviewDeathTest, SynAckAfterSynRtoBeforeDrainWithoutDataDoesNotCrash) {
  EXPECT_EXIT(
      {
        const socket_id c = connect(80);
        (void)c;
        expect({.flags = "S", .seq = 0});
        at(999);
        st().advance(now() + 2 * millisecond);
        inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460});
        (void)drain();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// A half-open child whose SYN-ACK waits for ARP has no timer: segment_for_listener only calls
// want_output(); the SYN-ACK's retransmission timer is armed when the SYN-ACK is first built,
// which never happens if the next hop never resolves. The child stays in SYN-RECEIVED forever
// and holds its listener's backlog: a few SYNs from absent on-link addresses (or any spoofed
// source) disable the listener for good. (connect() arms the SYN's timer up front for exactly
// this reason; docs/tcp.md "Unresolved next hop".) synack_retries must bound it.
TEST_F(TcpReview, HalfOpenChildWithUnresolvableNextHopLeavesTheBacklog) {
  const socket_id l = listen(8080, 1);
  (void)l;
  syn_from(ipv4_address::from_octets(198, 18, 0, 99), 50000);
  EXPECT_EQ(tcp().connections(), 1U);
  at(300 * 1000);  // far beyond the SYN-ACK retries (1+2+4+8+16+32 s)
  EXPECT_EQ(tcp().connections(), 0U) << "the child never left SYN-RECEIVED";
  const std::uint64_t overflow = tcp().counters().listen_overflow;
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .ack = 1});
  EXPECT_EQ(tcp().counters().listen_overflow, overflow);
}

// Sender SWS avoidance (tcp_output.cpp) holds a short segment when the usable window is below
// min(MSS, max_snd_wnd / 2) - but nothing then ever sends it: flight is 0 (no RTO), the window
// is not zero (no persist timer), and no override timer exists. If the peer's window update is
// lost (a pure ACK, never retransmitted), the connection hangs forever. RFC 1122 4.2.3.4 and
// RFC 9293 3.8.6.2.1: the sender's SWS avoidance needs the override timeout (0.1-1 s) ("send if
// ... the override timeout occurs"); Linux arms its probe timer whenever data is queued and
// nothing is in flight. Continues TcpWindow.SenderAvoidsSillyWindow with the update lost.
TEST_F(TcpReview, SmallWindowWithLostWindowUpdateDoesNotHang) {
  const socket_id c = passive_open(plain);
  send_stream(c, 100000);
  EXPECT_EQ(drain().size(), 10U);
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 14601, .win = 100});
  // The peer's reader catches up and it announces 64 KiB: that ACK is lost.
  const observed o = run_until_segment(200 + 120 * 1000);
  ASSERT_TRUE(o.valid) << "data waiting, window 100 > 0, nothing in flight: nothing sent in 120 s";
  // New data (the override timeout) or a probe at SND.UNA - 1.
  EXPECT_TRUE(o.rel_seq == 14601U || o.rel_seq == 14600U) << o.str();
}

// An orphan (closed by the application) whose peer holds its window at zero and answers every
// probe lives forever: persist never gives up while answered, and close() sets a deadline only
// for FIN-WAIT-2. Each such orphan keeps its slot and both rings; a peer that accepts and never
// reads exhausts the slab. Linux bounds this (tcp_probe_timer: orphans are aborted after
// tcp_orphan_retries backed-off probes even when answered). "An orphan that never finishes" is a
// hang by this project's rules; an orphan must finish or be reset in bounded time.
TEST_F(TcpReview, OrphanHeldOpenByAZeroWindowIsReleased) {
  const socket_id c = passive_open({.mss = 1460, .ws = std::nullopt, .ts = false, .win = 14600});
  send_stream(c, 20000);
  EXPECT_EQ(drain().size(), 10U);
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 14601, .win = 0});  // right edge unchanged: no shrink
  EXPECT_FALSE(tcp().close(c, now()));
  EXPECT_EQ(tcp().connections(), 1U);
  const std::uint64_t limit_ms = 2 * 3600 * 1000;
  std::size_t probes = 0;
  while (tcp().connections() != 0 && now_ms() < limit_ms) {
    const observed p = run_until_segment(limit_ms);
    if (!p.valid || p.has(wire::tcp_flag::rst)) {
      break;
    }
    ++probes;
    inject({.flags = ".", .seq = 1, .ack = 14601, .win = 0});  // alive, still not reading
  }
  EXPECT_EQ(tcp().connections(), 0U) << "orphan still in "
                                     << "FIN-WAIT-1 after 2 h and " << probes << " answered probes";
}

// alloc_connection resets every field but rcv_mss ("largest segment seen from the peer"), so a
// slot's next connection inherits the previous peer's segment size: after a 1460-byte peer, a
// peer sending 536-byte segments is ACKed only every 2 * 1460 bytes (every 6th segment) instead
// of every second full-sized segment. RFC 1122 4.2.3.2 / RFC 5681 4.2 ("an ACK SHOULD be
// generated for at least every second full-sized segment"); a fresh slot does it right.
TEST_F(TcpReview, ReusedSlotAcksEverySecondFullSizedSegment) {
  const socket_id first = passive_open(plain);
  inject({.flags = ".", .seq = 1, .ack = 1, .len = 1460});
  inject({.flags = ".", .seq = 1461, .ack = 1, .len = 1460});
  expect({.flags = ".", .ack = 2921});
  EXPECT_EQ(read(first).size(), 2920U);
  EXPECT_FALSE(tcp().abort(first, now()));  // the slot goes back to the free list
  (void)drain();
  use_port(40001);
  const socket_id second = passive_open({.mss = 536, .ws = std::nullopt, .ts = false});
  inject({.flags = ".", .seq = 1, .ack = 1, .len = 536});
  inject({.flags = ".", .seq = 537, .ack = 1, .len = 536});
  expect({.flags = ".", .ack = 1073});  // at once: two full-sized segments
  (void)second;
}

// A socket whose connection ended gracefully (TIME-WAIT reported as closed, no error) can
// connect() again (connect only refuses a socket with an error), but connect resets only part
// of the connection: fin_queued, fin_received, sbuf_len, ooo state, read_shut, cc, counters ...
// survive. With fin_received still set, every byte the new peer sends is dropped by
// process_data (never ACKed, never readable) and with fin_queued the new connection sends a FIN
// at once. Either connect() refuses a used socket, or the new connection starts clean.
TEST_F(TcpReview, ConnectAgainAfterGracefulCloseStartsClean) {
  const socket_id c = active_open(plain);
  EXPECT_FALSE(tcp().shutdown(c, shutdown_type::send, now()));
  expect({.flags = "F.", .seq = 1, .ack = 1});
  at(200);
  inject({.flags = "F.", .seq = 1, .ack = 2});
  expect({.flags = ".", .seq = 2, .ack = 2});
  ASSERT_EQ(state(c), tcp_state::closed);
  ASSERT_FALSE(tcp().error(c));
  use_port(81);
  const std::error_code e = tcp().connect(c, tcp_endpoint{peer_ip, 81}, now());
  if (e) {
    return;  // refusing to reuse the socket is a fine answer
  }
  expect({.flags = "S", .seq = 0});
  at(300);
  inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460});
  expect({.flags = ".", .seq = 1, .ack = 1});
  inject({.flags = "P.", .seq = 1, .ack = 1, .data = "hello"});
  at(400);
  const observed a = expect({.flags = ".", .seq = 1});
  EXPECT_EQ(a.rel_ack, 6U) << a.str();
  // (Today readable() underflows: RCV.NXT == read_seq with the stale fin_received gives
  // 0xffffffff, and receive() reads that from a ring never allocated: a crash, so check first.)
  ASSERT_EQ(tcp().readable_bytes(c), 5U);
  EXPECT_EQ(read(c), "hello");
  EXPECT_EQ(state(c), tcp_state::established);
}

// Data on a SYN-ACK goes straight to process_data without the window trim that
// segment_synchronized applies (RFC 9293 3.10.7.3: text on the SYN-ACK continues at 3.10.7.4's
// sixth step, which keeps only what fits RCV.WND). Here the SYN offered 1000 bytes and the
// SYN-ACK carries 1460: all is accepted and ACKed, more than the buffer (readable() > the
// receive buffer). With a reassembled SYN-ACK larger than the ring (the stack reassembles TCP
// datagrams up to 64 KiB; a receive_buffer option of 4..32 KiB gives a ring that small),
// byte_ring::write then writes past the ring's end: a peer-triggered heap overflow.
TEST_F(TcpReview, SynAckDataIsTrimmedToOurWindow) {
  socket_id c = tcp_layer::invalid_socket;
  ASSERT_FALSE(tcp().open(c));
  tcp_socket_options o;
  o.receive_buffer = 1024;  // the smallest a socket may ask for
  ASSERT_FALSE(tcp().set_options(c, o));
  ASSERT_FALSE(tcp().connect(c, tcp_endpoint{peer_ip, 80}, now()));
  use_port(80);
  const observed syn = expect({.flags = "S", .seq = 0});
  EXPECT_EQ(syn.tcp.window, 1024);
  at(100);
  inject({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = 1460, .len = 1460});
  const observed a = expect({.flags = "*", .seq = 1});
  EXPECT_LE(a.rel_ack, 1025U) << "accepted beyond the window we offered: " << a.str();
  EXPECT_LE(tcp().readable_bytes(c), 1024U);
}

// shutdown(receive) discards in-order data in process_data's read_shut branch, which never
// looks at (or clears) the out-of-order ranges held from before. RCV.NXT passes them, the stale
// ranges stay (ooo_count != 0) and build_segment keeps the right edge frozen "while a hole is
// open": the advertised window shrinks to zero and stays there. The sender persists forever
// (its probes are answered), the connection hangs. docs/tcp.md: "later data is acknowledged
// and discarded".
TEST_F(TcpReview, ShutdownReceiveWithHeldOutOfOrderDataKeepsTheWindowOpen) {
  const socket_id c = active_open(plain);
  inject({.flags = ".", .seq = 1461, .ack = 1, .len = 1460});  // a hole at 1..1460
  expect({.flags = ".", .ack = 1});
  EXPECT_FALSE(tcp().shutdown(c, shutdown_type::receive, now()));
  std::uint32_t seq = 1;
  std::uint16_t last_window = 0;
  for (int i = 0; i < 60; ++i) {  // 87600 bytes: more than one 64 KiB window
    inject({.flags = ".", .seq = seq, .ack = 1, .len = 1460});
    seq += 1460;
    const observed a = expect({.flags = ".", .seq = 1});
    last_window = a.tcp.window;
    if (last_window == 0) {
      break;
    }
  }
  EXPECT_GE(last_window, 1460) << "the window closed for good at rel seq " << seq;
}

}  // namespace tcp_review_test
}  // namespace
}  // namespace dpdk_net::stack::script
