#include "dpdk_net/sim/shrink.hpp"

#include <algorithm>

namespace dpdk_net::sim {

shrink_result shrink(const fault_schedule& failing,
                     const std::function<bool(const fault_schedule&)>& still_fails,
                     std::size_t max_runs, const std::function<bool()>& out_of_budget) {
  shrink_result r;
  std::vector<fault_decision> current = failing.decisions();
  auto spent = [&] { return r.runs >= max_runs || (out_of_budget && out_of_budget()); };
  auto test = [&](const std::vector<fault_decision>& candidate) {
    if (spent()) {
      r.exhausted = true;
      return false;  // out of budget: treat as "does not fail", so nothing more is removed
    }
    ++r.runs;
    return still_fails(fault_schedule(candidate));
  };
  std::size_t n = 2;
  while (current.size() >= 2) {
    if (spent()) {
      r.exhausted = true;
      break;
    }
    const std::size_t chunk = (current.size() + n - 1) / n;
    bool reduced = false;
    // Try each chunk alone, then each complement (everything but one chunk).
    // With two chunks each complement is the other chunk: pass 1 would repeat pass 0.
    for (int pass = 0; pass < (n == 2 ? 1 : 2) && !reduced; ++pass) {
      for (std::size_t start = 0; start < current.size() && !reduced; start += chunk) {
        const std::size_t end = std::min(start + chunk, current.size());
        std::vector<fault_decision> candidate;
        if (pass == 0) {
          candidate.assign(current.begin() + static_cast<std::ptrdiff_t>(start),
                           current.begin() + static_cast<std::ptrdiff_t>(end));
        } else {
          candidate.assign(current.begin(), current.begin() + static_cast<std::ptrdiff_t>(start));
          candidate.insert(candidate.end(), current.begin() + static_cast<std::ptrdiff_t>(end),
                           current.end());
        }
        if (candidate.size() < current.size() && test(candidate)) {
          current = std::move(candidate);
          n = pass == 0 ? 2 : std::max<std::size_t>(n - 1, 2);
          reduced = true;
        }
      }
    }
    if (!reduced) {
      if (n >= current.size()) {
        break;  // every single-element removal was tried: 1-minimal
      }
      n = std::min(n * 2, current.size());
    }
  }
  // A single remaining decision may itself be unnecessary (the failure needs none).
  if (current.size() == 1 && !r.exhausted && test({})) {
    current.clear();
  }
  r.minimal = fault_schedule(std::move(current));
  return r;
}

}  // namespace dpdk_net::sim
