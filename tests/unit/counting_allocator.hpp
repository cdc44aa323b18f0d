// Counts every global operator new in this test binary, so a test can assert that a steady-state
// data path allocates nothing.
#pragma once

#include <cstdint>

namespace dpdk_net::test {

/// Allocations made through global operator new so far (all threads).
std::uint64_t allocation_count() noexcept;

}  // namespace dpdk_net::test
