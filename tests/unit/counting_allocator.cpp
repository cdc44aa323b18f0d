#include "counting_allocator.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#define DPDK_NET_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DPDK_NET_TEST_ASAN 1
#endif
#endif

#if defined(DPDK_NET_TEST_ASAN)
#if __has_include(<sanitizer/allocator_interface.h>)
#include <sanitizer/allocator_interface.h>
#else
// GCC on Debian ships libasan without its public headers (clang's package has them): declare the
// one entry point we use, as <sanitizer/allocator_interface.h> does.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
#endif
#endif

namespace {
// Constant-initialised: counts correctly even for allocations made before main.
constinit std::atomic<std::uint64_t> g_allocations{0};

void count_one() noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if defined(DPDK_NET_TEST_ASAN)

namespace {
void on_malloc(const volatile void* /*ptr*/, std::size_t /*size*/) {
  count_one();
}
void on_free(const volatile void* /*ptr*/) {}

// Installed before main (and before any test): hooks see every later allocation.
[[maybe_unused]] const int g_hooks_installed =
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}  // namespace

namespace dpdk_net::test {
const char* allocation_counting_mode() noexcept {
  return "asan-hooks";
}
}  // namespace dpdk_net::test

#else

// glibc's own allocator entry points (exported for exactly this kind of interposition).
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* ptr, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* ptr);

void* malloc(std::size_t size) {
  count_one();
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) {
  count_one();
  return __libc_calloc(count, size);
}
void* realloc(void* ptr, std::size_t size) {
  count_one();
  return __libc_realloc(ptr, size);
}
void free(void* ptr) {
  __libc_free(ptr);
}
void* memalign(std::size_t alignment, std::size_t size) {
  count_one();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  count_one();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) {
    return EINVAL;
  }
  count_one();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) {
    return ENOMEM;
  }
  *out = p;
  return 0;
}
}  // extern "C"

namespace dpdk_net::test {
const char* allocation_counting_mode() noexcept {
  return "malloc-wrapper";
}
}  // namespace dpdk_net::test

#endif

namespace dpdk_net::test {
std::uint64_t allocation_count() noexcept {
  return g_allocations.load(std::memory_order_relaxed);
}
}  // namespace dpdk_net::test
