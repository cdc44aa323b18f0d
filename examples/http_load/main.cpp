// http_load: a keep-alive HTTP/1.1 load generator. -c connections send GET --path back to back
// (closed loop, the default) or at --rate requests/s in total (open loop: latency is measured
// from each request's intended send time, so a stalled server shows in the tail). Prints
// requests/s and p50/p99/p99.9 latency from a log-linear histogram (no allocation per request),
// and errors; --json prints one JSON object instead.
//   --backend kernel  the client on boost::asio::ip::tcp (e.g. against our server over TAP)
//   --backend tap     the client on our stack over a TAP interface
//   --backend dpdk    the client on our stack over a DPDK ethdev (e.g. a memif to our server);
//                     --cores with several cores: a multi_runtime, connection i on worker
//                     i % workers (each worker's connects pick ports that hash to itself)
//   --backend pcap    the client on our stack on an existing interface (libpcap)
//   --backend sim     our server (examples/common/http_app.hpp) and this client on two
//                     simulated hosts, in simulated time (--cores N: the server host runs N
//                     workers; the client always one)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "backend.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "dpdk_net/runtime/runtime.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"
#include "http_app.hpp"
#include "http_client.hpp"
#include "multi_backend.hpp"

namespace {

namespace net = boost::asio;
using namespace dpdk_net;
using namespace dpdk_net::examples;
constexpr const char* prog = "http_load";

struct load_options {
  backend_options backend;
  unsigned connections = 8;
  double seconds = 5;
  double rate = 0;  ///< 0: closed loop
  std::string path = "/";
  bool have_target = false;
  wire::ipv4_address target_ip{};
  std::uint16_t target_port = 0;
  bool json = false;
};

void usage() {
  std::printf(
      "usage: http_load --connect ADDR:PORT [-c N] [-d S] [--rate R] [--path P] [--json]\n"
      "                 [--backend kernel|tap|dpdk|sim] [backend options]\n"
      "  Keep-alive HTTP/1.1 GETs of P (default /) on N connections (default 8) for S seconds\n"
      "  (default 5); closed loop unless --rate R (requests/s in total, open loop). Prints\n"
      "  req/s, p50/p99/p99.9 latency and errors (--json: one JSON object). --backend sim\n"
      "  needs no --connect: it runs the example server on a second simulated host.\n"
      "  -c N              connections (1..10000)\n"
      "  -d S              duration in seconds (0..86400)\n"
      "  --rate R          open loop at R requests/s (default: closed loop)\n"
      "  --path P          the request target (default /)\n"
      "  --connect A:P     the server\n"
      "  --json            machine-readable output\n"
      "%s",
      common_usage());
}

int parse(int argc, char** argv, load_options& o) {
  o.backend.backend = backend_kind::kernel;
  o.backend.port = 80;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return -1;
    }
    if (a == "--json") {
      o.json = true;
      continue;
    }
    const int r = parse_common(prog, argc, argv, i, o.backend);
    if (r == 2) {
      return 2;
    }
    if (r == 1) {
      continue;
    }
    const bool known = a == "-c" || a == "-d" || a == "--rate" || a == "--path" ||
                       a == "--connect" || a == "--connections" || a == "--duration";
    if (!known) {
      return bad_argument(prog, "unknown argument '" + a + "'");
    }
    if (i + 1 >= argc) {
      return bad_argument(prog, a + " needs a value");
    }
    const std::string v = argv[++i];
    std::uint64_t n = 0;
    if (a == "-c" || a == "--connections") {
      if (!parse_u64(v, n) || n < 1 || n > 10000) {
        return bad_argument(prog, "-c needs 1..10000 connections");
      }
      o.connections = static_cast<unsigned>(n);
    } else if (a == "-d" || a == "--duration") {
      if (!parse_seconds(v, o.seconds) || o.seconds <= 0) {
        return bad_argument(prog, "-d needs a duration in seconds (0..86400)");
      }
    } else if (a == "--rate") {
      if (!parse_seconds(v, o.rate) || o.rate <= 0) {  // same syntax: a positive number
        return bad_argument(prog, "--rate needs requests/s (a positive number)");
      }
    } else if (a == "--path") {
      if (v.empty() || v[0] != '/' || v.find_first_of(" \r\n") != std::string::npos) {
        return bad_argument(prog, "--path needs a target starting with / (no spaces)");
      }
      o.path = v;
    } else {  // --connect
      if (!parse_endpoint(v, o.target_ip, o.target_port)) {
        return bad_argument(prog, "--connect needs ADDR:PORT (IPv4, a port 1..65535)");
      }
      o.have_target = true;
    }
  }
  if (!o.have_target && o.backend.backend != backend_kind::sim) {
    return bad_argument(prog, "--connect ADDR:PORT is needed (except with --backend sim)");
  }
  return finish_common(prog, o.backend, false);
}

