// The two OS inputs the deterministic code is handed (dpdk_net/os.hpp).
#include "dpdk_net/os.hpp"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <array>

namespace dpdk_net {
namespace {
namespace os_test {

TEST(Os, FillRandomFillsEveryByteAndDiffersBetweenCalls) {
  std::array<std::byte, 64> a{};
  std::array<std::byte, 64> b{};
  ASSERT_FALSE(fill_random(a));
  ASSERT_FALSE(fill_random(b));
  EXPECT_NE(a, b);  // 2^-512 to fail by chance
  // Every 16-byte window was written (a tail left at zero would show as an all-zero window).
  for (std::size_t i = 0; i + 16 <= a.size(); i += 16) {
    EXPECT_TRUE(std::any_of(a.begin() + static_cast<std::ptrdiff_t>(i),
                            a.begin() + static_cast<std::ptrdiff_t>(i + 16),
                            [](std::byte x) { return x != std::byte{0}; }));
  }
  EXPECT_FALSE(fill_random({}));  // nothing asked, nothing to fail
}

TEST(Os, MonotonicNowAdvancesInNanoseconds) {
  const time_ns t0 = monotonic_now();
  timespec pause{0, 2'000'000};  // 2 ms
  ::nanosleep(&pause, nullptr);
  const time_ns t1 = monotonic_now();
  EXPECT_GE(t1 - t0, 2 * millisecond);
  EXPECT_LT(t1 - t0, 5 * second);
}

}  // namespace os_test
}  // namespace
}  // namespace dpdk_net
