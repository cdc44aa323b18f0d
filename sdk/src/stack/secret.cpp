#include "dpdk_net/stack/secret.hpp"

#include <bit>
#include <cstring>

namespace dpdk_net::stack {

namespace {

struct sip_state {
  std::uint64_t v0, v1, v2, v3;

  explicit sip_state(const sip_key& k) noexcept
      : v0(k.k0 ^ 0x736f6d6570736575ULL),  // "somepseudorandomlygeneratedbytes"
        v1(k.k1 ^ 0x646f72616e646f6dULL),
        v2(k.k0 ^ 0x6c7967656e657261ULL),
        v3(k.k1 ^ 0x7465646279746573ULL) {}

  void round() noexcept {
    v0 += v1;
    v1 = std::rotl(v1, 13) ^ v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16) ^ v2;
    v0 += v3;
    v3 = std::rotl(v3, 21) ^ v0;
    v2 += v1;
    v1 = std::rotl(v1, 17) ^ v2;
    v2 = std::rotl(v2, 32);
  }
  void absorb(std::uint64_t m) noexcept {  // two compression rounds per word
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  std::uint64_t finish() noexcept {  // four finalisation rounds
    v2 ^= 0xff;
    round();
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

std::uint64_t load_le64(const std::byte* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= std::uint64_t{std::to_integer<std::uint8_t>(p[i])} << (8U * i);
  }
  return v;
}

}  // namespace

std::uint64_t siphash24(const sip_key& key, std::span<const std::byte> data) noexcept {
  sip_state s(key);
  const std::size_t whole = data.size() & ~std::size_t{7};
  for (std::size_t i = 0; i < whole; i += 8) {
    s.absorb(load_le64(data.data() + i, 8));
  }
  const std::uint64_t last = load_le64(data.data() + whole, data.size() - whole) |
                             (std::uint64_t{data.size() & 0xffU} << 56U);
  s.absorb(last);
  return s.finish();
}

std::uint64_t siphash24(const sip_key& key, std::uint64_t word) noexcept {
  sip_state s(key);
  s.absorb(word);
  s.absorb(std::uint64_t{8} << 56U);
  return s.finish();
}

std::uint64_t siphash24(const sip_key& key, std::uint64_t w0, std::uint64_t w1) noexcept {
  sip_state s(key);
  s.absorb(w0);
  s.absorb(w1);
  s.absorb(std::uint64_t{16} << 56U);
  return s.finish();
}

sip_key derive_key(const stack_secret& secret, key_purpose purpose) noexcept {
  const sip_key master{secret.k0, secret.k1};
  const auto p = static_cast<std::uint64_t>(purpose) + 1;  // never the all-zero input
  return sip_key{siphash24(master, p, 0), siphash24(master, p, 1)};
}

}  // namespace dpdk_net::stack
