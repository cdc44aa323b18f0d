// ICMPv4 (RFC 792): echo, destination unreachable (incl. frag-needed, RFC 1191), time exceeded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dpdk_net/wire/error.hpp"

namespace dpdk_net::wire {

inline constexpr std::size_t icmp_header_length = 8;

namespace icmp_type {
inline constexpr std::uint8_t echo_reply = 0;
inline constexpr std::uint8_t destination_unreachable = 3;
inline constexpr std::uint8_t echo_request = 8;
inline constexpr std::uint8_t time_exceeded = 11;
inline constexpr std::uint8_t parameter_problem = 12;
}  // namespace icmp_type

namespace icmp_unreachable {
inline constexpr std::uint8_t net = 0;
inline constexpr std::uint8_t host = 1;
inline constexpr std::uint8_t protocol = 2;
inline constexpr std::uint8_t port = 3;
inline constexpr std::uint8_t fragmentation_needed = 4;
}  // namespace icmp_unreachable

struct icmp_header {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint16_t checksum = 0;
  std::uint32_t rest = 0;  ///< the type-specific second word

  [[nodiscard]] std::uint16_t identifier() const noexcept {
    return static_cast<std::uint16_t>(rest >> 16U);
  }
  [[nodiscard]] std::uint16_t sequence() const noexcept {
    return static_cast<std::uint16_t>(rest & 0xffffU);
  }
  /// Next-hop MTU of a fragmentation-needed message (0 from pre-RFC 1191 routers).
  [[nodiscard]] std::uint16_t next_hop_mtu() const noexcept {
    return static_cast<std::uint16_t>(rest & 0xffffU);
  }
  /// True for the error types that quote the offending datagram (3, 11, 12).
  [[nodiscard]] bool is_error() const noexcept {
    return type == icmp_type::destination_unreachable || type == icmp_type::time_exceeded ||
           type == icmp_type::parameter_problem;
  }
};

/// Parses an ICMP message (the whole IP payload: the checksum covers all of it). payload is the
/// data after the 8-byte header: echo data, or for error types the quoted datagram, which must
/// hold an IPv4 header (version 4, IHL >= 5) and at least 8 bytes after it.
[[nodiscard]] parse_result<icmp_header> parse_icmp(std::span<const std::byte> message,
                                                   bool verify_checksum = true) noexcept;

/// Writes the 8-byte header followed by body (echo data or a quote) and the checksum over both;
/// returns 8 + body.size(), or 0 if out is too small.
std::size_t write_icmp(std::span<std::byte> out, const icmp_header& h,
                       std::span<const std::byte> body) noexcept;

}  // namespace dpdk_net::wire
