// The harness around simulated tests, end to end: a failing case prints lines that reproduce it
// exactly (swarm fault rates included), shrinks itself to a minimal fault schedule, and the
// printed replay line replays that schedule. The failures are planted in tests that exist only
// when DPDK_NET_SIM_PLANTED=1; the checks below run them, and the lines they print, in a child
// process (this same binary), as a developer would from a terminal.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dpdk_net/sim/gtest.hpp"
#include "dpdk_net/sim/harness.hpp"
#include "sim_frames.hpp"

namespace dpdk_net::sim {
namespace {
namespace harness_test {

using namespace test;

/// Sets (or unsets, with nullptr) an environment variable for one scope.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~scoped_env() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

struct command_result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

/// Runs `line` with sh, in an environment without any of the harness's variables (so what the
/// line sets is all there is) nor GoogleTest's (a shard or an XML report of the parent's must not
/// apply to the child), under a 60 s timeout.
command_result run_line(const std::string& line) {
  const std::string command =
      "timeout 60 env -u DPDK_NET_SIM_SEED -u DPDK_NET_SIM_SEEDS -u DPDK_NET_SIM_SEED_BASE "
      "-u DPDK_NET_SIM_SWARM -u DPDK_NET_SIM_REPLAY -u DPDK_NET_SIM_SHRINK "
      "-u DPDK_NET_SIM_SHRINK_RUNS -u DPDK_NET_SIM_SHRINK_BUDGET -u DPDK_NET_SIM_PLANTED "
      "-u DPDK_NET_SIM_PLANTED_SEED -u GTEST_SHARD_INDEX "
      "-u GTEST_TOTAL_SHARDS -u GTEST_SHARD_STATUS_FILE -u GTEST_OUTPUT -u GTEST_FILTER "
      "-u GTEST_ALSO_RUN_DISABLED_TESTS -u GTEST_REPEAT sh -c " +
      shell_quote(line) + " 2>&1";
  command_result r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return r;
  }
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) != 0) {
    r.output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// What follows the first `marker` in text, to the end of its line ("" if absent).
std::string after(const std::string& text, const std::string& marker) {
  const std::size_t at = text.find(marker);
  if (at == std::string::npos) {
    return "";
  }
  const std::size_t from = at + marker.size();
  return text.substr(from, text.find('\n', from) - from);
}

/// a sends `count` numbered frames to b over `c`; the numbers b received and the trace hash.
struct blast_result {
  std::vector<std::uint32_t> received;
  std::uint64_t trace_hash = 0;
};
blast_result blast(std::uint64_t seed, const link_config& c, std::uint32_t count) {
  network net(seed);
  nic_config small;
  small.pool_size = 256;  // enough for the frames in flight; a smaller pool is quicker to build
  sim_nic& a = net.add_nic(net.add_host("a"), small);
  sim_nic& b = net.add_nic(net.add_host("b"), small);
  net.connect(a, b, c);
  blaster traffic(net, a, b);
  traffic.start(count, 10 * microsecond);
  net.run_for(100 * millisecond);
  return blast_result{traffic.received, net.trace_hash()};
}

std::string lost_frames(const std::vector<std::uint32_t>& received, std::uint32_t count) {
  std::string out;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (std::find(received.begin(), received.end(), i) == received.end()) {
      out += (out.empty() ? "" : " ") + std::to_string(i);
    }
  }
  return out;
}

// --- planted failures ------------------------------------------------------------------------
// Registered only when DPDK_NET_SIM_PLANTED=1 (the checks below set it for their child process):
// in a normal run they do not exist, so they are neither failures nor skipped tests.

void fails_at_one_swarm_seed() {
  const char* planted = std::getenv("DPDK_NET_SIM_PLANTED_SEED");
  ASSERT_NE(planted, nullptr);
  const std::uint64_t bad_seed = std::strtoull(planted, nullptr, 10);
  for_each_seed([bad_seed](std::uint64_t seed, bool swarm) {
    link_config fixed;
    fixed.loss = 0.05;
    const blast_result r = blast(seed, swarm ? link_config::swarm(seed) : fixed, 50);
    char trace[17];
    std::snprintf(trace, sizeof trace, "%016llx", static_cast<unsigned long long>(r.trace_hash));
    EXPECT_NE(seed, bad_seed) << "planted failure; trace " << trace;
  });
}

void fails_when_frames_17_and_42_are_both_lost() {
  for_each_seed([](std::uint64_t seed, bool) {
    link_config c;
    c.loss = 0.9;  // ~90 random drops among 100 frames, two of which matter
    const blast_result r = blast(seed, c, 100);
    const auto lost = [&r](std::uint32_t n) {
      return std::find(r.received.begin(), r.received.end(), n) == r.received.end();
    };
    EXPECT_FALSE(lost(17) && lost(42)) << "planted failure; lost " << lost_frames(r.received, 100);
  });
}

class planted_test : public ::testing::Test {
 public:
  explicit planted_test(void (*body)()) : body_(body) {}
  void TestBody() override { body_(); }

