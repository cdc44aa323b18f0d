// TCP between two of our stacks in the deterministic simulator: byte-exact transfers (each
// stream hashed at both ends, every received byte compared with its generator) over each fault
// of the link model, one factor at a time; a partition that heals. Every run must complete
// intact: never hang, never corrupt. Failures print their seed, repro line and shrunk schedule
// (sim::for_each_seed). In swarm mode (DPDK_NET_SIM_SEEDS=N or DPDK_NET_SIM_SWARM=1) each
// variant's factor is applied on top of link faults drawn from the seed.
//
// Disruptions that must end a connection with a defined error (blackhole, crashes), the seeded
// random sample and determinism are in tcp_sim_failure_test.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dpdk_net/sim/gtest.hpp"
#include "tcp_sim_app.hpp"
#include "tcp_sim_checks.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_sim_test {

using namespace test;

// --- the app's own pieces, against independent references ---------------------------------

TEST(TcpSimApp, Fnv1a64MatchesThePublishedVectors) {
  // From the FNV reference page (isthe.com/chongo/tech/comp/fnv): FNV-1a 64 of "", "a", "foobar".
  auto hash = [](std::string_view s) {
    fnv1a64 h;
    h.update(std::as_bytes(std::span(s.data(), s.size())));
    return h.value();
  };
  EXPECT_EQ(hash(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(hash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(hash("foobar"), 0x85944171f73967e8ULL);
  fnv1a64 split;  // incremental == one shot
  split.update(std::as_bytes(std::span("foo", 3)));
  split.update(std::as_bytes(std::span("bar", 3)));
  EXPECT_EQ(split.value(), hash("foobar"));
}

TEST(TcpSimApp, TheGeneratorIsRandomAccessAndFindsTheFirstWrongByte) {
  const stream_generator g(7);
  std::vector<std::byte> whole(1000);
  g.fill(0, whole);
  std::vector<std::byte> part(333);
  g.fill(123, part);  // any offset, any length: the same bytes as the whole stream has there
  EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + 123));
  EXPECT_FALSE(g.mismatch(0, whole));
  EXPECT_FALSE(g.mismatch(123, part));
  whole[777] ^= std::byte{0x10};  // one flipped bit
  EXPECT_EQ(g.mismatch(0, whole), 777U);
  EXPECT_EQ(g.mismatch(1, std::span(whole).subspan(1)), 777U);
  EXPECT_TRUE(g.mismatch(124, part)) << "shifted by one byte";
  std::vector<std::byte> other(1000);
  stream_generator(8).fill(0, other);
  EXPECT_NE(other, std::vector<std::byte>(whole.begin(), whole.end()));
  // Not a constant or a short cycle: 1000 bytes take many values.
  std::sort(other.begin(), other.end());
  EXPECT_GT(std::unique(other.begin(), other.end()) - other.begin(), 200);
}

// --- one factor at a time ------------------------------------------------------------------

struct variant {
  const char* name;
  transfer_spec::pattern what;
  void (*apply)(sim::link_config& both_ways, transfer_spec& spec);
  /// What the run must show happened (the factor was really there), beyond being intact.
  void (*evidence)(const transfer_outcome& o) = nullptr;
  /// 20 % loss or worse: not layered under the swarm's random faults (see the test).
  bool harsh = false;
  /// Non-zero: so harsh that completing is not promised. Both ends get this user timeout and
  /// each connection must complete intact or fail with timed_out by then (the bar:
  /// "completes intact or fails with a defined error within its user timeout").
  time_ns user_timeout = 0;
};

void PrintTo(const variant& v, std::ostream* os) {
  *os << v.name;
}

constexpr std::uint64_t gbit = 1'000'000'000;

/// Gilbert-Elliott bursts of mean length 4 frames, `loss` of all frames lost on average.
sim::gilbert_elliott bursts(double loss) {
  sim::gilbert_elliott ge;
  ge.p_bad_to_good = 0.25;
  ge.p_good_to_bad = ge.p_bad_to_good * loss / (1 - loss);
  return ge;
}

void retransmitted(const transfer_outcome& o) {
  EXPECT_GT(o.client_tcp.retransmits, 0U) << o.describe();
  EXPECT_GT(o.server_tcp.retransmits, 0U) << o.describe();
}

const variant variants[] = {
    {"NoFaults", transfer_spec::pattern::both, [](sim::link_config&, transfer_spec&) {},
     [](const transfer_outcome& o) {
       EXPECT_EQ(o.client_tcp.retransmits + o.server_tcp.retransmits, 0U) << o.describe();
       // Exactly one connection lookup per received segment (the O(1) demultiplexing claim).
       EXPECT_EQ(o.client_tcp.demux_lookups, o.client_tcp.segments_in);
       EXPECT_EQ(o.server_tcp.demux_lookups, o.server_tcp.segments_in);
     }},
    {"Loss1", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) { c.loss = 0.01; }, retransmitted},
    {"Loss5", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) { c.loss = 0.05; }, retransmitted},
    {"Loss20", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) { c.loss = 0.20; }, retransmitted, true},
    {"BurstLoss1", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) { c.burst_loss = bursts(0.01); }, retransmitted},
    {"BurstLoss5", transfer_spec::pattern::echo,
     [](sim::link_config& c, transfer_spec&) { c.burst_loss = bursts(0.05); }, retransmitted},
    // Gilbert-Elliott state moves per frame, not per unit of time: after a loss a sparse
    // sender's next frame (one retransmission per RTO) is lost with p = 0.75, so consecutive
    // RTOs back off to seconds. Without SACK (the defences issue) completing 8 MiB each way is
    // not promised here; failing cleanly on time is.
    {"BurstLoss20", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) { c.burst_loss = bursts(0.20); }, retransmitted, true,
     120 * second},
    {"Duplicate10", transfer_spec::pattern::echo,
     [](sim::link_config& c, transfer_spec&) { c.duplicate = 0.10; },
     [](const transfer_outcome& o) {
       EXPECT_GT(o.server_tcp.spurious_rtx_data + o.client_tcp.spurious_rtx_data, 0U)
           << "duplicated data segments are counted as such: " << o.describe();
     }},
    {"Reorder10DeeperThanTheDupAckThreshold", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) {
       // At 1 Gbit/s a full frame takes 12 us: held back 100 us, about 8 frames overtake it,
       // more than dup_ack_threshold (3).
       c.bandwidth_bps = gbit;
       c.reorder = 0.10;
       c.reorder_delay = 100 * microsecond;
     },
     [](const transfer_outcome& o) {
       EXPECT_GT(o.server_tcp.out_of_order + o.client_tcp.out_of_order, 0U) << o.describe();
       EXPECT_GT(o.client_tcp.fast_retransmits + o.server_tcp.fast_retransmits, 0U)
           << "reordering deeper than the threshold triggers (spurious) fast retransmits: "
           << o.describe();
     }},
    {"Corrupt1", transfer_spec::pattern::echo,
     [](sim::link_config& c, transfer_spec&) { c.corrupt = 0.01; }, nullptr},
    {"Bandwidth10Mbit", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) { c.bandwidth_bps = 10'000'000; },
     [](const transfer_outcome& o) {
       // 8 MiB each way at 10 Mbit/s takes at least 6.7 s.
       EXPECT_GT(o.finished_at, 6700 * millisecond) << o.describe();
     }},
    {"Bandwidth1Gbit", transfer_spec::pattern::upload,
     [](sim::link_config& c, transfer_spec&) { c.bandwidth_bps = gbit; }, nullptr},
    {"Bandwidth10Gbit", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) { c.bandwidth_bps = 10 * gbit; }, nullptr},
    {"Delay10us", transfer_spec::pattern::both,
     [](sim::link_config& c, transfer_spec&) { c.delay = 10 * microsecond; }, nullptr},
    {"Delay200ms", transfer_spec::pattern::echo,
     [](sim::link_config& c, transfer_spec&) {
       c.delay = 200 * millisecond;
       c.bandwidth_bps = gbit;
     },
     [](const transfer_outcome& o) {
       EXPECT_EQ(o.client_tcp.rto_expirations, 0U)
           << "a 400 ms RTT is measured, not mistaken for loss: " << o.describe();
     }},
};

