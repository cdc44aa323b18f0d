#include "dpdk_net/wire/arp.hpp"

#include <cstring>

#include "dpdk_net/wire/bytes.hpp"

namespace dpdk_net::wire {

namespace {
constexpr std::uint16_t hardware_ethernet = 1;
constexpr std::uint16_t protocol_ipv4 = 0x0800;
}  // namespace

parse_result<arp_packet> parse_arp(std::span<const std::byte> data) noexcept {
  parse_result<arp_packet> r;
  if (data.size() < arp_length) {
    r.error = wire_error::truncated;
    return r;
  }
  const std::byte* p = data.data();
  if (load16(p) != hardware_ethernet || load16(p + 2) != protocol_ipv4 || load8(p + 4) != 6 ||
      load8(p + 5) != 4) {
    r.error = wire_error::arp_unsupported;
    return r;
  }
  arp_packet& a = r.header;
  a.operation = load16(p + 6);
  if (a.operation != arp_op::request && a.operation != arp_op::reply) {
    r.error = wire_error::arp_bad_operation;
    return r;
  }
  std::memcpy(a.sender_mac.bytes.data(), p + 8, 6);
  a.sender_ip.value = load32(p + 14);
  std::memcpy(a.target_mac.bytes.data(), p + 18, 6);
  a.target_ip.value = load32(p + 24);
  r.payload = data.subspan(arp_length);  // padding, ignored
  return r;
}

std::size_t write_arp(std::span<std::byte> out, const arp_packet& a) noexcept {
  if (out.size() < arp_length) {
    return 0;
  }
  std::byte* p = out.data();
  store16(p, hardware_ethernet);
  store16(p + 2, protocol_ipv4);
  store8(p + 4, 6);
  store8(p + 5, 4);
  store16(p + 6, a.operation);
  std::memcpy(p + 8, a.sender_mac.bytes.data(), 6);
  store32(p + 14, a.sender_ip.value);
  std::memcpy(p + 18, a.target_mac.bytes.data(), 6);
  store32(p + 24, a.target_ip.value);
  return arp_length;
}

}  // namespace dpdk_net::wire
