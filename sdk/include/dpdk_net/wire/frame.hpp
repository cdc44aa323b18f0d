// Whole-frame decoding: Ethernet -> ARP | IPv4 -> ICMP | UDP | TCP, with a verdict.
// Used by the decoder tool and the tests; the stack's fast path calls the layer parsers itself.
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "dpdk_net/wire/arp.hpp"
#include "dpdk_net/wire/error.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "dpdk_net/wire/tcp.hpp"
#include "dpdk_net/wire/udp.hpp"

namespace dpdk_net::wire {

struct decoded_frame {
  wire_error error = wire_error::ok;  ///< the first layer's refusal, or ok
  ethernet_header eth{};
  std::optional<arp_packet> arp;
  std::optional<ipv4_header> ipv4;
  std::optional<icmp_header> icmp;
  std::optional<udp_header> udp;
  std::optional<tcp_header> tcp;
  /// The innermost payload (ICMP body, UDP or TCP data, unparsed IP payload of other protocols,
  /// or an unknown EtherType's payload).
  std::span<const std::byte> payload{};
  /// An IPv4 fragment (MF set or offset != 0): its L4 header is parsed after reassembly, not here.
  bool fragment = false;

  [[nodiscard]] bool accepted() const noexcept { return error == wire_error::ok; }
};

struct decode_options {
  bool verify_checksums = true;
};

[[nodiscard]] decoded_frame decode_frame(std::span<const std::byte> frame,
                                         decode_options options = {}) noexcept;

}  // namespace dpdk_net::wire
