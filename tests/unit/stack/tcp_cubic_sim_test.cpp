// RFC 9438 CUBIC end to end: two of our stacks in the simulator on a long fat path whose
// bottleneck queue overflows, so the sender sees a sawtooth of losses, and the same path under
// NewReno for comparison. The controller alone against the RFC's numbers is tcp_cubic_test.cpp;
// this is the whole loop (ACK clock, delayed ACKs, limited transmit, RFC 6582 recovery, a queue
// that lengthens the RTT) seen from outside through tcp_info, as an application would.
//
// The path: 24 Mbit/s, 50 ms each way (RTT 100 ms), a drop-tail queue of 100 frames at the
// bottleneck: BDP 300 KB = 198 full frames, so the window that fills the pipe and the queue is
// about 300 segments: a long fat network in RFC 7323's sense (the window needs scaling). CUBIC's
// window is a function of windows in segments, the RTT and time, not of the rate itself; this
// rate keeps the run short under ASan (~1 s per algorithm) where 100 Mbit/s at this RTT would be
// windows of ~1200 segments and 10 s stages.
//
// Slow start is ended by one scripted loss (the 190th data segment, window ~200): without
// HyStart++ (RFC 9406, not implemented) slow start would overshoot the queue by half a window,
// and NewReno recovery without SACK repairs one hole per RTT, so that would be a test of recovery
// from a hundred losses, not of the window's shape. Every later loss is the queue's own: the
// window climbs past 300, the queue overflows, and so on (3 stages in 26 s of simulated time).
//
// The reference is RFC 9438 in double precision, written here from the RFC (never from cubic.cpp):
//   4.6  ssthresh = flight * beta, beta = 0.7 (checked to the byte at each loss);
//   4.7  W_max = cwnd at the loss, or cwnd * (1 + beta) / 2 if that is below the previous W_max
//        (fast convergence: the run has one loss of each kind, checked);
//   4.2  W_cubic(t) = C (t - K)^3 + W_max, C = 0.4, K = cbrt((W_max - cwnd_epoch) / C), t from
//        the first ACK after recovery (when the engine has deflated cwnd to ssthresh = cwnd_epoch);
//   4.3  W_est grows alpha = 3(1 - beta)/(1 + beta) = 9/17 segments per RTT; on this path it stays
//        below W_cubic at every sample (checked), so the curve alone decides the window.
// The sender's tcp_info is sampled every millisecond (to see each loss and the end of recovery),
// and compared with W_cubic(t) once per RTT.
//
// Tolerance: |cwnd - W_cubic(t)| <= 2 % of W_cubic(t) + 1 segment. Why: the window is
// ACK-clocked (it moves once per ACK, a window of ACKs per RTT), and the RFC's per-ACK rule
// (4.4/4.5) steers toward W_cubic(t + RTT), not W_cubic(t), so the window may lead or lag the
// curve by up to one RTT of the curve's own growth: largest just after a loss, where the curve is
// steepest (3 C K^2 = 33 to 45 segments/s here: 3 to 4.5 segments, 2 %, in a 100 ms RTT; near the
// top of the sawtooth the queue stretches the RTT to 150 ms, but there the curve is flat). The
// segment covers observing from outside: cwnd at the loss is read up to 1 ms before the fast
// retransmit, which in slow start is about a segment, and the controller's integers round below a
// byte. Measured worst: 0.17 % (0.26 segments, at 0.5 s into the first stage); the lead and the
// lag nearly cancel. The band still tells RFC 9438 from near misses: the same samples against a
// reference with C = 0.3 or 0.5, or without fast convergence, fall 6 to 7 bands outside it
// (checked, so a loosened tolerance cannot quietly stop testing anything).
//
// Deterministic: no random faults are configured, so the network's seed draws nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "dpdk_net/sim/network.hpp"
#include "tcp_sim_app.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_cubic_sim_test {

// --- RFC 9438, in double precision ------------------------------------------------------------

