// Buffer pools: where segments come from and go back to.
//
// `buffer_pool` is the interface a backend implements when its buffers are not ours (the DPDK
// backend wraps an rte_mempool). `packet_pool` is our own: one preallocated slab of descriptors and
// buffer memory, a LIFO free list (recently freed buffers are cache-warm), no allocation after
// construction, single-threaded (one pool per core or per device queue).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dpdk_net/packet.hpp"

namespace dpdk_net {

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

  /// One packet of one segment, or an empty packet if the pool is exhausted.
  packet alloc() noexcept;
  /// Fills out[0..n) with packets; returns n (< out.size() only when the pool runs dry).
  std::size_t alloc_burst(std::span<packet> out) noexcept;
  /// A packet of one segment whose data is the byte range [offset, offset+length) of an external
  /// buffer (no copy); takes one reference on it. Empty if the pool is exhausted or the range is
  /// outside the buffer.
  packet attach_external(external_buffer& ext, std::size_t offset, std::size_t length) noexcept;
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

 private:
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

}  // namespace dpdk_net
