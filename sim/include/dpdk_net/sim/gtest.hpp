// GoogleTest glue for simulated tests: run a body once per seed of the plan, with the seed and
// the one-line repro command attached to every failure message; shrink a failure by itself and
// print the minimal fault schedule with the line that replays it.
//
//   TEST(MyProtocol, SurvivesLoss) {
//     dpdk_net::sim::for_each_seed([](std::uint64_t seed, bool swarm) {
//       dpdk_net::sim::network net(seed);
//       ...
//     });
//   }
//
// The body must be re-runnable (build its network and state inside): shrinking runs it again,
// replaying subsets of the failing run's random faults, with its failures intercepted, until the
// same assertion (file and line) fails with as few faults as possible.
#pragma once

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "dpdk_net/sim/harness.hpp"
#include "dpdk_net/sim/shrink.hpp"

namespace dpdk_net::sim {

/// The executable's path, for the repro line (this process's own, unless set otherwise).
inline std::string& test_program() {
  static std::string program = [] {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string("<test binary>") : self.string();
  }();
  return program;
}

namespace detail {

/// Where a failure was raised (the assertion's file and line).
struct failure_site {
  std::string file;
  int line = -1;
  friend bool operator==(const failure_site&, const failure_site&) = default;
};

inline failure_site site_of(const ::testing::TestPartResult& r) {
  return failure_site{r.file_name() != nullptr ? r.file_name() : "", r.line_number()};
}

/// The first failure the current test recorded at or after part `first_part`.
inline std::optional<failure_site> first_failure_since(int first_part) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) {
    return std::nullopt;
  }
  const ::testing::TestResult& result = *info->result();
  for (int i = first_part; i < result.total_part_count(); ++i) {
    if (result.GetTestPartResult(i).failed()) {
      return site_of(result.GetTestPartResult(i));
    }
  }
  return std::nullopt;
}

inline int recorded_parts() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info != nullptr ? info->result()->total_part_count() : 0;
}

inline void sim_line(const std::string& text) {
  std::fprintf(stderr, "[  SIM     ] %s\n", text.c_str());
}

/// Shrinks the failure `failing` (the run that failed at `site`) and prints the result.
template <class Body>
void shrink_failure(Body& body, std::uint64_t seed, bool swarm, const case_run& failing,
                    const failure_site& site, const std::string& test) {
  const shrink_options options = shrink_options_from_environment();
  if (!options.error.empty()) {
    sim_line("not shrinking: " + options.error);
    return;
  }
  if (!options.enabled) {
    return;
  }
  if (failing.networks() == 0) {
    return;  // not a simulation (no network was built): nothing to shrink
  }
  const std::vector<named_fault>& faults = failing.faults();
  // Budget: simulated events over all shrink runs, relative to the failing run's own cost, so
  // the box is the same on every machine (and the shrink's result with it).
  const std::uint64_t budget = (failing.events() + 1000) * options.budget_factor;
  std::uint64_t spent = 0;
  std::size_t runs = 0;
  auto still_fails = [&](const std::vector<named_fault>& schedule) {
    ++runs;
    ::testing::TestPartResultArray results;
    case_run run(schedule);
    {
      const ::testing::ScopedFakeTestPartResultReporter intercept(
          ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
      body(seed, swarm);
    }
    spent += run.events();
    for (int i = 0; i < results.size(); ++i) {
      if (results.GetTestPartResult(i).failed() && site_of(results.GetTestPartResult(i)) == site) {
        return true;
      }
    }
    return false;
  };
  sim_line("shrinking the " + std::to_string(faults.size()) +
           " random faults of the failing run (" + "budget: " + std::to_string(options.max_runs) +
           " runs, " + std::to_string(options.budget_factor) + "x its simulated events)");
  // Replaying the run's own faults must fail the same way, or shrinking cannot mean anything
  // (e.g. the body builds networks that differ from run to run).
  if (!still_fails(faults)) {
    sim_line("not shrunk: replaying the failing run's own faults does not fail at " + site.file +
             ":" + std::to_string(site.line) + " (does the body build the same network each run?)");
    return;
  }
  std::vector<named_fault> minimal;
  bool exhausted = false;
  if (!faults.empty() && !still_fails({})) {
    // Shrink on decisions whose "direction" is the fault's index in `faults`: no network needed.
    std::vector<fault_decision> indexed;
    for (std::size_t i = 0; i < faults.size(); ++i) {
      indexed.push_back(fault_decision{static_cast<std::uint32_t>(i), 0, fault::loss});
    }
    auto named = [&faults](const fault_schedule& s) {
      std::vector<named_fault> out;
      for (const fault_decision& d : s.decisions()) {
        out.push_back(faults[d.direction]);
      }
      return out;
    };
    const shrink_result r = shrink(
        fault_schedule(indexed), [&](const fault_schedule& s) { return still_fails(named(s)); },
        options.max_runs > runs ? options.max_runs - runs : 0, [&] { return spent >= budget; });
    minimal = named(r.minimal);
    exhausted = r.exhausted;
  }
  sim_line(
      "minimal schedule (" + std::to_string(minimal.size()) + " of " +
      std::to_string(faults.size()) + " faults, " + std::to_string(runs) + " runs" +
      (exhausted ? ", budget ran out: smaller than the run's, maybe not minimal" : "") +
      "): " + (minimal.empty() ? "none (it fails without random faults)" : format_faults(minimal)));
  sim_line("replay it with:");
  sim_line("  " + repro_command(seed, test_program(), test, swarm, format_faults(minimal)));
}

}  // namespace detail

template <class Body>
void for_each_seed(Body&& body, const std::vector<std::uint64_t>& defaults = {1, 2, 3}) {
  const seed_plan plan = seeds_from_environment(defaults);
  ASSERT_TRUE(plan.error.empty()) << plan.error;
  std::optional<std::vector<named_fault>> replay;
  if (const auto text = replay_from_environment()) {
    std::string error;
    replay = parse_faults(*text, error);
    ASSERT_TRUE(replay) << "DPDK_NET_SIM_REPLAY: " << error;
    ASSERT_EQ(plan.seeds.size(), 1U)
        << "DPDK_NET_SIM_REPLAY replays one run: set DPDK_NET_SIM_SEED (and DPDK_NET_SIM_SWARM=1 "
           "if the schedule came from a swarm)";
    detail::sim_line("replaying " + std::to_string(replay->size()) + " random faults: " + *text);
  }
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string test =
      info != nullptr ? std::string(info->test_suite_name()) + "." + info->name() : "";
  for (std::uint64_t seed : plan.seeds) {
    const std::string repro = repro_command(seed, test_program(), test, plan.swarm);
    SCOPED_TRACE("simulation seed " + std::to_string(seed) + "; rerun: " + repro);
    const int parts = detail::recorded_parts();
    const case_run run(replay);  // what this seed's networks replay and report
    body(seed, plan.swarm);
    for (const named_fault& f : run.unmatched()) {
      ADD_FAILURE() << "DPDK_NET_SIM_REPLAY names a link direction this test never built: "
                    << format_faults({f});
    }
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr,
                   "[  SIM     ] failed with seed %llu; rerun exactly this case with:\n"
                   "[  SIM     ]   %s\n",
                   static_cast<unsigned long long>(seed), repro.c_str());
      const std::optional<detail::failure_site> site = detail::first_failure_since(parts);
      if (site && !replay) {
        detail::shrink_failure(body, seed, plan.swarm, run, *site, test);
      }
      return;
    }
  }
}

}  // namespace dpdk_net::sim
