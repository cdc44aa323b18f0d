// TCP timers, three per connection (intrusive, on the stack's wheel) and one for all TIME-WAIT
// records:
//   retransmit: RFC 6298 RTO with exponential backoff, or the persist timer (zero window);
//   ack:        the delayed ACK (RFC 1122 4.2.3.2);
//   idle:       keepalive (RFC 1122 4.2.3.6), the linger deadline, an orphan's FIN-WAIT-2 limit.
// Every wait is bounded: retries run out (timed_out) and a user timeout (RFC 5482) cuts them short.
#include <algorithm>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack {

namespace {
[[nodiscard]] time_ns backed_off(time_ns rto, unsigned backoff, time_ns max) noexcept {
  if (backoff >= 32 || (rto << backoff) >> backoff != rto) {
    return max;
  }
  return std::min(rto << backoff, max);
}
/// Keepalive runs wherever the peer may go silent while we still care: established, and both
/// half-closed states (a FIN-WAIT-2 receiver waiting for the peer's data would otherwise never
/// learn that the peer died, as Linux's keepalive also covers).
[[nodiscard]] bool keepalive_state(tcp_state s) noexcept {
  return s == tcp_state::established || s == tcp_state::close_wait || s == tcp_state::fin_wait_2;
}
}  // namespace

void tcp_layer::arm_retransmit(connection& c, time_ns now) noexcept {
  time_ns at = now + backed_off(c.rto, c.backoff, config_.rto_max);
  if (c.options.user_timeout != 0 && !c.persist) {
    // RFC 5482: fail when the oldest unacknowledged data is user_timeout old, not at the first
    // backed-off expiry after that.
    at = std::min(at, std::max(now, c.una_since + c.options.user_timeout));
  }
  timers_->arm(c.retransmit_timer, at);
}

void tcp_layer::arm_idle(connection& c, time_ns now) noexcept {
  time_ns at = UINT64_MAX;
  if (c.close_deadline != 0) {
    at = c.close_deadline;
  }
  if (c.options.keepalive_idle != 0 && keepalive_state(c.state)) {
    at = std::min(at, std::max(now, c.last_receive) + c.options.keepalive_idle);
  }
  if (at != UINT64_MAX) {
    timers_->arm(c.idle_timer, at);
  } else {
    c.idle_timer.cancel();
  }
}

void tcp_layer::on_retransmit_timer(timer& t, time_ns now) noexcept {
  auto& c = *static_cast<connection*>(t.context());
  tcp_layer& self = *c.owner;
  if (c.persist) {
    // RFC 1122 4.2.2.17: probe a zero window, backing off, for as long as the peer answers;
    // a peer that stops answering fails the connection after data_retries probes.
    if (c.probes >= self.config_.data_retries) {
      ++self.counters_.timeouts;
      self.fail(c, std::make_error_code(std::errc::timed_out), now);
      return;
    }
    if (!c.attached && ++c.orphan_probes > self.config_.data_retries) {
      // Closed by the application and held open only by a peer that never reads: do not keep
      // its slot and buffers forever (as Linux's orphan retries).
      ++self.counters_.timeouts;
      self.abort_connection(c, now);
      return;
    }
    ++c.probes;
    if (c.snd_wnd != 0) {
      c.force_send = true;  // a small window: the override sends into it
    } else {
      ++self.counters_.window_probes;
      c.send_probe = true;
    }
    c.backoff = std::min(c.backoff + 1, 16U);
    self.arm_retransmit(c, now);
    self.want_output(c);
    return;
  }
  self.retransmit_timeout(c, now);
}

