// The callgrind cost gate's program (pytests/test_scale_gates.py): request/response between two
// of our stacks in the simulator with N concurrent connections, of which only a window is busy at
// any time. Setup (N connects) and warm-up (every connection exchanges at least once, so each
// has had its buffers and returned them) run outside the measurement; the measured phase of R
// exchanges (5 outstanding by default) is bracketed with callgrind's client requests, so under
//
//   valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no tcp_scale_probe N
//
// the output file's total Ir is the measured phase alone: divided by R it is the instructions one
// request/response costs (both stacks, the simulator and the application included). Instruction
// counts do not depend on the machine's noise, so 10 and 10,000 connections can be compared
// within a tight tolerance: if anything per segment scanned connections, 10,000 would cost ~1000x.
//
// Delayed ACKs are off here: with them on, a connection's next request piggybacks its ACK at 10
// connections but not at 10,000 (the timer fires first), so the two runs would send different
// segments. Off, each exchange is exactly request, response, ACK at both sizes (printed, and the
// gate checks it).
//
//   tcp_scale_probe CONNECTIONS [--requests R] [--window W]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tcp_rr_app.hpp"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define DPDK_NET_PROBE_CALLGRIND 1
#else
#define DPDK_NET_PROBE_CALLGRIND 0
#endif

namespace {

using namespace dpdk_net;
using namespace dpdk_net::stack;
using namespace dpdk_net::stack::test;

bool parse_count(const char* text, std::uint64_t& out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v == 0) {
    return false;
  }
  out = v;
  return true;
}

void measure_begin() {
#if DPDK_NET_PROBE_CALLGRIND
  CALLGRIND_START_INSTRUMENTATION;
  CALLGRIND_TOGGLE_COLLECT;
#endif
}

void measure_end() {
#if DPDK_NET_PROBE_CALLGRIND
  CALLGRIND_TOGGLE_COLLECT;
  CALLGRIND_STOP_INSTRUMENTATION;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t connections = 0, requests = 2000, window = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--requests" || a == "--window") && i + 1 < argc) {
      if (!parse_count(argv[++i], a == "--requests" ? requests : window)) {
        std::fprintf(stderr, "tcp_scale_probe: %s needs a positive whole number\n", a.c_str());
        return 2;
      }
    } else if (connections != 0 || !parse_count(argv[i], connections)) {
      std::fprintf(stderr, "usage: tcp_scale_probe CONNECTIONS [--requests R] [--window W]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  // A connection must not get its next request in the pump that read its response (it would
  // carry the ACK, which at 10,000 connections goes alone): with at most half the connections
  // busy, round-robin never hands the next request to the one that just finished.
  if (connections == 0 || connections > 60000 || 2 * window > connections) {
    std::fprintf(stderr,
                 "tcp_scale_probe: CONNECTIONS must be 1..60000 and at least twice the window "
                 "(%llu)\n",
                 static_cast<unsigned long long>(window));
    return 2;
  }

  rr_setup setup;
  setup.connections = connections;
  setup.tcp.delayed_ack = 0;  // see the top of this file
  rr_world world(setup);

  // Setup: every connection established (256 connecting at once).
  world.client.open(connections, 256);
  if (!world.run(120 * second) || world.client.connected() != connections) {
    std::fprintf(stderr, "tcp_scale_probe: %zu of %llu connected\n%s", world.client.connected(),
                 static_cast<unsigned long long>(connections), world.problems().c_str());
    return 1;
  }
  // Warm-up: every connection exchanges at least once (its buffers taken and given back), and
  // at least 1000 exchanges (caches and the timer wheel in their steady state).
  world.client.exchange(std::max<std::uint64_t>(connections, 1000), window);
  if (!world.run(600 * second)) {
    std::fprintf(stderr, "tcp_scale_probe: warm-up did not finish\n%s", world.problems().c_str());
    return 1;
  }

  const tcp_counters c0 = world.client.tcp().counters();
  const tcp_counters s0 = world.server.tcp().counters();
  const std::uint64_t done0 = world.client.completed();
  const auto wall0 = std::chrono::steady_clock::now();
  measure_begin();
  world.client.exchange(requests, window);
  const bool finished = world.run(600 * second);
  measure_end();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const tcp_counters c1 = world.client.tcp().counters();
  const tcp_counters s1 = world.server.tcp().counters();
  const std::uint64_t done = world.client.completed() - done0;

  const auto per = [requests](std::uint64_t a, std::uint64_t b) {
    return static_cast<double>(b - a) / static_cast<double>(requests);
  };
  std::printf("connections %llu\n", static_cast<unsigned long long>(connections));
  std::printf("window %llu\n", static_cast<unsigned long long>(window));
  std::printf("requests %llu\n", static_cast<unsigned long long>(done));
  std::printf("segments_per_request %.3f\n",
              per(c0.segments_out + s0.segments_out, c1.segments_out + s1.segments_out));
  std::printf("demux_lookups_per_request %.3f\n",
              per(c0.demux_lookups + s0.demux_lookups, c1.demux_lookups + s1.demux_lookups));
  std::printf("output_visits_per_request %.3f\n",
              per(c0.output_visits + s0.output_visits, c1.output_visits + s1.output_visits));
  std::printf("buffers_taken_per_request %.3f\n",
              per(c0.buffers_taken + s0.buffers_taken, c1.buffers_taken + s1.buffers_taken));
  std::printf("wall_ns_per_request %.0f\n", wall * 1e9 / static_cast<double>(requests));
  std::printf("callgrind_requests %s\n", DPDK_NET_PROBE_CALLGRIND ? "yes" : "no");
  const std::string problems = world.problems();
  if (!finished || done != requests || !problems.empty()) {
    std::fprintf(stderr, "tcp_scale_probe: %llu of %llu requests done\n%s",
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(requests),
                 problems.c_str());
    return 1;
  }
  return 0;
}
