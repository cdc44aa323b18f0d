// The multi-worker runtime in the simulator: 2-4 workers per host on a multi-queue NIC with
// Toeplitz RSS (hardware steering), with our hashing (software steering) or with RSS off:
// connections both ways, every byte, each flow on its owner; determinism; configuration.
// multi_sim_ownership_test.cpp has the other kinds of frame and the accept models.
#include "multi_sim_common.hpp"

namespace dpdk_net {
namespace {
namespace multi_sim_test {

using namespace multi_testing;

struct mode_case {
  std::uint16_t workers;
  bool software;
  bool rss_off;
  const char* name;
};

class MultiSim : public ::testing::TestWithParam<mode_case> {};

TEST_P(MultiSim, ConnectionsBothWaysEveryByteEachFlowOnItsOwner) {
  const mode_case m = GetParam();
  const node_options o{m.workers, m.software, m.rss_off};
  multi_pair p(7101 + m.workers, o, o);
  const steering_mode want =
      m.software || m.rss_off ? steering_mode::software : steering_mode::hardware;
  ASSERT_EQ(p.server->steering(), want);
  auto mesh = std::make_unique<echo_mesh>(p, 4, 24 * 1024);
  ASSERT_TRUE(p.run([&] { return mesh->done(); }, 20 * second)) << p.trace();
  for (tally* t : {&mesh->client_tally, &mesh->server_tally}) {
    EXPECT_TRUE(t->errors.empty()) << p.trace() << ": " << (t->errors.empty() ? "" : t->errors[0]);
  }
  EXPECT_EQ(mesh->client_tally.clients_ok + mesh->server_tally.clients_ok, mesh->expected)
      << p.trace();
  // 2 nodes x workers x 4 connections, each echoed whole: every byte delivered both ways.
  EXPECT_EQ(mesh->client_tally.bytes_echoed + mesh->server_tally.bytes_echoed,
            mesh->expected * 24 * 1024)
      << p.trace();
  expect_owned(p.client->flows(), mesh->client_tally, "client " + p.trace());
  expect_owned(p.server->flows(), mesh->server_tally, "server " + p.trace());
  // Every worker served and opened connections.
  for (tally* t : {&mesh->client_tally, &mesh->server_tally}) {
    std::vector<int> served(m.workers, 0);
    for (const auto& f : t->flows) {
      served[f.worker] += f.accepted ? 1 : 0;
    }
    for (std::uint16_t k = 0; k < m.workers; ++k) {
      EXPECT_GT(served[k], 0) << "worker " << k << " accepted nothing, " << p.trace();
    }
  }
  std::uint64_t handed = 0;
  for (const sim::sim_multi_runtime* rt : {&*p.client, &*p.server}) {
    const mesh_counters c = sum(*rt);
    EXPECT_EQ(c.ring_full, 0U);
    EXPECT_EQ(c.no_buffer, 0U);
    EXPECT_GT(c.arp_copies, 0U);  // ARP reached every worker
    // Everything handed out was handed in (ARP copies are handed too).
    EXPECT_EQ(c.handed_out + c.arp_copies + c.datagrams_out, c.handed_in) << p.trace();
    handed += c.handed_out;
    if (want == steering_mode::hardware) {
      // The NIC put every TCP frame on its owner's queue: nothing was handed over.
      EXPECT_EQ(c.handed_out, 0U) << p.trace();
      EXPECT_EQ(c.software_hashes, 0U);
    } else {
      EXPECT_GT(c.software_hashes, 0U) << p.trace();
    }
  }
  if (want == steering_mode::software) {
    // Our hash is not the NIC's (or the NIC does not hash): frames were handed to their owners.
    // (Where the NIC's hash happens to agree -- source-first order equals our canonical order
    // for frames from the lower address -- a node may hand nothing over.)
    EXPECT_GT(handed, 0U) << p.trace();
  }
  mesh.reset();
  p.run([] { return false; }, 100 * millisecond);
  for (sim::sim_nic* n : {&p.cn, &p.sn}) {
    for (std::uint16_t q = 0; q < m.workers; ++q) {
      expect_clean_pool(n->tx_pool(q), p.trace());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Modes, MultiSim,
    ::testing::Values(mode_case{2, false, false, "hw2"}, mode_case{2, true, false, "sw2"},
                      mode_case{4, false, false, "hw4"}, mode_case{3, false, true, "rssoff3"}),
    [](const ::testing::TestParamInfo<mode_case>& i) { return std::string(i.param.name); });

std::uint64_t run_for_hash(std::uint64_t seed, bool software) {
  multi_pair p(seed, node_options{2, software, false}, node_options{3, software, false});
  auto mesh = std::make_unique<echo_mesh>(p, 2, 8000);
  EXPECT_TRUE(p.run([&] { return mesh->done(); }, 10 * second));
  return p.netw.trace_hash();
}

TEST(MultiSimDeterminism, SameSeedSameTrace) {
  for (const bool software : {false, true}) {
    const std::uint64_t a = run_for_hash(7801, software);
    const std::uint64_t b = run_for_hash(7801, software);
    EXPECT_EQ(a, b) << "seed 7801, software " << software;
    EXPECT_NE(a, run_for_hash(7802, software));
  }
}

TEST(MultiSimConfig, MoreWorkersThanQueuesIsRefusedNamingTheFix) {
  sim::network netw(1);
  sim::host& h = netw.add_host("h");
  sim::sim_nic& n = netw.add_nic(h, sim::nic_config{});
  sim::sim_multi_options o;
  o.workers = 2;
  try {
    sim::sim_multi_runtime rt(h, n, node_config(2), o);
    FAIL() << "2 workers on a 1-queue NIC accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("nic_config.queues"), std::string::npos) << e.what();
  }
}

}  // namespace multi_sim_test
}  // namespace
}  // namespace dpdk_net
