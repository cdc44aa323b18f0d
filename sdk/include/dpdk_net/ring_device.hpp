// A thread-safe multi-queue in-memory device pair: two devices joined back to back through
// lock-free rings, so that distinct queues can be driven from distinct threads at once (a worker
// thread per queue), as on a real multi-queue NIC. For tests of the multi-core runtime with real
// threads; memory_device (one thread, the packet handle travels) and the simulator (one thread,
// simulated time) cannot do that.
//
// What travels. tx_burst copies each frame's bytes into a preallocated ring slot and frees the
// packet at once, on the calling thread (so a packet never crosses threads and every pool stays
// single-threaded, as packet_pool requires); rx_burst allocates from the receiving queue's own
// pool and copies the bytes out. A chained packet is linearized by that copy (so info() says
// tx_multi_segment = false, but a chain is accepted). Nothing of the sender's metadata travels:
// rx metadata is fresh (queue, and the RSS hash with rss steering). No offloads are advertised and
// tx offload requests (packet_meta::tx) are ignored: the bytes travel as they are.
//
// Steering (ring_link_config::steering), like the three kinds of device the runtime must handle:
//  * rss: the receiving end computes a Toeplitz hash over its rss_config, as a NIC does: an IPv4
//    TCP or UDP frame that is not a fragment (MF clear, offset 0) by its 4-tuple
//    (rss_hash_ipv4_l4), any other IPv4 frame (fragments, ICMP, other protocols) by its address
//    pair (rss_hash_ipv4); up to two VLAN tags are skipped. The frame goes to rx queue
//    reta[hash % reta.size()] and carries the hash (packet_meta::rss_hash_valid). Anything else
//    (ARP, IPv6, a runt, a hash type not enabled in rss_config::hash_types) goes to rx queue 0
//    without a hash. A 4-tuple type disabled while rss_hash::ipv4 is enabled falls back to the
//    address pair.
//  * same_queue: a frame sent on tx queue q arrives on rx queue q (memif, net_ring: no RSS).
//  * queue0: everything arrives on rx queue 0 (a device that cannot steer).
//
// Rings. One single-producer single-consumer ring per (sender tx queue, receiver rx queue) pair
// that the steering can use, so each ring has exactly one producer thread (the sender's tx queue)
// and one consumer thread (the receiver's rx queue): no lock and no read-modify-write, only an
// acquire load and a release store of the other side's index (the producer publishes slot bytes
// with a release store of the tail, the consumer reads them after an acquire load of it; the
// consumer hands the slot back with a release store of the head, the producer overwrites it only
// after an acquire load). Each side caches the other's index and reloads it only when the ring
// looks full (producer) or empty (consumer). rx_burst polls the rings feeding its queue starting
// after the ring it last took frames from, so a busy sender cannot starve another: every ring with
// frames is served within (number of senders) calls.
//
// Back-pressure, never loss. A full ring makes tx_burst stop at the frame bound for it and return
// the count taken (tx_busy counts the rest), even if later frames of the burst would go to other
// rings: order is kept. A receiving pool that runs dry leaves frames in their ring (they arrive
// once the application frees buffers; meanwhile the ring fills and the sender sees tx_busy), like
// memif: rx_dropped stays 0. A frame longer than a slot (mtu + 22 bytes: Ethernet, two VLAN tags)
// is freed and counted (tx_dropped).
//
// Threads. A queue (its rx and tx sides, its pool) is driven from one thread at a time; distinct
// queues, of either end, from distinct threads at once (info().thread_safe_queues). stats(),
// queue_stats() and rx_pending() may be read from any thread while the queues run: the counters
// are relaxed atomics, each written only by its queue's thread. configure_rss() is not
// synchronized with traffic: call it before the threads that drive the peer's tx queues start.
//
// Costs. Per frame: one copy in, one copy out, a Toeplitz hash (rss steering), no allocation, lock
// or syscall. Memory, allocated up front (slot memory is not touched until used): per end
// queues x queues rings with rss steering (queues with the others) of bit_ceil(ring_size) slots
// of mtu + 22 bytes rounded up to 64, plus queues pools of pool_size buffers of
// 128 + mtu + 22 bytes (rounded up to 64), which packet_pool zero-fills (the cost of building a
// link: small pool_size in unit tests). The link refuses configurations needing more than 4 GiB
// of ring slots.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/device.hpp"

