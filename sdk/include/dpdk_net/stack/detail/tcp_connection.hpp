// The TCP engine's internals: sequence arithmetic, the byte rings, a connection (one slab slot)
// and the compact TIME-WAIT record. Not API: the layout may change with any release.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <system_error>

#include "dpdk_net/stack/congestion.hpp"
#include "dpdk_net/stack/detail/tcp_syn_cookie.hpp"
#include "dpdk_net/stack/tcp.hpp"
#include "dpdk_net/timer_wheel.hpp"
#include "dpdk_net/wire/tcp.hpp"

namespace dpdk_net::stack::detail {

/// What a connection (or TIME-WAIT record) holds its local port for at the port coordinator.
namespace port_hold {
inline constexpr std::uint8_t bound = 1;    ///< bind/listen, or a child of a bound listener
inline constexpr std::uint8_t connect = 2;  ///< connect's ephemeral port
inline constexpr std::uint8_t child = 4;    ///< an accepted flow the hash steers elsewhere
}  // namespace port_hold

// RFC 9293 3.4: sequence numbers compare modulo 2^32.
[[nodiscard]] constexpr bool seq_lt(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) < 0;
}
[[nodiscard]] constexpr bool seq_le(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) <= 0;
}
[[nodiscard]] constexpr bool seq_gt(std::uint32_t a, std::uint32_t b) noexcept {
  return seq_lt(b, a);
}
[[nodiscard]] constexpr bool seq_ge(std::uint32_t a, std::uint32_t b) noexcept {
  return seq_le(b, a);
}
/// The timestamp clock (RFC 7323 5.4): milliseconds of the caller's `now` (a connection adds
/// its keyed offset).
[[nodiscard]] constexpr std::uint32_t ts_clock(time_ns now) noexcept {
  return static_cast<std::uint32_t>(now / millisecond);
}
[[nodiscard]] constexpr std::uint32_t seq_max(std::uint32_t a, std::uint32_t b) noexcept {
  return seq_lt(a, b) ? b : a;
}

/// A power-of-two byte ring addressed by position (position & mask; a receive ring's position is
/// the sequence number, a send ring's the sequence number less the external bytes before it):
/// 2^32 is a multiple of the size, so addressing survives wrap. The memory comes from the
/// tcp_layer's ring cache (under its budget) when first needed and goes back when drained: an
/// idle connection holds none.
class byte_ring {
 public:
  [[nodiscard]] bool allocated() const noexcept { return data_ != nullptr; }
  [[nodiscard]] std::uint32_t capacity() const noexcept { return size_; }
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  void attach(std::byte* data, std::uint32_t size) noexcept {
    data_ = data;
    size_ = size;
  }
  /// Gives the memory back to the caller (who returns it to the cache).
  std::byte* detach() noexcept {
    std::byte* d = data_;
    data_ = nullptr;
    size_ = 0;
    return d;
  }
  void write(std::uint32_t pos, std::span<const std::byte> in) noexcept;
  void read(std::uint32_t pos, std::span<std::byte> out) const noexcept;
  /// The contiguous bytes from pos: at most n, fewer where the ring wraps.
  [[nodiscard]] std::span<const std::byte> contiguous(std::uint32_t pos,
                                                      std::uint32_t n) const noexcept {
    const std::uint32_t at = pos & (size_ - 1);
    return {data_ + at, std::min(n, size_ - at)};
  }

 private:
  std::byte* data_ = nullptr;
  std::uint32_t size_ = 0;
};

/// One run of the send queue: the bytes [begin, end) of sequence space, either copied into the send
/// ring (ext null; ring position = seq - lag) or in an application's external buffer (at ext->data
/// + offset for the run's first byte).
struct send_extent {
  std::uint32_t begin = 0, end = 0;
  std::uint32_t lag_or_offset = 0;
  external_buffer* ext = nullptr;
};

/// The extents of a connection with zero-copy data queued (a ring of them, oldest first). Only
/// such connections have one: a copy-only send queue is one implicit ring run.
struct extent_table {
  static constexpr std::uint32_t capacity = 8;
  std::array<send_extent, capacity> runs{};
  std::uint32_t head = 0, count = 0;
  std::uint32_t next_free = UINT32_MAX;
  [[nodiscard]] send_extent& at(std::uint32_t i) noexcept { return runs[(head + i) % capacity]; }
  [[nodiscard]] const send_extent& at(std::uint32_t i) const noexcept {
    return runs[(head + i) % capacity];
  }
};

