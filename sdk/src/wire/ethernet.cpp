#include "dpdk_net/wire/ethernet.hpp"

#include <cstring>

#include "dpdk_net/packet.hpp"
#include "dpdk_net/wire/bytes.hpp"

namespace dpdk_net::wire {

parse_result<ethernet_header> parse_ethernet(std::span<const std::byte> frame) noexcept {
  parse_result<ethernet_header> r;
  if (frame.size() < ethernet_header_length) {
    r.error = wire_error::truncated;
    return r;
  }
  ethernet_header& h = r.header;
  std::memcpy(h.dst.bytes.data(), frame.data(), 6);
  std::memcpy(h.src.bytes.data(), frame.data() + 6, 6);
  std::uint16_t type = load16(frame.data() + 12);
  std::size_t len = ethernet_header_length;
  if (type == ethertype::vlan || type == ethertype::qinq) {
    if (frame.size() < ethernet_header_length + vlan_tag_length) {
      r.error = wire_error::truncated;
      return r;
    }
    h.has_vlan = true;
    h.vlan_tci = load16(frame.data() + 14);
    type = load16(frame.data() + 16);
    len += vlan_tag_length;
    if (type == ethertype::vlan || type == ethertype::qinq) {
      r.error = wire_error::eth_nested_vlan;
      return r;
    }
  }
  if (type < 0x0600) {
    r.error = wire_error::eth_llc_frame;
    return r;
  }
  h.ethertype = type;
  r.payload = frame.subspan(len);
  return r;
}

std::size_t write_ethernet(std::span<std::byte> out, const ethernet_header& h) noexcept {
  const std::size_t len = h.length();
  if (out.size() < len) {
    return 0;
  }
  std::byte* p = out.data();
  std::memcpy(p, h.dst.bytes.data(), 6);
  std::memcpy(p + 6, h.src.bytes.data(), 6);
  if (h.has_vlan) {
    store16(p + 12, ethertype::vlan);
    store16(p + 14, h.vlan_tci);
    store16(p + 16, h.ethertype);
  } else {
    store16(p + 12, h.ethertype);
  }
  return len;
}

bool push_ethernet(packet& p, const ethernet_header& h) noexcept {
  std::byte* at = p.prepend(h.length());
  if (at == nullptr) {
    return false;
  }
  write_ethernet(std::span<std::byte>(at, h.length()), h);
  return true;
}

}  // namespace dpdk_net::wire
