// Figures for the simulator: scheduler events per second, and frames per second through a
// lossy simulated link (send, link model, delivery, receive).
#include <benchmark/benchmark.h>

#include <array>
#include <cstring>

#include "dpdk_net/sim/network.hpp"

namespace {

using namespace dpdk_net;
using namespace dpdk_net::sim;

void bm_scheduler_events(benchmark::State& state) {
  scheduler s;
  const auto width = static_cast<std::uint64_t>(state.range(0));  // events pending at once
  struct tick {
    scheduler* s;
    std::uint64_t step;
    void operator()() const { s->after(step, tick{s, step}); }
  };
  for (std::uint64_t i = 0; i < width; ++i) {
    s.at(i, tick{&s, 1 + i % 13});
  }
  for (auto _ : state) {
    s.step();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["events/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(bm_scheduler_events)->Arg(16)->Arg(1024)->Arg(65536);

void bm_lossy_link_frames(benchmark::State& state) {
  network net(1);
  link_config c;
  c.loss = 0.05;
  c.jitter = 5 * microsecond;
  c.bandwidth_bps = 10'000'000'000;
  sim_nic& a = net.add_nic(net.add_host("a"));
  sim_nic& b = net.add_nic(net.add_host("b"));
  net.connect(a, b, c);
  std::array<packet, 32> burst;
  std::array<packet, 64> in;
  std::uint64_t received = 0;
  for (auto _ : state) {
    const std::size_t n = a.tx_pool(0).alloc_burst(burst);
    for (std::size_t i = 0; i < n; ++i) {
      std::memset(burst[i].append(64), 0, 64);
    }
    a.tx_burst(0, std::span(burst.data(), n));
    net.run_for(20 * microsecond);
    std::size_t got = 0;
    while ((got = b.rx_burst(0, in)) != 0) {
      received += got;
      free_burst(std::span(in.data(), got));
    }
  }
  state.SetItemsProcessed(state.iterations() * 32);
  state.counters["frames/s"] =
      benchmark::Counter(static_cast<double>(received), benchmark::Counter::kIsRate);
}
BENCHMARK(bm_lossy_link_frames);

}  // namespace

BENCHMARK_MAIN();
