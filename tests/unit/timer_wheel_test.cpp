#include "dpdk_net/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "counting_allocator.hpp"

namespace dpdk_net {
namespace {
namespace timer_wheel_test {

struct recorder {
  std::vector<std::pair<int, time_ns>> fired;  // (id, now at firing)
};
struct tagged_timer {
  timer t;
  int id = 0;
  recorder* rec = nullptr;
  tagged_timer() {
    t.set_callback(
        [](timer& self, time_ns now) noexcept {
          auto* me = static_cast<tagged_timer*>(self.context());
          me->rec->fired.emplace_back(me->id, now);
        },
        this);
  }
};

TEST(TimerWheel, FiresAtItsTimeNeverEarly) {
  timer_wheel w(millisecond);
  recorder rec;
  tagged_timer a;
  a.id = 1;
  a.rec = &rec;
  w.arm(a.t, 5 * millisecond + 1);  // rounds up to the 6 ms tick
  EXPECT_TRUE(a.t.armed());
  EXPECT_EQ(w.next_deadline(), 6 * millisecond);
  w.advance(5 * millisecond + 1);
  EXPECT_TRUE(rec.fired.empty());
  w.advance(6 * millisecond);
  ASSERT_EQ(rec.fired.size(), 1U);
  EXPECT_FALSE(a.t.armed());
  EXPECT_EQ(w.armed(), 0U);
  EXPECT_EQ(w.next_deadline(), UINT64_MAX);
}

TEST(TimerWheel, CancelIsImmediateAndDestructionCancels) {
  timer_wheel w;
  recorder rec;
  tagged_timer a;
  a.rec = &rec;
  w.arm(a.t, 10 * millisecond);
  a.t.cancel();
  EXPECT_EQ(w.armed(), 0U);
  {
    tagged_timer b;
    b.rec = &rec;
    w.arm(b.t, 10 * millisecond);
    EXPECT_EQ(w.armed(), 1U);
  }
  EXPECT_EQ(w.armed(), 0U);  // b's destructor unlinked it
  w.advance(second);
  EXPECT_TRUE(rec.fired.empty());
}

TEST(TimerWheel, RandomTimersFireInOrderAtTheRightTicks) {
  // Against a reference: a sorted multimap of expiries. Spans every level and beyond the range.
  std::mt19937_64 rng(99);
  timer_wheel w(millisecond);
  recorder rec;
  std::vector<tagged_timer> timers(2000);
  std::multimap<time_ns, int> expected;
  for (int i = 0; i < 2000; ++i) {
    const time_ns delay = [&]() -> time_ns {
      switch (rng() % 4) {
        case 0:
          return rng() % (64 * millisecond);
        case 1:
          return rng() % (4096 * millisecond);
        case 2:
          return rng() % (3600 * second);
        default:
          return rng() % (48 * 3600 * second);  // beyond 2^24 ticks
      }
    }();
    timers[i].id = i;
    timers[i].rec = &rec;
    w.arm(timers[i].t, delay);
    expected.emplace((delay + millisecond - 1) / millisecond * millisecond, i);
  }
  // Advance in uneven steps, checking each timer fires in the step containing its tick.
  time_ns now = 0;
  std::size_t checked = 0;
  while (w.armed() != 0) {
    now += rng() % (7 * 3600 * second / 100);
    w.advance(now);
    for (; checked < rec.fired.size(); ++checked) {
      const auto [id, at] = rec.fired[checked];
      const time_ns due = (timers[id].t.expiry() + millisecond - 1) / millisecond * millisecond;
      ASSERT_LE(due, at) << "fired early: timer " << id;
      ASSERT_EQ(at, now) << "fired in the wrong advance() call";
    }
  }
  ASSERT_EQ(rec.fired.size(), 2000U);
  // Within one advance() they come out in expiry order.
  std::vector<time_ns> order;
  for (const auto& [id, at] : rec.fired) {
    order.push_back((timers[id].t.expiry() + millisecond - 1) / millisecond);
  }
  for (std::size_t i = 1; i < rec.fired.size(); ++i) {
    if (rec.fired[i].second == rec.fired[i - 1].second) {
      EXPECT_LE(order[i - 1], order[i]) << i;
    }
  }
}

TEST(TimerWheel, IdleStretchesAreJumpedNotWalked) {
  timer_wheel w(millisecond);
  recorder rec;
  tagged_timer a;
  a.rec = &rec;
  w.arm(a.t, 3 * 3600 * second);
  EXPECT_EQ(w.advance(3 * 3600 * second - 1), 0U);
  EXPECT_EQ(w.advance(3 * 3600 * second), 1U);
}

TEST(TimerWheel, CallbacksMayRearmAndArmingAllocatesNothing) {
  timer_wheel w(millisecond);
  struct periodic {
    timer t;
    timer_wheel* w;
    int count = 0;
  } p;
  p.w = &w;
  p.t.set_callback(
      [](timer& self, time_ns now) noexcept {
        auto* me = static_cast<periodic*>(self.context());
        ++me->count;
        me->w->arm(self, now + 10 * millisecond);
      },
      &p);
  w.arm(p.t, 10 * millisecond);
  const std::uint64_t before = test::allocation_count();
  for (time_ns t = 0; t <= 10 * second; t += millisecond) {
    w.advance(t);
  }
  EXPECT_EQ(test::allocation_count() - before, 0U);
  EXPECT_EQ(p.count, 1000);
}

}  // namespace timer_wheel_test
}  // namespace
}  // namespace dpdk_net
