// Two small building blocks for the stack's bounded tables (ARP, path MTU, reassembly; TCP next):
//
// - slot_index: an open-addressing hash index (linear probing, backward-shift deletion, so no
//   tombstones) from a keyed 64-bit hash to a slot number in the owner's preallocated array.
//   It stores 32 bits of the hash beside each slot, so probing compares hashes before it asks
//   the owner to compare keys, and deleting never re-hashes. The hash must be keyed (SipHash,
//   secret.hpp): an attacker who cannot predict homes cannot build long probe runs.
// - id_list: an intrusive doubly-linked FIFO of slot numbers (oldest first), so "evict the oldest"
//   is O(1) instead of a scan.
//
// Both allocate only at construction.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace dpdk_net::stack::detail {

inline constexpr std::uint32_t no_slot = UINT32_MAX;

class slot_index {
 public:
  /// Room for `entries` slots at a load factor of at most 1/2.
  explicit slot_index(std::size_t entries)
      : cells_(std::bit_ceil(std::max<std::size_t>(2 * entries, 2))) {}

  /// The slot whose key matches (is_key(slot) true) among those with this hash, or no_slot.
  template <class IsKey>
  [[nodiscard]] std::uint32_t find(std::uint64_t hash, IsKey&& is_key) const noexcept {
    const auto h = static_cast<std::uint32_t>(hash);
    for (std::size_t i = h & mask(); cells_[i].slot != no_slot; i = (i + 1) & mask()) {
      if (cells_[i].hash == h && is_key(cells_[i].slot)) {
        return cells_[i].slot;
      }
    }
    return no_slot;
  }
  /// Adds slot under hash (the caller has checked it is not there yet).
  void insert(std::uint64_t hash, std::uint32_t slot) noexcept {
    const auto h = static_cast<std::uint32_t>(hash);
    std::size_t i = h & mask();
    while (cells_[i].slot != no_slot) {
      i = (i + 1) & mask();
    }
    cells_[i] = cell{slot, h};
  }
  /// Removes slot (inserted under hash); a slot that is not there is ignored.
  void erase(std::uint64_t hash, std::uint32_t slot) noexcept {
    const auto h = static_cast<std::uint32_t>(hash);
    std::size_t i = h & mask();
    while (cells_[i].slot != no_slot && cells_[i].slot != slot) {
      i = (i + 1) & mask();
    }
    if (cells_[i].slot == no_slot) {
      return;
    }
    // Backward shift: pull later members of the probe run into the hole.
    cells_[i] = cell{};
    for (std::size_t j = (i + 1) & mask(); cells_[j].slot != no_slot; j = (j + 1) & mask()) {
      const std::size_t home = cells_[j].hash & mask();
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        cells_[i] = cells_[j];
        cells_[j] = cell{};
        i = j;
      }
    }
  }
  /// The longest probe run a find for this hash would walk (for tests of the keyed hash).
  [[nodiscard]] std::size_t probe_length(std::uint64_t hash) const noexcept {
    std::size_t n = 0;
    for (std::size_t i = static_cast<std::uint32_t>(hash) & mask(); cells_[i].slot != no_slot;
         i = (i + 1) & mask()) {
      ++n;
    }
    return n;
  }

 private:
  struct cell {
    std::uint32_t slot = no_slot;
    std::uint32_t hash = 0;
  };
  [[nodiscard]] std::size_t mask() const noexcept { return cells_.size() - 1; }
  std::vector<cell> cells_;
};

class id_list {
 public:
  explicit id_list(std::size_t ids) : links_(ids) {}

  [[nodiscard]] bool empty() const noexcept { return head_ == no_slot; }
  [[nodiscard]] std::uint32_t front() const noexcept { return head_; }
  [[nodiscard]] bool contains(std::uint32_t id) const noexcept { return links_[id].in; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  void push_back(std::uint32_t id) noexcept {
    if (links_[id].in) {
      remove(id);
    }
    links_[id] = link{tail_, no_slot, true};
    if (tail_ != no_slot) {
      links_[tail_].next = id;
    } else {
      head_ = id;
    }
    tail_ = id;
    ++size_;
  }
  void remove(std::uint32_t id) noexcept {
    link& l = links_[id];
    if (!l.in) {
      return;
    }
    (l.prev != no_slot ? links_[l.prev].next : head_) = l.next;
    (l.next != no_slot ? links_[l.next].prev : tail_) = l.prev;
    l = link{};
    --size_;
  }

 private:
  struct link {
    std::uint32_t prev = no_slot;
    std::uint32_t next = no_slot;
    bool in = false;
  };
  std::vector<link> links_;
  std::uint32_t head_ = no_slot;
  std::uint32_t tail_ = no_slot;
  std::size_t size_ = 0;
};

}  // namespace dpdk_net::stack::detail