http::load_config make_config(const load_options& o, time_ns start) {
  http::load_config c;
  c.request = "GET " + o.path + " HTTP/1.1\r\nHost: dpdk-net\r\nUser-Agent: http_load\r\n\r\n";
  c.start = start;
  c.duration = static_cast<time_ns>(o.seconds * 1e9);
  c.connections = o.connections;
  c.interval =
      o.rate > 0 ? static_cast<time_ns>(1e9 * static_cast<double>(o.connections) / o.rate) : 0;
  if (o.rate > 0 && c.interval == 0) {
    c.interval = 1;
  }
  return c;
}

int report(const load_options& o, const char* backend, const http::load_config& c,
           const http::load_results& r) {
  const double secs =
      static_cast<double>(r.end > c.start ? std::min(r.end - c.start, c.duration) : c.duration) /
      1e9;
  const double rps = secs > 0 ? static_cast<double>(r.requests) / secs : 0;
  const auto us = [&r](double q) { return static_cast<double>(r.latency.percentile(q)) / 1e3; };
  const std::uint64_t errors = r.connect_errors + r.io_errors + r.status_errors;
  if (o.json) {
    std::printf(
        "{\"backend\":\"%s\",\"connections\":%u,\"seconds\":%.3f,\"rate\":%.1f,"
        "\"requests\":%llu,\"rps\":%.1f,\"bytes\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,"
        "\"p999_us\":%.1f,\"max_us\":%.1f,\"errors\":%llu,\"connect_errors\":%llu,"
        "\"io_errors\":%llu,\"status_errors\":%llu,\"unfinished\":%u}\n",
        backend, o.connections, secs, o.rate, static_cast<unsigned long long>(r.requests), rps,
        static_cast<unsigned long long>(r.bytes), us(0.5), us(0.99), us(0.999),
        static_cast<double>(r.latency.max()) / 1e3, static_cast<unsigned long long>(errors),
        static_cast<unsigned long long>(r.connect_errors),
        static_cast<unsigned long long>(r.io_errors),
        static_cast<unsigned long long>(r.status_errors), o.connections - r.finished);
  } else {
    std::printf(
        "%s: %s, %u connections, %s loop: %llu requests in %.2f s = %.0f req/s (%.1f MB/s)\n", prog,
        backend, o.connections, o.rate > 0 ? "open" : "closed",
        static_cast<unsigned long long>(r.requests), secs, rps,
        static_cast<double>(r.bytes) / 1e6 / (secs > 0 ? secs : 1));
    std::printf("%s: latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", prog, us(0.5),
                us(0.99), us(0.999), static_cast<double>(r.latency.max()) / 1e3);
    std::printf("%s: errors: connect %llu, read/write %llu, non-200 %llu; reconnects %llu\n", prog,
                static_cast<unsigned long long>(r.connect_errors),
                static_cast<unsigned long long>(r.io_errors),
                static_cast<unsigned long long>(r.status_errors),
                static_cast<unsigned long long>(r.reconnects));
  }
  return r.requests > 0 ? 0 : 1;
}

int run_kernel(const load_options& o) {
  if (!pin_single_worker(prog, o.backend.workers)) {
    return 1;
  }
  net::io_context io{1};
  const net::ip::tcp::endpoint target(net::ip::address_v4(o.target_ip.value), o.target_port);
  const http::load_config c = make_config(o, monotonic_now());
  http::load_results r;
  for (unsigned i = 0; i < o.connections; ++i) {
    net::co_spawn(io, http::load_connection<net::ip::tcp>(target, &c, &r, i), net::detached);
  }
  io.run_for(std::chrono::nanoseconds(c.duration + 5 * second));
  return report(o, "kernel", c, r);
}

