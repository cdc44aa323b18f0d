// Flow ownership for a multi-worker runtime: which worker (one stack, one device queue, one thread
// each; all on one address) handles a received frame. The table is in docs/asio.md "Flow
// ownership"; in short:
//
//   TCP/UDP            the worker the RSS hash of the flow picks: the device's hash where it
//                      steers (hardware mode: the frame is already there), else ours (software
//                      mode: the receiving worker hashes and hands the frame over). A port bound
//                      on exactly one worker (a lone listener, a UDP socket, bind() then connect)
//                      belongs to that worker, whatever the hash.
//   ICMP errors        the owner of the flow they quote (a frag-needed reaches the connection).
//   ICMP echo replies  worker id % workers (a worker pings with ids it owns); other ICMP: where
//                      it lands.
//   ARP                where it lands (that worker answers), and a copy to every other worker
//                      (they learn; the one that asked resolves).
//   fragments          reassembled where they land, then the datagram goes to its flow's owner.
//
// Outgoing connects choose ephemeral ports whose hash picks the calling worker
// (ephemeral_ok), so a flow never needs handing over in hardware mode, and two workers never
// collide on a 4-tuple: a port's hash for one destination picks one worker.
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

/// Most workers one runtime has (port tables are 64-bit masks).
inline constexpr std::uint16_t max_workers = 64;

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
  /// The owner of a flow: a port bound on exactly one worker belongs to it; else the hash's.
  [[nodiscard]] std::uint16_t flow_owner(std::uint8_t protocol, wire::ipv4_address remote,
                                         std::uint16_t remote_port,
                                         std::uint16_t local_port) const noexcept;
  /// A received Ethernet frame on worker `self`.
  [[nodiscard]] frame_verdict classify(const packet& frame, std::uint16_t self) const noexcept;
  /// A datagram reassembled on worker `self` (IP header first): its flow's owner.
  [[nodiscard]] std::uint16_t datagram_owner(const packet& datagram,
                                             std::uint16_t self) const noexcept;

  // Port tables (the port_coordinator of each worker's stack comes here).
  void port_used(std::uint16_t worker, std::uint8_t protocol, std::uint16_t port,
                 bool used) noexcept;
  /// bind(0): claims `port` for `worker` if no other worker has it bound.
  bool claim_port(std::uint16_t worker, std::uint8_t protocol, std::uint16_t port) noexcept;
  /// connect: the port is not bound by another worker and the flow's hash picks `worker`.
  [[nodiscard]] bool connect_port_ok(std::uint16_t worker, std::uint8_t protocol,
                                     std::uint16_t port, wire::ipv4_address remote,
                                     std::uint16_t remote_port) const noexcept;
  /// Forgets every port (all workers' stacks were replaced: a simulated host's crash).
  void clear_ports() noexcept;
  /// Workers with `port` bound (bit i: worker i).
  [[nodiscard]] std::uint64_t port_mask(std::uint8_t protocol, std::uint16_t port) const noexcept;

 private:
  [[nodiscard]] std::atomic<std::uint64_t>* table(std::uint8_t protocol) const noexcept;

  steering_config config_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> tcp_ports_;  // 65536 masks
  std::unique_ptr<std::atomic<std::uint64_t>[]> udp_ports_;
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
  void port_used(std::uint8_t protocol, std::uint16_t port, bool used) noexcept override {
    flows_->port_used(self_, protocol, port, used);
  }
  bool ephemeral_ok(std::uint8_t protocol, std::uint16_t port, wire::ipv4_address remote,
                    std::uint16_t remote_port) noexcept override {
    return remote_port == 0 ? flows_->claim_port(self_, protocol, port)
                            : flows_->connect_port_ok(self_, protocol, port, remote, remote_port);
  }

 private:
  flow_steering* flows_;
  std::uint16_t self_;
};

}  // namespace dpdk_net
