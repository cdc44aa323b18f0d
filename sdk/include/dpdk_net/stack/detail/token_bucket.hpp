// A token bucket in integer arithmetic (rate limits for ICMP errors and ARP requests): the same
// inputs give the same decisions in every build, which floating point does not promise.
#pragma once

#include <algorithm>
#include <cstdint>

#include "dpdk_net/time.hpp"

namespace dpdk_net::stack::detail {

class token_bucket {
 public:
  /// `rate` tokens per second, at most `burst` saved up; starts full at `now`.
  token_bucket(std::uint32_t rate, std::uint32_t burst, time_ns now) noexcept
      : rate_(rate), cap_(std::uint64_t{burst} * second), level_(cap_), at_(now) {}

  /// Takes one token if there is one (refilling for the time since the last call first).
  bool take(time_ns now) noexcept {
    if (now > at_) {
      // Refill in units of 1/1e9 token. Past the time it takes to fill up the bucket is full,
      // and below it elapsed * rate <= cap + rate: no overflow.
      const std::uint64_t elapsed = now - at_;
      const std::uint64_t to_fill = rate_ == 0 ? UINT64_MAX : (cap_ - level_ + rate_ - 1) / rate_;
      level_ = elapsed >= to_fill ? cap_ : level_ + elapsed * rate_;
      at_ = now;
    }
    if (level_ < second) {
      return false;
    }
    level_ -= second;
    return true;
  }

 private:
  std::uint64_t rate_;
  std::uint64_t cap_;
  std::uint64_t level_;
  time_ns at_;
};

}  // namespace dpdk_net::stack::detail
