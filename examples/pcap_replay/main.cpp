// pcap_replay: replays a recorded conversation against our stack in the simulator (the
// replay engine: sdk/include/dpdk_net/replay/replay.hpp; its sim driver: sim::replay_host), or
// live over an interface (--backend pcap: replay::run_on_device over a pcap_device) against
// whatever stack answers --live on that link, or over a TAP device whose kernel side is --live
// (--backend tap: the Linux kernel and its applications are the live stack).
//
//   host "replayer" (198.18.0.10...)  <-- clean sim link -->  host "live" (198.18.0.2, our stack
//   driven by sim::replay_host             running the examples' HTTP server or echo server)
//
// The live application listens on every port the replay connects to (after --port-map). The
// summary line goes to stdout, with the JSON report if --json (or to --report FILE); --out FILE
// gets everything the replayer sent and received. Exit: 0 no divergence, 1 divergences, 2 bad
// arguments or a bad capture.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "backend.hpp"
#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/os.hpp"
#include "dpdk_net/replay/device_replay.hpp"
#include "dpdk_net/replay/replay.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/replay_host.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"
#include "echo_app.hpp"
#include "http_app.hpp"
#include "options.hpp"
#include "pcap_backend.hpp"

namespace {

namespace net = boost::asio;
using namespace dpdk_net;
constexpr const char* prog = "pcap_replay";

std::string live_stack_stats(void* runtime) {
  return examples::stack_counters_json(static_cast<sim::sim_runtime*>(runtime)->ip());
}

bool write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return false;
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

/// Prints the summary and divergences, writes the report; the exit status.
int finish(const pcap_replay::options& o, replay::replay_report report, bool finished, bool stopped,
           const char* clock, const char* when) {
  if (stopped) {
    report.divergences.push_back("the replay was stopped by a signal before it finished");
  } else if (!finished) {
    report.divergences.push_back("the replay did not finish in " + std::to_string(o.max_seconds) +
                                 " " + clock + "seconds");
  }
  std::printf("%s: %s (%s)\n", prog, report.summary().c_str(), when);
  for (const std::string& d : report.divergences) {
    std::printf("  DIVERGENCE: %s\n", d.c_str());
  }
  const std::string json = report.json();
  if (o.json) {
    std::printf("%s\n", json.c_str());
  }
  if (!o.report.empty() && !write_text(o.report, json + "\n")) {
    std::fprintf(stderr, "%s: --report %s: cannot write\n", prog, o.report.c_str());
    return 2;
  }
  return report.diverged() ? 1 : 0;
}

int run_sim(const pcap_replay::options& o, std::span<const capture_record> records) {
  std::string error;
  sim::network netw(o.replay.seed);
  sim::host& rh = netw.add_host("replayer");
  sim::host& lh = netw.add_host("live");
  sim::sim_nic& rn = netw.add_nic(rh);
  sim::sim_nic& ln = netw.add_nic(lh);
  netw.connect(rn, ln);
  replay::replay_config cfg = o.replay;
  cfg.mac = rn.info().mac;
  replay::engine engine(cfg);
  if (!engine.load(records, error)) {
    std::fprintf(stderr, "%s: %s: %s\n", prog, o.capture.c_str(), error.c_str());
    return 2;
  }
  stack::stack_config live_config = examples::sim_host_config(2);
  live_config.address = cfg.live_address;
  sim::sim_runtime live(lh, ln, live_config);
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::unique_ptr<tcp_echo::echo_server>> echo_servers;
  const std::vector<std::uint16_t> ports = engine.live_ports();
  examples::http::set_stats_source(&live_stack_stats, &live);
  for (const std::uint16_t port : ports) {
    if (o.app == pcap_replay::app_kind::http) {
      acceptors.push_back(std::make_unique<tcp::acceptor>(
          live.get_executor(), tcp::endpoint(net::ip::address_v4::any(), port)));
      net::co_spawn(live.get_executor(), examples::http::serve<tcp>(*acceptors.back()),
                    net::detached);
    } else {
      echo_servers.push_back(
          std::make_unique<tcp_echo::echo_server>(live.get_executor(), port, true));
      if (const std::error_code ec = echo_servers.back()->start(); ec) {
        std::fprintf(stderr, "%s: echo server on port %u: %s\n", prog, port, ec.message().c_str());
        return 2;
      }
    }
  }
  live.pump();
  sim::replay_host driver(rh, rn, engine);
  if (!o.out.empty() && !driver.open_output(o.out, error)) {
    std::fprintf(stderr, "%s: --out %s: %s\n", prog, o.out.c_str(), error.c_str());
    return 2;
  }
  const auto wall_start = std::chrono::steady_clock::now();
  driver.start();
  const bool finished =
      netw.run_until([&] { return driver.done(); }, static_cast<time_ns>(o.max_seconds * 1e9));
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  driver.close_output();
  char when[96];
  std::snprintf(when, sizeof when, "%.3f simulated s, %.2f wall s",
                static_cast<double>(netw.now()) / 1e9, wall);
  examples::http::set_stats_source(nullptr, nullptr);
  return finish(o, engine.report(), finished, false, "simulated ", when);
}

std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int /*sig*/) {
  stop_requested.store(true, std::memory_order_relaxed);
}