constexpr double rfc_c = 0.4;                                      // 4.1: segments / s^3
constexpr double rfc_beta = 0.7;                                   // 4.1: beta_cubic
constexpr double rfc_alpha = 3 * (1 - rfc_beta) / (1 + rfc_beta);  // 4.3: 9/17

/// The constants a reference is built with: RFC 9438's, or deliberately wrong ones (to show that
/// the tolerance would notice them).
struct rfc_model {
  double c = rfc_c;
  bool fast_convergence = true;
};

/// One congestion-avoidance stage after a loss (segments, seconds since the stage began).
struct rfc_stage {
  double c = rfc_c;
  double w_max = 0;       ///< 4.7
  double cwnd_epoch = 0;  ///< cwnd when the stage began (= ssthresh after recovery)
  double cwnd_prior = 0;  ///< 4.6: cwnd when the reduction began (W_est's switch to alpha 1)
  double k = 0;           ///< Figure 2

  /// 4.6 + 4.7: the stage after a loss at `cwnd_at_loss`, the previous stage's W_max being
  /// `previous_w_max` (0: none).
  static rfc_stage after_loss(double cwnd_at_loss, double previous_w_max, double cwnd_epoch,
                              const rfc_model& m = {}) {
    rfc_stage s;
    s.c = m.c;
    const bool converge = m.fast_convergence && cwnd_at_loss < previous_w_max;
    s.w_max = converge ? cwnd_at_loss * (1 + rfc_beta) / 2 : cwnd_at_loss;
    s.cwnd_epoch = cwnd_epoch;
    s.cwnd_prior = cwnd_at_loss;
    s.k = std::cbrt((s.w_max - cwnd_epoch) / s.c);
    return s;
  }
  /// Figure 1.
  [[nodiscard]] double w_cubic(double t) const { return c * (t - k) * (t - k) * (t - k) + w_max; }
  /// Figure 4 integrated over time at one ACKed window per `rtt` (alpha until cwnd_prior, then
  /// 1): an upper bound when `rtt` is the path's shortest RTT.
  [[nodiscard]] double w_est(double t, double rtt) const {
    const double rounds = t / rtt;
    const double to_prior = (cwnd_prior - cwnd_epoch) / rfc_alpha;
    return rounds <= to_prior ? cwnd_epoch + rfc_alpha * rounds : cwnd_prior + (rounds - to_prior);
  }
};

// --- the path ------------------------------------------------------------------------------------

constexpr std::uint64_t bottleneck_bps = 24'000'000;
constexpr time_ns one_way = 50 * millisecond;
constexpr time_ns base_rtt = 2 * one_way;
constexpr std::size_t bottleneck_queue = 100;   // frames
constexpr std::uint64_t slow_start_drop = 190;  // the data segment lost to end slow start
constexpr double tolerance = 0.02;              // of W_cubic(t), plus one segment (see the top)

/// What the sender's tcp_info said at one instant (windows in segments).
struct sample {
  time_ns at = 0;
  double cwnd = 0, ssthresh = 0, flight = 0;
  std::uint32_t cwnd_bytes = 0, ssthresh_bytes = 0, flight_bytes = 0;
  time_ns srtt = 0;
  std::uint64_t fast_retransmits = 0, rto_expirations = 0;
};

