// The DPDK backend: an ethdev port as a dpdk_net::device, with zero-copy packet handles.
//
// Every mbuf of the port's mempools carries a dpdk_net::segment in its private area. rx_burst fills
// those descriptors from the mbufs the driver returned (a few stores per mbuf, no copy); tx_burst
// writes lengths, offsets, chaining and offload flags back into the mbufs and hands them to the
// driver. A segment that points into an external buffer (the TCP send path's zero-copy data) is
// sent as a DPDK external buffer attached to the segment's mbuf: no copy either.
//
// Each queue has its own mempool (on the port's NUMA node): rx queue q fills from pool q and
// tx_pool(q) allocates from it, so a worker allocates and frees on its own lcore's cache. Any of
// the port's mbufs may be sent on any of its queues (DPDK frees an mbuf to its own mempool).
//
// This header includes no DPDK header: applications need neither DPDK's include paths nor its
// -march flags.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "dpdk_net/device.hpp"
#include "dpdk_net/dpdk/eal.hpp"

struct rte_mempool;  // DPDK's, declared only: no DPDK header here
struct rte_mbuf;

namespace dpdk_net::dpdk {

namespace detail {
class mbuf_pool;  // buffer_pool over one queue's rte_mempool (src/mbuf_pool.hpp)
}  // namespace detail

struct port_config {
  std::string name;  ///< ethdev name, e.g. "net_ring0", "net_memif0", "0000:3b:00.0"
  std::uint16_t rx_queues = 1;
  std::uint16_t tx_queues = 1;
  std::uint16_t rx_descriptors = 1024;
  std::uint16_t tx_descriptors = 1024;
  /// mbufs per queue (each queue has its own mempool; 2^n - 1 suits DPDK's rings). Size it with
  /// mbufs_needed() from what the stack on that queue may hold (docs/dpdk.md has the sums).
  std::uint32_t mbufs = 8191;
  std::uint32_t mbuf_cache = 256;  ///< per-lcore cache of each mempool
  /// bytes per mbuf buffer, headroom (128) included; must hold the largest frame (mtu + 18 + 128)
  std::uint16_t data_room = 2048 + 128;
  std::uint16_t mtu = 1500;
  bool promiscuous = false;
  /// The port's MAC (rte_eth_dev_default_mac_addr_set). None: the driver's; a driver that has
  /// none (00:00:00:00:00:00, e.g. rings) gets the locally administered 02:64:6e:00:00:<port id>.
  std::optional<mac_address> mac;
  /// With several rx queues on a port that hashes: program our key (default_rss_key) and the
  /// table queue = entry % rx_queues at start, so rss() is known before the runtime asks.
  bool program_rss = true;
  /// Take the rx timestamp offload where the port has it (packet_meta::rx_timestamp_ns then
  /// holds the device's clock, see docs/dpdk.md).
  bool rx_timestamps = false;
};

/// What the mempool of one queue must hold, as the sum of its parts (docs/dpdk.md).
struct mbuf_budget {
  std::uint32_t rx_descriptors = 1024;  ///< the driver keeps its rx ring full
  std::uint32_t tx_descriptors = 1024;  ///< sent, not yet freed by the driver
  std::uint32_t held_by_stack = 0;      ///< frames the stack may hold at once (stack::frames_held)
  std::uint32_t handover = 0;           ///< frames in flight between workers (multi_runtime)
  std::uint32_t cache = 256;            ///< the per-lcore cache of each thread that frees into it
  std::uint32_t lcores = 1;             ///< threads that may free into it
};
/// The mbuf count for one queue's mempool: the sum, plus bursts in hand, rounded up to 2^n - 1.
[[nodiscard]] std::uint32_t mbufs_needed(const mbuf_budget& b) noexcept;

/// Counters the backend keeps itself (the driver's own are in device_stats).
struct dpdk_port_counters {
  std::uint64_t tx_copied = 0;      ///< packets from a foreign pool copied into an mbuf to send
  std::uint64_t tx_too_big = 0;     ///< foreign packets too large to copy into one mbuf (dropped)
  std::uint64_t tx_unprepared = 0;  ///< refused by rte_eth_tx_prepare (dropped, also in tx_dropped)
  std::uint64_t alloc_failures = 0;      ///< mbuf allocations that found the mempool empty
  std::uint64_t double_frees = 0;        ///< free of an mbuf segment already free (API misuse)
  std::uint64_t foreign_frees = 0;       ///< free of a segment of another pool (API misuse)
  std::uint64_t stale_frees = 0;         ///< free through a stale packet handle (generation builds)
  std::uint64_t mempool_free_calls = 0;  ///< rte_pktmbuf_free_bulk calls (one per freed burst)
  std::uint64_t virtual_alloc_calls = 0;  ///< alloc_bulk calls behind alloc()/alloc_burst()
  std::uint64_t tx_segment_visits = 0;    ///< segments tx_burst touched (each chain walked once)
  std::uint64_t tx_external = 0;  ///< external segments sent as attached DPDK external buffers
};

/// Creates two ethdevs wired back to back through rte_rings (net_ring from rings), named
/// "net_ring_<a>" and "net_ring_<b>" (the ring PMD's prefix): what one sends on queue q, the
/// other receives on queue q. For tests and demos in one process (two stacks over real ethdevs
/// without a NIC). Open them with dpdk_device::open. Returns an empty string, or why not.
/// The receiver gets the sender's mbufs themselves: a zero-copy frame's external_buffer reference
/// is dropped where the receiver frees it, so drive both ports from one thread when sending
/// external data (external_buffer counts are not atomic); frames left in the rings when the
/// ports close are never freed.
std::string create_ring_pair(const std::string& a, const std::string& b, std::uint16_t queues,
                             unsigned ring_size = 1024);

class dpdk_device final : public device {
 public:
  /// Configures and starts the port. Returns null with a message naming the fix on failure.
  static std::unique_ptr<dpdk_device> open(const port_config& config, std::string& error);
  ~dpdk_device() override;

  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override;
  [[nodiscard]] link_status link() const noexcept override;
  [[nodiscard]] device_stats stats() const noexcept override;
  [[nodiscard]] std::vector<named_counter> extended_stats() const override;
  [[nodiscard]] rss_config rss() const override;
  /// Updates the hash key and types (rte_eth_dev_rss_hash_update) and the redirection table
  /// (rte_eth_dev_rss_reta_update). not_supported on a port without RSS (one rx queue, or a
  /// driver that does not hash: net_ring, net_memif, net_af_packet); invalid_argument for a key
  /// or table of another size, hash types the port lacks, or a queue it does not have.
  std::error_code configure_rss(const rss_config& config) override;
  [[nodiscard]] dpdk_port_counters counters() const noexcept;
  [[nodiscard]] std::uint16_t port_id() const noexcept { return port_id_; }
  [[nodiscard]] const std::string& driver() const noexcept { return driver_; }
  /// mbufs of this port's mempools not in a pool right now (held by the application, the stack,
  /// the driver's rings or alloc() caches excluded): 0 once everything was freed.
  [[nodiscard]] std::size_t mbufs_in_use() const noexcept;
  /// Registers memory that external segments point into (a TCP send buffer) for DMA by the
  /// port's device (rte_extmem_register + rte_dev_dma_map). Virtual devices copy from the virtual
  /// address and need none of it (they report success); a NIC bound to vfio-pci needs it before
  /// its first zero-copy send. Returns an empty string or why not.
  std::string register_external_memory(void* address, std::size_t length);

