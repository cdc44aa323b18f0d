// TCP input: one keyed 4-tuple lookup per segment, then RFC 9293 3.10.7 "SEGMENT ARRIVES" for
// the state found (listener, SYN-SENT, synchronized, TIME-WAIT record, or none), with RFC 7323
// PAWS, RFC 5681/6582 loss recovery, RFC 6298 RTT estimation and RFC 5927 ICMP checks.
#include <algorithm>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack {

using detail::no_slot;
using detail::seq_ge;
using detail::seq_gt;
using detail::seq_le;
using detail::seq_lt;
using detail::tcp_segment_view;
namespace flag = wire::tcp_flag;

namespace {
constexpr time_ns paws_idle_limit = 24ULL * 24 * 3600 * second;  // RFC 7323 5.5
[[nodiscard]] std::uint32_t ts_clock(time_ns now) noexcept {
  return static_cast<std::uint32_t>(now / millisecond);
}
}  // namespace

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

std::uint32_t tcp_layer::find_tuple(wire::ipv4_address remote, std::uint16_t remote_port,
                                    std::uint16_t local_port) const noexcept {
  return index_.find(tuple_hash(remote, remote_port, local_port), [&](std::uint32_t s) {
    if (s < slab_.size()) {
      const connection& o = slab_[s];
      return o.remote == remote && o.remote_port == remote_port && o.local_port == local_port;
    }
    const detail::time_wait_record& r = tw_[s - slab_.size()];
    return r.remote == remote && r.remote_port == remote_port && r.local_port == local_port;
  });
}

void tcp_layer::receive(std::span<const std::byte> datagram, std::size_t ip_header_length,
                        bool l4_checksum_good, time_ns now) {
  tcp_segment_view s;
  s.src = wire::ipv4_address{wire::load32(datagram.data() + 12)};
  s.dst = wire::ipv4_address{wire::load32(datagram.data() + 16)};
  const wire::pseudo_header ph{s.src, s.dst};
  const auto r =
      wire::parse_tcp(datagram.subspan(ip_header_length), l4_checksum_good ? nullptr : &ph);
  if (!r) {
    ip_->malformed(r.error);
    return;
  }
  s.h = r.header;
  s.payload = r.payload;
  ++counters_.segments_in;
  // Flag combinations no stack sends (SYN+RST, SYN+FIN) and port 0: dropped, as Linux does
  // (RFC 9293 would answer some with a RST; answering them only helps scanners). Everything
  // else, flagless segments included, goes through the per-state rules.
  if ((s.has(flag::syn) && (s.has(flag::rst) || s.has(flag::fin))) || s.h.src_port == 0 ||
      s.h.dst_port == 0) {
    ++counters_.bad_segments;
    return;
  }
  if (s.has(flag::urg)) {
    ++counters_.urgent_ignored;  // urgent data is ordinary data here (RFC 6093)
  }
  ++counters_.demux_lookups;
  const std::uint32_t slot = find_tuple(s.src, s.h.src_port, s.h.dst_port);
  if (slot != no_slot && slot < slab_.size()) {
    connection& c = slab_[slot];
    if (c.state == tcp_state::syn_sent) {
      segment_syn_sent(c, s, now);
    } else {
      segment_synchronized(c, s, now);
    }
    return;
  }
  if (slot != no_slot) {
    segment_for_time_wait(tw_[slot - slab_.size()], s, now);
    return;
  }
  if (const std::int32_t l = listeners_[s.h.dst_port]; l >= 0) {
    segment_for_listener(slab_[static_cast<std::size_t>(l)], s, now);
    return;
  }
  ++counters_.no_socket;
  send_reset_for(s, now);
}

