// Scripted TCP: RFC 5961 (blind in-window attacks) and hostile segments.
//
// RFC 5961 3.2: only a RST exactly at RCV.NXT resets; one elsewhere in the window gets a
// challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>; one outside is dropped. 4.2: a SYN on a
// synchronized connection, whatever its sequence number, gets a challenge ACK and changes
// nothing. 5.2: an ACK outside [SND.UNA - MAX.SND.WND, SND.MAX] gets a challenge ACK and the
// segment (its data included) is dropped. 7: challenge ACKs are rate limited (here per stack,
// with a keyed random allowance per second: docs/tcp.md "RFC 5961").
//
// Hostile segments: malformed headers and options are refused by the wire parser and counted in
// the stack's malformed[] on the TCP path; a flood of tiny out-of-order segments keeps memory at
// one receive ring and the work per segment bounded by the 8 out-of-order ranges.
//
// The expected answers come from the RFC text, never from the engine.
#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_rfc5961_test {

namespace flag = wire::tcp_flag;

class TcpRfc5961 : public TcpScript {
 protected:
  TcpRfc5961() { cfg_.tcp.delayed_ack = 0; }  // every ACK at once: each answer is visible

  [[nodiscard]] std::uint64_t malformed(wire::wire_error e) {
    return st().counters().malformed[static_cast<std::size_t>(e)];
  }
};

// --- 3.2: RST -----------------------------------------------------------------------------------

// RFC 5961 3.2 (3): a RST in the window but not at RCV.NXT may be a blind guess: challenge ACK,
// the connection survives. A peer that really lost the connection answers the challenge ACK with
// a RST whose sequence number is that ACK's value (RFC 9293 3.10.7.1): exactly RCV.NXT, which
// resets (3.2 (2)).
TEST_F(TcpRfc5961, RstInTheWindowGetsAChallengeAckThenTheExactRstResets) {
  const socket_id c = passive_open({.ws = 7, .ts = false});
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "abc"});
  expect({.flags = ".", .seq = 1, .ack = 4});
  inject({.flags = "R", .seq = 4 + 1000});
  expect({.flags = ".", .seq = 1, .ack = 4});   // the challenge ACK
  inject({.flags = "R.", .seq = 5, .ack = 1});  // one past RCV.NXT, with an ACK: still a guess
  expect({.flags = ".", .seq = 1, .ack = 4});
  EXPECT_EQ(state(c), tcp_state::established);
  EXPECT_FALSE(tcp().error(c));
  EXPECT_EQ(tcp().counters().rst_challenged, 2U);
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 2U);
  EXPECT_EQ(tcp().counters().resets_received, 0U);
  EXPECT_EQ(read(c), "abc");
  inject({.flags = "R", .seq = 4});  // the answer to the challenge, at RCV.NXT
  expect_nothing();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::connection_reset));
  EXPECT_EQ(tcp().counters().resets_received, 1U);
  EXPECT_EQ(tcp().counters().rst_challenged, 2U);
}

// RFC 5961 3.2 (2): exactly RCV.NXT resets at once, without a challenge.
TEST_F(TcpRfc5961, RstExactlyAtRcvNxtResets) {
  const socket_id c = passive_open({.ws = 7, .ts = false});
  inject({.flags = "R", .seq = 1});
  expect_nothing();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::connection_reset));
  EXPECT_EQ(tcp().counters().rst_challenged, 0U);
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 0U);
  EXPECT_EQ(tcp().connections(), 0U);
}

// RFC 5961 3.2 (1): outside the window (beyond it, or below RCV.NXT): dropped silently, not
// counted as a challenge.
TEST_F(TcpRfc5961, RstOutsideTheWindowIsDroppedSilently) {
  const socket_id c = passive_open({.ws = 7, .ts = false});
  inject({.flags = "R", .seq = 1 + 65535U * 128U + 1});  // past RCV.NXT + RCV.WND
  inject({.flags = "R", .seq = 0});                      // RCV.NXT - 1
  inject({.flags = "R", .seq = 1U - 1'000'000U});
  expect_nothing();
  EXPECT_EQ(state(c), tcp_state::established);
  EXPECT_EQ(tcp().counters().rst_challenged, 0U);
  EXPECT_EQ(tcp().counters().challenge_acks_sent + tcp().counters().challenge_acks_limited, 0U);
}

