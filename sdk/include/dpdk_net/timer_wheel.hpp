// A hierarchical timer wheel (Varghese & Lauck): O(1) arm and cancel, driven by `now`.
//
// Four levels of 64 slots; level k holds timers whose expiry first differs from the current tick
// in the k-th 6-bit group, and cascades them down when the current tick reaches their group.
// advance() jumps straight to the next occupied slot (found from per-level occupancy bitmaps), so
// an idle stretch costs nothing however long it is. Timers are intrusive: arming one allocates
// nothing. Expiry is rounded up to the tick (a timer never fires early).
#pragma once

#include <array>
#include <cstdint>

#include "dpdk_net/time.hpp"

namespace dpdk_net {

class timer_wheel;

/// An intrusive timer: embed it in the object it belongs to.
class timer {
 public:
  using callback = void (*)(timer& t, time_ns now) noexcept;

  timer() noexcept = default;
  timer(callback fn, void* context) noexcept : fn_(fn), context_(context) {}
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;
  ~timer();  // cancels

  void set_callback(callback fn, void* context) noexcept {
    fn_ = fn;
    context_ = context;
  }
  [[nodiscard]] void* context() const noexcept { return context_; }
  [[nodiscard]] bool armed() const noexcept { return wheel_ != nullptr; }
  [[nodiscard]] time_ns expiry() const noexcept { return expiry_; }
  void cancel() noexcept;

 private:
  friend class timer_wheel;
  callback fn_ = nullptr;
  void* context_ = nullptr;
  timer_wheel* wheel_ = nullptr;
  timer* prev_ = nullptr;
  timer* next_ = nullptr;
  std::uint64_t tick_ = 0;
  time_ns expiry_ = 0;
  std::uint8_t level_ = 0;
  std::uint8_t slot_ = 0;
};

class timer_wheel {
 public:
  /// tick: the resolution (default 1 ms); start: the time of tick 0.
  explicit timer_wheel(time_ns tick = millisecond, time_ns start = 0) noexcept;
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;
  ~timer_wheel();  // disarms what is left

  /// Arms (or re-arms) t to fire at `expiry` (rounded up to a tick; the past means the next
  /// advance()). A timer beyond the wheel's current range (2^24 ticks: 4.6 h at 1 ms) waits in an
  /// overflow list that is re-examined each time the wheel enters a new range: it still fires at
  /// its own time.
  void arm(timer& t, time_ns expiry) noexcept;
  /// Runs every timer due at or before now, in expiry order (ties: arming order is not promised).
  /// Returns the number of callbacks run.
  std::size_t advance(time_ns now) noexcept;
  /// The earliest time a timer may be due (a lower bound at tick resolution), or UINT64_MAX if
  /// none is armed. Calling advance() at that time makes progress.
  [[nodiscard]] time_ns next_deadline() const noexcept;
  [[nodiscard]] std::size_t armed() const noexcept { return count_; }

 private:
  friend class timer;
  static constexpr unsigned levels = 4;
  static constexpr unsigned bits = 6;
  static constexpr std::uint64_t slots = 1U << bits;
  static constexpr unsigned range_bits = levels * bits;
  static constexpr std::uint8_t overflow_level = 0xff;

  void insert(timer& t) noexcept;
  void unlink(timer& t) noexcept;
  [[nodiscard]] std::uint64_t next_event_tick() const noexcept;
  [[nodiscard]] std::uint64_t tick_of(time_ns t) const noexcept;

  time_ns tick_;
  time_ns start_;
  std::uint64_t current_ = 0;  // every tick before this one has been processed
  std::size_t count_ = 0;
  std::array<std::uint64_t, levels> occupied_{};
  std::array<std::array<timer*, slots>, levels> heads_{};
  timer* overflow_ = nullptr;  // timers beyond the current range
};

}  // namespace dpdk_net
