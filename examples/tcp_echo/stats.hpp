// tcp_echo's counters JSON: one line (what the tests read) with the stack's counters, TCP's
// (netstat -s style, by reason), the application's, the device's and the fault model's.
#pragma once

#include <string>

#include "dpdk_net/device.hpp"
#include "dpdk_net/sim/link_model.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/stack/tcp.hpp"
#include "echo_app.hpp"

namespace tcp_echo {

struct run_stats {
  dpdk_net::stack::stack_counters stack;
  dpdk_net::stack::tcp_counters tcp;
  app_counters app;
  dpdk_net::device_stats device;
  std::uint64_t connections = 0;  ///< TCP connections still in a slot at exit (any state)
  std::uint64_t time_wait = 0;    ///< TIME-WAIT records at exit
  const dpdk_net::sim::link_counters* fault_rx = nullptr;  ///< null: no faults injected
  const dpdk_net::sim::link_counters* fault_tx = nullptr;
  /// The most connections (half-open and unaccepted included) seen at once, sampled every
  /// round of the driver loop: what the SYN and accept queues bound.
  std::uint64_t connections_peak = 0;
  /// Several workers: a JSON array, one object per worker (empty: one worker, no member).
  std::string workers{};
};

[[nodiscard]] std::string stats_json(const run_stats& s);
/// To `path`, or stdout if empty. False if the file cannot be written.
bool write_stats(const run_stats& s, const std::string& path);

}  // namespace tcp_echo