// RFC 5961 3.2 covers every state but SYN-SENT, so a half-open connection (SYN-RECEIVED) too: an
// in-window RST gets a challenge ACK and the handshake still completes (Linux 6.18 alike:
// pytests/test_differential.py).
TEST_F(TcpRfc5961, RstInTheWindowOfAHalfOpenConnectionIsChallenged) {
  const socket_id l = listen();
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  inject({.flags = "R", .seq = 1 + 100});
  expect({.flags = ".", .seq = 1, .ack = 1});
  EXPECT_EQ(tcp().connections(), 1U);
  inject({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  EXPECT_NE(accept_one(l), tcp_layer::invalid_socket);
  EXPECT_EQ(tcp().counters().rst_challenged, 1U);
}

// --- 4.2: SYN -----------------------------------------------------------------------------------

// RFC 5961 4.2: a SYN on an established connection, in the window or not, gets a challenge ACK;
// the connection carries on as before (data flows both ways after it).
TEST_F(TcpRfc5961, SynOnAnEstablishedConnectionGetsAChallengeAckAndTheConnectionSurvives) {
  const socket_id c = passive_open({.ws = 7, .ts = false});
  inject({.flags = "S", .seq = 500, .mss = 1460});  // in the window
  expect({.flags = ".", .seq = 1, .ack = 1});
  inject({.flags = "S", .seq = 1U - 70'000U, .mss = 1460});  // before it
  expect({.flags = ".", .seq = 1, .ack = 1});
  inject({.flags = "S.", .seq = 1U + 50'000'000U, .ack = 1});  // beyond it, with an ACK
  expect({.flags = ".", .seq = 1, .ack = 1});
  EXPECT_EQ(tcp().counters().syn_challenged, 3U);
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 3U);
  EXPECT_EQ(state(c), tcp_state::established);
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "still here"});
  expect({.flags = ".", .seq = 1, .ack = 11});
  EXPECT_EQ(read(c), "still here");
  EXPECT_EQ(send(c, "and so am I"), 11U);
  expect({.flags = "P.", .seq = 1, .ack = 11, .data = "and so am I"});
}

// RFC 5961 4.2's purpose: a peer that restarted sends a fresh SYN; the challenge ACK makes it
// send a RST at the ACK's value (RCV.NXT), which clears the old connection, and its next SYN
// opens a new one.
TEST_F(TcpRfc5961, ARestartedPeerClearsTheOldConnectionThroughTheChallengeAck) {
  const socket_id c = passive_open({.ws = 7, .ts = false});
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "before"});
  expect({.flags = ".", .seq = 1, .ack = 7});
  inject({.flags = "S", .seq = 3'000'000, .mss = 1460});  // the new incarnation's ISN
  const observed ch = expect({.flags = ".", .seq = 1, .ack = 7});
  inject({.flags = "R", .seq = ch.rel_ack});  // RFC 9293 3.10.7.1: <SEQ=SEG.ACK><CTL=RST>
  expect_nothing();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::connection_reset));
  new_flow(peer_port(), 9'000'000);
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1});
  EXPECT_EQ(tcp().counters().syn_challenged, 1U);
}

// --- 5.2: ACK -----------------------------------------------------------------------------------

class TcpRfc5961Ack : public TcpRfc5961 {
 protected:
  /// A connection whose peer's window is 1000 bytes (no scaling) and that has sent 3000 bytes,
  /// all acknowledged: SND.UNA = 3001, MAX.SND.WND = 1000, so the acceptable ACKs are
  /// [2001, 3001].
  socket_id sent_three_windows() {
    const socket_id c = passive_open({.mss = 1460, .ws = std::nullopt, .ts = false, .win = 1000});
    EXPECT_EQ(send_stream(c, 3000), 3000U);
    for (std::uint32_t at_seq = 1; at_seq < 3001; at_seq += 1000) {
      expect({.flags = "*", .seq = at_seq, .len = 1000});
      inject({.flags = ".", .seq = 1, .ack = at_seq + 1000, .win = 1000});
    }
    expect_nothing();
    EXPECT_EQ(info(c).in_flight, 0U);
    return c;
  }
};

