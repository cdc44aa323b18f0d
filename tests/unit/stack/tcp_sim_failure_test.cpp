// TCP between two of our stacks in the simulator, part two: disruptions that must end a
// connection with a defined error within its user timeout (a one-way ACK blackhole, a peer that
// crashes, with and without a restart) and never hang; a seeded random sample of everything at
// once (a swarm with DPDK_NET_SIM_SEEDS=N); a TCP run's pcaps byte-identical for a seed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dpdk_net/sim/gtest.hpp"
#include "dpdk_net/sim/random.hpp"
#include "dpdk_net/wire/tcp.hpp"
#include "tcp_sim_app.hpp"
#include "tcp_sim_checks.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_sim_failure_test {

using namespace test;

/// The timer wheel's tick: a deadline is met when it passes no later than this.
constexpr time_ns tick = millisecond;

sim::link_config base_link(std::uint64_t seed, bool swarm) {
  return swarm ? sim::link_config::swarm(seed) : sim::link_config{};
}

bool is(const std::error_code& e, std::errc v) {
  return e == std::make_error_code(v);
}

/// The stacks time a user timeout on their host's clock; in swarm mode hosts' clocks drift
/// against the network's, so a bound measured on the network's clock gets that much slack.
time_ns drift_slack(time_ns span, bool swarm) {
  return swarm ? span / 500 : 0;
}

/// Swarm mode can make a link so bad that the connection fails before the midway event: then
/// all that is promised is a defined error on both ends (no hang, no corruption), which
/// expect_sound() has checked.
bool failed_before_midway(const transfer_outcome& o, bool swarm) {
  return swarm && o.midway_at == 0;
}

TEST(TcpSim, AOneWayAckBlackholeFailsTheSenderWithinItsUserTimeout) {
  // From midway on, nothing the server sends reaches the client: the client's data is never
  // acknowledged again. Its user timeout (RFC 5482; RFC 9293 3.8.3's USER TIMEOUT) must fail
  // the connection with timed_out within 5 s, not let it retransmit for minutes. The server,
  // which only receives, learns of it from its keepalive (RFC 1122 4.2.3.6) once the client
  // goes quiet.
  sim::for_each_seed(
      [](std::uint64_t seed, bool swarm) {
        constexpr time_ns user_timeout = 5 * second;
        constexpr time_ns idle = 2 * second;
        constexpr time_ns interval = second;
        constexpr unsigned probes = 3;
        transfer_spec spec;
        spec.what = transfer_spec::pattern::upload;
        spec.to_server = spec.to_client = base_link(seed, swarm);
        spec.client.socket.user_timeout = user_timeout;
        spec.server.socket.keepalive_idle = idle;
        spec.server.socket.keepalive_interval = interval;
        spec.server.socket.keepalive_probes = probes;
        spec.midway = [](sim::network& net, tcp_app&, tcp_app&) {
          sim::link_rule blackhole;
          blackhole.description = "every TCP segment server -> client";
          blackhole.match = sim::match::tcp(wire::tcp_flag::ack);
          blackhole.from = net.now();
          net.direction("server.eth0>client.eth0")->add_rule(blackhole);
        };
        const transfer_outcome o = run_transfer(seed, spec);
        expect_sound(o);
        ASSERT_EQ(o.client.size(), 1U) << o.describe();
        ASSERT_EQ(o.server.size(), 1U) << o.describe();
        if (failed_before_midway(o, swarm)) {
          return;
        }
        ASSERT_GT(o.midway_at, 0U) << o.describe();
        const stream_record& c = o.client.front();
        const stream_record& s = o.server.front();
        EXPECT_TRUE(is(c.error, std::errc::timed_out)) << o.describe();
        // The oldest unacknowledged byte was sent just before the blackhole began (a bulk
        // sender always has data in flight): it fails 5 s after that, to the tick.
        EXPECT_LE(c.failed_at, o.midway_at + user_timeout + tick + drift_slack(user_timeout, swarm))
            << o.describe();
        EXPECT_GE(c.failed_at + 250 * millisecond, o.midway_at + user_timeout) << o.describe();
        // The server: reset (if the client says so) or timed out by its keepalive.
        EXPECT_TRUE(is(s.error, std::errc::timed_out) || is(s.error, std::errc::connection_reset))
            << o.describe();
        EXPECT_LE(s.failed_at, c.failed_at + idle + probes * interval + second) << o.describe();
        EXPECT_LT(s.received, spec.bytes);
        EXPECT_TRUE(o.settled) << o.describe();
      },
      {1});
}

