// RFC 4987 SYN cookies: the SYN queue is full, so a SYN is answered without keeping state. The
// cookie (our ISN, and the TSval's low bits when timestamps allow) encodes what the connection
// needs; the returning ACK reaches the listener (no child, no TIME-WAIT record), its cookie is
// checked and the connection is made established. The encoding is in
// detail/tcp_syn_cookie.hpp; the design and its reasons in docs/tcp.md "Queues and SYN cookies".
#include "dpdk_net/stack/detail/tcp_syn_cookie.hpp"

#include <algorithm>
#include <array>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/tcp.hpp"

namespace dpdk_net::stack {

using detail::seq_gt;
using detail::tcp_segment_view;
using detail::ts_clock;
namespace flag = wire::tcp_flag;

namespace detail {

std::uint8_t cookie_mss_index(std::uint16_t mss) noexcept {
  std::uint8_t i = cookie_mss_table.size() - 1;
  while (i > 0 && cookie_mss_table[i] > mss) {
    --i;
  }
  return i;
}

sip_key cookie_period_key(const sip_key& cookie_key, std::uint64_t period) noexcept {
  return sip_key{siphash24(cookie_key, period, 0), siphash24(cookie_key, period, 1)};
}

std::uint32_t syn_cookie(const sip_key& period_key, wire::ipv4_address local,
                         wire::ipv4_address remote, std::uint16_t local_port,
                         std::uint16_t remote_port, std::uint32_t peer_isn,
                         std::uint8_t mss_index) noexcept {
  const std::array<std::uint64_t, 3> words{
      (std::uint64_t{remote.value} << 32U) | (std::uint64_t{remote_port} << 16U) | local_port,
      (std::uint64_t{local.value} << 32U) | peer_isn, std::uint64_t{mss_index & 7U}};
  std::array<std::byte, 24> bytes{};
  for (std::size_t w = 0; w < words.size(); ++w) {
    for (std::size_t b = 0; b < 8; ++b) {
      bytes[8 * w + b] = static_cast<std::byte>(words[w] >> (8 * b));
    }
  }
  const auto h = static_cast<std::uint32_t>(siphash24(period_key, bytes));
  return (h & ~7U) | (mss_index & 7U);
}

std::uint32_t cookie_tsval(std::uint32_t clock, const cookie_options& o) noexcept {
  std::uint32_t bits =
      o.window_scale ? std::min<std::uint32_t>(*o.window_scale, wire::tcp_max_window_scale) : 15U;
  if (o.sack) {
    bits |= 16U;
  }
  std::uint32_t ts = (clock & ~cookie_ts_mask) | bits;
  if (seq_gt(ts, clock)) {
    ts -= cookie_ts_mask + 1;  // our TSvals never go backwards: the next one is above this
  }
  return ts;
}

cookie_options cookie_decode_tsecr(std::uint32_t tsecr) noexcept {
  cookie_options o;
  if (const std::uint32_t ws = tsecr & 15U; ws != 15U) {
    o.window_scale = static_cast<std::uint8_t>(std::min<std::uint32_t>(ws, 14));
  }
  o.sack = (tsecr & 16U) != 0;
  return o;
}

}  // namespace detail

namespace {

// The shift a receive buffer needs (RFC 7323 2.3), as a child computes it.
std::uint8_t receive_scale(std::uint32_t rcv_buffer) noexcept {
  std::uint8_t scale = 0;
  while (scale < wire::tcp_max_window_scale && (rcv_buffer >> scale) > 65535) {
    ++scale;
  }
  return scale;
}

}  // namespace

void tcp_layer::send_syn_cookie(const connection& l, const tcp_segment_view& s,
                                time_ns now) noexcept {
  const auto size = static_cast<std::uint32_t>(cookie_synacks_.size());
  if (cookie_count_ == size) {
    return;  // a burst beyond the owed ring before a drain: dropped (the peer retries its SYN)
  }
  const wire::tcp_options& o = s.h.options;
  const std::uint32_t rcv_buffer =
      l.options.receive_buffer != 0 ? l.options.receive_buffer : config_.receive_buffer;
  detail::cookie_synack& a = cookie_synacks_[(cookie_head_ + cookie_count_) % size];
  a.remote = s.src;
  a.local_port = s.h.dst_port;
  a.remote_port = s.h.src_port;
  const std::uint64_t period = now / std::max<time_ns>(config_.syn_cookie_period, 1);
  a.seq = detail::syn_cookie(detail::cookie_period_key(cookie_key_, period), ip_->config().address,
                             s.src, s.h.dst_port, s.h.src_port, s.h.seq,
                             detail::cookie_mss_index(o.mss.value_or(536)));
  a.ack = s.h.seq + 1;
  a.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(rcv_buffer, 65535));
  // Window scale and SACK-permitted need somewhere to live until the ACK: the TSval. Without
  // timestamps the SYN-ACK offers neither (as Linux), so the connection has neither.
  a.timestamps = config_.timestamps && o.timestamps;
  a.scaling = a.sack = false;
  if (a.timestamps) {
    detail::cookie_options co;
    if (config_.window_scaling && o.window_scale) {
      co.window_scale = o.effective_window_scale();
    }
    co.sack = config_.sack && o.sack_permitted;
    a.tsval = detail::cookie_tsval(
        ts_clock(now) + timestamp_offset(s.src, s.h.src_port, s.h.dst_port), co);
    a.tsecr = o.timestamps->value;
    a.scaling = co.window_scale.has_value();
    a.window_scale = receive_scale(rcv_buffer);
    a.sack = co.sack;
  }
  ++cookie_count_;
}