/// A client streaming to a sink over the bottleneck (data direction) and an uncongested return
/// path for the ACKs.
class bottleneck_path {
 public:
  explicit bottleneck_path(congestion_algorithm algorithm) : net_(1) {
    sim::host& ch = net_.add_host("client");
    sim::host& sh = net_.add_host("server");
    sim::sim_nic& cn = net_.add_nic(ch);
    sim::sim_nic& sn = net_.add_nic(sh);
    sim::link_config data;
    data.delay = one_way;
    data.bandwidth_bps = bottleneck_bps;
    data.queue_limit = bottleneck_queue;
    sim::link_config acks = data;
    acks.queue_limit = 4096;
    sim::sim_link& l = net_.connect(cn, sn, data, acks);
    data_ = &l.from(cn);
    sim::link_rule drop;
    drop.description = "one data segment in slow start";
    drop.match = [](const wire::decoded_frame& f) { return f.tcp && !f.payload.empty(); };
    drop.nth = slow_start_drop;
    data_->add_rule(std::move(drop));
    auto config = [](wire::ipv4_address a) {
      stack_config c;
      c.address = a;
      c.tcp.send_buffer = c.tcp.receive_buffer = 4 << 20;  // never the limit: 14 x the window
      // The curve after RFC 6582 recovery; under RFC 6675 (SACK) recovery the window lags the
      // curve by up to ~10 segments in the second stage (an open question, in the issue 11
      // closing note), which is the recovery's doing, not the controller's.
      c.tcp.sack = false;
      return c;
    };
    test::tcp_app_options options;
    options.socket.congestion = algorithm;  // the client's; the sink only acknowledges
    client_ = std::make_unique<test::tcp_app>(ch, cn, config(client_ip), options);
    server_ = std::make_unique<test::tcp_app>(sh, sn, config(server_ip), options);
    server_->listen(test::transfer_port, test::stream_role{});
    test::stream_role source;
    source.send_bytes = std::uint64_t{1} << 40;  // never runs out: the window is the limit
    source.send_seed = test::client_stream_seed;
    client_->connect(tcp_endpoint{server_ip, test::transfer_port}, source);
  }

  /// Runs until `until` (simulated) or until `stop` holds for the newest sample, sampling the
  /// client's tcp_info every millisecond.
  void run(time_ns until, const std::function<bool(const sample&)>& stop = {}) {
    while (net_.now() < until) {
      net_.run_for(millisecond);
      const auto& records = client_->records();
      if (records.empty()) {
        continue;
      }
      const std::optional<tcp_info> i = client_->tcp().info(records.front().socket);
      if (!i || i->mss == 0 || i->cwnd == 0) {
        continue;  // not established yet
      }
      const double mss = i->mss;
      samples_.push_back({net_.now(), i->cwnd / mss, i->ssthresh / mss, i->in_flight / mss, i->cwnd,
                          i->ssthresh, i->in_flight, i->srtt, i->fast_retransmits,
                          i->rto_expirations});
      if (stop && stop(samples_.back())) {
        return;
      }
    }
  }
  [[nodiscard]] const std::vector<sample>& samples() const noexcept { return samples_; }
  [[nodiscard]] const sim::link_counters& bottleneck() const noexcept { return data_->counters(); }
  [[nodiscard]] std::vector<std::string> problems() const {
    std::vector<std::string> all = client_->problems;
    all.insert(all.end(), server_->problems.begin(), server_->problems.end());
    return all;
  }

 private:
  static inline const auto client_ip = wire::ipv4_address::from_octets(198, 18, 0, 1);
  static inline const auto server_ip = wire::ipv4_address::from_octets(198, 18, 0, 2);
  sim::network net_;
  sim::link_model* data_ = nullptr;
  std::unique_ptr<test::tcp_app> client_, server_;
  std::vector<sample> samples_;
};

/// A fast retransmit seen in the samples, and the stage after it.
struct loss_event {
  std::size_t detected = 0;          ///< first sample after the fast retransmit
  double cwnd_at_loss = 0;           ///< the last sample before it (<= 1 ms earlier)
  std::optional<std::size_t> stage;  ///< first sample after recovery (cwnd deflated)
  std::size_t stage_end = 0;         ///< first sample of the next event (or the end)
};

std::vector<loss_event> loss_events(const std::vector<sample>& s) {
  std::vector<loss_event> out;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i].fast_retransmits != s[i - 1].fast_retransmits) {
      out.push_back({i, s[i - 1].cwnd, std::nullopt, s.size()});
    }
  }
  for (std::size_t e = 0; e < out.size(); ++e) {
    const std::size_t end = e + 1 < out.size() ? out[e + 1].detected : s.size();
    out[e].stage_end = end;
    // Recovery inflates cwnd to ssthresh + 3 SMSS and more (RFC 5681 3.2); the full ACK
    // deflates it to ssthresh (RFC 6582 3.2 (6)), where the stage begins.
    for (std::size_t i = out[e].detected; i < end; ++i) {
      if (s[i].cwnd <= s[i].ssthresh + 1) {
        out[e].stage = i;
        break;
      }
    }
  }
  return out;
}

