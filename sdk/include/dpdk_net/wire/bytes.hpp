// Big-endian loads and stores on byte spans. Byte-wise shifts only: no unaligned or type-punned
// access (compilers turn these into single bswap/movbe instructions).
#pragma once

#include <cstddef>
#include <cstdint>

namespace dpdk_net::wire {

[[nodiscard]] constexpr std::uint8_t load8(const std::byte* p) noexcept {
  return static_cast<std::uint8_t>(p[0]);
}
[[nodiscard]] constexpr std::uint16_t load16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>((static_cast<unsigned>(p[0]) << 8U) |
                                    static_cast<unsigned>(p[1]));
}
[[nodiscard]] constexpr std::uint32_t load32(const std::byte* p) noexcept {
  return (static_cast<std::uint32_t>(p[0]) << 24U) | (static_cast<std::uint32_t>(p[1]) << 16U) |
         (static_cast<std::uint32_t>(p[2]) << 8U) | static_cast<std::uint32_t>(p[3]);
}
constexpr void store8(std::byte* p, std::uint8_t v) noexcept {
  p[0] = static_cast<std::byte>(v);
}
constexpr void store16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 8U);
  p[1] = static_cast<std::byte>(v & 0xffU);
}
constexpr void store32(std::byte* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 24U);
  p[1] = static_cast<std::byte>((v >> 16U) & 0xffU);
  p[2] = static_cast<std::byte>((v >> 8U) & 0xffU);
  p[3] = static_cast<std::byte>(v & 0xffU);
}

}  // namespace dpdk_net::wire