namespace dpdk_net {

/// Where a frame sent on one end arrives at the other (see the top of this file).
enum class ring_steering : std::uint8_t {
  rss,         ///< Toeplitz RSS over the receiving end's rss_config (like a NIC)
  same_queue,  ///< frame sent on tx queue q arrives on rx queue q (like memif: no RSS)
  queue0,      ///< everything arrives on rx queue 0 (a device that cannot steer)
};

struct ring_link_config {
  std::uint16_t queues = 2;      ///< rx = tx queues on each end (1..64)
  std::size_t ring_size = 1024;  ///< frames per (tx queue -> rx queue) ring (power of 2 rounded up)
  std::size_t pool_size = 4096;  ///< buffers per queue pool (each end, each queue)
  std::uint16_t mtu = 1500;      ///< 68..65535; frames up to mtu + 22 bytes travel
  ring_steering steering = ring_steering::rss;
  mac_address mac_a{{0x02, 0x00, 0x00, 0x00, 0x0a, 0x01}};
  mac_address mac_b{{0x02, 0x00, 0x00, 0x00, 0x0b, 0x01}};
};

class ring_link;

class ring_device final : public device {
 public:
  /// Largest frame a slot holds beyond the MTU: Ethernet header and two VLAN tags.
  static constexpr std::size_t max_l2_overhead = 22;
  /// Headroom of every pool buffer.
  static constexpr std::uint32_t headroom = 128;

  ring_device(const ring_device&) = delete;
  ring_device& operator=(const ring_device&) = delete;
  ~ring_device() override;

  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  /// Polls the rings feeding rx queue `queue` (round-robin start), copying frames into buffers of
  /// pool(queue). Fewer than out.size() when the rings are empty or the pool is dry.
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  /// Steers each packet to an rx queue of the peer, copies it into that ring and frees it here.
  /// Stops at the first packet whose ring is full (tx_busy counts the packets left).
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  /// pool(queue); a bad queue is counted (bad_queue) and gets pool 0.
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override;
  [[nodiscard]] link_status link() const noexcept override { return link_status{true, 0}; }
  /// Sum of the queue counters (+ bad_queue). Safe from any thread.
  [[nodiscard]] device_stats stats() const noexcept override;

  /// The receive RSS configuration (rss steering; empty otherwise).
  [[nodiscard]] rss_config rss() const override;
  /// Replaces the receive RSS configuration: not_supported without rss steering; invalid_argument
  /// unless key has key_size (40) bytes, reta has reta_size (128) entries each naming a queue,
  /// and hash_types is within the capabilities (0 = RSS off: everything to rx queue 0). Not
  /// synchronized with traffic: call before the peer's tx threads start.
  std::error_code configure_rss(const rss_config& config) override;

  /// One queue's counters (rx_* and tx_*; bad_queue 0); zeros for a bad queue. Safe from any
  /// thread.
  [[nodiscard]] device_stats queue_stats(std::uint16_t queue) const noexcept;
  /// The pool of queue `queue` (rx buffers and tx_pool); a bad queue gets pool 0 (not counted).
  [[nodiscard]] packet_pool& pool(std::uint16_t queue) noexcept;
  /// Frames waiting in the rings feeding rx queue `queue` (a snapshot while senders run).
  [[nodiscard]] std::size_t rx_pending(std::uint16_t queue) const noexcept;
  [[nodiscard]] ring_steering steering() const noexcept { return steering_; }
  /// Longest frame that travels: mtu + max_l2_overhead.
  [[nodiscard]] std::size_t max_frame() const noexcept { return max_frame_; }

 private:
  friend class ring_link;
  struct ring;
  struct queue_state;
  struct route {
    std::uint16_t queue = 0;
    std::uint32_t hash = 0;
    bool hash_valid = false;
  };

  ring_device(const ring_link_config& config, mac_address mac, const char* name);
  /// The rx queue of this end (the receiver) a frame sent on the peer's tx queue goes to.
  [[nodiscard]] route steer(const packet& p, std::uint16_t tx_queue) const noexcept;
  [[nodiscard]] route rss_route(const packet& p) const noexcept;
  [[nodiscard]] ring& ring_for(std::uint16_t rx_queue, std::uint16_t tx_queue) noexcept;

  device_info info_;
  ring_steering steering_;
  std::uint16_t queues_;
  std::size_t max_frame_;
  ring_device* peer_ = nullptr;
  rss_config rss_;                           // rss steering only; read by the peer's tx threads
  std::unique_ptr<ring[]> rings_;            // [rx * queues + tx]: rings feeding this end
  std::vector<std::vector<ring*>> sources_;  // per rx queue: the rings that can feed it
  std::unique_ptr<queue_state[]> state_;     // per queue
  std::atomic<std::uint64_t> bad_queue_{0};  // any thread (misuse)
};

/// Owns both ends of the link.
class ring_link {
 public:
  /// Throws std::invalid_argument for a bad config (queues outside 1..64, ring_size outside
  /// 1..2^20, pool_size 0, mtu below 68, more than 4 GiB of ring slots), std::bad_alloc if the
  /// memory is not there.
  explicit ring_link(const ring_link_config& config = {});
  ring_link(const ring_link&) = delete;
  ring_link& operator=(const ring_link&) = delete;
  ~ring_link();

  [[nodiscard]] ring_device& a() noexcept { return *a_; }
  [[nodiscard]] ring_device& b() noexcept { return *b_; }
  [[nodiscard]] const ring_link_config& config() const noexcept { return config_; }

 private:
  ring_link_config config_;
  std::unique_ptr<ring_device> a_;
  std::unique_ptr<ring_device> b_;
};

}  // namespace dpdk_net
