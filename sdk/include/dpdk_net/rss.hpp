// Receive-side scaling in software: the Toeplitz hash (as NICs compute it) and queue selection.
// Used by the simulator's NICs and, later, by the runtime where a NIC cannot steer flows.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net {

/// The 40-byte key Microsoft's RSS specification and most NIC datasheets use as the example
/// (and many drivers as their default).
inline constexpr std::array<std::uint8_t, 40> default_rss_key = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

/// Toeplitz hash of input under key: for each set bit of the input (most significant first),
/// XOR in the 32 key bits starting at that bit position. The key must be at least
/// input.size() + 4 bytes long; shorter keys give 0.
[[nodiscard]] std::uint32_t toeplitz_hash(std::span<const std::uint8_t> key,
                                          std::span<const std::uint8_t> input) noexcept;

/// The IPv4 hash inputs in NIC order: source address, destination address, and for the 4-tuple
/// hash the source and destination ports.
[[nodiscard]] std::uint32_t rss_hash_ipv4(std::span<const std::uint8_t> key, wire::ipv4_address src,
                                          wire::ipv4_address dst) noexcept;
[[nodiscard]] std::uint32_t rss_hash_ipv4_l4(std::span<const std::uint8_t> key,
                                             wire::ipv4_address src, wire::ipv4_address dst,
                                             std::uint16_t src_port,
                                             std::uint16_t dst_port) noexcept;

}  // namespace dpdk_net
