// The IPv4 stack core, sans-I/O: frames and the time go in (receive, advance), frames come out
// (drain_tx), the next deadline is asked for (next_deadline). No clock, thread, syscall or RNG
// inside (every key is derived from a caller-supplied 128-bit secret), and no heap allocation per
// packet: buffers come from the device's pool, queues are preallocated.
//
// It has Ethernet, ARP, IPv4 input validation (martian sources dropped), reassembly and
// fragmentation, output routing (on-link or via the gateway), path MTU discovery, ICMP echo and
// port/protocol unreachable (rate-limited, never about broadcasts or errors), UDP sockets and TCP
// (tcp.hpp, docs/tcp.md). Readiness events for both come from poll_events(); TCP segments are
// generated when the caller drains output (drain_tx), never pushed from inside receive().
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/device.hpp"
#include "dpdk_net/stack/arp.hpp"
#include "dpdk_net/stack/detail/token_bucket.hpp"
#include "dpdk_net/stack/pmtu_cache.hpp"
#include "dpdk_net/stack/reassembly.hpp"
#include "dpdk_net/stack/secret.hpp"
#include "dpdk_net/stack/steering.hpp"
#include "dpdk_net/stack/tcp.hpp"
#include "dpdk_net/timer_wheel.hpp"
#include "dpdk_net/wire/error.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::stack {

/// The stack's configuration; `validate` says what is wrong with one (the constructor throws
/// std::invalid_argument with the same text).
struct stack_config {
  mac_address mac{};
  wire::ipv4_address address{};
  /// 0..32. /31 (RFC 3021) and /32 have no directed broadcast address: both /31 addresses are
  /// hosts, and a /32 reaches everything through its gateway (which is then taken as on-link).
  std::uint8_t prefix_length = 24;
  std::optional<wire::ipv4_address> gateway;  ///< off-link destinations; none: they are dropped
  std::uint16_t mtu = 1500;
  std::uint8_t ttl = 64;
  arp_config arp{};  ///< mac and address are taken from above
  reassembly_config reassembly{};
  std::size_t udp_sockets = 64;
  std::size_t udp_queue = 256;  ///< datagrams waiting per socket; more are dropped, counted
  std::size_t tx_queue = 1024;  ///< frames waiting for drain_tx; more are dropped, counted
  std::uint32_t icmp_errors_per_second =
      100;  ///< token bucket for the errors we generate (0: none)
  std::uint32_t icmp_error_burst = 50;
  std::size_t pmtu_entries = 64;             ///< destinations with a learned smaller path MTU
  time_ns pmtu_lifetime = 10 * 60 * second;  ///< then the interface MTU is tried again (RFC 1191)
  /// A frag-needed below this is clamped up to it (Linux's min_pmtu): a forged tiny MTU cannot
  /// make us send 68-byte fragments; such a path is "locked" (sent without DF, see pmtu_cache).
  /// An interface MTU below it is the floor instead.
  std::uint16_t min_pmtu = 552;
  std::uint16_t ephemeral_first = 49152;  ///< RFC 6056 range for bind(0) and connect
  std::uint16_t ephemeral_last = 65535;
  /// The IPv4 identification values this stack uses: ip_id_first .. ip_id_first + ip_id_count -
  /// 1 (64..65536 values, within 0..65535). Several stacks sharing one address (a multi-worker
  /// runtime) get disjoint ranges, so a peer never reassembles fragments of two of them together.
  std::uint16_t ip_id_first = 0;
  std::uint32_t ip_id_count = 65536;
  tcp_config tcp{};
  /// Checksums (and TSO) the device computes on request, from device_info::tx_offloads
  /// (use_device() copies them). The stack then writes only the pseudo-header sum, as DPDK
  /// expects, and sets packet_meta::tx; without them it computes every checksum itself.
  /// Received frames' packet_meta verdicts are trusted whatever this says (a device sets them
  /// only when it checked).
  offload_set tx_offloads{};
  /// The device sends chained packets (device_info::tx_multi_segment): TCP then sends external
  /// (zero-copy) data by reference and builds TSO super-frames; else it copies.
  bool tx_chaining = false;
  /// Largest TCP payload of one TSO super-frame (with tcp_segmentation offload), cut to whole
  /// segments; the IPv4 total length (16 bits) bounds it too.
  std::uint32_t tso_max_payload = 62 * 1024;
};

/// Copies what a stack uses from the device: its MTU, transmit offloads and chaining.
void use_device(stack_config& config, const device_info& device) noexcept;

/// The most device buffers a stack with configuration c holds at once: frames queued for
/// transmit (tx_queue), datagrams queued on UDP sockets (udp_sockets x udp_queue) and fragments
/// awaiting reassembly (reassembly.max_buffers). TCP holds none: it copies received data into
/// its per-connection buffers (bounded by tcp.memory_budget, not by device buffers), so this does
/// not grow with connections. A DPDK port sizes its mempools with it (dpdk::mbufs_needed).
[[nodiscard]] std::size_t frames_held(const stack_config& c) noexcept;

