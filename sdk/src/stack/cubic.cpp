// RFC 9438 CUBIC, in integer arithmetic only. Floating point (and libm's cbrt) may round
// differently between compilers, flags and CPUs; a congestion window that depends on the build
// would make simulator runs irreproducible, so every quantity here is an integer with its scale
// stated. Window growth is time-based (W_cubic(t)), and time comes only from `now`.
//
// Scales:
//   windows            bytes (cc_state.cwnd, W_max, cwnd_prior, W_cubic, target)
//   W_est              bytes * 2^16 (48.16 fixed point): its growth per ACK is a few bytes,
//                      its fraction matters
//   cwnd growth        carried below one byte in 1/65536 bytes (cubic_state::cwnd_frac)
//   time               nanoseconds in (now, srtt, epoch); microseconds inside W_cubic and K,
//                      where t^3 must fit 128 bits: |t - K| <= 2^32 us (71 min) gives
//                      t^3 * 2 * MSS < 2^113
//   C = 0.4 = 2/5 segments/s^3, beta_cubic = 0.7 = 7/10, alpha_cubic = 3(1-beta)/(1+beta) = 9/17,
//   fast convergence (1+beta)/2 = 17/20 — all exact ratios.
//
// In bytes and microseconds, Figure 1 (W_cubic(t) = C (t - K)^3 + W_max, segments and seconds)
// becomes W_cubic = W_max + 2 * MSS * (t_us - K_us)^3 / (5 * 10^18), and Figure 2
// (K = cbrt((W_max - cwnd_epoch) / C)) becomes K_us = cbrt((W_max - cwnd_epoch) * 5 * 10^18 /
// (2 * MSS)).
#include <algorithm>
#include <bit>

#include "dpdk_net/stack/congestion.hpp"

namespace dpdk_net::stack {

namespace detail {

std::uint64_t integer_cbrt(uint128 x) noexcept {
  // Bit by bit, most significant first (the root of a 128-bit number has at most 43 bits):
  // with y the root so far, appending bit 1 adds (2y+1)^3 - (2y)^3 = 3*2y*(2y+1) + 1 to the
  // cube, scaled to the digit's position.
  uint128 y = 0;
  for (int s = 126; s >= 0; s -= 3) {
    y <<= 1;
    const uint128 step = 3 * y * (y + 1) + 1;  // < 3 * 2^86: no overflow
    if ((x >> s) >= step) {
      x -= step << s;
      y += 1;
    }
  }
  return static_cast<std::uint64_t>(y);
}

cubic_state cubic_state_of(const cc_state& s) noexcept {
  return std::bit_cast<cubic_state>(s.algorithm);
}

}  // namespace detail

namespace {

using detail::cubic_state;
using detail::uint128;

constexpr std::uint64_t us_per_s3 = 1'000'000'000'000'000'000ULL;  // (10^6 us/s)^3
constexpr std::uint64_t max_window = UINT32_MAX / 2;               // our "infinite" window
constexpr std::uint64_t max_offset_us = UINT32_MAX;                // |t - K| clamp (71 min)

void store(cc_state& s, const cubic_state& c) noexcept {
  s.algorithm = std::bit_cast<decltype(s.algorithm)>(c);
}

/// W_cubic(t) in bytes (Figure 1), t in microseconds since the epoch.
std::uint64_t w_cubic(const cubic_state& c, std::uint64_t t_us, std::uint32_t mss) noexcept {
  const bool before_k = t_us < c.k_us;
  const std::uint64_t offset = std::min(before_k ? c.k_us - t_us : t_us - c.k_us, max_offset_us);
  const uint128 cube = uint128{offset} * offset * offset;
  const uint128 delta = cube * (2 * uint128{mss}) / (5 * uint128{us_per_s3});
  if (before_k) {
    return delta >= c.w_max ? 0 : c.w_max - static_cast<std::uint64_t>(delta);
  }
  return static_cast<std::uint64_t>(std::min<uint128>(c.w_max + delta, max_window));
}

/// RFC 9438 4.6 (with 4.7): the reduction shared by fast retransmit and timeout.
void reduce(cc_state& s, cubic_state& c, std::uint32_t flight, std::uint32_t mss) noexcept {
  // 4.7 fast convergence: a window that stopped below the last W_max means a new flow is
  // taking bandwidth; plateau lower to release some.
  c.w_max = s.cwnd < c.w_max ? static_cast<std::uint32_t>(std::uint64_t{s.cwnd} * 17 / 20) : s.cwnd;
  c.cwnd_prior = s.cwnd;
  // 4.6: ssthresh = flight_size * beta_cubic. The RFC allows cwnd instead only with other means
  // of keeping an application-limited window from growing, which the engine does not have yet.
  s.ssthresh = std::max(static_cast<std::uint32_t>(std::uint64_t{flight} * 7 / 10), 2 * mss);
  c.flags = 0;  // the next congestion-avoidance stage starts a new epoch
  c.cwnd_frac = 0;
  s.acked_in_ca = 0;
}

class cubic_controller final : public congestion_controller {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "cubic"; }

