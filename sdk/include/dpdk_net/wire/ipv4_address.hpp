// An IPv4 address (host byte order value; stored on the wire big-endian by the builders).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dpdk_net::wire {

struct ipv4_address {
  std::uint32_t value = 0;  ///< host order: 198.18.0.1 is 0xc6120001

  static constexpr ipv4_address from_octets(std::uint8_t a, std::uint8_t b, std::uint8_t c,
                                            std::uint8_t d) noexcept {
    return ipv4_address{(std::uint32_t{a} << 24U) | (std::uint32_t{b} << 16U) |
                        (std::uint32_t{c} << 8U) | d};
  }
  /// Dotted quad, each part 0..255 without leading zeros (so "010.0.0.1" is refused: ambiguous).
  static std::optional<ipv4_address> parse(std::string_view text) noexcept;
  [[nodiscard]] std::string to_string() const;

  [[nodiscard]] constexpr bool is_unspecified() const noexcept { return value == 0; }
  [[nodiscard]] constexpr bool is_broadcast() const noexcept { return value == 0xffffffffU; }
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return (value >> 28U) == 0xeU; }
  [[nodiscard]] constexpr bool is_loopback() const noexcept { return (value >> 24U) == 127U; }

  friend constexpr auto operator<=>(ipv4_address, ipv4_address) noexcept = default;
};

}  // namespace dpdk_net::wire
