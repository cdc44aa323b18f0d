// TCP input: one keyed 4-tuple lookup per segment, then RFC 9293 3.10.7 "SEGMENT ARRIVES" for
// the state found (listener, SYN-SENT, synchronized, TIME-WAIT record, or none), with RFC 7323
// PAWS. The ACK, text and FIN steps are in tcp_segment.cpp, TIME-WAIT in tcp_time_wait.cpp,
// ICMP in tcp_icmp.cpp.
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
}  // namespace

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
    // No child and no TIME-WAIT record has this tuple: the ACK completing a cookie handshake
    // (tcp_syn_cookie.cpp), or else <SEQ=SEG.ACK><CTL=RST>.
    if (!s.has(flag::syn) && syn_cookie_ack(l, s, now)) {
      return;
    }
    ++counters_.no_socket;
    send_reset_for(s, now);
    return;
  }
  if (!s.has(flag::syn)) {
    return;
  }
  if (ip_->is_martian_source(s.src) || ip_->is_local_broadcast(s.dst)) {
    ++counters_.bad_segments;
    return;
  }
  // The accept queue (the backlog) is full: the SYN is dropped, as Linux does, and the peer
  // retries it (no RST: RFC 9293 allows). Its handshake could only end in a full queue.
  if (l.queued >= l.backlog) {
    ++counters_.listen_overflow;
    return;
  }
  // The SYN queue is full: a cookie answers without keeping state (RFC 4987), else the SYN is
  // dropped. docs/tcp.md "Queues and SYN cookies".
  if (l.half_open >= config_.syn_queue) {
    ++counters_.syn_queue_overflow;
    if (config_.syn_cookies) {
      send_syn_cookie(l, s, now);
    }
    return;
  }
  std::uint32_t iss = initial_sequence(s.src, s.h.src_port, s.h.dst_port, now);
  if (isn_above && seq_le(iss, *isn_above)) {
    iss = *isn_above + 65536;  // RFC 6191: above the TIME-WAIT incarnation's sequence space
  }
  connection* c = new_child(l, s, iss, now);
  if (c == nullptr) {
    return;
  }
  // The SYN-ACK's timer runs from now, even if it waits for ARP: a child whose peer never
  // resolves gives up after the SYN-ACK retries and frees its SYN-queue place.
  arm_retransmit(*c, now);
  want_output(*c);  // the SYN-ACK (data in the SYN is not accepted: it is sent again)
}

tcp_layer::connection* tcp_layer::new_child(connection& l, const tcp_segment_view& s,
                                            std::uint32_t iss, time_ns now) {
  connection* cp = alloc_connection();
  if (cp == nullptr) {
    return nullptr;
  }
  connection& c = *cp;
  const auto lslot = static_cast<std::uint32_t>(&l - slab_.data());
  c.attached = false;  // accept() attaches it
  c.options = l.options;
  c.parent = lslot;
  c.local_port = l.local_port;
  if ((l.held & detail::port_hold::bound) != 0) {
    // The listener's port stays held here while its children live; a child whose flow the
    // hash steers elsewhere (a lone listener's) also holds it as such, so that no other worker
    // starts listening and takes the flow.
    std::uint8_t kinds = detail::port_hold::bound;
    if (coordinator_ != nullptr &&
        coordinator_->acquire(port_claim::child, 6, l.local_port, s.src, s.h.src_port)) {
      kinds |= detail::port_hold::child;
    }
    hold_port(c.local_port, c.held, kinds);
  }
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
  c.iss = iss;
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
  c.sack_ok = config_.sack && o.sack_permitted;  // RFC 2018 2: both must offer it
  c.snd_wnd = s.h.window;                        // never scaled in a SYN (RFC 7323 2.2)
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
  return cp;
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
  c.sack_ok = config_.sack && o.sack_permitted;
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

void tcp_layer::challenge_ack(connection& c, time_ns now) noexcept {
  if (c.ack_now) {
    // An ACK is owed already and carries the same <SEQ=SND.NXT><ACK=RCV.NXT>: nothing more
    // goes out, so nothing is taken from the allowance (a burst of forged RSTs in one receive
    // batch costs one ACK, not a second's allowance).
    ++counters_.challenge_acks_sent;
    return;
  }
  if (const std::uint32_t n = config_.challenge_acks_per_second; n != 0) {
    // RFC 5961 7: a per-stack allowance per second. A fixed shared limit is a side channel
    // (CVE-2016-5696: an off-path attacker fills it from its own connection and counts the
    // challenge ACKs missing, learning whether its forged segments hit someone else's
    // connection), so each second's allowance is drawn from [n - n/2, n + n/2] (mean n), keyed
    // by the secret: unpredictable to the attacker, reproducible in the simulator.
    const std::uint64_t this_second = now / second;
    if (this_second != challenge_second_) {
      challenge_second_ = this_second;
      const std::uint32_t half = n / 2;
      const std::uint64_t draw = siphash24(challenge_key_, this_second);
      challenge_left_ = n - half + static_cast<std::uint32_t>(draw % (std::uint64_t{half} * 2 + 1));
    }
    if (challenge_left_ == 0) {
      ++counters_.challenge_acks_limited;
      return;
    }
    --challenge_left_;
  }
  ++counters_.challenge_acks_sent;
  c.ack_now = true;
  want_output(c);
}

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
      if (s.has(flag::syn)) {
        ++counters_.syn_challenged;  // RFC 5961 4.2: a SYN, whatever else is wrong with it
        challenge_ack(c, now);
      } else {
        c.ack_now = true;
        want_output(c);
      }
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
      if (s.has(flag::syn)) {
        // RFC 5961 4.2: "irrespective of the sequence number", a challenge ACK (so rate
        // limited, unlike the ACK an old segment gets).
        ++counters_.syn_challenged;
        challenge_ack(c, now);
        return;
      }
      if (seq_lt(seq + len, c.rcv_nxt) || seq + len == c.rcv_nxt) {
        ++counters_.spurious_rtx_data;
      }
      c.ack_now = true;
      want_output(c);
    }
    return;  // RFC 5961 3.2 (1): a RST outside the window is dropped silently
  }
  c.last_receive = now;
  // Second: RST (RFC 9293 with RFC 5961 3.2: only an exact match at RCV.NXT resets; one
  // elsewhere in the window may be a blind guess and gets a challenge ACK, which a real peer
  // answers with a RST at the right sequence number).
  if (s.has(flag::rst)) {
    if (seq != c.rcv_nxt) {
      ++counters_.rst_challenged;
      challenge_ack(c, now);
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
    ++counters_.syn_challenged;  // a restarted peer answers with a RST at RCV.NXT
    challenge_ack(c, now);
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
    if (c.parent != no_slot && slab_[c.parent].queued >= slab_[c.parent].backlog) {
      // The accept queue is full: the ACK is dropped and the child stays half-open, as Linux
      // does; its SYN-ACK timer retries, and the peer's answer may find room (or, after
      // synack_retries, the child goes).
      ++counters_.accept_queue_overflow;
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

}  // namespace dpdk_net::stack
