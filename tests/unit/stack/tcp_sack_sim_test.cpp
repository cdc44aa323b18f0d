// SACK recovery against NewReno alone, end to end in the simulator: the same 512 KiB upload over
// the same bursty link, on the same 24 seeds, with tcp_config::sack on and off in both stacks.
// Everything else is equal (the NewReno controller on both sides, so that only the recovery
// differs: RFC 6675 with SACK, RFC 6582 without).
//
// The path: 100 Mbit/s, 20 ms each way (RTT 40 ms; the window, not the link, limits the
// transfer), a queue that never drops: every loss is the Gilbert-Elliott model's, 8 % of the
// data direction's frames in runs of 4 on average; ACKs are never lost. The link draws the same
// randomness per frame whatever the frame, so both variants meet the same loss pattern frame by
// frame until their traffic differs (after that, which bytes a lost frame carried differs too).
//
// Measured on the wire by a rule on the data direction that matches nothing and sees every frame
// offered, lost or not: retransmitted bytes are payload below the highest sequence number already
// sent; lost bytes are the payload of the frames the model dropped (the network's fault log, by
// frame ordinal). Completion: the simulated time at which the server has all 512 KiB, intact.
//
// The claim (issue 11) is that SACK retransmits fewer bytes than NewReno on each seed, and that
// its median completion time is lower. Per seed it is asserted on the bytes retransmitted BEYOND
// those lost (each lost byte must be sent again at least once: that much is no recovery's
// choice): never more with SACK, and fewer wherever NewReno resent anything beyond the lost
// bytes. Raw retransmitted bytes are compared per seed only where both runs lost the same bytes
// (then it is the same comparison), and in total over the seeds. Why not raw bytes per seed:
// NewReno without an RTO repairs one hole per partial ACK and resends exactly the lost segments,
// so on such a seed both variants resend exactly what was lost (equal, and minimal); SACK's gain
// there is time, one RTT for all holes instead of one per hole. NewReno resends more only after
// an RTO (go-back-N over data the receiver holds); that is where SACK must be strictly better.
// Once the traffic diverges the two runs lose different frames (a few KB apart), so raw bytes
// would compare the dice, not the recovery.
//
// Measured (the engine as of the first SACK implementation, 24 seeds): 16 seeds where NewReno
// resent data beyond the lost and SACK none; 7 where both resent exactly the lost bytes; seed 6
// where SACK resent 68 KB beyond the lost (three plain duplicate ACKs - the receiver answering a
// spurious retransmission - started an RFC 6582 recovery; see tcp_sack_recovery_test.cpp,
// DuplicateAcksWithoutBlocksAreNotLossSignals); median completion 1.15 s vs 1.97 s. Failing
// seeds print the seed; DPDK_NET_SACK_SIM_SEED=n runs one seed alone and
// DPDK_NET_TCP_SIM_PCAP_DIR=dir writes its pcaps (sack_client.pcap, newreno_client.pcap).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dpdk_net/sim/network.hpp"
#include "tcp_sim_app.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_sack_sim_test {

constexpr std::uint64_t transfer_bytes = 512 * 1024;
constexpr std::uint64_t first_seed = 1;
constexpr std::uint64_t seeds = 24;
constexpr double loss_rate = 0.08;  // of the data direction's frames, on average
constexpr double mean_burst = 4;    // frames lost in a row, on average

/// Gilbert-Elliott bursts: mean length 1 / p_bad_to_good frames, `loss` of all frames lost.
sim::gilbert_elliott bursts(double loss, double mean_length) {
  sim::gilbert_elliott ge;
  ge.p_bad_to_good = 1.0 / mean_length;
  ge.p_good_to_bad = ge.p_bad_to_good * loss / (1 - loss);
  return ge;
}

/// Retransmitted payload on the data direction, seen as frames are offered to the link.
struct wire_tally {
  bool started = false;
  std::uint32_t high = 0;  // one past the highest data byte offered so far (absolute)
  std::uint64_t retransmitted_bytes = 0, retransmitted_segments = 0, data_segments = 0;
  std::vector<std::uint32_t> payload;  // by the link's frame ordinal: the data bytes offered

  void see(const wire::decoded_frame& f) {
    payload.push_back(f.tcp ? static_cast<std::uint32_t>(f.payload.size()) : 0U);
    if (!f.tcp) {
      return;
    }
    const wire::tcp_header& h = *f.tcp;
    if (h.has(wire::tcp_flag::syn)) {
      started = true;
      high = h.seq + 1;
      return;
    }
    const auto len = static_cast<std::uint32_t>(f.payload.size());
    if (!started || len == 0) {
      return;
    }
    ++data_segments;
    const std::uint32_t end = h.seq + len;
    if (static_cast<std::int32_t>(h.seq - high) < 0) {
      const std::uint32_t below = static_cast<std::int32_t>(end - high) <= 0 ? len : high - h.seq;
      retransmitted_bytes += below;
      ++retransmitted_segments;
    }
    if (static_cast<std::int32_t>(end - high) > 0) {
      high = end;
    }
  }
};

