// Time as the stack sees it: nanoseconds on a monotonic clock that the caller owns (the runtime's
// clock, or the simulator's virtual clock). The stack never reads a clock itself.
#pragma once

#include <cstdint>

namespace dpdk_net {

using time_ns = std::uint64_t;

inline constexpr time_ns nanosecond = 1;
inline constexpr time_ns microsecond = 1000;
inline constexpr time_ns millisecond = 1000 * microsecond;
inline constexpr time_ns second = 1000 * millisecond;

}  // namespace dpdk_net
