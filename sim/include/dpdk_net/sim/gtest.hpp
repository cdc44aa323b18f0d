// GoogleTest glue for simulated tests: run a body once per seed of the plan, with the seed and
// the one-line repro command attached to every failure message.
//
//   TEST(MyProtocol, SurvivesLoss) {
//     dpdk_net::sim::for_each_seed([](std::uint64_t seed, bool swarm) {
//       dpdk_net::sim::network net(seed);
//       ...
//     });
//   }
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "dpdk_net/sim/harness.hpp"

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

template <class Body>
void for_each_seed(Body&& body, const std::vector<std::uint64_t>& defaults = {1, 2, 3}) {
  const seed_plan plan = seeds_from_environment(defaults);
  ASSERT_TRUE(plan.error.empty()) << plan.error;
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string test =
      info != nullptr ? std::string(info->test_suite_name()) + "." + info->name() : "";
  for (std::uint64_t seed : plan.seeds) {
    const std::string repro = repro_command(seed, test_program(), test);
    SCOPED_TRACE("simulation seed " + std::to_string(seed) + "; rerun: " + repro);
    body(seed, plan.swarm);
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr,
                   "[  SIM     ] failed with seed %llu; rerun exactly this case with:\n"
                   "[  SIM     ]   %s\n",
                   static_cast<unsigned long long>(seed), repro.c_str());
      return;
    }
  }
}

}  // namespace dpdk_net::sim
