#include "dpdk_net/stack/reassembly.hpp"

#include <algorithm>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"

namespace dpdk_net::stack {

reassembly::reassembly(const reassembly_config& config, timer_wheel& timers)
    : config_(config), timers_(&timers), contexts_(std::max<std::size_t>(config.max_datagrams, 1)) {
  for (context& c : contexts_) {
    c.owner = this;
    c.t.set_callback(&reassembly::on_timeout, &c);
    c.pieces.reserve(config_.max_fragments);  // at construction: none per fragment
  }
}

reassembly::~reassembly() {
  for (context& c : contexts_) {
    if (c.used) {
      drop(c);
    }
  }
}

void reassembly::drop(context& c) noexcept {
  for (piece& p : c.pieces) {
    packet::free_chain(p.data);
    bytes_ -= p.length;
  }
  c.pieces.clear();
  c.t.cancel();
  c.used = false;
  --active_;
}

void reassembly::on_timeout(timer& t, time_ns now) noexcept {
  (void)now;
  context& c = *static_cast<context*>(t.context());
  ++c.owner->counters_.timeouts;
  c.owner->drop(c);
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
  // Find the datagram (a handful in progress at most: a scan of max_datagrams is bounded).
  context* c = nullptr;
  context* free_context = nullptr;
  for (context& x : contexts_) {
    if (x.used && x.src == h.src && x.dst == h.dst && x.id == h.id && x.protocol == h.protocol) {
      c = &x;
      break;
    }
    if (!x.used && free_context == nullptr) {
      free_context = &x;
    }
  }
  if (c == nullptr) {
    if (free_context == nullptr) {
      ++counters_.too_many_datagrams;
      return std::nullopt;
    }
    c = free_context;
    c->used = true;
    c->src = h.src;
    c->dst = h.dst;
    c->id = h.id;
    c->protocol = h.protocol;
    c->total = UINT32_MAX;
    c->have = 0;
    c->have_first = false;
    ++active_;
    timers_->arm(c->t, now + config_.timeout);  // from the first fragment (RFC 791)
  }
  if (bytes_ + length > config_.max_bytes) {
    ++counters_.over_memory;
    drop(*c);
    return std::nullopt;
  }
  if (c->pieces.size() == config_.max_fragments) {
    ++counters_.too_many_fragments;
    drop(*c);
    return std::nullopt;
  }
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
  if (!h.more_fragments) {
    c->total = end;
  }
  if (offset == 0) {
    std::copy_n(datagram.front().begin(), wire::ipv4_min_header_length, c->header.begin());
    c->have_first = true;
  }
  datagram.trim_front(h.header_length);  // keep the payload only
  c->pieces.insert(pos, piece{offset, length, datagram.release()});
  c->have += length;
  bytes_ += length;
  if (c->total == UINT32_MAX || c->have != c->total || !c->have_first) {
    return std::nullopt;
  }
  // Complete: a fresh 20-byte header in the first piece's headroom, then the chain.
  packet whole = packet::adopt(c->pieces.front().data);
  for (std::size_t i = 1; i < c->pieces.size(); ++i) {
    whole.chain(packet::adopt(c->pieces[i].data));
  }
  bytes_ -= c->have;
  c->pieces.clear();
  c->t.cancel();
  c->used = false;
  --active_;
  std::byte* hdr = whole.prepend(wire::ipv4_min_header_length);
  if (hdr == nullptr || c->total + wire::ipv4_min_header_length > 65535) {
    ++counters_.bad_length;
    return std::nullopt;
  }
  std::copy(c->header.begin(), c->header.end(), hdr);
  wire::store8(hdr, 0x45);  // options dropped (RFC 791: the first fragment's are not all copied)
  wire::store16(hdr + 2, static_cast<std::uint16_t>(c->total + wire::ipv4_min_header_length));
  wire::store16(hdr + 6, 0);
  wire::store16(hdr + 10, 0);
  wire::store16(hdr + 10, wire::internet_checksum(std::span<const std::byte>(hdr, 20)));
  ++counters_.reassembled;
  return whole;
}

}  // namespace dpdk_net::stack