void tcp_layer::send_reset_for(const tcp_segment_view& s, time_ns now) noexcept {
  // RFC 9293 3.10.7.1: never a RST for a RST. If the segment has an ACK the reset takes its
  // sequence number from it (and carries no ACK); otherwise it is sequence 0 with an ACK of
  // everything the segment occupied.
  if (s.has(flag::rst)) {
    return;
  }
  if (s.has(flag::ack)) {
    send_control(s.src, s.h.dst_port, s.h.src_port, s.h.ack, 0, flag::rst, 0, nullptr, now);
  } else {
    send_control(s.src, s.h.dst_port, s.h.src_port, 0, s.h.seq + s.length(), flag::rst | flag::ack,
                 0, nullptr, now);
  }
}

// --- LISTEN (3.10.7.2) ------------------------------------------------------------------------

void tcp_layer::segment_for_listener(connection& l, const tcp_segment_view& s, time_ns now,
                                     std::optional<std::uint32_t> isn_above) {
  if (s.has(flag::rst)) {
    return;
  }
  if (s.has(flag::ack)) {
    ++counters_.no_socket;
    send_reset_for(s, now);
    return;
  }
  if (!s.has(flag::syn)) {
    return;
  }
  if (l.half_open + l.queued >= l.backlog) {
    ++counters_.listen_overflow;  // dropped: the peer retries its SYN (no RST: RFC 9293 allows)
    return;
  }
  if (ip_->is_martian_source(s.src) || ip_->is_local_broadcast(s.dst)) {
    ++counters_.bad_segments;
    return;
  }
  connection* cp = alloc_connection();
  if (cp == nullptr) {
    return;
  }
  connection& c = *cp;
  const auto lslot = static_cast<std::uint32_t>(&l - slab_.data());
  c.attached = false;  // accept() attaches it
  c.options = l.options;
  c.parent = lslot;
  c.list = detail::list_kind::half_open;
  c.sibling_prev = l.half_open_tail;
  const auto cslot = static_cast<std::uint32_t>(&c - slab_.data());
  (l.half_open_tail != no_slot ? slab_[l.half_open_tail].sibling_next : l.half_open_head) = cslot;
  l.half_open_tail = cslot;
  ++l.half_open;

  c.remote = s.src;
  c.remote_port = s.h.src_port;
  c.local_port = s.h.dst_port;
  c.irs = s.h.seq;
  c.rcv_nxt = c.read_seq = c.rcv_adv = s.h.seq + 1;
  c.iss = initial_sequence(c.remote, c.remote_port, c.local_port, now);
  if (isn_above && seq_le(c.iss, *isn_above)) {
    c.iss = *isn_above + 65536;  // RFC 6191: above the TIME-WAIT incarnation's sequence space
  }
  c.snd_una = c.snd_nxt = c.snd_max = c.recover = c.iss;
  c.sbuf_seq = c.iss + 1;
  c.rcv_buffer = c.options.receive_buffer != 0 ? c.options.receive_buffer : config_.receive_buffer;
  const wire::tcp_options& o = s.h.options;
  c.mss_peer = std::max<std::uint32_t>(o.mss.value_or(536), config_.min_mss);
  if (config_.window_scaling && o.window_scale) {
    c.snd_scale = o.effective_window_scale();
    c.ws_ok = true;
    while (c.rcv_scale < wire::tcp_max_window_scale && (c.rcv_buffer >> c.rcv_scale) > 65535) {
      ++c.rcv_scale;
    }
  }
  if (config_.timestamps && o.timestamps) {
    c.ts_enabled = true;
    c.ts_recent = o.timestamps->value;
    c.ts_recent_valid = true;
    c.ts_recent_time = now;
    c.ts_offset = timestamp_offset(c.remote, c.remote_port, c.local_port);
  }
  c.snd_wnd = s.h.window;  // never scaled in a SYN (RFC 7323 2.2)
  c.max_snd_wnd = c.snd_wnd;
  c.snd_wl1 = s.h.seq;
  c.snd_wl2 = c.iss;
  c.state = tcp_state::syn_received;
  c.used = true;
  c.last_receive = now;
  c.una_since = now;
  ++connection_count_;
  ++counters_.passive_opens;
  index_insert(c);
  // The SYN-ACK's timer runs from now, even if it waits for ARP: a child whose peer never
  // resolves gives up after the SYN-ACK retries and frees its backlog place.
  arm_retransmit(c, now);
  want_output(c);  // the SYN-ACK (data in the SYN is not accepted: it is sent again)
}

