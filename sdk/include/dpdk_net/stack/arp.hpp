// ARP for the stack (RFC 826, with RFC 5227 probe handling), sans-I/O: frames and the time come
// in, frames go out through a caller-supplied sink, deadlines are timers on the caller's wheel.
// Nothing here reads a clock or allocates after construction.
//
// Cache entries move incomplete -> reachable -> stale -> probe. An incomplete entry holds a
// bounded queue of packets waiting for the answer and retries its request; when the retries run
// out the packets are dropped and counted. A stale entry is still used; the first use moves it
// to probe (RFC 1122 2.3.2.1: re-verify a cached entry in use): unicast requests to the cached
// MAC, then broadcast requests, then failure (the entry is forgotten). Traffic keeps flowing to
// the cached MAC while probing, so a host that changed its MAC is reached again within
// reachable_time + unicast_probes x retry_interval (+ one round trip) of the change, instead of
// black-holed for as long as we keep talking to it. Replies for addresses we never asked about are
// ignored (no cache poisoning), unless accept_unsolicited is set.
//
// The index is keyed (SipHash under a key derived from the stack's secret): an attacker choosing
// source addresses cannot build collision chains. A full table evicts, in O(1) from a list (never
// by a scan), the entry that has been evictable longest: stale entries, and entries learned from
// a request that we never used (so a flood of spoofed requests cannot push out the gateway).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/packet.hpp"
#include "dpdk_net/stack/detail/slot_index.hpp"
#include "dpdk_net/stack/detail/token_bucket.hpp"
#include "dpdk_net/stack/secret.hpp"
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
  unsigned max_requests = 3;                ///< broadcast requests per resolution before it fails
  unsigned unicast_probes = 3;              ///< re-verifying an entry: unicast requests first
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
  std::uint64_t probes_sent = 0;          ///< unicast re-verification requests
  std::uint64_t verify_failed = 0;        ///< entries in use that stopped answering: forgotten
  std::uint64_t evicted = 0;              ///< stale entries evicted because the table was full
};

class arp {
 public:
  enum class state : std::uint8_t { free, incomplete, reachable, stale, probe };
  /// Where frames go out (the stack's tx queue). Complete Ethernet frames.
  using sink = std::function<void(packet frame)>;

  /// key: for the index hash (derive_key(secret, key_purpose::arp_index)).
  arp(const arp_config& config, buffer_pool& pool, timer_wheel& timers, sink out, sip_key key);
  arp(const arp&) = delete;
  arp& operator=(const arp&) = delete;
  ~arp();

  /// Announces our address (gratuitous ARP request).
  void announce(time_ns now);
  /// An ARP packet (the Ethernet payload) received at `now`. Returns why the parser refused it
  /// (also counted in counters().malformed), or wire_error::ok.
  /// With answer false (a copy another worker's stack received and answered) it learns only.
  wire::wire_error receive(std::span<const std::byte> payload, time_ns now, bool answer = true);
  /// Sends `datagram` (an IPv4 packet, no Ethernet header) to next_hop: at once if its MAC is
  /// known, else after resolution. Takes the packet in every case (dropped ones are counted).
  void send(packet datagram, wire::ipv4_address next_hop, time_ns now);
  /// The MAC of next_hop if known (a use, as send() makes); else starts resolving it (no packet
  /// queued) and returns nullopt. TCP keeps its segments in the connection while it waits.
  std::optional<mac_address> resolve(wire::ipv4_address next_hop, time_ns now) noexcept;
  /// Called whenever a resolution completes or fails (so waiters retry).
  void set_resolved_hook(void (*hook)(void*), void* context) noexcept {
    resolved_hook_ = hook;
    resolved_context_ = context;
  }

  /// Upper-layer proof that ip is reachable (e.g. TCP saw new data acknowledged, RFC 1122
  /// 2.3.2.1 (1)): an entry we have becomes reachable again without a probe.
  void confirm_reachable(wire::ipv4_address ip, time_ns now) noexcept;

  [[nodiscard]] std::optional<mac_address> lookup(wire::ipv4_address ip) const noexcept;
  [[nodiscard]] state state_of(wire::ipv4_address ip) const noexcept;
  [[nodiscard]] const arp_counters& counters() const noexcept { return counters_; }
  /// Index cells a lookup of ip walks (diagnostics: the keyed hash keeps this short whatever
  /// addresses a peer chooses).
  [[nodiscard]] std::size_t probe_length(wire::ipv4_address ip) const noexcept {
    return index_.probe_length(hash(ip));
  }

 private:
  struct entry {
    wire::ipv4_address ip{};
    mac_address mac{};
    state st = state::free;
    unsigned requests = 0;
    time_ns last_used = 0;
    std::uint64_t hash = 0;                   // of ip, under the index key
    bool used = false;                        // we sent to it (or resolved it for our own traffic)
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

  [[nodiscard]] std::uint64_t hash(wire::ipv4_address ip) const noexcept;
  entry* find(wire::ipv4_address ip) noexcept;
  [[nodiscard]] const entry* find(wire::ipv4_address ip) const noexcept;
  entry* make(wire::ipv4_address ip, time_ns now) noexcept;
  entry* use(wire::ipv4_address next_hop, time_ns now, bool& started) noexcept;
  void forget(entry& e) noexcept;
  void learn(entry& e, mac_address mac, time_ns now) noexcept;
  void flush_pending(entry& e) noexcept;
  void drop_pending(entry& e) noexcept;
  bool enqueue(entry& e, packet p) noexcept;
  void request(entry& e, time_ns now) noexcept;
  void probe(entry& e, time_ns now) noexcept;
  void set_state(entry& e, state st) noexcept;
  void transmit_arp(std::uint16_t op, mac_address eth_dst, mac_address target_mac,
                    wire::ipv4_address sender_ip, wire::ipv4_address target_ip) noexcept;
  void transmit_ipv4(packet datagram, mac_address dst) noexcept;
  static void on_timer(timer& t, time_ns now) noexcept;

  arp_config config_;
  buffer_pool* pool_;
  timer_wheel* timers_;
  sink out_;
  sip_key key_;
  std::vector<entry> entries_;
  detail::slot_index index_;    // ip -> entry, O(1)
  detail::id_list evictable_;   // stale or never-used entries, oldest first: the eviction order
  detail::id_list incomplete_;  // entries being resolved, oldest first: evicted only when full
  std::vector<std::uint32_t> free_entries_;
  std::vector<pending_slot> pending_;
  std::vector<std::uint32_t> free_pending_;
  detail::token_bucket requests_;
  arp_counters counters_{};
  void (*resolved_hook_)(void*) = nullptr;
  void* resolved_context_ = nullptr;
};

}  // namespace dpdk_net::stack
