// The DPDK backend: an ethdev port as a dpdk_net::device, with zero-copy packet handles.
//
// Every mbuf of the port's mempool carries a dpdk_net::segment in its private area. rx_burst fills
// those descriptors from the mbufs the driver returned (a few stores per mbuf, no copy); tx_burst
// writes lengths, offsets, chaining and offload flags back into the mbufs and hands them to the
// driver. This header includes no DPDK header: applications need neither DPDK's include paths nor
// its -march flags.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "dpdk_net/device.hpp"

struct rte_mempool;  // DPDK's, declared only: no DPDK header here

namespace dpdk_net::dpdk {

/// The DPDK Environment Abstraction Layer: initialised once per process.
class eal {
 public:
  /// Runs rte_eal_init with args (args[0] is the program name). Returns an empty string on success,
  /// else a message that names the fix (hugepages, permissions, a second init, a bad argument).
  static std::string init(const std::vector<std::string>& args);
  [[nodiscard]] static bool initialized() noexcept;
  /// rte_eal_cleanup; after it the process cannot use DPDK again.
  static void cleanup() noexcept;
};

struct port_config {
  std::string name;  ///< ethdev name, e.g. "net_ring0", "net_memif0", "0000:3b:00.0"
  std::uint16_t rx_queues = 1;
  std::uint16_t tx_queues = 1;
  std::uint16_t rx_descriptors = 1024;
  std::uint16_t tx_descriptors = 1024;
  std::uint32_t mbufs = 8191;            ///< mempool size (2^n - 1 is optimal for DPDK's rings)
  std::uint32_t mbuf_cache = 256;        ///< per-lcore cache
  std::uint16_t data_room = 2048 + 128;  ///< bytes per mbuf buffer, headroom included
  std::uint16_t mtu = 1500;
  bool promiscuous = false;
};

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
};

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
  [[nodiscard]] dpdk_port_counters counters() const noexcept;
  [[nodiscard]] std::uint16_t port_id() const noexcept { return port_id_; }

  class mbuf_pool;  // buffer_pool over an rte_mempool (implementation detail)

 private:
  dpdk_device() = default;
  std::uint16_t port_id_ = 0;
  device_info info_;
  rte_mempool* mempool_ = nullptr;                 // the port's mbufs (freed last)
  std::vector<std::unique_ptr<mbuf_pool>> pools_;  // one per tx queue, over mempool_
  // Software counters: queues run on different lcores, so they are atomic (relaxed).
  struct soft_counters {
    std::atomic<std::uint64_t> bad_queue{0}, tx_dropped{0}, tx_busy{0};
    std::atomic<std::uint64_t> tx_copied{0}, tx_too_big{0}, tx_unprepared{0}, tx_segment_visits{0};
  };
  soft_counters soft_;
  std::uint8_t tx_offloads_ = 0;  // tx_offload_request flags the port was configured for
  bool configured_ = false;
  bool started_ = false;
};

}  // namespace dpdk_net::dpdk
