// Scripted TCP: every state's answer to each kind of segment, RFC 9293 3.10.7.4 (with the
// RFC 5961 mitigations RFC 9293 adopts). Each behaviour is a parameterised test over the states
// it applies to; where RFC 9293 and Linux differ for a state, that state is left out here and the
// choice is tested (and noted) elsewhere.
#include <string>

#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_states_test {

/// A connection brought to a state, and its sequence variables (relative).
struct reached {
  socket_id id = tcp_layer::invalid_socket;  // invalid for SYN-RECEIVED (not yet accepted)
  std::uint32_t snd_nxt = 0;
  std::uint32_t rcv_nxt = 0;
};

std::string state_name(const ::testing::TestParamInfo<tcp_state>& i) {
  switch (i.param) {
    case tcp_state::syn_received:
      return "SynReceived";
    case tcp_state::established:
      return "Established";
    case tcp_state::fin_wait_1:
      return "FinWait1";
    case tcp_state::fin_wait_2:
      return "FinWait2";
    case tcp_state::close_wait:
      return "CloseWait";
    case tcp_state::closing:
      return "Closing";
    case tcp_state::last_ack:
      return "LastAck";
    case tcp_state::time_wait:
      return "TimeWait";
    default:
      return "Other";
  }
}

class TcpStateBase : public TcpScript, public ::testing::WithParamInterface<tcp_state> {
 protected:
  /// Brings a passively opened connection to `s` with shutdown() (so the id stays valid).
  reached reach(tcp_state s) {
    reached r;
    if (s == tcp_state::syn_received) {
      listen();
      inject({.flags = "S", .seq = 0, .mss = 1460, .ws = 7, .ts = present});
      expect({.flags = "S.", .seq = 0, .ack = 1});
      r.snd_nxt = 1;
      r.rcv_nxt = 1;
      return r;
    }
    r.id = passive_open();
    r.snd_nxt = 1;
    r.rcv_nxt = 1;
    const bool we_close_first = s == tcp_state::fin_wait_1 || s == tcp_state::fin_wait_2 ||
                                s == tcp_state::closing || s == tcp_state::time_wait;
    if (we_close_first) {
      EXPECT_FALSE(tcp().shutdown(r.id, shutdown_type::send, now()));
      expect({.flags = "F.", .seq = 1, .ack = 1});
      r.snd_nxt = 2;
      if (s == tcp_state::fin_wait_2 || s == tcp_state::time_wait) {
        inject({.flags = ".", .seq = 1, .ack = 2});
        expect_nothing();
      }
      if (s == tcp_state::closing || s == tcp_state::time_wait) {
        inject({.flags = "F.", .seq = 1, .ack = s == tcp_state::closing ? 1U : 2U});
        expect({.flags = ".", .seq = 2, .ack = 2});
        r.rcv_nxt = 2;
      }
    } else if (s == tcp_state::close_wait || s == tcp_state::last_ack) {
      inject({.flags = "F.", .seq = 1, .ack = 1});
      at(now_ms() + 40);  // the ACK of the FIN may be delayed (<= 40 ms)
      expect({.flags = ".", .seq = 1, .ack = 2});
      r.rcv_nxt = 2;
      if (s == tcp_state::last_ack) {
        EXPECT_FALSE(tcp().shutdown(r.id, shutdown_type::send, now()));
        expect({.flags = "F.", .seq = 1, .ack = 2});
        r.snd_nxt = 2;
      }
    }
    if (s == tcp_state::time_wait) {
      EXPECT_EQ(tcp().time_wait_count(), 1U);
    } else {
      EXPECT_EQ(state(r.id), s);
    }
    at(now_ms() + 10);
    return r;
  }
  /// The connection is still there, in the same state.
  void still_in(const reached& r, tcp_state s) {
    if (s == tcp_state::syn_received) {
      EXPECT_EQ(tcp().connections(), 1U);
    } else if (s == tcp_state::time_wait) {
      EXPECT_EQ(tcp().time_wait_count(), 1U);
    } else {
      EXPECT_EQ(state(r.id), s);
      EXPECT_FALSE(tcp().error(r.id));
    }
  }
};

