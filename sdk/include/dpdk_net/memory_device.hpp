// An in-memory device pair: two devices joined back to back, for tests and the demo.
//
// tx queue q of one end feeds rx queue (q mod rx_queues) of the other through a bounded ring; the
// packet handle itself moves (no copy). A full ring makes tx_burst take fewer packets (tx_busy),
// like a NIC whose descriptor ring is full. Frames longer than mtu + 18 bytes are dropped
// (tx_dropped). Single-threaded: both ends are driven from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/device.hpp"

namespace dpdk_net {

struct memory_link_config {
  std::uint16_t queues = 1;      ///< rx and tx queues on each end
  std::size_t ring_size = 256;   ///< packets each rx ring holds (rounded up to a power of two)
  std::size_t pool_size = 4096;  ///< buffers in each end's tx pool
  std::uint32_t buffer_size = 2176;
  std::uint16_t mtu = 1500;
  mac_address mac_a{{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}};
  mac_address mac_b{{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}};
};

class memory_link;

class memory_device final : public device {
 public:
  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override;
  [[nodiscard]] link_status link() const noexcept override;
  [[nodiscard]] device_stats stats() const noexcept override { return stats_; }

  /// Packets waiting in rx queue `queue`.
  [[nodiscard]] std::size_t rx_pending(std::uint16_t queue) const noexcept;
  [[nodiscard]] packet_pool& pool() noexcept { return *pool_; }

 private:
  friend class memory_link;
  struct ring {
    std::vector<segment*> slots;  // capacity is a power of two
    std::size_t head = 0;         // next to read
    std::size_t tail = 0;         // next to write
    [[nodiscard]] std::size_t size() const noexcept { return tail - head; }
    [[nodiscard]] std::size_t free() const noexcept { return slots.size() - size(); }
  };

  memory_device(memory_link& link, const memory_link_config& config, mac_address mac,
                const char* name);
  ~memory_device() override;

  memory_link* link_;
  memory_device* peer_ = nullptr;
  device_info info_;
  std::unique_ptr<packet_pool> pool_;
  std::vector<ring> rx_rings_;
  device_stats stats_{};
};

class memory_link {
 public:
  /// Throws std::invalid_argument for zero queues or ring size, or a bad pool config.
  explicit memory_link(const memory_link_config& config = {});
  memory_link(const memory_link&) = delete;
  memory_link& operator=(const memory_link&) = delete;
  ~memory_link();

  [[nodiscard]] memory_device& a() noexcept { return *a_; }
  [[nodiscard]] memory_device& b() noexcept { return *b_; }
  /// Takes the link down (both ends drop what they send) or up again.
  void set_up(bool up) noexcept { up_ = up; }
  [[nodiscard]] bool up() const noexcept { return up_; }

 private:
  struct deleter {
    void operator()(memory_device* d) const noexcept;
  };
  std::unique_ptr<memory_device, deleter> a_;
  std::unique_ptr<memory_device, deleter> b_;
  bool up_ = true;
};

}  // namespace dpdk_net
