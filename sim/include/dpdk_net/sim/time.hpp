// Simulated time: nanoseconds since the start of a simulation. Nothing in sim/ reads a clock.
#pragma once

#include <cstdint>

namespace dpdk_net::sim {

using time_ns = std::uint64_t;

inline constexpr time_ns nanosecond = 1;
inline constexpr time_ns microsecond = 1000;
inline constexpr time_ns millisecond = 1000 * microsecond;
inline constexpr time_ns second = 1000 * millisecond;

}  // namespace dpdk_net::sim