const auto full_sockets =
    ::testing::Values(tcp_state::established, tcp_state::fin_wait_1, tcp_state::fin_wait_2,
                      tcp_state::close_wait, tcp_state::closing, tcp_state::last_ack);

// RFC 9293 3.10.7.4 first: a segment that fails the acceptability test (here: wholly before
// RCV.NXT) gets <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and is dropped. Every state.
class TcpStateOldSegment : public TcpStateBase {};
TEST_P(TcpStateOldSegment, GetsAnAckAndIsDropped) {
  const reached r = reach(GetParam());
  inject({.flags = ".", .seq = r.rcv_nxt - 1000, .ack = r.snd_nxt, .data = "old data!!"});
  expect({.flags = ".", .seq = r.snd_nxt, .ack = r.rcv_nxt});
  expect_nothing();
  still_in(r, GetParam());
}
INSTANTIATE_TEST_SUITE_P(Rfc9293, TcpStateOldSegment,
                         ::testing::Values(tcp_state::syn_received, tcp_state::established,
                                           tcp_state::fin_wait_1, tcp_state::fin_wait_2,
                                           tcp_state::close_wait, tcp_state::closing,
                                           tcp_state::last_ack, tcp_state::time_wait),
                         state_name);

// RFC 9293 3.10.7.4 fifth: "if the ACK bit is off, drop the segment and return" - data or FIN
// without ACK is neither delivered nor answered. (TIME-WAIT left out: Linux re-ACKs there.)
class TcpStateNoAck : public TcpStateBase {};
TEST_P(TcpStateNoAck, DataOrFinWithoutAckIsDropped) {
  const reached r = reach(GetParam());
  inject({.flags = "P", .seq = r.rcv_nxt, .data = "no ack"});
  inject({.flags = "F", .seq = r.rcv_nxt});
  expect_nothing();
  at(now_ms() + 200);  // not even a delayed ACK
  expect_nothing();
  still_in(r, GetParam());
  if (r.id != tcp_layer::invalid_socket) {
    EXPECT_EQ(tcp().readable_bytes(r.id), 0U);
  }
}
INSTANTIATE_TEST_SUITE_P(Rfc9293, TcpStateNoAck,
                         ::testing::Values(tcp_state::syn_received, tcp_state::established,
                                           tcp_state::fin_wait_1, tcp_state::fin_wait_2,
                                           tcp_state::close_wait, tcp_state::closing,
                                           tcp_state::last_ack),
                         state_name);

// RFC 9293 3.10.7.4 fourth (RFC 5961 4.2): a SYN in a synchronized state gets a challenge ACK
// <SEQ=SND.NXT><ACK=RCV.NXT>, whatever its sequence number, and changes nothing. (TIME-WAIT may
// accept a SYN as a new connection, RFC 6191: tcp_script_time_wait_test.cpp.)
class TcpStateSyn : public TcpStateBase {};
TEST_P(TcpStateSyn, SynGetsChallengeAck) {
  const reached r = reach(GetParam());
  inject({.flags = "S", .seq = r.rcv_nxt + 100, .mss = 1460});  // in the window
  expect({.flags = ".", .seq = r.snd_nxt, .ack = r.rcv_nxt});
  expect_nothing();
  still_in(r, GetParam());
}
INSTANTIATE_TEST_SUITE_P(Rfc9293, TcpStateSyn, full_sockets, state_name);

// The same for a SYN outside the window: RFC 5961 4.2 says "irrespective of the sequence
// number", so it is a challenge ACK too (counted, and rate limited), not the plain ACK an old
// segment gets.
TEST_F(TcpStateBase, SynOutsideTheWindowGetsAnAck) {
  const reached r = reach(tcp_state::established);
  inject({.flags = "S", .seq = r.rcv_nxt - 5000});
  expect({.flags = ".", .seq = 1, .ack = 1});
  expect_nothing();
  still_in(r, tcp_state::established);
  EXPECT_EQ(tcp().counters().syn_challenged, 1U);
  EXPECT_EQ(tcp().counters().challenge_acks_sent, 1U);
}