// --- SYN-SENT (3.10.7.3) ----------------------------------------------------------------------

void tcp_layer::segment_syn_sent(connection& c, const tcp_segment_view& s, time_ns now) {
  const bool ack = s.has(flag::ack);
  if (ack && (seq_le(s.h.ack, c.iss) || seq_gt(s.h.ack, c.snd_max))) {
    if (!s.has(flag::rst)) {
      send_control(s.src, c.local_port, c.remote_port, s.h.ack, 0, flag::rst, 0, nullptr, now);
    }
    return;
  }
  if (s.has(flag::rst)) {
    if (ack) {
      ++counters_.resets_received;
      fail(c, std::make_error_code(std::errc::connection_refused), now);
    }
    return;
  }
  if (!s.has(flag::syn)) {
    return;
  }
  c.irs = s.h.seq;
  c.rcv_nxt = c.read_seq = c.rcv_adv = s.h.seq + 1;
  const wire::tcp_options& o = s.h.options;
  c.mss_peer = std::max<std::uint32_t>(o.mss.value_or(536), config_.min_mss);
  if (config_.window_scaling && o.window_scale) {
    c.snd_scale = o.effective_window_scale();
    c.ws_ok = true;
  } else {
    c.rcv_scale = 0;  // both sides must offer it (RFC 7323 2.2)
  }
  if (config_.timestamps && o.timestamps) {
    c.ts_enabled = true;
    c.ts_recent = o.timestamps->value;
    c.ts_recent_valid = true;
    c.ts_recent_time = now;
  }
  c.snd_wnd = s.h.window;
  c.max_snd_wnd = c.snd_wnd;
  c.snd_wl1 = s.h.seq;
  c.snd_wl2 = s.h.ack;
  c.last_receive = now;
  if (ack) {
    // SYN-ACK: established. RTT from the handshake (timestamps, or the SYN's send time unless
    // the SYN was retransmitted: Karn).
    if (c.ts_enabled && o.timestamps && o.timestamps->echo_reply != 0) {
      if (const auto rtt = timestamp_rtt(c, o.timestamps->echo_reply, now)) {
        update_rtt(c, *rtt);
      }
    } else if (c.retransmits == 0) {
      update_rtt(c, now - c.una_since);
    }
    c.snd_una = s.h.ack;
    c.retransmit_timer.cancel();
    c.backoff = 0;
    c.retries = 0;
    established(c, now);
    if (c.fin_queued) {
      c.state = tcp_state::fin_wait_1;  // shut down while connecting: the FIN follows the data
    }
    if (seq_lt(c.snd_nxt, c.snd_una)) {
      c.snd_nxt = c.snd_una;  // an RTO wound it back to the ISN before this SYN-ACK came
    }
    c.ack_now = true;
    want_output(c);
    if (!s.payload.empty() || s.has(flag::fin)) {
      // Text on a SYN-ACK is taken as from 3.10.7.4's sixth step: only what fits our window.
      tcp_segment_view d = s;
      const std::uint32_t room = receive_window(c);
      bool fin = s.has(flag::fin);
      if (d.payload.size() > room) {
        d.payload = d.payload.first(room);
        d.h.flags &= static_cast<std::uint8_t>(~flag::fin);
        fin = false;
      }
      process_data(c, d, now);
      if (fin && c.in_use && c.rcv_nxt == s.h.seq + 1 + s.payload.size()) {
        process_fin(c, now);
      }
    }
    return;
  }
  // Simultaneous open (3.10.7.3 fourth): SYN-RECEIVED, and our SYN is sent again with an ACK.
  c.state = tcp_state::syn_received;
  c.snd_nxt = c.iss;
  want_output(c);
}

