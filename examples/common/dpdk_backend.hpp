// The examples' dpdk backend: our stack (dpdk_net::runtime, or dpdk_net::multi_runtime with
// --cores naming several cores) over a DPDK ethdev -- a memif, a TAP or AF_PACKET vdev, or a NIC
// bound to vfio-pci. The same options in every example that runs on it (http_server, http_load,
// tcp_echo, udp_echo):
//
//   --backend dpdk      (parsed by each program's parser; the rest here)
//   --vdev SPEC         a virtual device for the EAL (repeatable), e.g.
//                       net_memif0,role=server,socket=/tmp/m.sock,socket-abstract=no
//   --dpdk-port NAME    the ethdev to open (default: the first --vdev's name, before its comma)
//   --allow PCI         a NIC the EAL may use (repeatable; without one: --no-pci)
//   --no-huge           memory from the heap (no hugepages; -m 256 unless --dpdk-memory)
//   --file-prefix P     the EAL's runtime files (/var/run/dpdk/P); default dpdk_net_<prog>_<pid>,
//                       removed at exit
//   --dpdk-memory MB    -m MB
//   --eal "ARGS"        raw EAL arguments, appended after the ones above
// The EAL gets --no-telemetry always; its main lcore (-l) is the first core of --cores (else the
// first core the process may run on). Several workers: the port opens one rx and one tx queue per
// worker, and each worker's thread registers with the EAL (rte_thread_register) before its loop.
//
// Both ends of a memif link must run the same number of workers (queues): what one side sends on
// queue q arrives on the other's queue q, which only a worker of that index polls.
//
// This header includes no DPDK header and compiles in builds without DPDK (the glue,
// dpdk_backend.cpp, is built only with it; without it dpdk_port::open says so).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cores.hpp"
#include "dpdk_net/device.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::examples {

/// What the dpdk backend's options asked for (parse_dpdk_option, finish_dpdk).
struct dpdk_options {
  std::vector<std::string> vdevs;  ///< --vdev (repeatable)
  std::vector<std::string> allow;  ///< --allow (repeatable)
  std::string port;                ///< --dpdk-port, or (finish_dpdk) the first --vdev's name
  std::string eal;                 ///< --eal, raw
  std::string file_prefix;         ///< --file-prefix (empty: generated, removed at exit)
  bool hugepages = true;           ///< false: --no-huge
  unsigned memory_mb = 0;          ///< --dpdk-memory (0: the EAL's default)
  bool given = false;              ///< any of these options was given
};

/// True if this build has the DPDK backend.
[[nodiscard]] bool dpdk_available() noexcept;
/// What --backend dpdk says in a build without it.
inline constexpr const char* no_dpdk_message =
    "this build has no DPDK backend (install libdpdk-dev via scripts/setup.sh and reconfigure)";

/// The help paragraph of the dpdk options.
[[nodiscard]] const char* dpdk_usage() noexcept;

/// If argv[i] is a dpdk option, consumes it (and its value: i advances) and returns 1; 0 if it
/// is not one; 2 after printing "prog: <error> (try --help)" to stderr.
int parse_dpdk_option(const char* prog, int argc, char** argv, int& i, dpdk_options& out);

/// After the last argument. dpdk: the backend is --backend dpdk. Returns "" or one line naming
/// the problem and the fix (the caller prints it and exits 2): dpdk options without --backend
/// dpdk, no port name, a build without DPDK. Fills in the default port name.
[[nodiscard]] std::string finish_dpdk(dpdk_options& out, bool dpdk);

/// The stack configuration the examples run on a DPDK port (the port adds its MAC, MTU and
/// offloads): our address, prefix and gateway, and at most 4 UDP sockets per stack. A queue's
/// mempool holds every frame its stack may hold at once (stack::frames_held), and each UDP socket
/// may hold udp_queue received datagrams: the default 64 sockets would ask 16384 more mbufs of
/// every queue, too many for --no-huge -m 256 with two queues.
[[nodiscard]] stack::stack_config dpdk_stack_config(wire::ipv4_address address, std::uint8_t prefix,
                                                    std::optional<wire::ipv4_address> gateway);

/// The EAL and one port, for as long as it lives: its destructor closes the port, then
/// eal::cleanup(), then removes the runtime directory if the prefix was generated.
class dpdk_port {
 public:
  /// Starts the EAL and opens the port with one queue per worker (w resolved by
  /// resolve_workers); base: our address, prefix and gateway (the MAC, MTU and offloads come from
  /// the port). Null after printing "prog: <why>" (which names the fix) to stderr.
  static std::unique_ptr<dpdk_port> open(const char* prog, const dpdk_options& o,
                                         const worker_options& w, const stack::stack_config& base);
  dpdk_port(const dpdk_port&) = delete;
  dpdk_port& operator=(const dpdk_port&) = delete;
  ~dpdk_port();

  [[nodiscard]] device& dev() noexcept;
  /// The stack configuration to run on the port (base + the port's MAC, MTU and offloads).
  [[nodiscard]] const stack::stack_config& config() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept;
  /// "dpdk port NAME (driver D, N queue(s), mbufs M/queue)".
  [[nodiscard]] std::string describe() const;
  /// JSON members (no braces): "port":{rx_packets,...,tx_busy},"dpdk":{tx_copied,tx_external,
  /// tx_too_big,alloc_failures,mbufs_in_use,driver},"xstats":{name:value, nonzero only}.
  /// Callable from any thread (the driver's counters are read, never reset). memif counts per
  /// connection: its port counters restart when the peer connects and read 0 once it left.
  [[nodiscard]] std::string stats_json() const;
  /// multi_runtime's options for the workers, with on_thread_start registering each worker's
  /// thread with the EAL (throws std::runtime_error with the EAL's message if it cannot).
  [[nodiscard]] static multi_runtime_options multi_options(const worker_options& w);
  /// Waits up to `seconds` for the link to come up (a memif client: until the server answered).
  /// False (after printing "prog: <why>") if it did not.
  bool wait_for_link(const char* prog, double seconds) const;

  struct state;

 private:
  explicit dpdk_port(std::unique_ptr<state> s) noexcept;
  std::unique_ptr<state> s_;
};

}  // namespace dpdk_net::examples
