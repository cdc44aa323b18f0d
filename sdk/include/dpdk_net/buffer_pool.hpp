// Buffer pools: where segments come from and go back to.
//
// `buffer_pool` is the interface a backend implements when its buffers are not ours (the DPDK
// backend wraps an rte_mempool). `packet_pool` is our own: one preallocated slab of descriptors and
// buffer memory, a LIFO free list (recently freed buffers are cache-warm), no allocation after
// construction, single-threaded (one pool per core or per device queue).
//
// Cost of alloc(): no virtual call per packet. For a packet_pool it is an inline pop of the free
// list (buffer_pool knows its packet_pool through a pointer set at construction, so no dynamic
// dispatch). Any other pool serves alloc() from a small cache of segments that one virtual
// alloc_bulk call refills (1 call per `alloc_cache_size` packets); alloc_burst() is one virtual
// call per 64 packets. virtual_alloc_calls() counts them, so tests can prove it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dpdk_net/packet.hpp"

namespace dpdk_net {

class packet_pool;

class buffer_pool {
 public:
  buffer_pool() = default;
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;
  virtual ~buffer_pool() = default;

  /// Fills out[0..n) with fresh segments (data_off = the pool's headroom, data_len = 0, a chain of
  /// one, default metadata) and returns n; n < out.size() only when the pool runs dry.
  virtual std::size_t alloc_bulk(std::span<segment*> out) noexcept = 0;
  /// Returns segments to the pool. Each must be in use and belong to this pool; a segment that is
  /// already free is counted (double_frees) and ignored instead of corrupting the free list.
  virtual void free_bulk(std::span<segment* const> segments) noexcept = 0;

  /// One packet of one segment, or an empty packet if the pool is exhausted. Non-virtual: see the
  /// cost note at the top of this file.
  packet alloc() noexcept;
  /// Fills out[0..n) with packets; returns n (< out.size() only when the pool runs dry).
  std::size_t alloc_burst(std::span<packet> out) noexcept;
  /// A packet of one segment whose data is the byte range [offset, offset+length) of an external
  /// buffer (no copy); takes one reference on it. Empty if the pool is exhausted or the range is
  /// outside the buffer.
  packet attach_external(external_buffer& ext, std::size_t offset, std::size_t length) noexcept;

  /// Calls alloc()/alloc_burst() made into the virtual alloc_bulk (0 for a packet_pool).
  [[nodiscard]] std::uint64_t virtual_alloc_calls() const noexcept { return virtual_alloc_calls_; }
  /// Frees through a stale packet handle, refused (see packet.hpp; generation builds only).
  [[nodiscard]] std::uint64_t stale_frees() const noexcept { return stale_frees_; }

  /// Segments a non-packet_pool pool keeps ready for alloc().
  static constexpr std::size_t alloc_cache_size = 32;
  /// Segments in that cache right now (allocated from the backend, not handed out).
  [[nodiscard]] std::size_t cached() const noexcept { return cached_; }

 protected:
  /// For packet_pool only: its alloc() fast path.
  explicit buffer_pool(packet_pool* lifo) noexcept : lifo_(lifo) {}
  /// Gives the segments cached for alloc() back through free_bulk. A derived pool (other than
  /// packet_pool) calls it in its destructor, while free_bulk still works.
  void drain_cache() noexcept;

 private:
  friend class packet;
  segment* take_cached() noexcept;
  bool refill_cache() noexcept;

  packet_pool* lifo_ = nullptr;  // this pool, when it is a packet_pool
  // Cached segments are marked free (so a stray free of one is a counted double free) and made
  // in_use again when handed out. Only [0, cached_) is meaningful: not zeroed.
  std::array<segment*, alloc_cache_size> cache_;
  std::size_t cached_ = 0;
  std::uint64_t virtual_alloc_calls_ = 0;
  std::uint64_t stale_frees_ = 0;
};

struct packet_pool_config {
  std::string name = "pool";         ///< for diagnostics
  std::size_t count = 4096;          ///< number of buffers (descriptors)
  std::uint32_t buffer_size = 2176;  ///< bytes per buffer, headroom included (2048 + 128)
  std::uint32_t headroom = 128;      ///< initial data_off: room to prepend headers
};

/// Counters of a pool; all are exact (single-threaded).
struct packet_pool_stats {
  std::size_t capacity = 0;
  std::size_t available = 0;
  std::uint64_t allocations = 0;
  std::uint64_t alloc_failures = 0;  ///< requests that found the pool empty
  std::uint64_t double_frees = 0;    ///< free of a segment that was already free (API misuse)
  std::uint64_t foreign_frees = 0;   ///< free of a segment of another pool (API misuse)
  std::uint64_t stale_frees = 0;     ///< free through a stale handle (generation builds)
};

class packet_pool final : public buffer_pool {
 public:
  /// Allocates everything up front. Throws std::invalid_argument for a config that cannot work
  /// (count 0, headroom >= buffer_size) and std::bad_alloc if the memory is not there.
  explicit packet_pool(const packet_pool_config& config);
  ~packet_pool() override;

  std::size_t alloc_bulk(std::span<segment*> out) noexcept override;
  void free_bulk(std::span<segment* const> segments) noexcept override;

  [[nodiscard]] const packet_pool_config& config() const noexcept { return config_; }
  [[nodiscard]] packet_pool_stats stats() const noexcept;
  [[nodiscard]] std::size_t available() const noexcept { return free_count_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return config_.count; }
  /// True if s is one of this pool's descriptors.
  [[nodiscard]] bool owns(const segment* s) const noexcept;

  /// One fresh segment, or null (counted in alloc_failures) when the pool is empty. Inline and
  /// non-virtual: buffer_pool::alloc() comes here for a packet_pool.
  segment* take_one() noexcept {
    if (free_count_ == 0) {
      ++alloc_failures_;
      return nullptr;
    }
    segment* s = free_list_[--free_count_];
    prepare(s);
    ++allocations_;
    return s;
  }

 private:
  void prepare(segment* s) noexcept {
    const auto index = static_cast<std::size_t>(s - descriptors_.get());
    s->buf = memory_.get() + index * config_.buffer_size;
    s->buf_len = config_.buffer_size;
    s->data_off = config_.headroom;
    s->data_len = 0;
    ++s->generation;
    s->next = nullptr;
    s->native = nullptr;
    s->ext = nullptr;
    s->last = s;
    s->pkt_len = 0;
    s->nb_segs = 1;
    s->status = segment::state::in_use;
    s->meta = packet_meta{};
  }

  packet_pool_config config_;
  std::unique_ptr<segment[]> descriptors_;
  std::unique_ptr<std::byte[]> memory_;
  std::unique_ptr<segment*[]> free_list_;
  std::size_t free_count_ = 0;
  std::uint64_t allocations_ = 0;
  std::uint64_t alloc_failures_ = 0;
  std::uint64_t double_frees_ = 0;
  std::uint64_t foreign_frees_ = 0;
};

inline packet buffer_pool::alloc() noexcept {
  segment* s = lifo_ != nullptr ? lifo_->take_one() : take_cached();
  return s != nullptr ? packet::adopt(s) : packet{};
}

}  // namespace dpdk_net
