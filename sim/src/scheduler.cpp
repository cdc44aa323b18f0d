#include "dpdk_net/sim/scheduler.hpp"

#include <algorithm>

namespace dpdk_net::sim {

event_id scheduler::at(time_ns t, callback cb) {
  std::uint32_t index = 0;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slot& s = slots_[index];
  s.cb = std::move(cb);
  s.live = true;
  heap_.push_back(entry{std::max(t, now_), sequence_++, index, s.generation});
  std::push_heap(heap_.begin(), heap_.end(), later);
  ++live_;
  return event_id{index, s.generation};
}

bool scheduler::cancel(event_id id) noexcept {
  if (id.slot >= slots_.size()) {
    return false;
  }
  slot& s = slots_[id.slot];
  if (!s.live || s.generation != id.generation) {
    return false;
  }
  // The heap entry stays (removed lazily when it reaches the top); the slot is retired now.
  s.cb.reset();
  s.live = false;
  ++s.generation;
  free_slots_.push_back(id.slot);
  --live_;
  return true;
}

void scheduler::pop_dead() noexcept {
  while (!heap_.empty()) {
    const entry& top = heap_.front();
    const slot& s = slots_[top.slot];
    if (s.live && s.generation == top.generation) {
      return;
    }
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
  }
}

time_ns scheduler::next_event_time() noexcept {
  pop_dead();
  return heap_.empty() ? UINT64_MAX : heap_.front().time;
}

bool scheduler::step() {
  pop_dead();
  if (heap_.empty()) {
    return false;
  }
  const entry e = heap_.front();
  std::pop_heap(heap_.begin(), heap_.end(), later);
  heap_.pop_back();
  slot& s = slots_[e.slot];
  callback cb = std::move(s.cb);
  s.live = false;
  ++s.generation;
  free_slots_.push_back(e.slot);
  --live_;
  now_ = e.time;
  ++events_run_;
  cb();  // may schedule more events (slots_ may grow: s is not used after this)
  return true;
}

void scheduler::run_until(time_ns t) {
  while (next_event_time() <= t) {
    if (!step()) {
      break;
    }
  }
  now_ = std::max(now_, t);
}

void scheduler::clear() noexcept {
  for (slot& s : slots_) {
    if (s.live) {
      s.cb.reset();
      s.live = false;
      ++s.generation;
    }
  }
  heap_.clear();
  free_slots_.clear();
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    free_slots_.push_back(i);
  }
  live_ = 0;
}

}  // namespace dpdk_net::sim
