#include "dpdk_net/stack/stack.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "dpdk_net/wire/udp.hpp"

namespace dpdk_net::stack {

namespace detail {
void make_echo_reply(std::byte* icmp) noexcept;  // icmp.cpp
}  // namespace detail

namespace {

stack_config with_arp(stack_config c) {
  c.arp.mac = c.mac;
  c.arp.address = c.address;
  return c;
}

/// The config, or std::invalid_argument: a stack is never built on one validate() refuses.
const stack_config& checked(const stack_config& c) {
  if (std::string e = validate(c, c.mtu); !e.empty()) {
    throw std::invalid_argument(e);
  }
  return c;
}

}  // namespace

stack::stack(const stack_config& config, buffer_pool& pool, const stack_secret& secret, time_ns now)
    : config_(with_arp(checked(config))),
      pool_(&pool),
      timers_(millisecond, now),
      arp_(
          config_.arp, pool, timers_, [this](packet p) { enqueue_tx(std::move(p)); },
          derive_key(secret, key_purpose::arp_index)),
      reasm_(config_.reassembly, timers_, derive_key(secret, key_purpose::reassembly_index)),
      tx_ring_(std::bit_ceil(std::max<std::size_t>(config.tx_queue, 1))),
      pmtu_(config.pmtu_entries, config.pmtu_lifetime, derive_key(secret, key_purpose::pmtu_index)),
      sockets_(config.udp_sockets),
      port_to_socket_(65536, -1),
      port_key_(derive_key(secret, key_purpose::ephemeral_port)),
      icmp_errors_(config.icmp_errors_per_second, config.icmp_error_burst, now),
      udp_events_(config.udp_sockets),
      linear_(65536),
      now_(now),
      tcp_(*this, config_.tcp, pool, timers_, secret) {
  if (!config_.tx_chaining) {
    // Without chaining every frame we send is one buffer: a full-sized one must fit.
    packet probe = pool.alloc();
    const std::size_t frame = std::size_t{config_.mtu} + 18;  // Ethernet + a VLAN tag
    if (probe && probe.tailroom() < frame) {
      throw std::invalid_argument(
          "stack_config.mtu: a " + std::to_string(frame) + "-byte frame does not fit one " +
          std::to_string(probe.tailroom()) +
          "-byte buffer of the pool, and the device does not chain (tx_chaining): lower the MTU "
          "or give the pool bigger buffers");
    }
  }
  arp_.set_resolved_hook(&stack::arp_resolved, this);
}

void stack::arp_resolved(void* self) noexcept {
  static_cast<stack*>(self)->tcp_.next_hop_resolved();
}

stack::~stack() {
  // Frames still waiting for drain_tx go back to their pool.
  while (tx_count_ != 0) {
    packet::free_chain(tx_ring_[tx_head_]);
    tx_head_ = (tx_head_ + 1) & (tx_ring_.size() - 1);
    --tx_count_;
  }
}

void stack::start(time_ns now) {
  arp_.announce(now);
}

void stack::advance(time_ns now) {
  now_ = std::max(now_, now);
  timers_.advance(now);
}

void stack::enqueue_tx(packet frame) noexcept {
  if (tx_count_ == tx_ring_.size()) {
    ++counters_.tx_queue_full;
    return;  // frame freed here
  }
  tx_ring_[(tx_head_ + tx_count_) & (tx_ring_.size() - 1)] = frame.release();
  ++tx_count_;
  ++counters_.frames_out;
}

std::size_t stack::drain_tx(std::span<packet> out, time_ns now) noexcept {
  now_ = std::max(now_, now);
  const auto take_queued = [&](std::span<packet> room) {
    const std::size_t k = std::min(room.size(), tx_count_);
    for (std::size_t i = 0; i < k; ++i) {
      room[i] = packet::adopt(tx_ring_[(tx_head_ + i) & (tx_ring_.size() - 1)]);
    }
    tx_head_ = (tx_head_ + k) & (tx_ring_.size() - 1);
    tx_count_ -= k;
    return k;
  };
  std::size_t n = take_queued(out);
  // Pull-based TCP egress: segments are built now, into the room left in this burst.
  const std::size_t segments = tcp_.emit(out.subspan(n), now_);
  counters_.frames_out += segments;  // queued frames were counted when queued
  n += segments;
  // What TCP queued while emitting (an ARP request for a new next hop, RSTs) goes in the same
  // burst: a caller that drains until 0 would otherwise leave it for the next timer (the ARP
  // retry, a second later).
  n += take_queued(out.subspan(n));
  return n;
}

std::size_t stack::poll_events(std::span<socket_event> out) noexcept {
  std::size_t n = 0;
  while (n < out.size() && !udp_events_.empty()) {
    const std::uint32_t id = udp_events_.front();
    udp_events_.remove(id);
    udp_socket& s = sockets_[id];
    if (s.events != 0) {
      out[n++] = socket_event{id, wire::ip_protocol::udp, s.events};
      s.events = 0;
    }
  }
  return n + tcp_.poll_events(out.subspan(n));
}

stack_counters stack::counters() const noexcept {
  stack_counters c = counters_;
  c.arp = arp_.counters();
  c.reassembly = reasm_.counters();
  c.tcp = tcp_.counters();
  return c;
}

void stack::malformed(wire::wire_error e) noexcept {
  ++counters_.malformed[static_cast<std::size_t>(e) % counters_.malformed.size()];
}

std::uint32_t stack::netmask() const noexcept {
  return config_.prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32U - config_.prefix_length);
}

