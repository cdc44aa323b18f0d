// The discrete-event scheduler: a virtual clock that jumps from event to event, so an idle
// simulated minute costs nothing. Single-threaded. Events at the same time run in the order they
// were scheduled (a sequence number breaks ties), never in an order that depends on addresses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "dpdk_net/sim/time.hpp"

namespace dpdk_net::sim {

namespace detail {

/// A move-only `void()` callable stored inline (no heap): captures up to `capacity` bytes.
class inplace_callback {
 public:
  static constexpr std::size_t capacity = 64;  // a packet handle with its generation tag + 5 words

  inplace_callback() noexcept = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, inplace_callback>>>
  inplace_callback(F&& f) noexcept {  // NOLINT(google-explicit-constructor): a callable is one
    using T = std::decay_t<F>;
    static_assert(sizeof(T) <= capacity, "callback captures too much: capture a pointer instead");
    static_assert(alignof(T) <= alignof(std::max_align_t), "over-aligned callback");
    static_assert(std::is_nothrow_move_constructible_v<T>, "callback must be nothrow-movable");
    ::new (static_cast<void*>(storage_)) T(std::forward<F>(f));
    ops_ = &ops_for<T>;
  }
  inplace_callback(inplace_callback&& other) noexcept { take(other); }
  inplace_callback& operator=(inplace_callback&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  inplace_callback(const inplace_callback&) = delete;
  inplace_callback& operator=(const inplace_callback&) = delete;
  ~inplace_callback() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  void operator()() { ops_->invoke(storage_); }
  void reset() noexcept {
    if (ops_ != nullptr) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  struct operations {
    void (*invoke)(void*);
    void (*move)(void* to, void* from) noexcept;
    void (*destroy)(void*) noexcept;
  };
  template <class T>
  static constexpr operations ops_for = {[](void* p) { (*static_cast<T*>(p))(); },
                                         [](void* to, void* from) noexcept {
                                           ::new (to) T(std::move(*static_cast<T*>(from)));
                                           static_cast<T*>(from)->~T();
                                         },
                                         [](void* p) noexcept { static_cast<T*>(p)->~T(); }};

  void take(inplace_callback& other) noexcept {
    if (other.ops_ != nullptr) {
      other.ops_->move(storage_, other.storage_);
      ops_ = other.ops_;
      other.ops_ = nullptr;
    }
  }

  alignas(std::max_align_t) unsigned char storage_[capacity];
  const operations* ops_ = nullptr;
};

}  // namespace detail

/// Names a scheduled event, for cancel(). Stale ids (the event ran or was cancelled) are harmless.
struct event_id {
  std::uint32_t slot = UINT32_MAX;
  std::uint64_t generation = 0;  // 64 bits: a hot slot never wraps into a stale id
};

class scheduler {
 public:
  using callback = detail::inplace_callback;

  scheduler() = default;
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  [[nodiscard]] time_ns now() const noexcept { return now_; }

  /// Runs cb at time t (not before now: an earlier t runs at now, after what is already due).
  event_id at(time_ns t, callback cb);
  event_id after(time_ns delay, callback cb) {
    return at(delay > UINT64_MAX - now_ ? UINT64_MAX : now_ + delay, std::move(cb));
  }
  /// Cancels a pending event (destroying its callback); false if it already ran or was cancelled.
  bool cancel(event_id id) noexcept;

  /// Runs the next event; false if there is none.
  bool step();
  /// Runs every event due at or before t, then sets the clock to t.
  void run_until(time_ns t);
  /// Time of the next pending event, or UINT64_MAX.
  [[nodiscard]] time_ns next_event_time() noexcept;
  [[nodiscard]] std::size_t pending() const noexcept { return live_; }
  [[nodiscard]] std::uint64_t events_run() const noexcept { return events_run_; }
  /// Drops every pending event (their callbacks are destroyed, not run).
  void clear() noexcept;

 private:
  struct slot {
    callback cb;
    std::uint64_t generation = 0;
    bool live = false;
  };
  struct entry {
    time_ns time;
    std::uint64_t sequence;
    std::uint32_t slot;
    std::uint64_t generation;
  };
  static bool later(const entry& a, const entry& b) noexcept {
    return a.time != b.time ? a.time > b.time : a.sequence > b.sequence;
  }
  void pop_dead() noexcept;

  time_ns now_ = 0;
  std::uint64_t sequence_ = 0;
  std::uint64_t events_run_ = 0;
  std::size_t live_ = 0;
  std::vector<entry> heap_;
  std::vector<slot> slots_;
  std::vector<std::uint32_t> free_slots_;
};

}  // namespace dpdk_net::sim
