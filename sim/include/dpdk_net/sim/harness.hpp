// Seeds, swarms and reproduction for simulated tests (any test framework; gtest.hpp adds the
// GoogleTest glue).
//
//   DPDK_NET_SIM_SEED=S      run exactly seed S
//   DPDK_NET_SIM_SEEDS=N     run a swarm of N seeds (from DPDK_NET_SIM_SEED_BASE, default 1);
//                            swarm runs also draw their fault rates from the seed
//   DPDK_NET_SIM_REPLAY=...  replay a fault schedule printed by a shrink ("loss@a>b#17 ...")
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dpdk_net::sim {

struct seed_plan {
  std::vector<std::uint64_t> seeds;
  bool swarm = false;  ///< seeds came from DPDK_NET_SIM_SEEDS: draw fault rates from them too
  std::string error;   ///< a malformed variable (the plan then holds the defaults)
};

/// The seeds to run: from the environment, else `defaults`.
[[nodiscard]] seed_plan seeds_from_environment(const std::vector<std::uint64_t>& defaults);

/// The schedule text in DPDK_NET_SIM_REPLAY, if set.
[[nodiscard]] std::optional<std::string> replay_from_environment();

/// "DPDK_NET_SIM_SEED=<seed> <program> --gtest_filter=<test>": the line that reruns one case.
[[nodiscard]] std::string repro_command(std::uint64_t seed, const std::string& program,
                                        const std::string& test);

/// What one run of a scenario produced, for determinism checks.
struct run_fingerprint {
  std::uint64_t trace_hash = 0;
  std::uint64_t event_log_hash = 0;
  friend bool operator==(const run_fingerprint&, const run_fingerprint&) = default;
};

/// Runs scenario(seed) twice; returns an empty string if both runs agree, else what diverged.
[[nodiscard]] std::string double_run(std::uint64_t seed,
                                     const std::function<run_fingerprint(std::uint64_t)>& scenario);

}  // namespace dpdk_net::sim
