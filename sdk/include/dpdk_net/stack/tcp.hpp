// TCP (RFC 9293) for the sans-I/O stack: the socket-level API that the Asio layer (and any event
// loop) drives, its configuration, counters and error codes. See docs/tcp.md.
//
// How a caller drives it (the stack's usual loop):
//   receive(frame, now) / advance(now)   -> segments processed, timers run
//   poll_events(out)                     -> which sockets became readable, writable, ...
//   (coalesced) tcp().send / receive / accept / ...  -> copy data in and out (never calls back into
//   the caller) drain_tx(out, now)                   -> segments are generated HERE (pull-based
//   egress): only
//                                           connections on the pending-output list are visited
//
// Every operation returns a std::error_code (std::errc values, plus tcp_errc::end_of_stream),
// never throws, and refuses a stale or unknown socket id with bad_file_descriptor.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/mac_address.hpp"
#include "dpdk_net/stack/detail/slot_index.hpp"
#include "dpdk_net/stack/secret.hpp"
#include "dpdk_net/stack/steering.hpp"
#include "dpdk_net/time.hpp"
#include "dpdk_net/timer_wheel.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"
#include "dpdk_net/wire/tcp.hpp"

namespace dpdk_net::stack {

class stack;
namespace detail {
class byte_ring;
class ring_cache;
struct cookie_synack;
struct extent_table;
struct sack_scoreboard;
struct tcp_connection;
struct tcp_segment_view;
struct time_wait_record;
}  // namespace detail

/// TCP's share of stack_config; every field has a documented default.
struct tcp_config {
  std::size_t sockets = 1024;              ///< listeners + connections (a preallocated slab)
  std::size_t time_wait_records = 4096;    ///< compact TIME-WAIT records; when full the oldest goes
  std::uint32_t send_buffer = 256 * 1024;  ///< default per connection (a socket option overrides)
  std::uint32_t receive_buffer = 256 * 1024;  ///< default per connection; sets the window scale
  std::uint32_t max_backlog = 4096;           ///< listen(backlog) is clamped to this
  time_ns rto_initial = 1 * second;           ///< RFC 6298 2.1
  time_ns rto_min = 200 * millisecond;        ///< RFC 6298 says 1 s; Linux (and we) use 200 ms
  time_ns rto_max = 60 * second;
  unsigned syn_retries = 6;     ///< SYN retransmissions before connect fails (timed_out)
  unsigned synack_retries = 5;  ///< SYN-ACK retransmissions before a half-open child is dropped
  unsigned data_retries = 15;   ///< RTOs in a row (data, FIN, probes) before the connection fails
  time_ns delayed_ack = 40 * millisecond;  ///< RFC 1122 4.2.3.2 (<= 500 ms); 0: ACK at once
  time_ns time_wait = 60 * second;         ///< 2 MSL
  time_ns fin_wait_2 = 60 * second;   ///< an orphaned (closed) connection waits this long for FIN
  bool window_scaling = true;         ///< RFC 7323 2
  bool timestamps = true;             ///< RFC 7323 3 (RTT samples, PAWS)
  std::uint32_t initial_window = 10;  ///< segments (RFC 6928)
  std::uint16_t min_mss = 64;  ///< a peer's smaller MSS (0, 1, ...) is raised to this (RFC 6691)
  unsigned dup_ack_threshold = 3;  ///< RFC 5681 fast retransmit
  /// Out-of-order ranges kept per connection (beyond them, segments are dropped, counted).
  std::uint32_t out_of_order_ranges = 8;
  /// The global memory budget: bytes of send and receive buffers (rings, out-of-order data
  /// included) all connections together may hold, counting those cached for reuse. A buffer is
  /// taken when a connection first needs one and returned (to a cache, not the heap) when it is
  /// drained, so an idle connection holds none.
  std::size_t memory_budget = 512 * 1024 * 1024;
  /// The part of the budget only receive buffers may take: send() stops short of it, so
  /// connections whose peers do not read (zero windows) cannot starve receiving.
  std::size_t receive_reserve = 64 * 1024 * 1024;
  /// Connections that may have zero-copy (send_external) data queued at once (a preallocated
  /// table of their extents); more get resource_unavailable_try_again.
  std::uint32_t zero_copy_connections = 1024;