bool stack::is_local_broadcast(wire::ipv4_address a) const noexcept {
  // /31 (RFC 3021) and /32 have no directed broadcast: their "all ones" host is a host.
  return a.is_broadcast() ||
         (config_.prefix_length <= 30 && a.value == (config_.address.value | ~netmask()));
}

bool stack::is_martian_source(wire::ipv4_address src) const noexcept {
  // RFC 1122 3.2.1.3 / 3.2.2: no datagram comes from these; answering one would go to everyone
  // (broadcast), to no one (0.0.0.0) or to ourselves.
  const bool subnet_zero = config_.prefix_length <= 30 && src.value != 0 &&
                           (src.value & ~netmask()) == 0 &&
                           (src.value & netmask()) == (config_.address.value & netmask());
  return src.is_unspecified() || src.is_broadcast() || src.is_multicast() ||
         is_local_broadcast(src) || subnet_zero || src.is_loopback() || (src.value >> 24U) == 0 ||
         src == config_.address;
}

// --- input ----------------------------------------------------------------------------------

void stack::receive(packet frame, time_ns now) {
  now_ = std::max(now_, now);
  ++counters_.frames_in;
  if (frame.segment_count() > 1 && frame.front().size() < frame.length()) {
    // A frame in several buffers (a device that scatters, or a peer's zero-copy frame handed
    // over as is): the parsers read one span, so it is copied into one buffer if it fits one.
    packet flat = pool_->alloc();
    if (flat && flat.tailroom() >= frame.length()) {
      const std::size_t n = frame.length();
      flat.meta() = frame.meta();
      (void)frame.copy_out(0, std::span(flat.append(n), n));
      frame = std::move(flat);
      ++counters_.frames_linearized;
    } else {
      receive_long_frame(frame, now);
      return;
    }
  }
  const auto eth = wire::parse_ethernet(frame.front());
  if (!eth) {
    malformed(eth.error);
    return;
  }
  const bool link_broadcast = eth.header.dst.is_broadcast();
  if (eth.header.dst != config_.mac && !link_broadcast) {
    ++counters_.eth_not_for_us;
    return;
  }
  switch (eth.header.ethertype) {
    case wire::ethertype::arp:
      if (const wire::wire_error e = arp_.receive(eth.payload, now); e != wire::wire_error::ok) {
        malformed(e);  // by reason here; arp.malformed counts them all too
      }
      return;
    case wire::ethertype::ipv4:
      receive_ipv4(std::move(frame), eth.header.length(), link_broadcast, now);
      return;
    default:
      ++counters_.eth_unknown_type;
      return;
  }
}

