// TCP header and options (RFC 9293, 7323 window scale and timestamps, 2018 SACK).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "dpdk_net/wire/error.hpp"
#include "dpdk_net/wire/udp.hpp"  // pseudo_header

namespace dpdk_net::wire {

inline constexpr std::size_t tcp_min_header_length = 20;
inline constexpr std::size_t tcp_max_header_length = 60;
inline constexpr std::size_t tcp_max_options_length = 40;

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
inline constexpr std::uint8_t ece = 0x40;
inline constexpr std::uint8_t cwr = 0x80;
}  // namespace tcp_flag

namespace tcp_option_kind {
inline constexpr std::uint8_t eol = 0;
inline constexpr std::uint8_t nop = 1;
inline constexpr std::uint8_t mss = 2;
inline constexpr std::uint8_t window_scale = 3;
inline constexpr std::uint8_t sack_permitted = 4;
inline constexpr std::uint8_t sack = 5;
inline constexpr std::uint8_t timestamps = 8;
}  // namespace tcp_option_kind

/// Largest window scale shift a receiver uses (RFC 7323 2.3: larger values are used as 14).
inline constexpr std::uint8_t tcp_max_window_scale = 14;

struct sack_block {
  std::uint32_t left = 0;
  std::uint32_t right = 0;
  friend constexpr bool operator==(sack_block, sack_block) noexcept = default;
};

struct tcp_timestamps {
  std::uint32_t value = 0;
  std::uint32_t echo_reply = 0;
  friend constexpr bool operator==(tcp_timestamps, tcp_timestamps) noexcept = default;
};

/// The options of one segment. Parsed values are raw (an MSS of 0 or a shift of 20 is reported
/// as such); the stack applies the RFC limits (see effective_window_scale()).
struct tcp_options {
  std::optional<std::uint16_t> mss;
  std::optional<std::uint8_t> window_scale;
  bool sack_permitted = false;
  std::optional<tcp_timestamps> timestamps;
  std::uint8_t sack_count = 0;
  std::array<sack_block, 4> sack{};
  std::uint8_t unknown = 0;  ///< unknown options skipped (well-formed, ignored)

  [[nodiscard]] std::span<const sack_block> sack_blocks() const noexcept {
    return {sack.data(), sack_count};
  }
  [[nodiscard]] std::uint8_t effective_window_scale() const noexcept {
    return window_scale
               ? (*window_scale > tcp_max_window_scale ? tcp_max_window_scale : *window_scale)
               : 0;
  }
};

struct tcp_header {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t header_length = 20;  ///< bytes (data offset * 4)
  std::uint8_t reserved = 0;        ///< the 4 reserved bits (incl. the old NS/AE bit)
  std::uint8_t flags = 0;           ///< tcp_flag bits
  std::uint16_t window = 0;         ///< raw (unscaled)
  std::uint16_t checksum = 0;
  std::uint16_t urgent_pointer = 0;
  tcp_options options{};

  [[nodiscard]] bool has(std::uint8_t flag) const noexcept { return (flags & flag) != 0; }
};

/// Parses a TCP segment (the whole IP payload) and its options; verifies the checksum if ph is
/// given. payload is the data after the header. An urgent pointer beyond the data is tolerated
/// (urgent data is not supported: the stack treats it as ordinary data).
[[nodiscard]] parse_result<tcp_header> parse_tcp(std::span<const std::byte> segment,
                                                 const pseudo_header* ph = nullptr) noexcept;

/// Parses an options area (the bytes between the fixed header and the data).
[[nodiscard]] wire_error parse_tcp_options(std::span<const std::byte> area,
                                           tcp_options& out) noexcept;

/// Bytes the options take on the wire (padded to a multiple of 4); 0 if there are none, or
/// SIZE_MAX if they do not fit in 40 bytes.
[[nodiscard]] std::size_t tcp_options_length(const tcp_options& o) noexcept;
/// Most SACK blocks that fit beside the timestamps option (3) or without it (4).
[[nodiscard]] constexpr std::uint8_t tcp_max_sack_blocks(bool timestamps) noexcept {
  return timestamps ? 3 : 4;
}

/// Writes header and options (checksum field 0; header_length is computed, h's is ignored);
/// returns the header length, or 0 if out is too small or the options do not fit.
std::size_t write_tcp(std::span<std::byte> out, const tcp_header& h) noexcept;

/// Fills in the checksum of a contiguous L4 segment (TCP: field at 16, UDP: field at 6).
void set_tcp_checksum(std::span<std::byte> segment, const pseudo_header& ph) noexcept;

}  // namespace dpdk_net::wire