  // --- loss recovery and defences (docs/tcp.md "SACK", "Queues and SYN cookies", "RFC 5961")
  /// RFC 2018 SACK: offered on SYN and SYN-ACK, blocks sent when data is out of order, and
  /// RFC 6675 recovery when the peer sends them.
  bool sack = true;
  /// Connections that may hold a SACK scoreboard at once (a preallocated pool of 136-byte
  /// scoreboards, at most `sockets`: it is not in the connection's slot); a connection without
  /// one recovers as NewReno does.
  std::uint32_t sack_scoreboards = 1024;
  /// Half-open connections (SYN received, SYN-ACK sent) one listener keeps: its SYN queue. Past
  /// it, SYN cookies (if on) answer without keeping state, else the SYN is dropped. A quarter of
  /// the default `sockets`: a flood must not fill the slab with half-open children before the
  /// cookies take over (keep it well below `sockets`).
  std::uint32_t syn_queue = 256;
  /// RFC 4987 SYN cookies when a listener's SYN queue is full.
  bool syn_cookies = true;
  /// The cookie secret changes every this long (the previous one is still accepted); keys
  /// derive from the stack's secret and the time, so stacks sharing a secret (one per core)
  /// validate each other's cookies.
  time_ns syn_cookie_period = 64 * second;
  /// RFC 5961 challenge ACKs: about this many per second for the whole stack (0: no limit).
  /// Each second's allowance is drawn (keyed by the secret) from [N - N/2, N + N/2], mean N,
  /// so an off-path attacker cannot count what other connections spent (CVE-2016-5696). Per
  /// stack: with one stack per core the machine sends up to cores x N (no state is shared
  /// between cores). docs/tcp.md "RFC 5961".
  std::uint32_t challenge_acks_per_second = 1000;
};

/// Per-socket options (set before or after connect; buffers only before).
/// Congestion controllers a socket can choose (congestion.hpp).
enum class congestion_algorithm : std::uint8_t {
  new_reno,  ///< RFC 5681 / 6582
  cubic,     ///< RFC 9438
};

struct tcp_socket_options {
  bool no_delay = false;  ///< true: Nagle off (RFC 1122 4.2.3.4)
  /// close(): nullopt: graceful, finished in the background; 0: abort (RST) at once;
  /// > 0: graceful, but reset if the peer has not acknowledged everything within this time.
  std::optional<time_ns> linger;
  time_ns keepalive_idle = 0;  ///< 0: no keepalive (RFC 1122 4.2.3.6: off by default)
  time_ns keepalive_interval = 75 * second;
  unsigned keepalive_probes = 9;
  /// RFC 5482: unacknowledged data older than this fails the connection (timed_out); 0: the
  /// retry counts decide.
  time_ns user_timeout = 0;
  std::uint32_t send_buffer = 0;     ///< 0: tcp_config::send_buffer
  std::uint32_t receive_buffer = 0;  ///< 0: tcp_config::receive_buffer
  /// The congestion controller (congestion.hpp), taken when the connection is established;
  /// accepted connections inherit the listener's.
  congestion_algorithm congestion = congestion_algorithm::cubic;
};

/// RFC 9293 states (listen is a socket's, the rest a connection's).
enum class tcp_state : std::uint8_t {
  closed,
  listen,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};
[[nodiscard]] const char* to_string(tcp_state s) noexcept;

struct tcp_endpoint {
  wire::ipv4_address address{};
  std::uint16_t port = 0;
  friend constexpr bool operator==(tcp_endpoint, tcp_endpoint) noexcept = default;
};

/// A connection's vital signs (like Linux's TCP_INFO).
struct tcp_info {
  tcp_state state = tcp_state::closed;
  time_ns srtt = 0, rttvar = 0, rto = 0;
  std::uint32_t cwnd = 0, ssthresh = 0;  ///< bytes
  std::uint32_t send_window = 0;         ///< the peer's, scaled
  std::uint32_t receive_window = 0;      ///< ours, as last advertised (scaled)
  std::uint32_t mss = 0;                 ///< we send segments of at most this much data
  std::uint32_t in_flight = 0;           ///< bytes sent, not yet acknowledged
  std::uint8_t send_scale = 0, receive_scale = 0;
  bool timestamps = false;
  bool sack = false;               ///< both sides offered SACK
  std::uint32_t sacked_bytes = 0;  ///< bytes the peer SACKed above SND.UNA (RFC 6675 scoreboard)
  std::uint64_t retransmits = 0;   ///< segments retransmitted (all causes)
  std::uint64_t rto_expirations = 0, fast_retransmits = 0;
  std::uint64_t bytes_sent = 0, bytes_acked = 0, bytes_received = 0;
};

/// `netstat -s` style: everything counted, by reason.
struct tcp_counters {
  std::uint64_t segments_in = 0, segments_out = 0, retransmits = 0;
  std::uint64_t demux_lookups = 0;  ///< exactly one per received segment
  /// Connections visited to generate output (only those on the pending-output list: an idle
  /// connection is never visited).
  std::uint64_t output_visits = 0;
  std::uint64_t active_opens = 0, passive_opens = 0, established = 0;
  std::uint64_t connect_failed = 0;  ///< refused, timed out or unreachable before established
  std::uint64_t resets_sent = 0, resets_received = 0;
  std::uint64_t no_socket = 0;          ///< segments for no connection or listener (RST sent)
  std::uint64_t listen_overflow = 0;    ///< SYNs dropped: the listener's accept queue was full
  std::uint64_t sockets_exhausted = 0;  ///< no free socket slot (SYN dropped, open refused)
  std::uint64_t bad_segments = 0;       ///< refused by a check (flags, offsets), not by checksum
  std::uint64_t not_acceptable = 0;     ///< RFC 9293 3.10.7.4 sequence test failed (ACK sent)
  std::uint64_t paws_rejected = 0;      ///< RFC 7323 5 (ACK sent)
  std::uint64_t ack_too_new = 0;        ///< acknowledged data we never sent (ACK sent)
  std::uint64_t duplicate_acks = 0, fast_retransmits = 0, rto_expirations = 0;
  std::uint64_t recovery_partial_acks = 0;  ///< RFC 6582 partial acknowledgments
  std::uint64_t spurious_rtx_data = 0;      ///< duplicate data received (already acknowledged)
  std::uint64_t out_of_order = 0, out_of_order_dropped = 0;
  /// Out-of-order ranges passed, merged or moved placing out-of-order segments: at most twice
  /// the ranges held (<= 16) per segment, whatever the sender does (a work count, like
  /// demux_lookups).
  std::uint64_t out_of_order_range_visits = 0;
  std::uint64_t window_probes = 0, keepalives_sent = 0;
  std::uint64_t delayed_acks = 0;    ///< ACKs sent by the delayed-ACK timer
  std::uint64_t window_updates = 0;  ///< pure window updates sent
  std::uint64_t timeouts = 0;        ///< connections failed by retries or user timeout
  std::uint64_t keepalive_timeouts = 0;
  std::uint64_t time_wait_entered = 0, time_wait_reused = 0, time_wait_evicted = 0;
  std::uint64_t icmp_accepted = 0, icmp_ignored = 0;  ///< RFC 5927 checks
  std::uint64_t waiting_for_arp = 0;  ///< times a connection's output waited for ARP
  std::uint64_t no_buffer = 0;        ///< segment not built: the pool was empty (retried)
  std::uint64_t urgent_ignored = 0;   ///< segments with URG (urgent data is ordinary data)
  std::uint64_t bytes_in = 0, bytes_out = 0;
  /// Gauge: bytes of send and receive rings connections hold now (device buffers are never
  /// held: received data is copied).
  std::uint64_t buffer_bytes = 0;
  /// Gauge: ring bytes cached for reuse (returned by drained connections). buffer_bytes +
  /// buffer_cached never exceeds tcp_config::memory_budget.
  std::uint64_t buffer_cached = 0;
  std::uint64_t buffer_peak = 0;       ///< highest buffer_bytes seen
  std::uint64_t buffers_taken = 0;     ///< rings given to connections (from the cache or the heap)
  std::uint64_t buffers_returned = 0;  ///< rings connections gave back when drained
  std::uint64_t buffer_heap_allocations = 0;  ///< rings the cache did not have (heap)
  /// send() calls that took less than they could have because only the receive reserve was left.
  std::uint64_t send_budget_limited = 0;
  /// Receive buffers granted from the reserve (the rest of the budget was taken).
  std::uint64_t receive_reserve_grants = 0;
  /// Segments whose data was dropped because not even the reserve had a receive buffer left.
  std::uint64_t receive_budget_drops = 0;
  /// Gauge: external (zero-copy) buffers the stack holds a reference to, and their bytes.
  std::uint64_t external_buffers = 0, external_bytes = 0;
  std::uint64_t tso_frames = 0;  ///< TSO super-frames built (each counts once in segments_out)