 private:
  dpdk_device() = default;
  std::uint16_t port_id_ = 0;
  device_info info_;
  std::string driver_;
  std::vector<rte_mempool*> mempools_;                     // one per queue (freed last)
  std::vector<std::unique_ptr<detail::mbuf_pool>> pools_;  // one per queue, over mempools_
  // Software counters: queues run on different lcores, so they are atomic (relaxed).
  struct soft_counters {
    std::atomic<std::uint64_t> bad_queue{0}, tx_dropped{0}, tx_busy{0};
    std::atomic<std::uint64_t> tx_copied{0}, tx_too_big{0}, tx_unprepared{0}, tx_segment_visits{0};
    std::atomic<std::uint64_t> tx_external{0};
  };
  soft_counters soft_;
  std::uint8_t tx_offloads_ = 0;  // tx_offload_request flags the port was configured for
  bool attach_external_ = false;  // tx_multi_segment: external segments go as attached mbufs
  bool iova_as_va_ = false;       // IOVA-as-VA: an external buffer's IOVA is its address
  int timestamp_offset_ = -1;     // the rx timestamp dynamic field, if enabled
  std::uint64_t timestamp_flag_ = 0;
  bool configured_ = false;
  bool started_ = false;
  std::vector<std::pair<void*, std::size_t>> registered_;  // register_external_memory
  [[nodiscard]] bool ours(const segment* s, std::uint16_t queue) const noexcept;
  rte_mbuf* write_chain(segment* head, std::uint16_t queue, std::uint64_t& visits,
                        std::uint64_t& external) noexcept;
};

}  // namespace dpdk_net::dpdk
