// The one file of the SDK that reads a clock (see dpdk_net/os.hpp).
#include <ctime>

#include "dpdk_net/os.hpp"

namespace dpdk_net {

time_ns monotonic_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // cannot fail for CLOCK_MONOTONIC with a valid pointer
  return static_cast<time_ns>(ts.tv_sec) * second + static_cast<time_ns>(ts.tv_nsec);
}

time_ns realtime_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<time_ns>(ts.tv_sec) * second + static_cast<time_ns>(ts.tv_nsec);
}

}  // namespace dpdk_net
