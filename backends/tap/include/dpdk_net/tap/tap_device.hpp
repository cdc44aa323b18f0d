// The TAP backend: a Linux TAP interface as a dpdk_net::device, so the kernel is our first peer.
//
// Frames are read and written one per syscall (inherent to TAP); rx_burst reads until the
// queue has nothing more (non-blocking) into a buffer it keeps between calls (an empty read
// allocates nothing), tx_burst writes each packet with writev (chained segments go out without
// being flattened). rx_wait_handle(q) gives queue q's file descriptor, so an event loop can sleep
// on it instead of polling.
//
// Queues: with tap_config::queues > 1 the interface is opened with IFF_MULTI_QUEUE, one file
// descriptor per queue. Each queue has its own descriptor, its own packet_pool (pool_size buffers),
// its own rx buffer and its own counters, so distinct queues may be driven from distinct threads
// at once (info().thread_safe_queues). A pool is single-threaded like every packet_pool: a packet
// received on queue q, or allocated from tx_pool(q), must be freed on q's thread. The kernel
// chooses the queue of each frame it sends us by its own flow hash (and steers a flow back to the
// queue we last sent that flow on); we cannot configure it, so info().rss is empty and a
// multi-queue user spreads flows in software. Writes may go out on any queue.
//
// Counters are per queue, relaxed atomics written only by the queue's own thread; stats() and
// counters() sum them and may be called from any thread while the queues run.
//
// Our end has its own MAC (the kernel's side of the TAP has another): we are the host "on the
// other end of the cable". Needs CAP_NET_ADMIN (root) and /dev/net/tun.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/device.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::tap {

struct tap_config {
  std::string name;  ///< interface name (at most 15 characters), created if absent
  std::uint16_t mtu = 1500;
  std::size_t pool_size = 4096;    ///< buffers for received and transmitted frames, per queue
  std::optional<mac_address> mac;  ///< our MAC; default: locally administered, from the name
  /// Rx/tx queue pairs, 1 to 256. More than 1 opens the interface with IFF_MULTI_QUEUE (an
  /// existing interface must have been created multi-queue too).
  std::uint16_t queues = 1;
};

/// The kernel's side of the interface: its address, and IPv6 off (or router solicitations and
/// MLD reports from the kernel show up as noise).
struct kernel_side {
  wire::ipv4_address address{};
  std::uint8_t prefix_length = 24;
  bool disable_ipv6 = true;
};

struct tap_counters {
  std::uint64_t rx_truncated = 0;  ///< frames longer than MTU + 18 bytes (dropped)
  std::uint64_t tx_errors = 0;     ///< writes the kernel refused (other than "try again")
  std::uint64_t rx_no_buffer = 0;  ///< frames left in the kernel because the pool was empty
};

class tap_device final : public device {
 public:
  /// Most queues the kernel gives one TAP interface (MAX_TAP_QUEUES).
  static constexpr std::uint16_t max_queues = 256;

  /// Creates (or attaches to) the TAP interface. Null with a message that names the fix on
  /// failure (not root, no /dev/net/tun, a bad name, a bad queue count).
  static std::unique_ptr<tap_device> open(const tap_config& config, std::string& error);
  ~tap_device() override;

  /// Configures the kernel's side: IPv6 off, the address, MTU, and the link up.
  bool configure_kernel_side(const kernel_side& side, std::string& error);

  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  /// Queue `queue`'s pool; a queue the device does not have is counted in bad_queue and gets
  /// queue 0's pool.
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override;
  [[nodiscard]] link_status link() const noexcept override { return {true, 0}; }
  /// Sum over the queues.
  [[nodiscard]] device_stats stats() const noexcept override;
  /// Queue `queue`'s file descriptor; poll() for a queue the device does not have.
  [[nodiscard]] wait_handle rx_wait_handle(std::uint16_t queue) const noexcept override;
  /// Sum over the queues.
  [[nodiscard]] tap_counters counters() const noexcept;
  /// One queue's counters (all zero for a queue the device does not have; bad_queue is counted
  /// for the device, not a queue, and only appears in stats()).
  [[nodiscard]] device_stats queue_stats(std::uint16_t queue) const noexcept;
  [[nodiscard]] std::uint64_t queue_rx_packets(std::uint16_t queue) const noexcept {
    return queue_stats(queue).rx_packets;
  }
  /// Queue `queue`'s file descriptor (-1 for a queue the device does not have).
  [[nodiscard]] int fd(std::uint16_t queue = 0) const noexcept;

 private:
  struct queue_state;
  tap_device();
  device_info info_;
  std::unique_ptr<queue_state[]> queues_;
  std::atomic<std::uint64_t> bad_queue_{0};
};

}  // namespace dpdk_net::tap