// RFC 9293 3.10.7.4 fifth (ESTABLISHED and the states that process ACKs like it) and RFC 5961
// 5.2: an ACK of data never sent (SEG.ACK > SND.NXT) gets a challenge ACK
// <SEQ=SND.NXT><ACK=RCV.NXT> and the segment (and its data) is dropped; counted as ack_too_new
// and ack_challenged. (Linux 6.18 alike: pytests/test_differential.py.)
class TcpStateAckTooNew : public TcpStateBase {};
TEST_P(TcpStateAckTooNew, GetsAnAckAndIsDropped) {
  const reached r = reach(GetParam());
  inject({.flags = ".", .seq = r.rcv_nxt, .ack = r.snd_nxt + 1000, .data = "dropped"});
  expect({.flags = ".", .seq = r.snd_nxt, .ack = r.rcv_nxt});
  expect_nothing();
  still_in(r, GetParam());
  EXPECT_EQ(tcp().readable_bytes(r.id), 0U);
  EXPECT_EQ(tcp().counters().ack_too_new, 1U);
  EXPECT_EQ(tcp().counters().ack_challenged, 1U);
}
INSTANTIATE_TEST_SUITE_P(Rfc9293, TcpStateAckTooNew, full_sockets, state_name);

// RFC 9293 3.10.7.4 second (2): a RST exactly at RCV.NXT ends the connection in every state:
// SYN-RECEIVED (passive) returns to LISTEN; ESTABLISHED, FIN-WAIT-1/2, CLOSE-WAIT report
// "connection reset"; CLOSING, LAST-ACK, TIME-WAIT just close. Nothing is sent.
class TcpStateExactReset : public TcpStateBase {};
TEST_P(TcpStateExactReset, EndsTheConnection) {
  const tcp_state s = GetParam();
  const reached r = reach(s);
  inject({.flags = "R", .seq = r.rcv_nxt});
  expect_nothing();
  EXPECT_EQ(tcp().connections(), 0U);
  EXPECT_EQ(tcp().time_wait_count(), 0U);
  if (s == tcp_state::established || s == tcp_state::fin_wait_1 || s == tcp_state::fin_wait_2 ||
      s == tcp_state::close_wait) {
    EXPECT_EQ(tcp().error(r.id), std::make_error_code(std::errc::connection_reset));
  }
}
INSTANTIATE_TEST_SUITE_P(Rfc9293, TcpStateExactReset,
                         ::testing::Values(tcp_state::syn_received, tcp_state::established,
                                           tcp_state::fin_wait_1, tcp_state::fin_wait_2,
                                           tcp_state::close_wait, tcp_state::closing,
                                           tcp_state::last_ack),
                         state_name);

// TIME-WAIT is the exception, by choice (docs/tcp.md): RFC 1337 (TIME-WAIT assassination) over
// RFC 9293's "a RST at RCV.NXT closes it". The record stays for its 2 MSL, so old duplicates
// cannot reach a new incarnation of the tuple.
TEST_F(TcpStateBase, TimeWaitIgnoresAnExactResetRfc1337) {
  const reached r = reach(tcp_state::time_wait);
  ASSERT_EQ(tcp().time_wait_count(), 1U);
  inject({.flags = "R", .seq = r.rcv_nxt});
  expect_nothing();
  EXPECT_EQ(tcp().time_wait_count(), 1U);
}

