// A bounded single-producer single-consumer ring: one thread pushes, one pops, no lock. The
// indices are monotonically increasing counters (capacity a power of two); each side caches the
// other's index so a push or pop touches the shared cache line only when its cached view runs
// out. Publication is release/acquire: what the producer wrote into a slot is visible to the
// consumer that sees the new tail.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace dpdk_net::detail {

template <class T>
class spsc_ring {
 public:
  /// capacity is rounded up to a power of two (at least 2).
  explicit spsc_ring(std::size_t capacity)
      : capacity_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity)),
        mask_(capacity_ - 1),
        slots_(std::make_unique<T[]>(capacity_)) {}
  spsc_ring(const spsc_ring&) = delete;
  spsc_ring& operator=(const spsc_ring&) = delete;

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  /// Producer: moves v in; false (v untouched) if full.
  bool push(T& v) noexcept {
    const std::size_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ == capacity_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t - head_cache_ == capacity_) {
        return false;
      }
    }
    slots_[t & mask_] = std::move(v);
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  /// Producer: free slots (a lower bound: the consumer may free more meanwhile).
  [[nodiscard]] std::size_t free_space() noexcept {
    head_cache_ = head_.load(std::memory_order_acquire);
    return capacity_ - (tail_.load(std::memory_order_relaxed) - head_cache_);
  }

  /// Consumer: moves the oldest element into out; false if empty.
  bool pop(T& out) noexcept {
    const std::size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h == tail_cache_) {
        return false;
      }
    }
    out = std::move(slots_[h & mask_]);
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  /// Either side: nothing to pop (a snapshot).
  [[nodiscard]] bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  static constexpr std::size_t line = 64;
  const std::size_t capacity_;
  const std::size_t mask_;
  std::unique_ptr<T[]> slots_;
  alignas(line) std::atomic<std::size_t> head_{0};  // written by the consumer
  std::size_t tail_cache_ = 0;                      // consumer's view of tail_
  alignas(line) std::atomic<std::size_t> tail_{0};  // written by the producer
  std::size_t head_cache_ = 0;                      // producer's view of head_
};

}  // namespace dpdk_net::detail