double seconds(time_ns t) {
  return static_cast<double>(t) / 1e9;
}

/// The CUBIC run both tests read (deterministic; built once).
const bottleneck_path& cubic_run() {
  static const auto path = [] {
    auto p = std::make_unique<bottleneck_path>(congestion_algorithm::cubic);
    p->run(26 * second);
    return p;
  }();
  return *path;
}

/// One RTT sample of a stage against the reference.
struct comparison {
  std::size_t stage = 0;
  double t = 0;         ///< seconds since the stage began
  double cwnd = 0;      ///< segments
  double expected = 0;  ///< W_cubic(t)
  double w_est = 0;     ///< 4.3's W_est bound
  rfc_stage ref;
  [[nodiscard]] double error() const { return std::abs(cwnd - expected); }
  [[nodiscard]] double allowed() const { return tolerance * expected + 1; }
};

/// Every stage after a loss (to the next loss or the end), one sample per RTT from its start,
/// against the reference built with `m`.
std::vector<comparison> compare(const std::vector<sample>& s, const std::vector<loss_event>& events,
                                const rfc_model& m) {
  std::vector<comparison> out;
  double previous_w_max = 0;
  for (std::size_t e = 0; e < events.size() && events[e].stage; ++e) {
    const loss_event& ev = events[e];
    const sample& start = s[*ev.stage];
    const rfc_stage ref = rfc_stage::after_loss(ev.cwnd_at_loss, previous_w_max, start.ssthresh, m);
    for (std::size_t i = *ev.stage; i < ev.stage_end; ++i) {
      const time_ns since = s[i].at - start.at;
      if (since % base_rtt == 0) {
        const double t = seconds(since);
        out.push_back({e, t, s[i].cwnd, ref.w_cubic(t), ref.w_est(t, seconds(base_rtt)), ref});
      }
    }
    previous_w_max = ref.w_max;
  }
  return out;
}

/// The largest error in units of the allowed band (above 1: outside it).
double worst_in_bands(const std::vector<comparison>& cs) {
  double worst = 0;
  for (const comparison& c : cs) {
    worst = std::max(worst, c.error() / c.allowed());
  }
  return worst;
}

// --- CUBIC: the sawtooth follows the curve ----------------------------------------------------