TEST(TcpSim, AServerThatCrashesAndRestartsResetsTheClient) {
  // The server crashes midway and comes back 2 s later with a fresh stack. The client's next
  // retransmission finds no connection there: the reset (RFC 9293 3.10.7.1, checked and
  // accepted in ESTABLISHED per 3.10.7.4) fails the client with connection_reset.
  sim::for_each_seed(
      [](std::uint64_t seed, bool swarm) {
        constexpr time_ns user_timeout = 30 * second;
        transfer_spec spec;
        spec.what = transfer_spec::pattern::upload;
        spec.to_server = spec.to_client = base_link(seed, swarm);
        spec.client.socket.user_timeout = user_timeout;
        // If the client gives up first (a swarm link), the receiving server learns it this way.
        spec.server.socket.keepalive_idle = 10 * second;
        spec.server.socket.keepalive_interval = second;
        spec.server.socket.keepalive_probes = 3;
        spec.midway = [](sim::network& net, tcp_app&, tcp_app& server) {
          server.sim_host().crash();
          net.events().after(2 * second, [&server] { server.sim_host().restart(); });
        };
        const transfer_outcome o = run_transfer(seed, spec);
        expect_sound(o);
        ASSERT_EQ(o.client.size(), 1U) << o.describe();
        if (failed_before_midway(o, swarm)) {
          return;
        }
        ASSERT_GT(o.midway_at, 0U) << o.describe();
        EXPECT_EQ(o.server_lost_in_crash, 1U);
        EXPECT_EQ(o.server.size(), 1U) << "the restarted server accepted nothing new";
        const stream_record& c = o.client.front();
        EXPECT_TRUE(is(c.error, std::errc::connection_reset)) << o.describe();
        EXPECT_GT(c.failed_at, o.midway_at + 2 * second) << o.describe();
        EXPECT_LE(c.failed_at, o.midway_at + user_timeout) << o.describe();
        EXPECT_GE(o.server_tcp.resets_sent, 1U) << "the fresh stack answered with RST";
        EXPECT_TRUE(o.settled) << o.describe();
      },
      {1});
}

TEST(TcpSim, AClientThatCrashesAndRestartsIsFoundByTheServersKeepalive) {
  // The client crashes midway and restarts 500 ms later, knowing nothing of the connection. The
  // server only receives, so nothing would ever tell it, but its keepalive probe (after 1 s
  // idle) draws a reset from the restarted client: connection_reset, within the keepalive's
  // time.
  sim::for_each_seed(
      [](std::uint64_t seed, bool swarm) {
        constexpr time_ns idle = second;
        constexpr time_ns interval = second;
        constexpr unsigned probes = 3;
        transfer_spec spec;
        spec.what = transfer_spec::pattern::upload;
        spec.to_server = spec.to_client = base_link(seed, swarm);
        spec.server.socket.keepalive_idle = idle;
        spec.server.socket.keepalive_interval = interval;
        spec.server.socket.keepalive_probes = probes;
        spec.midway = [](sim::network& net, tcp_app& client, tcp_app&) {
          client.sim_host().crash();
          net.events().after(500 * millisecond, [&client] { client.sim_host().restart(); });
        };
        const transfer_outcome o = run_transfer(seed, spec);
        expect_sound(o);
        ASSERT_EQ(o.server.size(), 1U) << o.describe();
        if (failed_before_midway(o, swarm)) {
          return;
        }
        ASSERT_GT(o.midway_at, 0U) << o.describe();
        EXPECT_EQ(o.client_lost_in_crash, 1U);
        const stream_record& s = o.server.front();
        EXPECT_TRUE(is(s.error, std::errc::connection_reset)) << o.describe();
        EXPECT_LE(s.failed_at, o.midway_at + idle + probes * interval + second) << o.describe();
        EXPECT_GE(o.server_tcp.keepalives_sent, 1U) << o.describe();
        EXPECT_TRUE(o.settled) << o.describe();
      },
      {1});
}

