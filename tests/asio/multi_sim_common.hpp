// Shared by the simulator's multi-worker tests (multi_sim_test.cpp,
// multi_sim_ownership_test.cpp): two hosts, each a sim_multi_runtime, on one link, and an echo
// mesh (every worker listens and connects to the other host).
#pragma once

#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "dpdk_net/asio/multi_acceptor.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/asio/udp.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_multi_runtime.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "multi_common.hpp"

namespace dpdk_net::multi_testing {

struct node_options {
  std::uint16_t workers = 2;
  bool software = false;
  bool rss_off = false;  // the NIC cannot steer: everything lands on queue 0
};

/// Two hosts (client .1, server .2), each a sim_multi_runtime, on one link.
struct multi_pair {
  multi_pair(std::uint64_t s, node_options client_opts, node_options server_opts,
             std::optional<stack::stack_config> both = std::nullopt)
      : seed(s),
        netw(s),
        ch(netw.add_host("client")),
        sh(netw.add_host("server")),
        cn(netw.add_nic(ch, nic(client_opts))),
        sn(netw.add_nic(sh, nic(server_opts))),
        link(netw.connect(cn, sn)) {
    off(cn, client_opts);
    off(sn, server_opts);
    stack::stack_config cc = both ? *both : node_config(1);
    stack::stack_config sc = cc;
    cc.address = wire::ipv4_address{node_ip(1).to_uint()};
    sc.address = wire::ipv4_address{node_ip(2).to_uint()};
    client.emplace(ch, cn, cc, multi(client_opts));
    server.emplace(sh, sn, sc, multi(server_opts));
  }
  ~multi_pair() {
    client.reset();
    server.reset();
  }
  static sim::nic_config nic(const node_options& o) {
    sim::nic_config c;
    c.queues = o.workers;
    return c;
  }
  static sim::sim_multi_options multi(const node_options& o) {
    sim::sim_multi_options m;
    m.workers = o.workers;
    m.force_software_rss = o.software || o.rss_off;
    return m;
  }
  static void off(sim::sim_nic& n, const node_options& o) {
    if (o.rss_off) {
      rss_config none = n.rss();
      none.hash_types = 0;
      ASSERT_FALSE(n.configure_rss(none));
    }
  }
  bool run(const std::function<bool()>& pred, time_ns limit = 5 * second) {
    return netw.run_until(pred, netw.now() + limit);
  }
  std::string trace() const { return "seed " + std::to_string(seed); }

  std::uint64_t seed;
  sim::network netw;
  sim::host& ch;
  sim::host& sh;
  sim::sim_nic& cn;
  sim::sim_nic& sn;
  sim::sim_link& link;
  std::optional<sim::sim_multi_runtime> client;
  std::optional<sim::sim_multi_runtime> server;
};

inline mesh_counters sum(const sim::sim_multi_runtime& rt) {
  mesh_counters s;
  for (std::size_t i = 0; i < rt.size(); ++i) {
    s += rt.counters(i);
  }
  return s;
}

/// Both hosts listen on every worker (port 7) and connect from every worker to the other.
struct echo_mesh {
  echo_mesh(multi_pair& p, std::size_t per_worker, std::size_t bytes) {
    for (sim::sim_multi_runtime* rt : {&*p.client, &*p.server}) {
      const bool is_server = rt == &*p.server;
      tally& t = is_server ? server_tally : client_tally;
      for (std::size_t k = 0; k < rt->size(); ++k) {
        acceptors.push_back(std::make_unique<tcp::acceptor>(
            rt->get_executor(k), tcp::endpoint(net::ip::address_v4::any(), 7)));
        net::co_spawn(rt->get_executor(k), accept_loop(acceptors.back().get(), k, &t),
                      net::detached);
      }
      const tcp::endpoint peer(node_ip(is_server ? 1 : 2), 7);
      for (std::size_t k = 0; k < rt->size(); ++k) {
        for (std::size_t i = 0; i < per_worker; ++i) {
          const auto id = static_cast<std::uint32_t>((is_server ? 1000 : 0) + k * 100 + i);
          net::co_spawn(rt->get_executor(k),
                        echo_client(rt->get_executor(k), k, peer, id, bytes, &t), net::detached);
          ++expected;
        }
      }
    }
  }
  [[nodiscard]] bool done() const {
    return client_tally.clients_done + server_tally.clients_done == expected;
  }
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  tally client_tally;
  tally server_tally;
  std::size_t expected = 0;
};

}  // namespace dpdk_net::multi_testing
