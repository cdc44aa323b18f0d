#include "dpdk_net/sim/harness.hpp"

#include <cstdlib>

#include "dpdk_net/sim/random.hpp"

namespace dpdk_net::sim {

namespace {
bool parse_u64(const char* text, std::uint64_t& out) {
  if (text == nullptr || *text == '\0') {
    return false;
  }
  std::uint64_t v = 0;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - static_cast<std::uint64_t>(*p - '0')) / 10) {
      return false;
    }
    v = v * 10 + static_cast<std::uint64_t>(*p - '0');
  }
  out = v;
  return true;
}
}  // namespace

seed_plan seeds_from_environment(const std::vector<std::uint64_t>& defaults) {
  seed_plan plan;
  plan.seeds = defaults;
  const char* one = std::getenv("DPDK_NET_SIM_SEED");
  const char* many = std::getenv("DPDK_NET_SIM_SEEDS");
  std::uint64_t v = 0;
  if (one != nullptr) {
    if (!parse_u64(one, v)) {
      plan.error = std::string("DPDK_NET_SIM_SEED must be a whole number, not '") + one + "'";
      return plan;
    }
    plan.seeds = {v};
    return plan;
  }
  if (many != nullptr) {
    std::uint64_t base = 1;
    const char* base_text = std::getenv("DPDK_NET_SIM_SEED_BASE");
    if (!parse_u64(many, v) || v == 0 || v > 1'000'000 ||
        (base_text != nullptr && !parse_u64(base_text, base))) {
      plan.error = "DPDK_NET_SIM_SEEDS must be 1..1000000 (and DPDK_NET_SIM_SEED_BASE a number)";
      return plan;
    }
    plan.seeds.clear();
    for (std::uint64_t i = 0; i < v; ++i) {
      plan.seeds.push_back(derive_seed(base, "swarm:" + std::to_string(i)) % 1'000'000'000'000ULL);
    }
    plan.swarm = true;
  }
  return plan;
}

std::optional<std::string> replay_from_environment() {
  const char* text = std::getenv("DPDK_NET_SIM_REPLAY");
  if (text == nullptr) {
    return std::nullopt;
  }
  return std::string(text);
}

std::string repro_command(std::uint64_t seed, const std::string& program, const std::string& test) {
  std::string line = "DPDK_NET_SIM_SEED=" + std::to_string(seed) + " " + program;
  if (!test.empty()) {
    line += " --gtest_filter=" + test;
  }
  return line;
}

std::string double_run(std::uint64_t seed,
                       const std::function<run_fingerprint(std::uint64_t)>& scenario) {
  const run_fingerprint first = scenario(seed);
  const run_fingerprint second = scenario(seed);
  if (first == second) {
    return {};
  }
  return "seed " + std::to_string(seed) + " diverged between two runs: trace hash " +
         std::to_string(first.trace_hash) + " vs " + std::to_string(second.trace_hash) +
         ", event log hash " + std::to_string(first.event_log_hash) + " vs " +
         std::to_string(second.event_log_hash);
}

}  // namespace dpdk_net::sim