/// One worker of our stack on `inner` (tap, pcap), with --capture around it.
int run_one(const load_options& o, device& inner, const stack::stack_config& config,
            const char* name) {
  device_capture capture;
  if (!capture.open(prog, o.backend.capture, inner)) {
    return 1;
  }
  runtime rt(capture.dev(), config);
  const tcp::endpoint target(net::ip::address_v4(o.target_ip.value), o.target_port);
  const http::load_config c = make_config(o, monotonic_now());
  http::load_results r;
  for (unsigned i = 0; i < o.connections; ++i) {
    net::co_spawn(rt.get_executor(), http::load_connection<tcp>(target, &c, &r, i), net::detached);
  }
  rt.run_for(c.duration + 5 * second);
  rt.graceful_stop(500 * millisecond);
  return report(o, name, c, r);
}

int run_tap(const load_options& o) {
  if (!pin_single_worker(prog, o.backend.workers)) {
    return 1;
  }
  auto tap = open_tap_backend(prog, o.backend);
  if (!tap) {
    return 1;
  }
  return run_one(o, *tap->dev, tap->config, "tap");
}

int run_pcap(const load_options& o) {
  if (!pin_single_worker(prog, o.backend.workers)) {
    return 1;
  }
  const backend_options& b = o.backend;
  auto pc = open_pcap_backend(prog, b.iface, b.address, b.prefix, b.gateway);
  if (!pc) {
    return 1;
  }
  return run_one(o, *pc->dev, pc->config, "pcap");
}

/// One connection of a multi-worker run, counted when it ends (the main thread waits for all).
net::awaitable<void> counted_connection(tcp::endpoint target, const http::load_config* c,
                                        http::load_results* r, unsigned index,
                                        std::atomic<unsigned>* done) {
  co_await http::load_connection<tcp>(target, c, r, index);
  done->fetch_add(1, std::memory_order_release);
}