TEST(TcpCubicSim, BottleneckSawtoothFollowsTheRfc9438CurveEveryRtt) {
  const bottleneck_path& path = cubic_run();
  const std::vector<sample>& s = path.samples();
  ASSERT_FALSE(s.empty());
  EXPECT_TRUE(path.problems().empty()) << path.problems().front();
  EXPECT_EQ(s.back().rto_expirations, 0U) << "every loss repaired by fast retransmit";
  EXPECT_EQ(path.bottleneck().dropped_rule, 1U);
  EXPECT_GT(path.bottleneck().dropped_queue, 0U) << "the queue never overflowed";
  const std::vector<loss_event> events = loss_events(s);
  ASSERT_GE(events.size(), 3U) << "the scripted loss and at least two of the queue's";
  for (std::size_t e = 0; e < events.size(); ++e) {
    const loss_event& ev = events[e];
    const sample& at = s[ev.detected];
    // 4.6: ssthresh = flight * beta_cubic, the flight when the third duplicate arrived (nothing
    // new is sent in the millisecond after it: the inflated window is still below the flight).
    EXPECT_NEAR(at.ssthresh_bytes, std::floor(at.flight_bytes * rfc_beta), 1.0)
        << "loss " << e << " at " << seconds(at.at) << " s: flight " << at.flight_bytes;
    // Limited transmit (RFC 3042) sent two segments past the window on the first duplicates.
    EXPECT_NEAR(at.flight, ev.cwnd_at_loss + 2, 1.0) << "loss " << e;
    EXPECT_TRUE(ev.stage || e == events.size() - 1) << "recovery never ended after loss " << e;
  }

  const std::vector<comparison> cs = compare(s, events, {});
  std::vector<double> worst(events.size(), 0.0);
  for (const comparison& c : cs) {
    EXPECT_LE(c.error(), c.allowed())
        << "stage " << c.stage << ", t = " << c.t << " s: cwnd " << c.cwnd << ", W_cubic "
        << c.expected << " (W_max " << c.ref.w_max << ", cwnd_epoch " << c.ref.cwnd_epoch << ", K "
        << c.ref.k << " s)";
    EXPECT_LE(c.w_est, c.expected + 1e-9)
        << "stage " << c.stage << ", t = " << c.t << " s: the Reno-friendly region (4.3) decides";
    worst[c.stage] = std::max(worst[c.stage], c.error() / c.expected);
  }
  EXPECT_GT(cs.size(), 150U);
  std::size_t fast_convergence = 0;
  double previous_w_max = 0;
  for (std::size_t e = 0; e < events.size() && events[e].stage; ++e) {
    const rfc_stage ref =
        rfc_stage::after_loss(events[e].cwnd_at_loss, previous_w_max, s[*events[e].stage].ssthresh);
    const bool converged = events[e].cwnd_at_loss < previous_w_max;
    fast_convergence += converged ? 1 : 0;
    std::printf(
        "CUBIC stage %zu: loss at %.3f s, cwnd %.2f -> W_max %.2f%s, cwnd_epoch %.2f, K %.3f s, "
        "worst deviation %.2f %%\n",
        e, seconds(s[events[e].detected].at), events[e].cwnd_at_loss, ref.w_max,
        converged ? " (fast convergence)" : "", ref.cwnd_epoch, ref.k, 100 * worst[e]);
    previous_w_max = ref.w_max;
  }
  EXPECT_GE(fast_convergence, 1U) << "no loss below the previous W_max: 4.7 not exercised";
  EXPECT_LT(fast_convergence, events.size()) << "every loss below W_max: the plateau not reached";
  std::printf(
      "CUBIC: %zu losses (%lu queue drops), %zu RTT samples, worst %.2f of the band "
      "(%.0f %% + 1 segment)\n",
      events.size(), static_cast<unsigned long>(path.bottleneck().dropped_queue), cs.size(),
      worst_in_bands(cs), 100 * tolerance);

  // The band is narrow enough to tell RFC 9438 from near misses: the same samples against a
  // reference with another C, or without fast convergence, fall outside it.
  const double c_low = worst_in_bands(compare(s, events, {.c = 0.3}));
  const double c_high = worst_in_bands(compare(s, events, {.c = 0.5}));
  const double no_convergence = worst_in_bands(compare(s, events, {.fast_convergence = false}));
  EXPECT_GT(c_low, 1.0) << "C = 0.3 would pass as well";
  EXPECT_GT(c_high, 1.0) << "C = 0.5 would pass as well";
  EXPECT_GT(no_convergence, 1.0) << "no fast convergence would pass as well";
  std::printf(
      "Against wrong references, in bands: C = 0.3: %.1f, C = 0.5: %.1f, no fast "
      "convergence: %.1f\n",
      c_low, c_high, no_convergence);
}

// --- NewReno on the same path -----------------------------------------------------------------

