// TCP output, pull-based: segments are built when the caller drains (stack::drain_tx), from the
// connections on the pending-output list only, straight into the caller's burst. Data is cut from
// the send ring at (re)transmit time, so a retransmission follows the current MSS and window.
// Nagle and sender-side SWS avoidance (RFC 1122 4.2.3.4), receiver SWS avoidance in what we
// advertise (4.2.3.3), ACKs coalesced (an owed ACK rides on the next data segment).
#include <algorithm>
#include <cstring>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack {

using detail::seq_gt;
using detail::seq_le;
using detail::seq_lt;
using detail::ts_clock;
namespace flag = wire::tcp_flag;

std::uint32_t tcp_layer::receive_window(const connection& c) const noexcept {
  const std::uint32_t held = c.read_shut ? 0 : c.rcv_nxt - c.read_seq;
  return c.rcv_buffer > held ? c.rcv_buffer - held : 0;
}

std::uint32_t tcp_layer::send_mss(const connection& c) const noexcept {
  // RFC 6691 / 9293 3.7.1: the path MTU less the fixed headers, the peer's MSS, and room for the
  // timestamps option (12 bytes) when it rides on every segment.
  std::uint32_t mss = std::uint32_t{ip_->path_mtu(c.remote, ip_->last_now())} - 40;
  mss = std::min(mss, c.mss_peer);
  if (c.ts_enabled) {
    mss -= 12;
  }
  if (c.sack_ok && c.ooo_count != 0) {
    // The SACK blocks our segments carry while we hold out-of-order data (RFC 2018 3: 2 NOPs,
    // kind, length, 8 bytes a block): the frame must still fit the path MTU.
    const std::uint32_t blocks = std::min<std::uint32_t>(c.ooo_count, c.ts_enabled ? 3 : 4);
    mss = mss > 4 + 8 * blocks ? mss - (4 + 8 * blocks) : 1;
  }
  return std::max<std::uint32_t>(mss, config_.min_mss > 12 ? config_.min_mss - 12 : 1);
}

void tcp_layer::note_retransmission(connection& c, std::uint32_t end, time_ns now) noexcept {
  c.rtx_tsval = ts_clock(now) + c.ts_offset;
  c.rtx_high = c.rtx_ambiguous ? detail::seq_max(c.rtx_high, end) : end;
  c.rtx_ambiguous = true;
}

