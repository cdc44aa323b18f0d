// The live pcap backend: a Linux network interface, through libpcap, as a dpdk_net::device. Our
// stack is one more host on the interface's link, with a MAC of its own (the interface is opened
// promiscuous), next to the kernel, which keeps its own address and MAC there.
//
// One rx/tx queue. rx_burst takes up to a burst of frames from libpcap (pcap_next_ex, non-blocking,
// immediate mode) and copies each into a packet of the device's own packet_pool (nothing is
// allocated per packet); only frames coming in are seen (pcap_setdirection(PCAP_D_IN)), never our
// own. tx_burst sends each frame with pcap_inject (one syscall per frame, as TAP); a chained packet
// is first copied into a scratch buffer allocated once. rx_wait_handle is libpcap's selectable
// descriptor, so the runtime sleeps on it.
//
// Counters are relaxed atomics written by the queue's thread only; stats() may be called from any
// thread. Needs root (CAP_NET_RAW) and an interface that exists and is up; the kernel's side
// should have its checksum offloads off (ethtool -K IF tx off rx off): a frame the kernel sends
// with a partial checksum reaches us as it is, and our stack drops it as malformed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/device.hpp"

namespace dpdk_net::pcap {

struct pcap_config {
  std::string iface;                 ///< an existing interface (e.g. a veth end), up
  std::optional<mac_address> mac;    ///< our MAC; default: random, locally administered
  std::optional<std::uint16_t> mtu;  ///< default: the interface's MTU (SIOCGIFMTU)
  std::size_t pool_size = 4096;      ///< buffers for received and transmitted frames
  /// libpcap's kernel buffer (pcap_set_buffer_size), bytes: what may queue while we are busy.
  std::uint32_t kernel_buffer = 4U << 20U;
};

struct pcap_counters {
  std::uint64_t rx_truncated = 0;   ///< frames longer than MTU + 18 bytes (dropped)
  std::uint64_t rx_no_buffer = 0;   ///< frames dropped because the pool was empty
  std::uint64_t tx_errors = 0;      ///< frames the kernel refused (other than "try again")
  std::uint64_t tx_linearised = 0;  ///< chained packets copied into the scratch buffer to send
  std::uint64_t rx_errors = 0;      ///< pcap_next_ex failures (the interface went away, ...)
};

class pcap_device final : public device {
 public:
  /// Opens the interface. Null with a message that names the fix on failure (no such interface,
  /// not root / no CAP_NET_RAW, interface down, a bad MTU).
  static std::unique_ptr<pcap_device> open(const pcap_config& config, std::string& error);
  ~pcap_device() override;

  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override;
  /// Up and running, from the interface's flags (one ioctl: a control-path call).
  [[nodiscard]] link_status link() const noexcept override;
  [[nodiscard]] device_stats stats() const noexcept override;
  /// "pcap_ps_recv", "pcap_ps_drop", "pcap_ps_ifdrop" (libpcap's pcap_stats, as of the last
  /// rx_burst that refreshed them: every 1024th) and the pcap_counters.
  [[nodiscard]] std::vector<named_counter> extended_stats() const override;
  [[nodiscard]] wait_handle rx_wait_handle(std::uint16_t queue) const noexcept override;
  [[nodiscard]] pcap_counters counters() const noexcept;
  /// libpcap's selectable descriptor.
  [[nodiscard]] int fd() const noexcept;

 private:
  struct state;
  pcap_device();
  device_info info_;
  std::unique_ptr<state> s_;
};

}  // namespace dpdk_net::pcap
