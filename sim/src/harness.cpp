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

/// `text` as one shell word: as is when it has nothing the shell would interpret, else in
/// single quotes.
std::string shell_word(std::string_view text) {
  bool plain = !text.empty();
  for (char c : text) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-' || c == '.' || c == '/' || c == ':' || c == ',' ||
                      c == '+' || c == '=' || c == '@' || c == '%';
    plain = plain && safe;
  }
  if (plain) {
    return std::string(text);
  }
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

thread_local case_run* active_run = nullptr;
}  // namespace

seed_plan seeds_from_environment(const std::vector<std::uint64_t>& defaults) {
  seed_plan plan;
  plan.seeds = defaults;
  const char* one = std::getenv("DPDK_NET_SIM_SEED");
  const char* many = std::getenv("DPDK_NET_SIM_SEEDS");
  const char* swarm = std::getenv("DPDK_NET_SIM_SWARM");
  std::uint64_t v = 0;
  if (swarm != nullptr && std::string_view(swarm) != "0" && std::string_view(swarm) != "1") {
    plan.error = std::string("DPDK_NET_SIM_SWARM must be 0 or 1, not '") + swarm + "'";
    return plan;
  }
  if (one != nullptr) {
    if (!parse_u64(one, v)) {
      plan.error = std::string("DPDK_NET_SIM_SEED must be a whole number, not '") + one + "'";
      return plan;
    }
    plan.seeds = {v};
    // One seed of a swarm: the rerun must draw the same fault rates as the swarm did.
    plan.swarm = swarm != nullptr && std::string_view(swarm) == "1";
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

std::string repro_command(std::uint64_t seed, const std::string& program, const std::string& test,
                          bool swarm, const std::optional<std::string>& replay) {
  std::string line = swarm ? "DPDK_NET_SIM_SWARM=1 " : "";
  line += "DPDK_NET_SIM_SEED=" + std::to_string(seed) + " ";
  if (replay) {
    line += "DPDK_NET_SIM_REPLAY=" + shell_word(*replay) + " ";
  }
  line += shell_word(program);
  if (!test.empty()) {
    line += " --gtest_filter=" + shell_word(test);
    // A disabled test (run by hand) only runs again with this flag.
    if (test.starts_with("DISABLED_") || test.find(".DISABLED_") != std::string::npos) {
      line += " --gtest_also_run_disabled_tests";
    }
  }
  return line;
}

std::string format_faults(const std::vector<named_fault>& faults) {
  std::string out;
  for (const named_fault& f : faults) {
    if (!out.empty()) {
      out += ' ';
    }
    out += to_string(f.kind);
    out += '@';
    out += f.direction;
    out += '#';
    out += std::to_string(f.ordinal);
  }
  return out;
}

std::optional<std::vector<named_fault>> parse_faults(std::string_view text, std::string& error) {
  std::vector<named_fault> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',' || text[i] == '\n')) {
      ++i;
    }
    if (i == text.size()) {
      break;
    }
    std::size_t end = text.find_first_of(" ,\n", i);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    const std::string_view token = text.substr(i, end - i);
    i = end;
    const std::size_t at = token.find('@');
    const std::size_t hash = token.rfind('#');
    if (at == std::string_view::npos || hash == std::string_view::npos || hash < at + 2) {
      error = "bad schedule entry '" + std::string(token) + "' (want kind@direction#ordinal)";
      return std::nullopt;
    }
    const std::string_view kind = token.substr(0, at);
    const std::string_view number = token.substr(hash + 1);
    std::optional<fault> f;
    for (fault k :
         {fault::loss, fault::burst_loss, fault::duplicate, fault::reorder, fault::corrupt}) {
      if (kind == to_string(k)) {
        f = k;
      }
    }
    std::uint64_t ordinal = 0;
    bool digits = !number.empty() && number.size() < 20;
    for (char c : number) {
      digits = digits && c >= '0' && c <= '9';
      ordinal = ordinal * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (!f || !digits) {
      error = "bad schedule entry '" + std::string(token) +
              "': " + (!f ? "unknown fault kind" : "bad ordinal");
      return std::nullopt;
    }
    out.push_back(named_fault{std::string(token.substr(at + 1, hash - at - 1)), ordinal, *f});
  }
  return out;
}

shrink_options shrink_options_from_environment() {
  shrink_options o;
  if (const char* on = std::getenv("DPDK_NET_SIM_SHRINK"); on != nullptr) {
    if (std::string_view(on) != "0" && std::string_view(on) != "1") {
      o.error = std::string("DPDK_NET_SIM_SHRINK must be 0 or 1, not '") + on + "'";
    }
    o.enabled = std::string_view(on) != "0";
  }
  std::uint64_t v = 0;
  if (const char* runs = std::getenv("DPDK_NET_SIM_SHRINK_RUNS"); runs != nullptr) {
    if (!parse_u64(runs, v) || v > 1'000'000) {
      o.error = "DPDK_NET_SIM_SHRINK_RUNS must be 0..1000000";
    } else {
      o.max_runs = static_cast<std::size_t>(v);
    }
  }
  if (const char* budget = std::getenv("DPDK_NET_SIM_SHRINK_BUDGET"); budget != nullptr) {
    if (!parse_u64(budget, v) || v == 0 || v > 1'000'000) {
      o.error = "DPDK_NET_SIM_SHRINK_BUDGET must be 1..1000000";
    } else {
      o.budget_factor = v;
    }
  }
  return o;
}

case_run::case_run(std::optional<std::vector<named_fault>> replay)
    : replay_(std::move(replay)), previous_(active_run) {
  if (replay_) {
    matched_.assign(replay_->size(), false);
  }
  active_run = this;
}

case_run::~case_run() {
  active_run = previous_;
}

case_run* case_run::active() noexcept {
  return active_run;
}

std::vector<named_fault> case_run::unmatched() const {
  std::vector<named_fault> out;
  for (std::size_t i = 0; i < matched_.size(); ++i) {
    if (!matched_[i]) {
      out.push_back((*replay_)[i]);
    }
  }
  return out;
}

void case_run::network_done(const std::vector<std::string>& direction_names,
                            const std::vector<fault_decision>& decisions, std::uint64_t events) {
  events_ += events;
  if (networks_++ != 0) {
    return;  // shrinking works on the first network's faults (the others replay the same)
  }
  faults_.reserve(decisions.size());
  for (const fault_decision& d : decisions) {
    faults_.push_back(
        named_fault{d.direction < direction_names.size() ? direction_names[d.direction] : "?",
                    d.ordinal, d.kind});
  }
}

std::string double_run(std::uint64_t seed,
                       const std::function<run_fingerprint(std::uint64_t)>& scenario) {
  const run_fingerprint one = scenario(seed);
  const run_fingerprint two = scenario(seed);
  if (one == two) {
    return {};
  }
  return "seed " + std::to_string(seed) + " diverged between two runs: trace hash " +
         std::to_string(one.trace_hash) + " vs " + std::to_string(two.trace_hash) +
         ", event log hash " + std::to_string(one.event_log_hash) + " vs " +
         std::to_string(two.event_log_hash);
}

}  // namespace dpdk_net::sim
