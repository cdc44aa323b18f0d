// The TAP backend: a Linux TAP interface as a dpdk_net::device, so the kernel is our first peer.
//
// Frames are read and written one per syscall (inherent to TAP); rx_burst reads until the
// interface has nothing more (non-blocking) into a buffer it keeps between calls (an empty read
// allocates nothing), tx_burst writes each packet with writev (chained segments go out without
// being flattened). rx_wait_handle() gives the file descriptor, so an
// event loop can sleep on it instead of polling.
//
// Our end has its own MAC (the kernel's side of the TAP has another): we are the host "on the
// other end of the cable". Needs CAP_NET_ADMIN (root) and /dev/net/tun.
#pragma once

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
  std::size_t pool_size = 4096;    ///< buffers for received and transmitted frames
  std::optional<mac_address> mac;  ///< our MAC; default: locally administered, from the name
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
  /// Creates (or attaches to) the TAP interface. Null with a message that names the fix on
  /// failure (not root, no /dev/net/tun, a bad name).
  static std::unique_ptr<tap_device> open(const tap_config& config, std::string& error);
  ~tap_device() override;

  /// Configures the kernel's side: IPv6 off, the address, MTU, and the link up.
  bool configure_kernel_side(const kernel_side& side, std::string& error);

  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t /*queue*/) noexcept override { return *pool_; }
  [[nodiscard]] link_status link() const noexcept override { return {true, 0}; }
  [[nodiscard]] device_stats stats() const noexcept override { return stats_; }
  [[nodiscard]] wait_handle rx_wait_handle(std::uint16_t queue) const noexcept override;
  [[nodiscard]] tap_counters counters() const noexcept { return counters_; }
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  tap_device() = default;
  int fd_ = -1;
  device_info info_;
  std::unique_ptr<packet_pool> pool_;
  packet spare_;  // rx buffer kept across calls (declared after pool_: freed before it)
  device_stats stats_{};
  tap_counters counters_{};
};

}  // namespace dpdk_net::tap