// --- synchronized states (3.10.7.4) -----------------------------------------------------------

void tcp_layer::segment_synchronized(connection& c, const tcp_segment_view& s_in, time_ns now) {
  tcp_segment_view s = s_in;
  const wire::tcp_options& o = s.h.options;
  // RFC 7323 5.3 PAWS: an older timestamp means an old duplicate (unless the last one is more
  // than 24 days old: then it is no longer trusted).
  if (c.ts_enabled && o.timestamps && !s.has(flag::rst) && c.ts_recent_valid &&
      seq_lt(o.timestamps->value, c.ts_recent)) {
    if (now - c.ts_recent_time > paws_idle_limit) {
      c.ts_recent_valid = false;
    } else {
      ++counters_.paws_rejected;
      c.ack_now = true;
      want_output(c);
      return;
    }
  }
  if (c.state == tcp_state::syn_received && s.has(flag::syn) && !s.has(flag::ack) &&
      s.h.seq == c.irs) {
    // The peer did not get our SYN-ACK: the same one again (same ISN).
    c.snd_nxt = c.iss;
    want_output(c);
    return;
  }
  if (c.state == tcp_state::syn_received && c.parent == no_slot && s.has(flag::syn) &&
      s.has(flag::ack) && s.h.seq == c.irs) {
    // Simultaneous open (RFC 9293 figure 8): the peer's SYN-ACK repeats the SYN we have and
    // acknowledges ours. Its SYN is old news; its ACK completes the handshake.
    s.h.seq += 1;
    s.h.flags &= static_cast<std::uint8_t>(~flag::syn);
  }
  // First: the sequence number (3.10.7.4, the four cases).
  const std::uint32_t len = s.length();
  // RCV.WND: what the peer may use, i.e. what we advertised (or more, if the application read
  // since); data is then cut to the free buffer (`free`) below.
  const std::uint32_t free = receive_window(c);
  const std::uint32_t advertised = seq_gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
  const std::uint32_t window = std::max(free, advertised);
  const std::uint32_t seq = s.h.seq;
  bool acceptable = false;
  if (len == 0) {
    // A pure ACK exactly at the right edge is taken (as Linux does): it is what a peer that has
    // filled our window sends, and refusing it deadlocks two full windows.
    acceptable =
        window == 0 ? seq == c.rcv_nxt : seq_le(c.rcv_nxt, seq) && seq_le(seq, c.rcv_nxt + window);
  } else if (window != 0) {
    acceptable = (seq_le(c.rcv_nxt, seq) && seq_lt(seq, c.rcv_nxt + window)) ||
                 (seq_le(c.rcv_nxt, seq + len - 1) && seq_lt(seq + len - 1, c.rcv_nxt + window));
  } else if (seq == c.rcv_nxt) {
    // A zero window still takes ACKs (and RSTs): keep the control part, drop the data.
    acceptable = true;
    s.payload = {};
    s.h.flags &= static_cast<std::uint8_t>(~flag::fin);
    c.ack_now = true;
  }
  if (!acceptable) {
    if (!s.has(flag::rst)) {
      ++counters_.not_acceptable;
      if (seq_lt(seq + len, c.rcv_nxt) || seq + len == c.rcv_nxt) {
        ++counters_.spurious_rtx_data;
      }
      c.ack_now = true;
      want_output(c);
    }
    return;
  }
  c.last_receive = now;
  // Second: RST (RFC 9293 with RFC 5961 3.2: exact match resets, in-window gets a challenge).
  if (s.has(flag::rst)) {
    if (seq != c.rcv_nxt) {
      c.ack_now = true;
      want_output(c);
      return;
    }
    ++counters_.resets_received;
    switch (c.state) {
      case tcp_state::syn_received:
        fail(c, std::make_error_code(std::errc::connection_refused), now);
        return;
      case tcp_state::closing:
      case tcp_state::last_ack:
        become_closed(c, now);
        return;
      default:
        fail(c, std::make_error_code(std::errc::connection_reset), now);
        return;
    }
  }
  // Fourth: SYN in a synchronized state: a challenge ACK (RFC 9293 / 5961 4); a passive
  // SYN-RECEIVED goes back to LISTEN (the child is dropped).
  if (s.has(flag::syn)) {
    if (c.state == tcp_state::syn_received && c.parent != no_slot) {
      fail(c, std::make_error_code(std::errc::connection_reset), now);
      return;
    }
    c.ack_now = true;
    want_output(c);
    return;
  }
  // Fifth: the ACK field.
  if (!s.has(flag::ack)) {
    return;
  }
  // Timestamps: TS.Recent from segments that cover RCV.NXT (RFC 7323 4.3).
  if (c.ts_enabled && o.timestamps && seq_le(seq, c.last_ack_sent)) {
    if (!c.ts_recent_valid || seq_ge(o.timestamps->value, c.ts_recent)) {
      c.ts_recent = o.timestamps->value;
      c.ts_recent_valid = true;
      c.ts_recent_time = now;
    }
  }
  if (c.state == tcp_state::syn_received) {
    if (!(seq_lt(c.snd_una, s.h.ack) && seq_le(s.h.ack, c.snd_max))) {
      send_control(s.src, c.local_port, c.remote_port, s.h.ack, 0, flag::rst, 0, nullptr, now);
      return;
    }
    c.snd_wnd = static_cast<std::uint32_t>(s.h.window) << c.snd_scale;
    c.max_snd_wnd = std::max(c.max_snd_wnd, c.snd_wnd);
    c.snd_wl1 = seq;
    c.snd_wl2 = s.h.ack;
    if (!(c.ts_enabled && o.timestamps) && c.retransmits == 0) {
      update_rtt(c, now - c.una_since);  // the SYN-ACK, sent once: a valid sample (as Linux)
    }
    const bool fin_pending = c.fin_queued;
    established(c, now);
    if (fin_pending) {
      c.state = tcp_state::fin_wait_1;  // closed (or shut down) before the handshake finished
    }
  }
  if (!process_ack(c, s, now)) {
    return;  // dropped, or the connection is gone
  }
  // Seventh: the text. Trim what is already received or beyond the window.
  std::uint32_t data_seq = seq;
  std::span<const std::byte> data = s.payload;
  bool fin = s.has(flag::fin);
  if (seq_lt(data_seq, c.rcv_nxt)) {
    const std::uint32_t old =
        std::min<std::uint32_t>(c.rcv_nxt - data_seq, static_cast<std::uint32_t>(data.size()));
    data = data.subspan(old);
    data_seq += old;
    if (!data.empty() || !fin) {
      ++counters_.spurious_rtx_data;
    }
  }
  const std::uint32_t room = c.rcv_nxt + free - data_seq;
  if (seq_gt(data_seq + static_cast<std::uint32_t>(data.size()), c.rcv_nxt + free)) {
    data = data.first(seq_lt(data_seq, c.rcv_nxt + free) ? room : 0);
    fin = false;  // beyond the window: it comes again
  }
  if (!data.empty()) {
    tcp_segment_view d = s;
    d.h.seq = data_seq;
    d.payload = data;
    process_data(c, d, now);
    if (!c.in_use || c.state == tcp_state::closed) {
      return;  // a remembered FIN completed the close (the slot may be free now)
    }
  }
  // Eighth: FIN (in order only; an early one is remembered until the gap fills).
  if (fin && c.can_receive_data() && !c.fin_received) {
    const std::uint32_t fin_seq = seq + static_cast<std::uint32_t>(s.payload.size());
    if (fin_seq == c.rcv_nxt) {
      process_fin(c, now);
    } else if (seq_gt(fin_seq, c.rcv_nxt)) {
      c.ooo_fin = true;
      c.ooo_fin_seq = fin_seq;
      c.ack_now = true;
      want_output(c);
    }
  } else if (fin && c.fin_received && seq + s.payload.size() + 1 == c.rcv_nxt) {
    c.ack_now = true;  // a retransmitted FIN: our ACK was lost
    want_output(c);
  }
}