std::size_t tcp_layer::emit_syn_cookies(std::span<packet> out, time_ns now) noexcept {
  const auto size = static_cast<std::uint32_t>(cookie_synacks_.size());
  std::size_t n = 0;
  while (n < out.size() && cookie_count_ != 0) {
    const detail::cookie_synack& a = cookie_synacks_[cookie_head_];
    // A listener closed since: its SYNs' answers go unsent (the ACK would meet a closed port).
    if (listeners_[a.local_port] >= 0) {
      wire::tcp_header h;
      h.src_port = a.local_port;
      h.dst_port = a.remote_port;
      h.seq = a.seq;
      h.ack = a.ack;
      h.flags = flag::syn | flag::ack;
      h.window = a.window;
      h.options.mss = static_cast<std::uint16_t>(ip_->config().mtu - 40);
      if (a.scaling) {
        h.options.window_scale = a.window_scale;
      }
      h.options.sack_permitted = a.sack;
      if (a.timestamps) {
        h.options.timestamps = wire::tcp_timestamps{a.tsval, a.tsecr};
      }
      if (const std::optional<mac_address> mac = ip_->resolve(a.remote, now)) {
        if (!build_frame(out[n], *mac, a.remote, h, nullptr, 0, 0,
                         !ip_->path_locked(a.remote, now))) {
          retry_at_ = now + 100 * microsecond;
          break;  // no buffer: it stays first in line
        }
        ++n;
      } else {
        // No MAC yet: through IP output, where ARP queues it (as the RSTs and TIME-WAIT ACKs).
        const std::size_t len = wire::tcp_min_header_length + wire::tcp_options_length(h.options);
        std::array<std::byte, wire::tcp_max_header_length> seg{};
        wire::write_tcp(std::span(seg.data(), len), h);
        wire::set_tcp_checksum(std::span(seg.data(), len),
                               wire::pseudo_header{ip_->config().address, a.remote});
        ++counters_.segments_out;
        ip_->send_l4(wire::ip_protocol::tcp, a.remote, std::span(seg.data(), len), now);
      }
      ++counters_.syn_cookies_sent;
    }
    cookie_head_ = (cookie_head_ + 1) % size;
    --cookie_count_;
  }
  return n;
}

bool tcp_layer::syn_cookie_ack(connection& l, const tcp_segment_view& s, time_ns now) {
  if (!config_.syn_cookies) {
    return false;
  }
  // RFC 4987: ack - 1 must be the cookie of this tuple and seq - 1 (the peer's ISN), under the
  // key of this period or the previous one.
  const std::uint32_t cookie = s.h.ack - 1;
  const std::uint32_t peer_isn = s.h.seq - 1;
  const auto m = static_cast<std::uint8_t>(cookie & 7U);
  const std::uint64_t period = now / std::max<time_ns>(config_.syn_cookie_period, 1);
  bool valid = false;
  for (std::uint64_t back = 0; back < 2 && back <= period && !valid; ++back) {
    valid = detail::syn_cookie(detail::cookie_period_key(cookie_key_, period - back),
                               ip_->config().address, s.src, s.h.dst_port, s.h.src_port, peer_isn,
                               m) == cookie;
  }
  if (!valid) {
    ++counters_.syn_cookies_rejected;
    return false;  // answered with a RST, as Linux does
  }
  if (l.queued >= l.backlog) {
    // As for a half-open child: the ACK is dropped, as Linux does. The peer's next segment (a
    // retransmission, or data) carries the same cookie and may find room.
    ++counters_.accept_queue_overflow;
    return true;
  }
  // The SYN the cookie stands for: its sequence number, the MSS from the table, and the options
  // the TSval kept (the ACK echoes it), if the ACK carries timestamps.
  tcp_segment_view syn = s;
  syn.h.seq = peer_isn;
  syn.h.flags = flag::syn;
  syn.payload = {};
  syn.h.options = {};
  syn.h.options.mss = detail::cookie_mss_table[m];
  const std::optional<wire::tcp_timestamps> ts = s.h.options.timestamps;
  if (config_.timestamps && ts) {
    const detail::cookie_options co = detail::cookie_decode_tsecr(ts->echo_reply);
    syn.h.options.timestamps = wire::tcp_timestamps{ts->value, 0};
    syn.h.options.window_scale = co.window_scale;
    syn.h.options.sack_permitted = co.sack;
  }
  connection* cp = new_child(l, syn, cookie, now);
  if (cp == nullptr) {
    return true;  // no free slot (counted): dropped, the peer retries
  }
  connection& c = *cp;
  ++counters_.syn_cookies_accepted;
  // What the cookie SYN-ACK did: it took sequence number ISS and advertised an unscaled window
  // and acknowledged the SYN.
  c.snd_nxt = c.snd_max = c.iss + 1;
  c.rcv_adv = c.rcv_nxt + std::min<std::uint32_t>(c.rcv_buffer, 65535);
  c.last_ack_sent = c.rcv_nxt;
  // And this ACK completes the handshake (RFC 9293 3.10.7.4, SYN-RECEIVED), as for a child.
  c.snd_wnd = static_cast<std::uint32_t>(s.h.window) << c.snd_scale;
  c.max_snd_wnd = c.snd_wnd;
  c.snd_wl1 = s.h.seq;
  c.snd_wl2 = s.h.ack;
  established(c, now);
  // The rest of the segment as on any connection: the ACK of our SYN, data, FIN. The echo of
  // the cookie's TSval is no RTT sample: its low bits were replaced, so it may read up to 63 ms
  // old (Linux takes no sample from a cookie handshake either).
  tcp_segment_view rest = s;
  if (rest.h.options.timestamps) {
    rest.h.options.timestamps->echo_reply = 0;
  }
  segment_synchronized(c, rest, now);
  return true;
}

}  // namespace dpdk_net::stack
