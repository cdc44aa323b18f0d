// ARP for the stack (RFC 826, with RFC 5227 probe handling), sans-I/O: frames and the time come
// in, frames go out through a caller-supplied sink, deadlines are timers on the caller's wheel.
// Nothing here reads a clock or allocates after construction.
//
// Cache entries move incomplete -> reachable -> stale. An incomplete entry holds a bounded queue
// of packets waiting for the answer and retries its request; when the retries run out the
// packets are dropped and counted. A stale entry is still used, and refreshed by the next
// request or reply from that host. Replies for addresses we never asked about are ignored
// (no cache poisoning), unless accept_unsolicited is set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/packet.hpp"
#include "dpdk_net/time.hpp"
#include "dpdk_net/timer_wheel.hpp"
#include "dpdk_net/wire/arp.hpp"

namespace dpdk_net::stack {

struct arp_config {
  mac_address mac{};
  wire::ipv4_address address{};
  std::size_t entries = 256;              ///< cache size; when full the oldest stale entry goes
  std::size_t pending_total = 128;        ///< packets waiting for resolution, all entries together
  std::size_t pending_per_entry = 4;      ///< per destination (older ones are dropped first)
  time_ns reachable_time = 30 * second;   ///< then stale
  time_ns stale_time = 10 * 60 * second;  ///< a stale entry unused this long is forgotten
  time_ns retry_interval = second;
  unsigned max_requests = 3;                ///< requests per resolution before it fails
  std::uint32_t requests_per_second = 100;  ///< rate limit on requests we send (token bucket)
  bool accept_unsolicited = false;          ///< learn from replies we did not ask for
};

struct arp_counters {
  std::uint64_t requests_received = 0, replies_received = 0;
  std::uint64_t requests_sent = 0, replies_sent = 0, gratuitous_sent = 0;
  std::uint64_t unsolicited_ignored = 0;  ///< replies for addresses we did not ask about
  std::uint64_t probes_answered = 0;      ///< RFC 5227 probes (sender 0.0.0.0) for our address
  std::uint64_t malformed = 0;            ///< refused by the wire parser
  std::uint64_t resolution_failed = 0;    ///< resolutions that ran out of retries
  std::uint64_t pending_dropped = 0;      ///< packets dropped waiting (queue full or failure)
  std::uint64_t table_full = 0;           ///< no entry could be made
  std::uint64_t rate_limited = 0;         ///< requests not sent because of the rate limit
  std::uint64_t no_buffer = 0;            ///< frames not sent: the pool was empty
};

class arp {
 public:
  enum class state : std::uint8_t { free, incomplete, reachable, stale };
  /// Where frames go out (the stack's tx queue). Complete Ethernet frames.
  using sink = std::function<void(packet frame)>;

  arp(const arp_config& config, buffer_pool& pool, timer_wheel& timers, sink out);
  arp(const arp&) = delete;
  arp& operator=(const arp&) = delete;
  ~arp();

  /// Announces our address (gratuitous ARP request).
  void announce(time_ns now);
  /// An ARP packet (the Ethernet payload) received at `now`.
  void receive(std::span<const std::byte> payload, time_ns now);
  /// Sends `datagram` (an IPv4 packet, no Ethernet header) to next_hop: at once if its MAC is
  /// known, else after resolution. Takes the packet in every case (dropped ones are counted).
  void send(packet datagram, wire::ipv4_address next_hop, time_ns now);

  [[nodiscard]] std::optional<mac_address> lookup(wire::ipv4_address ip) const noexcept;
  [[nodiscard]] state state_of(wire::ipv4_address ip) const noexcept;
  [[nodiscard]] const arp_counters& counters() const noexcept { return counters_; }

 private:
  struct entry {
    wire::ipv4_address ip{};
    mac_address mac{};
    state st = state::free;
    unsigned requests = 0;
    time_ns last_used = 0;
    std::uint32_t pending_head = UINT32_MAX;  // FIFO through pending_ slots
    std::uint32_t pending_tail = UINT32_MAX;
    std::uint32_t pending_count = 0;
    timer t;
    arp* owner = nullptr;
  };
  struct pending_slot {
    segment* frame = nullptr;
    std::uint32_t next = UINT32_MAX;
  };

  // O(1) lookup: an open-addressing index (linear probing, backward-shift deletion) of entry
  // numbers, twice the cache size.
  [[nodiscard]] std::size_t home(wire::ipv4_address ip) const noexcept;
  void index_insert(std::uint32_t e) noexcept;
  void index_erase(wire::ipv4_address ip) noexcept;
  entry* find(wire::ipv4_address ip) noexcept;
  [[nodiscard]] const entry* find(wire::ipv4_address ip) const noexcept;
  entry* make(wire::ipv4_address ip, time_ns now) noexcept;
  void forget(entry& e) noexcept;
  void learn(entry& e, mac_address mac, time_ns now) noexcept;
  void flush_pending(entry& e) noexcept;
  void drop_pending(entry& e) noexcept;
  bool enqueue(entry& e, packet p) noexcept;
  void request(entry& e, time_ns now) noexcept;
  void transmit_arp(std::uint16_t op, mac_address eth_dst, mac_address target_mac,
                    wire::ipv4_address sender_ip, wire::ipv4_address target_ip) noexcept;
  void transmit_ipv4(packet datagram, mac_address dst) noexcept;
  static void on_timer(timer& t, time_ns now) noexcept;

  arp_config config_;
  buffer_pool* pool_;
  timer_wheel* timers_;
  sink out_;
  std::vector<entry> entries_;
  std::vector<std::uint32_t> index_;
  std::vector<std::uint32_t> free_entries_;
  std::vector<pending_slot> pending_;
  std::vector<std::uint32_t> free_pending_;
  double tokens_;
  time_ns tokens_at_ = 0;
  arp_counters counters_{};
};

}  // namespace dpdk_net::stack
