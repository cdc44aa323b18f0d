// Flow ownership for a multi-worker runtime: which worker (one stack, one device queue, one thread
// each; all on one address) handles a received frame. The table is in docs/asio.md "Flow
// ownership"; in short:
//
//   TCP/UDP            the worker the RSS hash of the flow picks: the device's hash where it
//                      steers (hardware mode: the frame is already there), else ours (software
//                      mode: the receiving worker hashes and hands the frame over). A port bound
//                      on some workers only goes to the first bound one at or after the hash's
//                      (cyclically): a lone listener, a UDP socket, bind() then connect get all
//                      of their port's flows.
//   ICMP errors        the owner of the flow they quote (a frag-needed reaches the connection).
//   ICMP echo replies  worker id % workers (a worker pings with ids it owns); other ICMP: where
//                      it lands.
//   ARP                where it lands (that worker answers), and a copy to every other worker
//                      (they learn; the one that asked resolves).
//   fragments          reassembled where they land, then the datagram goes to its flow's owner.
//
// Outgoing connects choose ephemeral ports whose hash picks the calling worker (acquire
// connect), so a flow never needs handing over in hardware mode, and two workers never collide on
// a 4-tuple: a port's hash for one destination picks one worker. The port tables keep binds and
// connects of different workers from taking each other's flows (stack::port_coordinator).
//
// classify() is per received frame: a header parse and one relaxed atomic load; the Toeplitz hash
// only in software mode (or for ICMP errors). Port tables are shared by the workers' threads
// (atomic bit masks, written on the control path: bind, listen, close).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dpdk_net/packet.hpp"
#include "dpdk_net/stack/steering.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net {

class device;

/// Most workers one runtime has (a port's table entry is one 64-bit word: 32 bits of workers
/// that bound it, 32 of workers whose outgoing connections use it).
inline constexpr std::uint16_t max_workers = 32;

enum class steering_mode : std::uint8_t {
  hardware,  ///< the device's RSS puts each flow on its owner's queue (its key and table)
  software,  ///< the device cannot steer: the receiving worker hashes and hands frames over
};

struct steering_config {
  std::uint16_t workers = 1;  ///< 1..max_workers
  steering_mode mode = steering_mode::software;
  std::vector<std::uint8_t> key;  ///< Toeplitz key, >= 16 bytes (the device's in hardware mode)
  /// Hash the 4-tuple in a canonical order (lower address:port first), so both directions of a
  /// flow hash alike: two of our runtimes with the same worker count (over memif) then put a flow
  /// on the same worker index at both ends. Software mode only (a NIC hashes source first).
  bool symmetric = false;
  std::vector<std::uint16_t> reta;  ///< hash % size -> worker; every entry < workers
  wire::ipv4_address address{};     ///< the workers' (one) address
};

/// Where a received frame goes.
struct frame_verdict {
  enum class kind : std::uint8_t {
    here,   ///< the receiving worker owns it
    owner,  ///< hand it to `worker`
    all,    ///< here, and a copy to every other worker (ARP)
  };
  kind to = kind::here;
  std::uint16_t worker = 0;
  bool hashed = false;  ///< a Toeplitz hash was computed to decide (software RSS)
};

class flow_steering {
 public:
  /// Throws std::invalid_argument for a config that cannot work (naming the field).
  explicit flow_steering(steering_config config);

  [[nodiscard]] std::uint16_t workers() const noexcept { return config_.workers; }
  [[nodiscard]] steering_mode mode() const noexcept { return config_.mode; }
  [[nodiscard]] const steering_config& config() const noexcept { return config_; }

  /// The worker the hash picks for a flow's incoming packets (remote -> us), protocol 6 or 17.
  [[nodiscard]] std::uint16_t hash_owner(wire::ipv4_address remote, std::uint16_t remote_port,
                                         std::uint16_t local_port) const noexcept;
  /// The owner of a flow to `local_port`: with nobody bound there, the hash's; else the first
  /// worker bound there at or after the hash's (cyclically) -- the hash's if it is bound, the
  /// one worker of a lone listener. Stable while workers leave the port (only the leaver's
  /// flows, none left by then, change owner).
  [[nodiscard]] std::uint16_t flow_owner(std::uint8_t protocol, wire::ipv4_address remote,
                                         std::uint16_t remote_port,
                                         std::uint16_t local_port) const noexcept;
  /// A received Ethernet frame on worker `self`.
  [[nodiscard]] frame_verdict classify(const packet& frame, std::uint16_t self) const noexcept;
  /// A datagram reassembled on worker `self` (IP header first): its flow's owner.
  [[nodiscard]] std::uint16_t datagram_owner(const packet& datagram,
                                             std::uint16_t self) const noexcept;

  // Port tables: each worker's stack comes here through its worker_ports (the rules are
  // stack::port_coordinator's).
  bool acquire(std::uint16_t worker, stack::port_claim kind, std::uint8_t protocol,
               std::uint16_t port, wire::ipv4_address remote, std::uint16_t remote_port) noexcept;
  void release(std::uint16_t worker, stack::port_claim kind, std::uint8_t protocol,
               std::uint16_t port) noexcept;
  /// Forgets every port (all workers' stacks were replaced: a simulated host's crash).
  void clear_ports() noexcept;
  /// Workers with `port` bound (bit i: worker i).
  [[nodiscard]] std::uint32_t port_mask(std::uint8_t protocol, std::uint16_t port) const noexcept;
  /// Workers whose outgoing connections use `port`.
  [[nodiscard]] std::uint32_t connect_mask(std::uint8_t protocol,
                                           std::uint16_t port) const noexcept;

 private:
  struct port_entry {
    std::atomic<std::uint64_t> users{0};     // bound workers (low 32) | connecting (high 32)
    std::atomic<std::uint32_t> off_hash{0};  // workers with accepted flows the hash puts elsewhere
  };
  [[nodiscard]] port_entry* table(std::uint8_t protocol) const noexcept;
  /// The first of `bound` at or after `from`, cyclically (bound != 0).
  [[nodiscard]] static std::uint16_t next_bound(std::uint32_t bound, std::uint16_t from) noexcept;

  steering_config config_;
  std::unique_ptr<port_entry[]> tcp_ports_;  // 65536 entries
  std::unique_ptr<port_entry[]> udp_ports_;
};

/// The steering for `workers` workers on `dev`: hardware when the device hashes TCP and UDP
/// 4-tuples and takes our key (default_rss_key, which spreads sequential ports well) and table
/// (queue i % workers), which this programs (configure_rss); else software (symmetric, same key).
/// force_software: software anyway.
[[nodiscard]] steering_config steering_for(device& dev, std::uint16_t workers, bool force_software,
                                           wire::ipv4_address address);

/// One worker's view, for its stack (stack::set_port_coordinator).
class worker_ports final : public stack::port_coordinator {
 public:
  worker_ports(flow_steering& flows, std::uint16_t self) noexcept : flows_(&flows), self_(self) {}
  bool acquire(stack::port_claim kind, std::uint8_t protocol, std::uint16_t port,
               wire::ipv4_address remote, std::uint16_t remote_port) noexcept override {
    return flows_->acquire(self_, kind, protocol, port, remote, remote_port);
  }
  void release(stack::port_claim kind, std::uint8_t protocol,
               std::uint16_t port) noexcept override {
    flows_->release(self_, kind, protocol, port);
  }

 private:
  flow_steering* flows_;
  std::uint16_t self_;
};

}  // namespace dpdk_net
