// stack_config validation: every field a stack depends on is checked before one is built, so a
// bad config is a clear one-line error, never undefined behaviour (a prefix over 32 would be an
// undefined shift, a zero-sized queue a division by zero).
#include <string>

#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack {

namespace {

std::string field_error(const char* field, const std::string& must, const std::string& is) {
  return std::string("stack_config.") + field + ": must be " + must + ", is " + is;
}

}  // namespace

std::string validate(const stack_config& c, std::uint16_t device_mtu) {
  using std::to_string;
  const wire::ipv4_address a = c.address;
  if (a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback()) {
    return field_error("address", "a unicast address (not 0.0.0.0, broadcast, multicast or 127/8)",
                       a.to_string());
  }
  if (c.mac.is_multicast() || c.mac == mac_address{}) {
    return field_error("mac", "a unicast, non-zero MAC", c.mac.to_string());
  }
  if (c.prefix_length > 32) {
    return field_error("prefix_length", "0..32", to_string(c.prefix_length));
  }
  const std::uint32_t mask =
      c.prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32U - c.prefix_length);
  if (c.prefix_length <= 30 && c.prefix_length > 0) {
    const std::uint32_t host = a.value & ~mask;
    if (host == 0 || host == ~mask) {
      return field_error("address",
                         "a host of its /" + to_string(c.prefix_length) +
                             " (not the subnet's network or broadcast address)",
                         a.to_string());
    }
  }
  if (c.gateway) {
    const wire::ipv4_address g = *c.gateway;
    // /32: the gateway is reached directly (point-to-point, like `via G onlink`).
    const bool on_link = c.prefix_length == 32 || (g.value & mask) == (a.value & mask);
    if (!on_link || g == a || g.is_unspecified() || g.is_broadcast() || g.is_multicast() ||
        g.is_loopback() ||
        (c.prefix_length <= 30 && c.prefix_length > 0 &&
         ((g.value & ~mask) == 0 || (g.value & ~mask) == ~mask))) {
      return field_error("gateway", "another host on the address's subnet", g.to_string());
    }
  }
  if (c.mtu < 68 || c.mtu > device_mtu) {
    return field_error("mtu", "68.." + to_string(device_mtu) + " (the device's MTU)",
                       to_string(c.mtu));
  }
  if (c.min_pmtu < 68) {  // above the MTU is fine: the MTU is then the floor
    return field_error("min_pmtu", "at least 68", to_string(c.min_pmtu));
  }
  if (c.ttl == 0) {
    return field_error("ttl", "1..255", "0");
  }
  struct nonzero {
    const char* field;
    std::size_t value;
  };
  for (const nonzero& n :
       {nonzero{"udp_sockets", c.udp_sockets}, nonzero{"udp_queue", c.udp_queue},
        nonzero{"tx_queue", c.tx_queue}, nonzero{"pmtu_entries", c.pmtu_entries},
        nonzero{"arp.entries", c.arp.entries}, nonzero{"arp.pending_total", c.arp.pending_total},
        nonzero{"arp.pending_per_entry", c.arp.pending_per_entry},
        nonzero{"arp.max_requests", c.arp.max_requests},
        nonzero{"arp.requests_per_second", c.arp.requests_per_second},
        nonzero{"reassembly.max_datagrams", c.reassembly.max_datagrams},
        nonzero{"reassembly.max_bytes", c.reassembly.max_bytes},
        nonzero{"reassembly.max_fragments", c.reassembly.max_fragments},
        nonzero{"reassembly.max_buffers", c.reassembly.max_buffers}}) {
    if (n.value == 0) {
      return field_error(n.field, "at least 1", "0");
    }
  }
  // Table sizes index 32-bit slot numbers; beyond these they would only waste memory.
  if (c.arp.entries > (1U << 24U) || c.pmtu_entries > (1U << 24U) ||
      c.arp.pending_total > (1U << 24U) || c.reassembly.max_datagrams > (1U << 20U) ||
      c.reassembly.max_fragments > 8192 || c.tx_queue > (1U << 24U) || c.udp_sockets > 65536) {
    return "stack_config: a table size is over its limit (arp.entries, arp.pending_total, "
           "pmtu_entries, tx_queue <= 2^24, reassembly.max_datagrams <= 2^20, "
           "reassembly.max_fragments <= 8192, udp_sockets <= 65536)";
  }
  if (c.ephemeral_first == 0 || c.ephemeral_first > c.ephemeral_last) {
    return field_error("ephemeral_first", "1..ephemeral_last (" + to_string(c.ephemeral_last) + ")",
                       to_string(c.ephemeral_first));
  }
  // Durations: positive, and at most a day, so `now + duration` cannot wrap into the past.
  constexpr time_ns day = 24 * 3600 * second;
  for (const time_ns d : {c.reassembly.timeout, c.arp.retry_interval, c.arp.reachable_time,
                          c.arp.stale_time, c.pmtu_lifetime}) {
    if (d == 0 || d > day) {
      return "stack_config: reassembly.timeout, arp.retry_interval, arp.reachable_time, "
             "arp.stale_time and pmtu_lifetime must be > 0 and <= 1 day";
    }
  }
  return {};
}

}  // namespace dpdk_net::stack
