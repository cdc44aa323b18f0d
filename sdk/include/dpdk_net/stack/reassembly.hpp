// IPv4 reassembly (RFC 791 / RFC 815), sans-I/O and bounded: at most `max_datagrams` in progress,
// at most `max_bytes` of fragment data and `max_buffers` device buffers held, each datagram given
// up after `timeout`. Buffers are the scarce resource: 8-byte fragments cost a whole buffer each,
// so a byte limit alone lets a flood of tiny fragments pin the device's pool. When a limit is
// reached the OLDEST incomplete datagram is evicted (counted) to make room for the new fragment,
// rather than the new one refused: a flood of never-completed fragments then only delays
// fragmented traffic while it lasts, instead of shutting it out until its timeouts expire (which
// is what Linux does, for 30 s, after ~8,000 tiny fragments). Contexts are found through a keyed
// hash of (source, destination, id, protocol) in O(1), so the sender chooses no collision chains.
// Fragments are kept in the buffers they arrived in and chained into the result: no copy. A
// fragment overlapping another (other than an exact duplicate) drops the whole datagram: overlaps
// are how reassembly attacks work (teardrop, and evading inspection), and no honest sender produces
// them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "dpdk_net/packet.hpp"
#include "dpdk_net/stack/detail/slot_index.hpp"
#include "dpdk_net/stack/secret.hpp"
#include "dpdk_net/time.hpp"
#include "dpdk_net/timer_wheel.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack {

struct reassembly_config {
  std::size_t max_datagrams = 64;
  std::size_t max_bytes = 1 << 20;
  std::size_t max_fragments = 64;  ///< per datagram (a 64 KiB datagram in 1 KiB pieces)
  std::size_t max_buffers = 256;   ///< device buffers held in all (default: 1/16 of a 4096 pool)
  time_ns timeout = 30 * second;
};

struct reassembly_counters {
  std::uint64_t fragments = 0, reassembled = 0, timeouts = 0, overlaps = 0, duplicates = 0;
  std::uint64_t over_memory = 0, too_many_datagrams = 0, too_many_fragments = 0, bad_length = 0;
  std::uint64_t evicted = 0;       ///< incomplete datagrams dropped, oldest first, to make room
  std::uint64_t over_buffers = 0;  ///< a datagram alone needed more than max_buffers
};

class reassembly {
 public:
  /// key: for the context index (derive_key(secret, key_purpose::reassembly_index)).
  reassembly(const reassembly_config& config, timer_wheel& timers, sip_key key);
  reassembly(const reassembly&) = delete;
  reassembly& operator=(const reassembly&) = delete;
  ~reassembly();

  /// A fragment: `datagram` holds exactly its IPv4 header and payload (no L2, no padding), h is
  /// its parsed header. Returns the whole datagram once complete: a 20-byte header (fragment
  /// fields cleared, lengths and checksum fixed, options dropped) followed by the payload,
  /// chained across the fragments' buffers.
  std::optional<packet> add(packet datagram, const wire::ipv4_header& h, time_ns now);

  [[nodiscard]] const reassembly_counters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t in_progress() const noexcept { return active_; }
  [[nodiscard]] std::size_t bytes_held() const noexcept { return bytes_; }
  [[nodiscard]] std::size_t buffers_held() const noexcept { return buffers_; }

 private:
  struct piece {
    std::uint32_t offset = 0;  // of its payload in the datagram
    std::uint32_t length = 0;
    segment* data = nullptr;    // the fragment: header trimmed off, payload only
    std::uint32_t buffers = 0;  // segments in its chain
  };
  struct context {
    bool used = false;
    wire::ipv4_address src{}, dst{};
    std::uint16_t id = 0;
    std::uint8_t protocol = 0;
    std::uint64_t hash = 0;            // of the key above, under the index key
    std::uint32_t total = UINT32_MAX;  // payload length, known once the last fragment came
    std::uint32_t have = 0;
    std::array<std::byte, wire::ipv4_min_header_length> header{};  // from the first fragment
    bool have_first = false;
    std::vector<piece> pieces;  // sorted by offset; capacity reserved at construction
    timer t;
    reassembly* owner = nullptr;
  };
  [[nodiscard]] std::uint64_t hash(const wire::ipv4_header& h) const noexcept;
  [[nodiscard]] std::uint32_t number(const context& c) const noexcept {
    return static_cast<std::uint32_t>(&c - contexts_.data());
  }
  context* find_or_make(const wire::ipv4_header& h, time_ns now) noexcept;
  /// Evicts the oldest datagrams other than keep until `bytes` and `buffers` more fit; false if
  /// they cannot fit even then.
  bool make_room(const context& keep, std::size_t bytes, std::size_t buffers) noexcept;
  void drop(context& c) noexcept;
  static void on_timeout(timer& t, time_ns now) noexcept;

  reassembly_config config_;
  timer_wheel* timers_;
  sip_key key_;
  std::vector<context> contexts_;
  std::vector<std::uint32_t> free_;  // unused contexts
  detail::slot_index index_;         // (src, dst, id, protocol) -> context
  detail::id_list by_age_;           // contexts in progress, oldest first: the eviction order
  std::size_t active_ = 0;
  std::size_t bytes_ = 0;
  std::size_t buffers_ = 0;
  reassembly_counters counters_{};
};

}  // namespace dpdk_net::stack