// RFC 5961 5.2: an old ACK within MAX.SND.WND of SND.UNA is a late duplicate: ignored, and the
// rest of the segment (its data) processed. The boundary SND.UNA - MAX.SND.WND is included.
TEST_F(TcpRfc5961Ack, AnOldAckWithinTheMaxWindowIsIgnoredAndItsDataTaken) {
  const socket_id c = sent_three_windows();
  inject({.flags = ".", .seq = 1, .ack = 2500, .win = 1000, .data = "ok"});
  expect({.flags = ".", .seq = 3001, .ack = 3});
  inject({.flags = ".", .seq = 3, .ack = 2001, .win = 1000, .data = "edge"});
  expect({.flags = ".", .seq = 3001, .ack = 7});
  EXPECT_EQ(read(c), "okedge");
  EXPECT_EQ(tcp().counters().ack_challenged, 0U);
}

// RFC 5961 5.2: an ACK older than SND.UNA - MAX.SND.WND: challenge ACK, and the segment with its
// data is dropped (blind data injection needs an acceptable ACK as well as the sequence number).
TEST_F(TcpRfc5961Ack, AnAckOlderThanTheMaxWindowIsChallengedAndItsDataDropped) {
  const socket_id c = sent_three_windows();
  inject({.flags = ".", .seq = 1, .ack = 2000, .win = 1000, .data = "evil"});  // one too old
  expect({.flags = ".", .seq = 3001, .ack = 1});
  inject({.flags = "P.", .seq = 1, .ack = 1, .win = 1000, .data = "injected"});
  expect({.flags = ".", .seq = 3001, .ack = 1});
  EXPECT_EQ(tcp().readable_bytes(c), 0U);
  EXPECT_EQ(tcp().counters().ack_challenged, 2U);
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 2U);
  EXPECT_EQ(state(c), tcp_state::established);
  EXPECT_EQ(info(c).send_window, 1000U);  // nothing taken from the dropped segments
}

// RFC 5961 5.2 / RFC 9293 3.10.7.4 fifth: an ACK of data never sent (SEG.ACK > SND.MAX):
// challenge ACK, the segment and its data dropped.
TEST_F(TcpRfc5961Ack, AnAckOfUnsentDataIsChallengedAndItsDataDropped) {
  const socket_id c = sent_three_windows();
  inject({.flags = ".", .seq = 1, .ack = 3002, .win = 1000, .data = "evil"});
  expect({.flags = ".", .seq = 3001, .ack = 1});
  EXPECT_EQ(tcp().readable_bytes(c), 0U);
  EXPECT_EQ(tcp().counters().ack_challenged, 1U);
  EXPECT_EQ(tcp().counters().ack_too_new, 1U);
  inject({.flags = ".", .seq = 1, .ack = 3001, .win = 1000, .data = "good"});
  expect({.flags = ".", .seq = 3001, .ack = 5});
  EXPECT_EQ(read(c), "good");
}

// MAX.SND.WND never reaches back past what was acknowledged (Linux bounds it by bytes_acked):
// with nothing but the SYN acknowledged and a 8 MiB window, an ACK of our ISN (acknowledging
// nothing, not even the SYN) is challenged; SND.UNA itself is the ordinary ACK.
TEST_F(TcpRfc5961, AnAckAtOrBelowOurIsnIsChallengedWhateverTheWindow) {
  const socket_id c = passive_open({.ws = 7, .ts = false});
  inject({.flags = ".", .seq = 1, .ack = 0, .data = "x"});
  expect({.flags = ".", .seq = 1, .ack = 1});
  inject({.flags = ".", .seq = 1, .ack = 0xffff'ff00U, .data = "y"});
  expect({.flags = ".", .seq = 1, .ack = 1});
  EXPECT_EQ(tcp().counters().ack_challenged, 2U);
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "z"});
  expect({.flags = ".", .seq = 1, .ack = 2});
  EXPECT_EQ(read(c), "z");
}