void stack::receive_ipv4(packet frame, std::size_t l3_offset, bool link_broadcast, time_ns now,
                         bool reassembled) {
  const std::span<const std::byte> l3 = frame.front().subspan(l3_offset);
  const bool vouched = frame.meta().ip_checksum == checksum_status::good;
  const auto ip = wire::parse_ipv4(l3, wire::ipv4_parse_options{.verify_checksum = !vouched});
  if (!ip) {
    malformed(ip.error);
    return;
  }
  const wire::ipv4_header& h = ip.header;
  const bool broadcast = is_local_broadcast(h.dst);
  if (h.dst != config_.address && !broadcast) {
    ++counters_.ip_not_for_us;  // we are a host, not a router
    return;
  }
  if (is_martian_source(h.src)) {
    ++counters_.ip_martian_source;
    return;
  }
  if (h.is_fragment()) {
    if (broadcast) {
      ++counters_.ip_fragments_dropped;  // nothing we answer is worth reassembling from broadcast
      return;
    }
    frame.trim_front(l3_offset);
    if (frame.length() > h.total_length) {
      frame.trim_back(frame.length() - h.total_length);  // Ethernet padding
    }
    std::optional<packet> whole = reasm_.add(std::move(frame), h, now);
    if (!whole) {
      return;
    }
    if (datagram_hook_.take != nullptr && datagram_hook_.take(datagram_hook_.context, *whole)) {
      return;  // another worker owns its flow
    }
    deliver_reassembled(std::move(*whole), now);
    return;
  }
  ++counters_.ip_in;
  const std::size_t l4_offset = l3_offset + h.header_length;
  const std::span<const std::byte> datagram = l3.first(h.total_length);
  switch (h.protocol) {
    case wire::ip_protocol::icmp:
      if (broadcast) {
        ++counters_.icmp_ignored;  // no answers to broadcast pings (smurf amplification)
        return;
      }
      receive_icmp(frame, l3_offset, l4_offset, ip.payload, now);
      return;
    case wire::ip_protocol::udp:
      receive_udp(std::move(frame), l4_offset, ip.payload, h.src, h.dst, link_broadcast, now,
                  datagram);
      return;
    case wire::ip_protocol::tcp:
      if (broadcast || (link_broadcast && !reassembled)) {
        ++counters_.tcp_to_broadcast;  // TCP is unicast only (RFC 1122 4.2.3.10)
        return;
      }
      tcp_.receive(datagram, h.header_length, frame.meta().l4_checksum == checksum_status::good,
                   now);
      return;
    default:
      ++counters_.ip_unknown_protocol;
      send_icmp_error(wire::icmp_type::destination_unreachable, wire::icmp_unreachable::protocol,
                      datagram, link_broadcast, now);
      return;
  }
}

// --- output ---------------------------------------------------------------------------------

std::uint16_t stack::path_mtu(wire::ipv4_address dst, time_ns now) const noexcept {
  const auto p = pmtu_.find(dst, now);
  return p ? p->mtu : config_.mtu;
}

