// The Internet checksum (RFC 1071), its incremental update (RFC 1624) and the IPv4 pseudo-header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net {
class packet;
}

namespace dpdk_net::wire {

/// Accumulates the one's-complement sum over any number of byte ranges, as if they were one
/// contiguous buffer (an odd-length range shifts the next one by a byte, as RFC 1071 requires).
class checksum_accumulator {
 public:
  void add(std::span<const std::byte> data) noexcept;
  /// Adds a 16-bit word at an even offset of the virtual buffer (callers keep ranges even).
  void add16(std::uint16_t word) noexcept { sum_ += word; }
  void add32(std::uint32_t v) noexcept { sum_ += (v >> 16U) + (v & 0xffffU); }
  /// The folded one's-complement sum (not inverted).
  [[nodiscard]] std::uint16_t sum() const noexcept;
  /// The checksum field value: ~sum. A buffer whose checksum field is right sums to 0xffff, so
  /// finish() == 0 means "verified".
  [[nodiscard]] std::uint16_t finish() const noexcept {
    return static_cast<std::uint16_t>(~sum() & 0xffffU);
  }

 private:
  std::uint64_t sum_ = 0;
  bool odd_ = false;  // an odd number of bytes so far: the next byte is a low byte
};

/// Checksum field value for data (the field itself must be zero, or verification: result 0).
[[nodiscard]] std::uint16_t internet_checksum(std::span<const std::byte> data) noexcept;

/// Adds the IPv4 pseudo-header (RFC 793/768) for an L4 length and protocol.
void add_pseudo_header(checksum_accumulator& acc, ipv4_address src, ipv4_address dst,
                       std::uint8_t protocol, std::uint16_t l4_length) noexcept;

/// Adds `length` bytes of a packet starting at `offset`, across its segments.
void add_packet(checksum_accumulator& acc, const packet& p, std::size_t offset,
                std::size_t length) noexcept;

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data changes from
/// old_word to new_word (HC' = ~(~HC + ~m + m')).
[[nodiscard]] std::uint16_t checksum_update16(std::uint16_t old_checksum, std::uint16_t old_word,
                                              std::uint16_t new_word) noexcept;
/// The same for a 32-bit field (an address or a sequence number) at an even offset.
[[nodiscard]] std::uint16_t checksum_update32(std::uint16_t old_checksum, std::uint32_t old_value,
                                              std::uint32_t new_value) noexcept;

}  // namespace dpdk_net::wire