  // SACK (RFC 2018 / 6675)
  std::uint64_t sack_blocks_sent = 0, sack_blocks_received = 0;
  /// Blocks refused: inverted, above SND.MAX, wholly below SND.UNA (not D-SACK), beyond the
  /// scoreboard, or malformed.
  std::uint64_t sack_blocks_ignored = 0;
  std::uint64_t dsack_received = 0;      ///< D-SACK blocks (RFC 2883): noted, never acted on
  std::uint64_t sack_recoveries = 0;     ///< RFC 6675 recovery episodes
  std::uint64_t sack_retransmits = 0;    ///< segments NextSeg chose to retransmit
  std::uint64_t sack_no_scoreboard = 0;  ///< SACK blocks arrived but no scoreboard was free

  // Queues and SYN cookies (RFC 4987)
  std::uint64_t syn_queue_overflow = 0;     ///< SYNs beyond a listener's SYN queue
  std::uint64_t accept_queue_overflow = 0;  ///< handshakes completed onto a full accept queue
  std::uint64_t syn_cookies_sent = 0, syn_cookies_accepted = 0;
  std::uint64_t syn_cookies_rejected = 0;  ///< an ACK whose cookie did not validate

  // RFC 5961
  std::uint64_t challenge_acks_sent = 0;
  std::uint64_t challenge_acks_limited = 0;  ///< not sent: over challenge_acks_per_second
  std::uint64_t rst_challenged = 0;  ///< RSTs in the window but not at RCV.NXT (challenge ACK)
  std::uint64_t syn_challenged = 0;  ///< SYNs on a synchronized connection (challenge ACK)
  std::uint64_t ack_challenged = 0;  ///< ACKs outside [SND.UNA - MAX.SND.WND, SND.MAX]
};

/// Errors that std::errc has no value for.
enum class tcp_errc {
  end_of_stream = 1,  ///< receive: the peer closed its side and everything was read (asio eof)
};
[[nodiscard]] const std::error_category& tcp_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(tcp_errc e) noexcept {
  return {static_cast<int>(e), tcp_category()};
}

enum class shutdown_type : std::uint8_t { receive, send, both };

/// Readiness events: a bit set per socket, coalesced until poll_events() hands them out.
namespace socket_events {
inline constexpr std::uint8_t readable = 1;    ///< data (or end of stream, or a datagram) to read
inline constexpr std::uint8_t writable = 2;    ///< send buffer space became free
inline constexpr std::uint8_t acceptable = 4;  ///< a listener has a connection to accept
inline constexpr std::uint8_t connected = 8;   ///< connect() completed
inline constexpr std::uint8_t closed = 16;  ///< fully closed (the id is still valid until close())
inline constexpr std::uint8_t error = 32;   ///< failed: error(id) says why
}  // namespace socket_events

struct socket_event {
  std::uint32_t socket = 0;
  std::uint8_t protocol = 0;  ///< wire::ip_protocol::tcp or ::udp
  std::uint8_t events = 0;    ///< socket_events bits
};

/// Restricts the ephemeral ports connect() may choose (e.g. to those whose RSS hash lands on the
/// calling core). Called with candidate ports; nullptr accepts any.
struct port_filter {
  bool (*accept)(const void* context, std::uint16_t local_port, tcp_endpoint remote) = nullptr;
  const void* context = nullptr;
};

struct io_result {
  std::size_t bytes = 0;
  std::error_code error;
};

/// The TCP layer of one stack (stack::tcp()). Socket ids are generation-tagged: a closed id is
/// refused (bad_file_descriptor), never confused with its slot's next user.
class tcp_layer {
 public:
  using socket_id = std::uint32_t;
  static constexpr socket_id invalid_socket = UINT32_MAX;
  /// The slab slot of an id (< tcp_config::sockets): an index for tables kept beside the layer.
  static constexpr std::uint32_t slot_of(socket_id id) noexcept { return id & ((1U << 20) - 1); }

