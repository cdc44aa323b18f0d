// The stack's secret and the keyed hashes derived from it.
//
// Everything an attacker can choose that lands in one of our tables (ARP's index, the path-MTU
// cache, reassembly contexts, ephemeral ports; TCP's connection table, ISNs and SYN cookies next)
// is hashed with a key the attacker cannot know, so nobody can build collision chains or predict
// a port. The stack never draws randomness itself (it is sans-I/O): the caller passes a 128-bit
// secret in (production: getrandom; the simulator: derived from the seed), and each purpose gets
// its own key derived from it, so learning one table's behaviour reveals nothing about another's.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace dpdk_net::stack {

/// 128 bits of secret (SipHash's key size).
struct stack_secret {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
  friend bool operator==(const stack_secret&, const stack_secret&) = default;
};

/// A SipHash-2-4 key (Aumasson and Bernstein, 2012): a PRF on short inputs, fast enough to run
/// per packet, strong enough that the outputs do not reveal the key.
struct sip_key {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
};

/// SipHash-2-4 of bytes (the reference definition: little-endian words, length in the last).
[[nodiscard]] std::uint64_t siphash24(const sip_key& key, std::span<const std::byte> data) noexcept;
/// SipHash-2-4 of one or two 64-bit words (as if their 8 or 16 little-endian bytes were hashed):
/// the per-packet form, with no buffer to assemble.
[[nodiscard]] std::uint64_t siphash24(const sip_key& key, std::uint64_t word) noexcept;
[[nodiscard]] std::uint64_t siphash24(const sip_key& key, std::uint64_t w0,
                                      std::uint64_t w1) noexcept;

/// What a derived key is for; each gets an independent key.
enum class key_purpose : std::uint8_t {
  arp_index,
  pmtu_index,
  reassembly_index,
  ephemeral_port,
  tcp_isn,
  tcp_syn_cookie,
  tcp_connection_index,
  tcp_challenge_ack,  ///< each second's RFC 5961 challenge-ACK allowance
};

/// The key for one purpose: SipHash-2-4 under the secret of (purpose, 0) and (purpose, 1).
[[nodiscard]] sip_key derive_key(const stack_secret& secret, key_purpose purpose) noexcept;

}  // namespace dpdk_net::stack