bool stack::output(std::uint8_t protocol, wire::ipv4_address dst, const l4_source& src,
                   time_ns now) {
  const auto learned = pmtu_.find(dst, now);
  const std::size_t room = (learned ? learned->mtu : config_.mtu) - wire::ipv4_min_header_length;
  const bool may_set_df = !learned || !learned->locked;
  const std::size_t step = src.length <= room ? room : room & ~std::size_t{7};
  const std::uint16_t id = next_ip_id();
  std::size_t at = 0;
  do {
    const std::size_t n = std::min(step, src.length - at);
    packet p = pool_->alloc();
    std::byte* d = p ? p.append(wire::ipv4_min_header_length + n) : nullptr;
    if (d == nullptr) {
      ++counters_.no_buffer;
      return false;  // fragments already sent are wasted: the peer's reassembly times out
    }
    // Copy [at, at + n) of the message: head bytes first, then the chain or flat part.
    std::size_t done = 0;
    std::byte* body = d + wire::ipv4_min_header_length;
    if (at < src.head.size()) {
      done = std::min(n, src.head.size() - at);
      std::memcpy(body, src.head.data() + at, done);
    }
    if (done < n) {
      const std::size_t rest_at = at + done - src.head.size();
      if (src.chain != nullptr) {
        src.chain->copy_out(src.chain_offset + rest_at, std::span(body + done, n - done));
      } else {
        std::memcpy(body + done, src.flat.data() + rest_at, n - done);
      }
    }
    wire::ipv4_header h;
    h.total_length = static_cast<std::uint16_t>(wire::ipv4_min_header_length + n);
    h.id = id;
    h.ttl = config_.ttl;
    h.protocol = protocol;
    h.src = config_.address;
    h.dst = dst;
    h.more_fragments = at + n < src.length;
    // Like Linux's default: DF on what fits the path (so a smaller path tells us), none on
    // fragments (they must be allowed to be split further).
    h.dont_fragment = may_set_df && src.length <= room;
    h.fragment_offset = static_cast<std::uint16_t>(at / 8);
    wire::write_ipv4(std::span(d, wire::ipv4_min_header_length), h);
    if (h.more_fragments || at != 0) {
      ++counters_.ip_fragments_sent;
    }
    if (!route(std::move(p), dst, now)) {
      return false;
    }
    at += n;
  } while (at < src.length);
  return true;
}

void stack::receive_long_frame(const packet& frame, time_ns now) {
  // Longer than one buffer (a jumbo frame over small buffers): made contiguous in the 64 KiB
  // scratch. Only unicast, unfragmented TCP is worth it (bulk data); anything else is counted.
  ++counters_.frames_linearized;
  if (frame.length() > linear_.size()) {
    ++counters_.frames_too_long;
    return;
  }
  const std::span<std::byte> f(linear_.data(), frame.length());
  (void)frame.copy_out(0, f);
  const auto eth = wire::parse_ethernet(f);
  if (!eth || eth.header.dst != config_.mac || eth.header.ethertype != wire::ethertype::ipv4) {
    ++counters_.frames_too_long;
    return;
  }
  const std::span<const std::byte> l3 = f.subspan(eth.header.length());
  const auto ip = wire::parse_ipv4(l3, wire::ipv4_parse_options{.verify_checksum = true});
  if (!ip) {
    malformed(ip.error);
    return;
  }
  const wire::ipv4_header& h = ip.header;
  if (h.dst != config_.address || h.is_fragment() || h.protocol != wire::ip_protocol::tcp ||
      is_martian_source(h.src)) {
    ++counters_.frames_too_long;
    return;
  }
  ++counters_.ip_in;
  tcp_.receive(l3.first(h.total_length), h.header_length, false, now);
}

