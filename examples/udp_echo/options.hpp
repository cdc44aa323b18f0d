// udp_echo's command line (usage() in options.cpp): what main() runs with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "cores.hpp"
#include "dpdk_backend.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"
#include "pcap_backend.hpp"

namespace udp_echo {

/// --connect ADDR:PORT.
struct udp_target {
  dpdk_net::wire::ipv4_address address{};
  std::uint16_t port = 0;
};

/// What main() parsed.
struct echo_options {
  std::string backend, iface, ip_text;
  dpdk_net::wire::ipv4_address address{};
  std::uint8_t prefix = 0;
  std::optional<dpdk_net::wire::ipv4_address> kernel_ip;
  std::uint16_t port = 0;  ///< server: the port; client: the local port (0: any)
  double seconds = 0;
  std::optional<udp_target> connect;  ///< client mode (--connect)
  std::uint64_t count = 100;
  std::size_t size = 512;
  dpdk_net::examples::worker_options workers;
  dpdk_net::examples::dpdk_options dpdk;
  dpdk_net::examples::capture_cli capture;
};

/// Parses argv: 0, -1 (--help printed: exit 0) or 2 (one line printed: exit 2).
int parse(int argc, char** argv, echo_options& o);

}  // namespace udp_echo
