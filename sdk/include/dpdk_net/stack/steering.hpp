// What one stack of several needs to share its address with the others: in a multi-worker runtime
// every worker runs its own stack (one address, one MAC, a device queue each), and flows are
// owned by the worker the RSS hash picks (docs/asio.md "Flow ownership"). The stack stays
// sans-I/O: it asks these interfaces, which the runtime implements, and never learns of threads.
#pragma once

#include <cstdint>

#include "dpdk_net/packet.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::stack {

/// Keeps the workers' port spaces consistent. Called on the control path only (bind, listen,
/// connect, close), never per packet.
class port_coordinator {
 public:
  port_coordinator() = default;
  port_coordinator(const port_coordinator&) = delete;
  port_coordinator& operator=(const port_coordinator&) = delete;
  virtual ~port_coordinator() = default;

  /// `port` (protocol 6 or 17) became used on this stack by an explicitly bound socket (bind,
  /// listen, or a connection accepted by such a listener), or stopped being used by any. Called on
  /// the transitions only (first user, last user).
  virtual void port_used(std::uint8_t protocol, std::uint16_t port, bool used) noexcept = 0;
  /// May this stack take ephemeral `port`? For bind(0) (`remote_port` 0) a true answer also
  /// claims it, exactly as port_used(protocol, port, true) would (released by port_used(...,
  /// false)). For connect (a remote given) true means the flow's packets are steered to this
  /// stack; nothing is claimed.
  virtual bool ephemeral_ok(std::uint8_t protocol, std::uint16_t port, wire::ipv4_address remote,
                            std::uint16_t remote_port) noexcept = 0;
};

/// Called with each datagram reassembled from fragments (IP header first), before the stack
/// delivers it: fragments are reassembled where they land, then the datagram goes to the worker
/// that owns its flow. Returns true if it took the datagram (another stack owns it).
struct datagram_hook {
  bool (*take)(void* context, packet& datagram) noexcept = nullptr;
  void* context = nullptr;
};

}  // namespace dpdk_net::stack