/// The live device: a pcap_device on an existing interface, or a new TAP device whose kernel
/// side is the live address. Null after printing why.
struct live_device {
  std::unique_ptr<device> dev;
  std::string description;
};

std::optional<live_device> open_live_device(const pcap_replay::options& o) {
  live_device out;
  if (o.backend == pcap_replay::replay_backend::pcap) {
    std::optional<examples::pcap_backend> b =
        examples::open_pcap_backend(prog, o.iface, o.replay.address, 32, std::nullopt, 4096);
    if (!b) {
      return std::nullopt;
    }
    out.description = b->describe();
    out.dev = std::move(b->dev);
    return out;
  }
  tap::tap_config tc;
  tc.name = o.iface;
  std::string error;
  std::unique_ptr<tap::tap_device> t = tap::tap_device::open(tc, error);
  if (!t || !t->configure_kernel_side(tap::kernel_side{o.replay.live_address, 24, true}, error)) {
    std::fprintf(stderr, "%s: --backend tap: %s\n", prog, error.c_str());
    return std::nullopt;
  }
  out.description = "tap " + t->info().name + " (MAC " + t->info().mac.to_string() +
                    ", kernel side " + o.replay.live_address.to_string() + "/24)";
  out.dev = std::move(t);
  return out;
}

int run_live(const pcap_replay::options& o, std::span<const capture_record> records) {
  std::optional<live_device> b = open_live_device(o);
  if (!b) {
    return 2;
  }
  replay::replay_config cfg = o.replay;
  cfg.mac = b->dev->info().mac;
  cfg.mtu = b->dev->info().mtu;
  replay::engine engine(cfg);
  std::string error;
  if (!engine.load(records, error)) {
    std::fprintf(stderr, "%s: %s: %s\n", prog, o.capture.c_str(), error.c_str());
    return 2;
  }
  if (o.backend == pcap_replay::replay_backend::tap) {
    // Peer i replays from --ip + i: every one must be on the kernel side's /24.
    const std::uint32_t last = cfg.address.value + engine.peer_count() - 1;
    if ((last >> 8U) != (cfg.live_address.value >> 8U)) {
      std::fprintf(stderr,
                   "%s: --backend tap: the capture has %zu peers, replayed from --ip %s up to %s, "
                   "which leaves --live %s/24 (pick a lower --ip)\n",
                   prog, engine.peer_count(), cfg.address.to_string().c_str(),
                   wire::ipv4_address{last}.to_string().c_str(),
                   cfg.live_address.to_string().c_str());
      return 2;
    }
  }
  pcapng_writer out;
  if (!o.out.empty()) {
    capture_interface iface;
    iface.name = b->dev->info().name + "/replay";
    iface.description = "pcap_replay: frames the replayer sent and received";
    if (!out.open(o.out, {iface})) {
      std::fprintf(stderr, "%s: --out %s: %s\n", prog, o.out.c_str(), out.error().c_str());
      return 2;
    }
  }
  std::printf("%s: replaying %s on %s against %s\n", prog, o.capture.c_str(),
              b->description.c_str(), o.replay.live_address.to_string().c_str());
  std::fflush(stdout);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  replay::device_replay_options dro;
  dro.out = out.is_open() ? &out : nullptr;
  dro.max_duration = static_cast<time_ns>(o.max_seconds * 1e9);
  dro.stop = &stop_requested;
  const replay::device_replay_result r = replay::run_on_device(engine, *b->dev, dro);
  out.close(realtime_now());
  char when[96];
  std::snprintf(when, sizeof when, "%.3f s live, %llu frames dropped on transmit",
                static_cast<double>(r.elapsed) / 1e9,
                static_cast<unsigned long long>(r.tx_dropped));
  return finish(o, engine.report(), r.finished, r.stopped, "", when);
}

}  // namespace

int main(int argc, char** argv) {
  pcap_replay::options o;
  if (const int r = pcap_replay::parse(argc, argv, o); r >= 0) {
    return r;
  }
  try {
    std::vector<std::byte> storage;
    std::vector<capture_record> records;
    std::string error;
    if (!read_capture(o.capture, storage, records, error)) {
      std::fprintf(stderr, "%s: %s\n", prog, error.c_str());
      return 2;
    }
    return o.backend == pcap_replay::replay_backend::sim ? run_sim(o, records)
                                                         : run_live(o, records);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", prog, e.what());
    return 2;
  }
}
