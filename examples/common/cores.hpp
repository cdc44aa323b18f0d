// The examples' worker options: --cores LIST and --no-pin, parsed and checked the same way by
// every example that can run several workers (http_server, http_load's sim server and its dpdk
// client, tcp_echo, udp_echo), and the small pieces a multi-worker example shares: the options
// for dpdk_net::multi_runtime, the "worker i pinned to core c" lines, per-worker counters as JSON
// members, and a sum of the stack's counter structs.
//
//   --cores LIST   device backends (tap, dpdk): one worker per listed core ("0,1", "0-3", as
//                  taskset writes them), each pinned to its core. Cores outside the process's
//                  allowed set are refused (exit 2) with the fix. One core: today's one-worker
//                  runtime, its thread pinned to that core.
//                  sim backend: the number of workers of the server host -- a single number N is
//                  a count ("--cores 2": two workers), a list counts its cores ("0,1": two).
//   --no-pin       device backends: the workers float (the list only gives their number).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "dpdk_net/runtime/multi_runtime.hpp"

namespace dpdk_net::examples {

struct worker_options {
  std::string text;    ///< --cores as given
  bool given = false;  ///< --cores was given (an empty value is an error)
  bool pin = true;     ///< false: --no-pin
  /// Resolved by resolve_workers(): the workers and, on a device backend, their cores.
  std::uint16_t workers = 1;
  std::vector<unsigned> cores;
  [[nodiscard]] bool multi() const noexcept { return workers > 1; }
  /// A device backend's thread(s) are pinned (--cores given, --no-pin not).
  [[nodiscard]] bool pinned() const noexcept { return pin && !cores.empty(); }
};

/// The help paragraph of --cores and --no-pin.
[[nodiscard]] const char* cores_usage() noexcept;

/// Resolves --cores for a device backend (threads: sim = false) or the sim backend (a count).
/// "" on success, else one line naming the problem and the fix, mentioning --cores (the caller
/// prints it and exits 2). A device backend's pinned cores must be in the allowed set.
[[nodiscard]] std::string resolve_workers(worker_options& w, bool sim);

/// multi_runtime's options for the resolved workers.
[[nodiscard]] multi_runtime_options multi_options(const worker_options& w);

/// One worker on a device backend with --cores: pins the calling thread to the core and prints
/// "prog: worker 0 pinned to core C (affinity A)". Nothing without --cores (or with --no-pin).
/// False (after printing why) if the pinning failed.
bool pin_single_worker(const char* prog, const worker_options& w);

/// After multi_runtime::start(): waits (at most 2 s) until every worker's thread has read its
/// affinity back and prints one line per worker: "prog: worker I pinned to core C (affinity A)"
/// or "prog: worker I not pinned (affinity A)".
void announce_workers(const char* prog, multi_runtime& rt);

/// Worker i's runtime and steering counters as JSON members (no braces):
/// "worker":i,"queue":q,"core":c,"affinity":"0",
/// "rx_frames":..,"tx_frames":..,"handed_out":..,"handed_in":..,"software_hashes":..,
/// "arp_copies":..,"ring_full":..,"no_buffer":..
[[nodiscard]] std::string worker_json(std::size_t i, const worker_stats& s,
                                      const std::vector<unsigned>& affinity);

/// The mesh counters summed over the workers, as JSON members: "steering":"software",
/// "handed_out":..,"software_hashes":..,"ring_full":..
[[nodiscard]] std::string steering_json(steering_mode mode, const std::vector<worker_stats>& s);

/// into += from, member by member, for the stack's counter structs (stack_counters,
/// tcp_counters, ...): every member is a std::uint64_t, or an array or struct of them.
template <class Counters>
void add_counters(Counters& into, const Counters& from) noexcept {
  static_assert(std::is_trivially_copyable_v<Counters> && sizeof(Counters) % 8 == 0);
  constexpr std::size_t n = sizeof(Counters) / 8;
  std::uint64_t a[n];
  std::uint64_t b[n];
  std::memcpy(a, &into, sizeof(Counters));
  std::memcpy(b, &from, sizeof(Counters));
  for (std::size_t i = 0; i < n; ++i) {
    a[i] += b[i];
  }
  std::memcpy(&into, a, sizeof(Counters));
}

}  // namespace dpdk_net::examples
