// ARP for Ethernet/IPv4 (RFC 826).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dpdk_net/mac_address.hpp"
#include "dpdk_net/wire/error.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::wire {

inline constexpr std::size_t arp_length = 28;

namespace arp_op {
inline constexpr std::uint16_t request = 1;
inline constexpr std::uint16_t reply = 2;
}  // namespace arp_op

struct arp_packet {
  std::uint16_t operation = 0;
  mac_address sender_mac{};
  ipv4_address sender_ip{};
  mac_address target_mac{};
  ipv4_address target_ip{};
};

/// Parses an Ethernet/IPv4 ARP packet; bytes after the 28 (Ethernet padding) are ignored.
[[nodiscard]] parse_result<arp_packet> parse_arp(std::span<const std::byte> data) noexcept;
/// Writes the 28-byte packet; returns 28, or 0 if out is too small.
std::size_t write_arp(std::span<std::byte> out, const arp_packet& a) noexcept;

}  // namespace dpdk_net::wire
