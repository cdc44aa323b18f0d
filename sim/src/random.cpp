#include "dpdk_net/sim/random.hpp"

namespace dpdk_net::sim {

namespace {
std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}
std::uint64_t rotl(std::uint64_t x, unsigned k) noexcept {
  return (x << k) | (x >> (64U - k));
}
}  // namespace

std::uint64_t derive_seed(std::uint64_t root, std::string_view name) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  std::uint64_t state = root ^ rotl(h, 17);
  splitmix64(state);
  return splitmix64(state) ^ h;
}

rng::rng(std::uint64_t seed) noexcept {
  std::uint64_t state = seed;
  for (std::uint64_t& s : s_) {
    s = splitmix64(state);
  }
}

std::uint64_t rng::next() noexcept {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17U;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t rng::below(std::uint64_t n) noexcept {
  if (n == 0) {
    return 0;
  }
  // Rejection sampling: draw until the value falls in the largest multiple of n.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t v = next();
  while (v >= limit) {
    v = next();
  }
  return v % n;
}

}  // namespace dpdk_net::sim