 private:
  void (*body_)();
};

[[maybe_unused]] const bool planted_registered = [] {
  const char* on = std::getenv("DPDK_NET_SIM_PLANTED");
  if (on == nullptr || std::string_view(on) != "1") {
    return false;
  }
  for (const auto& [name, body] : {std::pair{"FailsAtOneSwarmSeed", &fails_at_one_swarm_seed},
                                   std::pair{"FailsWhenFrames17And42AreBothLost",
                                             &fails_when_frames_17_and_42_are_both_lost}}) {
    ::testing::RegisterTest("SimPlanted", name, nullptr, nullptr, __FILE__, __LINE__,
                            [body = body]() -> ::testing::Test* { return new planted_test(body); });
  }
  return true;
}();

// --- the checks -----------------------------------------------------------------------------

TEST(SimHarness, SwarmFailureReproLineReproducesItExactly) {
  // The swarm's third seed fails. Its printed line must rerun it with the same fault rates:
  // the same trace hash (a rerun without swarm mode draws other rates and other traffic).
  std::uint64_t bad_seed = 0;
  {
    const scoped_env seeds("DPDK_NET_SIM_SEEDS", "4");
    const scoped_env one("DPDK_NET_SIM_SEED", nullptr);
    bad_seed = seeds_from_environment({}).seeds.at(2);
  }
  // What the developer's environment holds (the planted test exists, its bad seed), not the line.
  const std::string planted =
      "DPDK_NET_SIM_PLANTED=1 DPDK_NET_SIM_PLANTED_SEED=" + std::to_string(bad_seed) + " ";
  const command_result swarm =
      run_line(planted + "DPDK_NET_SIM_SEEDS=4 DPDK_NET_SIM_SHRINK=0 " +
               shell_quote(test_program()) + " --gtest_filter=SimPlanted.FailsAtOneSwarmSeed");
  ASSERT_EQ(swarm.exit_code, 1) << swarm.output;
  const std::string trace = after(swarm.output, "planted failure; trace ");
  const std::string line = after(swarm.output, "rerun exactly this case with:\n[  SIM     ]   ");
  ASSERT_NE(trace, "") << swarm.output;
  ASSERT_NE(line, "") << swarm.output;
  EXPECT_NE(line.find("DPDK_NET_SIM_SWARM=1 DPDK_NET_SIM_SEED=" + std::to_string(bad_seed)),
            std::string::npos)
      << line;

  const command_result rerun = run_line(planted + line);
  EXPECT_EQ(rerun.exit_code, 1) << rerun.output;
  EXPECT_EQ(after(rerun.output, "planted failure; trace "), trace)
      << "the repro line did not reproduce the swarm run:\n"
      << rerun.output;
}

TEST(SimHarness, AFailureShrinksByItselfAndItsReplayLineReplaysIt) {
  const std::string planted = "DPDK_NET_SIM_PLANTED=1 ";  // the planted test exists
  const command_result failed =
      run_line(planted + shell_quote(test_program()) +
               " --gtest_filter=SimPlanted.FailsWhenFrames17And42AreBothLost");
  ASSERT_EQ(failed.exit_code, 1) << failed.output;
  // The shrink found exactly the two drops that matter among the ~90 of the failing run.
  const std::string minimal = after(failed.output, "minimal schedule (");
  EXPECT_NE(minimal.find("2 of "), std::string::npos) << failed.output;
  EXPECT_NE(minimal.find("loss@a.eth0>b.eth0#17 loss@a.eth0>b.eth0#42"), std::string::npos)
      << failed.output;
  EXPECT_EQ(minimal.find("budget ran out"), std::string::npos) << failed.output;
  const std::string line = after(failed.output, "replay it with:\n[  SIM     ]   ");
  ASSERT_NE(line.find("DPDK_NET_SIM_REPLAY="), std::string::npos) << failed.output;

  // The replay line replays that schedule: only frames 17 and 42 are lost, and it still fails.
  const command_result replayed = run_line(planted + line);
  EXPECT_EQ(replayed.exit_code, 1) << replayed.output;
  EXPECT_NE(replayed.output.find("replaying 2 random faults"), std::string::npos)
      << replayed.output;
  EXPECT_EQ(after(replayed.output, "planted failure; lost "), "17 42") << replayed.output;
  EXPECT_EQ(replayed.output.find("minimal schedule"), std::string::npos)
      << "a replay does not shrink again";
}

TEST(SimHarness, ReplayFromTheEnvironmentReachesEveryNetworkTheBodyBuilds) {
  const scoped_env seed("DPDK_NET_SIM_SEED", "1");
  const scoped_env seeds("DPDK_NET_SIM_SEEDS", nullptr);
  const scoped_env swarm("DPDK_NET_SIM_SWARM", nullptr);
  const scoped_env replay("DPDK_NET_SIM_REPLAY", "loss@a.eth0>b.eth0#3 loss@a.eth0>b.eth0#7");
  int runs = 0;
  for_each_seed([&runs](std::uint64_t s, bool) {
    link_config lossy;
    lossy.loss = 0.5;  // replaced by the schedule: only its two drops happen
    for (int i = 0; i < 2; ++i) {
      const blast_result r = blast(s, lossy, 10);
      EXPECT_EQ(lost_frames(r.received, 10), "3 7");
    }
    ++runs;
  });
  EXPECT_EQ(runs, 1);
}

TEST(SimHarness, AReplayNamingAnUnknownLinkFailsClearly) {
  const scoped_env seed("DPDK_NET_SIM_SEED", "1");
  const scoped_env replay("DPDK_NET_SIM_REPLAY", "loss@a.eth0>nowhere#3");
  ::testing::TestPartResultArray failures;
  {
    const ::testing::ScopedFakeTestPartResultReporter intercept(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    for_each_seed([](std::uint64_t s, bool) { (void)blast(s, link_config{}, 5); });
  }
  ASSERT_EQ(failures.size(), 1);
  EXPECT_NE(std::string(failures.GetTestPartResult(0).message()).find("never built"),
            std::string::npos)
      << failures.GetTestPartResult(0).message();
}

TEST(SimHarness, SeedsSwarmAndReproLines) {
  const scoped_env seeds("DPDK_NET_SIM_SEEDS", nullptr);
  {
    const scoped_env seed("DPDK_NET_SIM_SEED", "99");
    const scoped_env swarm("DPDK_NET_SIM_SWARM", "1");
    const seed_plan plan = seeds_from_environment({5});
    EXPECT_EQ(plan.seeds, (std::vector<std::uint64_t>{99}));
    EXPECT_TRUE(plan.swarm) << "one seed of a swarm keeps the swarm's fault rates";
  }
  {
    const scoped_env seed("DPDK_NET_SIM_SEED", "99");
    const scoped_env swarm("DPDK_NET_SIM_SWARM", "yes");
    EXPECT_NE(seeds_from_environment({5}).error, "");
  }
  EXPECT_EQ(repro_command(7, "/b/t", "A.b", true),
            "DPDK_NET_SIM_SWARM=1 DPDK_NET_SIM_SEED=7 /b/t --gtest_filter=A.b");
  EXPECT_EQ(repro_command(7, "/b/t", "A.b", false, "loss@a.eth0>b.eth0#17"),
            "DPDK_NET_SIM_SEED=7 DPDK_NET_SIM_REPLAY='loss@a.eth0>b.eth0#17' /b/t "
            "--gtest_filter=A.b");
  EXPECT_EQ(repro_command(7, "/my tests/t", "A.DISABLED_b", false, ""),
            "DPDK_NET_SIM_SEED=7 DPDK_NET_SIM_REPLAY='' '/my tests/t' --gtest_filter=A.DISABLED_b "
            "--gtest_also_run_disabled_tests");
  std::string error;
  const auto parsed = parse_faults("loss@a.eth0>b.eth0#17, corrupt@sw>b.eth0#3", error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(format_faults(*parsed), "loss@a.eth0>b.eth0#17 corrupt@sw>b.eth0#3");
  EXPECT_FALSE(parse_faults("queue_full@a>b#1", error)) << "not a random fault: not replayable";
  EXPECT_FALSE(parse_faults("loss@#1", error));
}

}  // namespace harness_test
}  // namespace
}  // namespace dpdk_net::sim
