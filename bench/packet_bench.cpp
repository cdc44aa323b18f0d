// Figures for the packet layer: pool alloc/free, and a burst round trip through the memory pair.
#include <benchmark/benchmark.h>

#include <array>

#include "dpdk_net/memory_device.hpp"

namespace {

using namespace dpdk_net;

void bm_pool_alloc_free(benchmark::State& state) {
  packet_pool pool(packet_pool_config{});
  for (auto _ : state) {
    packet p = pool.alloc();
    benchmark::DoNotOptimize(p.head());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_pool_alloc_free);

void bm_pool_burst(benchmark::State& state) {
  packet_pool pool(packet_pool_config{});
  std::array<packet, max_burst> burst;
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    pool.alloc_burst(std::span(burst.data(), n));
    free_burst(std::span(burst.data(), n));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(bm_pool_burst)->Arg(8)->Arg(32)->Arg(64);

void bm_memory_link_round_trip(benchmark::State& state) {
  memory_link link;
  std::array<packet, max_burst> tx;
  std::array<packet, max_burst> rx;
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    const std::size_t got = link.a().tx_pool(0).alloc_burst(std::span(tx.data(), n));
    for (std::size_t i = 0; i < got; ++i) {
      tx[i].append(64);
    }
    link.a().tx_burst(0, std::span(tx.data(), got));
    const std::size_t r = link.b().rx_burst(0, std::span(rx.data(), n));
    free_burst(std::span(rx.data(), r));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(bm_memory_link_round_trip)->Arg(1)->Arg(32)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
