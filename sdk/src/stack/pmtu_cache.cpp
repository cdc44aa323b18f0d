#include "dpdk_net/stack/pmtu_cache.hpp"

#include <algorithm>

namespace dpdk_net::stack {

pmtu_cache::pmtu_cache(std::size_t entries, time_ns lifetime, sip_key key)
    : lifetime_(lifetime),
      key_(key),
      entries_(std::max<std::size_t>(entries, 1)),
      index_(entries_.size()),
      by_expiry_(entries_.size()) {
  for (std::size_t i = entries_.size(); i-- > 0;) {
    free_.push_back(static_cast<std::uint32_t>(i));
  }
}

std::uint32_t pmtu_cache::find_slot(wire::ipv4_address dst, std::uint64_t h) const noexcept {
  return index_.find(h, [&](std::uint32_t n) { return entries_[n].dst == dst; });
}

std::optional<pmtu_cache::path> pmtu_cache::find(wire::ipv4_address dst,
                                                 time_ns now) const noexcept {
  if (by_expiry_.empty()) {
    return std::nullopt;  // the common case costs no hash
  }
  const std::uint32_t n = find_slot(dst, siphash24(key_, dst.value));
  if (n == detail::no_slot || now >= entries_[n].expires) {
    return std::nullopt;
  }
  return entries_[n].p;
}

void pmtu_cache::remove(std::uint32_t n) noexcept {
  index_.erase(entries_[n].hash, n);
  by_expiry_.remove(n);
  free_.push_back(n);
}

void pmtu_cache::learn(wire::ipv4_address dst, path p, time_ns now) noexcept {
  // Expired entries at the front are reclaimed first (amortised O(1)).
  while (!by_expiry_.empty() && entries_[by_expiry_.front()].expires <= now) {
    remove(by_expiry_.front());
  }
  const std::uint64_t h = siphash24(key_, dst.value);
  std::uint32_t n = find_slot(dst, h);
  if (n == detail::no_slot) {
    if (free_.empty()) {
      ++evictions_;
      remove(by_expiry_.front());  // the one expiring first
    }
    n = free_.back();
    free_.pop_back();
    entries_[n].dst = dst;
    entries_[n].hash = h;
    index_.insert(h, n);
  }
  entries_[n].p = p;
  entries_[n].expires = now + lifetime_;
  by_expiry_.push_back(n);  // moves it to the back if it was there
}

}  // namespace dpdk_net::stack
