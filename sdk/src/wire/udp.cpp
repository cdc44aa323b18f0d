#include "dpdk_net/wire/udp.hpp"

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::wire {

parse_result<udp_header> parse_udp(std::span<const std::byte> datagram,
                                   const pseudo_header* ph) noexcept {
  parse_result<udp_header> r;
  if (datagram.size() < udp_header_length) {
    r.error = wire_error::truncated;
    return r;
  }
  const std::byte* p = datagram.data();
  udp_header& h = r.header;
  h.src_port = load16(p);
  h.dst_port = load16(p + 2);
  h.length = load16(p + 4);
  h.checksum = load16(p + 6);
  if (h.length < udp_header_length) {
    r.error = wire_error::udp_bad_length;
    return r;
  }
  if (h.length > datagram.size()) {
    r.error = wire_error::udp_length_exceeds_ip;
    return r;
  }
  if (ph != nullptr && h.checksum != 0) {
    checksum_accumulator acc;
    add_pseudo_header(acc, ph->src, ph->dst, ip_protocol::udp, h.length);
    acc.add(datagram.first(h.length));
    if (acc.finish() != 0) {
      r.error = wire_error::udp_bad_checksum;
      return r;
    }
  }
  r.payload = datagram.subspan(udp_header_length, h.length - udp_header_length);
  return r;
}

std::size_t write_udp(std::span<std::byte> out, const udp_header& h,
                      std::span<const std::byte> body, const pseudo_header& ph) noexcept {
  const std::size_t len = udp_header_length + body.size();
  if (out.size() < udp_header_length || len > 65535U) {
    return 0;
  }
  std::byte* p = out.data();
  store16(p, h.src_port);
  store16(p + 2, h.dst_port);
  store16(p + 4, static_cast<std::uint16_t>(len));
  store16(p + 6, 0);
  checksum_accumulator acc;
  add_pseudo_header(acc, ph.src, ph.dst, ip_protocol::udp, static_cast<std::uint16_t>(len));
  acc.add(out.first(udp_header_length));
  acc.add(body);
  const std::uint16_t c = acc.finish();
  store16(p + 6, c == 0 ? 0xffff : c);  // 0 means "no checksum" on the wire
  return udp_header_length;
}

}  // namespace dpdk_net::wire