/// Empty if `c` can work on a device whose MTU is device_mtu; else one line naming the field and
/// what it must be ("stack_config.prefix_length: must be 0..32, is 40").
[[nodiscard]] std::string validate(const stack_config& c, std::uint16_t device_mtu);
/// The TCP part of validate() (field names prefixed "stack_config.tcp.").
[[nodiscard]] std::string validate_tcp(const tcp_config& c);

/// Everything received, sent, dropped or refused, by reason (like `netstat -s`).
struct stack_counters {
  arp_counters arp{};
  reassembly_counters reassembly{};
  std::uint64_t ip_fragments_sent = 0;
  std::uint64_t frames_in = 0, frames_out = 0;
  std::uint64_t eth_not_for_us = 0, eth_unknown_type = 0;
  std::uint64_t ip_in = 0, ip_not_for_us = 0, ip_fragments_dropped = 0, ip_unknown_protocol = 0;
  std::uint64_t ip_no_route = 0;
  /// Impossible sources (RFC 1122 3.2.1.3): broadcast, multicast, 0/8, 127/8, ours.
  std::uint64_t ip_martian_source = 0;
  std::uint64_t icmp_in = 0, icmp_echo_replies = 0, icmp_errors_sent = 0;
  std::uint64_t echo_requests_sent = 0, echo_replies_received = 0;
  std::uint64_t pmtu_lowered = 0;  ///< frag-needed accepted: a destination's path MTU lowered
  std::uint64_t pmtu_ignored = 0;  ///< frag-needed refused (MTU 0 or < 68 or not lower, forged)
  std::uint64_t icmp_errors_rate_limited = 0, icmp_ignored = 0;
  /// Errors not sent (RFC 1122 3.2.2): about a link-layer or IP broadcast/multicast, an ICMP
  /// error, a non-first fragment, or from an impossible source.
  std::uint64_t icmp_errors_suppressed = 0;
  std::uint64_t udp_in = 0, udp_delivered = 0, udp_no_port = 0, udp_queue_full = 0;
  std::uint64_t udp_sent = 0, udp_too_big = 0;
  std::uint64_t tx_queue_full = 0, no_buffer = 0;
  /// Received frames in several buffers copied into one (the parsers read one span).
  std::uint64_t frames_linearized = 0;
  /// Frames longer than one buffer that are not unicast unfragmented TCP for us (only TCP is
  /// made contiguous from such a frame), or longer than 64 KiB: dropped.
  std::uint64_t frames_too_long = 0;
  std::uint64_t tcp_to_broadcast = 0;  ///< TCP segments sent to a broadcast address (dropped)
  /// Frames refused by the wire parsers, indexed by wire_error.
  std::array<std::uint64_t, 32> malformed{};
  tcp_counters tcp{};
};

/// A received UDP datagram: the frame it arrived in (no copy; a reassembled datagram is a chain
/// of its fragments' buffers) and where its payload is.
struct udp_datagram {
  packet frame;
  std::size_t offset = 0;  ///< of the payload in frame
  std::size_t length = 0;
  wire::ipv4_address source{};
  std::uint16_t source_port = 0;
  /// True if the payload is in one piece (then payload() is all of it).
  [[nodiscard]] bool contiguous() const noexcept { return offset + length <= frame.front().size(); }
  /// The payload when contiguous() (else only its first part).
  [[nodiscard]] std::span<const std::byte> payload() const noexcept {
    const auto f = frame.front();
    return offset >= f.size() ? std::span<const std::byte>()
                              : f.subspan(offset, std::min(length, f.size() - offset));
  }
  /// Copies up to out.size() bytes of the payload; returns how many.
  std::size_t copy_payload(std::span<std::byte> out) const noexcept {
    return frame.copy_out(offset, out.first(std::min(out.size(), length)));
  }
};

class stack {
 public:
  using socket_id = std::uint32_t;

  /// pool: where outgoing frames are built (the device's tx pool). secret: every keyed hash and
  /// port choice derives from it (production: getrandom; simulation: the seed). Throws
  /// std::invalid_argument for a config validate() refuses (at the config's own MTU).
  stack(const stack_config& config, buffer_pool& pool, const stack_secret& secret, time_ns now = 0);
  stack(const stack&) = delete;
  stack& operator=(const stack&) = delete;
  ~stack();

