// A 48-bit Ethernet MAC address.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dpdk_net {

struct mac_address {
  std::array<std::uint8_t, 6> bytes{};

  static constexpr mac_address broadcast() noexcept {
    return mac_address{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  }
  /// Parses "aa:bb:cc:dd:ee:ff" (or '-' separated); nullopt on anything else.
  static std::optional<mac_address> parse(std::string_view text) noexcept;

  [[nodiscard]] bool is_multicast() const noexcept { return (bytes[0] & 0x01U) != 0; }
  [[nodiscard]] bool is_broadcast() const noexcept { return *this == broadcast(); }
  [[nodiscard]] bool is_zero() const noexcept { return *this == mac_address{}; }
  /// "aa:bb:cc:dd:ee:ff"
  [[nodiscard]] std::string to_string() const;

  friend constexpr bool operator==(const mac_address&, const mac_address&) noexcept = default;
};

}  // namespace dpdk_net