/// dpdk with several workers: connection i on worker i % workers, each worker with its own
/// results (merged after the workers stopped).
int run_dpdk_multi(const load_options& o, device& dev, const dpdk_port& port) {
  multi_runtime rt(dev, port.config(), dpdk_port::multi_options(o.backend.workers));
  const tcp::endpoint target(net::ip::address_v4(o.target_ip.value), o.target_port);
  rt.start();
  if (!o.json) {
    announce_workers(prog, rt);
  }
  const http::load_config c = make_config(o, monotonic_now());
  std::vector<http::load_results> per_worker(rt.size());
  std::atomic<unsigned> done{0};
  for (unsigned i = 0; i < o.connections; ++i) {
    const std::size_t w = i % rt.size();
    net::co_spawn(rt.get_executor(w), counted_connection(target, &c, &per_worker[w], i, &done),
                  net::detached);
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::nanoseconds(c.duration + 5 * second);
  while (done.load(std::memory_order_acquire) < o.connections &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  rt.graceful_stop(500 * millisecond);
  http::load_results r;
  for (const http::load_results& w : per_worker) {
    r.latency.merge(w.latency);
    r.requests += w.requests;
    r.bytes += w.bytes;
    r.connect_errors += w.connect_errors;
    r.io_errors += w.io_errors;
    r.status_errors += w.status_errors;
    r.reconnects += w.reconnects;
    r.finished += w.finished;
    r.end = std::max(r.end, w.end);
  }
  if (!o.json) {
    for (std::size_t i = 0; i < per_worker.size(); ++i) {
      std::printf("%s: worker %zu: %llu requests\n", prog, i,
                  static_cast<unsigned long long>(per_worker[i].requests));
    }
  }
  return report(o, "dpdk", c, r);
}

int run_dpdk(const load_options& o) {
  const worker_options& w = o.backend.workers;
  if (!w.multi() && !pin_single_worker(prog, w)) {
    return 1;
  }
  const auto port =
      dpdk_port::open(prog, o.backend.dpdk, w,
                      dpdk_stack_config(o.backend.address, o.backend.prefix, o.backend.gateway));
  if (!port) {
    return 1;
  }
  if (!o.json) {
    std::printf("%s: %s\n", prog, port->describe().c_str());
  }
  // A memif client's link is up once the server answered: connects before that would wait for
  // their SYN's retransmission.
  if (!port->wait_for_link(prog, 10)) {
    return 1;
  }
  device_capture capture;  // --capture: every queue of the port
  if (!capture.open(prog, o.backend.capture, port->dev())) {
    return 1;
  }
  if (w.multi()) {
    return run_dpdk_multi(o, capture.dev(), *port);
  }
  runtime rt(capture.dev(), port->config());
  const tcp::endpoint target(net::ip::address_v4(o.target_ip.value), o.target_port);
  const http::load_config c = make_config(o, monotonic_now());
  http::load_results r;
  for (unsigned i = 0; i < o.connections; ++i) {
    net::co_spawn(rt.get_executor(), http::load_connection<tcp>(target, &c, &r, i), net::detached);
  }
  rt.run_for(c.duration + 5 * second);
  rt.graceful_stop(500 * millisecond);
  return report(o, "dpdk", c, r);
}

int run_sim(const load_options& o) {
  sim::network netw(o.backend.seed);
  sim::host& ch = netw.add_host("client");
  sim::host& sh = netw.add_host("server");
  sim::sim_nic& cn = netw.add_nic(ch);
  const std::uint16_t workers = o.backend.workers.workers;
  sim::sim_nic& sn = workers > 1 ? netw.add_nic(sh, sim_server_nic(workers)) : netw.add_nic(sh);
  netw.connect(cn, sn);
  if (o.backend.capture.on()) {
    std::string error;
    if (!netw.capture(sn, o.backend.capture.options(), error)) {
      std::fprintf(stderr, "%s: --capture %s: %s\n", prog, o.backend.capture.path.c_str(),
                   error.c_str());
      return 1;
    }
  }
  sim::sim_runtime client(ch, cn, sim_host_config(1));
  sim_server server(sh, sn, sim_host_config(2), workers);
  const std::uint16_t port = o.have_target ? o.target_port : o.backend.port;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // one per server worker
  for (std::size_t i = 0; i < server.size(); ++i) {
    acceptors.push_back(std::make_unique<tcp::acceptor>(
        server.get_executor(i), tcp::endpoint(net::ip::address_v4::any(), port)));
  }
  http::set_workers(server.size());
  for (std::size_t i = 0; i < server.size(); ++i) {
    net::co_spawn(server.get_executor(i), http::serve<tcp>(*acceptors[i], i), net::detached);
  }
  const tcp::endpoint target(net::ip::make_address_v4("198.18.0.2"), port);
  const http::load_config c = make_config(o, client.context().now());
  http::load_results r;
  for (unsigned i = 0; i < o.connections; ++i) {
    net::co_spawn(client.get_executor(), http::load_connection<tcp>(target, &c, &r, i),
                  net::detached);
  }
  netw.run_until([&] { return r.finished == o.connections; }, c.start + c.duration + 30 * second);
  if (workers > 1 && !o.json) {
    for (std::size_t i = 0; i < server.size(); ++i) {
      std::printf("%s: sim server worker %zu: %llu requests\n", prog, i,
                  static_cast<unsigned long long>(http::counters(i).requests.get()));
    }
  }
  return report(o, "sim", c, r);
}

}  // namespace

int main(int argc, char** argv) {
  load_options o;
  if (const int r = parse(argc, argv, o); r != 0) {
    return r < 0 ? 0 : r;
  }
  try {
    switch (o.backend.backend) {
      case backend_kind::kernel:
        return run_kernel(o);
      case backend_kind::tap:
        return run_tap(o);
      case backend_kind::dpdk:
        return run_dpdk(o);
      case backend_kind::pcap:
        return run_pcap(o);
      case backend_kind::sim:
        return run_sim(o);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", prog, e.what());
    return 1;
  }
  return 1;
}
