// Shared by the multi-worker stack tests (multi_stack_test.cpp, multi_mesh_test.cpp).
#pragma once

#include "dpdk_net/rss.hpp"
#include "dpdk_net/runtime/flow_steering.hpp"
#include "stack_fixture.hpp"

namespace dpdk_net::stack {

/// Steering for `workers` workers on our_ip: the default key, table i % workers.
inline steering_config steering(std::uint16_t workers, steering_mode mode, bool symmetric = false) {
  steering_config c;
  c.workers = workers;
  c.mode = mode;
  c.symmetric = symmetric;
  c.key.assign(default_rss_key.begin(), default_rss_key.end());
  c.reta.resize(128);
  for (std::size_t i = 0; i < c.reta.size(); ++i) {
    c.reta[i] = static_cast<std::uint16_t>(i % workers);
  }
  c.address = our_ip;
  return c;
}

}  // namespace dpdk_net::stack