// --- 7: the rate limit --------------------------------------------------------------------------

// A limit of 1 per second is exact (the allowance is drawn from [1 - 0, 1 + 0]): one challenge
// ACK, then the rest of the second's challenges are counted as limited and nothing is sent; a
// second later there is one again. Every kind of challenge draws on the same allowance.
TEST_F(TcpRfc5961, ChallengeAcksStopAtTheLimitAndRefillAfterASecond) {
  cfg_.tcp.challenge_acks_per_second = 1;
  const socket_id c = passive_open({.ws = 7, .ts = false});
  ASSERT_EQ(now(), 1100 * millisecond);  // the stack's clock: the allowance runs per second of it
  inject({.flags = "R", .seq = 100});
  expect({.flags = ".", .seq = 1, .ack = 1});
  inject({.flags = "R", .seq = 200});
  expect_nothing();
  inject({.flags = "S", .seq = 300});
  expect_nothing();
  inject({.flags = ".", .seq = 1, .ack = 5000});
  expect_nothing();
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 1U);
  EXPECT_EQ(tcp().counters().challenge_acks_limited, 3U);
  at(900);  // 1.9 s: the same second
  inject({.flags = "R", .seq = 400});
  expect_nothing();
  at(1000);  // 2.0 s: the next one
  inject({.flags = "R", .seq = 400});
  expect({.flags = ".", .seq = 1, .ack = 1});
  inject({.flags = "R", .seq = 500});
  expect_nothing();
  at(2000);
  inject({.flags = "S", .seq = 600});
  expect({.flags = ".", .seq = 1, .ack = 1});
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 3U);
  EXPECT_EQ(tcp().counters().challenge_acks_limited, 5U);
  EXPECT_EQ(state(c), tcp_state::established);
  EXPECT_EQ(tcp().counters().rst_challenged + tcp().counters().syn_challenged +
                tcp().counters().ack_challenged,
            tcp().counters().challenge_acks_sent + tcp().counters().challenge_acks_limited);
}

// A challenge while an ACK is owed anyway rides on it: one segment goes out, nothing is taken
// from the allowance (a burst of forged RSTs in one receive batch costs one ACK).
TEST_F(TcpRfc5961, AChallengeWhileAnAckIsOwedRidesOnItForFree) {
  cfg_.tcp.challenge_acks_per_second = 1;
  passive_open({.ws = 7, .ts = false});
  inject({.flags = "R", .seq = 100});
  inject({.flags = "R", .seq = 200});
  inject({.flags = "S", .seq = 300});
  expect({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 3U);
  EXPECT_EQ(tcp().counters().challenge_acks_limited, 0U);
  inject({.flags = "R", .seq = 400});  // the allowance is spent now
  expect_nothing();
  EXPECT_EQ(tcp().counters().challenge_acks_limited, 1U);
}

// The allowance is the stack's, shared by its connections (docs/tcp.md: per stack, so with one
// stack per core a machine sends up to cores x the limit).
TEST_F(TcpRfc5961, TheAllowanceIsSharedByTheStacksConnections) {
  cfg_.tcp.challenge_acks_per_second = 1;
  const socket_id a = passive_open({.ws = 7, .ts = false});
  use_port(40001);
  const socket_id b = passive_open({.ws = 7, .ts = false});
  inject({.flags = "R", .seq = 100, .port = 40000});
  expect({.flags = ".", .seq = 1, .ack = 1, .port = 40000});
  inject({.flags = "R", .seq = 100, .port = 40001});
  expect_nothing();
  EXPECT_EQ(tcp().counters().challenge_acks_limited, 1U);
  EXPECT_EQ(state(a), tcp_state::established);
  EXPECT_EQ(state(b), tcp_state::established);
}

// 0: no limit at all.
TEST_F(TcpRfc5961, ZeroMeansNoLimit) {
  cfg_.tcp.challenge_acks_per_second = 0;
  passive_open({.ws = 7, .ts = false});
  std::size_t acks = 0;
  for (int i = 0; i < 3000; ++i) {
    inject({.flags = "R", .seq = 100 + static_cast<std::uint32_t>(i)});
    acks += drain().size();
  }
  EXPECT_EQ(acks, 3000U);
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 3000U);
  EXPECT_EQ(tcp().counters().challenge_acks_limited, 0U);
}

