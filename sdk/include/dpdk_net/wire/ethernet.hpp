// Ethernet II with an optional 802.1Q tag.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dpdk_net/mac_address.hpp"
#include "dpdk_net/wire/error.hpp"

namespace dpdk_net {
class packet;
}

namespace dpdk_net::wire {

namespace ethertype {
inline constexpr std::uint16_t ipv4 = 0x0800;
inline constexpr std::uint16_t arp = 0x0806;
inline constexpr std::uint16_t vlan = 0x8100;
inline constexpr std::uint16_t qinq = 0x88a8;
inline constexpr std::uint16_t ipv6 = 0x86dd;
}  // namespace ethertype

inline constexpr std::size_t ethernet_header_length = 14;
inline constexpr std::size_t vlan_tag_length = 4;

struct ethernet_header {
  mac_address dst{};
  mac_address src{};
  std::uint16_t ethertype = 0;  ///< of the payload (after the VLAN tag, if any)
  bool has_vlan = false;
  std::uint16_t vlan_tci = 0;  ///< PCP (3) | DEI (1) | VID (12), when has_vlan

  [[nodiscard]] std::uint16_t vlan_id() const noexcept { return vlan_tci & 0x0fffU; }
  [[nodiscard]] std::size_t length() const noexcept {
    return ethernet_header_length + (has_vlan ? vlan_tag_length : 0);
  }
};

/// Parses the Ethernet header of a frame (without FCS). Trailing padding is the upper layer's.
[[nodiscard]] parse_result<ethernet_header> parse_ethernet(
    std::span<const std::byte> frame) noexcept;

/// Writes h (14 or 18 bytes) at out; returns the bytes written, 0 if out is too small.
std::size_t write_ethernet(std::span<std::byte> out, const ethernet_header& h) noexcept;
/// Prepends h to p; false (p unchanged) without enough headroom.
bool push_ethernet(packet& p, const ethernet_header& h) noexcept;

}  // namespace dpdk_net::wire