TEST(TcpSim, APeerThatCrashesForGoodTimesTheSenderOutWithinItsUserTimeout) {
  sim::for_each_seed(
      [](std::uint64_t seed, bool swarm) {
        constexpr time_ns user_timeout = 4 * second;
        transfer_spec spec;
        spec.what = transfer_spec::pattern::upload;
        spec.to_server = spec.to_client = base_link(seed, swarm);
        spec.client.socket.user_timeout = user_timeout;
        spec.server.socket.keepalive_idle = 10 * second;  // see above: a swarm link may fail first
        spec.server.socket.keepalive_interval = second;
        spec.server.socket.keepalive_probes = 3;
        spec.midway = [](sim::network&, tcp_app&, tcp_app& server) { server.sim_host().crash(); };
        const transfer_outcome o = run_transfer(seed, spec);
        expect_sound(o);
        ASSERT_EQ(o.client.size(), 1U) << o.describe();
        if (failed_before_midway(o, swarm)) {
          return;
        }
        ASSERT_GT(o.midway_at, 0U) << o.describe();
        const stream_record& c = o.client.front();
        EXPECT_TRUE(is(c.error, std::errc::timed_out)) << o.describe();
        EXPECT_LE(c.failed_at, o.midway_at + user_timeout + tick + drift_slack(user_timeout, swarm))
            << o.describe();
        EXPECT_EQ(o.client_tcp.timeouts, 1U);
        EXPECT_TRUE(o.settled) << o.describe();
      },
      {1});
}

// --- a seeded random sample ------------------------------------------------------------------

/// log-uniform in [lo, hi]
std::uint64_t log_uniform(sim::rng& r, double lo, double hi) {
  return static_cast<std::uint64_t>(std::exp(std::log(lo) + r.uniform() * (std::log(hi / lo))));
}

sim::link_config draw_link(sim::rng& r) {
  sim::link_config c;
  c.delay = log_uniform(r, 10e3, 200e6);  // 10 us .. 200 ms
  c.jitter = r.chance(0.3) ? r.below(c.delay / 4 + 1) : 0;
  c.bandwidth_bps = r.chance(0.7) ? log_uniform(r, 10e6, 10e9) : 0;
  c.loss = r.chance(0.5) ? r.uniform() * 0.2 : 0;
  if (r.chance(0.25)) {
    c.burst_loss.p_bad_to_good = 0.2 + r.uniform() * 0.6;
    c.burst_loss.p_good_to_bad = r.uniform() * 0.03;
  }
  c.duplicate = r.chance(0.3) ? r.uniform() * 0.1 : 0;
  c.reorder = r.chance(0.3) ? r.uniform() * 0.1 : 0;
  c.reorder_delay = log_uniform(r, 10e3, 2e6);
  c.corrupt = r.chance(0.3) ? r.uniform() * 0.01 : 0;
  return c;
}

/// Everything at once, drawn from the seed: both directions' faults, the pattern, the size and
/// perhaps a partition (shorter than what would time the connection out).
transfer_spec draw_spec(std::uint64_t seed, time_ns* partition) {
  sim::rng r(sim::derive_seed(seed, "tcp-sample"));
  transfer_spec spec;
  spec.what = static_cast<transfer_spec::pattern>(r.below(3));
  spec.bytes = log_uniform(r, 64e3, 2e6);
  spec.to_server = draw_link(r);
  spec.to_client = r.chance(0.5) ? spec.to_server : draw_link(r);
  spec.give_up = 3600 * second;
  *partition = r.chance(0.2) ? log_uniform(r, 100e6, 5e9) : 0;
  return spec;
}

std::string describe_links(const transfer_spec& s) {
  auto one = [](const sim::link_config& c) {
    return "delay " + std::to_string(c.delay) + " jitter " + std::to_string(c.jitter) + " bw " +
           std::to_string(c.bandwidth_bps) + " loss " + std::to_string(c.loss) + " burst " +
           std::to_string(c.burst_loss.p_good_to_bad) + "/" +
           std::to_string(c.burst_loss.p_bad_to_good) + " dup " + std::to_string(c.duplicate) +
           " reorder " + std::to_string(c.reorder) + "@" + std::to_string(c.reorder_delay) +
           " corrupt " + std::to_string(c.corrupt);
  };
  return "pattern " + std::to_string(static_cast<int>(s.what)) + " bytes " +
         std::to_string(s.bytes) + "; to server: " + one(s.to_server) +
         "; to client: " + one(s.to_client);
}

