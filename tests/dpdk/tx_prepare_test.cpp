// The tx_prepare policy of the DPDK backend (net_ring's tx_prepare refuses nothing, so the policy
// is tested on its own): a refused packet is dropped, the others still go, and a caller that
// retries its leftovers cannot livelock.
#include "dpdk_net/dpdk/detail/tx_prepare.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace dpdk_net::dpdk {
namespace {

/// A fake tx_prepare that refuses negative items, stopping at the first one (as DPDK's does).
struct refusing_prepare {
  std::vector<int>* items;
  int calls = 0;
  std::size_t operator()(std::size_t first, std::size_t count) {
    ++calls;
    std::size_t ok = 0;
    while (ok < count && (*items)[first + ok] >= 0) {
      ++ok;
    }
    return ok;
  }
};

TEST(DpdkTxPrepare, RefusedPacketsAreDroppedAndTheRestKeepTheirOrder) {
  std::vector<int> items{1, -2, 3, 4, -5, -6, 7};
  std::vector<int> dropped;
  refusing_prepare prepare{&items};
  const std::size_t left = detail::prepare_or_drop(items.size(), prepare, [&](std::size_t at) {
    dropped.push_back(items[at]);
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(at));
  });
  EXPECT_EQ(left, 4U);
  EXPECT_EQ(items, (std::vector<int>{1, 3, 4, 7}));
  EXPECT_EQ(dropped, (std::vector<int>{-2, -5, -6}));
  EXPECT_EQ(prepare.calls, 4);  // one round per refusal, plus the one that finishes
}

TEST(DpdkTxPrepare, AllRefusedLeavesNothingAndEnds) {
  std::vector<int> items{-1, -2, -3};
  refusing_prepare prepare{&items};
  int drops = 0;
  EXPECT_EQ(detail::prepare_or_drop(items.size(), prepare,
                                    [&](std::size_t at) {
                                      ++drops;
                                      items.erase(items.begin() + static_cast<std::ptrdiff_t>(at));
                                    }),
            0U);
  EXPECT_EQ(drops, 3);
}

TEST(DpdkTxPrepare, ACallerRetryingLeftoversFinishes) {
  // The caller's usual loop: offer the burst, keep what was not taken, offer it again. With a
  // refused packet handed back (the old behaviour) this never ended; dropped, it ends at once.
  std::vector<int> pending{1, -2, 3};
  int rounds = 0;
  while (!pending.empty() && rounds < 10) {
    ++rounds;
    refusing_prepare prepare{&pending};
    const std::size_t ready = detail::prepare_or_drop(pending.size(), prepare, [&](std::size_t at) {
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(at));
    });
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(ready));  // sent
  }
  EXPECT_EQ(rounds, 1);
  EXPECT_TRUE(pending.empty());
}

}  // namespace
}  // namespace dpdk_net::dpdk