bool tcp_layer::build_frame(packet& out, mac_address mac, wire::ipv4_address dst,
                            const wire::tcp_header& h, const connection* data,
                            std::uint32_t data_seq, std::uint32_t data_len, bool dont_fragment,
                            std::uint32_t tso_mss) noexcept {
  // Headers in one buffer from the pool; the data (if any) is cut from the send queue here, at
  // transmit time: copied after the headers (and into chained buffers past the first), or
  // chained by reference where it is external and the device chains.
  const std::size_t hl = wire::tcp_min_header_length + wire::tcp_options_length(h.options);
  const std::size_t tcp_len = hl + data_len;
  constexpr std::size_t l2 = wire::ethernet_header_length;
  constexpr std::size_t l3 = wire::ipv4_min_header_length;
  packet p = pool_->alloc();
  std::byte* d = p ? p.append(l2 + l3 + hl) : nullptr;
  if (d == nullptr) {
    ++counters_.no_buffer;
    return false;
  }
  wire::write_ethernet(std::span(d, l2), wire::ethernet_header{mac, ip_->config().mac,
                                                               wire::ethertype::ipv4, false, 0});
  std::byte* ipd = d + l2;
  wire::ipv4_header ih;
  ih.total_length = static_cast<std::uint16_t>(l3 + tcp_len);
  // With TSO the device numbers the pieces id, id + 1, ...: those ids are taken too.
  ih.id = ip_->take_ip_ids(tso_mss != 0 ? 1 + static_cast<std::uint32_t>((data_len - 1) / tso_mss)
                                        : 1U);
  ih.ttl = ip_->config().ttl;
  ih.protocol = wire::ip_protocol::tcp;
  ih.src = ip_->config().address;
  ih.dst = dst;
  ih.dont_fragment = dont_fragment;
  wire::write_ipv4(std::span(ipd, l3), ih);
  std::byte* tcpd = ipd + l3;
  wire::write_tcp(std::span(tcpd, hl), h);
  if (data_len != 0 && !append_payload(p, *data, data_seq, data_len)) {
    ++counters_.no_buffer;  // out of buffers (or chain slots) part way: the frame is dropped
    return false;
  }
  // The frame's buffers may have moved on (chain): find the headers again.
  ipd = p.front().data() + l2;
  tcpd = ipd + l3;
  const offload_set offloads = ip_->config().tx_offloads;
  tx_offload_request& tx = p.meta().tx;
  if (offloads.has(offload::ipv4_checksum)) {
    wire::store16(ipd + 10, 0);  // the device fills it in
    tx.flags |= tx_offload_request::ipv4_checksum;
  }
  if (offloads.has(offload::tcp_checksum)) {
    // DPDK's convention (rte_ipv4_phdr_cksum): the field holds the pseudo-header sum, with the
    // L4 length for checksum offload and without it for TSO (the device adds each piece's).
    wire::checksum_accumulator acc;
    wire::add_pseudo_header(acc, ih.src, ih.dst, wire::ip_protocol::tcp,
                            tso_mss != 0 ? 0 : static_cast<std::uint16_t>(tcp_len));
    wire::store16(tcpd + 16, acc.sum());
    tx.flags |= tx_offload_request::tcp_checksum;
  } else {
    wire::store16(tcpd + 16, 0);
    wire::checksum_accumulator acc;
    wire::add_pseudo_header(acc, ih.src, ih.dst, wire::ip_protocol::tcp,
                            static_cast<std::uint16_t>(tcp_len));
    wire::add_packet(acc, p, l2 + l3, tcp_len);
    wire::store16(tcpd + 16, acc.finish());
  }
  if (tso_mss != 0) {
    tx.flags |= tx_offload_request::tcp_segmentation;
    tx.tso_mss = static_cast<std::uint16_t>(tso_mss);
    ++counters_.tso_frames;
  }
  if (tx.flags != 0) {
    tx.l2_len = static_cast<std::uint8_t>(l2);
    tx.l3_len = static_cast<std::uint8_t>(l3);
    tx.l4_len = static_cast<std::uint8_t>(hl);
  }
  out = std::move(p);
  ++counters_.segments_out;
  return true;
}

std::size_t tcp_layer::emit(std::span<packet> out, time_ns now) noexcept {
  retry_at_ = UINT64_MAX;
  std::size_t n = emit_time_wait_acks(out, now);
  n += emit_syn_cookies(out.subspan(n), now);  // stateless SYN-ACKs (tcp_syn_cookie.cpp)
  while (n < out.size() && !pending_.empty()) {
    const std::uint32_t slot = pending_.front();
    blocked_ = false;
    ++counters_.output_visits;
    n += emit_connection(slab_[slot], out.subspan(n), now);
    if (blocked_) {
      break;  // out of room or buffers: it stays first in line
    }
    pending_.remove(slot);
  }
  return n;
}

