// Seeded randomness. One root seed is split into named streams (derive_seed), so each link,
// host and workload draws from its own generator: adding a link does not change what another
// link does. No OS entropy anywhere in sim/.
#pragma once

#include <cstdint>
#include <string_view>

namespace dpdk_net::sim {

/// A seed for stream `name` under root: a hash of both (FNV-1a over the name, mixed with the
/// root by splitmix64), stable across builds, compilers and runs.
[[nodiscard]] std::uint64_t derive_seed(std::uint64_t root, std::string_view name) noexcept;

/// xoshiro256** (Blackman and Vigna), seeded through splitmix64. Fast, 256-bit state, and
/// fully specified, so a seed means the same sequence everywhere.
class rng {
 public:
  explicit rng(std::uint64_t seed = 0) noexcept;

  std::uint64_t next() noexcept;
  /// Uniform in [0, 1), 53 bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11U) * 0x1.0p-53; }
  /// True with probability p (p <= 0: never; p >= 1: always). Always draws one number, so the
  /// sequence does not depend on p.
  bool chance(double p) noexcept { return uniform() < p; }
  /// Uniform in [0, n) (n = 0 gives 0), without modulo bias.
  std::uint64_t below(std::uint64_t n) noexcept;

 private:
  std::uint64_t s_[4];
};

}  // namespace dpdk_net::sim