bool tcp_layer::process_ack(connection& c, const tcp_segment_view& s, time_ns now) {
  const std::uint32_t ack = s.h.ack;
  if (seq_gt(ack, c.snd_max)) {
    ++counters_.ack_too_new;  // acknowledges what we never sent: ACK and drop (3.10.7.4)
    c.ack_now = true;
    want_output(c);
    return false;
  }
  const std::uint32_t new_window = static_cast<std::uint32_t>(s.h.window) << c.snd_scale;
  const bool window_changed = new_window != c.snd_wnd;
  if (seq_lt(ack, c.snd_una)) {
    return true;  // an old ACK: ignore it, process the rest
  }
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
    const bool duplicate = s.payload.empty() && !s.has(flag::syn) && !s.has(flag::fin) &&
                           !window_changed && c.flight() != 0 && !c.persist;
    if (duplicate) {
      ++counters_.duplicate_acks;
      ++c.dup_acks;
      // RFC 6582 3.2 (2): only if the ACK covers more than `recover` (ours is one past the
      // highest sequence sent, so "covers more than" is ack >= recover).
      if (!c.in_recovery && c.dup_acks == config_.dup_ack_threshold && seq_ge(ack, c.recover)) {
        // RFC 6582 3.2 (2)-(3): fast retransmit, then fast recovery.
        c.cc_algo->on_fast_retransmit(c.cc, c.flight(), mss, now);
        c.recover = c.snd_max;
        c.cc.cwnd = c.cc.ssthresh + 3 * mss;
        c.in_recovery = true;
        c.retransmit_one = true;
        c.rtt_timing = false;  // Karn
        ++c.fast_retransmits;
        ++counters_.fast_retransmits;
        want_output(c);
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
    c.sbuf_seq += data_acked;
    c.sbuf_len -= data_acked;
    c.bytes_acked += data_acked;
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
  // Loss recovery (RFC 6582 3.2 (5)-(6)) or the controller's growth.
  if (c.in_recovery) {
    if (seq_ge(ack, c.recover)) {
      c.in_recovery = false;  // full acknowledgment: deflate to ssthresh
      c.cc.cwnd = std::max(c.cc.ssthresh, mss);
      c.dup_acks = 0;
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
    if (now - c.arp_confirmed >= second) {
      // RFC 1122 2.3.2.1 (1): progress proves the next hop reachable (at most once a second).
      c.arp_confirmed = now;
      if (const auto hop = ip_->next_hop(c.remote)) {
        ip_->arp_layer().confirm_reachable(*hop, now);
      }
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
  if (!c.rbuf.allocated()) {
    if (!c.rbuf.allocate(c.rcv_buffer)) {
      ++counters_.out_of_order_dropped;
      return;
    }
    counters_.buffer_bytes += c.rbuf.capacity();
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

// --- TIME-WAIT records ----------------------------------------------------------------------

void tcp_layer::free_time_wait(std::uint32_t t) noexcept {
  detail::time_wait_record& r = tw_[t];
  index_.erase(r.hash, static_cast<std::uint32_t>(slab_.size()) + t);
  tw_order_.remove(t);
  tw_acks_.remove(t);
  r.in_use = false;
  tw_free_.push_back(t);
  --tw_used_;
}

void tcp_layer::segment_for_time_wait(detail::time_wait_record& r, const tcp_segment_view& s,
                                      time_ns now) {
  const auto t = static_cast<std::uint32_t>(&r - tw_.data());
  const wire::tcp_options& o = s.h.options;
  if (s.has(flag::rst)) {
    return;  // RFC 1337: a RST must not cut TIME-WAIT short (TIME-WAIT assassination)
  }
  if (s.has(flag::syn) && !s.has(flag::ack)) {
    // RFC 6191 (timestamps) / RFC 1122 4.2.2.13 (sequence): a new incarnation may reuse the
    // tuple if it is provably newer than the old one.
    const bool newer = r.ts_enabled && o.timestamps ? seq_gt(o.timestamps->value, r.ts_recent)
                                                    : seq_gt(s.h.seq, r.rcv_nxt);
    const std::int32_t l = listeners_[s.h.dst_port];
    if (newer && l >= 0) {
      const std::uint32_t old_snd_nxt = r.snd_nxt;
      free_time_wait(t);
      ++counters_.time_wait_reused;
      segment_for_listener(slab_[static_cast<std::size_t>(l)], s, now, old_snd_nxt);
      return;
    }
  }
  if (r.ts_enabled && o.timestamps && seq_lt(o.timestamps->value, r.ts_recent)) {
    ++counters_.paws_rejected;
  }
  const bool fin = s.has(flag::fin);
  if (fin) {
    // A retransmitted FIN: our last ACK was lost. ACK again and restart the 2 MSL wait.
    r.expiry = now + config_.time_wait;
    tw_order_.push_back(t);  // moves it to the back: the list stays in expiry order
  }
  if ((fin || s.has(flag::syn) || !s.payload.empty()) && !tw_acks_.contains(t)) {
    tw_acks_.push_back(t);  // an ACK owed, built at the next drain
  }
}

// --- RTT (RFC 6298 2) -------------------------------------------------------------------------

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

// --- ICMP (RFC 5927) ----------------------------------------------------------------------------

bool tcp_layer::icmp_error(std::uint8_t type, std::uint8_t code, std::uint16_t mtu,
                           std::span<const std::byte> quote, time_ns now) {
  const auto q =
      wire::parse_ipv4(quote, wire::ipv4_parse_options{.verify_checksum = false, .quoted = true});
  if (!q || q.header.src != ip_->config().address || q.payload.size() < 8 ||
      q.header.fragment_offset != 0) {
    ++counters_.icmp_ignored;
    return false;
  }
  const std::uint16_t local_port = wire::load16(q.payload.data());
  const std::uint16_t remote_port = wire::load16(q.payload.data() + 2);
  const std::uint32_t seq = wire::load32(q.payload.data() + 4);
  const std::uint32_t slot = find_tuple(q.header.dst, remote_port, local_port);
  if (slot == no_slot || slot >= slab_.size()) {
    ++counters_.icmp_ignored;
    return false;
  }
  connection& c = slab_[slot];
  // The quoted sequence number must be one we sent and is not yet acknowledged: a blind
  // attacker must guess it (RFC 5927 4.1).
  if (!(seq_le(c.snd_una, seq) && seq_lt(seq, c.snd_max))) {
    ++counters_.icmp_ignored;
    return false;
  }
  ++counters_.icmp_accepted;
  if (type == wire::icmp_type::destination_unreachable) {
    switch (code) {
      case wire::icmp_unreachable::fragmentation_needed:
        // The stack lowers the path MTU; segments are cut to it from the next one sent, and what
        // is in flight (too big) is sent again at once.
        (void)mtu;
        c.snd_nxt = c.snd_una;
        c.rtt_timing = false;
        want_output(c);
        return true;
      case wire::icmp_unreachable::protocol:
      case wire::icmp_unreachable::port:
        if (c.state == tcp_state::syn_sent) {
          fail(c, std::make_error_code(std::errc::connection_refused), now);
          return true;
        }
        c.soft_error = std::make_error_code(std::errc::connection_refused);
        return true;
      case 0:  // net unreachable
      case 6:
      case 9:
        c.soft_error = std::make_error_code(std::errc::network_unreachable);
        return true;
      default:
        c.soft_error = std::make_error_code(std::errc::host_unreachable);
        return true;
    }
  }
  c.soft_error = std::make_error_code(std::errc::host_unreachable);  // time exceeded
  return true;
}

}  // namespace dpdk_net::stack
