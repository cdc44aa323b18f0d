// The backend-neutral packet device: what every backend (DPDK, TAP, pcap, simulator, in-memory)
// implements and the stack drives. Backends know nothing of IP or TCP.
//
// Cost model: one virtual call per burst (never per packet); no allocation, lock or syscall in
// rx_burst/tx_burst except where the medium makes it inherent (TAP: one read/write per frame).
// A device and its queues are driven from one thread per queue; different queues may be driven from
// different threads only if the backend says so (device_info::thread_safe_queues).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/mac_address.hpp"
#include "dpdk_net/packet.hpp"

namespace dpdk_net {

/// Largest burst any device moves in one call; callers size their arrays with it.
inline constexpr std::size_t max_burst = 64;

/// Checksum/segmentation offloads, as a bit set.
enum class offload : std::uint32_t {
  ipv4_checksum = 1U << 0U,
  tcp_checksum = 1U << 1U,
  udp_checksum = 1U << 2U,
  tcp_segmentation = 1U << 3U,  ///< TSO (transmit only)
};

class offload_set {
 public:
  constexpr offload_set() noexcept = default;
  constexpr offload_set(std::initializer_list<offload> list) noexcept {
    for (offload o : list) {
      bits_ |= static_cast<std::uint32_t>(o);
    }
  }
  [[nodiscard]] constexpr bool has(offload o) const noexcept {
    return (bits_ & static_cast<std::uint32_t>(o)) != 0;
  }
  constexpr void add(offload o) noexcept { bits_ |= static_cast<std::uint32_t>(o); }
  [[nodiscard]] constexpr std::uint32_t bits() const noexcept { return bits_; }
  friend constexpr bool operator==(offload_set, offload_set) noexcept = default;

 private:
  std::uint32_t bits_ = 0;
};

/// Which header fields a receive-side scaling hash covers, as a bit set.
namespace rss_hash {
inline constexpr std::uint32_t ipv4 = 1U << 0U;      ///< src/dst address
inline constexpr std::uint32_t tcp_ipv4 = 1U << 1U;  ///< + TCP ports
inline constexpr std::uint32_t udp_ipv4 = 1U << 2U;  ///< + UDP ports
inline constexpr std::uint32_t ipv6 = 1U << 3U;
inline constexpr std::uint32_t tcp_ipv6 = 1U << 4U;
inline constexpr std::uint32_t udp_ipv6 = 1U << 5U;
}  // namespace rss_hash

/// Receive-side scaling: a Toeplitz hash over hash_types fields, then queue = reta[hash % size].
struct rss_config {
  std::uint32_t hash_types = 0;     ///< rss_hash bits; 0 = RSS off
  std::vector<std::uint8_t> key;    ///< Toeplitz key (40 bytes for IPv4/IPv6 5-tuples)
  std::vector<std::uint16_t> reta;  ///< redirection table: entry -> rx queue
};

struct rss_capabilities {
  std::uint32_t hash_types = 0;  ///< hash types the device can compute; 0 = no RSS
  std::uint16_t key_size = 0;    ///< bytes of Toeplitz key it takes
  std::uint16_t reta_size = 0;   ///< entries of its redirection table
};

struct link_status {
  bool up = false;
  std::uint32_t speed_mbps = 0;  ///< 0 = unknown
};

/// How a driver waits for received packets on one queue.
struct wait_handle {
  enum class kind : std::uint8_t {
    poll,  ///< poll-mode: call rx_burst in a loop (with an idle back-off)
    fd,    ///< readable file descriptor (epoll/Asio can wait on it)
  };
  kind mode = kind::poll;
  int fd = -1;

  static constexpr wait_handle poll() noexcept { return {}; }
  static constexpr wait_handle readable(int descriptor) noexcept { return {kind::fd, descriptor}; }
};

/// What a device is and can do. Fixed after the device is started.
struct device_info {
  std::string name;
  mac_address mac{};
  std::uint16_t mtu = 1500;  ///< largest L3 packet; frames may add 14 (+4 VLAN) bytes
  std::uint16_t rx_queues = 1;
  std::uint16_t tx_queues = 1;
  offload_set rx_offloads{};  ///< checksums the device verifies (packet_meta says the result)
  offload_set tx_offloads{};  ///< checksums/segmentation the device computes on request
  /// tx_burst takes packets of several chained segments (external data, TSO super-frames);
  /// without it every packet must be one segment.
  bool tx_multi_segment = false;
  rss_capabilities rss{};
  bool thread_safe_queues = false;  ///< distinct queues may be driven from distinct threads
};

/// Device counters (exact for software devices; what the driver reports for hardware).
struct device_stats {
  std::uint64_t rx_packets = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t rx_dropped = 0;  ///< received but dropped by the device (ring full, no buffer)
  std::uint64_t tx_packets = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_dropped = 0;  ///< accepted by tx_burst but dropped (oversize, link down)
  std::uint64_t tx_busy = 0;     ///< packets tx_burst declined because the queue was full
  std::uint64_t bad_queue = 0;   ///< calls naming a queue the device does not have (API misuse)
};

/// A counter a backend keeps beyond device_stats (a driver's extended statistics).
struct named_counter {
  std::string name;
  std::uint64_t value = 0;
};

class device {
 public:
  device() = default;
  device(const device&) = delete;
  device& operator=(const device&) = delete;
  virtual ~device() = default;

  [[nodiscard]] virtual const device_info& info() const noexcept = 0;

  /// Receives up to out.size() packets (out[i] must be empty) from rx queue `queue` into
  /// out[0..n) and returns n. Never blocks. The caller owns what it receives.
  virtual std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept = 0;

  /// Offers pkts to tx queue `queue`. Takes ownership of pkts[0..n) (they are left empty) and
  /// returns n; pkts[n..] stay with the caller (queue full: retry later or free them). A packet the
  /// device accepts but cannot send (too large, link down) is freed and counted in tx_dropped.
  virtual std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept = 0;

  /// Pool to allocate packets for tx queue `queue` from (zero copy: on DPDK these are mbufs).
  [[nodiscard]] virtual buffer_pool& tx_pool(std::uint16_t queue) noexcept = 0;

  [[nodiscard]] virtual link_status link() const noexcept = 0;
  [[nodiscard]] virtual device_stats stats() const noexcept = 0;
  /// The driver's own counters by name (DPDK's xstats); empty where there are none. Control path:
  /// it allocates.
  [[nodiscard]] virtual std::vector<named_counter> extended_stats() const { return {}; }

  /// How to wait for rx on `queue`: a readable fd, or poll.
  [[nodiscard]] virtual wait_handle rx_wait_handle(std::uint16_t queue) const noexcept {
    (void)queue;
    return wait_handle::poll();
  }

  /// Current RSS configuration (hash_types 0 if RSS is off or unsupported).
  [[nodiscard]] virtual rss_config rss() const { return {}; }
  /// Reconfigures RSS; not_supported unless the device advertises RSS, invalid_argument for a key
  /// or table of the wrong size or a table naming a queue the device does not have.
  virtual std::error_code configure_rss(const rss_config& config) {
    (void)config;
    return std::make_error_code(std::errc::not_supported);
  }
};

}  // namespace dpdk_net
