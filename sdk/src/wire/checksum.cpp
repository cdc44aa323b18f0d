#include "dpdk_net/wire/checksum.hpp"

#include <algorithm>

#include "dpdk_net/packet.hpp"
#include "dpdk_net/wire/bytes.hpp"

namespace dpdk_net::wire {

void checksum_accumulator::add(std::span<const std::byte> data) noexcept {
  const std::byte* p = data.data();
  std::size_t n = data.size();
  if (n == 0) {
    return;
  }
  if (odd_) {
    // The previous range ended mid-word: this byte is that word's low byte.
    sum_ += static_cast<std::uint8_t>(*p);
    ++p;
    --n;
    odd_ = false;
  }
  // Sum 16-bit big-endian words; a 64-bit accumulator cannot overflow for any real packet
  // (2^48 words), so folding happens once at the end.
  while (n >= 2) {
    sum_ += load16(p);
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    sum_ += static_cast<std::uint64_t>(static_cast<std::uint8_t>(*p)) << 8U;
    odd_ = true;
  }
}

std::uint16_t checksum_accumulator::sum() const noexcept {
  std::uint64_t s = sum_;
  while ((s >> 16U) != 0) {
    s = (s & 0xffffU) + (s >> 16U);
  }
  return static_cast<std::uint16_t>(s);
}

std::uint16_t internet_checksum(std::span<const std::byte> data) noexcept {
  checksum_accumulator acc;
  acc.add(data);
  return acc.finish();
}

void add_pseudo_header(checksum_accumulator& acc, ipv4_address src, ipv4_address dst,
                       std::uint8_t protocol, std::uint16_t l4_length) noexcept {
  acc.add32(src.value);
  acc.add32(dst.value);
  acc.add16(protocol);
  acc.add16(l4_length);
}

void add_packet(checksum_accumulator& acc, const packet& p, std::size_t offset,
                std::size_t length) noexcept {
  for (const segment& s : p.segments()) {
    if (length == 0) {
      break;
    }
    if (offset >= s.data_len) {
      offset -= s.data_len;
      continue;
    }
    const std::size_t n = std::min<std::size_t>(s.data_len - offset, length);
    acc.add(std::span<const std::byte>(s.data() + offset, n));
    length -= n;
    offset = 0;
  }
}

std::uint16_t checksum_update16(std::uint16_t old_checksum, std::uint16_t old_word,
                                std::uint16_t new_word) noexcept {
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), in one's-complement arithmetic.
  std::uint32_t s = static_cast<std::uint16_t>(~old_checksum);
  s += static_cast<std::uint16_t>(~old_word);
  s += new_word;
  while ((s >> 16U) != 0) {
    s = (s & 0xffffU) + (s >> 16U);
  }
  return static_cast<std::uint16_t>(~s & 0xffffU);
}

std::uint16_t checksum_update32(std::uint16_t old_checksum, std::uint32_t old_value,
                                std::uint32_t new_value) noexcept {
  const std::uint16_t c =
      checksum_update16(old_checksum, static_cast<std::uint16_t>(old_value >> 16U),
                        static_cast<std::uint16_t>(new_value >> 16U));
  return checksum_update16(c, static_cast<std::uint16_t>(old_value & 0xffffU),
                           static_cast<std::uint16_t>(new_value & 0xffffU));
}

}  // namespace dpdk_net::wire
