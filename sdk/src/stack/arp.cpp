#include "dpdk_net/stack/arp.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "dpdk_net/wire/ethernet.hpp"

namespace dpdk_net::stack {

namespace {
constexpr std::uint32_t none = UINT32_MAX;
}

arp::arp(const arp_config& config, buffer_pool& pool, timer_wheel& timers, sink out, sip_key key)
    : config_(config),
      pool_(&pool),
      timers_(&timers),
      out_(std::move(out)),
      key_(key),
      entries_(std::max<std::size_t>(config.entries, 1)),
      index_(std::max<std::size_t>(config.entries, 1)),
      evictable_(std::max<std::size_t>(config.entries, 1)),
      incomplete_(std::max<std::size_t>(config.entries, 1)),
      pending_(config.pending_total),
      requests_(config.requests_per_second, config.requests_per_second, 0) {
  for (std::size_t i = entries_.size(); i-- > 0;) {
    entries_[i].owner = this;
    entries_[i].t.set_callback(&arp::on_timer, &entries_[i]);
    free_entries_.push_back(static_cast<std::uint32_t>(i));
  }
  for (std::size_t i = pending_.size(); i-- > 0;) {
    free_pending_.push_back(static_cast<std::uint32_t>(i));
  }
}

arp::~arp() {
  for (entry& e : entries_) {
    e.t.cancel();
    drop_pending(e);
  }
}

// --- index --------------------------------------------------------------------------------

std::uint64_t arp::hash(wire::ipv4_address ip) const noexcept {
  return siphash24(key_, ip.value);
}

arp::entry* arp::find(wire::ipv4_address ip) noexcept {
  const std::uint32_t n =
      index_.find(hash(ip), [&](std::uint32_t slot) { return entries_[slot].ip == ip; });
  return n == detail::no_slot ? nullptr : &entries_[n];
}

const arp::entry* arp::find(wire::ipv4_address ip) const noexcept {
  return const_cast<arp*>(this)->find(ip);  // NOLINT: same lookup, no mutation
}

void arp::set_state(entry& e, state st) noexcept {
  const bool changed = e.st != st;
  e.st = st;
  const auto n = static_cast<std::uint32_t>(&e - entries_.data());
  // Evictable: stale entries, and fresh ones we learned from a request but never used (a flood
  // of spoofed requests must not be able to push out the entries we depend on).
  if ((st == state::stale && changed) || (st == state::reachable && !e.used)) {
    evictable_.push_back(n);  // in the order they became evictable: the oldest goes first
  } else if (st != state::stale && (st != state::reachable || e.used)) {
    evictable_.remove(n);
  }
  if (st == state::incomplete) {
    if (changed || !incomplete_.contains(n)) {
      incomplete_.push_back(n);
    }
  } else {
    incomplete_.remove(n);
  }
}

arp::entry* arp::make(wire::ipv4_address ip, time_ns now) noexcept {
  if (free_entries_.empty()) {
    // Full: forget the entry evictable longest (never one being resolved, probed, or fresh and
    // in use by us).
    ++counters_.evicted;
    if (incomplete_.size() > entries_.size() / 2) {
      // Mostly resolutions that do not finish: a flood of SYNs from spoofed on-link addresses
      // (each SYN-ACK starts one) must not lock out new peers, nor push out the entries of peers
      // that proved they exist. The oldest resolution goes (its waiting frames are dropped and
      // counted; a TCP connection waiting on it retries at its RTO).
      ++counters_.table_full;
      forget(entries_[incomplete_.front()]);
    } else if (!evictable_.empty()) {
      forget(entries_[evictable_.front()]);
    } else if (!incomplete_.empty()) {
      ++counters_.table_full;
      forget(entries_[incomplete_.front()]);
    } else {
      --counters_.evicted;
      ++counters_.table_full;
      return nullptr;
    }
  }
  const std::uint32_t n = free_entries_.back();
  free_entries_.pop_back();
  entry& e = entries_[n];
  e.ip = ip;
  e.hash = hash(ip);
  e.used = false;
  e.mac = mac_address{};
  set_state(e, state::incomplete);
  e.requests = 0;
  e.last_used = now;
  index_.insert(e.hash, n);
  return &e;
}

void arp::forget(entry& e) noexcept {
  e.t.cancel();
  drop_pending(e);
  const auto n = static_cast<std::uint32_t>(&e - entries_.data());
  index_.erase(e.hash, n);
  set_state(e, state::free);
  free_entries_.push_back(n);
}

// --- pending packets ------------------------------------------------------------------------

bool arp::enqueue(entry& e, packet p) noexcept {
  if (e.pending_count >= config_.pending_per_entry && e.pending_head != none) {
    // Per-destination limit: the oldest waiting packet makes room (the newest is most useful).
    pending_slot& old = pending_[e.pending_head];
    packet::free_chain(old.frame);
    const std::uint32_t next = old.next;
    free_pending_.push_back(e.pending_head);
    e.pending_head = next;
    if (next == none) {
      e.pending_tail = none;
    }
    --e.pending_count;
    ++counters_.pending_dropped;
  }
  if (free_pending_.empty() || config_.pending_per_entry == 0) {
    ++counters_.pending_dropped;
    return false;  // p is freed by the caller's scope
  }
  const std::uint32_t slot = free_pending_.back();
  free_pending_.pop_back();
  pending_[slot] = pending_slot{p.release(), none};
  if (e.pending_tail != none) {
    pending_[e.pending_tail].next = slot;
  } else {
    e.pending_head = slot;
  }
  e.pending_tail = slot;
  ++e.pending_count;
  return true;
}

void arp::flush_pending(entry& e) noexcept {
  while (e.pending_head != none) {
    pending_slot& s = pending_[e.pending_head];
    const std::uint32_t next = s.next;
    transmit_ipv4(packet::adopt(s.frame), e.mac);
    s.frame = nullptr;
    free_pending_.push_back(e.pending_head);
    e.pending_head = next;
  }
  e.pending_tail = none;
  e.pending_count = 0;
}

void arp::drop_pending(entry& e) noexcept {
  while (e.pending_head != none) {
    pending_slot& s = pending_[e.pending_head];
    packet::free_chain(s.frame);
    s.frame = nullptr;
    ++counters_.pending_dropped;
    free_pending_.push_back(e.pending_head);
    e.pending_head = s.next;
  }
  e.pending_tail = none;
  e.pending_count = 0;
}

// --- frames -------------------------------------------------------------------------------

void arp::transmit_arp(std::uint16_t op, mac_address eth_dst, mac_address target_mac,
                       wire::ipv4_address sender_ip, wire::ipv4_address target_ip) noexcept {
  packet p = pool_->alloc();
  std::byte* d = p ? p.append(wire::ethernet_header_length + wire::arp_length) : nullptr;
  if (d == nullptr) {
    ++counters_.no_buffer;
    return;
  }
  wire::write_ethernet(std::span(d, wire::ethernet_header_length),
                       wire::ethernet_header{eth_dst, config_.mac, wire::ethertype::arp, false, 0});
  wire::write_arp(std::span(d + wire::ethernet_header_length, wire::arp_length),
                  wire::arp_packet{op, config_.mac, sender_ip, target_mac, target_ip});
  out_(std::move(p));
}

void arp::transmit_ipv4(packet datagram, mac_address dst) noexcept {
  if (!wire::push_ethernet(
          datagram, wire::ethernet_header{dst, config_.mac, wire::ethertype::ipv4, false, 0})) {
    ++counters_.no_buffer;  // no headroom: the caller built the datagram without room for L2
    return;
  }
  out_(std::move(datagram));
}

void arp::announce(time_ns now) {
  (void)now;
  // Gratuitous ARP (RFC 5227 "announcement"): a request with sender = target = our address.
  transmit_arp(wire::arp_op::request, mac_address::broadcast(), mac_address{}, config_.address,
               config_.address);
  ++counters_.gratuitous_sent;
}

void arp::request(entry& e, time_ns now) noexcept {
  ++e.requests;
  timers_->arm(e.t, now + config_.retry_interval);
  // Token bucket over all requests: a flood of unresolvable destinations cannot make us flood.
  if (!requests_.take(now)) {
    ++counters_.rate_limited;
    return;  // counts as an attempt: the retry timer is armed all the same
  }
  transmit_arp(wire::arp_op::request, mac_address::broadcast(), mac_address{}, config_.address,
               e.ip);
  ++counters_.requests_sent;
}

void arp::probe(entry& e, time_ns now) noexcept {
  // RFC 1122 2.3.2.1: unicast to the cached address first (cheap for everyone else on the
  // link), then broadcast (the host may have a new MAC), then give up.
  if (e.requests >= config_.unicast_probes) {
    request(e, now);
    return;
  }
  ++e.requests;
  timers_->arm(e.t, now + config_.retry_interval);
  if (!requests_.take(now)) {
    ++counters_.rate_limited;
    return;
  }
  transmit_arp(wire::arp_op::request, e.mac, mac_address{}, config_.address, e.ip);
  ++counters_.probes_sent;
}

void arp::learn(entry& e, mac_address mac, time_ns now) noexcept {
  e.mac = mac;
  set_state(e, state::reachable);
  e.requests = 0;
  e.last_used = std::max(e.last_used, now);
  timers_->arm(e.t, now + config_.reachable_time);
  flush_pending(e);
  if (resolved_hook_ != nullptr) {
    resolved_hook_(resolved_context_);
  }
}

void arp::on_timer(timer& t, time_ns now) noexcept {
  entry& e = *static_cast<entry*>(t.context());
  arp& self = *e.owner;
  switch (e.st) {
    case state::incomplete:
      if (e.requests >= self.config_.max_requests) {
        ++self.counters_.resolution_failed;
        self.forget(e);  // pending packets dropped and counted
        if (self.resolved_hook_ != nullptr) {
          self.resolved_hook_(self.resolved_context_);  // waiters retry (and fail in time)
        }
      } else {
        self.request(e, now);
      }
      break;
    case state::probe:
      if (e.requests >= self.config_.unicast_probes + self.config_.max_requests) {
        ++self.counters_.verify_failed;
        self.forget(e);  // the host is gone or moved: resolve afresh on the next send
      } else {
        self.probe(e, now);
      }
      break;
    case state::reachable:
      self.set_state(e, state::stale);
      self.timers_->arm(e.t, e.last_used + self.config_.stale_time);
      break;
    case state::stale:
      if (e.last_used + self.config_.stale_time <= now) {
        self.forget(e);
      } else {
        self.timers_->arm(e.t, e.last_used + self.config_.stale_time);
      }
      break;
    case state::free:
      break;
  }
}

void arp::confirm_reachable(wire::ipv4_address ip, time_ns now) noexcept {
  entry* e = find(ip);
  if (e != nullptr && e->st != state::incomplete) {
    e->requests = 0;
    set_state(*e, state::reachable);
    timers_->arm(e->t, now + config_.reachable_time);
  }
}

wire::wire_error arp::receive(std::span<const std::byte> payload, time_ns now, bool answer) {
  const auto r = wire::parse_arp(payload);
  if (!r) {
    ++counters_.malformed;
    return r.error;
  }
  const wire::arp_packet& a = r.header;
  const bool for_us = a.target_ip == config_.address;
  if (a.operation == wire::arp_op::request) {
    ++counters_.requests_received;
  } else {
    ++counters_.replies_received;
  }
  if (a.sender_ip.is_unspecified()) {
    // An RFC 5227 probe: someone checks whether our address is taken. Defend it; learn nothing.
    if (for_us && a.operation == wire::arp_op::request && answer) {
      ++counters_.probes_answered;
      transmit_arp(wire::arp_op::reply, a.sender_mac, a.sender_mac, config_.address, a.target_ip);
      ++counters_.replies_sent;
    }
    return wire::wire_error::ok;
  }
  if (a.sender_mac.is_multicast() || a.sender_ip.is_broadcast() || a.sender_ip.is_multicast() ||
      a.sender_ip == config_.address) {
    return wire::wire_error::ok;  // nonsense or a conflict report: never cached
  }
  // RFC 826 merge: refresh an entry we have; create one only if the packet is for us.
  entry* e = find(a.sender_ip);
  if (e != nullptr) {
    learn(*e, a.sender_mac, now);
  } else if (for_us && (a.operation == wire::arp_op::request || config_.accept_unsolicited)) {
    if ((e = make(a.sender_ip, now)) != nullptr) {
      learn(*e, a.sender_mac, now);
    }
  } else if (a.operation == wire::arp_op::reply) {
    ++counters_.unsolicited_ignored;
  }
  if (for_us && a.operation == wire::arp_op::request && answer) {
    transmit_arp(wire::arp_op::reply, a.sender_mac, a.sender_mac, config_.address, a.sender_ip);
    ++counters_.replies_sent;
  }
  return wire::wire_error::ok;
}

arp::entry* arp::use(wire::ipv4_address next_hop, time_ns now, bool& started) noexcept {
  started = false;
  entry* e = find(next_hop);
  if (e != nullptr && !e->used) {
    e->used = true;
    if (e->st == state::reachable) {
      evictable_.remove(static_cast<std::uint32_t>(e - entries_.data()));
    }
  }
  if (e != nullptr && e->st != state::incomplete) {
    e->last_used = now;
    if (e->st == state::stale) {
      // In use again after reachable_time: re-verify (RFC 1122 2.3.2.1) while still using it.
      set_state(*e, state::probe);
      e->requests = 0;
      probe(*e, now);
    }
    return e;
  }
  if (e == nullptr) {
    e = make(next_hop, now);
    if (e == nullptr) {
      return nullptr;
    }
    e->used = true;  // resolved for our own traffic
    started = true;
  }
  return e;
}

void arp::send(packet datagram, wire::ipv4_address next_hop, time_ns now) {
  bool started = false;
  entry* e = use(next_hop, now, started);
  if (e == nullptr) {
    ++counters_.pending_dropped;
    return;
  }
  if (e->st != state::incomplete) {
    transmit_ipv4(std::move(datagram), e->mac);
    return;
  }
  enqueue(*e, std::move(datagram));  // wait with the others
  if (started) {
    request(*e, now);
  }
}

std::optional<mac_address> arp::resolve(wire::ipv4_address next_hop, time_ns now) noexcept {
  bool started = false;
  entry* e = use(next_hop, now, started);
  if (e == nullptr) {
    return std::nullopt;  // table full: the caller retries (its own timer)
  }
  if (e->st != state::incomplete) {
    return e->mac;
  }
  if (started) {
    request(*e, now);
  }
  return std::nullopt;
}

std::optional<mac_address> arp::lookup(wire::ipv4_address ip) const noexcept {
  const entry* e = find(ip);
  if (e == nullptr || e->st == state::incomplete) {
    return std::nullopt;
  }
  return e->mac;
}

arp::state arp::state_of(wire::ipv4_address ip) const noexcept {
  const entry* e = find(ip);
  return e == nullptr ? state::free : e->st;
}

}  // namespace dpdk_net::stack
