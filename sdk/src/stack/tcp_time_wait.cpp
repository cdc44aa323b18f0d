// TIME-WAIT as compact records (RFC 9293 3.6.1): entering it, answering segments for the tuple
// (RFC 1337, RFC 6191 reuse), the ACKs records owe (built at drain time), and expiry (one timer
// for all records: one duration, so insertion order is expiry order).
#include <algorithm>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack {

using detail::seq_gt;
using detail::seq_lt;
using detail::tcp_segment_view;
using detail::ts_clock;
namespace flag = wire::tcp_flag;

void tcp_layer::enter_time_wait(connection& c, time_ns now, bool owe_ack) noexcept {
  ++counters_.time_wait_entered;
  if (tw_free_.empty()) {
    // Full: the oldest record goes (it has waited longest).
    free_time_wait(tw_order_.front());
    ++counters_.time_wait_evicted;
  }
  const std::uint32_t t = tw_free_.back();
  tw_free_.pop_back();
  detail::time_wait_record& r = tw_[t];
  r.remote = c.remote;
  r.local_port = c.local_port;
  r.remote_port = c.remote_port;
  r.snd_nxt = c.snd_nxt;
  r.rcv_nxt = c.rcv_nxt;
  r.ts_enabled = c.ts_enabled;
  r.ts_recent = c.ts_recent;
  r.ts_offset = c.ts_offset;
  r.rcv_scale = c.rcv_scale;
  r.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(
      (detail::seq_gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0) >> c.rcv_scale, 65535));
  r.in_use = true;
  // What the connection held its port for, the record holds while the tuple waits: its late
  // segments must still reach this stack, not be answered with RST by another.
  r.held = 0;
  hold_port(r.local_port, r.held, c.held);
  r.expiry = now + config_.time_wait;
  // The connection's slot is free from here: the record answers for the tuple.
  const std::uint64_t h = c.hash;
  index_erase(c);
  r.hash = h;
  index_.insert(h, static_cast<std::uint32_t>(slab_.size()) + t);
  tw_order_.push_back(t);
  ++tw_used_;
  if (owe_ack || c.ack_now) {
    tw_acks_.push_back(t);  // the last ACK, built at the next drain like any other output
  }
  if (!tw_timer_.armed()) {
    timers_->arm(tw_timer_, r.expiry);
  }
  c.state = tcp_state::time_wait;
  if (c.attached) {
    // The application keeps its id (reading end of stream); the slot is closed as far as TCP
    // goes, so report closed now.
    become_closed(c, now);
  } else {
    free_connection(c);
  }
}

void tcp_layer::free_time_wait(std::uint32_t t) noexcept {
  detail::time_wait_record& r = tw_[t];
  index_.erase(r.hash, static_cast<std::uint32_t>(slab_.size()) + t);
  tw_order_.remove(t);
  tw_acks_.remove(t);
  r.in_use = false;
  drop_port(r.local_port, r.held);
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

std::size_t tcp_layer::emit_time_wait_acks(std::span<packet> out, time_ns now) noexcept {
  std::size_t n = 0;
  while (n < out.size() && !tw_acks_.empty()) {
    const std::uint32_t t = tw_acks_.front();
    const detail::time_wait_record& r = tw_[t];
    const wire::tcp_timestamps ts{ts_clock(now) + r.ts_offset, r.ts_recent};
    const std::optional<mac_address> mac = ip_->resolve(r.remote, now);
    if (!mac) {
      // No MAC (the entry went): through IP output, where ARP queues it.
      send_control(r.remote, r.local_port, r.remote_port, r.snd_nxt, r.rcv_nxt, wire::tcp_flag::ack,
                   r.window, r.ts_enabled ? &ts : nullptr, now);
      tw_acks_.remove(t);
      continue;
    }
    wire::tcp_header h;
    h.src_port = r.local_port;
    h.dst_port = r.remote_port;
    h.seq = r.snd_nxt;
    h.ack = r.rcv_nxt;
    h.flags = wire::tcp_flag::ack;
    h.window = r.window;
    if (r.ts_enabled) {
      h.options.timestamps = ts;
    }
    if (!build_frame(out[n], *mac, r.remote, h, nullptr, 0, 0, !ip_->path_locked(r.remote, now))) {
      retry_at_ = now + 100 * microsecond;
      break;
    }
    tw_acks_.remove(t);
    ++n;
  }
  return n;
}

void tcp_layer::on_time_wait_timer(timer& t, time_ns now) noexcept {
  auto& self = *static_cast<tcp_layer*>(t.context());
  while (!self.tw_order_.empty() && self.tw_[self.tw_order_.front()].expiry <= now) {
    self.free_time_wait(self.tw_order_.front());
  }
  if (!self.tw_order_.empty()) {
    self.timers_->arm(self.tw_timer_, self.tw_[self.tw_order_.front()].expiry);
  }
}

}  // namespace dpdk_net::stack
