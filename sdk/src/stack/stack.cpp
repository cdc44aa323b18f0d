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

namespace {

/// RFC 1812 4.3.2.3: an ICMP error carries as much of the offending datagram as fits in 576.
constexpr std::size_t max_icmp_error = 576;

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
      icmp_errors_(config.icmp_errors_per_second, config.icmp_error_burst, now) {}

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

std::size_t stack::drain_tx(std::span<packet> out) noexcept {
  const std::size_t n = std::min(out.size(), tx_count_);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = packet::adopt(tx_ring_[(tx_head_ + i) & (tx_ring_.size() - 1)]);
  }
  tx_head_ = (tx_head_ + n) & (tx_ring_.size() - 1);
  tx_count_ -= n;
  return n;
}

stack_counters stack::counters() const noexcept {
  stack_counters c = counters_;
  c.arp = arp_.counters();
  c.reassembly = reasm_.counters();
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

namespace {
/// Turns an ICMP echo request header into the reply's, fixing its checksum incrementally.
void make_echo_reply(std::byte* icmp) noexcept {
  const std::uint16_t old_word = wire::load16(icmp);  // type, code
  wire::store8(icmp, wire::icmp_type::echo_reply);
  wire::store16(icmp + 2,
                wire::checksum_update16(wire::load16(icmp + 2), old_word, wire::load16(icmp)));
}
}  // namespace

// --- input ----------------------------------------------------------------------------------

void stack::receive(packet frame, time_ns now) {
  ++counters_.frames_in;
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

void stack::receive_ipv4(packet frame, std::size_t l3_offset, bool link_broadcast, time_ns now) {
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
    if (whole->segment_count() == 1) {
      // Fits one buffer: the ordinary path. Taken as link broadcast so that no ICMP error is sent
      // about a reassembled datagram (RFC 1122 3.2.2 forbids errors about non-first fragments
      // and link-layer broadcasts; we do not track which fragments were which).
      receive_ipv4(std::move(*whole), 0, true, now);
    } else if (h.protocol == wire::ip_protocol::udp) {
      deliver_udp_chain(std::move(*whole), now);
    } else if (h.protocol == wire::ip_protocol::icmp) {
      // A large ping: answer from the chain (the reply is fragmented on the way out).
      packet& d = *whole;
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
      make_echo_reply(hdr.data());
      const wire::ipv4_address src{wire::load32(d.front().data() + 12)};
      if (output(wire::ip_protocol::icmp, src, l4_source{hdr, &d, 28, {}, d.length() - 20}, now)) {
        ++counters_.icmp_echo_replies;
      }
    } else {
      ++counters_.ip_unknown_protocol;
    }
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
    default:
      ++counters_.ip_unknown_protocol;
      send_icmp_error(wire::icmp_type::destination_unreachable, wire::icmp_unreachable::protocol,
                      datagram, link_broadcast, now);
      return;
  }
}

void stack::receive_icmp(packet& frame, std::size_t l3_offset, std::size_t l4_offset,
                         std::span<const std::byte> message, time_ns now) {
  const bool vouched = frame.meta().l4_checksum == checksum_status::good;
  const auto icmp = wire::parse_icmp(message, !vouched);
  if (!icmp) {
    malformed(icmp.error);
    return;
  }
  ++counters_.icmp_in;
  if (icmp.header.type == wire::icmp_type::destination_unreachable &&
      icmp.header.code == wire::icmp_unreachable::fragmentation_needed) {
    frag_needed(icmp.header.next_hop_mtu(), icmp.payload, now);
    return;
  }
  if (icmp.header.type == wire::icmp_type::echo_reply) {
    ++counters_.echo_replies_received;
    return;
  }
  if (icmp.header.type != wire::icmp_type::echo_request || icmp.header.code != 0) {
    ++counters_.icmp_ignored;  // other errors and types: not handled yet
    return;
  }
  std::byte* ip = frame.front().data() + l3_offset;
  const wire::ipv4_address src{wire::load32(ip + 12)};
  const std::size_t total = wire::load16(ip + 2);
  if (const auto path = pmtu_.find(src, now); path && (total > path->mtu || path->locked)) {
    // The way back is narrower than the request came (a learned path MTU): answer through
    // output(), which fragments to it, instead of in place.
    std::array<std::byte, wire::icmp_header_length> hdr{};
    std::memcpy(hdr.data(), message.data(), hdr.size());
    make_echo_reply(hdr.data());
    if (output(wire::ip_protocol::icmp, src,
               l4_source{hdr, &frame, l4_offset + hdr.size(), {}, message.size()}, now)) {
      ++counters_.icmp_echo_replies;
    }
    return;
  }
  // Echo reply in place: the request's buffer becomes the reply (no copy, no allocation).
  frame.trim_front(l3_offset);
  if (frame.length() > total) {
    frame.trim_back(frame.length() - total);  // Ethernet padding
  }
  wire::store32(ip + 12, config_.address.value);
  wire::store32(ip + 16, src.value);
  wire::store8(ip + 8, config_.ttl);
  wire::store16(ip + 10, 0);
  const std::size_t ihl = (wire::load8(ip) & 0x0fU) * 4U;
  wire::store16(ip + 10, wire::internet_checksum(std::span<const std::byte>(ip, ihl)));
  make_echo_reply(frame.front().data() + (l4_offset - l3_offset));
  frame.meta() = packet_meta{};
  if (route(std::move(frame), src, now)) {
    ++counters_.icmp_echo_replies;
  }
}

// --- output ---------------------------------------------------------------------------------

std::error_code stack::send_echo_request(wire::ipv4_address dst, std::uint16_t id,
                                         std::uint16_t seq, std::span<const std::byte> data,
                                         time_ns now) {
  if (data.size() > 65535 - 28) {
    return std::make_error_code(std::errc::message_size);
  }
  std::array<std::byte, wire::icmp_header_length> hdr{};
  wire::checksum_accumulator acc;
  const wire::icmp_header h{wire::icmp_type::echo_request, 0, 0, (std::uint32_t{id} << 16U) | seq};
  wire::write_icmp(hdr, h, {});  // header alone; fold the data into its checksum below
  acc.add(std::span<const std::byte>(hdr.data(), 2));
  acc.add(std::span<const std::byte>(hdr.data() + 4, 4));
  acc.add(data);
  wire::store16(hdr.data() + 2, acc.finish());
  if (!output(wire::ip_protocol::icmp, dst, l4_source{hdr, nullptr, 0, data, 8 + data.size()},
              now)) {
    return std::make_error_code(std::errc::network_unreachable);
  }
  ++counters_.echo_requests_sent;
  return {};
}

std::uint16_t stack::path_mtu(wire::ipv4_address dst, time_ns now) const noexcept {
  const auto p = pmtu_.find(dst, now);
  return p ? p->mtu : config_.mtu;
}

void stack::frag_needed(std::uint16_t mtu, std::span<const std::byte> quote, time_ns now) {
  // RFC 5927: believe it only if it could be about a datagram we sent. The quote (20 + 8 bytes
  // at least: parse_icmp checked) must be ours, have DF set (we set it only on datagrams that
  // fit the path MTU, so only those can elicit frag-needed), and for UDP name a bound port.
  const auto q =
      wire::parse_ipv4(quote, wire::ipv4_parse_options{.verify_checksum = false, .quoted = true});
  const wire::ipv4_address dst = q.header.dst;
  const std::uint16_t current = path_mtu(dst, now);
  bool plausible =
      q && q.header.src == config_.address && q.header.dont_fragment &&
      (q.header.protocol == wire::ip_protocol::udp || q.header.protocol == wire::ip_protocol::icmp);
  if (plausible && q.header.protocol == wire::ip_protocol::udp) {
    plausible = q.payload.size() >= 2 && port_to_socket_[wire::load16(q.payload.data())] >= 0;
  }
  // MTU 0 is a pre-RFC 1191 router; below 68 is illegal. Below the floor is clamped up to it
  // (and the path locked: sent without DF from then on); not lower means nothing to learn.
  const std::uint16_t floor = std::min(config_.min_pmtu, config_.mtu);
  const bool locked = mtu < floor;
  const std::uint16_t learned = locked ? floor : mtu;
  const auto known = pmtu_.find(dst, now);
  // Lower, or the same floor now known to be too high for the path (lock it: send without DF).
  const bool news =
      learned < current || (locked && learned == current && (!known || !known->locked));
  if (!plausible || mtu < 68 || !news) {
    ++counters_.pmtu_ignored;
    return;
  }
  pmtu_.learn(dst, pmtu_cache::path{learned, locked}, now);
  ++counters_.pmtu_lowered;
}

bool stack::output(std::uint8_t protocol, wire::ipv4_address dst, const l4_source& src,
                   time_ns now) {
  const auto learned = pmtu_.find(dst, now);
  const std::size_t room = (learned ? learned->mtu : config_.mtu) - wire::ipv4_min_header_length;
  const bool may_set_df = !learned || !learned->locked;
  const std::size_t step = src.length <= room ? room : room & ~std::size_t{7};
  const std::uint16_t id = ip_id_++;
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

void stack::send_icmp_error(std::uint8_t type, std::uint8_t code,
                            std::span<const std::byte> offending, bool link_broadcast,
                            time_ns now) {
  // RFC 1122 3.2.2: never about a datagram that came as a link-layer broadcast, went to an IP
  // broadcast or multicast address, came from an address that is not one host, is a non-first
  // fragment, or is itself an ICMP error (errors about errors can loop).
  const auto q = wire::parse_ipv4(
      offending, wire::ipv4_parse_options{.verify_checksum = false, .quoted = true});
  const wire::ipv4_header& about = q.header;
  bool about_error = false;
  if (q && about.protocol == wire::ip_protocol::icmp && !q.payload.empty()) {
    const std::uint8_t t = wire::load8(q.payload.data());
    about_error = t != wire::icmp_type::echo_request && t != wire::icmp_type::echo_reply &&
                  t != 13 && t != 14;  // timestamp request/reply: queries, not errors
  }
  if (!q || link_broadcast || about.dst.is_broadcast() || about.dst.is_multicast() ||
      is_local_broadcast(about.dst) || is_martian_source(about.src) || about.fragment_offset != 0 ||
      about_error) {
    ++counters_.icmp_errors_suppressed;
    return;
  }
  const wire::ipv4_address src = about.src;
  if (!icmp_errors_.take(now)) {
    ++counters_.icmp_errors_rate_limited;
    return;
  }
  const std::size_t quote = std::min(offending.size(), max_icmp_error - 28);
  packet p = pool_->alloc();
  std::byte* d = p ? p.append(28 + quote) : nullptr;
  if (d == nullptr) {
    ++counters_.no_buffer;
    return;
  }
  wire::write_icmp(std::span(d + 20, 8 + quote), wire::icmp_header{type, code, 0, 0},
                   offending.first(quote));
  wire::ipv4_header h;
  h.total_length = static_cast<std::uint16_t>(28 + quote);
  h.id = ip_id_++;
  h.ttl = config_.ttl;
  h.protocol = wire::ip_protocol::icmp;
  h.src = config_.address;
  h.dst = src;
  wire::write_ipv4(std::span(d, 20), h);
  if (route(std::move(p), src, now)) {
    ++counters_.icmp_errors_sent;
  }
}

}  // namespace dpdk_net::stack
