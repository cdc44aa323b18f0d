// The hand-over between a multi-worker runtime's workers: what one worker receives but another
// owns (flow_steering) goes to the owner over a lock-free ring, one ring per ordered pair of
// workers (one producer thread, one consumer thread each).
//
// Packets stay with the pool they came from: `packet_pool` is single-threaded, so the owner
// copies a handed-over frame into its own pool and sends the original back over a second ring;
// the worker that received it frees it. One copy per handed-over frame, no lock, no allocation,
// no syscall (a sleeping owner is woken once per burst through its wake function). A ring that is
// full drops the frame, counted, as a NIC's full ring does; the owner stops taking frames while its
// return ring is full, so nothing is ever lost on the way back.
//
// Used the same way by the threaded runtime (multi_runtime) and the simulator's multi-worker host
// (sim::sim_multi_runtime), so one code path is tested in both.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/detail/spsc_ring.hpp"
#include "dpdk_net/runtime/flow_steering.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net {

/// One worker's hand-over counters (written by its own thread, readable from any).
struct mesh_counters {
  std::uint64_t handed_out = 0;       ///< frames received here and handed to their owner
  std::uint64_t handed_in = 0;        ///< frames other workers handed here
  std::uint64_t arp_copies = 0;       ///< ARP frames copied to the other workers
  std::uint64_t datagrams_out = 0;    ///< reassembled datagrams handed to their owner
  std::uint64_t software_hashes = 0;  ///< frames whose owner a Toeplitz hash decided
  std::uint64_t ring_full = 0;        ///< hand-overs dropped: the owner's ring was full
  std::uint64_t no_buffer = 0;        ///< hand-overs dropped: no buffer here to copy into
  std::uint64_t returned = 0;         ///< originals sent back to the worker that received them

  /// Adds another worker's counters (totals over a runtime).
  mesh_counters& operator+=(const mesh_counters& o) noexcept {
    handed_out += o.handed_out;
    handed_in += o.handed_in;
    arp_copies += o.arp_copies;
    datagrams_out += o.datagrams_out;
    software_hashes += o.software_hashes;
    ring_full += o.ring_full;
    no_buffer += o.no_buffer;
    returned += o.returned;
    return *this;
  }
};

class worker_mesh {
 public:
  /// ring_size: frames per ordered pair of workers (rounded up to a power of two).
  worker_mesh(flow_steering& flows, std::size_t ring_size);
  ~worker_mesh();
  worker_mesh(const worker_mesh&) = delete;
  worker_mesh& operator=(const worker_mesh&) = delete;

  [[nodiscard]] std::uint16_t workers() const noexcept { return flows_->workers(); }
  [[nodiscard]] flow_steering& flows() noexcept { return *flows_; }

  /// How to wake worker w when something is handed to it (called from other workers' threads).
  void set_wake(std::uint16_t w, void (*wake)(void*), void* context) noexcept;
  /// Connects worker w's stack: its port coordinator and its datagram hook.
  void attach(std::uint16_t w, stack::stack& st) noexcept;

  // --- on worker `self`'s thread only ---
  /// A frame received on self's queue: into st, or handed to its owner (ARP: both).
  void receive(std::uint16_t self, stack::stack& st, packet frame, time_ns now,
               buffer_pool& pool) noexcept;
  /// Takes what others handed to self (copied into pool, then into st) and frees the originals
  /// they sent back. Returns how many it handled.
  std::size_t drain(std::uint16_t self, stack::stack& st, buffer_pool& pool, time_ns now) noexcept;
  /// Wakes the workers self handed something to since the last flush.
  void flush(std::uint16_t self) noexcept;
  /// Nothing is waiting for self (to hand in or to free). A snapshot, for the idle decision.
  [[nodiscard]] bool idle(std::uint16_t self) const noexcept;
  /// Frees everything in self's incoming rings (shutdown, crash): originals in return rings
  /// are freed here, handed frames are sent back as usual.
  void discard(std::uint16_t self) noexcept;

  [[nodiscard]] mesh_counters counters(std::uint16_t w) const noexcept;

 private:
  struct handoff {
    packet frame;
    std::uint8_t kind = 0;  // kind_frame, kind_arp_copy, kind_datagram
  };
  struct lane;
  bool hand(lane& from, std::uint16_t to, packet& p, std::uint8_t kind) noexcept;
  static bool take_datagram(void* context, packet& datagram) noexcept;
  detail::spsc_ring<handoff>& forward(std::uint16_t from, std::uint16_t to) noexcept;
  detail::spsc_ring<packet>& back(std::uint16_t from, std::uint16_t to) noexcept;

  flow_steering* flows_;
  std::vector<std::unique_ptr<lane>> lanes_;
  // [from * workers + to]; from == to unused (null).
  std::vector<std::unique_ptr<detail::spsc_ring<handoff>>> forward_;
  std::vector<std::unique_ptr<detail::spsc_ring<packet>>> back_;
};

/// A copy of p (data and metadata) in buffers of pool, chained if it needs several; empty if the
/// pool runs dry.
[[nodiscard]] packet copy_packet(const packet& p, buffer_pool& pool) noexcept;

}  // namespace dpdk_net