  /// Announces our address (gratuitous ARP).
  void start(time_ns now);
  /// One received Ethernet frame.
  void receive(packet frame, time_ns now);
  /// Runs timers due at or before now.
  void advance(time_ns now);
  [[nodiscard]] time_ns next_deadline() const noexcept {
    return std::min(timers_.next_deadline(), tcp_.retry_deadline());
  }
  /// Moves frames to send into out; returns how many. Queued frames (ARP, ICMP, UDP, TCP
  /// control) go first, then TCP segments are generated for connections with output pending, up
  /// to out.size(). Call it until it returns less than out.size() (or the device is full).
  std::size_t drain_tx(std::span<packet> out, time_ns now) noexcept;
  /// The same at the last time the stack was given.
  std::size_t drain_tx(std::span<packet> out) noexcept { return drain_tx(out, now_); }
  /// Frames queued, plus 1 if TCP connections have output to generate.
  [[nodiscard]] std::size_t tx_pending() const noexcept {
    return tx_count_ + (tcp_.output_pending() ? 1 : 0);
  }
  /// Readiness events (TCP and UDP sockets), coalesced per socket since the last call; returns
  /// how many were written. Drain after receive/advance: the stack never calls back.
  std::size_t poll_events(std::span<socket_event> out) noexcept;
  /// TCP sockets (tcp.hpp).
  [[nodiscard]] tcp_layer& tcp() noexcept { return tcp_; }
  [[nodiscard]] const tcp_layer& tcp() const noexcept { return tcp_; }

  /// Binds a UDP socket to port (0: an ephemeral port). Errors: address_in_use,
  /// too_many_files_open (all sockets used), resource_unavailable_try_again (no free port).
  /// `address`, if given, must be ours (or 0.0.0.0): one stack has one address, so binding to
  /// it or to any address is the same; another address is address_not_available.
  std::error_code udp_bind(std::uint16_t port, socket_id& id,
                           std::optional<wire::ipv4_address> address = std::nullopt);
  void udp_close(socket_id id);
  [[nodiscard]] std::uint16_t udp_port(socket_id id) const noexcept;
  /// The oldest datagram waiting on the socket, if any.
  std::optional<udp_datagram> udp_receive(socket_id id);
  /// Sends one datagram (fragmented if it exceeds the MTU). Errors: bad_file_descriptor,
  /// message_size (over 65507 bytes), no_buffer_space, network_unreachable.
  std::error_code udp_send_to(socket_id id, wire::ipv4_address dst, std::uint16_t dst_port,
                              std::span<const std::byte> payload, time_ns now);

  /// Sends an ICMP echo request (a ping) to dst; replies are counted in echo_replies_received.
  std::error_code send_echo_request(wire::ipv4_address dst, std::uint16_t id, std::uint16_t seq,
                                    std::span<const std::byte> data, time_ns now);

  // --- Several stacks on one address (a multi-worker runtime; docs/asio.md "Flow ownership") ---
  /// Ports bound here are reported to / ephemeral ports checked with `coordinator` (null: none).
  void set_port_coordinator(port_coordinator* coordinator) noexcept;
  /// Reassembled datagrams are offered to `hook` before delivery (another stack may own them).
  void set_datagram_hook(datagram_hook hook) noexcept { datagram_hook_ = hook; }
  /// A copy of an ARP frame another stack received: its sender is learned (RFC 826 merge, and a
  /// reply this stack asked for resolves), but nothing is answered (the receiver answered).
  void receive_arp_copy(const packet& frame, time_ns now);
  /// A datagram (IP header first) another stack reassembled and handed over (its datagram_hook).
  void receive_datagram(packet datagram, time_ns now);

  [[nodiscard]] stack_counters counters() const noexcept;
  [[nodiscard]] const stack_config& config() const noexcept { return config_; }
  [[nodiscard]] arp& arp_layer() noexcept { return arp_; }
  /// The path MTU towards dst (the interface MTU unless a frag-needed lowered it).
  [[nodiscard]] std::uint16_t path_mtu(wire::ipv4_address dst, time_ns now) const noexcept;
  /// Destinations with a learned path MTU (bounded by pmtu_entries).
  [[nodiscard]] std::size_t pmtu_destinations() const noexcept { return pmtu_.size(); }

