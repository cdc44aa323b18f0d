// Frame builders for the replay tests: Ethernet/IPv4/TCP|UDP|ICMP frames through the wire
// library, and a recording (records over owned bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::replay::test {

struct endpoint4 {
  wire::ipv4_address ip{};
  std::uint16_t port = 0;
  mac_address mac{};
};

inline std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    v[i] = static_cast<std::byte>(s[i]);
  }
  return v;
}

inline std::vector<std::byte> ip_frame(const endpoint4& src, const endpoint4& dst,
                                       std::uint8_t protocol, const std::vector<std::byte>& l4) {
  std::vector<std::byte> f(wire::ethernet_header_length + wire::ipv4_min_header_length + l4.size());
  wire::ethernet_header eth;
  eth.dst = dst.mac;
  eth.src = src.mac;
  eth.ethertype = wire::ethertype::ipv4;
  wire::write_ethernet(f, eth);
  wire::ipv4_header ip;
  ip.total_length = static_cast<std::uint16_t>(wire::ipv4_min_header_length + l4.size());
  ip.protocol = protocol;
  ip.src = src.ip;
  ip.dst = dst.ip;
  ip.dont_fragment = true;
  wire::write_ipv4(std::span(f).subspan(wire::ethernet_header_length), ip);
  std::copy(l4.begin(), l4.end(), f.begin() + 34);
  return f;
}

inline std::vector<std::byte> tcp_frame(const endpoint4& src, const endpoint4& dst,
                                        std::uint32_t seq, std::uint32_t ack, std::uint8_t flags,
                                        const wire::tcp_options& options = {},
                                        const std::string& payload = {},
                                        std::uint16_t window = 64000) {
  wire::tcp_header h;
  h.src_port = src.port;
  h.dst_port = dst.port;
  h.seq = seq;
  h.ack = ack;
  h.flags = flags;
  h.window = window;
  h.options = options;
  std::vector<std::byte> l4(wire::tcp_max_header_length + payload.size());
  const std::size_t hl = wire::write_tcp(l4, h);
  const auto body = bytes_of(payload);
  std::copy(body.begin(), body.end(), l4.begin() + static_cast<std::ptrdiff_t>(hl));
  l4.resize(hl + payload.size());
  wire::set_tcp_checksum(l4, wire::pseudo_header{src.ip, dst.ip});
  return ip_frame(src, dst, wire::ip_protocol::tcp, l4);
}

inline std::vector<std::byte> udp_frame(const endpoint4& src, const endpoint4& dst,
                                        const std::string& payload) {
  const auto body = bytes_of(payload);
  std::vector<std::byte> l4(wire::udp_header_length + body.size());
  wire::udp_header h;
  h.src_port = src.port;
  h.dst_port = dst.port;
  h.length = static_cast<std::uint16_t>(l4.size());
  wire::write_udp(l4, h, body, wire::pseudo_header{src.ip, dst.ip});
  return ip_frame(src, dst, wire::ip_protocol::udp, l4);
}

inline std::vector<std::byte> echo_frame(const endpoint4& src, const endpoint4& dst,
                                         std::uint8_t type, std::uint16_t id, std::uint16_t seq) {
  const auto body = bytes_of("ping-payload");
  std::vector<std::byte> l4(wire::icmp_header_length + body.size());
  wire::icmp_header h;
  h.type = type;
  h.rest = (std::uint32_t{id} << 16U) | seq;
  wire::write_icmp(l4, h, body);
  return ip_frame(src, dst, wire::ip_protocol::icmp, l4);
}

inline std::vector<std::byte> arp_frame(const endpoint4& src, std::uint16_t op,
                                        const endpoint4& dst) {
  std::vector<std::byte> f(wire::ethernet_header_length + wire::arp_length);
  wire::ethernet_header eth;
  eth.dst = op == wire::arp_op::request ? mac_address::broadcast() : dst.mac;
  eth.src = src.mac;
  eth.ethertype = wire::ethertype::arp;
  wire::write_ethernet(f, eth);
  wire::arp_packet a;
  a.operation = op;
  a.sender_mac = src.mac;
  a.sender_ip = src.ip;
  a.target_mac = op == wire::arp_op::request ? mac_address{} : dst.mac;
  a.target_ip = dst.ip;
  wire::write_arp(std::span(f).subspan(wire::ethernet_header_length), a);
  return f;
}

/// A capture in memory: frames with their times.
struct recording {
  std::deque<std::vector<std::byte>> frames;
  std::vector<capture_record> records;
  void add(time_ns at, std::vector<std::byte> frame) {
    frames.push_back(std::move(frame));
    capture_record r;
    r.timestamp_ns = at;
    r.data = frames.back();
    r.original_length = static_cast<std::uint32_t>(frames.back().size());
    records.push_back(r);
  }
};

}  // namespace dpdk_net::replay::test
