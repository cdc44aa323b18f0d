#include "dpdk_net/timer_wheel.hpp"

#include <bit>

namespace dpdk_net {

timer::~timer() {
  cancel();
}

void timer::cancel() noexcept {
  if (wheel_ != nullptr) {
    wheel_->unlink(*this);
  }
}

timer_wheel::timer_wheel(time_ns tick, time_ns start) noexcept
    : tick_(tick == 0 ? 1 : tick), start_(start) {}

timer_wheel::~timer_wheel() {
  auto release = [](timer*& head) {
    while (head != nullptr) {
      timer* t = head;
      head = t->next_;
      t->wheel_ = nullptr;
      t->prev_ = t->next_ = nullptr;
    }
  };
  for (auto& level : heads_) {
    for (timer*& head : level) {
      release(head);
    }
  }
  release(overflow_);
}

std::uint64_t timer_wheel::tick_of(time_ns t) const noexcept {
  if (t <= start_) {
    return 0;
  }
  return (t - start_ + tick_ - 1) / tick_;  // round up: never early
}

void timer_wheel::arm(timer& t, time_ns expiry) noexcept {
  if (t.wheel_ != nullptr) {
    unlink(t);
  }
  t.expiry_ = expiry;
  t.tick_ = tick_of(expiry);
  t.wheel_ = this;
  ++count_;
  insert(t);
}

void timer_wheel::insert(timer& t) noexcept {
  const std::uint64_t e = t.tick_ < current_ ? current_ : t.tick_;
  if ((e >> range_bits) != (current_ >> range_bits)) {
    // Beyond the current range: wait in the overflow list until the wheel enters a new range.
    t.level_ = overflow_level;
    t.prev_ = nullptr;
    t.next_ = overflow_;
    if (overflow_ != nullptr) {
      overflow_->prev_ = &t;
    }
    overflow_ = &t;
    return;
  }
  // The level is the highest 6-bit group in which e differs from the current tick.
  const std::uint64_t diff = e ^ current_;
  const unsigned level =
      diff == 0 ? 0 : static_cast<unsigned>((63 - std::countl_zero(diff)) / bits);
  const auto slot = static_cast<unsigned>((e >> (level * bits)) & (slots - 1));
  t.level_ = static_cast<std::uint8_t>(level);
  t.slot_ = static_cast<std::uint8_t>(slot);
  timer*& head = heads_[level][slot];
  t.prev_ = nullptr;
  t.next_ = head;
  if (head != nullptr) {
    head->prev_ = &t;
  }
  head = &t;
  occupied_[level] |= std::uint64_t{1} << slot;
}

void timer_wheel::unlink(timer& t) noexcept {
  const bool overflow = t.level_ == overflow_level;
  timer*& head = overflow ? overflow_ : heads_[t.level_][t.slot_];
  if (t.prev_ != nullptr) {
    t.prev_->next_ = t.next_;
  } else {
    head = t.next_;
  }
  if (t.next_ != nullptr) {
    t.next_->prev_ = t.prev_;
  }
  if (head == nullptr && !overflow) {
    occupied_[t.level_] &= ~(std::uint64_t{1} << t.slot_);
  }
  t.prev_ = t.next_ = nullptr;
  t.wheel_ = nullptr;
  --count_;
}

std::uint64_t timer_wheel::next_event_tick() const noexcept {
  std::uint64_t best = UINT64_MAX;
  if (overflow_ != nullptr) {
    best = ((current_ >> range_bits) + 1) << range_bits;  // the start of the next range
  }
  for (unsigned k = 0; k < levels; ++k) {
    if (occupied_[k] == 0) {
      continue;
    }
    // Every slot occupied at level k is at or after the current tick's group k (see insert()),
    // so the lowest set bit is the next to come due or to cascade.
    const auto s = static_cast<std::uint64_t>(std::countr_zero(occupied_[k]));
    const unsigned shift = k * bits;
    const std::uint64_t above = (current_ >> (shift + bits)) << (shift + bits);
    const std::uint64_t at = above | (s << shift);
    best = std::min(best, at < current_ ? current_ : at);
  }
  return best;
}

time_ns timer_wheel::next_deadline() const noexcept {
  const std::uint64_t t = next_event_tick();
  return t == UINT64_MAX ? UINT64_MAX : start_ + t * tick_;
}

std::size_t timer_wheel::advance(time_ns now) noexcept {
  // The last whole tick at or before now (timers are rounded up to ticks: never early).
  const std::uint64_t target = now <= start_ ? 0 : (now - start_) / tick_;
  std::size_t fired = 0;
  for (;;) {
    const std::uint64_t t = next_event_tick();
    if (t == UINT64_MAX || t > target) {
      if (target > current_) {
        current_ = target;
      }
      return fired;
    }
    current_ = t;
    // Entering a new range: the overflow list's timers that now fit go into the wheel.
    if ((t & ((std::uint64_t{1} << range_bits) - 1)) == 0 && overflow_ != nullptr) {
      timer* list = overflow_;
      overflow_ = nullptr;
      while (list != nullptr) {
        timer* n = list->next_;
        insert(*list);
        list = n;
      }
    }
    // Cascade higher levels whose slot comes due now (highest first), then fire level 0.
    for (unsigned k = levels - 1; k >= 1; --k) {
      const unsigned shift = k * bits;
      const auto s = static_cast<unsigned>((t >> shift) & (slots - 1));
      if ((t & ((std::uint64_t{1} << shift) - 1)) == 0 && (occupied_[k] >> s & 1U) != 0) {
        timer* list = heads_[k][s];
        heads_[k][s] = nullptr;
        occupied_[k] &= ~(std::uint64_t{1} << s);
        while (list != nullptr) {
          timer* n = list->next_;
          insert(*list);  // still counted and owned by this wheel
          list = n;
        }
      }
    }
    const auto s0 = static_cast<unsigned>(t & (slots - 1));
    while (heads_[0][s0] != nullptr) {
      timer& due = *heads_[0][s0];
      unlink(due);
      ++fired;
      if (due.fn_ != nullptr) {
        due.fn_(due, now);  // may re-arm itself or others
      }
    }
  }
}

}  // namespace dpdk_net
