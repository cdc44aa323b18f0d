#include "dpdk_net/stack/reassembly.hpp"

#include <algorithm>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"

namespace dpdk_net::stack {

reassembly::reassembly(const reassembly_config& config, timer_wheel& timers, sip_key key)
    : config_(config),
      timers_(&timers),
      key_(key),
      contexts_(std::max<std::size_t>(config.max_datagrams, 1)),
      index_(contexts_.size()),
      by_age_(contexts_.size()) {
  for (std::size_t i = contexts_.size(); i-- > 0;) {
    context& c = contexts_[i];
    c.owner = this;
    c.t.set_callback(&reassembly::on_timeout, &c);
    c.pieces.reserve(config_.max_fragments);  // at construction: none per fragment
    free_.push_back(static_cast<std::uint32_t>(i));
  }
}

reassembly::~reassembly() {
  for (context& c : contexts_) {
    if (c.used) {
      drop(c);
    }
  }
}

std::uint64_t reassembly::hash(const wire::ipv4_header& h) const noexcept {
  return siphash24(key_, (std::uint64_t{h.src.value} << 32U) | h.dst.value,
                   (std::uint64_t{h.id} << 8U) | h.protocol);
}

void reassembly::drop(context& c) noexcept {
  for (piece& p : c.pieces) {
    packet::free_chain(p.data);
    bytes_ -= p.length;
    buffers_ -= p.buffers;
  }
  c.pieces.clear();
  c.t.cancel();
  c.used = false;
  index_.erase(c.hash, number(c));
  by_age_.remove(number(c));
  free_.push_back(number(c));
  --active_;
}

void reassembly::on_timeout(timer& t, time_ns now) noexcept {
  (void)now;
  context& c = *static_cast<context*>(t.context());
  ++c.owner->counters_.timeouts;
  c.owner->drop(c);
}

reassembly::context* reassembly::find_or_make(const wire::ipv4_header& h, time_ns now) noexcept {
  const std::uint64_t key_hash = hash(h);
  const std::uint32_t found = index_.find(key_hash, [&](std::uint32_t n) {
    const context& x = contexts_[n];
    return x.src == h.src && x.dst == h.dst && x.id == h.id && x.protocol == h.protocol;
  });
  if (found != detail::no_slot) {
    return &contexts_[found];
  }
  if (free_.empty()) {
    // Full: the oldest incomplete datagram goes, so new traffic is never locked out.
    ++counters_.too_many_datagrams;
    ++counters_.evicted;
    drop(contexts_[by_age_.front()]);
  }
  context* c = &contexts_[free_.back()];
  free_.pop_back();
  c->used = true;
  c->src = h.src;
  c->dst = h.dst;
  c->id = h.id;
  c->protocol = h.protocol;
  c->hash = key_hash;
  c->total = UINT32_MAX;
  c->have = 0;
  c->have_first = false;
  ++active_;
  index_.insert(key_hash, number(*c));
  by_age_.push_back(number(*c));
  timers_->arm(c->t, now + config_.timeout);  // from the first fragment (RFC 791)
  return c;
}

bool reassembly::make_room(const context& keep, std::size_t bytes, std::size_t buffers) noexcept {
  while (bytes_ + bytes > config_.max_bytes || buffers_ + buffers > config_.max_buffers) {
    std::uint32_t victim = by_age_.front();
    if (victim == number(keep)) {
      // keep is the oldest: look at the next oldest (keep is never evicted for its own room).
      if (by_age_.size() == 1) {
        return false;
      }
      by_age_.push_back(victim);  // rotate keep to the back: it is the one being added to
      victim = by_age_.front();
    }
    ++counters_.evicted;
    drop(contexts_[victim]);
  }
  return true;
}

std::optional<packet> reassembly::add(packet datagram, const wire::ipv4_header& h, time_ns now) {
  ++counters_.fragments;
  const std::uint32_t offset = std::uint32_t{h.fragment_offset} * 8U;
  const auto length = static_cast<std::uint32_t>(h.payload_length());
  if ((h.more_fragments && (length == 0 || length % 8 != 0)) ||
      datagram.length() != h.total_length) {
    ++counters_.bad_length;  // only the last fragment may end off an 8-byte boundary
    return std::nullopt;
  }
  const auto buffers = static_cast<std::uint32_t>(datagram.segment_count());
  if (length > config_.max_bytes || buffers > config_.max_buffers) {
    // Could never fit: refused before it takes a context or evicts anyone.
    ++(length > config_.max_bytes ? counters_.over_memory : counters_.over_buffers);
    return std::nullopt;
  }
  context* c = find_or_make(h, now);
  // The cheap refusals first, so a fragment that will be refused anyway evicts nobody.
  // Overlaps: an exact duplicate is ignored; anything else condemns the datagram.
  auto pos = std::lower_bound(c->pieces.begin(), c->pieces.end(), offset,
                              [](const piece& p, std::uint32_t o) { return p.offset < o; });
  if (pos != c->pieces.end() && pos->offset == offset && pos->length == length) {
    ++counters_.duplicates;
    return std::nullopt;
  }
  const bool overlaps_next = pos != c->pieces.end() && offset + length > pos->offset;
  const bool overlaps_prev =
      pos != c->pieces.begin() && (pos - 1)->offset + (pos - 1)->length > offset;
  const std::uint32_t end = offset + length;
  if (overlaps_next || overlaps_prev || (!h.more_fragments && c->total != UINT32_MAX) ||
      (c->total != UINT32_MAX && end > c->total) ||
      (!h.more_fragments && !c->pieces.empty() &&
       c->pieces.back().offset + c->pieces.back().length > end)) {
    ++counters_.overlaps;
    drop(*c);
    return std::nullopt;
  }
  if (c->pieces.size() == config_.max_fragments) {
    ++counters_.too_many_fragments;
    drop(*c);
    return std::nullopt;
  }
  // Then room: the oldest other datagrams make way (c's pieces, and so pos, are untouched).
  if (!make_room(*c, length, buffers)) {
    ++(bytes_ + length > config_.max_bytes ? counters_.over_memory : counters_.over_buffers);
    drop(*c);
    return std::nullopt;
  }
  if (!h.more_fragments) {
    c->total = end;
  }
  if (offset == 0) {
    std::copy_n(datagram.front().begin(), wire::ipv4_min_header_length, c->header.begin());
    c->have_first = true;
  }
  datagram.trim_front(h.header_length);  // keep the payload only
  c->pieces.insert(pos, piece{offset, length, datagram.release(), buffers});
  c->have += length;
  bytes_ += length;
  buffers_ += buffers;
  if (c->total == UINT32_MAX || c->have != c->total || !c->have_first) {
    return std::nullopt;
  }
  // Complete: a fresh 20-byte header in the first piece's headroom, then the chain.
  packet whole = packet::adopt(c->pieces.front().data);
  for (std::size_t i = 1; i < c->pieces.size(); ++i) {
    whole.chain(packet::adopt(c->pieces[i].data));
  }
  bytes_ -= c->have;
  for (const piece& p : c->pieces) {
    buffers_ -= p.buffers;
  }
  c->pieces.clear();
  const std::uint32_t total = c->total;
  const auto header = c->header;
  drop(*c);  // nothing left to free: releases the context, its index entry and timer
  std::byte* hdr = whole.prepend(wire::ipv4_min_header_length);
  if (hdr == nullptr || total + wire::ipv4_min_header_length > 65535) {
    ++counters_.bad_length;
    return std::nullopt;
  }
  std::copy(header.begin(), header.end(), hdr);
  wire::store8(hdr, 0x45);  // options dropped (RFC 791: the first fragment's are not all copied)
  wire::store16(hdr + 2, static_cast<std::uint16_t>(total + wire::ipv4_min_header_length));
  wire::store16(hdr + 6, 0);
  wire::store16(hdr + 10, 0);
  wire::store16(hdr + 10, wire::internet_checksum(std::span<const std::byte>(hdr, 20)));
  ++counters_.reassembled;
  return whole;
}

}  // namespace dpdk_net::stack
