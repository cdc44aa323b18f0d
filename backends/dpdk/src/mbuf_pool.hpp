// Private to the DPDK backend: the layout of an mbuf's private area (our segment descriptor and
// the shared-info block of an attached external buffer), and the buffer_pool over one queue's
// rte_mempool.
#pragma once

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <new>
#include <span>

#include "dpdk_net/device.hpp"
#include "dpdk_net/dpdk/dpdk_device.hpp"

namespace dpdk_net::dpdk::detail {

/// What every mbuf of our mempools carries in its private area. `ext_info` is the shared-info
/// block DPDK needs when the mbuf points at external memory (a TCP send buffer) instead of its
/// own data room: its free callback drops our reference on the external_buffer when the driver
/// frees the mbuf after sending it.
struct mbuf_private {
  segment seg;
  rte_mbuf_ext_shared_info ext_info;
};

constexpr std::uint16_t private_size() noexcept {
  return static_cast<std::uint16_t>(RTE_ALIGN(sizeof(mbuf_private), RTE_MBUF_PRIV_ALIGN));
}

inline mbuf_private* private_of(rte_mbuf* m) noexcept {
  return static_cast<mbuf_private*>(rte_mbuf_to_priv(m));
}
/// The descriptor kept in an mbuf's private area.
inline segment* seg_of(rte_mbuf* m) noexcept {
  return &private_of(m)->seg;
}
inline rte_mbuf* mbuf_of(const segment* s) noexcept {
  return static_cast<rte_mbuf*>(s->native);
}

/// True if m points at external memory through its own ext_info (attached by tx_burst).
inline bool has_our_extbuf(rte_mbuf* m) noexcept {
  return RTE_MBUF_HAS_EXTBUF(m) && m->shinfo == &private_of(m)->ext_info;
}

/// ext_info's free callback: runs when the last reference to the attached memory is dropped
/// (the driver freed the mbuf after sending it). opaque is the external_buffer, or null when
/// the packet layer already dropped the reference itself.
void release_external(void* addr, void* opaque) noexcept;

/// A buffer_pool over one queue's rte_mempool. alloc()'s segment cache (buffer_pool) is
/// single-threaded: one pool object per queue, used on that queue's thread. Freeing is
/// thread-safe (DPDK's multi-producer mempool and atomic counters).
class mbuf_pool final : public buffer_pool {
 public:
  explicit mbuf_pool(rte_mempool* mp);
  ~mbuf_pool() override;
  mbuf_pool(const mbuf_pool&) = delete;
  mbuf_pool& operator=(const mbuf_pool&) = delete;

  std::size_t alloc_bulk(std::span<segment*> out) noexcept override;
  /// One rte_pktmbuf_free_bulk per call (per 64 segments), not one DPDK call per segment.
  void free_bulk(std::span<segment* const> segments) noexcept override;

  [[nodiscard]] rte_mempool* mempool() const noexcept { return mp_; }
  /// True if s is an mbuf of this pool's mempool.
  [[nodiscard]] bool holds(const segment* s) const noexcept {
    return s->native != nullptr && mbuf_of(s)->pool == mp_;
  }
  void add_to(dpdk_port_counters& c) const noexcept;

 private:
  void put(rte_mbuf** mbufs, unsigned n) noexcept;

  rte_mempool* mp_;
  std::atomic<std::uint64_t> free_bulk_calls_{0};
  std::atomic<std::uint64_t> alloc_failures_{0};
  std::atomic<std::uint64_t> double_frees_{0};
  std::atomic<std::uint64_t> foreign_frees_{0};
};

/// Where the port's rx timestamps are (a dynamic mbuf field), if it has them.
struct rx_timestamp_field {
  int offset = -1;         ///< -1: the port gives no timestamps
  std::uint64_t flag = 0;  ///< ol_flags bit saying this mbuf has one
};

/// Fills the descriptors of a received mbuf chain from the mbufs (the driver wrote the mbufs):
/// lengths and offsets, RSS hash, checksum verdicts, timestamp.
segment* adopt_rx_chain(rte_mbuf* head, std::uint16_t queue,
                        const rx_timestamp_field& timestamps) noexcept;

}  // namespace dpdk_net::dpdk::detail