class TcpSimFactor : public ::testing::TestWithParam<variant> {};

TEST_P(TcpSimFactor, EightMiBArriveIntact) {
  const variant& v = GetParam();
  sim::for_each_seed(
      [&v](std::uint64_t seed, bool swarm) {
        transfer_spec spec;
        spec.what = v.what;
        sim::link_config link = swarm ? sim::link_config::swarm(seed) : sim::link_config{};
        v.apply(link, spec);
        spec.to_server = spec.to_client = link;
        // Swarm mode adds random faults on top of the variant's, without bound: there, as for the
        // harshest variants, completing is not promised - a defined error on time is, with
        // keepalive so that a side that only receives learns its peer gave up.
        if (swarm && v.harsh) {
          // The swarm's random faults on top of 20 % loss take a connection (CUBIC or NewReno)
          // without SACK to RTO-bound progress of a few KB/s (Padhye's model agrees): it neither
          // completes nor fails within the simulated bound, and that says nothing about
          // correctness. These variants run standalone (fixed seed) only.
          return;
        }
        if (v.user_timeout != 0 || swarm) {
          const time_ns limit = v.user_timeout != 0 ? v.user_timeout : 120 * second;
          for (tcp_app_options* side : {&spec.client, &spec.server}) {
            side->socket.user_timeout = limit;
            side->socket.keepalive_idle = 10 * second;
            side->socket.keepalive_interval = second;
            side->socket.keepalive_probes = 5;
          }
          const transfer_outcome o = run_transfer(seed, spec);
          expect_sound(o);  // nothing hung, nothing corrupted
          for (const auto* side : {&o.client, &o.server}) {
            for (const stream_record& r : *side) {
              EXPECT_TRUE(r.complete() || r.error == std::make_error_code(std::errc::timed_out) ||
                          r.error == std::make_error_code(std::errc::connection_reset) ||
                          r.error == std::make_error_code(std::errc::host_unreachable))
                  << o.describe();
            }
          }
          if (v.evidence != nullptr && !swarm) {
            v.evidence(o);
          }
          return;
        }
        const transfer_outcome o = run_transfer(seed, spec);
        expect_intact(spec, o);
        if (v.evidence != nullptr && !swarm) {
          v.evidence(o);
        }
      },
      {1});
}

