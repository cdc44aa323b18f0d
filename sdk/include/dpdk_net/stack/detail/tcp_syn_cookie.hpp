// RFC 4987 SYN cookies: the encoding (pure functions, so tests and the docs' Python
// re-implementation, scripts/syn_cookie_expected.py, can check it) and the SYN-ACK a cookie owes.
// Not API: the layout may change with any release. docs/tcp.md "Queues and SYN cookies".
//
// The cookie is our ISN: 29 bits of MAC and 3 bits of MSS index,
//
//   period   p   = now / syn_cookie_period
//   key      K   = derive_key(secret, key_purpose::tcp_syn_cookie)
//   period key K_p = (SipHash-2-4(K; p, 0), SipHash-2-4(K; p, 1))      (the word form: 16 bytes)
//   h        = SipHash-2-4(K_p; w0 || w1 || w2), 24 little-endian bytes:
//              w0 = remote address << 32 | remote port << 16 | local port
//              w1 = local address << 32 | the peer's ISN (the SYN's sequence number)
//              w2 = m, the MSS index (so the index is authenticated too)
//   cookie   = (low 32 bits of h with the low 3 bits cleared) | m
//
// and ack - 1 of the returning ACK validates if it equals the cookie computed for its tuple,
// seq - 1 and its own low 3 bits under K_p of the current or the previous period.
//
// With timestamps, the SYN-ACK's TSval carries the peer's options in its low 6 bits (Linux's
// cookie_init_timestamp layout): bits 0-3 the peer's window scale (15: none), bit 4
// SACK-permitted, bit 5 zero; the TSval is our clock with those bits replaced, moved back by 64
// if that put it ahead of the clock (our TSvals never go backwards). The ACK echoes it (TSecr).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "dpdk_net/stack/secret.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::stack::detail {

/// The MSS a cookie can say (index = the low 3 bits): the minimum we accept, RFC 9293's
/// default, common tunnel and VPN clamps (IPv6-in-something 1220, 1300, 1400, 1440), Ethernet,
/// and a 9000-byte jumbo frame. A peer's MSS is rounded down to an entry.
inline constexpr std::array<std::uint16_t, 8> cookie_mss_table{64,   536,  1220, 1300,
                                                               1400, 1440, 1460, 8960};

/// The largest table entry <= mss (0 for anything below 64).
[[nodiscard]] std::uint8_t cookie_mss_index(std::uint16_t mss) noexcept;

/// K_p: the key of period p, derived from the cookie key.
[[nodiscard]] sip_key cookie_period_key(const sip_key& cookie_key, std::uint64_t period) noexcept;

/// The cookie (our ISN) for a SYN: see the layout above.
[[nodiscard]] std::uint32_t syn_cookie(const sip_key& period_key, wire::ipv4_address local,
                                       wire::ipv4_address remote, std::uint16_t local_port,
                                       std::uint16_t remote_port, std::uint32_t peer_isn,
                                       std::uint8_t mss_index) noexcept;

/// The peer's options a timestamp carries.
struct cookie_options {
  std::optional<std::uint8_t> window_scale;  ///< the peer's shift (0..14), or none
  bool sack = false;
  friend bool operator==(const cookie_options&, const cookie_options&) = default;
};
inline constexpr std::uint32_t cookie_ts_bits = 6;
inline constexpr std::uint32_t cookie_ts_mask = (1U << cookie_ts_bits) - 1;

/// Our SYN-ACK's TSval: `clock` (our TSval now) with the options in its low 6 bits, never
/// above `clock` (modulo 2^32).
[[nodiscard]] std::uint32_t cookie_tsval(std::uint32_t clock, const cookie_options& o) noexcept;
/// The options back from the TSecr of the returning ACK.
[[nodiscard]] cookie_options cookie_decode_tsecr(std::uint32_t tsecr) noexcept;

/// A SYN-ACK owed without state (a cookie), built at the next drain like all output.
struct cookie_synack {
  wire::ipv4_address remote{};
  std::uint16_t local_port = 0, remote_port = 0;
  std::uint32_t seq = 0, ack = 0;      // the cookie, the peer's ISN + 1
  std::uint32_t tsval = 0, tsecr = 0;  // when `timestamps`
  std::uint16_t window = 0;            // a SYN-ACK's window is never scaled
  std::uint8_t window_scale = 0;       // ours, sent when `scaling`
  bool scaling = false, sack = false, timestamps = false;
};

}  // namespace dpdk_net::stack::detail
