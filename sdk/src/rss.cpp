#include "dpdk_net/rss.hpp"

namespace dpdk_net {

std::uint32_t toeplitz_hash(std::span<const std::uint8_t> key,
                            std::span<const std::uint8_t> input) noexcept {
  if (key.size() < input.size() + 4) {
    return 0;
  }
  std::uint32_t result = 0;
  // window = the 32 key bits aligned with the current input bit; slide one bit at a time.
  std::uint32_t window = (std::uint32_t{key[0]} << 24U) | (std::uint32_t{key[1]} << 16U) |
                         (std::uint32_t{key[2]} << 8U) | key[3];
  for (std::size_t i = 0; i < input.size(); ++i) {
    const std::uint8_t next_key_byte = key[i + 4];
    for (unsigned bit = 0; bit < 8; ++bit) {
      if ((input[i] & (0x80U >> bit)) != 0) {
        result ^= window;
      }
      window = (window << 1U) | ((next_key_byte >> (7U - bit)) & 1U);
    }
  }
  return result;
}

namespace {
void put32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24U);
  p[1] = static_cast<std::uint8_t>(v >> 16U);
  p[2] = static_cast<std::uint8_t>(v >> 8U);
  p[3] = static_cast<std::uint8_t>(v);
}
}  // namespace

std::uint32_t rss_hash_ipv4(std::span<const std::uint8_t> key, wire::ipv4_address src,
                            wire::ipv4_address dst) noexcept {
  std::array<std::uint8_t, 8> in{};
  put32(in.data(), src.value);
  put32(in.data() + 4, dst.value);
  return toeplitz_hash(key, in);
}

std::uint32_t rss_hash_ipv4_l4(std::span<const std::uint8_t> key, wire::ipv4_address src,
                               wire::ipv4_address dst, std::uint16_t src_port,
                               std::uint16_t dst_port) noexcept {
  std::array<std::uint8_t, 12> in{};
  put32(in.data(), src.value);
  put32(in.data() + 4, dst.value);
  in[8] = static_cast<std::uint8_t>(src_port >> 8U);
  in[9] = static_cast<std::uint8_t>(src_port);
  in[10] = static_cast<std::uint8_t>(dst_port >> 8U);
  in[11] = static_cast<std::uint8_t>(dst_port);
  return toeplitz_hash(key, in);
}

}  // namespace dpdk_net
