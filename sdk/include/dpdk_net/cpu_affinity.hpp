// CPU affinity for the multi-core runtime: reading core lists as taskset and DPDK write them,
// checking them against what the process may use, and pinning threads (one worker per core).
// Linux only (sched_getaffinity, pthread_setaffinity_np); cores 0 to 1023 (the size of cpu_set_t).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace dpdk_net {

/// Highest core number the functions here accept.
inline constexpr unsigned max_core = 1023;

/// Parses a core list as taskset/DPDK write it: "0", "0,2", "1-3", "0,2-3", into its cores in the
/// order written ("3,1" is {3, 1}). Errors (empty list or item, a bad number, a reversed range, a
/// duplicate, a core beyond max_core): nullopt and a one-line `error` naming the problem.
std::optional<std::vector<unsigned>> parse_core_list(std::string_view text, std::string& error);

/// "0-1,3" for {0, 1, 3}: ascending, duplicates once, runs of two or more as a range. Takes the
/// cores in any order; "" for none.
std::string format_core_list(std::span<const unsigned> cores);

/// The cores this process may run on now (sched_getaffinity of the calling thread: call it before
/// pinning the thread), ascending.
std::vector<unsigned> allowed_cores();

/// Empty if every core of `cores` is in allowed_cores(); else one line naming the first core that
/// is not, the allowed set as a core list, and the fix ("use --cores within 0-1, or widen the
/// process's affinity: taskset -c <cores> ...").
std::string check_cores(std::span<const unsigned> cores);

/// Pins the calling thread to `core` (pthread_setaffinity_np); the error the call gave
/// (invalid_argument for a core beyond max_core or one the process may not use).
std::error_code pin_current_thread(unsigned core);

/// The calling thread's affinity (pthread_getaffinity_np), ascending.
std::vector<unsigned> current_thread_affinity();

}  // namespace dpdk_net
