// Counts every heap allocation in the test binary -- operator new and the C allocator (malloc,
// calloc, realloc, posix_memalign, aligned_alloc, memalign) alike -- so a test can assert that a
// steady-state data path allocates nothing.
//
// Under AddressSanitizer the count comes from ASan's own allocator through
// __sanitizer_install_malloc_and_free_hooks (ASan serves new and malloc alike and calls the hook
// for each); nothing is redefined, so ASan keeps checking every allocation. Without ASan the C
// allocator is wrapped: malloc and friends are defined here and forward to glibc's __libc_*
// entry points (operator new in libstdc++ calls malloc, so it is counted too).
#pragma once

#include <cstdint>

namespace dpdk_net::test {

/// Heap allocations so far (all threads).
std::uint64_t allocation_count() noexcept;

/// How allocations are seen: "asan-hooks" or "malloc-wrapper".
const char* allocation_counting_mode() noexcept;

}  // namespace dpdk_net::test
