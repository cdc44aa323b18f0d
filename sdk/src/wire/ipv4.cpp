#include "dpdk_net/wire/ipv4.hpp"

#include <algorithm>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"

namespace dpdk_net::wire {

namespace {

/// Walks the options area: EOL ends it, NOP is one byte, every other option has a length byte
/// of at least 2 that stays inside the area. Contents are not interpreted (options are skipped).
bool options_well_formed(std::span<const std::byte> area) noexcept {
  std::size_t i = 0;
  while (i < area.size()) {
    const std::uint8_t kind = load8(area.data() + i);
    if (kind == 0) {  // end of option list
      return true;
    }
    if (kind == 1) {  // no-operation
      ++i;
      continue;
    }
    if (i + 1 >= area.size()) {
      return false;  // no room for the length byte
    }
    const std::uint8_t len = load8(area.data() + i + 1);
    if (len < 2 || len > area.size() - i) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

parse_result<ipv4_header> parse_ipv4(std::span<const std::byte> data,
                                     ipv4_parse_options options) noexcept {
  parse_result<ipv4_header> r;
  if (data.size() < ipv4_min_header_length) {
    r.error = wire_error::truncated;
    return r;
  }
  const std::byte* p = data.data();
  const std::uint8_t version_ihl = load8(p);
  if ((version_ihl >> 4U) != 4) {
    r.error = wire_error::ip_bad_version;
    return r;
  }
  ipv4_header& h = r.header;
  h.header_length = static_cast<std::uint8_t>((version_ihl & 0x0fU) * 4U);
  if (h.header_length < ipv4_min_header_length) {
    r.error = wire_error::ip_bad_header_length;
    return r;
  }
  if (h.header_length > data.size()) {
    r.error = wire_error::truncated;
    return r;
  }
  h.tos = load8(p + 1);
  h.total_length = load16(p + 2);
  if (h.total_length < h.header_length) {
    r.error = wire_error::ip_bad_total_length;
    return r;
  }
  if (h.total_length > data.size() && !options.quoted) {
    r.error = wire_error::ip_length_exceeds_frame;
    return r;
  }
  h.id = load16(p + 4);
  const std::uint16_t frag = load16(p + 6);
  h.reserved_flag = (frag & 0x8000U) != 0;
  h.dont_fragment = (frag & 0x4000U) != 0;
  h.more_fragments = (frag & 0x2000U) != 0;
  h.fragment_offset = frag & 0x1fffU;
  h.ttl = load8(p + 8);
  h.protocol = load8(p + 9);
  h.checksum = load16(p + 10);
  h.src.value = load32(p + 12);
  h.dst.value = load32(p + 16);
  if (options.verify_checksum && !options.quoted &&
      internet_checksum(data.first(h.header_length)) != 0) {
    r.error = wire_error::ip_bad_checksum;
    return r;
  }
  if (h.header_length > ipv4_min_header_length &&
      !options_well_formed(
          data.subspan(ipv4_min_header_length, h.header_length - ipv4_min_header_length))) {
    r.error = wire_error::ip_bad_option;
    return r;
  }
  // A fragment may not reach past the largest datagram (the "ping of death" overflow).
  if (std::size_t{h.fragment_offset} * 8U + h.payload_length() > 65535U) {
    r.error = wire_error::ip_fragment_too_large;
    return r;
  }
  r.payload =
      data.subspan(h.header_length, std::min(h.payload_length(), data.size() - h.header_length));
  return r;
}

std::size_t write_ipv4(std::span<std::byte> out, const ipv4_header& h) noexcept {
  if (out.size() < ipv4_min_header_length) {
    return 0;
  }
  std::byte* p = out.data();
  store8(p, 0x45);
  store8(p + 1, h.tos);
  store16(p + 2, h.total_length);
  store16(p + 4, h.id);
  std::uint16_t frag = h.fragment_offset & 0x1fffU;
  if (h.reserved_flag) {
    frag |= 0x8000U;
  }
  if (h.dont_fragment) {
    frag |= 0x4000U;
  }
  if (h.more_fragments) {
    frag |= 0x2000U;
  }
  store16(p + 6, frag);
  store8(p + 8, h.ttl);
  store8(p + 9, h.protocol);
  store16(p + 10, 0);
  store32(p + 12, h.src.value);
  store32(p + 16, h.dst.value);
  store16(p + 10, internet_checksum(out.first(ipv4_min_header_length)));
  return ipv4_min_header_length;
}

}  // namespace dpdk_net::wire
