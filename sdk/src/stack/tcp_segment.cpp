// TCP input, the steps after the sequence checks (RFC 9293 3.10.7.4 fifth to eighth): the ACK
// (RFC 5681/6582 loss recovery and RFC 3042, RFC 6298 RTT with Karn, the window update), the
// text (in order into the ring, out of order as ranges) and the FIN.
#include <algorithm>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack {

using detail::seq_ge;
using detail::seq_gt;
using detail::seq_le;
using detail::seq_lt;
using detail::tcp_segment_view;
using detail::ts_clock;
namespace flag = wire::tcp_flag;

bool tcp_layer::process_ack(connection& c, const tcp_segment_view& s, time_ns now) {
  const std::uint32_t ack = s.h.ack;
  if (seq_gt(ack, c.snd_max)) {
    // Acknowledges what we never sent: RFC 9293 3.10.7.4 and RFC 5961 5.2 both say ACK and
    // drop (data included: blind data injection needs an acceptable ACK too).
    ++counters_.ack_too_new;
    ++counters_.ack_challenged;
    challenge_ack(c, now);
    return false;
  }
  const std::uint32_t new_window = static_cast<std::uint32_t>(s.h.window) << c.snd_scale;
  const bool window_changed = new_window != c.snd_wnd;
  if (seq_lt(ack, c.snd_una)) {
    // RFC 5961 5.2: acceptable down to SND.UNA - MAX.SND.WND (a late duplicate); older is a
    // blind injection's guess: challenge ACK, drop. Never further back than the data ever
    // acknowledged (as Linux bounds it by bytes_acked): an ACK of our SYN or below
    // acknowledges nothing the peer could have seen us send since.
    const std::uint64_t reach = std::min<std::uint64_t>(c.max_snd_wnd, c.bytes_acked);
    if (seq_lt(ack, c.snd_una - static_cast<std::uint32_t>(reach))) {
      ++counters_.ack_challenged;
      challenge_ack(c, now);
      return false;
    }
    return true;  // an old ACK: ignore it, process the rest
  }
  bool no_scoreboard = false;
  const std::uint32_t newly_sacked = c.sack_ok && s.h.options.sack_count != 0
                                         ? sack_update(c, s.h.options, ack, no_scoreboard)
                                         : 0;
  if (c.persist) {
    c.probes = 0;  // the peer answers: a zero window may stay closed for as long as it does
  }
  // Window update (3.10.7.4 fifth, the SND.WL1/WL2 rule).
  if (seq_lt(c.snd_wl1, s.h.seq) || (c.snd_wl1 == s.h.seq && seq_le(c.snd_wl2, ack))) {
    c.snd_wnd = new_window;
    c.max_snd_wnd = std::max(c.max_snd_wnd, new_window);
    c.snd_wl1 = s.h.seq;
    c.snd_wl2 = ack;
    if (c.snd_wnd != 0 && c.persist) {
      c.persist = false;
      c.force_send = false;
      c.probes = 0;
      c.retransmit_timer.cancel();
      c.backoff = 0;
      c.retries = 0;
    }
  }
  const std::uint32_t mss = send_mss(c);
  const std::uint32_t acked = ack - c.snd_una;
  if (acked == 0) {
    // RFC 5681 2: a duplicate ACK carries no data, no SYN/FIN, the same window, and data is
    // outstanding.
    // With SACK, RFC 6675 2 adds (e): it SACKs new data. A bare duplicate (a spurious
    // retransmission arriving, a reordered ACK, a D-SACK, refused blocks) says nothing is lost.
    // (A valid block with no scoreboard free to keep it: counted as RFC 5681 does.)
    const bool sack_says_new = !c.sack_ok || newly_sacked != 0 || no_scoreboard;
    const bool duplicate = s.payload.empty() && !s.has(flag::syn) && !s.has(flag::fin) &&
                           !window_changed && c.flight() != 0 && !c.persist && sack_says_new;
    if (duplicate) {
      ++counters_.duplicate_acks;
      ++c.dup_acks;
      // RFC 6582 3.2 (2): only if the ACK covers more than `recover` (ours is one past the
      // highest sequence sent, so "covers more than" is ack >= recover).
      // RFC 6675 5 (a)-(b): with a scoreboard, also when SACKed data shows SND.UNA lost.
      const bool sack = c.sack_ok && c.scoreboard != detail::no_slot;
      if (!c.in_recovery && seq_ge(ack, c.recover) &&
          (c.dup_acks == config_.dup_ack_threshold ||
           (sack && c.dup_acks < config_.dup_ack_threshold && sack_is_lost(c, c.snd_una, mss)))) {
        // RFC 6582 3.2 (2)-(3) / RFC 6675 5 (4): fast retransmit, then fast recovery.
        c.cc_algo->on_fast_retransmit(c.cc, c.flight(), mss, now);
        c.recover = c.snd_max;  // RecoveryPoint = HighData
        c.in_recovery = true;
        c.retransmit_one = true;  // RFC 6675 (4.3): SND.UNA's segment first
        c.rtt_timing = false;     // Karn
        if (sack) {
          // RFC 6675: cwnd = ssthresh, and pipe (not inflation) decides what may go.
          c.cc.cwnd = std::max(c.cc.ssthresh, mss);
          c.sack_recovery = true;
          c.high_rxt = c.snd_una;
          // (4.3): RescueRxt = the end of the first retransmission: no rescue before a partial
          // ACK passes it.
          c.rescue_end = c.snd_una + std::min(mss, c.flight());
          ++counters_.sack_recoveries;
        } else {
          c.cc.cwnd = c.cc.ssthresh + 3 * mss;
        }
        ++c.fast_retransmits;
        ++counters_.fast_retransmits;
        want_output(c);
      } else if (c.in_recovery && c.sack_recovery) {
        want_output(c);  // the scoreboard changed: pipe may let more go
      } else if (c.in_recovery) {
        // (4): each further duplicate inflates the window (bounded: a flood of duplicates
        // must not wrap it).
        c.cc.cwnd = std::min(c.cc.cwnd + mss, std::uint32_t{1} << 30U);
        want_output(c);
      } else if (c.dup_acks < config_.dup_ack_threshold) {
        want_output(c);  // RFC 3042 limited transmit: a new segment per early duplicate
      }
    } else if (window_changed) {
      want_output(c);  // the window opened: maybe data can go
    }
    return true;
  }
  // New data acknowledged.
  const bool syn_acked = c.snd_una == c.iss;
  std::uint32_t data_acked = 0;
  if (seq_gt(ack, c.sbuf_seq)) {
    data_acked = std::min(ack - c.sbuf_seq, c.sbuf_len);
    send_queue_acked(c, c.sbuf_seq, c.sbuf_seq + data_acked);
    c.sbuf_seq += data_acked;
    c.sbuf_len -= data_acked;
    c.bytes_acked += data_acked;
    return_drained_send_ring(c);
  }
  if (c.fin_queued && c.sbuf_len == 0 && seq_gt(ack, c.sbuf_seq)) {
    c.fin_acked = true;
  }
  // The SYN's sequence number is not data: it does not grow the window.
  const std::uint32_t acked_bytes = acked - (syn_acked ? 1U : 0U);
  // RTT (RFC 6298 with RFC 7323 4: every ACK of new data with a timestamp echo; without
  // timestamps one timed segment at a time, never a retransmitted one: Karn).
  const wire::tcp_options& o = s.h.options;
  bool sampled = false;
  // Karn (RFC 6298 3) kept for timestamps where they do not resolve the ambiguity: an ACK of
  // retransmitted data echoing a TSval older than the retransmission answers the original (or
  // echoes a stale TS.Recent: the receiver's ACK of it was lost and it answered a later
  // duplicate); either way the sample measures our RTO, not the path, and it inflated SRTT to
  // seconds on a 20 us path at 20 % loss.
  const bool ambiguous = c.rtx_ambiguous && o.timestamps &&
                         seq_lt(o.timestamps->echo_reply, c.rtx_tsval) &&
                         seq_lt(c.snd_una, c.rtx_high);
  if (c.rtx_ambiguous && seq_ge(ack, c.rtx_high)) {
    c.rtx_ambiguous = false;  // everything retransmitted is acknowledged
  }
  if (c.ts_enabled && o.timestamps && o.timestamps->echo_reply != 0 && !ambiguous) {
    if (const auto rtt = timestamp_rtt(c, o.timestamps->echo_reply, now)) {
      update_rtt(c, *rtt);
      sampled = true;
    }
  } else if (c.rtt_timing && seq_gt(ack, c.rtt_seq)) {
    c.rtt_timing = false;
    update_rtt(c, now - c.rtt_start);
    sampled = true;
  }
  c.snd_una = ack;
  if (seq_lt(c.snd_nxt, c.snd_una)) {
    c.snd_nxt = c.snd_una;
  }
  if (sampled) {
    c.backoff = 0;  // Karn: the backed-off RTO stays until a valid sample (RFC 6298 5)
  }
  c.retries = 0;  // progress: the retry limit counts from here
  c.probes = 0;
  c.una_since = now;
  // Loss recovery (RFC 6582 3.2 (5)-(6) / RFC 6675) or the controller's growth.
  if (c.in_recovery) {
    if (seq_ge(ack, c.recover)) {
      c.in_recovery = false;  // full acknowledgment: deflate to ssthresh
      c.sack_recovery = false;
      c.cc.cwnd = std::max(c.cc.ssthresh, mss);
      c.dup_acks = 0;
    } else if (c.sack_recovery) {
      // RFC 6675: a partial ACK changes no window; pipe and NextSeg go on from the scoreboard.
      ++counters_.recovery_partial_acks;
      if (seq_lt(c.high_rxt, c.snd_una)) {
        c.high_rxt = c.snd_una;
      }
      want_output(c);  // NextSeg may find a hole, or the rescue retransmission
    } else {
      ++counters_.recovery_partial_acks;
      c.retransmit_one = true;  // the next hole
      // Deflate by what was acknowledged; add one SMSS back if at least that much was.
      c.cc.cwnd = (c.cc.cwnd > acked ? c.cc.cwnd - acked : 0) + (acked >= mss ? mss : 0);
      c.cc.cwnd = std::max(c.cc.cwnd, mss);
    }
  } else {
    c.dup_acks = 0;
    if (acked_bytes != 0) {
      c.cc_algo->on_ack(c.cc, acked_bytes, mss, now, c.srtt);
    }
  }
  sack_prune(c);  // what SND.UNA passed goes (an empty scoreboard, outside recovery, too)
  // RFC 6298 5.2/5.3: stop the timer when all is acknowledged, else restart it.
  if (c.flight() == 0) {
    if (!c.persist) {
      c.retransmit_timer.cancel();
    }
  } else {
    arm_retransmit(c, now);  // backoff is 0 again: now + RTO (or the user timeout, if sooner)
  }
  if (data_acked != 0) {
    c.soft_error = {};    // the peer is reachable after all: an old ICMP error is no longer news
    c.orphan_probes = 0;  // the peer reads: an orphan's zero-window wait is making progress
    notify(c, socket_events::writable);
    // RFC 1122 2.3.2.1 (1): progress proves the next hop reachable. At most once a second per
    // next hop, kept by the layer (not per connection: 10,000 connections through one gateway
    // would each confirm it).
    if (const auto hop = ip_->next_hop(c.remote);
        hop && (*hop != confirmed_hop_ || now - confirmed_at_ >= second)) {
      confirmed_hop_ = *hop;
      confirmed_at_ = now;
      ip_->arp_layer().confirm_reachable(*hop, now);
    }
  }
  // The window slid: more may go - if there is more (an ACK of everything must not put an
  // idle connection on the output list: output visits cost per connection, not per segment).
  const std::uint32_t data_end = c.sbuf_seq + c.sbuf_len;
  if (c.retransmit_one || seq_lt(c.snd_nxt, data_end) ||
      (c.fin_queued && !c.fin_acked && seq_le(c.snd_nxt, data_end))) {
    want_output(c);
  }
  // Our FIN acknowledged: the closing states move on.
  if (c.fin_acked) {
    switch (c.state) {
      case tcp_state::fin_wait_1:
        c.state = tcp_state::fin_wait_2;
        if (!c.attached) {
          c.close_deadline = now + config_.fin_wait_2;  // orphaned: do not wait forever
        }
        arm_idle(c, now);  // the orphan's deadline, or keepalive (which FIN-WAIT-1 paused)
        break;
      case tcp_state::closing:
        enter_time_wait(c, now, false);
        return false;
      case tcp_state::last_ack:
        become_closed(c, now);
        return false;
      default:
        break;
    }
  }
  return true;
}

