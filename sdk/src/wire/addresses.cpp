#include <cstdio>

#include "dpdk_net/wire/error.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::wire {

std::optional<ipv4_address> ipv4_address::parse(std::string_view text) noexcept {
  std::uint32_t value = 0;
  int parts = 0;
  std::size_t i = 0;
  while (parts < 4) {
    if (i >= text.size() || text[i] < '0' || text[i] > '9') {
      return std::nullopt;
    }
    const std::size_t start = i;
    unsigned part = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - start < 3) {
      part = part * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
    }
    if (part > 255 || (i - start > 1 && text[start] == '0')) {
      return std::nullopt;
    }
    value = (value << 8U) | part;
    ++parts;
    if (parts < 4) {
      if (i >= text.size() || text[i] != '.') {
        return std::nullopt;
      }
      ++i;
    }
  }
  if (i != text.size()) {
    return std::nullopt;
  }
  return ipv4_address{value};
}

std::string ipv4_address::to_string() const {
  char text[16];
  std::snprintf(text, sizeof text, "%u.%u.%u.%u", value >> 24U, (value >> 16U) & 0xffU,
                (value >> 8U) & 0xffU, value & 0xffU);
  return text;
}

const char* to_string(wire_error e) noexcept {
  switch (e) {
    case wire_error::ok:
      return "ok";
    case wire_error::truncated:
      return "truncated";
    case wire_error::eth_llc_frame:
      return "eth_llc_frame";
    case wire_error::eth_nested_vlan:
      return "eth_nested_vlan";
    case wire_error::arp_unsupported:
      return "arp_unsupported";
    case wire_error::arp_bad_operation:
      return "arp_bad_operation";
    case wire_error::ip_bad_version:
      return "ip_bad_version";
    case wire_error::ip_bad_header_length:
      return "ip_bad_header_length";
    case wire_error::ip_bad_total_length:
      return "ip_bad_total_length";
    case wire_error::ip_length_exceeds_frame:
      return "ip_length_exceeds_frame";
    case wire_error::ip_bad_checksum:
      return "ip_bad_checksum";
    case wire_error::ip_bad_option:
      return "ip_bad_option";
    case wire_error::ip_fragment_too_large:
      return "ip_fragment_too_large";
    case wire_error::icmp_bad_checksum:
      return "icmp_bad_checksum";
    case wire_error::icmp_bad_quote:
      return "icmp_bad_quote";
    case wire_error::udp_bad_length:
      return "udp_bad_length";
    case wire_error::udp_length_exceeds_ip:
      return "udp_length_exceeds_ip";
    case wire_error::udp_bad_checksum:
      return "udp_bad_checksum";
    case wire_error::tcp_bad_data_offset:
      return "tcp_bad_data_offset";
    case wire_error::tcp_data_offset_exceeds_segment:
      return "tcp_data_offset_exceeds_segment";
    case wire_error::tcp_bad_option:
      return "tcp_bad_option";
    case wire_error::tcp_bad_checksum:
      return "tcp_bad_checksum";
  }
  return "unknown";
}

}  // namespace dpdk_net::wire
