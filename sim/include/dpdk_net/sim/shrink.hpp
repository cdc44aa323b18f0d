// Shrinking: given the random faults of a failing run, find a minimal subset that still fails
// (delta debugging, Zeller & Hildebrandt's ddmin), in a form the next run can replay.
#pragma once

#include <cstddef>
#include <functional>

#include "dpdk_net/sim/link_model.hpp"

namespace dpdk_net::sim {

struct shrink_result {
  fault_schedule minimal;
  std::size_t runs = 0;    ///< scenario runs spent
  bool exhausted = false;  ///< ran out of budget before reaching a 1-minimal set
};

/// still_fails(schedule) re-runs the scenario replaying `schedule` and says whether the property
/// still fails. The result is 1-minimal: removing any single decision makes the failure go away
/// (unless the budget ran out first: at most max_runs runs, and none once out_of_budget() says
/// so, e.g. when the runs so far cost too many simulated events).
[[nodiscard]] shrink_result shrink(const fault_schedule& failing,
                                   const std::function<bool(const fault_schedule&)>& still_fails,
                                   std::size_t max_runs = 5000,
                                   const std::function<bool()>& out_of_budget = {});

}  // namespace dpdk_net::sim