void tcp_layer::process_data(connection& c, const tcp_segment_view& s, time_ns now) {
  const auto len = static_cast<std::uint32_t>(s.payload.size());
  std::uint32_t seq = s.h.seq;
  if (s.has(flag::syn)) {
    ++seq;
  }
  if (len == 0 || !c.can_receive_data() || c.fin_received) {
    return;
  }
  c.rcv_mss =
      std::max(c.rcv_mss, std::min(len, static_cast<std::uint32_t>(ip_->config().mtu - 40)));
  if (c.read_shut) {
    // Shut down for reading: in-order data is acknowledged and discarded.
    if (seq == c.rcv_nxt) {
      c.rcv_nxt += len;
      c.read_seq = c.rcv_nxt;
      c.bytes_received += len;
      counters_.bytes_in += len;
    }
    c.ack_now = true;
    want_output(c);
    return;
  }
  if (!c.rbuf.allocated() && !take_receive_ring(c)) {
    ++counters_.receive_budget_drops;  // not even the reserve: the peer will retransmit
    return;
  }
  c.rbuf.write(seq, s.payload);
  if (seq == c.rcv_nxt) {
    c.rcv_nxt += len;
    c.bytes_received += len;
    counters_.bytes_in += len;
    bool filled = false;
    while (c.ooo_count != 0 && seq_le(c.ooo[0].begin, c.rcv_nxt)) {
      if (seq_gt(c.ooo[0].end, c.rcv_nxt)) {
        c.bytes_received += c.ooo[0].end - c.rcv_nxt;
        counters_.bytes_in += c.ooo[0].end - c.rcv_nxt;
        c.rcv_nxt = c.ooo[0].end;
      }
      std::copy(c.ooo.begin() + 1, c.ooo.begin() + c.ooo_count, c.ooo.begin());
      --c.ooo_count;
      filled = true;
    }
    notify(c, socket_events::readable);
    c.unacked_bytes += len;
    if (filled || c.ooo_count != 0 || config_.delayed_ack == 0 ||
        c.unacked_bytes >= 2 * c.rcv_mss) {
      c.ack_now = true;  // RFC 5681 4.2 / RFC 1122 4.2.3.2: at least every second full segment
      want_output(c);
    } else if (!c.ack_timer.armed()) {
      timers_->arm(c.ack_timer, now + config_.delayed_ack);
    }
    if (c.ooo_fin && c.ooo_fin_seq == c.rcv_nxt) {
      c.ooo_fin = false;
      process_fin(c, now);
    }
    return;
  }
  // Out of order: keep it in the ring, remember the range, ACK at once (the duplicate ACK tells
  // the sender; RFC 5681 4.2).
  ++counters_.out_of_order;
  c.last_ooo = seq;  // its range leads the SACK blocks (RFC 2018 4)
  c.ack_now = true;
  if (c.dup_acks_owed < 8) {
    ++c.dup_acks_owed;  // each out-of-order segment gets its own duplicate ACK
  }
  want_output(c);
  detail::seq_range r{seq, seq + len};
  std::size_t i = 0;
  while (i < c.ooo_count && seq_lt(c.ooo[i].end, r.begin)) {
    ++i;
  }
  // Merge with every range it touches from i on.
  std::size_t j = i;
  while (j < c.ooo_count && seq_le(c.ooo[j].begin, r.end)) {
    r.begin = seq_lt(c.ooo[j].begin, r.begin) ? c.ooo[j].begin : r.begin;
    r.end = seq_gt(c.ooo[j].end, r.end) ? c.ooo[j].end : r.end;
    ++j;
  }
  // The work, counted: ranges passed or merged, and at most the rest moved below (bounded by
  // the 8 ranges, however many segments a sender sprays into the window).
  counters_.out_of_order_range_visits += j + (c.ooo_count - i);
  const std::size_t limit = std::min<std::size_t>(config_.out_of_order_ranges, c.ooo.size());
  if (j == i && c.ooo_count >= limit) {
    ++counters_.out_of_order_dropped;  // no range left: the sender retransmits it
    return;
  }
  if (j == i) {
    std::copy_backward(c.ooo.begin() + static_cast<std::ptrdiff_t>(i), c.ooo.begin() + c.ooo_count,
                       c.ooo.begin() + c.ooo_count + 1);
    ++c.ooo_count;
  } else if (j > i + 1) {
    std::copy(c.ooo.begin() + static_cast<std::ptrdiff_t>(j), c.ooo.begin() + c.ooo_count,
              c.ooo.begin() + static_cast<std::ptrdiff_t>(i + 1));
    c.ooo_count = static_cast<std::uint8_t>(c.ooo_count - (j - i - 1));
  }
  c.ooo[i] = r;
}