std::size_t tcp_layer::emit_connection(connection& c, std::span<packet> out, time_ns now) noexcept {
  if (!c.in_use || c.state == tcp_state::closed || c.state == tcp_state::listen ||
      c.state == tcp_state::time_wait) {
    return 0;
  }
  const auto slot = static_cast<std::uint32_t>(&c - slab_.data());
  // Unresolved next hop: wait in the connection (ARP holds only a few frames per hop).
  const std::optional<mac_address> mac = ip_->resolve(c.remote, now);
  if (!mac) {
    pending_.remove(slot);
    arp_wait_.push_back(slot);
    ++counters_.waiting_for_arp;
    if (!c.retransmit_timer.armed()) {
      arm_retransmit(c, now);  // bounded: the retries (or user timeout) end a wait that never ends
    }
    return 0;
  }
  tx_mac_ = *mac;
  c.arp_unresolved = false;
  std::size_t count = 0;
  const auto room = [&] {
    if (count < out.size()) {
      return true;
    }
    blocked_ = true;
    return false;
  };
  const auto build = [&](std::uint32_t seq, std::uint32_t len, std::uint8_t flags,
                         std::uint32_t tso_mss = 0) {
    if (!build_segment(c, out[count], seq, len, flags, now, tso_mss)) {
      blocked_ = true;
      retry_at_ = now + 100 * microsecond;
      return false;
    }
    ++count;
    return true;
  };
  // The handshake: SYN, or SYN-ACK (again, with the same ISN, when snd_nxt was wound back).
  if ((c.state == tcp_state::syn_sent || c.state == tcp_state::syn_received) &&
      c.snd_nxt == c.iss) {
    if (!room()) {
      return count;
    }
    const bool again = seq_gt(c.snd_max, c.iss);
    if (!build(c.iss, 0, c.state == tcp_state::syn_sent ? flag::syn : flag::syn | flag::ack)) {
      return count;
    }
    if (again) {
      ++c.retransmits;
      ++counters_.retransmits;
    } else {
      c.una_since = now;  // the handshake's RTT is timed from here (it may have waited for ARP)
      arm_retransmit(c, now);
    }
    c.snd_nxt = c.iss + 1;
    c.snd_max = detail::seq_max(c.snd_max, c.snd_nxt);
    if (!c.retransmit_timer.armed()) {
      arm_retransmit(c, now);
    }
    return count;
  }
  if (c.state == tcp_state::syn_sent) {
    return count;
  }
  const std::uint32_t mss = send_mss(c);
  const stack_config& ipc = ip_->config();
  // The largest super-frame: whole segments within tso_max_payload and a 16-bit IP length.
  const std::uint32_t tso_cap =
      ipc.tx_chaining && ipc.tx_offloads.has(offload::tcp_segmentation) &&
              ipc.tx_offloads.has(offload::tcp_checksum) &&
              ipc.tx_offloads.has(offload::ipv4_checksum)
          ? std::max(mss, std::min({ipc.tso_max_payload, 65535U - 20 - 60, tso_chain_bytes_}) /
                              mss * mss)
          : mss;
  const std::uint32_t data_end = c.sbuf_seq + c.sbuf_len;
  const bool fin_sent = c.fin_queued && seq_gt(c.snd_max, data_end);
  if (c.state != tcp_state::syn_received) {
    // Fast retransmit / a partial ACK's next hole: one segment from SND.UNA.
    if (c.retransmit_one && c.flight() != 0) {
      if (!room()) {
        return count;
      }
      const std::uint32_t sent_data =
          (seq_lt(c.snd_max, data_end) ? c.snd_max : data_end) - c.snd_una;
      const std::uint32_t len = std::min(mss, sent_data);
      const bool fin = fin_sent && c.snd_una + len == data_end;
      if (!build(c.snd_una, len, flag::ack | (fin ? flag::fin : 0))) {
        return count;
      }
      c.retransmit_one = false;
      ++c.retransmits;
      ++counters_.retransmits;
      note_retransmission(c, c.snd_una + len, now);
      if (c.sack_recovery && seq_lt(c.high_rxt, c.snd_una + len)) {
        c.high_rxt = c.snd_una + len;
      }
      if (!c.retransmit_timer.armed()) {
        arm_retransmit(c, now);
      }
    }
    // RFC 6675 recovery: while cwnd - pipe >= 1 SMSS, what NextSeg() picks: a lost hole (rule
    // 1), else new data (rule 2), else an unSACKed hole below the highest SACK (rule 3).
    while (c.sack_recovery) {
      const std::uint32_t pipe = sack_pipe(c, mss);
      if (pipe >= c.cc.cwnd || c.cc.cwnd - pipe < mss) {
        break;
      }
      if (!room()) {
        return count;
      }
      std::uint32_t seq = 0, len = 0;
      const bool lost = sack_next_segment(c, mss, true, seq, len);
      if (!lost) {
        // Rule 2: new data the peer's window takes (whole segments, or all that is left).
        // (Only beyond SND.MAX: a path that wound SND.NXT back, like an ICMP frag-needed, must
        // not resend the flight as "new".)
        const std::uint32_t avail =
            c.snd_nxt == c.snd_max && seq_lt(c.snd_nxt, data_end) ? data_end - c.snd_nxt : 0;
        const std::uint32_t right = c.snd_una + c.snd_wnd;
        const std::uint32_t win_room = seq_gt(right, c.snd_nxt) ? right - c.snd_nxt : 0;
        const std::uint32_t n = std::min({avail, win_room, mss});
        const bool fin = c.fin_queued && !c.fin_acked && c.snd_nxt + n == data_end &&
                         seq_le(c.snd_nxt, data_end) && !fin_sent;
        // Nagle and sender SWS as in the ordinary loop (data is in flight during recovery).
        const bool nagle_ok = n == mss || (n == avail && (c.options.no_delay || c.fin_queued));
        if ((n != 0 && nagle_ok) || (n == 0 && fin && avail == 0)) {
          std::uint8_t flags = flag::ack | (fin ? flag::fin : 0);
          if (n != 0 && n == avail) {
            flags |= flag::psh;
          }
          if (!build(c.snd_nxt, n, flags)) {
            return count;
          }
          c.bytes_sent += n;
          counters_.bytes_out += n;
          c.snd_nxt += n + (fin ? 1U : 0U);
          c.snd_max = detail::seq_max(c.snd_max, c.snd_nxt);
          continue;
        }
        if (!sack_next_segment(c, mss, false, seq, len)) {
          // Rule 4, the rescue retransmission: once per recovery, the last segment of the
          // highest unSACKed data (a lost tail would otherwise wait for the RTO). HighRxt
          // stays.
          // RFC 6675 rule 4 needs HighACK > RescueRxt (a partial ACK passed the first
          // retransmission); then RescueRxt = RecoveryPoint: once per recovery.
          if (!seq_gt(c.snd_una, c.rescue_end) || !sack_rescue_segment(c, mss, seq, len)) {
            break;
          }
          c.rescue_end = c.recover;
          const bool tail_fin = fin_sent && seq + len == data_end;
          if (!build(seq, len, flag::ack | (tail_fin ? flag::fin : 0))) {
            return count;
          }
          ++c.retransmits;
          ++counters_.retransmits;
          ++counters_.sack_retransmits;
          note_retransmission(c, seq + len, now);
          continue;
        }
      }
      const bool fin = fin_sent && seq + len == data_end;
      if (!build(seq, len, flag::ack | (fin ? flag::fin : 0))) {
        return count;
      }
      c.high_rxt = seq + len;
      ++c.retransmits;
      ++counters_.retransmits;
      ++counters_.sack_retransmits;
      note_retransmission(c, seq + len, now);
      if (!c.retransmit_timer.armed()) {
        arm_retransmit(c, now);
      }
    }
    // New data, or going back over what an RTO declared lost.
    while (!c.sack_recovery) {
      if (seq_lt(c.snd_nxt, c.snd_max) && c.scoreboard != detail::no_slot) {
        // Going back after a timeout: what the peer SACKed is not sent again.
        std::uint32_t run = 0;
        const std::uint32_t next = sack_skip(c, c.snd_nxt, run);
        c.snd_nxt = seq_lt(next, c.snd_max) ? next : c.snd_max;
      }
      const std::uint32_t avail = seq_lt(c.snd_nxt, data_end) ? data_end - c.snd_nxt : 0;
      // RFC 3042 limited transmit: the first two duplicate ACKs each let one new segment go
      // beyond cwnd, so a small window still collects the three duplicates fast retransmit needs.
      const std::uint32_t limited =
          c.in_recovery ? 0
                        : std::min(c.dup_acks, std::min(config_.dup_ack_threshold - 1, 2U)) * mss;
      const std::uint32_t usable = std::min(c.snd_wnd, c.cc.cwnd + limited);
      const std::uint32_t right = c.snd_una + usable;
      const std::uint32_t win_room = seq_gt(right, c.snd_nxt) ? right - c.snd_nxt : 0;
      const bool rtx = seq_lt(c.snd_nxt, c.snd_max);
      // TSO: new data (never a retransmission) goes as one super-frame the device cuts into
      // the segments we would have sent, so the wire is the same with and without it.
      std::uint32_t len = std::min({avail, win_room, rtx ? mss : tso_cap});
      if (rtx && c.scoreboard != detail::no_slot) {
        std::uint32_t run = 0;
        (void)sack_skip(c, c.snd_nxt, run);
        len = std::min(len, run);  // up to the next range the peer holds
      }
      if (len > mss) {
        // A short last piece only where the segment-by-segment loop would have sent it (Nagle
        // and sender SWS, below, with data in flight by then).
        const std::uint32_t tail = len % mss;
        const bool tail_ok =
            (len == avail && (c.options.no_delay || c.fin_queued)) || tail >= c.max_snd_wnd / 2;
        if (tail != 0 && !tail_ok) {
          len -= tail;
        }
      }
      const bool fin = c.fin_queued && !c.fin_acked && c.snd_nxt + len == data_end &&
                       seq_le(c.snd_nxt, data_end);
      if (len == 0 && !fin) {
        break;
      }
      if (len != 0 && len < mss && !rtx) {
        // Nagle + sender SWS: a short segment only if it is everything and nothing is
        // outstanding (or Nagle is off), or it fills half the largest window seen.
        const bool all = len == avail;
        const bool ok = (all && (c.flight() == 0 || c.options.no_delay || c.fin_queued)) ||
                        len >= c.max_snd_wnd / 2 || c.force_send;
        if (!ok) {
          break;
        }
      }
      if (!room()) {
        return count;
      }
      std::uint8_t flags = flag::ack;
      if (len != 0 && len == avail) {
        flags |= flag::psh;
      }
      if (fin) {
        flags |= flag::fin;
      }
      if (!build(c.snd_nxt, len, flags, len > mss ? mss : 0)) {
        return count;
      }
      if (rtx) {
        ++c.retransmits;
        ++counters_.retransmits;
        note_retransmission(c, c.snd_nxt + len, now);
      } else {
        c.bytes_sent += len;
        counters_.bytes_out += len;
        if (!c.rtt_timing && !c.ts_enabled && len != 0) {
          c.rtt_timing = true;
          c.rtt_seq = c.snd_nxt;
          c.rtt_start = now;
        }
      }
      if (c.flight() == 0) {
        c.una_since = now;
      }
      c.snd_nxt += len + (fin ? 1U : 0U);
      c.snd_max = detail::seq_max(c.snd_max, c.snd_nxt);
      if (!c.retransmit_timer.armed() || c.persist) {
        c.persist = false;
        arm_retransmit(c, now);
      }
      c.force_send = false;
      if (fin) {
        break;
      }
    }
    // Zero window with data waiting and nothing in flight: the persist timer probes it.
    const std::uint32_t unsent = seq_lt(c.snd_nxt, data_end) ? data_end - c.snd_nxt : 0;
    // (Also after an RTO wound SND.NXT back into a window the peer has since closed: nothing can
    // be resent, so probing, not retransmitting, is what keeps the connection alive.)
    // And the same timer is RFC 1122 4.2.3.4's override: data held back by silly-window
    // avoidance with nothing in flight must not wait for a window update that may be lost.
    if (unsent != 0 && c.snd_nxt == c.snd_una && !c.persist &&
        (c.flight() != 0 || !c.retransmit_timer.armed())) {
      c.persist = true;
      arm_retransmit(c, now);
    }
  }
  // A probe (window or keepalive): an old sequence number, no data, so the peer must answer
  // with an ACK that shows its window and that it is alive.
  if (c.send_probe) {
    if (!room()) {
      return count;
    }
    if (!build(c.snd_una - 1, 0, flag::ack)) {
      return count;
    }
    c.send_probe = false;
  }
  // Duplicate ACKs are not coalesced: the sender counts them (fast retransmit needs three).
  // A pure ACK carries SND.MAX, not SND.NXT: after an RTO wound SND.NXT back, an ACK with the
  // retransmission point would be below the peer's window and refused (BSD does the same).
  while (c.dup_acks_owed > 1) {
    if (!room()) {
      return count;
    }
    if (!build(c.snd_max, 0, flag::ack)) {
      return count;
    }
    --c.dup_acks_owed;
  }
  c.dup_acks_owed = 0;
  if (c.ack_now) {
    if (!room()) {
      return count;
    }
    if (!build(c.snd_max, 0, flag::ack)) {
      return count;
    }
  }
  return count;
}