// CVE-2016-5696: with a fixed shared limit an off-path attacker fills it from its own connection
// and counts the challenge ACKs that are missing: those went to the connection it is probing.
// Each second's allowance is drawn from [N - N/2, N + N/2] instead (keyed by the stack's secret),
// so one second's count says little: over 40 seconds the allowance takes many values spread
// across the range, the mean stays near N, and sent + limited accounts for every challenge.
TEST_F(TcpRfc5961, TheAllowanceIsDrawnEachSecondAroundTheLimit) {
  constexpr std::uint32_t limit = 100;
  cfg_.tcp.challenge_acks_per_second = limit;
  passive_open({.ws = 7, .ts = false});
  at(1000);  // a second boundary ahead of the first window
  std::vector<std::uint64_t> per_second;
  std::uint64_t sent_before = 0;
  for (int s = 0; s < 40; ++s) {
    for (int i = 0; i < 200; ++i) {
      inject({.flags = "R", .seq = 100});
      drain();
    }
    const std::uint64_t sent = tcp().counters().challenge_acks_sent;
    per_second.push_back(sent - sent_before);
    sent_before = sent;
    at(now_ms() + 1000);
  }
  std::uint64_t total = 0;
  for (const std::uint64_t n : per_second) {
    EXPECT_GE(n, limit - limit / 2);
    EXPECT_LE(n, limit + limit / 2);
    total += n;
  }
  const std::set<std::uint64_t> distinct(per_second.begin(), per_second.end());
  EXPECT_GE(distinct.size(), 20U) << "the allowance must vary from second to second";
  EXPECT_GE(*std::max_element(per_second.begin(), per_second.end()) -
                *std::min_element(per_second.begin(), per_second.end()),
            limit / 2);
  const std::uint64_t mean = total / per_second.size();
  EXPECT_GE(mean, limit * 8 / 10);  // uniform on [50, 150]: 40 draws, ~4 sigma either side
  EXPECT_LE(mean, limit * 12 / 10);
  EXPECT_EQ(tcp().counters().challenge_acks_sent + tcp().counters().challenge_acks_limited,
            40U * 200U);
}

// --- hostile segments ---------------------------------------------------------------------------

/// A TCP segment written byte by byte (the fixture's builder only writes valid ones): the data
/// offset field says `offset_words`, whatever is actually there.
struct raw_segment {
  std::uint32_t rel_seq = 1;
  std::uint32_t rel_ack = 1;
  std::uint8_t offset_words = 5;
  std::uint8_t flags = flag::ack;
  std::vector<std::uint8_t> options;  // raw bytes, after the 20-byte header
  std::string payload;
};