INSTANTIATE_TEST_SUITE_P(Variants, TcpSimFactor, ::testing::ValuesIn(variants),
                         [](const ::testing::TestParamInfo<variant>& i) {
                           return std::string(i.param.name);
                         });

TEST(TcpSim, APartitionLongerThanTheRtoHealsAndTheTransferCompletes) {
  sim::for_each_seed(
      [](std::uint64_t seed, bool swarm) {
        transfer_spec spec;
        spec.what = transfer_spec::pattern::both;
        spec.to_server = spec.to_client =
            swarm ? sim::link_config::swarm(seed) : sim::link_config{};
        time_ns rto_at_cut = 0;
        constexpr time_ns cut = 3 * second;
        spec.midway = [&rto_at_cut](sim::network& net, tcp_app& client, tcp_app& server) {
          if (const auto i = client.tcp().info(client.records().front().socket)) {
            rto_at_cut = i->rto;
          }
          const std::size_t id = net.partition({&client.sim_host()}, {&server.sim_host()});
          net.events().after(cut, [&net, id] { net.heal(id); });
        };
        const transfer_outcome o = run_transfer(seed, spec);
        expect_intact(spec, o);
        EXPECT_GT(o.midway_at, 0U) << "the partition never happened: " << o.describe();
        EXPECT_GT(rto_at_cut, 0U);
        EXPECT_GT(cut, rto_at_cut) << "the partition must outlast the RTO";
        EXPECT_GT(o.client_tcp.rto_expirations, 0U) << o.describe();
        EXPECT_GT(o.server_tcp.rto_expirations, 0U) << o.describe();
        EXPECT_GT(o.finished_at, o.midway_at + cut);
      },
      {1});
}

}  // namespace tcp_sim_test
}  // namespace
}  // namespace dpdk_net::stack