/// A parsed segment as the input functions see it.
struct tcp_segment_view {
  wire::tcp_header h;
  std::span<const std::byte> payload;
  wire::ipv4_address src{}, dst{};
  [[nodiscard]] std::uint32_t length() const noexcept {  // SEG.LEN: data + SYN + FIN
    return static_cast<std::uint32_t>(payload.size()) + (h.has(wire::tcp_flag::syn) ? 1U : 0U) +
           (h.has(wire::tcp_flag::fin) ? 1U : 0U);
  }
  [[nodiscard]] bool has(std::uint8_t f) const noexcept { return h.has(f); }
};

/// One out-of-order range [begin, end) held in the receive ring.
struct seq_range {
  std::uint32_t begin = 0, end = 0;
};

/// The ranges the peer SACKed above SND.UNA (RFC 6675's scoreboard), sorted, disjoint. Pooled
/// (tcp_config::sack_scoreboards), not in the connection's slot: only a connection receiving
/// SACK blocks holds one. Bounded: a hostile peer fragmenting it (the SACK-panic class) costs at
/// most `capacity` ranges, and every operation is O(capacity).
struct sack_scoreboard {
  static constexpr std::uint32_t capacity = 16;
  std::array<seq_range, capacity> ranges{};
  std::uint32_t count = 0;
  std::uint32_t next_free = UINT32_MAX;
};

enum class list_kind : std::uint8_t { none, half_open, accept_queue };

/// A socket: a listener or a connection. Lives in the tcp_layer's slab (stable address: its
/// timers are intrusive). Fields are grouped by use; see docs/tcp.md for the state machine.
struct tcp_connection {
  // identity
  tcp_state state = tcp_state::closed;
  bool in_use = false;
  bool attached = false;  // the application holds the id (false: orphaned by close())
  bool listening = false;
  bool bound = false;     // local_port counted in port_users_
  std::uint8_t held = 0;  // port_hold bits: what this connection holds its port for (coordinator)
  bool indexed = false;   // in the 4-tuple index
  std::uint16_t generation = 0;
  std::uint16_t local_port = 0, remote_port = 0;
  wire::ipv4_address remote{};
  std::uint64_t hash = 0;  // of the 4-tuple under the index key
  tcp_socket_options options{};
  std::error_code error;       // why it failed (sticky)
  std::error_code soft_error;  // an ICMP soft error, reported if the connection times out
  std::uint8_t events = 0;     // not yet handed out

  // listener
  std::uint32_t backlog = 0, half_open = 0, queued = 0;
  std::uint32_t half_open_head = no_slot, half_open_tail = no_slot;
  std::uint32_t accept_head = no_slot, accept_tail = no_slot;
  // child of a listener
  std::uint32_t parent = no_slot;
  std::uint32_t sibling_prev = no_slot, sibling_next = no_slot;
  list_kind list = list_kind::none;

  // send sequence space (RFC 9293 3.3.1)
  std::uint32_t iss = 0, snd_una = 0, snd_nxt = 0, snd_max = 0;
  std::uint32_t snd_wnd = 0, max_snd_wnd = 0, snd_wl1 = 0, snd_wl2 = 0;
  std::uint32_t sbuf_seq = 0;    // sequence number of the send ring's first byte
  std::uint32_t sbuf_len = 0;    // bytes in the send ring (unacknowledged + unsent)
  std::uint32_t recover = 0;     // RFC 6582
  std::uint32_t mss_peer = 536;  // what the peer announced (clamped)
  std::uint16_t mss_cap = 0;     // lowered by frag-needed (0: none)
  bool fin_queued = false;       // shutdown(send) or close: FIN after sbuf
  bool fin_acked = false;
  bool in_recovery = false;
  bool retransmit_one = false;  // fast retransmit / partial ACK: resend snd_una's segment
  std::uint32_t dup_acks = 0;
  byte_ring sbuf;
  // Zero-copy: external bytes are sequence space the ring skips; ring_lag is the external bytes
  // queued so far (mod 2^32), the lag of ring data appended now. extents: the connection's
  // extent table while external data is queued (no_slot: none, all data in the ring).
  std::uint32_t ring_lag = 0;
  std::uint32_t external_queued = 0;  // external bytes in the send queue
  std::uint32_t extents = no_slot;

  // receive sequence space
  std::uint32_t irs = 0, rcv_nxt = 0, read_seq = 0;  // read_seq: next byte the app reads
  std::uint32_t rcv_adv = 0;                         // right edge we advertised (never moved left)
  std::uint32_t last_ack_sent = 0;                   // RFC 7323 4.3 Last.ACK.sent
  std::uint32_t rcv_buffer = 0;     // capacity promised (the ring is allocated up to it)
  std::uint32_t unacked_bytes = 0;  // received since our last ACK (delayed-ACK rule)
  std::uint32_t rcv_mss = 536;      // largest segment seen from the peer ("full-sized")
  std::uint8_t ooo_count = 0;
  std::array<seq_range, 8> ooo{};
  bool fin_received = false;
  bool ooo_fin = false;
  std::uint32_t ooo_fin_seq = 0;
  bool read_shut = false;
  bool ack_now = false;            // an ACK is owed at the next emit
  std::uint8_t dup_acks_owed = 0;  // one per out-of-order segment (RFC 5681 4.2), not coalesced
  byte_ring rbuf;

