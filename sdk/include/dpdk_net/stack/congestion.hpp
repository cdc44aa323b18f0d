// Congestion control behind a small interface (RFC 5681 terms), so the algorithm is a choice:
// NewReno (congestion.cpp) and RFC 9438 CUBIC (cubic.cpp), selected per socket. Loss *recovery*
// (fast retransmit, RFC 6582 partial ACKs, window inflation) stays in the engine: every controller
// shares it and only decides the window's growth and its reduction on loss.
//
// Controllers are stateless singletons: a connection's state is a cc_state it owns (no
// allocation, no virtual object per connection).
#pragma once

#include <array>
#include <cstdint>

#include "dpdk_net/time.hpp"

namespace dpdk_net::stack {

struct cc_state {
  std::uint32_t cwnd = 0;         ///< bytes
  std::uint32_t ssthresh = 0;     ///< bytes
  std::uint32_t acked_in_ca = 0;  ///< congestion avoidance: bytes acknowledged toward +1 MSS
  std::array<std::uint64_t, 4> algorithm{};  ///< the controller's own state (CUBIC's epoch, ...)
};

class congestion_controller {
 public:
  virtual ~congestion_controller() = default;
  [[nodiscard]] virtual const char* name() const noexcept = 0;
  /// A new connection: the initial window (RFC 6928 / 5681 3.1) and an "infinite" ssthresh.
  virtual void init(cc_state& s, std::uint32_t mss,
                    std::uint32_t initial_segments) const noexcept = 0;
  /// New data acknowledged outside loss recovery.
  virtual void on_ack(cc_state& s, std::uint32_t acked, std::uint32_t mss, time_ns now,
                      time_ns srtt) const noexcept = 0;
  /// Entering fast recovery: sets ssthresh (the engine inflates cwnd from it).
  virtual void on_fast_retransmit(cc_state& s, std::uint32_t flight, std::uint32_t mss,
                                  time_ns now) const noexcept = 0;
  /// A retransmission timeout: ssthresh and the loss window (RFC 5681 3.1 (4), 7.2.1).
  virtual void on_timeout(cc_state& s, std::uint32_t flight, std::uint32_t mss,
                          time_ns now) const noexcept = 0;
};

/// RFC 5681 + RFC 6582's window rules: slow start by min(acked, 2 MSS) per ACK (RFC 3465's
/// L = 2 SMSS: stretch ACKs from coalescing receivers), congestion avoidance by one MSS per cwnd
/// acknowledged (byte counting, RFC 3465),
/// ssthresh = max(flight / 2, 2 MSS) on loss.
[[nodiscard]] const congestion_controller& new_reno() noexcept;

/// RFC 9438 CUBIC (C = 0.4, beta_cubic = 0.7) in integer arithmetic only: no libm, no floating
/// point, so a run gives the same windows on every build and machine. Slow start as NewReno's;
/// the cubic curve with its concave and convex regions (4.2), the Reno-friendly region (4.3),
/// multiplicative decrease (4.6), fast convergence (4.7), timeouts (4.8).
/// Not (yet): HyStart++ (RFC 9406) and undoing spurious reductions (4.9).
[[nodiscard]] const congestion_controller& cubic() noexcept;

namespace detail {

__extension__ typedef unsigned __int128 uint128;  // GCC/Clang; the SDK builds with nothing else

/// floor(cbrt(x)), exactly (bit by bit, no floating point).
[[nodiscard]] std::uint64_t integer_cbrt(uint128 x) noexcept;

/// CUBIC's per-connection state (RFC 9438 names), stored in cc_state::algorithm. Units: windows
/// in bytes, K in microseconds, the epoch in the caller's nanoseconds. 32 bytes: fits the four
/// words cc_state has always had, so no connection grows.
struct cubic_state {
  time_ns epoch_start = 0;       ///< t_epoch: when this congestion-avoidance stage began
  std::uint64_t w_est = 0;       ///< W_est (4.3), bytes in 48.16 fixed point (bytes * 2^16)
  std::uint32_t w_max = 0;       ///< W_max, bytes: the window before the last reduction (4.7)
  std::uint32_t k_us = 0;        ///< K, microseconds (up to 71 minutes; 4.2 Figure 2)
  std::uint32_t cwnd_prior = 0;  ///< cwnd when the last reduction began, bytes (4.6)
  std::uint16_t cwnd_frac = 0;   ///< cwnd's growth below one byte, 1/65536 bytes (carried)
  std::uint8_t flags = 0;        ///< in_epoch, after_timeout
  std::uint8_t reserved = 0;
  static constexpr std::uint8_t in_epoch = 1;       ///< epoch_start, K, W_est are set
  static constexpr std::uint8_t after_timeout = 2;  ///< next stage: K = 0, W_max = cwnd (4.8)
};
static_assert(sizeof(cubic_state) == sizeof(cc_state::algorithm));

/// The CUBIC state a connection's cc_state holds (for tests and diagnostics).
[[nodiscard]] cubic_state cubic_state_of(const cc_state& s) noexcept;

}  // namespace detail

}  // namespace dpdk_net::stack
