// tcp_echo's command line: what the program was asked to do, parsed and checked up front so a bad
// argument is one line on stderr and exit code 2, before any device is opened.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cores.hpp"
#include "dpdk_backend.hpp"
#include "dpdk_net/stack/tcp.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"
#include "pcap_backend.hpp"

namespace tcp_echo {

/// Faults injected around the TAP device (fault_device), the same in both directions.
struct fault_options {
  double delay_ms = 0;          ///< one-way delay added to every frame
  double reorder_percent = 0;   ///< frames held back by reorder_delay_ms (overtaken by later ones)
  double reorder_delay_ms = 1;  ///< how long a reordered frame is held back
  double duplicate_percent = 0;
  double loss_percent = 0;
  [[nodiscard]] bool any() const noexcept {
    return delay_ms > 0 || reorder_percent > 0 || duplicate_percent > 0 || loss_percent > 0;
  }
};

struct options {
  std::string backend;  ///< "tap", "dpdk" or "pcap"
  std::string iface;    ///< tap, pcap
  dpdk_net::wire::ipv4_address address{};
  std::uint8_t prefix = 0;
  std::optional<dpdk_net::wire::ipv4_address> kernel_ip;
  std::optional<dpdk_net::wire::ipv4_address> gateway;
  std::uint16_t port = 0;  ///< server: the port to listen on; client: the local port (0: any)
  /// Client mode: where to connect (unset: server mode).
  std::optional<dpdk_net::stack::tcp_endpoint> connect;
  std::uint64_t bytes = 1 << 20;  ///< client: bytes per connection
  unsigned connections = 1;       ///< client: parallel connections
  std::uint64_t seed = 1;         ///< client stream generator and fault decisions
  double max_seconds = 0;         ///< 0: until SIGINT/SIGTERM (server) or done (client)
  std::string stats_path;         ///< empty: counters JSON to stdout
  bool no_delay = false;
  /// Server: tcp_config::syn_queue (half-open connections per listener; past it, SYN cookies).
  std::optional<std::uint32_t> syn_queue;
  /// Server: the listen backlog (accept queue). Unset: the echo server's 1024.
  std::optional<std::uint32_t> backlog;
  /// Server: listen but never accept, so the accept queue fills (the bounded-queue test).
  bool no_accept = false;
  fault_options faults;
  /// --cores, --no-pin (resolved): several cores run the server on a multi_runtime, one worker
  /// (and one accept loop) per core.
  dpdk_net::examples::worker_options workers;
  /// --backend dpdk: the port and the EAL (--vdev, --dpdk-port, ...). Several workers run a
  /// client too (both ends of a memif need as many queues), connection i on worker i % workers.
  dpdk_net::examples::dpdk_options dpdk;
  /// --capture FILE, --capture-limit, --capture-files (pcap_backend.hpp).
  dpdk_net::examples::capture_cli capture;
};

/// Parses argv. Returns 0 with `out` filled, -1 if --help was printed (exit 0), or 2 after
/// printing a one-line error to stderr (exit 2).
int parse_options(int argc, char** argv, options& out);

}  // namespace tcp_echo
