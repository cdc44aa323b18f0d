// What one stack of several needs to share its address with the others: in a multi-worker runtime
// every worker runs its own stack (one address, one MAC, a device queue each), and flows are
// owned by the worker the RSS hash picks (docs/asio.md "Flow ownership"). The stack stays
// sans-I/O: it asks these interfaces, which the runtime implements, and never learns of threads.
#pragma once

#include <cstdint>

#include "dpdk_net/packet.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::stack {

/// What a stack holds a port for.
enum class port_claim : std::uint8_t {
  bind,       ///< an explicit bind or listen (other workers may bind it too, like SO_REUSEPORT)
  ephemeral,  ///< bind(0): the port for this stack alone
  connect,    ///< connect's ephemeral port towards a remote: the flow must be steered here
  child,      ///< a connection accepted on a bound port whose flow the hash would steer elsewhere
  /// A socket bound first connects: a question only (nothing is held, nothing released).
  bound_connect,
};

/// Keeps the workers' port spaces consistent. Called on the control path only (bind, listen,
/// connect, accept, close), never per packet.
class port_coordinator {
 public:
  port_coordinator() = default;
  port_coordinator(const port_coordinator&) = delete;
  port_coordinator& operator=(const port_coordinator&) = delete;
  virtual ~port_coordinator() = default;

  /// A new user of `port` (protocol 6 or 17) of that kind, on this stack; `remote` and
  /// `remote_port` name the flow for connect and child (else 0). Idempotent per stack. False:
  ///   bind       another worker's connection uses the port, or this bind would take another
  ///              worker's accepted connections (the stack fails the bind: address_in_use);
  ///   ephemeral  another worker uses the port (the stack tries the next candidate);
  ///   connect    the flow would not be steered here, or another worker has the port bound
  ///              (next candidate);
  ///   child      nothing to hold: the hash steers the flow here anyway (true: the port is held
  ///              for this child until released);
  ///   bound_connect  the flow's frames would go to another worker (the port is bound there
  ///              too, and the hash picks it): the stack fails the connect (address_in_use).
  virtual bool acquire(port_claim kind, std::uint8_t protocol, std::uint16_t port,
                       wire::ipv4_address remote, std::uint16_t remote_port) noexcept = 0;
  /// The stack's last user of that kind (ephemeral is released as bind) is gone.
  virtual void release(port_claim kind, std::uint8_t protocol, std::uint16_t port) noexcept = 0;
};

/// Called with each datagram reassembled from fragments (IP header first), before the stack
/// delivers it: fragments are reassembled where they land, then the datagram goes to the worker
/// that owns its flow. Returns true if it took the datagram (another stack owns it).
struct datagram_hook {
  bool (*take)(void* context, packet& datagram) noexcept = nullptr;
  void* context = nullptr;
};

}  // namespace dpdk_net::stack
