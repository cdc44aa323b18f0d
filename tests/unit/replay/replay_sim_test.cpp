// Record and replay in the simulator: a client of our stack talks to an echo server (both
// tcp_app, tests/unit/stack/tcp_sim_app.hpp); the client's NIC is captured; the capture's client
// side is then replayed by sim::replay_host against a fresh echo server. The conversation must
// replay with no divergence, and the same capture and seed must give the same traffic.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "../stack/tcp_sim_app.hpp"
#include "dpdk_net/replay/replay.hpp"
#include "dpdk_net/sim/replay_host.hpp"

namespace {
namespace replay_sim_test {

using namespace dpdk_net;
using namespace dpdk_net::stack::test;

constexpr std::uint16_t echo_port = 7000;
constexpr std::uint64_t stream_bytes = 40000;
const auto client_ip = wire::ipv4_address::from_octets(198, 18, 0, 1);
const auto server_ip = wire::ipv4_address::from_octets(198, 18, 0, 2);

stack::stack_config config_at(wire::ipv4_address a) {
  stack::stack_config c;
  c.address = a;
  return c;
}

stream_role echo_client_role(std::uint64_t seed) {
  stream_role r;
  r.send_bytes = stream_bytes;
  r.send_seed = seed;
  r.expect_seed = seed;
  r.expect_bytes = stream_bytes;
  return r;
}

stream_role echo_server_role() {
  stream_role r;
  r.echo = true;
  return r;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("dpdk_net_replay_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

/// Two simulated hosts on one clean link.
struct two_hosts {
  sim::network net;
  sim::host& a;
  sim::host& b;
  sim::sim_nic& an;
  sim::sim_nic& bn;
  two_hosts(std::uint64_t seed, const char* a_name, const char* b_name)
      : net(seed),
        a(net.add_host(a_name)),
        b(net.add_host(b_name)),
        an(net.add_nic(a)),
        bn(net.add_nic(b)) {
    net.connect(an, bn);
  }
};

/// The replayer at 198.18.0.10 on `nic`, against the live stack at `live`.
replay::replay_config replayer_config(const sim::sim_nic& nic, wire::ipv4_address live,
                                      std::uint64_t seed, bool fast) {
  replay::replay_config c;
  c.mac = nic.info().mac;
  c.address = wire::ipv4_address::from_octets(198, 18, 0, 10);
  c.live_address = live;
  c.seed = seed;
  c.fast = fast;
  return c;
}

/// Two echo connections recorded at the client's NIC (a clean link).
void record(std::uint64_t seed, const std::string& path) {
  two_hosts h(seed, "client", "server");
  sim::network& net = h.net;
  std::string error;
  ASSERT_TRUE(net.capture(h.an, path, error)) << error;
  tcp_app server(h.b, h.bn, config_at(server_ip));
  tcp_app client(h.a, h.an, config_at(client_ip));
  server.listen(echo_port, echo_server_role());
  client.connect({server_ip, echo_port}, echo_client_role(11));
  client.connect({server_ip, echo_port}, echo_client_role(12));
  ASSERT_TRUE(net.run_until(
      [&] {
        return client.records().size() == 2 && client.records()[0].complete() &&
               client.records()[1].complete();
      },
      10 * second))
      << "seed " << seed;
  net.run_for(1 * second);  // the last ACKs
}

struct loaded {
  std::vector<std::byte> storage;
  std::vector<capture_record> records;
};

loaded load(const std::string& path) {
  loaded l;
  std::string error;
  EXPECT_TRUE(read_capture(path, l.storage, l.records, error)) << error;
  return l;
}

struct replay_outcome {
  replay::replay_report report;
  bool done = false;
  std::uint64_t trace = 0;
  time_ns sim_time = 0;
  std::vector<stream_record> server;
};

replay_outcome replay_against_echo(const loaded& capture, std::uint64_t seed, bool fast) {
  replay_outcome out;
  two_hosts h(seed, "replayer", "server");
  sim::network& net = h.net;
  tcp_app server(h.b, h.bn, config_at(server_ip));
  server.listen(echo_port, echo_server_role());
  replay::engine e(replayer_config(h.an, server_ip, seed, fast));
  std::string error;
  EXPECT_TRUE(e.load(capture.records, error)) << error;
  sim::replay_host driver(h.a, h.an, e);
  driver.start();
  out.done = net.run_until([&] { return driver.done(); }, 30 * second);
  out.report = e.report();
  out.trace = net.trace_hash();
  out.sim_time = net.now();
  out.server = server.records();
  return out;
}

TEST(ReplaySim, RecordedEchoSessionReplaysWithoutDivergence) {
  const std::string path = temp_path("echo.pcap");
  record(5, path);
  const loaded capture = load(path);
  ASSERT_GT(capture.records.size(), 20U);
  for (const bool fast : {false, true}) {
    const replay_outcome r = replay_against_echo(capture, 9, fast);
    ASSERT_TRUE(r.done) << "seed 9 fast " << fast << ": " << r.report.json();
    EXPECT_FALSE(r.report.diverged()) << "seed 9 fast " << fast << ": " << r.report.json();
    ASSERT_EQ(r.report.flows.size(), 2U);
    for (const replay::flow_report& f : r.report.flows) {
      EXPECT_EQ(f.recorded_bytes, stream_bytes);
      EXPECT_EQ(f.live_bytes, stream_bytes);
      EXPECT_TRUE(f.live_fin);
      EXPECT_FALSE(f.first_difference.has_value());
    }
    // The live server received both streams intact (it checks every byte it echoes).
    ASSERT_EQ(r.server.size(), 2U);
    for (const stream_record& s : r.server) {
      EXPECT_EQ(s.received, stream_bytes) << s.describe();
      EXPECT_FALSE(s.error) << s.describe();
    }
    std::printf("replay (fast %d): %llu frames sent, %llu received, %.1f simulated ms\n",
                static_cast<int>(fast), static_cast<unsigned long long>(r.report.frames_sent),
                static_cast<unsigned long long>(r.report.frames_received),
                static_cast<double>(r.sim_time) / 1e6);
  }
  // The same capture and seed: the same traffic.
  EXPECT_EQ(replay_against_echo(capture, 9, true).trace,
            replay_against_echo(capture, 9, true).trace);
  std::filesystem::remove(path);
}

TEST(ReplaySim, TheRecordedServerSideReplaysAgainstALiveClient) {
  // play_role::server: the replayer is the recorded echo server; a live client of our stack
  // connects to it twice and checks every byte that comes back.
  const std::string path = temp_path("server_side.pcap");
  record(7, path);
  const loaded capture = load(path);
  two_hosts h(4, "replayer", "client");
  replay::replay_config cfg = replayer_config(h.an, client_ip, 4, true);
  cfg.play = replay::play_role::server;
  replay::engine e(cfg);
  std::string error;
  ASSERT_TRUE(e.load(capture.records, error)) << error;
  EXPECT_EQ(e.report().target, client_ip);
  sim::replay_host driver(h.a, h.an, e);
  driver.start();
  tcp_app client(h.b, h.bn, config_at(client_ip));
  client.connect({cfg.address, echo_port}, echo_client_role(11));
  client.connect({cfg.address, echo_port}, echo_client_role(12));
  ASSERT_TRUE(h.net.run_until([&] { return driver.done(); }, 30 * second)) << "seed 4";
  const replay::replay_report& rep = e.report();
  EXPECT_FALSE(rep.diverged()) << "seed 4: " << rep.json();
  ASSERT_EQ(rep.flows.size(), 2U);
  for (const replay::flow_report& f : rep.flows) {
    EXPECT_EQ(f.recorded_bytes, stream_bytes) << f.name;  // the client's stream, both times
    EXPECT_EQ(f.live_bytes, stream_bytes) << f.name;
  }
  ASSERT_EQ(client.records().size(), 2U);
  for (const stream_record& s : client.records()) {
    EXPECT_EQ(s.received, stream_bytes) << s.describe();
    EXPECT_FALSE(s.first_mismatch.has_value()) << s.describe();
    EXPECT_TRUE(s.end_of_stream) << s.describe();
  }
  std::filesystem::remove(path);
}

TEST(ReplaySim, AShorterLiveResponseIsReportedAsMissing) {
  const std::string path = temp_path("short.pcap");
  record(6, path);
  loaded capture = load(path);
  // Replay against a server that sinks instead of echoing: every response is missing.
  two_hosts h(3, "replayer", "server");
  tcp_app server(h.b, h.bn, config_at(server_ip));
  server.listen(echo_port, stream_role{});
  replay::replay_config cfg = replayer_config(h.an, server_ip, 1, true);
  cfg.response_timeout = 500 * millisecond;
  replay::engine e(cfg);
  std::string error;
  ASSERT_TRUE(e.load(capture.records, error)) << error;
  sim::replay_host driver(h.a, h.an, e);
  driver.start();
  ASSERT_TRUE(h.net.run_until([&] { return driver.done(); }, 30 * second)) << "seed 3";
  const replay::replay_report& rep = e.report();
  ASSERT_TRUE(rep.diverged());
  EXPECT_NE(rep.divergences[0].find("missing response"), std::string::npos) << rep.json();
  for (const replay::flow_report& f : rep.flows) {
    EXPECT_TRUE(f.aborted) << f.name;
    EXPECT_EQ(f.live_bytes, 0U);
  }
  std::filesystem::remove(path);
}

}  // namespace replay_sim_test
}  // namespace