  // options
  std::uint8_t snd_scale = 0, rcv_scale = 0;
  bool ws_ok = false;                  // both sides offered window scaling
  bool sack_ok = false;                // both sides offered SACK (RFC 2018)
  std::uint32_t scoreboard = no_slot;  // the SACK scoreboard in use (pooled, not in the slot)
  bool sack_recovery = false;          // this recovery episode is RFC 6675's (else RFC 6582's)
  std::uint32_t rescue_end = 0;        // one past RFC 6675 RescueRxt
  std::uint32_t high_rxt = 0;          // RFC 6675 HighRxt: highest sequence retransmitted
  std::uint32_t last_ooo = 0;          // start of the latest out-of-order segment (first block)
  bool ts_enabled = false, ts_recent_valid = false;
  std::uint32_t ts_recent = 0, ts_offset = 0;
  time_ns ts_recent_time = 0;

  // timing
  time_ns srtt = 0, rttvar = 0, rto = 0;
  unsigned backoff = 0;         // RTO exponent: kept until a valid RTT sample (Karn, RFC 6298 5)
  unsigned retries = 0;         // consecutive RTOs without progress (the retry limit)
  bool arp_unresolved = false;  // an RTO found the next hop still unresolved
  unsigned probes = 0;          // persist or keepalive probes without an answer
  bool rtt_timing = false;      // Karn: timing one segment (no timestamps)
  // Karn for timestamps: data below rtx_high was retransmitted at TSval rtx_tsval; an ACK of it
  // echoing an older TSval may answer either transmission (or echo a stale TS.Recent after a
  // lost ACK), so it gives no sample.
  bool rtx_ambiguous = false;
  std::uint32_t rtx_high = 0, rtx_tsval = 0;
  std::uint32_t rtt_seq = 0;
  time_ns rtt_start = 0;
  time_ns una_since = 0;       // when the oldest unacknowledged data was first sent
  time_ns last_receive = 0;    // keepalive
  time_ns close_deadline = 0;  // linger or FIN-WAIT-2 (0: none)
  bool persist = false;        // the retransmit timer runs as the persist timer
  bool send_probe = false;     // a window or keepalive probe is owed
  bool force_send = false;     // RFC 1122 4.2.3.4 override: send into a small window now
  bool used = false;           // connected (or accepted) once: a socket connects only once
  unsigned orphan_probes = 0;  // persist probes since close(): answered or not, they run out
  unsigned keepalive_probes = 0;
  tcp_layer* owner = nullptr;
  cc_state cc{};
  const congestion_controller* cc_algo = nullptr;
  timer retransmit_timer, ack_timer, idle_timer;

  // statistics
  std::uint64_t retransmits = 0, rto_expirations = 0, fast_retransmits = 0;
  std::uint64_t bytes_sent = 0, bytes_acked = 0, bytes_received = 0;

  [[nodiscard]] std::uint32_t flight() const noexcept { return snd_max - snd_una; }
  /// In-order bytes the application has not read (the FIN occupies a sequence number, not a
  /// byte).
  [[nodiscard]] std::uint32_t readable() const noexcept {
    return read_shut ? 0U : rcv_nxt - read_seq - (fin_received ? 1U : 0U);
  }
  [[nodiscard]] bool synchronized() const noexcept {
    return state != tcp_state::closed && state != tcp_state::listen && state != tcp_state::syn_sent;
  }
  [[nodiscard]] bool can_receive_data() const noexcept {
    return state == tcp_state::established || state == tcp_state::fin_wait_1 ||
           state == tcp_state::fin_wait_2 || state == tcp_state::syn_received;
  }
};

/// TIME-WAIT as a record of what answering the peer needs (RFC 9293 3.6.1; ~48 bytes instead of
/// a connection): the 4-tuple, our next sequence number, the peer's, and its timestamp state.
struct time_wait_record {
  wire::ipv4_address remote{};
  std::uint16_t local_port = 0, remote_port = 0;
  std::uint32_t snd_nxt = 0, rcv_nxt = 0;
  std::uint32_t ts_recent = 0, ts_offset = 0;
  bool ts_enabled = false;
  bool in_use = false;
  std::uint8_t held = 0;  // port_hold bits, kept from the connection (see tcp_layer::hold_port)
  std::uint8_t rcv_scale = 0;
  std::uint16_t window = 0;  // the raw window field our ACKs carry (the last one advertised)
  std::uint64_t hash = 0;
  time_ns expiry = 0;
};

}  // namespace dpdk_net::stack::detail