bool tcp_layer::build_segment(connection& c, packet& out, std::uint32_t seq, std::uint32_t len,
                              std::uint8_t flags, time_ns now, std::uint32_t tso_mss) noexcept {
  const bool syn = (flags & flag::syn) != 0;
  wire::tcp_header h;
  h.src_port = c.local_port;
  h.dst_port = c.remote_port;
  h.seq = seq;
  h.ack = (flags & flag::ack) != 0 ? c.rcv_nxt : 0;
  h.flags = flags;
  if (syn) {
    h.options.mss = static_cast<std::uint16_t>(ip_->config().mtu - 40);
    if (c.state == tcp_state::syn_sent ? config_.window_scaling : c.ws_ok) {
      h.options.window_scale = c.rcv_scale;
    }
    if (c.state == tcp_state::syn_sent ? config_.timestamps : c.ts_enabled) {
      h.options.timestamps = wire::tcp_timestamps{ts_clock(now) + c.ts_offset,
                                                  c.state == tcp_state::syn_sent ? 0 : c.ts_recent};
    }
    h.options.sack_permitted = c.state == tcp_state::syn_sent ? config_.sack : c.sack_ok;
    const std::uint32_t w = std::min<std::uint32_t>(receive_window(c), 65535);
    h.window = static_cast<std::uint16_t>(w);  // a SYN's window is never scaled (RFC 7323 2.2)
    if (c.state == tcp_state::syn_received) {
      c.rcv_adv = c.rcv_nxt + w;
    }
  } else {
    if (c.ts_enabled) {
      h.options.timestamps = wire::tcp_timestamps{ts_clock(now) + c.ts_offset, c.ts_recent};
    }
    if (c.sack_ok && c.ooo_count != 0 && (flags & flag::ack) != 0) {
      sack_blocks(c, h.options);  // RFC 2018 4: what we hold out of order
    }
    // What we advertise: the free buffer, but grown only in steps of min(buffer / 2, MSS)
    // (receiver SWS avoidance), and the right edge never moved left.
    const std::uint32_t free = receive_window(c);
    std::uint32_t adv = seq_gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
    const std::uint32_t step = std::min(c.rcv_buffer / 2, send_mss(c));
    // While a hole is open the edge stays put: duplicate ACKs must carry the same window or the
    // sender does not count them (RFC 5681 2, "duplicate acknowledgment").
    if (c.ooo_count == 0 && free > adv &&
        (free - adv >= step || (adv == 0 && free >= step) || free == c.rcv_buffer)) {
      adv = free;  // else keep the old edge: a small increase is not worth announcing
    }
    const std::uint32_t wire_window = std::min<std::uint32_t>(adv >> c.rcv_scale, 65535);
    h.window = static_cast<std::uint16_t>(wire_window);
    const std::uint32_t edge = c.rcv_nxt + (wire_window << c.rcv_scale);
    if (seq_gt(edge, c.rcv_adv)) {
      c.rcv_adv = edge;
    }
  }
  if (!build_frame(out, tx_mac_, c.remote, h, len == 0 ? nullptr : &c, seq, len,
                   !ip_->path_locked(c.remote, now), tso_mss)) {
    return false;
  }
  if ((flags & flag::ack) != 0) {
    // Every segment with an ACK pays what was owed: no separate ACK, no delayed-ACK timer.
    c.last_ack_sent = c.rcv_nxt;
    c.ack_now = false;
    c.unacked_bytes = 0;
    c.ack_timer.cancel();
  }
  return true;
}