  tcp_layer(stack& ip, const tcp_config& config, buffer_pool& pool, timer_wheel& timers,
            const stack_secret& secret);
  tcp_layer(const tcp_layer&) = delete;
  tcp_layer& operator=(const tcp_layer&) = delete;
  ~tcp_layer();

  // --- sockets ---------------------------------------------------------------------------
  /// A new socket (closed). Errors: too_many_files_open (every slot in use).
  std::error_code open(socket_id& out);
  /// Errors: bad_file_descriptor; invalid_argument (buffers after connect).
  std::error_code set_options(socket_id id, const tcp_socket_options& o);
  [[nodiscard]] tcp_socket_options options(socket_id id) const noexcept;
  /// port 0: an ephemeral port. Errors: address_in_use, address_not_available (not our
  /// address), invalid_argument (already bound), resource_unavailable_try_again (no free port).
  std::error_code bind(socket_id id, std::uint16_t port,
                       std::optional<wire::ipv4_address> address = std::nullopt);
  /// Passive open. backlog bounds the accept queue: established, not-yet-accepted connections
  /// (clamped to 1..max_backlog); while it is full SYNs are dropped (listen_overflow) and
  /// completing handshakes wait (accept_queue_overflow). Half-open connections are bounded
  /// apart, by tcp_config::syn_queue (then SYN cookies). Binds an ephemeral port if unbound.
  /// Errors: invalid_argument (connecting or connected).
  std::error_code listen(socket_id id, std::uint32_t backlog);
  /// The oldest established connection of a listener. Errors: resource_unavailable_try_again
  /// (none yet: wait for `acceptable`), invalid_argument (not listening),
  /// too_many_files_open never (the connection already has its slot).
  std::error_code accept(socket_id listener, socket_id& out);
  /// Active open to remote; completes with `connected` or `error` (then error(id) is
  /// connection_refused, timed_out, host_unreachable or network_unreachable). Picks an
  /// RFC 6056 ephemeral port if unbound (accepted by filter). Errors now: already_connected,
  /// connection_already_in_progress, network_unreachable (no route), address_not_available
  /// (no free port), address_in_use (a socket bound first: its 4-tuple is in use, or another
  /// worker bound the port too and the flow would be steered there), invalid_argument (a listener,
  /// or a remote we cannot reach: 0.0.0.0, broadcast, multicast, ourselves, port 0).
  std::error_code connect(socket_id id, tcp_endpoint remote, time_ns now, port_filter filter = {});

