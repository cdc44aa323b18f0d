// UDP (RFC 768).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dpdk_net/wire/error.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::wire {

inline constexpr std::size_t udp_header_length = 8;

/// The IPv4 addresses an L4 checksum covers.
struct pseudo_header {
  ipv4_address src{};
  ipv4_address dst{};
};

struct udp_header {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint16_t length = 0;    ///< header + data
  std::uint16_t checksum = 0;  ///< 0 = none (allowed over IPv4)
};

/// Parses a UDP datagram (the whole IP payload). Verifies the checksum if ph is given and the
/// checksum is not 0. payload is exactly length - 8 bytes (IP padding beyond it is excluded).
[[nodiscard]] parse_result<udp_header> parse_udp(std::span<const std::byte> datagram,
                                                 const pseudo_header* ph = nullptr) noexcept;

/// Writes the header for body and the checksum over pseudo-header, header and body (0 computed
/// as 0xffff, RFC 768); returns 8, or 0 if out is too small or the datagram exceeds 65535.
std::size_t write_udp(std::span<std::byte> out, const udp_header& h,
                      std::span<const std::byte> body, const pseudo_header& ph) noexcept;

}  // namespace dpdk_net::wire
