#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::wire {

decoded_frame decode_frame(std::span<const std::byte> frame, decode_options options) noexcept {
  decoded_frame d;
  const auto eth = parse_ethernet(frame);
  if (!eth) {
    d.error = eth.error;
    return d;
  }
  d.eth = eth.header;
  d.payload = eth.payload;
  if (eth.header.ethertype == ethertype::arp) {
    const auto arp = parse_arp(eth.payload);
    if (!arp) {
      d.error = arp.error;
      return d;
    }
    d.arp = arp.header;
    d.payload = {};
    return d;
  }
  if (eth.header.ethertype != ethertype::ipv4) {
    return d;  // another EtherType: accepted, not decoded further
  }
  const auto ip =
      parse_ipv4(eth.payload, ipv4_parse_options{.verify_checksum = options.verify_checksums});
  if (!ip) {
    d.error = ip.error;
    return d;
  }
  d.ipv4 = ip.header;
  d.payload = ip.payload;
  if (ip.header.is_fragment()) {
    d.fragment = true;
    return d;
  }
  const pseudo_header ph{ip.header.src, ip.header.dst};
  const pseudo_header* verify = options.verify_checksums ? &ph : nullptr;
  switch (ip.header.protocol) {
    case ip_protocol::icmp: {
      const auto icmp = parse_icmp(ip.payload, options.verify_checksums);
      if (!icmp) {
        d.error = icmp.error;
        return d;
      }
      d.icmp = icmp.header;
      d.payload = icmp.payload;
      break;
    }
    case ip_protocol::udp: {
      const auto udp = parse_udp(ip.payload, verify);
      if (!udp) {
        d.error = udp.error;
        return d;
      }
      d.udp = udp.header;
      d.payload = udp.payload;
      break;
    }
    case ip_protocol::tcp: {
      const auto tcp = parse_tcp(ip.payload, verify);
      if (!tcp) {
        d.error = tcp.error;
        return d;
      }
      d.tcp = tcp.header;
      d.payload = tcp.payload;
      break;
    }
    default:
      break;  // another protocol: accepted, payload is the IP payload
  }
  return d;
}

}  // namespace dpdk_net::wire
