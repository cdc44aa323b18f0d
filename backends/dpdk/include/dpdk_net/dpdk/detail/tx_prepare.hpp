// tx_prepare without livelock: a packet the driver's tx_prepare refuses is dropped (and counted by
// the caller), and preparation resumes after it. Handing it back like a full ring would make a
// caller that retries its leftovers offer the same bad packet for ever. No DPDK header here, so
// the policy is testable without a driver that refuses anything.
#pragma once

#include <algorithm>
#include <cstddef>

namespace dpdk_net::dpdk::detail {

/// Prepares items [0, n). `prepare(first, count)` prepares items [first, first + count) and
/// returns how many from `first` are ready (as rte_eth_tx_prepare does: it stops at the first it
/// refuses). `drop(position)` must drop the refused item at `position` and close the gap (shift
/// the rest down by one). Returns how many items remain, all prepared, in their original order.
/// Each round either finishes or drops one item, so it ends after at most n + 1 rounds.
template <class Prepare, class Drop>
std::size_t prepare_or_drop(std::size_t n, Prepare&& prepare, Drop&& drop) {
  std::size_t ready = 0;
  while (ready < n) {
    ready += std::min(static_cast<std::size_t>(prepare(ready, n - ready)), n - ready);
    if (ready < n) {
      drop(ready);
      --n;
    }
  }
  return n;
}

}  // namespace dpdk_net::dpdk::detail