void tcp_layer::retransmit_timeout(connection& c, time_ns now) noexcept {
  const bool handshake = c.state == tcp_state::syn_sent || c.state == tcp_state::syn_received;
  const auto slot = static_cast<std::uint32_t>(&c - slab_.data());
  const bool waiting_for_arp = arp_wait_.contains(slot);
  if (waiting_for_arp) {
    // Still no MAC for the next hop: try again now (a fresh resolution), and if the retries run
    // out, say why.
    arp_wait_.remove(slot);
    c.arp_unresolved = true;
  }
  if (!handshake && c.flight() == 0 && !waiting_for_arp) {
    // Everything was acknowledged meanwhile. Data may still wait (a closed or small window
    // after an ARP wait): output then starts the persist / override timer, so a lost window
    // update cannot leave the connection with no timer at all.
    want_output(c);
    return;
  }
  const unsigned limit = c.state == tcp_state::syn_sent       ? config_.syn_retries
                         : c.state == tcp_state::syn_received ? config_.synack_retries
                                                              : config_.data_retries;
  const time_ns user_timeout = c.options.user_timeout;
  if (c.retries >= limit || (user_timeout != 0 && now - c.una_since >= user_timeout)) {
    ++counters_.timeouts;
    const std::error_code why = c.arp_unresolved ? std::make_error_code(std::errc::host_unreachable)
                                : c.soft_error   ? c.soft_error
                                                 : std::make_error_code(std::errc::timed_out);
    fail(c, why, now);
    return;
  }
  ++c.retries;
  c.backoff = std::min(c.backoff + 1, 30U);
  if (!(handshake && c.snd_max == c.iss)) {
    // (A SYN still waiting for ARP was never sent: nothing expired on the wire.)
    ++c.rto_expirations;
    ++counters_.rto_expirations;
  }
  if (!handshake && c.flight() == 0) {
    // Data that never left (waiting for ARP): nothing to take back, just try again.
  } else if (!handshake) {
    // RFC 5681 3.1 (4): ssthresh from the flight, cwnd to the loss window; RFC 6582 4: recover
    // becomes the highest sequence sent, so the duplicate ACKs of the go-back do not start a
    // second fast retransmit.
    c.cc_algo->on_timeout(c.cc, c.flight(), send_mss(c), now);
    c.in_recovery = false;
    c.sack_recovery = false;  // RFC 6675 5.1: the timeout ends SACK recovery
    // RFC 2018 8: after a timeout the SACK information is not trusted (the peer may have
    // reneged): SND.UNA's segment goes first (RFC 6298 5.4). Blocks arriving during the go-back
    // fill a fresh scoreboard, and the go-back skips what they report.
    free_scoreboard(c);
    c.dup_acks = 0;
    c.recover = c.snd_max;
    c.snd_nxt = c.snd_una;
  } else {
    c.snd_nxt = c.iss;  // the SYN (or SYN-ACK) again
  }
  c.retransmit_one = false;
  c.rtt_timing = false;  // Karn: nothing timed across a retransmission
  arm_retransmit(c, now);
  want_output(c);
}

void tcp_layer::on_ack_timer(timer& t, time_ns /*now*/) noexcept {
  auto& c = *static_cast<connection*>(t.context());
  tcp_layer& self = *c.owner;
  c.ack_now = true;
  ++self.counters_.delayed_acks;
  self.want_output(c);
}

void tcp_layer::on_idle_timer(timer& t, time_ns now) noexcept {
  auto& c = *static_cast<connection*>(t.context());
  tcp_layer& self = *c.owner;
  if (c.close_deadline != 0 && now >= c.close_deadline) {
    // Linger ran out, or an orphan waited its FIN-WAIT-2 limit: reset and forget it.
    if (c.state == tcp_state::fin_wait_2) {
      ++self.counters_.timeouts;
    }
    self.abort_connection(c, now);
    return;
  }
  if (c.options.keepalive_idle == 0 || !keepalive_state(c.state)) {
    self.arm_idle(c, now);
    return;
  }
  if (now < c.last_receive + c.options.keepalive_idle) {
    c.keepalive_probes = 0;  // the peer was heard from since
    self.arm_idle(c, now);
    return;
  }
  if (c.flight() != 0 || c.sbuf_len != 0) {
    // Data outstanding: the retransmit timer watches the peer; check again later.
    self.timers_->arm(c.idle_timer, now + c.options.keepalive_interval);
    return;
  }
  if (c.keepalive_probes >= c.options.keepalive_probes) {
    ++self.counters_.keepalive_timeouts;
    ++self.counters_.timeouts;
    self.fail(c, std::make_error_code(std::errc::timed_out), now);
    return;
  }
  ++c.keepalive_probes;
  ++self.counters_.keepalives_sent;
  c.send_probe = true;
  self.want_output(c);
  self.timers_->arm(c.idle_timer, now + c.options.keepalive_interval);
}

}  // namespace dpdk_net::stack
