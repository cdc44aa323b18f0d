// The examples' backend selection: one set of options (--backend sim|tap|dpdk|kernel, --iface,
// --ip, --kernel-ip, --gateway, --port, --max-seconds, --cores, --no-pin, and the dpdk options of
// dpdk_backend.hpp) parsed the same way by every Asio example, and the TAP device + stack
// configuration the tap backend runs on.
//
//   kernel: the same application code on boost::asio::ip::tcp and an io_context (the baseline)
//   tap:    dpdk_net::runtime (our stack, one worker) over a TAP device; its kernel side gets
//           --kernel-ip (default: ADDR's subnet, host .1 -- or .2 if ADDR is .1). With --cores
//           naming several cores: a multi-queue TAP (one queue per core) and a
//           dpdk_net::multi_runtime, one worker per core (cores.hpp)
//   dpdk:   the same as tap over a DPDK ethdev (dpdk_backend.hpp: a memif, a vdev, a NIC);
//           --ip and --gateway as for tap, the MAC from the port; --cores with several cores:
//           one queue per worker and a multi_runtime
//   pcap:   our stack (one worker) over an existing interface through libpcap (pcap_backend.hpp);
//           --iface is required, the kernel's side of the link is left as the user set it up
//   sim:    the example's server and its simulated clients in one process (two sim hosts);
//           --cores N: the server host runs N workers (sim_multi_runtime, an N-queue NIC)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cores.hpp"
#include "dpdk_backend.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/tap/tap_device.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"
#include "pcap_backend.hpp"

namespace dpdk_net::examples {

enum class backend_kind : std::uint8_t { sim, tap, kernel, dpdk, pcap };

struct backend_options {
  backend_kind backend = backend_kind::sim;
  std::string iface = "dnhttp0";
  bool have_iface = false;                                       ///< --iface given (tap, pcap)
  wire::ipv4_address address = wire::ipv4_address{0xc6120702U};  // 198.18.7.2
  std::uint8_t prefix = 24;
  bool have_ip = false;  ///< --ip given (kernel backend: else bind to any address)
  std::optional<wire::ipv4_address> kernel_ip;
  std::optional<wire::ipv4_address> gateway;
  std::uint16_t port = 0;
  double max_seconds = 0;  ///< 0: until SIGINT/SIGTERM
  std::uint64_t seed = 1;  ///< sim backend
  worker_options workers;  ///< --cores, --no-pin (resolved by finish_common)
  dpdk_options dpdk;       ///< --vdev, --dpdk-port, ... (finish_common fills in the port name)
  capture_cli capture;     ///< --capture, --capture-limit, --capture-files
};

/// The help text of the common options (one paragraph per option).
[[nodiscard]] const char* common_usage() noexcept;

/// If argv[i] is a common option, consumes it (and its value: i advances) and returns 1; returns
/// 0 if it is not one; returns 2 after printing "prog: <error> (try --help)" to stderr.
int parse_common(const char* prog, int argc, char** argv, int& i, backend_options& out);

/// After the last argument: checks what depends on several options (--cores against the
/// backend and the allowed cores). Returns 0, or 2 after printing "prog: <error> (try --help)".
/// Several workers: always on sim (the server host) and dpdk, never on kernel; on tap if tap_multi
/// (else --cores with several cores is refused, naming what runs them). dpdk: a port name is
/// needed (--vdev or --dpdk-port), the dpdk options need --backend dpdk, --iface and --kernel-ip
/// are tap's.
int finish_common(const char* prog, backend_options& out, bool tap_multi);

/// Prints "prog: what (try --help)" and returns 2 (the bad-argument exit status).
int bad_argument(const char* prog, const std::string& what);

/// Parses "ADDR:PORT" (IPv4).
bool parse_endpoint(const std::string& text, wire::ipv4_address& address, std::uint16_t& port);
bool parse_u64(const std::string& text, std::uint64_t& v);
bool parse_seconds(const std::string& text, double& v);

/// The kernel side's address for the tap backend: --kernel-ip or the documented default.
[[nodiscard]] wire::ipv4_address kernel_side_address(const backend_options& o) noexcept;

/// A TAP device configured for the tap backend (kernel side addressed; one queue per worker) and
/// the stack configuration to run on it. Null after printing "prog: <why>" to stderr.
struct tap_backend {
  std::unique_ptr<tap::tap_device> dev;
  stack::stack_config config;
};
std::optional<tap_backend> open_tap_backend(const char* prog, const backend_options& o);

/// A simulated host's stack configuration: 198.18.0.<host>/24.
[[nodiscard]] stack::stack_config sim_host_config(std::uint8_t host) noexcept;

/// Our stack's counters as JSON members ("stack":{...},"tcp":{...}) -- the interesting ones.
[[nodiscard]] std::string stack_counters_json(stack::stack& ip);

}  // namespace dpdk_net::examples
