#include "dpdk_net/sim/scheduler.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "../counting_allocator.hpp"
#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/sim/random.hpp"

namespace dpdk_net::sim {
namespace {
namespace scheduler_test {

TEST(Scheduler, RunsInTimeOrderAndFifoWithinATime) {
  scheduler s;
  std::vector<int> order;
  s.at(30, [&] { order.push_back(3); });
  s.at(10, [&] { order.push_back(1); });
  s.at(20, [&] { order.push_back(20); });
  s.at(20, [&] { order.push_back(21); });  // same time: after the one scheduled first
  s.at(10, [&] { order.push_back(2); });
  while (s.step()) {
  }
  EXPECT_EQ(order, (std::vector<int>{1, 2, 20, 21, 3}));
  EXPECT_EQ(s.now(), 30U);
  EXPECT_EQ(s.events_run(), 5U);
}

TEST(Scheduler, IdleTimeCostsNothing) {
  scheduler s;
  int ran = 0;
  s.at(3600 * second, [&] { ++ran; });
  s.run_until(7200 * second);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(s.events_run(), 1U);  // an hour of simulated idleness: one event, no ticks
  EXPECT_EQ(s.now(), 7200 * second);
}

TEST(Scheduler, EventsScheduledFromEventsAndInThePastRunAtNow) {
  scheduler s;
  std::vector<time_ns> times;
  s.at(100, [&] {
    times.push_back(s.now());
    s.at(50, [&] { times.push_back(s.now()); });  // "in the past": runs at 100, not 50
    s.after(10, [&] { times.push_back(s.now()); });
  });
  s.run_until(1000);
  EXPECT_EQ(times, (std::vector<time_ns>{100, 100, 110}));
}

TEST(Scheduler, CancelAndStaleIds) {
  scheduler s;
  int a = 0;
  int b = 0;
  const event_id ia = s.at(10, [&] { ++a; });
  s.at(20, [&] { ++b; });
  EXPECT_TRUE(s.cancel(ia));
  EXPECT_FALSE(s.cancel(ia));  // already cancelled
  EXPECT_EQ(s.pending(), 1U);
  // The cancelled slot is reused; the old id must not cancel the new event.
  int c = 0;
  s.at(15, [&] { ++c; });
  EXPECT_FALSE(s.cancel(ia));
  s.run_until(100);
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(c, 1);
  EXPECT_FALSE(s.cancel(event_id{}));
  EXPECT_EQ(s.next_event_time(), UINT64_MAX);
}

TEST(Scheduler, ClearDestroysCapturedStateWithoutRunningIt) {
  packet_pool_config pc;
  pc.count = 4;
  packet_pool pool(pc);
  scheduler s;
  bool ran = false;
  s.at(10, [&ran, p = pool.alloc()]() mutable { ran = true; });
  s.at(20, [&ran, p = pool.alloc()]() mutable { ran = true; });
  EXPECT_EQ(pool.available(), 2U);
  s.clear();
  EXPECT_FALSE(ran);
  EXPECT_EQ(pool.available(), 4U);  // the captured packets were freed
  EXPECT_EQ(s.pending(), 0U);
}

TEST(Scheduler, SteadyStateSchedulesWithoutAllocating) {
  scheduler s;
  std::uint64_t count = 0;
  struct tick {
    scheduler* s;
    std::uint64_t* count;
    void operator()() const {
      ++*count;
      s->after(1 + (*count % 7), tick{s, count});
    }
  };
  for (int i = 0; i < 64; ++i) {
    s.at(static_cast<time_ns>(i), tick{&s, &count});
  }
  s.run_until(10'000);  // warm-up: the heap and slot table reach their size
  const std::uint64_t before = dpdk_net::test::allocation_count();
  const std::uint64_t events_before = s.events_run();
  s.run_until(200'000);
  EXPECT_EQ(dpdk_net::test::allocation_count() - before, 0U);
  EXPECT_GT(s.events_run() - events_before, 100'000U);
}

TEST(Random, StreamsAreStableDistinctAndIndependent) {
  EXPECT_EQ(derive_seed(7, "link:a>b"), derive_seed(7, "link:a>b"));
  EXPECT_NE(derive_seed(7, "link:a>b"), derive_seed(7, "link:b>a"));
  EXPECT_NE(derive_seed(7, "link:a>b"), derive_seed(8, "link:a>b"));
  rng a(derive_seed(1, "x"));
  rng b(derive_seed(1, "x"));
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(a.next(), b.next());
  }
}

TEST(Random, DistributionsAreUniformWithinTolerance) {
  rng r(12345);
  constexpr int n = 100'000;
  std::array<int, 10> buckets{};
  int hits = 0;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++buckets[r.below(10)];
    hits += r.chance(0.25) ? 1 : 0;
  }
  for (int c : buckets) {
    EXPECT_NEAR(c, n / 10, n / 100);  // within 10 % of the expectation (>10 sigma)
  }
  EXPECT_NEAR(hits, n / 4, n / 100);
  EXPECT_EQ(r.below(0), 0U);
  EXPECT_FALSE(r.chance(0.0));
  EXPECT_TRUE(r.chance(1.0));
}

}  // namespace scheduler_test
}  // namespace
}  // namespace dpdk_net::sim
