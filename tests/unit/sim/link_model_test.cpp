// Each fault type's statistics over many frames match the configured rate.
#include "dpdk_net/sim/link_model.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace dpdk_net::sim {
namespace {
namespace link_model_test {

struct tally {
  int delivered = 0, dropped = 0, duplicated = 0, reordered = 0, corrupted = 0;
  std::vector<frame_fate> fates;
};

tally offer(link_model& m, int frames, time_ns gap = microsecond, std::size_t size = 100) {
  tally t;
  std::vector<fault_decision> applied;
  std::vector<std::byte> frame(size);
  for (int i = 0; i < frames; ++i) {
    const frame_fate f = m.decide(static_cast<time_ns>(i) * gap, frame.size(), frame, applied);
    t.fates.push_back(f);
    if (f.dropped) {
      ++t.dropped;
      continue;
    }
    ++t.delivered;
    t.duplicated += f.duplicated ? 1 : 0;
    t.reordered += f.reordered ? 1 : 0;
    t.corrupted += f.corrupted ? 1 : 0;
  }
  return t;
}

/// |observed - expected| within 5 standard deviations of a binomial(n, p).
void expect_rate(int observed, int n, double p, const char* what) {
  const double mean = n * p;
  const double sd = std::sqrt(n * p * (1 - p));
  EXPECT_NEAR(observed, mean, 5 * sd + 1) << what;
}

TEST(LinkModel, BernoulliLoss) {
  link_config c;
  c.loss = 0.1;
  link_model m("a>b", 0, c, 42);
  const tally t = offer(m, 20000);
  expect_rate(t.dropped, 20000, 0.1, "loss");
  EXPECT_EQ(m.counters().dropped_loss, static_cast<std::uint64_t>(t.dropped));
}

TEST(LinkModel, DuplicationReorderingCorruption) {
  link_config c;
  c.duplicate = 0.05;
  c.reorder = 0.08;
  c.corrupt = 0.02;
  link_model m("a>b", 0, c, 43);
  const tally t = offer(m, 20000);
  EXPECT_EQ(t.dropped, 0);
  expect_rate(t.duplicated, 20000, 0.05, "duplicate");
  expect_rate(t.reordered, 20000, 0.08, "reorder");
  expect_rate(t.corrupted, 20000, 0.02, "corrupt");
  for (std::size_t i = 0; i < t.fates.size(); ++i) {
    const frame_fate& f = t.fates[i];
    // Offered at i us; 10 us of delay; a reordered frame is held back 200 us more.
    EXPECT_EQ(f.deliver_at,
              i * microsecond + 10 * microsecond + (f.reordered ? 200 * microsecond : 0));
    if (f.duplicated) {
      EXPECT_GT(f.duplicate_at, f.deliver_at);
    }
    if (f.corrupted) {
      EXPECT_LT(f.corrupt_bit, 100U * 8U);
    }
  }
}

TEST(LinkModel, GilbertElliottBurstsHaveTheExpectedLength) {
  link_config c;
  c.burst_loss.p_good_to_bad = 0.01;
  c.burst_loss.p_bad_to_good = 0.25;  // mean burst length 4
  link_model m("a>b", 0, c, 44);
  const tally t = offer(m, 200000);
  int bursts = 0;
  bool in_burst = false;
  for (const frame_fate& f : t.fates) {
    if (f.dropped && !in_burst) {
      ++bursts;
    }
    in_burst = f.dropped;
  }
  ASSERT_GT(bursts, 100);
  const double mean_burst = static_cast<double>(t.dropped) / bursts;
  EXPECT_NEAR(mean_burst, 4.0, 0.6);
  // Stationary loss rate p_gb / (p_gb + p_bg) = 0.01 / 0.26.
  EXPECT_NEAR(static_cast<double>(t.dropped) / 200000, 0.01 / 0.26, 0.006);
}

TEST(LinkModel, DelayJitterAndSerialization) {
  link_config c;
  c.delay = 100 * microsecond;
  c.jitter = 10 * microsecond;
  link_model m("a>b", 0, c, 45);
  const tally t = offer(m, 5000, 0);
  time_ns lo = UINT64_MAX;
  time_ns hi = 0;
  for (const frame_fate& f : t.fates) {
    lo = std::min(lo, f.deliver_at);
    hi = std::max(hi, f.deliver_at);
  }
  EXPECT_GE(lo, 100 * microsecond);
  EXPECT_LE(hi, 110 * microsecond);
  EXPECT_GT(hi - lo, 9 * microsecond);  // the jitter is used

  link_config bw;
  bw.delay = 0;
  bw.bandwidth_bps = 1'000'000'000;  // 1500 bytes = 12 us on the wire
  bw.queue_limit = 10;
  link_model q("a>b", 0, bw, 46);
  const tally burst = offer(q, 20, 0, 1500);  // 20 frames at once
  // One transmits at once, ten wait, the rest are dropped at the tail.
  EXPECT_EQ(burst.delivered, 11);
  EXPECT_EQ(q.counters().dropped_queue, 9U);
  EXPECT_EQ(burst.fates[0].deliver_at, 12 * microsecond);
  EXPECT_EQ(burst.fates[10].deliver_at, 11 * 12 * microsecond);
}

TEST(LinkModel, OversizeAndRules) {
  link_config c;
  c.max_frame = 200;
  link_model m("a>b", 0, c, 47);
  std::vector<fault_decision> applied;
  std::vector<std::byte> big(201);
  EXPECT_TRUE(m.decide(0, big.size(), big, applied).dropped);
  EXPECT_EQ(m.counters().dropped_oversize, 1U);
  link_rule every_second;
  every_second.match = match::any();
  every_second.nth = 2;
  m.add_rule(every_second);
  std::vector<std::byte> small(60);
  EXPECT_FALSE(m.decide(0, small.size(), small, applied).dropped);
  EXPECT_TRUE(m.decide(0, small.size(), small, applied).dropped);  // the 2nd match only
  EXPECT_FALSE(m.decide(0, small.size(), small, applied).dropped);
  EXPECT_TRUE(applied.empty());  // scripted and deterministic faults are not random decisions
}

TEST(LinkModel, ScheduleReplacesDrawsWithoutShiftingAnythingElse) {
  link_config c;
  c.loss = 0.2;
  c.jitter = 50 * microsecond;
  link_model random_model("a>b", 3, c, 48);
  const tally r = offer(random_model, 1000);
  // Replay with only the first two losses of the random run.
  std::vector<fault_decision> keep;
  for (std::size_t i = 0; i < r.fates.size() && keep.size() < 2; ++i) {
    if (r.fates[i].dropped) {
      keep.push_back(fault_decision{3, i, fault::loss});
    }
  }
  const fault_schedule schedule(keep);
  link_model replay_model("a>b", 3, c, 48);
  replay_model.set_schedule(&schedule);
  const tally p = offer(replay_model, 1000);
  EXPECT_EQ(p.dropped, 2);
  for (std::size_t i = 0; i < r.fates.size(); ++i) {
    if (!r.fates[i].dropped && !p.fates[i].dropped) {
      ASSERT_EQ(p.fates[i].deliver_at, r.fates[i].deliver_at) << i;  // same jitter draws
    }
  }
}

TEST(LinkModel, SwarmConfigsVaryWithTheSeed) {
  int lossy = 0;
  int distinct_delays = 0;
  time_ns last = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const link_config c = link_config::swarm(seed);
    lossy += c.loss > 0 ? 1 : 0;
    EXPECT_LE(c.loss, 0.05);
    EXPECT_LE(c.corrupt, 0.01);
    distinct_delays += c.delay != last ? 1 : 0;
    last = c.delay;
    EXPECT_EQ(link_config::swarm(seed).delay, c.delay);  // a function of the seed
  }
  EXPECT_GT(lossy, 10);
  EXPECT_LT(lossy, 40);
  EXPECT_GT(distinct_delays, 40);
}

}  // namespace link_model_test
}  // namespace
}  // namespace dpdk_net::sim
