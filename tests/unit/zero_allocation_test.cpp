// The steady-state data path allocates nothing: proven with a counting global operator new.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>

#include "counting_allocator.hpp"
#include "dpdk_net/memory_device.hpp"

namespace dpdk_net {
namespace {
namespace zero_allocation_test {

TEST(ZeroAllocation, CountingAllocatorSeesAllocations) {
  // The instrument works: a heap allocation is counted (otherwise the next test proves nothing).
  const std::uint64_t before = test::allocation_count();
  auto* volatile p = new int(1);
  delete p;
  EXPECT_EQ(test::allocation_count(), before + 1) << test::allocation_counting_mode();
}

// The C allocator is seen too: a data path that called malloc (or a library doing so for it)
// would fail the zero-allocation tests. Called through volatile pointers so the compiler cannot
// elide a malloc/free pair.
TEST(ZeroAllocation, CountingAllocatorSeesTheCAllocator) {
  void* (*volatile c_malloc)(std::size_t) = &std::malloc;
  void* (*volatile c_calloc)(std::size_t, std::size_t) = &std::calloc;
  void* (*volatile c_realloc)(void*, std::size_t) = &std::realloc;
  void* (*volatile c_aligned_alloc)(std::size_t, std::size_t) = &std::aligned_alloc;
  int (*volatile c_posix_memalign)(void**, std::size_t, std::size_t) = &::posix_memalign;
  void (*volatile c_free)(void*) = &std::free;
  const char* mode = test::allocation_counting_mode();

  std::uint64_t before = test::allocation_count();
  void* a = c_malloc(24);
  EXPECT_EQ(test::allocation_count(), before + 1) << "malloc, " << mode;
  before = test::allocation_count();
  void* b = c_calloc(4, 8);
  EXPECT_EQ(test::allocation_count(), before + 1) << "calloc, " << mode;
  before = test::allocation_count();
  a = c_realloc(a, 4096);  // growing: a new block
  EXPECT_EQ(test::allocation_count(), before + 1) << "realloc, " << mode;
  before = test::allocation_count();
  void* c = c_aligned_alloc(64, 128);
  EXPECT_EQ(test::allocation_count(), before + 1) << "aligned_alloc, " << mode;
  before = test::allocation_count();
  void* d = nullptr;
  EXPECT_EQ(c_posix_memalign(&d, 128, 256), 0);
  EXPECT_EQ(test::allocation_count(), before + 1) << "posix_memalign, " << mode;
  before = test::allocation_count();
  c_free(a);
  c_free(b);
  c_free(c);
  c_free(d);
  EXPECT_EQ(test::allocation_count(), before);  // frees are not allocations
}

TEST(ZeroAllocation, SteadyStateBurstsThroughMemoryLinkAllocateNothing) {
  memory_link_config config;
  config.queues = 2;
  config.ring_size = 128;
  config.pool_size = 512;
  memory_link link(config);
  std::array<packet, max_burst> tx;
  std::array<packet, max_burst> rx;

  auto round = [&](std::uint32_t iteration) {
    std::uint64_t received = 0;
    for (std::uint16_t q = 0; q < 2; ++q) {
      const std::size_t n = link.a().tx_pool(q).alloc_burst(tx);
      for (std::size_t i = 0; i < n; ++i) {
        std::byte* d = tx[i].append(64);
        std::memcpy(d, &iteration, sizeof iteration);
        // Header + payload chains too: scatter-gather is part of the steady state.
        if (i % 4 == 0) {
          packet extra = link.a().tx_pool(q).alloc();
          extra.append(100);
          tx[i].chain(std::move(extra));
        }
      }
      const std::size_t sent = link.a().tx_burst(q, std::span<packet>(tx.data(), n));
      free_burst(std::span<packet>(tx.data() + sent, n - sent));
      std::size_t got = 0;
      while ((got = link.b().rx_burst(q, rx)) != 0) {
        received += got;
        free_burst(std::span<packet>(rx.data(), got));
      }
    }
    return received;
  };

  for (std::uint32_t i = 0; i < 100; ++i) {
    round(i);  // warm-up: nothing lazy left
  }
  const std::uint64_t before = test::allocation_count();
  std::uint64_t received = 0;
  for (std::uint32_t i = 0; i < 10000; ++i) {
    received += round(i);
  }
  const std::uint64_t allocations = test::allocation_count() - before;
  EXPECT_EQ(allocations, 0U);
  EXPECT_EQ(received, 10000U * 2 * max_burst);  // the loop really moved packets
  EXPECT_EQ(link.a().pool().available(), link.a().pool().capacity());
}

}  // namespace zero_allocation_test
}  // namespace
}  // namespace dpdk_net
