// ICMP errors for TCP (RFC 5927): matched by the quoted 4-tuple, believed only if the quoted
// sequence number is in flight; frag-needed resends at the new size, unreachables refuse a
// connect in SYN-SENT and are soft errors after.
#include <algorithm>

#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack {

using detail::no_slot;
using detail::seq_le;
using detail::seq_lt;

bool tcp_layer::icmp_error(std::uint8_t type, std::uint8_t code, std::uint16_t mtu,
                           std::span<const std::byte> quote, time_ns now) {
  const auto q =
      wire::parse_ipv4(quote, wire::ipv4_parse_options{.verify_checksum = false, .quoted = true});
  if (!q || q.header.src != ip_->config().address || q.payload.size() < 8 ||
      q.header.fragment_offset != 0) {
    ++counters_.icmp_ignored;
    return false;
  }
  const std::uint16_t local_port = wire::load16(q.payload.data());
  const std::uint16_t remote_port = wire::load16(q.payload.data() + 2);
  const std::uint32_t seq = wire::load32(q.payload.data() + 4);
  const std::uint32_t slot = find_tuple(q.header.dst, remote_port, local_port);
  if (slot == no_slot || slot >= slab_.size()) {
    ++counters_.icmp_ignored;
    return false;
  }
  connection& c = slab_[slot];
  // The quoted sequence number must be one we sent and is not yet acknowledged: a blind
  // attacker must guess it (RFC 5927 4.1).
  if (!(seq_le(c.snd_una, seq) && seq_lt(seq, c.snd_max))) {
    ++counters_.icmp_ignored;
    return false;
  }
  ++counters_.icmp_accepted;
  if (type == wire::icmp_type::destination_unreachable) {
    switch (code) {
      case wire::icmp_unreachable::fragmentation_needed:
        // The stack lowers the path MTU; segments are cut to it from the next one sent, and what
        // is in flight (too big) is sent again at once.
        (void)mtu;
        c.snd_nxt = c.snd_una;
        c.rtt_timing = false;
        want_output(c);
        return true;
      case wire::icmp_unreachable::protocol:
      case wire::icmp_unreachable::port:
        if (c.state == tcp_state::syn_sent) {
          fail(c, std::make_error_code(std::errc::connection_refused), now);
          return true;
        }
        c.soft_error = std::make_error_code(std::errc::connection_refused);
        return true;
      case 0:  // net unreachable
      case 6:
      case 9:
        c.soft_error = std::make_error_code(std::errc::network_unreachable);
        return true;
      default:
        c.soft_error = std::make_error_code(std::errc::host_unreachable);
        return true;
    }
  }
  c.soft_error = std::make_error_code(std::errc::host_unreachable);  // time exceeded
  return true;
}

}  // namespace dpdk_net::stack
