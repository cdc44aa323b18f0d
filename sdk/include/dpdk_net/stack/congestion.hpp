// Congestion control behind a small interface (RFC 5681 terms), so the algorithm is a choice:
// NewReno here, CUBIC next (TCP at scale). Loss *recovery* (fast retransmit, RFC 6582 partial
// ACKs, window inflation) stays in the engine: every controller shares it and only decides the
// window's growth and its reduction on loss.
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

}  // namespace dpdk_net::stack
