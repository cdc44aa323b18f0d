#include "dpdk_net/stack/arp.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "dpdk_net/wire/ethernet.hpp"

namespace dpdk_net::stack {

namespace {
constexpr std::uint32_t none = UINT32_MAX;
}

arp::arp(const arp_config& config, buffer_pool& pool, timer_wheel& timers, sink out)
    : config_(config),
      pool_(&pool),
      timers_(&timers),
      out_(std::move(out)),
      entries_(std::max<std::size_t>(config.entries, 1)),
      index_(std::bit_ceil(2 * std::max<std::size_t>(config.entries, 1)), none),
      pending_(config.pending_total),
      tokens_(config.requests_per_second) {
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

std::size_t arp::home(wire::ipv4_address ip) const noexcept {
  return (ip.value * 2654435761U) & (index_.size() - 1);  // Knuth's multiplicative hash
}

void arp::index_insert(std::uint32_t e) noexcept {
  std::size_t i = home(entries_[e].ip);
  while (index_[i] != none) {
    i = (i + 1) & (index_.size() - 1);
  }
  index_[i] = e;
}

void arp::index_erase(wire::ipv4_address ip) noexcept {
  const std::size_t mask = index_.size() - 1;
  std::size_t i = home(ip);
  while (index_[i] != none && entries_[index_[i]].ip != ip) {
    i = (i + 1) & mask;
  }
  if (index_[i] == none) {
    return;
  }
  // Backward-shift: pull later members of the probe run into the hole, so no tombstones.
  index_[i] = none;
  for (std::size_t j = (i + 1) & mask; index_[j] != none; j = (j + 1) & mask) {
    const std::size_t k = home(entries_[index_[j]].ip);
    const bool between = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!between) {
      index_[i] = index_[j];
      index_[j] = none;
      i = j;
    }
  }
}

arp::entry* arp::find(wire::ipv4_address ip) noexcept {
  for (std::size_t i = home(ip); index_[i] != none; i = (i + 1) & (index_.size() - 1)) {
    if (entries_[index_[i]].ip == ip) {
      return &entries_[index_[i]];
    }
  }
  return nullptr;
}

const arp::entry* arp::find(wire::ipv4_address ip) const noexcept {
  return const_cast<arp*>(this)->find(ip);  // NOLINT: same lookup, no mutation
}

arp::entry* arp::make(wire::ipv4_address ip, time_ns now) noexcept {
  if (free_entries_.empty()) {
    // Full: forget the least recently used stale entry (never one being resolved or fresh).
    entry* victim = nullptr;
    for (entry& e : entries_) {
      if (e.st == state::stale && (victim == nullptr || e.last_used < victim->last_used)) {
        victim = &e;
      }
    }
    if (victim == nullptr) {
      ++counters_.table_full;
      return nullptr;
    }
    forget(*victim);
  }
  const std::uint32_t n = free_entries_.back();
  free_entries_.pop_back();
  entry& e = entries_[n];
  e.ip = ip;
  e.mac = mac_address{};
  e.st = state::incomplete;
  e.requests = 0;
  e.last_used = now;
  index_insert(n);
  return &e;
}

void arp::forget(entry& e) noexcept {
  e.t.cancel();
  drop_pending(e);
  index_erase(e.ip);
  e.st = state::free;
  free_entries_.push_back(static_cast<std::uint32_t>(&e - entries_.data()));
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
  // Token bucket over all requests: a flood of unresolvable destinations cannot make us flood.
  tokens_ = std::min<double>(
      config_.requests_per_second,
      tokens_ + static_cast<double>(now - tokens_at_) / 1e9 * config_.requests_per_second);
  tokens_at_ = now;
  ++e.requests;
  timers_->arm(e.t, now + config_.retry_interval);
  if (tokens_ < 1.0) {
    ++counters_.rate_limited;
    return;  // counts as an attempt: the retry timer is armed all the same
  }
  tokens_ -= 1.0;
  transmit_arp(wire::arp_op::request, mac_address::broadcast(), mac_address{}, config_.address,
               e.ip);
  ++counters_.requests_sent;
}

void arp::learn(entry& e, mac_address mac, time_ns now) noexcept {
  e.mac = mac;
  e.st = state::reachable;
  e.requests = 0;
  e.last_used = std::max(e.last_used, now);
  timers_->arm(e.t, now + config_.reachable_time);
  flush_pending(e);
}

void arp::on_timer(timer& t, time_ns now) noexcept {
  entry& e = *static_cast<entry*>(t.context());
  arp& self = *e.owner;
  switch (e.st) {
    case state::incomplete:
      if (e.requests >= self.config_.max_requests) {
        ++self.counters_.resolution_failed;
        self.forget(e);  // pending packets dropped and counted
      } else {
        self.request(e, now);
      }
      break;
    case state::reachable:
      e.st = state::stale;
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

void arp::receive(std::span<const std::byte> payload, time_ns now) {
  const auto r = wire::parse_arp(payload);
  if (!r) {
    ++counters_.malformed;
    return;
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
    if (for_us && a.operation == wire::arp_op::request) {
      ++counters_.probes_answered;
      transmit_arp(wire::arp_op::reply, a.sender_mac, a.sender_mac, config_.address, a.target_ip);
      ++counters_.replies_sent;
    }
    return;
  }
  if (a.sender_mac.is_multicast() || a.sender_ip.is_broadcast() || a.sender_ip.is_multicast() ||
      a.sender_ip == config_.address) {
    return;  // nonsense or a conflict report: never cached
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
  if (for_us && a.operation == wire::arp_op::request) {
    transmit_arp(wire::arp_op::reply, a.sender_mac, a.sender_mac, config_.address, a.sender_ip);
    ++counters_.replies_sent;
  }
}

void arp::send(packet datagram, wire::ipv4_address next_hop, time_ns now) {
  entry* e = find(next_hop);
  if (e != nullptr && e->st != state::incomplete) {
    e->last_used = now;
    transmit_ipv4(std::move(datagram), e->mac);
    return;
  }
  if (e == nullptr) {
    e = make(next_hop, now);
    if (e == nullptr) {
      ++counters_.pending_dropped;
      return;
    }
    enqueue(*e, std::move(datagram));
    request(*e, now);
    return;
  }
  enqueue(*e, std::move(datagram));  // already resolving: wait with the others
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