struct outcome {
  bool complete = false;
  time_ns completion = 0;
  wire_tally wire;
  tcp_counters client{};
  std::uint64_t lost_frames = 0, lost_bytes = 0;
  std::vector<std::string> problems;
  /// Retransmitted bytes beyond those lost: data the receiver already had (or that was still on
  /// its way).
  [[nodiscard]] std::uint64_t waste() const noexcept {
    return wire.retransmitted_bytes > lost_bytes ? wire.retransmitted_bytes - lost_bytes : 0;
  }
};

outcome run(std::uint64_t seed, bool sack) {
  outcome out;
  sim::network net(seed);
  sim::host& ch = net.add_host("client");
  sim::host& sh = net.add_host("server");
  sim::sim_nic& cn = net.add_nic(ch);
  sim::sim_nic& sn = net.add_nic(sh);
  sim::link_config data;
  data.delay = 20 * millisecond;
  data.bandwidth_bps = 100'000'000;
  data.queue_limit = 8192;
  data.burst_loss = bursts(loss_rate, mean_burst);
  sim::link_config acks = data;
  acks.burst_loss = {};
  sim::sim_link& link = net.connect(cn, sn, data, acks);
  // DPDK_NET_TCP_SIM_PCAP_DIR=dir: the run's pcaps go there (as run_transfer's; the last run of
  // the process wins: run one seed with DPDK_NET_SACK_SIM_SEED to look at it).
  if (const char* dir = std::getenv("DPDK_NET_TCP_SIM_PCAP_DIR")) {
    std::string error;
    if (!net.capture(cn, std::string(dir) + (sack ? "/sack_client.pcap" : "/newreno_client.pcap"),
                     error)) {
      out.problems.push_back("capture: " + error);
    }
  }
  sim::link_model& to_server = link.from(cn);
  sim::link_rule observer;
  observer.description = "observer (matches nothing)";
  observer.match = [&out](const wire::decoded_frame& f) {
    out.wire.see(f);
    return false;
  };
  to_server.add_rule(std::move(observer));
  auto config = [sack](wire::ipv4_address a) {
    stack_config c;
    c.address = a;
    c.tcp.sack = sack;
    return c;
  };
  test::tcp_app_options options;
  options.socket.congestion = congestion_algorithm::new_reno;
  const auto client_ip = wire::ipv4_address::from_octets(198, 18, 0, 1);
  const auto server_ip = wire::ipv4_address::from_octets(198, 18, 0, 2);
  auto client = std::make_unique<test::tcp_app>(ch, cn, config(client_ip), options);
  auto server = std::make_unique<test::tcp_app>(sh, sn, config(server_ip), options);
  test::stream_role sink;
  sink.expect_seed = test::client_stream_seed;
  sink.expect_bytes = transfer_bytes;
  server->listen(test::transfer_port, sink);
  test::stream_role source;
  source.send_bytes = transfer_bytes;
  source.send_seed = test::client_stream_seed;
  client->connect(tcp_endpoint{server_ip, test::transfer_port}, source);
  const time_ns start = net.now();
  out.complete = net.run_until(
      [&] {
        const auto& r = server->records();
        return (!r.empty() && r.front().received == transfer_bytes) ||
               (!client->records().empty() && client->records().front().error);
      },
      start + 300 * second);
  out.completion = net.now() - start;
  const auto& r = server->records();
  out.complete = out.complete && !r.empty() && r.front().received == transfer_bytes &&
                 !r.front().first_mismatch;
  out.client = client->tcp().counters();
  out.lost_frames = to_server.counters().dropped_loss;
  for (const sim::fault_decision& d : net.decisions()) {
    if (d.direction == to_server.id() &&
        (d.kind == sim::fault::loss || d.kind == sim::fault::burst_loss) &&
        d.ordinal < out.wire.payload.size()) {
      out.lost_bytes += out.wire.payload[d.ordinal];
    }
  }
  out.problems = client->problems;
  out.problems.insert(out.problems.end(), server->problems.begin(), server->problems.end());
  return out;
}

double ms(time_ns t) {
  return static_cast<double>(t) / 1e6;
}