  void init(cc_state& s, std::uint32_t mss,
            std::uint32_t initial_segments) const noexcept override {
    new_reno().init(s, mss, initial_segments);  // the same initial window (RFC 9438 4.10)
    store(s, cubic_state{});
  }

  void on_ack(cc_state& s, std::uint32_t acked, std::uint32_t mss, time_ns now,
              time_ns srtt) const noexcept override {
    cubic_state c = detail::cubic_state_of(s);
    if (s.cwnd < s.ssthresh) {
      // Slow start (4.10), as NewReno's: min(acked, 2 SMSS) per ACK.
      s.cwnd += std::min(acked, 2 * mss);
      c.flags &= static_cast<std::uint8_t>(~cubic_state::in_epoch);
      store(s, c);
      return;
    }
    if ((c.flags & cubic_state::in_epoch) == 0) {
      begin_epoch(s, c, mss, now);
    }
    const std::uint64_t t_us = (now > c.epoch_start ? now - c.epoch_start : 0) / 1000;
    const std::uint64_t cwnd = s.cwnd;
    // 4.3: W_est grows by alpha_cubic segments per window acknowledged; alpha_cubic = 9/17
    // until W_est reaches cwnd_prior, then 1 (Reno's own rate).
    const bool reno_rate = c.w_est >= (std::uint64_t{c.cwnd_prior} << 16);
    const uint128 est_step = uint128{mss} * acked * (reno_rate ? 17 : 9) * 65536 /
                             (17 * std::max<std::uint64_t>(cwnd, 1));
    c.w_est = static_cast<std::uint64_t>(
        std::min<uint128>(c.w_est + est_step, uint128{max_window} << 16));
    const std::uint64_t w_est = c.w_est >> 16;
    std::uint64_t next = cwnd;
    if (w_cubic(c, t_us, mss) < w_est) {
      // 4.3 Reno-friendly region: cwnd = W_est (never shrinking it on an ACK).
      next = std::max(cwnd, w_est);
    } else {
      // 4.4 concave / 4.5 convex: toward target = W_cubic(t + RTT), clamped to
      // [cwnd, 1.5 cwnd] (4.2), by (target - cwnd) / cwnd per segment acknowledged (in bytes:
      // (target - cwnd) * acked / cwnd), fractions carried.
      const std::uint64_t ahead = w_cubic(c, t_us + srtt / 1000, mss);
      const std::uint64_t target = std::clamp(ahead, cwnd, cwnd + cwnd / 2);
      const uint128 growth =
          (uint128{target - cwnd} * acked << 16) / std::max<std::uint64_t>(cwnd, 1) +
          c.cwnd_frac;  // bytes * 2^16
      next = cwnd + static_cast<std::uint64_t>(growth >> 16);
      c.cwnd_frac = static_cast<std::uint16_t>(growth & 0xffff);
    }
    s.cwnd = static_cast<std::uint32_t>(std::min(next, max_window));
    store(s, c);
  }

  void on_fast_retransmit(cc_state& s, std::uint32_t flight, std::uint32_t mss,
                          time_ns /*now*/) const noexcept override {
    cubic_state c = detail::cubic_state_of(s);
    reduce(s, c, flight, mss);  // the engine sets cwnd from ssthresh (fast recovery)
    store(s, c);
  }

  void on_timeout(cc_state& s, std::uint32_t flight, std::uint32_t mss,
                  time_ns /*now*/) const noexcept override {
    cubic_state c = detail::cubic_state_of(s);
    reduce(s, c, flight, mss);  // 4.8: ssthresh as on a fast retransmit ...
    s.cwnd = mss;               // ... cwnd as Reno's (the loss window, RFC 5681 3.1)
    c.flags = cubic_state::after_timeout;
    store(s, c);
  }

 private:
  /// The first ACK of a congestion-avoidance stage: t_epoch, K (Figure 2) and W_est.
  static void begin_epoch(const cc_state& s, cubic_state& c, std::uint32_t mss,
                          time_ns now) noexcept {
    const std::uint32_t cwnd_epoch = s.cwnd;
    c.epoch_start = now;
    c.cwnd_frac = 0;
    if ((c.flags & cubic_state::after_timeout) != 0 || c.w_max <= cwnd_epoch) {
      // 4.8: the first stage after a timeout uses K = 0 and W_max = cwnd_epoch. A window
      // already at or past W_max (no loss yet, or W_max lowered by fast convergence below
      // where the window restarted) has no plateau ahead either: convex from here.
      c.w_max = cwnd_epoch;
      c.k_us = 0;
    } else {
      const uint128 radicand =
          uint128{c.w_max - cwnd_epoch} * (5 * uint128{us_per_s3}) / (2 * uint128{mss});
      c.k_us = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(detail::integer_cbrt(radicand), max_offset_us));
    }
    c.w_est = std::uint64_t{cwnd_epoch} << 16;
    c.flags = cubic_state::in_epoch;
  }
};

const cubic_controller cubic_instance;

}  // namespace

const congestion_controller& cubic() noexcept {
  return cubic_instance;
}

}  // namespace dpdk_net::stack