  /// Copies up to data.size() bytes into the send buffer; returns how many were taken (0 with
  /// resource_unavailable_try_again when full: wait for `writable`). Errors: not_connected
  /// (never connected or still opening... data sent in SYN-SENT is queued, not refused),
  /// broken_pipe (shut down for sending), the connection's error if it failed.
  io_result send(socket_id id, std::span<const std::byte> data);
  /// Zero-copy send: queues bytes [offset, offset + length) of `buffer` after the data already
  /// queued, without copying. All or nothing: the stack takes one reference on the buffer (its
  /// release hook runs once the peer has acknowledged the bytes, the connection is gone, and no
  /// frame still points into it) and returns length; or takes none and returns 0 with
  /// resource_unavailable_try_again (the send buffer, counted in the same send_buffer limit, or
  /// the extent table is full, or every table is in use: wait for `writable`). The memory must
  /// stay unchanged until the release. Devices without chaining get a copy at transmit time.
  /// Other errors as send(); invalid_argument for a range outside the buffer or length 0;
  /// message_size for more than the send buffer (it could never fit: split it);
  /// operation_not_supported with tcp_config::zero_copy_connections 0.
  io_result send_external(socket_id id, external_buffer& buffer, std::size_t offset,
                          std::size_t length);
  /// Copies received in-order data out. 0 bytes with: resource_unavailable_try_again (nothing
  /// yet: wait for `readable`), tcp_errc::end_of_stream (peer finished, all read), the
  /// connection's error if it failed (connection_reset, timed_out, ...), not_connected.
  io_result receive(socket_id id, std::span<std::byte> out);
  /// send: FIN after the buffered data (half-close); receive: later data is discarded (and the
  /// socket reads end_of_stream). Errors: not_connected.
  std::error_code shutdown(socket_id id, shutdown_type how, time_ns now);
  /// Releases the id. A connection is finished in the background as the linger option says
  /// (graceful FIN by default; unread received data makes it an abort, RFC 2525 2.17).
  std::error_code close(socket_id id, time_ns now);
  /// Sends RST (if synchronized) and releases the id at once.
  std::error_code abort(socket_id id, time_ns now);

  [[nodiscard]] std::optional<tcp_endpoint> local_endpoint(socket_id id) const noexcept;
  [[nodiscard]] std::optional<tcp_endpoint> remote_endpoint(socket_id id) const noexcept;
  [[nodiscard]] std::optional<tcp_info> info(socket_id id) const noexcept;
  /// Why the connection failed (like SO_ERROR); empty if it has not.
  [[nodiscard]] std::error_code error(socket_id id) const noexcept;
  /// Bytes receive() would return now / send() would take now.
  [[nodiscard]] std::size_t readable_bytes(socket_id id) const noexcept;
  [[nodiscard]] std::size_t writable_bytes(socket_id id) const noexcept;

  [[nodiscard]] const tcp_counters& counters() const noexcept { return counters_; }
  /// Connections (not listeners) currently using a slot, in any state but closed.
  [[nodiscard]] std::size_t connections() const noexcept { return connection_count_; }
  /// Multi-worker runtimes: see stack::set_port_coordinator (set before any socket exists).
  void set_port_coordinator(port_coordinator* coordinator);
  [[nodiscard]] std::size_t time_wait_count() const noexcept { return tw_used_; }
  /// Connections waiting on the pending-output list (diagnostics, and tx_pending()).
  [[nodiscard]] bool output_pending() const noexcept {
    return !pending_.empty() || !tw_acks_.empty() || cookie_count_ != 0;
  }
  /// Bytes a connection's slot takes when idle (no buffers allocated): for the docs' figure.
  [[nodiscard]] static std::size_t idle_connection_bytes() noexcept;

