// IPv4 (RFC 791): header validation, options skipped (structure checked), fragment fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dpdk_net/wire/error.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::wire {

inline constexpr std::size_t ipv4_min_header_length = 20;
inline constexpr std::size_t ipv4_max_header_length = 60;

namespace ip_protocol {
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
}  // namespace ip_protocol

struct ipv4_header {
  std::uint8_t header_length = 20;  ///< bytes (IHL * 4)
  std::uint8_t tos = 0;             ///< DSCP (6) | ECN (2)
  std::uint16_t total_length = 0;
  std::uint16_t id = 0;
  bool reserved_flag = false;  ///< the "evil bit": tolerated, reported
  bool dont_fragment = false;
  bool more_fragments = false;
  std::uint16_t fragment_offset = 0;  ///< in 8-byte units, as on the wire
  std::uint8_t ttl = 64;
  std::uint8_t protocol = 0;
  std::uint16_t checksum = 0;  ///< as received (parse) / ignored and computed (write)
  ipv4_address src{};
  ipv4_address dst{};

  [[nodiscard]] bool is_fragment() const noexcept { return more_fragments || fragment_offset != 0; }
  [[nodiscard]] std::size_t payload_length() const noexcept {
    return std::size_t{total_length} - header_length;
  }
};

struct ipv4_parse_options {
  /// Verify the header checksum. Turn off only when the device vouched for it
  /// (packet_meta::ip_checksum == good).
  bool verify_checksum = true;
  /// The header is quoted inside an ICMP error: its total length may exceed the bytes present
  /// (payload is then what is there) and its checksum is not verified.
  bool quoted = false;
};

/// Parses and validates an IPv4 header. payload is exactly total_length - header_length bytes:
/// bytes beyond total_length (Ethernet padding) are excluded.
[[nodiscard]] parse_result<ipv4_header> parse_ipv4(std::span<const std::byte> data,
                                                   ipv4_parse_options options = {}) noexcept;

/// Writes a 20-byte header (no options) with its checksum; returns 20, or 0 if out is too small.
std::size_t write_ipv4(std::span<std::byte> out, const ipv4_header& h) noexcept;

}  // namespace dpdk_net::wire