 private:
  friend class tcp_layer;
  struct udp_socket {
    bool open = false;
    std::uint8_t events = 0;  // readiness not yet handed out
    std::uint16_t port = 0;
    std::vector<udp_datagram> queue;  // ring, preallocated at bind
    std::size_t head = 0, count = 0;
  };
  void enqueue_tx(packet frame) noexcept;
  /// reassembled: a datagram put together from fragments (link_broadcast is then set only to keep
  /// ICMP errors about it unsent; it is still unicast for TCP).
  void receive_ipv4(packet frame, std::size_t l3_offset, bool link_broadcast, time_ns now,
                    bool reassembled = false);
  [[nodiscard]] bool is_martian_source(wire::ipv4_address src) const noexcept;
  void receive_icmp(packet& frame, std::size_t l3_offset, std::size_t l4_offset,
                    std::span<const std::byte> message, time_ns now);
  void receive_udp(packet frame, std::size_t l4_offset, std::span<const std::byte> datagram,
                   wire::ipv4_address src, wire::ipv4_address dst, bool link_broadcast, time_ns now,
                   std::span<const std::byte> ip_and_payload);
  /// The bytes of an L4 message to send: `head` first, then the rest from `chain` (at
  /// chain_offset) or from `flat`.
  struct l4_source {
    std::span<const std::byte> head;
    const packet* chain = nullptr;
    std::size_t chain_offset = 0;
    std::span<const std::byte> flat;
    std::size_t length = 0;  // total
  };
  /// Builds and routes an IPv4 datagram carrying src, fragmenting it to the MTU if needed.
  bool output(std::uint8_t protocol, wire::ipv4_address dst, const l4_source& src, time_ns now);
  void deliver_udp_chain(packet datagram, time_ns now);
  void frag_needed(std::uint16_t mtu, std::span<const std::byte> quote, time_ns now);
  /// offending: the datagram (IP header first) the error is about. link_broadcast: it came in a
  /// link-layer broadcast or multicast frame.
  void send_icmp_error(std::uint8_t type, std::uint8_t code, std::span<const std::byte> offending,
                       bool link_broadcast, time_ns now);
  /// Routes and sends an IPv4 datagram built in p (IP header first, headroom for Ethernet).
  bool route(packet p, wire::ipv4_address dst, time_ns now);
  [[nodiscard]] bool is_local_broadcast(wire::ipv4_address a) const noexcept;
  [[nodiscard]] std::uint32_t netmask() const noexcept;
  /// Queues a datagram on the socket bound to port (moving the frame in); false, leaving the
  /// frame with the caller, if no socket is bound there.
  bool enqueue_datagram(std::uint16_t port, packet& frame, std::size_t offset, std::size_t length,
                        wire::ipv4_address src, std::uint16_t src_port) noexcept;
  void malformed(wire::wire_error e) noexcept;
  // For TCP (tcp_layer is a friend):
  /// The next hop towards dst (dst itself on-link, else the gateway), or none (no route).
  [[nodiscard]] std::optional<wire::ipv4_address> next_hop(wire::ipv4_address dst) const noexcept;
  /// The MAC to send to dst through, or none while ARP resolves it (resolution started).
  std::optional<mac_address> resolve(wire::ipv4_address dst, time_ns now) noexcept;
  [[nodiscard]] bool path_locked(wire::ipv4_address dst, time_ns now) const noexcept;
  [[nodiscard]] time_ns last_now() const noexcept { return now_; }
  std::uint16_t next_ip_id() noexcept { return take_ip_ids(1); }
  /// n consecutive identification values (a TSO super-frame's pieces), within the range.
  std::uint16_t take_ip_ids(std::uint32_t n) noexcept {
    if (ip_id_ + n > config_.ip_id_count) {
      ip_id_ = 0;
    }
    const auto id = static_cast<std::uint16_t>(config_.ip_id_first + ip_id_);
    ip_id_ = (ip_id_ + n) % config_.ip_id_count;
    return id;
  }
  /// The delivery of a reassembled datagram (IP header first).
  void deliver_reassembled(packet whole, time_ns now);
  /// Sends a small L4 message (TCP control segments) through IP output.
  bool send_l4(std::uint8_t protocol, wire::ipv4_address dst, std::span<const std::byte> l4,
               time_ns now);
  void receive_tcp_chain(const packet& datagram, time_ns now);
  void receive_long_frame(const packet& frame, time_ns now);
  void icmp_error_to_transport(std::uint8_t type, std::uint8_t code, std::uint16_t mtu,
                               std::span<const std::byte> quote, time_ns now);
  static void arp_resolved(void* self) noexcept;

  stack_config config_;
  buffer_pool* pool_;
  timer_wheel timers_;
  arp arp_;
  reassembly reasm_;
  std::vector<segment*> tx_ring_;
  std::size_t tx_head_ = 0, tx_count_ = 0;
  pmtu_cache pmtu_;
  std::vector<udp_socket> sockets_;
  std::vector<std::int32_t> port_to_socket_;  // 65536 entries: O(1) demultiplexing
  sip_key port_key_;
  std::uint64_t port_counter_ = 0;
  std::uint32_t ip_id_ = 0;  // next offset in the configured range
  port_coordinator* coordinator_ = nullptr;
  datagram_hook datagram_hook_{};
  detail::token_bucket icmp_errors_;
  stack_counters counters_{};
  detail::id_list udp_events_;     // UDP sockets with events to hand out
  std::vector<std::byte> linear_;  // a reassembled TCP datagram made contiguous
  time_ns now_ = 0;                // the latest time the caller gave
  tcp_layer tcp_;                  // last: its timers live on timers_
};

}  // namespace dpdk_net::stack
