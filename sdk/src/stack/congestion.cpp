// NewReno's window rules (RFC 5681 3.1, RFC 6582 3.2). The recovery procedure is the engine's.
#include "dpdk_net/stack/congestion.hpp"

#include <algorithm>

namespace dpdk_net::stack {

namespace {

class new_reno_controller final : public congestion_controller {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "newreno"; }

  void init(cc_state& s, std::uint32_t mss,
            std::uint32_t initial_segments) const noexcept override {
    // RFC 6928: IW = min(10 * MSS, max(2 * MSS, 14600)) for 10 segments; the general form
    // keeps the same 14600-byte cap per ten segments.
    const std::uint64_t cap = std::max<std::uint64_t>(2ULL * mss, 1460ULL * initial_segments);
    s.cwnd =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(1ULL * initial_segments * mss, cap));
    s.cwnd = std::max(s.cwnd, mss);
    s.ssthresh = UINT32_MAX / 2;  // "arbitrarily high" (RFC 5681 3.1)
    s.acked_in_ca = 0;
  }

  void on_ack(cc_state& s, std::uint32_t acked, std::uint32_t mss, time_ns /*now*/,
              time_ns /*srtt*/) const noexcept override {
    if (s.cwnd < s.ssthresh) {
      // Slow start: cwnd += min(N, L) with RFC 3465's L = 2 SMSS rather than RFC 5681's 1 SMSS:
      // receivers that coalesce ACKs per burst (ours, Linux with GRO) send stretch ACKs, and a
      // 1-SMSS limit would then grow the window by far less than once per RTT.
      s.cwnd += std::min(acked, 2 * mss);
      return;
    }
    // Congestion avoidance: one SMSS per cwnd of acknowledged bytes (RFC 5681 3.1, RFC 3465).
    s.acked_in_ca += acked;
    if (s.acked_in_ca >= s.cwnd) {
      s.acked_in_ca -= s.cwnd;
      s.cwnd += mss;
    }
  }

  void on_fast_retransmit(cc_state& s, std::uint32_t flight, std::uint32_t mss,
                          time_ns /*now*/) const noexcept override {
    s.ssthresh = std::max(flight / 2, 2 * mss);  // RFC 5681 (4)
    s.acked_in_ca = 0;
  }

  void on_timeout(cc_state& s, std::uint32_t flight, std::uint32_t mss,
                  time_ns /*now*/) const noexcept override {
    s.ssthresh = std::max(flight / 2, 2 * mss);
    s.cwnd = mss;  // the loss window (RFC 5681 3.1)
    s.acked_in_ca = 0;
  }
};

const new_reno_controller new_reno_instance;

}  // namespace

const congestion_controller& new_reno() noexcept {
  return new_reno_instance;
}

}  // namespace dpdk_net::stack