bool tcp_layer::send_control(wire::ipv4_address dst, std::uint16_t src_port, std::uint16_t dst_port,
                             std::uint32_t seq, std::uint32_t ack, std::uint8_t flags,
                             std::uint16_t window, const wire::tcp_timestamps* timestamps,
                             time_ns now) noexcept {
  // RSTs and the ACKs of records (TIME-WAIT, a closing connection's last ACK): built at once
  // and sent through IP output (ARP queues them if need be).
  wire::tcp_header h;
  h.src_port = src_port;
  h.dst_port = dst_port;
  h.seq = seq;
  h.ack = ack;
  h.flags = flags;
  h.window = window;
  if (timestamps != nullptr) {
    h.options.timestamps = *timestamps;
  }
  const std::size_t tcp_len = wire::tcp_min_header_length + wire::tcp_options_length(h.options);
  std::array<std::byte, wire::tcp_max_header_length> seg{};
  wire::write_tcp(std::span(seg.data(), tcp_len), h);
  wire::set_tcp_checksum(std::span(seg.data(), tcp_len),
                         wire::pseudo_header{ip_->config().address, dst});
  if ((flags & flag::rst) != 0) {
    ++counters_.resets_sent;
  }
  ++counters_.segments_out;
  return ip_->send_l4(wire::ip_protocol::tcp, dst, std::span(seg.data(), tcp_len), now);
}

}  // namespace dpdk_net::stack
