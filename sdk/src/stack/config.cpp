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
  if (c.ip_id_count < 64 || c.ip_id_first + std::uint64_t{c.ip_id_count} > 65536) {
    return field_error("ip_id_count", "64..65536 - ip_id_first (" + to_string(c.ip_id_first) + ")",
                       to_string(c.ip_id_count));
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
  return validate_tcp(c.tcp);
}

std::string validate_tcp(const tcp_config& t) {
  const auto bad = [](const char* field, const std::string& must, const std::string& is) {
    return std::string("stack_config.tcp.") + field + ": must be " + must + ", is " + is;
  };
  using std::to_string;
  if (t.sockets == 0 || t.sockets > (1U << 20U)) {  // ids carry a 20-bit slot number
    return bad("sockets", "1..1048576", to_string(t.sockets));
  }
  if (t.time_wait_records == 0 || t.time_wait_records > (1U << 24U)) {
    return bad("time_wait_records", "1..16777216", to_string(t.time_wait_records));
  }
  // Window scaling reaches 2^30 bytes (RFC 7323 2.3); a ring must fit in 32-bit sequence space.
  constexpr std::uint32_t max_buffer = 1U << 30U;
  if (t.send_buffer < 1024 || t.send_buffer > max_buffer) {
    return bad("send_buffer", "1024..2^30", to_string(t.send_buffer));
  }
  if (t.receive_buffer < 1024 || t.receive_buffer > max_buffer) {
    return bad("receive_buffer", "1024..2^30", to_string(t.receive_buffer));
  }
  // A receive ring is the whole window or nothing: it must fit the budget. Sends need room for
  // at least the smallest ring outside the receive reserve.
  if (t.memory_budget < t.receive_buffer) {
    return bad("memory_budget", "at least receive_buffer (" + to_string(t.receive_buffer) + ")",
               to_string(t.memory_budget));
  }
  if (t.receive_reserve > t.memory_budget || t.memory_budget - t.receive_reserve < 4096) {
    return bad("receive_reserve", "at most memory_budget - 4096 (sends need a ring)",
               to_string(t.receive_reserve));
  }
  if (t.syn_cookie_period < second || t.syn_cookie_period > 24 * 3600 * second) {
    return bad("syn_cookie_period", "1 s..1 day", to_string(t.syn_cookie_period) + " ns");
  }
  if (t.max_backlog == 0) {
    return bad("max_backlog", "at least 1", "0");
  }
  constexpr time_ns day = 24 * 3600 * second;
  if (t.rto_min == 0 || t.rto_min > t.rto_max || t.rto_max > day) {
    return bad("rto_min", "1 ns..rto_max (rto_max <= 1 day)", to_string(t.rto_min));
  }
  if (t.rto_initial < t.rto_min || t.rto_initial > t.rto_max) {
    return bad("rto_initial", "rto_min..rto_max", to_string(t.rto_initial));
  }
  if (t.syn_retries == 0 || t.synack_retries == 0 || t.data_retries == 0 || t.syn_retries > 30 ||
      t.synack_retries > 30 || t.data_retries > 30) {
    return "stack_config.tcp: syn_retries, synack_retries and data_retries must be 1..30";
  }
  if (t.delayed_ack > 500 * millisecond) {  // RFC 1122 4.2.3.2
    return bad("delayed_ack", "0..500 ms", to_string(t.delayed_ack) + " ns");
  }
  if (t.time_wait == 0 || t.time_wait > day || t.fin_wait_2 == 0 || t.fin_wait_2 > day) {
    return "stack_config.tcp: time_wait and fin_wait_2 must be > 0 and <= 1 day";
  }
  if (t.initial_window == 0 || t.initial_window > 64) {
    return bad("initial_window", "1..64 segments", to_string(t.initial_window));
  }
  if (t.min_mss < 64 || t.min_mss > 1460) {
    return bad("min_mss", "64..1460", to_string(t.min_mss));
  }
  if (t.dup_ack_threshold == 0 || t.dup_ack_threshold > 64) {
    return bad("dup_ack_threshold", "1..64", to_string(t.dup_ack_threshold));
  }
  if (t.out_of_order_ranges == 0 || t.out_of_order_ranges > 8) {
    return bad("out_of_order_ranges", "1..8", to_string(t.out_of_order_ranges));
  }
  return {};
}

std::size_t frames_held(const stack_config& c) noexcept {
  return c.tx_queue + c.udp_sockets * c.udp_queue + c.reassembly.max_buffers;
}

void use_device(stack_config& config, const device_info& device) noexcept {
  config.mtu = device.mtu;
  config.tx_offloads = device.tx_offloads;
  config.tx_chaining = device.tx_multi_segment;
}

}  // namespace dpdk_net::stack
