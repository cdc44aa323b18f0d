// The TCP memory budget's bookkeeper: send and receive rings are taken from it when a connection
// first needs one and given back when the connection has drained them, so an idle connection
// holds no buffer. Given-back rings are kept for reuse in free lists by size class, linked
// through the free memory itself: once warm, taking and giving never touch the heap (the
// zero-allocations-per-segment gate), and a request/response connection that drains between
// requests costs two list operations per ring.
//
// The budget covers what connections hold plus what is cached. Sends may use all of it but the
// receive reserve; receives may use all of it. A heap allocation that would overrun the budget
// first frees cached rings of other sizes.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "dpdk_net/stack/tcp.hpp"

namespace dpdk_net::stack::detail {

class ring_cache {
 public:
  enum class use : std::uint8_t { send, receive };
  static constexpr std::uint32_t min_size = 4096;

  ring_cache(std::size_t budget, std::size_t reserve) noexcept
      : budget_(budget), reserve_(reserve < budget ? reserve : budget) {}
  ring_cache(const ring_cache&) = delete;
  ring_cache& operator=(const ring_cache&) = delete;
  ~ring_cache();

  /// The ring size for a buffer of `bytes`: a power of two, at least min_size.
  [[nodiscard]] static std::uint32_t ring_size(std::uint32_t bytes) noexcept;
  /// A ring of `size` bytes (from ring_size) for `u`, or nullptr: the budget (less the reserve,
  /// for a send ring) has no room, or the heap none. Counts in k.
  std::byte* take(std::uint32_t size, use u, tcp_counters& k) noexcept;
  /// Takes back a ring from take() (size as taken).
  void give(std::byte* ring, std::uint32_t size, tcp_counters& k) noexcept;
  /// Whether a send ring of `size` bytes could be had now (without taking it).
  [[nodiscard]] bool send_room(std::uint32_t size, const tcp_counters& k) const noexcept;
  /// How many smallest rings the send share has room for now.
  [[nodiscard]] std::uint32_t send_rings_free(const tcp_counters& k) const noexcept {
    const std::size_t limit = budget_ - reserve_;
    const std::size_t free = k.buffer_bytes < limit ? limit - k.buffer_bytes : 0;
    return static_cast<std::uint32_t>(std::min<std::size_t>(free / min_size, UINT32_MAX));
  }

 private:
  static constexpr unsigned classes = 20;  // 4 KiB << 0 .. 19 (2 GiB)
  [[nodiscard]] static unsigned class_of(std::uint32_t size) noexcept;
  std::byte* pop(unsigned cls) noexcept;
  /// Frees cached rings (largest first, never class `keep`) until `bytes` more fit the budget.
  bool make_room(std::size_t bytes, unsigned keep, tcp_counters& k) noexcept;

  std::size_t budget_, reserve_;
  std::array<std::byte*, classes> free_{};  // each free ring's first bytes hold the next pointer
};

}  // namespace dpdk_net::stack::detail