  // --- for the stack (not the application) ----------------------------------------------
  /// A TCP segment for us (IP checksum verified, not a fragment unless reassembled); datagram
  /// is the whole IP datagram (header first) in one contiguous span.
  void receive(std::span<const std::byte> datagram, std::size_t ip_header_length,
               bool l4_checksum_good, time_ns now);
  /// An ICMP destination-unreachable / time-exceeded about a TCP segment (quote: the IP header
  /// and at least 8 bytes). Returns true if a connection accepted it (RFC 5927 checks).
  bool icmp_error(std::uint8_t type, std::uint8_t code, std::uint16_t mtu,
                  std::span<const std::byte> quote, time_ns now);
  /// Generates segments for pending connections into out; returns how many.
  std::size_t emit(std::span<packet> out, time_ns now) noexcept;
  /// ARP resolved (or failed) a next hop: connections waiting for it may go on.
  void next_hop_resolved() noexcept;
  /// Events for TCP sockets into out; returns how many.
  std::size_t poll_events(std::span<socket_event> out) noexcept;
  /// An earliest deadline for output blocked on an empty pool (UINT64_MAX: none).
  [[nodiscard]] time_ns retry_deadline() const noexcept { return retry_at_; }

 private:
  friend struct detail::tcp_connection;
  using connection = detail::tcp_connection;
  // (definitions in sdk/src/stack/tcp_*.cpp; the connection layout in detail/tcp_connection.hpp)
  connection* lookup(socket_id id) const noexcept;
  [[nodiscard]] socket_id id_of(const connection& c) const noexcept;
  connection* alloc_connection() noexcept;
  void free_connection(connection& c) noexcept;
  [[nodiscard]] std::uint64_t tuple_hash(wire::ipv4_address remote, std::uint16_t remote_port,
                                         std::uint16_t local_port) const noexcept;
  void index_insert(connection& c) noexcept;
  void index_erase(connection& c) noexcept;
  std::uint16_t pick_port(tcp_endpoint remote, const port_filter& filter, time_ns now) noexcept;
  /// Counts c (or a TIME-WAIT record) as a user of its port of the `kinds` (port_hold bits); the
  /// coordinator was asked (acquire) by the caller where it has to be.
  void hold_port(std::uint16_t port, std::uint8_t& held, std::uint8_t kinds) noexcept;
  /// Drops what `held` holds; the last user of a kind releases it at the coordinator.
  void drop_port(std::uint16_t port, std::uint8_t& held) noexcept;
  [[nodiscard]] bool port_in_use(std::uint16_t port) const noexcept;
  [[nodiscard]] std::uint32_t timestamp_offset(wire::ipv4_address remote, std::uint16_t remote_port,
                                               std::uint16_t local_port) const noexcept;
  std::uint32_t initial_sequence(wire::ipv4_address remote, std::uint16_t remote_port,
                                 std::uint16_t local_port, time_ns now) const noexcept;
  void notify(connection& c, std::uint8_t events) noexcept;
  void want_output(connection& c) noexcept;
  void fail(connection& c, std::error_code e, time_ns now) noexcept;
  void become_closed(connection& c, time_ns now) noexcept;
  void enter_time_wait(connection& c, time_ns now, bool owe_ack) noexcept;
  std::size_t emit_time_wait_acks(std::span<packet> out, time_ns now) noexcept;
  void established(connection& c, time_ns now) noexcept;
  void detach_child(connection& c) noexcept;
  bool shutdown_internal(connection& c) noexcept;
  void abort_connection(connection& c, time_ns now) noexcept;
  void free_time_wait(std::uint32_t record) noexcept;
  [[nodiscard]] std::uint32_t find_tuple(wire::ipv4_address remote, std::uint16_t remote_port,
                                         std::uint16_t local_port) const noexcept;

  // input (tcp_input.cpp)
  void segment_for_listener(connection& l, const detail::tcp_segment_view& s, time_ns now,
                            std::optional<std::uint32_t> isn_above = std::nullopt);
  /// A half-open child of l for the SYN s, our ISN iss; nullptr if no slot is free.
  connection* new_child(connection& l, const detail::tcp_segment_view& s, std::uint32_t iss,
                        time_ns now);
  // SYN cookies (tcp_syn_cookie.cpp)
  /// Owes the SYN s a cookie SYN-ACK (built at the next drain); none if too many are owed.
  void send_syn_cookie(const connection& l, const detail::tcp_segment_view& s,
                       time_ns now) noexcept;
  /// An ACK that found only the listener: true if its cookie validated (the connection is made,
  /// or the ACK dropped for a full accept queue or slab), false if not (counted).
  bool syn_cookie_ack(connection& l, const detail::tcp_segment_view& s, time_ns now);
  std::size_t emit_syn_cookies(std::span<packet> out, time_ns now) noexcept;
  void segment_for_time_wait(detail::time_wait_record& r, const detail::tcp_segment_view& s,
                             time_ns now);
  void segment_syn_sent(connection& c, const detail::tcp_segment_view& s, time_ns now);
  void segment_synchronized(connection& c, const detail::tcp_segment_view& s, time_ns now);
  bool process_ack(connection& c, const detail::tcp_segment_view& s, time_ns now);
  void process_data(connection& c, const detail::tcp_segment_view& s, time_ns now);
  void process_fin(connection& c, time_ns now);
  void update_rtt(connection& c, time_ns sample) noexcept;
  [[nodiscard]] std::optional<time_ns> timestamp_rtt(const connection& c, std::uint32_t echo,
                                                     time_ns now) const noexcept;
  void send_reset_for(const detail::tcp_segment_view& s, time_ns now) noexcept;
  /// RFC 5961 challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, within the stack's allowance
  /// (challenge_acks_sent or challenge_acks_limited).
  void challenge_ack(connection& c, time_ns now) noexcept;

