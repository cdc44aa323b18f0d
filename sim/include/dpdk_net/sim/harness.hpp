// Seeds, swarms, reproduction, replay and shrinking for simulated tests (any test framework;
// gtest.hpp adds the GoogleTest glue that runs all of it by itself).
//
//   DPDK_NET_SIM_SEED=S      run exactly seed S
//   DPDK_NET_SIM_SWARM=1     ... in swarm mode (fault rates drawn from the seed too): what a swarm
//                            failure's repro line sets, so the rerun has the same rates
//   DPDK_NET_SIM_SEEDS=N     run a swarm of N seeds (from DPDK_NET_SIM_SEED_BASE, default 1);
//                            swarm runs also draw their fault rates from the seed
//   DPDK_NET_SIM_REPLAY=...  with one seed: replay this fault schedule ("loss@a>b#17 ...", as a
//                            shrink prints it) instead of drawing random faults
//   DPDK_NET_SIM_SHRINK=0    do not shrink a failure (default: shrink, within a budget)
//   DPDK_NET_SIM_SHRINK_RUNS=N    at most N shrink runs (default 500)
//   DPDK_NET_SIM_SHRINK_BUDGET=F  at most F times the failing run's simulated events, all shrink
//                                 runs together (default 100)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dpdk_net/sim/link_model.hpp"

namespace dpdk_net::sim {

struct seed_plan {
  std::vector<std::uint64_t> seeds;
  bool swarm = false;  ///< draw fault rates from the seeds too (DPDK_NET_SIM_SEEDS or _SWARM=1)
  std::string error;   ///< a malformed variable (the plan then holds the defaults)
};

/// The seeds to run: from the environment, else `defaults`.
[[nodiscard]] seed_plan seeds_from_environment(const std::vector<std::uint64_t>& defaults);

/// The schedule text in DPDK_NET_SIM_REPLAY, if set.
[[nodiscard]] std::optional<std::string> replay_from_environment();

/// The line that reruns one case exactly, e.g.
///   DPDK_NET_SIM_SWARM=1 DPDK_NET_SIM_SEED=7 <program> --gtest_filter=<test>
/// with DPDK_NET_SIM_REPLAY='<schedule>' when `replay` is given. Shell-quoted where needed.
[[nodiscard]] std::string repro_command(std::uint64_t seed, const std::string& program,
                                        const std::string& test, bool swarm = false,
                                        const std::optional<std::string>& replay = std::nullopt);

/// One random fault, naming its link direction (network-independent, unlike fault_decision):
/// what a printed schedule holds.
struct named_fault {
  std::string direction;  ///< "a.eth0>b.eth0"
  std::uint64_t ordinal = 0;
  fault kind = fault::loss;
  friend bool operator==(const named_fault&, const named_fault&) = default;
};

/// "loss@a.eth0>b.eth0#17 corrupt@sw>b.eth0#3" <-> entries. Parsing checks the syntax and the
/// kind (a random fault); whether the directions exist is up to the network that replays it.
[[nodiscard]] std::string format_faults(const std::vector<named_fault>& faults);
[[nodiscard]] std::optional<std::vector<named_fault>> parse_faults(std::string_view text,
                                                                   std::string& error);

/// How a failure is shrunk (from the environment; see the top of this file).
struct shrink_options {
  bool enabled = true;
  std::size_t max_runs = 500;
  std::uint64_t budget_factor = 100;
  std::string error;
};
[[nodiscard]] shrink_options shrink_options_from_environment();

/// One run of a test body for one seed, as the harness sees it. While it is active (one per
/// thread), every network built replays its schedule (if replaying) and, when destroyed,
/// reports what it did: the first network's random faults (what shrinking works on) and every
/// network's simulated events (what the shrink budget counts). Tests do not use it directly.
class case_run {
 public:
  explicit case_run(std::optional<std::vector<named_fault>> replay = std::nullopt);
  ~case_run();
  case_run(const case_run&) = delete;
  case_run& operator=(const case_run&) = delete;

  /// The active run on this thread, or nullptr.
  [[nodiscard]] static case_run* active() noexcept;

  [[nodiscard]] bool replaying() const noexcept { return replay_.has_value(); }
  [[nodiscard]] const std::vector<named_fault>& replay() const noexcept { return *replay_; }
  /// The random faults the first network applied, in the order they happened.
  [[nodiscard]] const std::vector<named_fault>& faults() const noexcept { return faults_; }
  [[nodiscard]] std::size_t networks() const noexcept { return networks_; }
  [[nodiscard]] std::uint64_t events() const noexcept { return events_; }
  /// Replay entries whose direction no network of this run had (a schedule for another test).
  [[nodiscard]] std::vector<named_fault> unmatched() const;

  // Called by network.
  void matched(std::size_t replay_index) noexcept { matched_.at(replay_index) = true; }
  void network_done(const std::vector<std::string>& direction_names,
                    const std::vector<fault_decision>& decisions, std::uint64_t events);

 private:
  std::optional<std::vector<named_fault>> replay_;
  std::vector<bool> matched_;
  std::vector<named_fault> faults_;
  std::size_t networks_ = 0;
  std::uint64_t events_ = 0;
  case_run* previous_;
};

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
