// Figures for TCP in the simulator: wall-clock nanoseconds per TCP segment for a bulk transfer
// between two of our stacks (both stacks, the application's copies and checks, the link model
// and the scheduler included: what one simulated segment costs end to end), and the bytes an
// idle connection takes (tcp_layer::idle_connection_bytes()).
//
//   tcp_sim_bench [--mib N] [--seed S]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dpdk_net/stack/tcp.hpp"
#include "tcp_sim_app.hpp"

namespace {

using namespace dpdk_net;
using namespace dpdk_net::stack::test;

struct figures {
  double ns_per_segment = 0;
  double ns_per_data_segment = 0;
  std::uint64_t segments = 0;
  double simulated_s = 0, wall_s = 0;
  bool intact = false;
};

figures measure(std::uint64_t seed, transfer_spec spec) {
  const auto start = std::chrono::steady_clock::now();
  const transfer_outcome o = run_transfer(seed, spec);
  const auto wall = std::chrono::steady_clock::now() - start;
  figures f;
  f.wall_s = std::chrono::duration<double>(wall).count();
  f.segments = o.client_tcp.segments_out + o.server_tcp.segments_out;
  const double data_segments =
      static_cast<double>(o.client_tcp.bytes_out + o.server_tcp.bytes_out) / 1448.0;
  const double ns = std::chrono::duration<double, std::nano>(wall).count();
  f.ns_per_segment = f.segments != 0 ? ns / static_cast<double>(f.segments) : 0;
  f.ns_per_data_segment = data_segments > 0 ? ns / data_segments : 0;
  f.simulated_s = static_cast<double>(o.finished_at) / 1e9;
  f.intact = o.finished && !o.client.empty() && o.client.front().complete() && !o.server.empty() &&
             o.server.front().complete();
  return f;
}

void print(const char* name, const figures& f) {
  std::printf(
      "%-28s %8.0f ns/segment  %8.0f ns/full-sized data segment  (%llu segments, %.2f s "
      "simulated, %.2f s wall)%s\n",
      name, f.ns_per_segment, f.ns_per_data_segment, static_cast<unsigned long long>(f.segments),
      f.simulated_s, f.wall_s, f.intact ? "" : "  NOT INTACT");
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t mib = 64;
  std::uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--mib" || a == "--seed") && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0' || v == 0) {
        std::fprintf(stderr, "tcp_sim_bench: %s needs a positive whole number\n", a.c_str());
        return 2;
      }
      (a == "--mib" ? mib : seed) = v;
    } else {
      std::fprintf(stderr, "usage: tcp_sim_bench [--mib N] [--seed S]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  transfer_spec clean;
  clean.what = transfer_spec::pattern::upload;
  clean.bytes = mib << 20;
  clean.to_server = clean.to_client = sim::link_config{};
  clean.to_server.bandwidth_bps = clean.to_client.bandwidth_bps = 10'000'000'000;
  transfer_spec lossy = clean;
  lossy.to_server.loss = lossy.to_client.loss = 0.01;
  transfer_spec both = clean;
  both.what = transfer_spec::pattern::both;
  both.bytes = clean.bytes / 2;

  std::printf(
      "bulk transfer of %llu MiB between two dpdk-net stacks in the simulator (seed %llu)\n",
      static_cast<unsigned long long>(mib), static_cast<unsigned long long>(seed));
  const figures f1 = measure(seed, clean);
  print("upload, 10 Gbit/s, no loss", f1);
  const figures f2 = measure(seed, lossy);
  print("upload, 10 Gbit/s, 1 % loss", f2);
  const figures f3 = measure(seed, both);
  print("both ways at once, no loss", f3);
  std::printf(
      "idle connection: %zu bytes (tcp_layer::idle_connection_bytes(), buffers not "
      "allocated)\n",
      stack::tcp_layer::idle_connection_bytes());
  return f1.intact && f2.intact && f3.intact ? 0 : 1;
}