  // output (tcp_output.cpp)
  std::size_t emit_connection(connection& c, std::span<packet> out, time_ns now) noexcept;
  void note_retransmission(connection& c, std::uint32_t end, time_ns now) noexcept;
  /// One Ethernet + IPv4 + TCP frame; data (if any) is the send queue's [data_seq, +data_len).
  /// tso_mss != 0: a TSO super-frame the device cuts into segments of that much payload.
  bool build_frame(packet& out, mac_address mac, wire::ipv4_address dst, const wire::tcp_header& h,
                   const connection* data, std::uint32_t data_seq, std::uint32_t data_len,
                   bool dont_fragment, std::uint32_t tso_mss = 0) noexcept;
  /// tso_mss != 0: len may span several segments of that size (a TSO super-frame).
  bool build_segment(connection& c, packet& out, std::uint32_t seq, std::uint32_t len,
                     std::uint8_t flags, time_ns now, std::uint32_t tso_mss = 0) noexcept;
  bool send_control(wire::ipv4_address dst, std::uint16_t src_port, std::uint16_t dst_port,
                    std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::uint16_t window,
                    const wire::tcp_timestamps* timestamps, time_ns now) noexcept;
  [[nodiscard]] std::uint32_t receive_window(const connection& c) const noexcept;
  [[nodiscard]] std::uint32_t send_mss(const connection& c) const noexcept;

  // buffers and the send queue (tcp_buffers.cpp)
  [[nodiscard]] std::uint32_t send_limit(const connection& c) const noexcept;
  bool take_send_ring(connection& c) noexcept;
  bool take_receive_ring(connection& c) noexcept;
  void give_ring(detail::byte_ring& ring) noexcept;
  /// Returns a ring with nothing left in it to the cache (an idle connection holds none).
  void return_drained_send_ring(connection& c) noexcept;
  void return_drained_receive_ring(connection& c) noexcept;
  /// Everything a connection holds: rings, external references, its extent table.
  void release_buffers(connection& c) noexcept;
  /// The send side of that (a reset connection keeps only what the application may still read).
  void release_send_queue(connection& c) noexcept;
  void leave_budget_wait(connection& c) noexcept;
  void leave_extent_wait(connection& c) noexcept;
  void free_extent_table(connection& c) noexcept;
  /// The peer acknowledged send-queue bytes [from, to): external runs wholly acknowledged drop
  /// their reference.
  void send_queue_acked(connection& c, std::uint32_t from, std::uint32_t to) noexcept;
  [[nodiscard]] io_result check_sendable(const connection* c) const noexcept;
  /// Appends bytes to a frame: into the last buffer's tailroom, then into chained pool buffers.
  bool append_copy(packet& frame, std::span<const std::byte> bytes) noexcept;
  /// Appends the send queue's bytes [seq, seq + len) to a frame (external runs by reference
  /// when the device chains).
  bool append_payload(packet& frame, const connection& c, std::uint32_t seq,
                      std::uint32_t len) noexcept;

