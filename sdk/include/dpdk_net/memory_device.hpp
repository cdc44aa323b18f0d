// An in-memory device pair: two devices joined back to back, for tests and the demo.
//
// tx queue q of one end feeds rx queue (q mod rx_queues) of the other through a bounded ring; the
// packet handle itself moves (no copy). A full ring makes tx_burst take fewer packets (tx_busy),
// like a NIC whose descriptor ring is full. Frames longer than mtu + 18 bytes are dropped
// (tx_dropped). Single-threaded: both ends are driven from one thread. tx_burst takes chains
// (info().tx_multi_segment), external segments included.
//
// Offload emulation (memory_link_config::offloads), so the stack's offload paths run without a NIC.
// The semantics are DPDK's, as a NIC applies them:
//  * Transmit. A packet's meta().tx.flags ask for work the device does before the frame travels:
//    - ipv4_checksum: the IPv4 header checksum is computed (the stack leaves the field 0; a
//      non-zero field is ignored, and counted as a seed mismatch).
//    - tcp_checksum / udp_checksum: the field holds the pseudo-header sum (rte_ipv4_phdr_cksum:
//      addresses, protocol and L4 length, folded, not inverted); the device sums the L4 bytes,
//      field included, and writes the complement, as hardware does. So a right seed gives the
//      software checksum and a wrong one a wrong checksum, which the peer sees as bad; seeds that
//      are not what DPDK expects are also counted (memory_offload_counters::tx_seed_mismatch). A
//      UDP result of 0 is sent as 0xffff (RFC 768).
//    - tcp_segmentation (implies the TCP checksum and, per piece, the IPv4 checksum): the
//      super-frame (l2_len + l3_len + l4_len header bytes in its first segment, then payload over
//      any chain) is cut into frames of at most tx.tso_mss payload bytes, allocated from this
//      end's pool: headers copied, IPv4 total length set and id + i on the i-th piece, TCP seq
//      advanced, FIN and PSH on the last piece only, CWR on the first only. The TCP seed here is
//      the pseudo-header sum WITHOUT the length; each piece's L4 length is added to it. The
//      super-frame's IPv4 total length is not read (the packet length rules, as on a NIC). The
//      super-frame is freed once its pieces are queued (external references dropped). The MTU
//      check applies to the pieces. All-or-nothing: a ring without room for every piece declines
//      the super-frame (tx_busy, left untouched with the caller); a pool running dry mid-split
//      drops it (tx_dropped, tx_no_buffer) and frees the pieces built so far.
//    Refused and dropped (tx_dropped), because only a stack bug sends them: a request for an
//    offload the device does not advertise (tx_unadvertised); a request the frame contradicts --
//    l2_len/l3_len/l4_len not matching the headers, not IPv4, the wrong protocol, an L4 checksum
//    on a fragment, headers not in a pool-owned first segment, tso_mss 0 (tx_malformed).
//    tx_packets and tx_bytes count frames on the wire (pieces, not super-frames).
//  * Receive. When the receiving end advertises rx checksum offloads, rx_burst checks IPv4 header
//    (ipv4_checksum) and TCP/UDP checksums (tcp_checksum, udp_checksum) of IPv4 frames and sets
//    packet_meta::ip_checksum / l4_checksum to good or bad; it leaves unknown what it did not
//    check (offload not advertised, not IPv4, a fragment, lengths that do not add up). A UDP
//    checksum of 0 (none sent) is good. The sender's tx request never travels: rx meta is fresh.
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
  /// Offloads both ends advertise: as tx_offloads all of them, as rx_offloads the checksums
  /// (tcp_segmentation is transmit only). Empty: a plain device, tx flags must be 0.
  offload_set offloads{};
  mac_address mac_a{{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}};
  mac_address mac_b{{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}};
};

class memory_link;

/// What the offload emulation did and refused (exact; see the top of this file).
struct memory_offload_counters {
  std::uint64_t tx_checksummed = 0;   ///< frames whose checksums were filled (not TSO)
  std::uint64_t tx_segmented = 0;     ///< TSO super-frames split
  std::uint64_t tx_segments = 0;      ///< frames they were split into
  std::uint64_t tx_unadvertised = 0;  ///< dropped: asked for an offload not advertised
  std::uint64_t tx_malformed = 0;     ///< dropped: the request contradicts the frame
  std::uint64_t tx_no_buffer = 0;     ///< dropped: the pool ran dry while splitting
  /// Sent, but the stack's preparation was not DPDK's (IPv4 checksum field not 0, L4 field not
  /// the pseudo-header sum): on hardware such a frame carries a wrong checksum, and so it does
  /// here.
  std::uint64_t tx_seed_mismatch = 0;
  std::uint64_t rx_ip_bad = 0;  ///< frames received with ip_checksum == bad
  std::uint64_t rx_l4_bad = 0;  ///< frames received with l4_checksum == bad
};

class memory_device final : public device {
 public:
  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override;
  [[nodiscard]] link_status link() const noexcept override;
  [[nodiscard]] device_stats stats() const noexcept override { return stats_; }
  [[nodiscard]] const memory_offload_counters& offload_stats() const noexcept { return offload_; }

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

  enum class verdict : std::uint8_t { send, drop, busy };
  struct tx_layout;

  memory_device(memory_link& link, const memory_link_config& config, mac_address mac,
                const char* name);
  ~memory_device() override;

  /// Applies p's offload request and queues the result on r; drop: p was freed and counted.
  verdict offload_and_queue(packet& p, ring& r) noexcept;
  bool check_request(const packet& p, tx_layout& out) noexcept;
  void fill_checksums(packet& p, const tx_layout& l) noexcept;
  verdict segment_and_queue(packet& p, const tx_layout& l, ring& r) noexcept;
  bool build_piece(const packet& super, const tx_layout& l, std::size_t index, std::size_t offset,
                   std::size_t length, packet& piece) noexcept;
  void enqueue(ring& r, packet& p) noexcept;
  void check_received(packet& p) noexcept;

  memory_link* link_;
  memory_device* peer_ = nullptr;
  device_info info_;
  std::unique_ptr<packet_pool> pool_;
  std::vector<ring> rx_rings_;
  device_stats stats_{};
  memory_offload_counters offload_{};
  std::uint8_t tx_offload_bits_ = 0;  // tx_offload_request bits this end honours
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