void tcp_layer::process_fin(connection& c, time_ns now) {
  c.rcv_nxt += 1;
  c.fin_received = true;
  c.ack_now = true;
  notify(c, socket_events::readable);
  switch (c.state) {
    case tcp_state::syn_received:
    case tcp_state::established:
      c.state = tcp_state::close_wait;
      arm_idle(c, now);
      break;
    case tcp_state::fin_wait_1:
      if (!c.fin_acked) {
        c.state = tcp_state::closing;
        break;
      }
      [[fallthrough]];
    case tcp_state::fin_wait_2: {
      // The last ACK is owed by the record (which also answers retransmitted FINs): built at
      // the next drain, so a burst of closing connections cannot overflow the tx queue.
      enter_time_wait(c, now, true);
      return;
    }
    default:
      break;
  }
  want_output(c);
}

std::optional<time_ns> tcp_layer::timestamp_rtt(const connection& c, std::uint32_t echo,
                                                time_ns now) const noexcept {
  // The echo is one of our TSvals: at most "now" on our clock. One from the future (a broken
  // or rewriting peer) would wrap into a days-long sample: none is taken.
  const auto elapsed = static_cast<std::int32_t>(ts_clock(now) + c.ts_offset - echo);
  if (elapsed < 0) {
    return std::nullopt;
  }
  return static_cast<time_ns>(elapsed) * millisecond;
}

void tcp_layer::update_rtt(connection& c, time_ns r) noexcept {
  r = std::max<time_ns>(r, 1);
  if (c.srtt == 0) {
    c.srtt = r;  // 2.2
    c.rttvar = r / 2;
  } else {  // 2.3: beta = 1/4, alpha = 1/8
    const time_ns diff = c.srtt > r ? c.srtt - r : r - c.srtt;
    c.rttvar = (3 * c.rttvar + diff) / 4;
    c.srtt = (7 * c.srtt + r) / 8;
  }
  // RTO = SRTT + max(G, 4 RTTVAR), G the timer granularity (1 ms), clamped (2.4, 2.5).
  const time_ns rto = c.srtt + std::max<time_ns>(millisecond, 4 * c.rttvar);
  c.rto = std::clamp(rto, config_.rto_min, config_.rto_max);
}

}  // namespace dpdk_net::stack