  // SACK (tcp_sack.cpp)
  /// Fills o.sack with blocks for our out-of-order data (RFC 2018 4).
  void sack_blocks(const connection& c, wire::tcp_options& o) noexcept;
  /// Adds an ACK's SACK blocks to the scoreboard (bogus ones refused and counted); returns the
  /// bytes newly SACKed. no_scoreboard: a valid block found the pool empty.
  std::uint32_t sack_update(connection& c, const wire::tcp_options& o, std::uint32_t ack,
                            bool& no_scoreboard) noexcept;
  /// Drops what SND.UNA passed; frees an empty scoreboard outside recovery.
  void sack_prune(connection& c) noexcept;
  void free_scoreboard(connection& c) noexcept;
  [[nodiscard]] std::uint32_t sacked_bytes(const connection& c) const noexcept;
  [[nodiscard]] bool sack_is_lost(const connection& c, std::uint32_t seq,
                                  std::uint32_t mss) const noexcept;
  [[nodiscard]] std::uint32_t sack_pipe(const connection& c, std::uint32_t mss) const noexcept;
  /// RFC 6675 NextSeg() rule 1 (lost_only) or 3: a retransmission [seq, seq + len).
  bool sack_next_segment(const connection& c, std::uint32_t mss, bool lost_only, std::uint32_t& seq,
                         std::uint32_t& len) const noexcept;
  /// RFC 6675 NextSeg() rule 4: the rescue retransmission's segment.
  bool sack_rescue_segment(const connection& c, std::uint32_t mss, std::uint32_t& seq,
                           std::uint32_t& len) const noexcept;
  /// The next unSACKed byte at or after seq; run: unSACKed bytes from there (UINT32_MAX: all).
  [[nodiscard]] std::uint32_t sack_skip(const connection& c, std::uint32_t seq,
                                        std::uint32_t& run) const noexcept;

  // timers (tcp_timers.cpp)
  static void on_retransmit_timer(timer& t, time_ns now) noexcept;
  static void on_ack_timer(timer& t, time_ns now) noexcept;
  static void on_idle_timer(timer& t, time_ns now) noexcept;
  static void on_time_wait_timer(timer& t, time_ns now) noexcept;
  void arm_retransmit(connection& c, time_ns now) noexcept;
  void arm_idle(connection& c, time_ns now) noexcept;
  void retransmit_timeout(connection& c, time_ns now) noexcept;

  stack* ip_;
  tcp_config config_;
  std::unique_ptr<detail::ring_cache> rings_ptr_;  // the budget: destroyed after the slab's rings
  detail::ring_cache& rings_;
  buffer_pool* pool_;
  timer_wheel* timers_;
  sip_key isn_key_, index_key_, port_key_, challenge_key_;
  std::vector<connection> slab_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t connection_count_ = 0;
  detail::slot_index index_;  // 4-tuple -> connection slot, or TIME-WAIT record (+ slab size)
  port_coordinator* coordinator_ = nullptr;
  // With a coordinator, per port_hold kind (bound, connect, child): users of each port (65536;
  // 32-bit: one port may have more than 65535 children and TIME-WAIT records).
  std::array<std::vector<std::uint32_t>, 3> port_holders_;
  std::vector<std::int32_t> listeners_;    // 65536: local port -> listener slot, -1
  std::vector<std::uint16_t> port_users_;  // 65536: sockets bound to each local port
  detail::id_list pending_;                // connections with output to generate
  detail::id_list arp_wait_;               // connections whose next hop is resolving
  detail::id_list events_;                 // connections with events to hand out
  std::vector<detail::time_wait_record> tw_;
  detail::id_list tw_order_;  // oldest first: the expiry order (one duration for all)
  detail::id_list tw_acks_;   // records owing an ACK (built at drain time, like all output)
  std::vector<std::uint32_t> tw_free_;
  std::size_t tw_used_ = 0;
  timer tw_timer_;
  std::uint64_t port_counter_ = 0;
  time_ns retry_at_ = UINT64_MAX;
  bool blocked_ = false;                             // emit_connection stopped for room or buffers
  mac_address tx_mac_{};                             // the next hop of the connection being emitted
  std::vector<detail::extent_table> extent_tables_;  // zero-copy send queues (preallocated)
  std::uint32_t extent_free_ = detail::no_slot;      // free tables, linked by next_free
  detail::id_list budget_wait_;        // connections whose send() found no budget for a ring
  detail::id_list extent_wait_;        // connections whose send_external() found no extent table
  std::uint32_t tso_chain_bytes_ = 0;  // most payload a TSO chain of the pool's buffers holds
  sip_key cookie_key_{};               // SYN cookies: each period's key derives from it
  std::vector<detail::cookie_synack> cookie_synacks_;  // a ring: SYN-ACKs owed without state
  std::uint32_t cookie_head_ = 0, cookie_count_ = 0;
  std::vector<detail::sack_scoreboard> scoreboards_;  // SACK scoreboards (preallocated)
  std::uint32_t scoreboard_free_ = detail::no_slot;
  wire::ipv4_address confirmed_hop_{};  // the next hop ACK progress last confirmed to ARP, when
  time_ns confirmed_at_ = 0;
  std::uint64_t challenge_second_ = UINT64_MAX;  // the second challenge_left_ is for (now / 1 s)
  std::uint32_t challenge_left_ = 0;             // challenge ACKs still allowed in it
  tcp_counters counters_{};
};

}  // namespace dpdk_net::stack

template <>
struct std::is_error_code_enum<dpdk_net::stack::tcp_errc> : std::true_type {};