// The same path, the same scripted loss, NewReno: slow start is the same (RFC 9438 4.10), so the
// loss comes at the same window W_max; then RFC 5681 halves the window (ssthresh = flight / 2)
// and congestion avoidance adds one segment per RTT (byte counting: one SMSS per cwnd of bytes
// acknowledged), so W_max is back after (W_max - ssthresh) RTTs, ~10 s here, where CUBIC's
// curve is back at K - cbrt(1 / C) (within a segment of its plateau), ~4 s.
TEST(TcpCubicSim, NewRenoGrowsOneSegmentPerRttAndCubicRegainsWmaxSooner) {
  const std::vector<sample>& cubic = cubic_run().samples();
  const std::vector<loss_event> cubic_events = loss_events(cubic);
  ASSERT_FALSE(cubic_events.empty());
  ASSERT_TRUE(cubic_events[0].stage);
  const double w_max = cubic_events[0].cwnd_at_loss;  // the slow-start loss: no earlier W_max
  const double target = w_max - 1;                    // "W_max again": within one segment

  bottleneck_path reno_path(congestion_algorithm::new_reno);
  bool recovered = false;
  reno_path.run(40 * second, [&](const sample& x) {
    if (x.fast_retransmits == 0) {
      return false;
    }
    if (!recovered) {
      recovered = x.cwnd <= x.ssthresh + 1;
      return false;
    }
    return x.cwnd >= target;
  });
  const std::vector<sample>& reno = reno_path.samples();
  EXPECT_TRUE(reno_path.problems().empty()) << reno_path.problems().front();
  const std::vector<loss_event> reno_events = loss_events(reno);
  ASSERT_EQ(reno_events.size(), 1U) << "NewReno stays below the loss window: no other loss";
  const loss_event& ev = reno_events[0];
  ASSERT_TRUE(ev.stage) << "recovery never ended";
  const sample& at = reno[ev.detected];
  const sample& start = reno[*ev.stage];
  const sample& end = reno.back();
  EXPECT_EQ(ev.cwnd_at_loss, w_max) << "slow start differs between NewReno and CUBIC";
  // RFC 5681 (4): ssthresh = max(FlightSize / 2, 2 SMSS).
  EXPECT_NEAR(at.ssthresh_bytes, at.flight_bytes / 2.0, 1.0);
  ASSERT_GE(end.cwnd, target) << "NewReno did not get back to W_max within 40 s";
  EXPECT_EQ(end.rto_expirations, 0U);

  // Congestion avoidance: segments per RTT, the RTT being the mean smoothed RTT over the stage.
  double srtt_sum = 0;
  for (std::size_t i = *ev.stage; i < reno.size(); ++i) {
    srtt_sum += seconds(reno[i].srtt);
  }
  const double rtt = srtt_sum / static_cast<double>(reno.size() - *ev.stage);
  const double reno_time = seconds(end.at - start.at);
  const double per_rtt = (end.cwnd - start.cwnd) / (reno_time / rtt);
  EXPECT_NEAR(per_rtt, 1.0, 0.05) << "NewReno: segments per RTT in congestion avoidance";
  // Its linear growth predicts the time to W_max again: (target - ssthresh) RTTs.
  const double reno_predicted = (target - start.ssthresh) * rtt;
  EXPECT_NEAR(reno_time, reno_predicted, 0.05 * reno_predicted);

  // CUBIC after the same loss: the first sample of its stage at or above the target.
  const loss_event& cev = cubic_events[0];
  const sample& cstart = cubic[*cev.stage];
  std::optional<double> cubic_time;
  for (std::size_t i = *cev.stage; i < cev.stage_end; ++i) {
    if (cubic[i].cwnd >= target) {
      cubic_time = seconds(cubic[i].at - cstart.at);
      break;
    }
  }
  ASSERT_TRUE(cubic_time) << "CUBIC did not get back to W_max before its next loss";
  const rfc_stage ref = rfc_stage::after_loss(w_max, 0, cstart.ssthresh);
  // W_cubic(t) = W_max - 1 at t = K - cbrt(1 / C); the window aims one RTT ahead of the curve.
  const double cubic_predicted = ref.k - std::cbrt(1 / rfc_c);
  EXPECT_NEAR(*cubic_time, cubic_predicted, seconds(2 * base_rtt));
  std::printf(
      "W_max %.2f MSS: CUBIC back within a segment of it after %.2f s (RFC: %.2f s), NewReno "
      "after %.2f s (%.3f segments per RTT, RTT %.1f ms; predicted %.2f s)\n",
      w_max, *cubic_time, cubic_predicted, reno_time, per_rtt, rtt * 1e3, reno_predicted);
  EXPECT_LT(*cubic_time, reno_time);
  EXPECT_LT(*cubic_time, 0.6 * reno_time) << "on a long fat path CUBIC recovers much sooner";
}

}  // namespace tcp_cubic_sim_test
}  // namespace
}  // namespace dpdk_net::stack
