#include "dpdk_net/wire/icmp.hpp"

#include <cstring>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::wire {

parse_result<icmp_header> parse_icmp(std::span<const std::byte> message,
                                     bool verify_checksum) noexcept {
  parse_result<icmp_header> r;
  if (message.size() < icmp_header_length) {
    r.error = wire_error::truncated;
    return r;
  }
  const std::byte* p = message.data();
  icmp_header& h = r.header;
  h.type = load8(p);
  h.code = load8(p + 1);
  h.checksum = load16(p + 2);
  h.rest = load32(p + 4);
  if (verify_checksum && internet_checksum(message) != 0) {
    r.error = wire_error::icmp_bad_checksum;
    return r;
  }
  r.payload = message.subspan(icmp_header_length);
  if (h.is_error()) {
    // The quote must hold an IPv4 header and the first 8 bytes of its payload (RFC 792), which
    // is what the stack needs to find the socket (ports) and, for frag-needed, the path.
    const std::span<const std::byte> quote = r.payload;
    if (quote.size() < ipv4_min_header_length) {
      r.error = wire_error::icmp_bad_quote;
      return r;
    }
    const std::uint8_t version_ihl = load8(quote.data());
    const std::size_t ihl = (version_ihl & 0x0fU) * 4U;
    if ((version_ihl >> 4U) != 4 || ihl < ipv4_min_header_length || quote.size() < ihl + 8) {
      r.error = wire_error::icmp_bad_quote;
      return r;
    }
  }
  return r;
}

std::size_t write_icmp(std::span<std::byte> out, const icmp_header& h,
                       std::span<const std::byte> body) noexcept {
  const std::size_t len = icmp_header_length + body.size();
  if (out.size() < len) {
    return 0;
  }
  std::byte* p = out.data();
  store8(p, h.type);
  store8(p + 1, h.code);
  store16(p + 2, 0);
  store32(p + 4, h.rest);
  if (!body.empty()) {
    std::memmove(p + icmp_header_length, body.data(), body.size());
  }
  store16(p + 2, internet_checksum(out.first(len)));
  return len;
}

}  // namespace dpdk_net::wire