void stack::deliver_reassembled(packet whole, time_ns now) {
  if (whole.length() < wire::ipv4_min_header_length) {
    malformed(wire::wire_error::truncated);
    return;
  }
  const std::uint8_t protocol = wire::load8(whole.front().data() + 9);
  if (whole.segment_count() == 1) {
    // Fits one buffer: the ordinary path. Taken as link broadcast so that no ICMP error is sent
    // about a reassembled datagram (RFC 1122 3.2.2 forbids errors about non-first fragments
    // and link-layer broadcasts; we do not track which fragments were which).
    receive_ipv4(std::move(whole), 0, true, now, true);
  } else if (protocol == wire::ip_protocol::udp) {
    deliver_udp_chain(std::move(whole), now);
  } else if (protocol == wire::ip_protocol::tcp) {
    receive_tcp_chain(whole, now);
  } else if (protocol == wire::ip_protocol::icmp) {
    // A large ping: answer from the chain (the reply is fragmented on the way out).
    packet& d = whole;
    std::array<std::byte, 8> hdr{};
    if (d.copy_out(20, hdr) != 8 || wire::load8(hdr.data()) != wire::icmp_type::echo_request) {
      ++counters_.icmp_ignored;
      return;
    }
    wire::checksum_accumulator acc;
    wire::add_packet(acc, d, 20, d.length() - 20);
    if (acc.finish() != 0) {
      malformed(wire::wire_error::icmp_bad_checksum);
      return;
    }
    ++counters_.icmp_in;
    detail::make_echo_reply(hdr.data());
    const wire::ipv4_address src{wire::load32(d.front().data() + 12)};
    if (output(wire::ip_protocol::icmp, src, l4_source{hdr, &d, 28, {}, d.length() - 20}, now)) {
      ++counters_.icmp_echo_replies;
    }
  } else {
    ++counters_.ip_unknown_protocol;
  }
}

void stack::receive_datagram(packet datagram, time_ns now) {
  now_ = std::max(now_, now);
  deliver_reassembled(std::move(datagram), now);
}

void stack::receive_arp_copy(const packet& frame, time_ns now) {
  now_ = std::max(now_, now);
  const auto eth = wire::parse_ethernet(frame.front());
  if (!eth || eth.header.ethertype != wire::ethertype::arp) {
    return;
  }
  (void)arp_.receive(eth.payload, now, /*answer=*/false);
}

void stack::set_port_coordinator(port_coordinator* coordinator) noexcept {
  coordinator_ = coordinator;
  tcp_.set_port_coordinator(coordinator);
}

void stack::receive_tcp_chain(const packet& d, time_ns now) {
  // A reassembled segment in several buffers: TCP reads headers and data from one span.
  const std::size_t n = std::min(d.length(), linear_.size());
  d.copy_out(0, std::span(linear_.data(), n));
  const std::size_t ihl = (std::to_integer<std::size_t>(linear_[0]) & 0x0fU) * 4U;
  tcp_.receive(std::span<const std::byte>(linear_.data(), n), ihl, false, now);
}

std::optional<wire::ipv4_address> stack::next_hop(wire::ipv4_address dst) const noexcept {
  const std::uint32_t mask = netmask();
  if ((dst.value & mask) == (config_.address.value & mask)) {
    return dst;
  }
  return config_.gateway;
}

std::optional<mac_address> stack::resolve(wire::ipv4_address dst, time_ns now) noexcept {
  const auto hop = next_hop(dst);
  if (!hop) {
    return std::nullopt;
  }
  return arp_.resolve(*hop, now);
}

bool stack::path_locked(wire::ipv4_address dst, time_ns now) const noexcept {
  const auto p = pmtu_.find(dst, now);
  return p && p->locked;
}

bool stack::send_l4(std::uint8_t protocol, wire::ipv4_address dst, std::span<const std::byte> l4,
                    time_ns now) {
  return output(protocol, dst, l4_source{{}, nullptr, 0, l4, l4.size()}, now);
}

bool stack::route(packet p, wire::ipv4_address dst, time_ns now) {
  if (is_local_broadcast(dst)) {
    if (!wire::push_ethernet(p, wire::ethernet_header{mac_address::broadcast(), config_.mac,
                                                      wire::ethertype::ipv4, false, 0})) {
      ++counters_.no_buffer;
      return false;
    }
    enqueue_tx(std::move(p));
    return true;
  }
  const std::uint32_t mask = netmask();
  const bool on_link = (dst.value & mask) == (config_.address.value & mask);
  if (!on_link && !config_.gateway) {
    ++counters_.ip_no_route;
    return false;
  }
  arp_.send(std::move(p), on_link ? dst : *config_.gateway, now);
  return true;
}

}  // namespace dpdk_net::stack
