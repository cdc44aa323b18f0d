// ICMP (RFC 792, RFC 1122 3.2.2): echo (answered in place, no copy), the errors we send (rate
// limited, never about broadcasts, fragments or other errors), and the errors we receive: path MTU
// discovery (RFC 1191, with RFC 5927's checks) and unreachables handed to TCP.
#include <algorithm>
#include <array>
#include <cstring>

#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack {

namespace {
/// RFC 1812 4.3.2.3: an ICMP error carries as much of the offending datagram as fits in 576.
constexpr std::size_t max_icmp_error = 576;
}  // namespace

namespace detail {
/// Turns an ICMP echo request header into the reply's, fixing its checksum incrementally.
void make_echo_reply(std::byte* icmp) noexcept {
  const std::uint16_t old_word = wire::load16(icmp);  // type, code
  wire::store8(icmp, wire::icmp_type::echo_reply);
  wire::store16(icmp + 2,
                wire::checksum_update16(wire::load16(icmp + 2), old_word, wire::load16(icmp)));
}
}  // namespace detail

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
  if (icmp.header.type == wire::icmp_type::destination_unreachable ||
      icmp.header.type == wire::icmp_type::time_exceeded) {
    icmp_error_to_transport(icmp.header.type, icmp.header.code, 0, icmp.payload, now);
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
    detail::make_echo_reply(hdr.data());
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
  detail::make_echo_reply(frame.front().data() + (l4_offset - l3_offset));
  frame.meta() = packet_meta{};
  if (route(std::move(frame), src, now)) {
    ++counters_.icmp_echo_replies;
  }
}

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
  // TCP: the quote must name a connection and a sequence number it has in flight (checked and
  // acted on by TCP, which resends what was too big once the path MTU below is lowered).
  const bool tcp_quote = q && q.header.src == config_.address && q.header.dont_fragment &&
                         q.header.protocol == wire::ip_protocol::tcp;
  // MTU 0 is a pre-RFC 1191 router; below 68 is illegal. Below the floor is clamped up to it
  // (and the path locked: sent without DF from then on); not lower means nothing to learn.
  const std::uint16_t floor = std::min(config_.min_pmtu, config_.mtu);
  const bool locked = mtu < floor;
  const std::uint16_t learned = locked ? floor : mtu;
  const auto known = pmtu_.find(dst, now);
  // Lower, or the same floor now known to be too high for the path (lock it: send without DF).
  const bool news =
      learned < current || (locked && learned == current && (!known || !known->locked));
  if (tcp_quote && mtu >= 68 && news) {
    plausible = tcp_.icmp_error(wire::icmp_type::destination_unreachable,
                                wire::icmp_unreachable::fragmentation_needed, learned, quote, now);
  }
  if (!plausible || mtu < 68 || !news) {
    ++counters_.pmtu_ignored;
    return;
  }
  pmtu_.learn(dst, pmtu_cache::path{learned, locked}, now);
  ++counters_.pmtu_lowered;
}

void stack::icmp_error_to_transport(std::uint8_t type, std::uint8_t code, std::uint16_t mtu,
                                    std::span<const std::byte> quote, time_ns now) {
  const auto q =
      wire::parse_ipv4(quote, wire::ipv4_parse_options{.verify_checksum = false, .quoted = true});
  if (q && q.header.protocol == wire::ip_protocol::tcp) {
    tcp_.icmp_error(type, code, mtu, quote, now);
    return;
  }
  ++counters_.icmp_ignored;  // UDP sockets do not take ICMP errors (yet)
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
  h.id = next_ip_id();
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