time_ns median(std::vector<time_ns> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

TEST(TcpSackSim, SackRetransmitsLessAndFinishesSoonerThanNewRenoOnBurstyLoss) {
  std::vector<time_ns> sack_times, reno_times;
  std::uint64_t fewer = 0, both_minimal = 0, sack_total = 0, reno_total = 0, runs = 0;
  std::printf(
      "seed | lost bytes SACK / NewReno | retransmitted SACK / NewReno | beyond the lost SACK / "
      "NewReno | completion ms SACK / NewReno | RTOs SACK / NewReno\n");
  // DPDK_NET_SACK_SIM_SEED=n runs that seed alone (with DPDK_NET_TCP_SIM_PCAP_DIR: its pcaps).
  const char* only = std::getenv("DPDK_NET_SACK_SIM_SEED");
  for (std::uint64_t seed = first_seed; seed < first_seed + seeds; ++seed) {
    if (only != nullptr && std::strtoull(only, nullptr, 10) != seed) {
      continue;
    }
    ++runs;
    const outcome s = run(seed, true);
    const outcome n = run(seed, false);
    std::printf("%4lu | %6lu / %6lu | %6lu / %6lu | %6lu / %6lu | %8.1f / %8.1f | %lu / %lu\n",
                static_cast<unsigned long>(seed), static_cast<unsigned long>(s.lost_bytes),
                static_cast<unsigned long>(n.lost_bytes),
                static_cast<unsigned long>(s.wire.retransmitted_bytes),
                static_cast<unsigned long>(n.wire.retransmitted_bytes),
                static_cast<unsigned long>(s.waste()), static_cast<unsigned long>(n.waste()),
                ms(s.completion), ms(n.completion),
                static_cast<unsigned long>(s.client.rto_expirations),
                static_cast<unsigned long>(n.client.rto_expirations));
    ASSERT_TRUE(s.complete) << "seed " << seed << ": the SACK transfer did not complete";
    ASSERT_TRUE(n.complete) << "seed " << seed << ": the NewReno transfer did not complete";
    EXPECT_TRUE(s.problems.empty()) << "seed " << seed << ": " << s.problems.front();
    EXPECT_TRUE(n.problems.empty()) << "seed " << seed << ": " << n.problems.front();
    EXPECT_GT(n.lost_bytes, 0U) << "seed " << seed << ": no data was lost (a useless seed)";
    EXPECT_GT(s.client.sack_recoveries + s.client.rto_expirations, 0U)
        << "seed " << seed << ": the SACK run never recovered (was SACK negotiated?)";
    EXPECT_EQ(n.client.sack_recoveries, 0U) << "seed " << seed;
    // The claim, per seed, on what recovery chooses to resend: the bytes retransmitted beyond
    // those lost. Never more with SACK; fewer wherever NewReno resent anything the receiver had
    // (or was about to get); where NewReno resent exactly what was lost - the minimum - equal.
    EXPECT_LE(s.waste(), n.waste()) << "seed " << seed << ": SACK resent more beyond the lost";
    if (n.waste() > 0) {
      EXPECT_LT(s.waste(), n.waste()) << "seed " << seed;
    }
    // The raw counts, where the two runs lost the same bytes (the same comparison then).
    if (s.lost_bytes == n.lost_bytes) {
      EXPECT_LE(s.wire.retransmitted_bytes, n.wire.retransmitted_bytes) << "seed " << seed;
    }
    fewer += s.waste() < n.waste() ? 1 : 0;
    both_minimal += s.waste() == 0 && n.waste() == 0 ? 1 : 0;
    sack_total += s.wire.retransmitted_bytes;
    reno_total += n.wire.retransmitted_bytes;
    sack_times.push_back(s.completion);
    reno_times.push_back(n.completion);
  }
  ASSERT_FALSE(sack_times.empty());
  const time_ns sack_median = median(sack_times);
  const time_ns reno_median = median(reno_times);
  std::printf(
      "%lu seeds: SACK resent less beyond the lost bytes on %lu, both exactly the lost bytes on "
      "%lu; retransmitted in total %lu (SACK) vs %lu (NewReno) bytes; median completion %.1f ms "
      "(SACK) vs %.1f ms (NewReno)\n",
      static_cast<unsigned long>(runs), static_cast<unsigned long>(fewer),
      static_cast<unsigned long>(both_minimal), static_cast<unsigned long>(sack_total),
      static_cast<unsigned long>(reno_total), ms(sack_median), ms(reno_median));
  EXPECT_LT(sack_total, reno_total);
  EXPECT_LT(sack_median, reno_median);
}

}  // namespace tcp_sack_sim_test
}  // namespace
}  // namespace dpdk_net::stack