TEST(TcpSimSample, SeededRandomTransfersArriveIntact) {
  // By default: seeds 1, 2, ... until a box of simulated events is spent (events, not wall
  // time: the same seeds run on every machine). With DPDK_NET_SIM_SEED(S) set: those seeds
  // (DPDK_NET_SIM_SEEDS=500 is the long swarm).
  std::uint64_t last_events = 0;
  auto body = [&last_events](std::uint64_t seed, bool) {
    time_ns partition = 0;
    transfer_spec spec = draw_spec(seed, &partition);
    if (partition != 0) {
      spec.midway = [partition](sim::network& net, tcp_app& client, tcp_app& server) {
        const std::size_t id = net.partition({&client.sim_host()}, {&server.sim_host()});
        net.events().after(partition, [&net, id] { net.heal(id); });
      };
    }
    SCOPED_TRACE(describe_links(spec) + " partition " + std::to_string(partition));
    const transfer_outcome o = run_transfer(seed, spec);
    last_events = o.events;
    expect_intact(spec, o);
  };
  if (std::getenv("DPDK_NET_SIM_SEED") != nullptr || std::getenv("DPDK_NET_SIM_SEEDS") != nullptr) {
    sim::for_each_seed(body);
    return;
  }
  constexpr std::uint64_t box = 160'000;  // simulated events, all seeds together
  std::uint64_t spent = 0;
  std::uint64_t seeds = 0;
  for (std::uint64_t seed = 1; seed <= 200 && spent < box && !HasFailure(); ++seed) {
    sim::for_each_seed(body, {seed});
    spent += last_events;
    ++seeds;
  }
  EXPECT_GE(seeds, 5U) << "the box holds too few runs to be a sample";
  std::fprintf(stderr, "[  SIM     ] %llu random TCP transfers, %llu simulated events\n",
               static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(spent));
}

// --- determinism ---------------------------------------------------------------------------

transfer_spec faulty_spec() {
  transfer_spec spec;
  spec.what = transfer_spec::pattern::both;
  spec.bytes = 1 << 20;
  sim::link_config c;
  c.delay = 100 * microsecond;
  c.jitter = 20 * microsecond;
  c.bandwidth_bps = 100'000'000;
  c.loss = 0.02;
  c.duplicate = 0.02;
  c.reorder = 0.03;
  c.corrupt = 0.005;
  spec.to_server = spec.to_client = c;
  return spec;
}

std::vector<char> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

TEST(TcpSimDeterminism, SameSeedGivesByteIdenticalTcpPcaps) {
  const auto base =
      std::filesystem::temp_directory_path() / ("dpdk_net_tcp_det_" + std::to_string(::getpid()));
  std::vector<transfer_outcome> runs;
  for (const char* dir : {"run1", "run2"}) {
    transfer_spec spec = faulty_spec();
    spec.pcap_dir = (base / dir).string();
    std::filesystem::create_directories(spec.pcap_dir);
    runs.push_back(run_transfer(42, spec));
    expect_intact(spec, runs.back());
  }
  EXPECT_EQ(runs[0].trace_hash, runs[1].trace_hash);
  EXPECT_EQ(runs[0].event_log_hash, runs[1].event_log_hash);
  for (const char* pcap : {"client.pcap", "server.pcap"}) {
    const auto p1 = read_all((base / "run1" / pcap).string());
    const auto p2 = read_all((base / "run2" / pcap).string());
    EXPECT_GT(p1.size(), 2U << 20) << pcap << ": 1 MiB each way, and the ACKs";
    EXPECT_TRUE(p1 == p2) << pcap << " differs between two runs of seed 42";
  }
  std::filesystem::remove_all(base);
  EXPECT_NE(run_transfer(43, faulty_spec()).trace_hash, runs[0].trace_hash)
      << "another seed, other traffic";
  // And through the harness's own check.
  EXPECT_EQ(sim::double_run(7,
                            [](std::uint64_t s) {
                              const transfer_outcome o = run_transfer(s, faulty_spec());
                              return sim::run_fingerprint{o.trace_hash, o.event_log_hash};
                            }),
            "");
}

}  // namespace tcp_sim_failure_test
}  // namespace
}  // namespace dpdk_net::stack