// RFC 9293 3.10.7.4 second (3), RFC 5961 3.2: a RST in the window but not at RCV.NXT gets a
// challenge ACK and changes nothing; (1) a RST outside the window is dropped silently.
// (SYN-RECEIVED: TcpRfc5961.RstInTheWindowOfAHalfOpenConnectionIsChallenged; TIME-WAIT ignores
// RSTs, RFC 1337.)
class TcpStateInexactReset : public TcpStateBase {};
TEST_P(TcpStateInexactReset, GetsChallengeAckOrIsDropped) {
  const reached r = reach(GetParam());
  inject({.flags = "R", .seq = r.rcv_nxt + 500});
  expect({.flags = ".", .seq = r.snd_nxt, .ack = r.rcv_nxt});
  inject({.flags = "R", .seq = r.rcv_nxt + 50'000'000});
  inject({.flags = "R.", .seq = r.rcv_nxt - 1, .ack = r.snd_nxt});
  expect_nothing();
  still_in(r, GetParam());
  EXPECT_EQ(tcp().counters().rst_challenged, 1U);  // the outside ones are not challenges
}
INSTANTIATE_TEST_SUITE_P(Rfc9293, TcpStateInexactReset, full_sockets, state_name);

// RFC 9293 3.10.7.4 (SYN-RECEIVED, fifth): an ACK that is not acceptable (acknowledges data we
// never sent) gets <SEQ=SEG.ACK><CTL=RST>; the half-open connection stays.
TEST_F(TcpStateBase, SynReceivedAnswersAckOfUnsentDataWithReset) {
  const reached r = reach(tcp_state::syn_received);
  inject({.flags = ".", .seq = 1, .ack = 5000});
  expect({.flags = "R", .seq = 5000});
  inject({.flags = ".", .seq = 1, .ack = 1});  // the right ACK still completes it
  expect_nothing();
  EXPECT_EQ(tcp().counters().established, 1U);
  (void)r;
}

// RFC 9293 3.10.7.4 fourth (SYN-RECEIVED, passive OPEN): an acceptable SYN "returns this
// connection to the LISTEN state": the half-open connection is gone (Linux also sends a RST).
TEST_F(TcpStateBase, SynReceivedDropsHalfOpenOnInWindowSyn) {
  reach(tcp_state::syn_received);
  inject({.flags = "S", .seq = 100, .mss = 1460});
  for (const observed& o : drain()) {
    EXPECT_TRUE(o.has(wire::tcp_flag::rst)) << o.str();  // a reset, if anything
  }
  EXPECT_EQ(tcp().connections(), 0U);
}

// SYN together with RST or FIN is no valid segment: tcp.hpp's bad_segments ("refused by a check
// (flags, ...)") - refused before any state processing, like BSD's drop_synfin. (RFC 9293 alone
// would check RST before SYN and reset; the contract chose refusal, so a forged SYN+RST at
// RCV.NXT cannot reset.) Nothing is sent, nothing changes.
TEST_F(TcpStateBase, SynWithResetOrFinIsRefused) {
  const reached r = reach(tcp_state::established);
  inject({.flags = "SR", .seq = 1});
  inject({.flags = "SF", .seq = 1});
  inject({.flags = "SF.", .seq = 1, .ack = 1});
  expect_nothing();
  EXPECT_EQ(tcp().counters().bad_segments, 3U);
  still_in(r, tcp_state::established);
}

// RFC 9293 3.8.5 / 3.10.7.4 sixth: the urgent pointer is ignored (no urgent data support), the
// bytes are ordinary data, delivered in order; counted in urgent_ignored.
TEST_F(TcpStateBase, UrgentDataIsOrdinaryData) {
  const reached r = reach(tcp_state::established);
  inject({.flags = "U.", .seq = 1, .ack = 1, .data = "urgent!", .urp = 3});
  inject({.flags = "U.", .seq = 8, .ack = 1, .data = "more", .urp = 60000});  // beyond the data
  at(now_ms() + 40);
  expect({.flags = ".", .seq = 1, .ack = 12});
  EXPECT_EQ(read(r.id), "urgent!more");
  EXPECT_EQ(tcp().counters().urgent_ignored, 2U);
}

}  // namespace tcp_script_states_test
}  // namespace
}  // namespace dpdk_net::stack::script
