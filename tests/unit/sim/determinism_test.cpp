// Same seed => same traffic, byte for byte; seeds select runs; failing schedules shrink.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "dpdk_net/sim/gtest.hpp"
#include "dpdk_net/sim/harness.hpp"
#include "dpdk_net/sim/shrink.hpp"
#include "sim_frames.hpp"

namespace dpdk_net::sim {
namespace {
namespace determinism_test {

using namespace test;

/// Three hosts on a switch over faulty links, all talking to each other; pcaps optional.
run_fingerprint faulty_switch_scenario(std::uint64_t seed, const std::string& pcap_dir = {}) {
  network net(seed);
  sim_switch& sw = net.add_switch("sw");
  link_config c;
  c.delay = 50 * microsecond;
  c.jitter = 20 * microsecond;
  c.loss = 0.05;
  c.duplicate = 0.03;
  c.reorder = 0.05;
  c.corrupt = 0.02;
  c.bandwidth_bps = 100'000'000;
  std::vector<sim_nic*> nics;
  for (int i = 0; i < 3; ++i) {
    host& h = net.add_host("h" + std::to_string(i));
    sim_nic& n = net.add_nic(h);
    net.connect(n, sw, c);
    nics.push_back(&n);
    h.on_receive = [&n](host&) { drain(n); };
    if (!pcap_dir.empty()) {
      std::string error;
      EXPECT_TRUE(net.capture(n, pcap_dir + "/h" + std::to_string(i) + ".pcap", error)) << error;
    }
  }
  rng workload(derive_seed(seed, "workload"));
  for (std::uint32_t k = 0; k < 600; ++k) {
    const time_ns at = k * 20 * microsecond + workload.below(10 * microsecond);
    const auto from = static_cast<std::size_t>(workload.below(3));
    const auto to = (from + 1 + static_cast<std::size_t>(workload.below(2))) % 3;
    const auto size = static_cast<std::size_t>(64 + workload.below(1400));
    net.events().at(at, [&nics, from, to, k, size] {
      send(*nics[from], udp_frame(*nics[from], *nics[to], k, 1000, 2000, size));
    });
  }
  net.run_for(100 * millisecond);
  return run_fingerprint{net.trace_hash(), net.event_log_hash()};
}

std::vector<char> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

TEST(SimDeterminism, SameSeedSameHashesAndByteIdenticalPcaps) {
  const auto base =
      std::filesystem::temp_directory_path() / ("dpdk_net_sim_det_" + std::to_string(::getpid()));
  const std::string d1 = (base / "run1").string();
  const std::string d2 = (base / "run2").string();
  std::filesystem::create_directories(d1);
  std::filesystem::create_directories(d2);
  const run_fingerprint r1 = faulty_switch_scenario(42, d1);
  const run_fingerprint r2 = faulty_switch_scenario(42, d2);
  EXPECT_EQ(r1, r2);
  for (int i = 0; i < 3; ++i) {
    const auto p1 = read_all(d1 + "/h" + std::to_string(i) + ".pcap");
    const auto p2 = read_all(d2 + "/h" + std::to_string(i) + ".pcap");
    EXPECT_GT(p1.size(), 10000U);
    EXPECT_EQ(p1, p2) << "h" << i << ".pcap differs";
  }
  std::filesystem::remove_all(base);
  const run_fingerprint other = faulty_switch_scenario(43);
  EXPECT_NE(r1.trace_hash, other.trace_hash);
  EXPECT_NE(r1.event_log_hash, other.event_log_hash);
}

TEST(SimDeterminism, DoubleRunDetectsDivergence) {
  EXPECT_EQ(double_run(7, [](std::uint64_t s) { return faulty_switch_scenario(s); }), "");
  int calls = 0;
  const std::string diverged = double_run(7, [&calls](std::uint64_t) {
    return run_fingerprint{static_cast<std::uint64_t>(++calls), 0};  // a nondeterministic run
  });
  EXPECT_NE(diverged.find("diverged"), std::string::npos) << diverged;
}

TEST(SimDeterminism, AddingALinkDoesNotChangeAnotherLinksFaults) {
  auto losses_on_ab = [](bool extra_link) {
    network net(99);
    link_config c;
    c.loss = 0.3;
    sim_nic& a = net.add_nic(net.add_host("a"));
    sim_nic& b = net.add_nic(net.add_host("b"));
    if (extra_link) {
      sim_nic& x = net.add_nic(net.add_host("x"));
      sim_nic& y = net.add_nic(net.add_host("y"));
      net.connect(x, y, c);
      for (std::uint32_t i = 0; i < 50; ++i) {
        send(x, udp_frame(x, y, i));
      }
    }
    net.connect(a, b, c);
    for (std::uint32_t i = 0; i < 200; ++i) {
      send(a, udp_frame(a, b, i));
    }
    net.run_for(millisecond);
    std::vector<std::uint32_t> got = drain(b);
    return got;
  };
  EXPECT_EQ(losses_on_ab(false), losses_on_ab(true));
}

TEST(SimDeterminism, SeedsComeFromTheEnvironment) {
  ::unsetenv("DPDK_NET_SIM_SEED");
  ::unsetenv("DPDK_NET_SIM_SEEDS");
  EXPECT_EQ(seeds_from_environment({5, 6}).seeds, (std::vector<std::uint64_t>{5, 6}));
  ::setenv("DPDK_NET_SIM_SEED", "1234", 1);
  EXPECT_EQ(seeds_from_environment({5}).seeds, (std::vector<std::uint64_t>{1234}));
  ::setenv("DPDK_NET_SIM_SEED", "12x", 1);
  EXPECT_NE(seeds_from_environment({5}).error, "");
  ::unsetenv("DPDK_NET_SIM_SEED");
  ::setenv("DPDK_NET_SIM_SEEDS", "20", 1);
  const seed_plan swarm = seeds_from_environment({5});
  ::unsetenv("DPDK_NET_SIM_SEEDS");
  EXPECT_TRUE(swarm.swarm);
  EXPECT_EQ(swarm.seeds.size(), 20U);
  EXPECT_EQ(std::set<std::uint64_t>(swarm.seeds.begin(), swarm.seeds.end()).size(), 20U);
  EXPECT_EQ(repro_command(77, "build/ci/bin/dpdk_net_tests", "A.b"),
            "DPDK_NET_SIM_SEED=77 build/ci/bin/dpdk_net_tests --gtest_filter=A.b");
}

TEST(SimDeterminism, ForEachSeedRunsEverySeedOfThePlan) {
  std::vector<std::uint64_t> seen;
  for_each_seed(
      [&](std::uint64_t seed, bool swarm) {
        EXPECT_FALSE(swarm);
        seen.push_back(seed);
      },
      {11, 12, 13});
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{11, 12, 13}));
}

/// The planted failure: the run "fails" if frames 17 and 42 are both lost.
struct planted {
  std::vector<fault_decision> decisions;
  bool failed = false;
};
planted lossy_run(std::uint64_t seed, const fault_schedule* replay) {
  network net(seed);
  link_config c;
  c.loss = 0.2;
  nic_config small;
  small.pool_size = 256;  // plenty for 500 frames 10 us apart; quicker to build than the default
  sim_nic& a = net.add_nic(net.add_host("a"), small);
  sim_nic& b = net.add_nic(net.add_host("b"), small);
  net.connect(a, b, c);
  net.replay(replay);
  blaster traffic(net, a, b);
  traffic.start(500, 10 * microsecond);
  net.run_for(100 * millisecond);
  const auto& got = traffic.received;
  const bool lost17 = std::find(got.begin(), got.end(), 17U) == got.end();
  const bool lost42 = std::find(got.begin(), got.end(), 42U) == got.end();
  return planted{net.decisions(), lost17 && lost42};
}

TEST(SimShrink, ReducesAPlantedFailureToExactlyItsTwoDrops) {
  std::uint64_t seed = 1;
  planted first = lossy_run(seed, nullptr);
  while (!first.failed) {
    first = lossy_run(++seed, nullptr);
  }
  ASSERT_GT(first.decisions.size(), 60U);  // ~100 random drops in the failing run
  const shrink_result r = shrink(fault_schedule(first.decisions), [seed](const fault_schedule& s) {
    return lossy_run(seed, &s).failed;
  });
  ASSERT_FALSE(r.exhausted);
  ASSERT_EQ(r.minimal.size(), 2U);
  EXPECT_EQ(r.minimal.decisions()[0], (fault_decision{0, 17, fault::loss}));
  EXPECT_EQ(r.minimal.decisions()[1], (fault_decision{0, 42, fault::loss}));
  // The printed form replays: parse it back and the failure reproduces with only those drops.
  network names(seed);
  names.connect(names.add_nic(names.add_host("a")), names.add_nic(names.add_host("b")));
  const std::string text = names.describe(r.minimal);
  EXPECT_EQ(text, "loss@a.eth0>b.eth0#17 loss@a.eth0>b.eth0#42");
  std::string error;
  const auto parsed = names.parse_schedule(text, error);
  ASSERT_TRUE(parsed) << error;
  const planted replayed = lossy_run(seed, &*parsed);
  EXPECT_TRUE(replayed.failed);
  EXPECT_EQ(replayed.decisions.size(), 2U);
  EXPECT_FALSE(names.parse_schedule("loss@nowhere#1", error));
  EXPECT_NE(error.find("unknown direction"), std::string::npos);
  EXPECT_FALSE(names.parse_schedule("explode@a.eth0>b.eth0#1", error));
  EXPECT_FALSE(names.parse_schedule("loss@a.eth0>b.eth0#x", error));
}

}  // namespace determinism_test
}  // namespace
}  // namespace dpdk_net::sim