class TcpRfc5961Hostile : public TcpRfc5961 {
 protected:
  void inject_raw(const raw_segment& r) {
    std::vector<std::byte> l4(20 + r.options.size() + r.payload.size());
    std::byte* p = l4.data();
    wire::store16(p, peer_port());
    wire::store16(p + 2, our_port());
    wire::store32(p + 4, peer_isn_of() + r.rel_seq);
    wire::store32(p + 8, our_isn() + r.rel_ack);
    wire::store8(p + 12, static_cast<std::uint8_t>(r.offset_words << 4U));
    wire::store8(p + 13, r.flags);
    wire::store16(p + 14, 65535);
    std::copy(r.options.begin(), r.options.end(), reinterpret_cast<std::uint8_t*>(p + 20));
    std::copy(r.payload.begin(), r.payload.end(),
              reinterpret_cast<char*>(p + 20 + r.options.size()));
    wire::set_tcp_checksum(l4, wire::pseudo_header{peer_ip, our_ip});  // a valid checksum
    static packet_pool pool{packet_pool_config{.name = "tcp_rfc5961_raw", .count = 64}};
    packet f = pool.alloc();
    std::byte* d = f.append(34 + l4.size());
    wire::write_ethernet(std::span(d, 14),
                         wire::ethernet_header{our_mac, peer_mac, wire::ethertype::ipv4, false, 0});
    wire::ipv4_header h;
    h.protocol = wire::ip_protocol::tcp;
    h.src = peer_ip;
    h.dst = our_ip;
    h.total_length = static_cast<std::uint16_t>(20 + l4.size());
    wire::write_ipv4(std::span(d + 14, 20), h);
    std::memcpy(d + 34, l4.data(), l4.size());
    st().receive(std::move(f), now());
  }
};

// The wire parser refuses malformed headers and options before TCP sees them; the stack counts
// each by reason (malformed[tcp_bad_option], ...), TCP does not count the segment as received,
// nothing is answered (a RST or ACK would tell a scanner something), and the connection goes on.
// Control: the same segment well formed is delivered.
TEST_F(TcpRfc5961Hostile, MalformedHeadersAndOptionsAreCountedAndDropped) {
  const socket_id c = passive_open({.ws = 7, .ts = false});
  const std::uint64_t segments_in = tcp().counters().segments_in;
  // Options: a length of 0 (the AMNESIA:33 / Ripple20 loop), 1, past the header, a kind
  // without its length byte, a timestamps option of 9 bytes, an MSS of 3, a SACK of 1.125
  // blocks.
  const std::vector<std::vector<std::uint8_t>> bad_options = {
      {2, 0, 0, 0},
      {1, 1, 30, 1},
      {1, 1, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0},
      {1, 1, 1, 2},
      {8, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0},
      {2, 3, 5, 0},
      {5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 9, 1},
  };
  for (const auto& o : bad_options) {
    ASSERT_EQ(o.size() % 4, 0U);
    inject_raw({.offset_words = static_cast<std::uint8_t>(5 + o.size() / 4),
                .options = o,
                .payload = "bad"});
  }
  EXPECT_EQ(malformed(wire::wire_error::tcp_bad_option), bad_options.size());
  inject_raw({.offset_words = 4, .payload = "bad"});  // a header shorter than 20 bytes
  inject_raw({.offset_words = 0, .payload = "bad"});
  EXPECT_EQ(malformed(wire::wire_error::tcp_bad_data_offset), 2U);
  inject_raw({.offset_words = 15, .payload = "bad"});  // 60 bytes of header in a 23-byte segment
  inject_raw({.offset_words = 6});                     // 24 in 20
  EXPECT_EQ(malformed(wire::wire_error::tcp_data_offset_exceeds_segment), 2U);
  expect_nothing();
  EXPECT_EQ(tcp().counters().segments_in, segments_in);
  EXPECT_EQ(tcp().readable_bytes(c), 0U);
  EXPECT_EQ(state(c), tcp_state::established);
  // Control: well formed (NOP NOP, then an unknown option kind 99, which is skipped).
  inject_raw({.offset_words = 6, .options = {1, 1, 99, 2}, .payload = "good"});
  expect({.flags = ".", .seq = 1, .ack = 5});
  EXPECT_EQ(read(c), "good");
  EXPECT_EQ(tcp().counters().segments_in, segments_in + 1);
}

