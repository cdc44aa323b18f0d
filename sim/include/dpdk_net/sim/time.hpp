// Simulated time: nanoseconds since the start of a simulation (the SDK's time_ns, so stack and
// simulator speak the same unit). Nothing in sim/ reads a clock.
#pragma once

#include "dpdk_net/time.hpp"

namespace dpdk_net::sim {

using dpdk_net::microsecond;
using dpdk_net::millisecond;
using dpdk_net::nanosecond;
using dpdk_net::second;
using dpdk_net::time_ns;

}  // namespace dpdk_net::sim
