// Why the wire layer refused some bytes, and the result type every parser returns.
// Parsers never throw on the data path and never read a byte they have not bounds-checked.
// docs/wire.md has the rule table: for each malformation, reject or what is tolerated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dpdk_net::wire {

enum class wire_error : std::uint8_t {
  ok = 0,
  truncated,                ///< fewer bytes than the header (or its stated length) needs
  eth_llc_frame,            ///< 802.3 length field (< 0x0600) instead of an EtherType
  eth_nested_vlan,          ///< a second VLAN tag (QinQ): not supported
  arp_unsupported,          ///< not Ethernet/IPv4 ARP (htype, ptype, hlen, plen)
  arp_bad_operation,        ///< operation other than request (1) or reply (2)
  ip_bad_version,           ///< version field not 4
  ip_bad_header_length,     ///< IHL < 5
  ip_bad_total_length,      ///< total length < header length
  ip_length_exceeds_frame,  ///< total length > bytes available
  ip_bad_checksum,
  ip_bad_option,          ///< option length 0/1 or past the header
  ip_fragment_too_large,  ///< fragment offset + payload > 65535 ("ping of death")
  icmp_bad_checksum,
  icmp_bad_quote,         ///< error message without a usable quoted IPv4 header + 8 bytes
  udp_bad_length,         ///< UDP length < 8
  udp_length_exceeds_ip,  ///< UDP length > IP payload
  udp_bad_checksum,
  tcp_bad_data_offset,              ///< data offset < 5
  tcp_data_offset_exceeds_segment,  ///< data offset * 4 > segment length
  tcp_bad_option,                   ///< option length 0/1, past the header, or wrong for its kind
  tcp_bad_checksum,
};

/// Stable snake_case name ("tcp_bad_option"), used in counters and the decoder's JSON.
[[nodiscard]] const char* to_string(wire_error e) noexcept;

/// What a parser returns: the decoded header (by value: no pointers into the frame) and the bytes
/// that follow it. Valid only when error == ok.
template <class Header>
struct parse_result {
  wire_error error = wire_error::ok;
  Header header{};
  std::span<const std::byte> payload{};

  [[nodiscard]] explicit operator bool() const noexcept { return error == wire_error::ok; }
};

}  // namespace dpdk_net::wire