// The same on a listener: a SYN with a malformed option gets no SYN-ACK and leaves no half-open
// connection; a window scale far above RFC 7323's 14 is used as 14 (2.3), and an MSS of 0 is
// raised to the minimum (RFC 6691), so neither shift nor segment size can be made absurd.
TEST_F(TcpRfc5961Hostile, ASynWithMalformedOptionsLeavesNoStateAndAbsurdValuesAreClamped) {
  const socket_id c = passive_open({.mss = 0, .ws = 255, .ts = false});
  EXPECT_EQ(info(c).send_scale, 14);
  EXPECT_EQ(info(c).mss, cfg_.tcp.min_mss);
  use_port(40001);
  // MSS 1460, then a window scale option of length 2 (it must be 3): the whole SYN is refused.
  inject_raw({.rel_seq = 0,
              .rel_ack = 0,
              .offset_words = 7,
              .flags = flag::syn,
              .options = {2, 4, 5, 180, 3, 2, 1, 1}});
  expect_nothing();
  EXPECT_EQ(tcp().connections(), 1U);  // the first one only
  EXPECT_EQ(malformed(wire::wire_error::tcp_bad_option), 1U);
}

// A flood of 1-byte segments, each at its own gap in the window (never adjacent, so none merge),
// in a scrambled order: the first 8 keep a range each, every later one is dropped and counted
// (out_of_order_dropped), one duplicate ACK answers each, memory stays at the one receive ring,
// and the work per segment stays within twice the ranges held, from the first to the last.
// Then the peer fills the holes from RCV.NXT on, byte by byte: the 8 kept bytes are never
// needed again, and the stream arrives intact.
TEST_F(TcpRfc5961Hostile, AFloodOfTinyOutOfOrderSegmentsStaysBoundedAndTheStreamSurvives) {
  cfg_.tcp.receive_buffer = 65536;
  const socket_id c = passive_open({.ws = 7, .ts = false});
  constexpr std::uint32_t n = 4000;       // segments: stream offsets 1, 3, ..., 7999
  constexpr std::uint32_t total = 2 * n;  // stream bytes 0 .. 7999
  const tcp_counters before = tcp().counters();
  std::uint64_t worst_visits = 0, bad_answers = 0, buffer_changes = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t k = (i * 1237U + 11U) % n;  // 1237 is prime to 4000: a permutation
    const std::uint64_t v = tcp().counters().out_of_order_range_visits;
    inject({.flags = ".", .seq = 2 + 2 * k, .ack = 1, .len = 1});
    worst_visits = std::max(worst_visits, tcp().counters().out_of_order_range_visits - v);
    const std::vector<observed> out = drain();
    if (out.size() != 1 || out[0].rel_ack != 1 || out[0].len() != 0) {
      ++bad_answers;
    }
    if (tcp().counters().buffer_bytes != 65536) {
      ++buffer_changes;
    }
  }
  const tcp_counters& k = tcp().counters();
  EXPECT_EQ(k.out_of_order - before.out_of_order, n);
  EXPECT_EQ(k.out_of_order_dropped - before.out_of_order_dropped, n - 8);
  EXPECT_EQ(bad_answers, 0U) << "each out-of-order segment: one duplicate ACK of RCV.NXT";
  EXPECT_EQ(buffer_changes, 0U) << "one 64 KiB receive ring holds it all";
  EXPECT_EQ(k.buffer_peak, 65536U);
  EXPECT_LE(worst_visits, 16U);
  EXPECT_LE(k.out_of_order_range_visits - before.out_of_order_range_visits, 16ULL * n);
  // The holes, filled the way a sender retransmits: from what the last ACK says on.
  std::uint32_t acked = 1;
  std::uint32_t fills = 0;
  while (acked != 1 + total && fills < 2 * total) {
    inject({.flags = ".", .seq = acked, .ack = 1, .len = 1});
    ++fills;
    for (const observed& o : drain()) {
      acked = detail::seq_after(o.rel_ack, acked) ? o.rel_ack : acked;
    }
  }
  EXPECT_EQ(acked, 1 + total);
  EXPECT_EQ(fills, total - 8) << "the 8 kept bytes were not needed again";
  EXPECT_EQ(read(c), stream_bytes(0, total));
  EXPECT_EQ(tcp().counters().buffer_bytes, 0U) << "read and in order: the ring goes back";
}

}  // namespace tcp_rfc5961_test
}  // namespace
}  // namespace dpdk_net::stack::script
