// http_server: the example HTTP/1.1 server (Boost.Beast, C++20 coroutines; examples/common/
// http_app.hpp) on one of four backends, with the same application code on each:
//   --backend kernel  boost::asio::ip::tcp and an io_context (the baseline)
//   --backend tap     our stack (dpdk_net::runtime) on a TAP interface; --cores with several
//                     cores: a multi-queue TAP and dpdk_net::multi_runtime, one worker per core,
//                     each with its own acceptor and accept loop (the per-worker accept model);
//                     /stats then shows each worker's requests and hand-over counters
//   --backend dpdk    the same over a DPDK ethdev (--vdev net_memif0,..., dpdk_backend.hpp);
//                     /stats adds the port's counters, DPDK's and the driver's xstats
//   --backend pcap    the same (one worker) on an existing interface through libpcap
//   --backend sim     the server and simulated clients in one process: the clients check every
//                     route (keep-alive, pipelining, a 400), then run a short load; prints a
//                     summary and exits 0 only if every check passed (--cores N: the server
//                     host runs N workers)
// --max-seconds or SIGINT/SIGTERM stop it gracefully (ours: listeners close, connections FIN
// after their queued data; at most 1 s), then it prints its counters as one JSON line.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "backend.hpp"
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
constexpr const char* prog = "http_server";

std::atomic<runtime*> g_runtime{nullptr};
std::atomic<bool> g_signalled{false};

void on_signal(int) {
  g_signalled = true;
  if (runtime* rt = g_runtime.load(); rt != nullptr) {
    rt->stop();  // async-signal-safe (an eventfd write)
  }
}

std::string sim_stack_stats(void* server) {
  return stack_counters_json(static_cast<sim_server*>(server)->worker(0).ip());
}

int run_kernel(const backend_options& o) {
  if (!pin_single_worker(prog, o.workers)) {
    return 1;
  }
  net::io_context io{1};
  net::ip::tcp::endpoint local(o.have_ip ? net::ip::address(net::ip::address_v4(o.address.value))
                                         : net::ip::address_v4::any(),
                               o.port);
  boost::system::error_code ec;
  net::ip::tcp::acceptor acceptor(io);
  acceptor.open(local.protocol(), ec);
  if (!ec) {
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    acceptor.bind(local, ec);
  }
  if (!ec) {
    acceptor.listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    std::fprintf(stderr, "%s: listen on %s:%u: %s\n", prog, local.address().to_string().c_str(),
                 o.port, ec.message().c_str());
    return 1;
  }
  net::co_spawn(io, http::serve<net::ip::tcp>(acceptor), net::detached);
  net::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });
  std::printf("%s: serving http://%s:%u/ (kernel)\n", prog, local.address().to_string().c_str(),
              o.port);
  std::fflush(stdout);
  if (o.max_seconds > 0) {
    io.run_for(std::chrono::nanoseconds(static_cast<std::int64_t>(o.max_seconds * 1e9)));
  } else {
    io.run();
  }
  std::printf("%s\n", http::counters_json().c_str());
  return 0;
}

/// Where our stack runs (tap or dpdk): the device, the stack's configuration, how the startup
/// line names it, and (dpdk) the port whose counters /stats adds.
struct our_device {
  device* dev = nullptr;
  stack::stack_config config;
  std::string where;   ///< "dnhttp0", "net_memif0"
  std::string detail;  ///< "kernel side 198.18.7.1", "dpdk"
  dpdk_port* port = nullptr;
  multi_runtime_options multi;  ///< several workers
};

/// /stats and the final JSON: the stack's counters (one worker) or the workers' (several), and
/// the DPDK port's.
struct our_stats {
  runtime* rt = nullptr;
  http::tap_workers_stats* workers = nullptr;
  const dpdk_port* port = nullptr;
};

std::string our_stats_json(void* context) {
  const auto& c = *static_cast<our_stats*>(context);
  std::string out =
      c.rt != nullptr ? stack_counters_json(c.rt->ip()) : http::tap_workers_stats_json(c.workers);
  if (c.port != nullptr) {
    out += ',' + c.port->stats_json();
  }
  return out;
}

/// Several workers: one acceptor and accept loop per worker, all on the port (the stack's port
/// tables let every worker listen; a SYN goes to the worker its flow's hash picks).
int run_ours_multi(const backend_options& o, our_device& d) {
  multi_runtime rt(*d.dev, d.config, d.multi);
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  for (std::size_t i = 0; i < rt.size(); ++i) {
    try {
      acceptors.push_back(std::make_unique<tcp::acceptor>(
          rt.get_executor(i), tcp::endpoint(net::ip::address_v4::any(), o.port)));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: listen on port %u (worker %zu): %s\n", prog, o.port, i, e.what());
      return 1;
    }
  }
  http::set_workers(rt.size());
  http::tap_workers_stats workers{&rt, false};
  our_stats stats{nullptr, &workers, d.port};
  http::set_stats_source(&our_stats_json, &stats);
  for (std::size_t i = 0; i < rt.size(); ++i) {
    net::co_spawn(rt.get_executor(i), http::serve<tcp>(*acceptors[i], i), net::detached);
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  rt.start();
  announce_workers(prog, rt);
  std::printf("%s: serving http://%s:%u/ on %s (our stack, %zu workers, %s steering; %s)\n", prog,
              o.address.to_string().c_str(), o.port, d.where.c_str(), rt.size(),
              rt.steering() == steering_mode::hardware ? "hardware" : "software", d.detail.c_str());
  std::fflush(stdout);
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::duration<double>(o.max_seconds > 0 ? o.max_seconds : 1e9);
  while (!g_signalled && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  rt.graceful_stop(1 * second);  // every worker: listeners close, connections FIN, at most 1 s
  workers.stopped = true;
  std::printf("%s\n", http::counters_json().c_str());
  http::set_stats_source(nullptr, nullptr);
  return 0;
}

int run_ours_one(const backend_options& o, our_device& d) {
  runtime rt(*d.dev, d.config);
  tcp::acceptor acceptor(rt.get_executor());
  try {
    acceptor = tcp::acceptor(rt.get_executor(), tcp::endpoint(net::ip::address_v4::any(), o.port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: listen on port %u: %s\n", prog, o.port, e.what());
    return 1;
  }
  our_stats stats{&rt, nullptr, d.port};
  http::set_stats_source(&our_stats_json, &stats);
  net::co_spawn(rt.get_executor(), http::serve<tcp>(acceptor), net::detached);
  g_runtime = &rt;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::printf("%s: serving http://%s:%u/ on %s (our stack; %s)\n", prog,
              o.address.to_string().c_str(), o.port, d.where.c_str(), d.detail.c_str());
  std::fflush(stdout);
  if (!g_signalled) {
    rt.run_for(o.max_seconds > 0 ? static_cast<time_ns>(o.max_seconds * 1e9) : UINT64_MAX);
  }
  g_runtime = nullptr;
  rt.graceful_stop(1 * second);
  std::printf("%s\n", http::counters_json().c_str());
  http::set_stats_source(nullptr, nullptr);
  return 0;
}

/// --capture: the device (every queue) wrapped in a capture_device, closed after the runtime.
int run_ours(const backend_options& o, our_device& d) {
  device_capture capture;
  if (!capture.open(prog, o.capture, *d.dev)) {
    return 1;
  }
  d.dev = &capture.dev();
  return o.workers.multi() ? run_ours_multi(o, d) : run_ours_one(o, d);
}

int run_pcap(const backend_options& o) {
  if (!pin_single_worker(prog, o.workers)) {
    return 1;
  }
  auto pc = open_pcap_backend(prog, o.iface, o.address, o.prefix, o.gateway);
  if (!pc) {
    return 1;
  }
  our_device d{pc->dev.get(), pc->config, o.iface, pc->describe(), nullptr, {}};
  return run_ours(o, d);
}

int run_tap(const backend_options& o) {
  if (!o.workers.multi() && !pin_single_worker(prog, o.workers)) {
    return 1;
  }
  auto tap = open_tap_backend(prog, o);
  if (!tap) {
    return 1;
  }
  our_device d{tap->dev.get(), tap->config,
               o.iface,        "kernel side " + kernel_side_address(o).to_string(),
               nullptr,        multi_options(o.workers)};
  return run_ours(o, d);
}

/// dpdk: the port lives until the runtime is gone (its destructor closes it, then the EAL).
int run_dpdk(const backend_options& o) {
  if (!o.workers.multi() && !pin_single_worker(prog, o.workers)) {
    return 1;
  }
  const auto port =
      dpdk_port::open(prog, o.dpdk, o.workers, dpdk_stack_config(o.address, o.prefix, o.gateway));
  if (!port) {
    return 1;
  }
  std::printf("%s: %s\n", prog, port->describe().c_str());
  our_device d{&port->dev(), port->config(), port->name(),
               "dpdk",       port.get(),     dpdk_port::multi_options(o.workers)};
  return run_ours(o, d);
}

// --- the sim backend: checks, then a short load -------------------------------------------

struct sim_check_state {
  std::vector<std::string> failures;
  unsigned checks = 0;
  bool done = false;
};

void expect(sim_check_state& st, bool ok, const std::string& what) {
  ++st.checks;
  if (!ok) {
    st.failures.push_back(what);
  }
}

net::awaitable<std::tuple<boost::system::error_code, std::size_t>> send_all(tcp::socket& s,
                                                                            const std::string& b) {
  return net::async_write(s, net::buffer(b), net::as_tuple(net::use_awaitable));
}

net::awaitable<void> sim_checks(tcp::endpoint server, sim_check_state* st) {
  tcp::socket s(co_await net::this_coro::executor);
  auto [cec] = co_await s.async_connect(server, net::as_tuple(net::use_awaitable));
  if (cec) {
    expect(*st, false, "connect: " + cec.message());
    st->done = true;
    co_return;
  }
  std::vector<char> buf(64 * 1024);
  std::size_t have = 0;
  std::string body;
  http::response_info info;
  // GET /
  const std::string get_index = "GET / HTTP/1.1\r\nHost: sim\r\n\r\n";
  co_await send_all(s, get_index);
  boost::system::error_code ec = co_await http::read_response(s, buf, have, info, &body);
  expect(*st, !ec && info.status == 200 && body.find("dpdk-net") != std::string::npos, "GET /");
  // GET /bytes/100000: length and pattern
  const std::string get_bytes = "GET /bytes/100000 HTTP/1.1\r\nHost: sim\r\n\r\n";
  co_await send_all(s, get_bytes);
  ec = co_await http::read_response(s, buf, have, info, &body);
  bool pattern = body.size() == 100000;
  for (std::size_t i = 0; pattern && i < body.size(); ++i) {
    pattern = body[i] == http::pattern_byte(i);
  }
  expect(*st, !ec && info.status == 200 && pattern, "GET /bytes/100000");
  // POST /echo
  std::string payload(30000, 'e');
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>('a' + i % 23);
  }
  const std::string post =
      "POST /echo HTTP/1.1\r\nHost: sim\r\nContent-Length: " + std::to_string(payload.size()) +
      "\r\n\r\n" + payload;
  co_await send_all(s, post);
  ec = co_await http::read_response(s, buf, have, info, &body);
  expect(*st, !ec && info.status == 200 && body == payload, "POST /echo");
  // three pipelined requests in one write, answered in order
  const std::string pipelined =
      "GET /bytes/10 HTTP/1.1\r\nHost: sim\r\n\r\n"
      "GET /bytes/20 HTTP/1.1\r\nHost: sim\r\n\r\n"
      "GET /bytes/30 HTTP/1.1\r\nHost: sim\r\n\r\n";
  co_await send_all(s, pipelined);
  for (std::size_t k = 1; k <= 3; ++k) {
    ec = co_await http::read_response(s, buf, have, info, &body);
    expect(*st, !ec && info.status == 200 && body.size() == 10 * k,
           "pipelined GET /bytes/" + std::to_string(10 * k));
  }
  // too large: 400 (the connection stays usable)
  const std::string too_big = "GET /bytes/67108865 HTTP/1.1\r\nHost: sim\r\n\r\n";
  co_await send_all(s, too_big);
  ec = co_await http::read_response(s, buf, have, info, &body);
  expect(*st, !ec && info.status == 400, "GET /bytes/67108865 -> 400");
  // /stats is JSON with our stack's counters
  const std::string stats = "GET /stats HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n";
  co_await send_all(s, stats);
  ec = co_await http::read_response(s, buf, have, info, &body);
  expect(*st,
         !ec && info.status == 200 && info.close &&
             body.find("\"requests\":") != std::string::npos &&
             body.find("\"tcp\":") != std::string::npos,
         "GET /stats (Connection: close)");
  boost::system::error_code ignored;
  s.close(ignored);
  st->done = true;
}

int run_sim(const backend_options& o) {
  sim::network netw(o.seed);
  sim::host& ch = netw.add_host("client");
  sim::host& sh = netw.add_host("server");
  sim::sim_nic& cn = netw.add_nic(ch);
  sim::sim_nic& sn =
      o.workers.multi() ? netw.add_nic(sh, sim_server_nic(o.workers.workers)) : netw.add_nic(sh);
  // A mildly faulty link, so the seed decides losses and reordering the stack must repair.
  sim::link_config link;
  link.loss = 0.002;
  link.reorder = 0.002;
  netw.connect(cn, sn, link, link);
  if (o.capture.on()) {
    std::string error;
    if (!netw.capture(sn, o.capture.options(), error)) {
      std::fprintf(stderr, "%s: --capture %s: %s\n", prog, o.capture.path.c_str(), error.c_str());
      return 1;
    }
  }
  sim::sim_runtime client(ch, cn, sim_host_config(1));
  sim_server server(sh, sn, sim_host_config(2), o.workers.workers);
  const std::uint16_t port = o.port;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // one per worker, all on the port
  for (std::size_t i = 0; i < server.size(); ++i) {
    acceptors.push_back(std::make_unique<tcp::acceptor>(
        server.get_executor(i), tcp::endpoint(net::ip::address_v4::any(), port)));
  }
  http::set_workers(server.size());
  http::set_stats_source(o.workers.multi() ? &http::sim_workers_stats_json : &sim_stack_stats,
                         &server);
  for (std::size_t i = 0; i < server.size(); ++i) {
    net::co_spawn(server.get_executor(i), http::serve<tcp>(*acceptors[i], i), net::detached);
  }
  const tcp::endpoint target(net::ip::make_address_v4("198.18.0.2"), port);

  sim_check_state st;
  net::co_spawn(client.get_executor(), sim_checks(target, &st), net::detached);
  if (!netw.run_until([&] { return st.done; }, 30 * second)) {
    st.failures.emplace_back("the checks did not finish in 30 simulated seconds");
  }
  // A short closed-loop load: 8 keep-alive connections for 1 simulated second.
  http::load_config cfg;
  cfg.request = "GET /bytes/1024 HTTP/1.1\r\nHost: sim\r\n\r\n";
  cfg.start = client.context().now();
  cfg.duration = o.max_seconds > 0 ? static_cast<time_ns>(o.max_seconds * 1e9) : 1 * second;
  cfg.connections = 8;
  http::load_results r;
  for (unsigned i = 0; i < cfg.connections; ++i) {
    net::co_spawn(client.get_executor(), http::load_connection<tcp>(target, &cfg, &r, i),
                  net::detached);
  }
  netw.run_until([&] { return r.finished == cfg.connections; }, cfg.duration + 30 * second);
  const double secs = static_cast<double>(cfg.duration) / 1e9;
  // The trace hash: every frame sent and received, with its time (the same seed gives the same
  // hash in every build: pytests/test_asio_sim.py).
  std::printf(
      "%s: sim (seed %llu%s): %u checks, %zu failed, trace %016llx\n", prog,
      static_cast<unsigned long long>(o.seed),
      o.workers.multi() ? (", " + std::to_string(server.size()) + " server workers").c_str() : "",
      st.checks, st.failures.size(), static_cast<unsigned long long>(netw.trace_hash()));
  for (const std::string& f : st.failures) {
    std::printf("  FAILED: %s\n", f.c_str());
  }
  std::printf(
      "%s: sim load: %u connections, %llu requests in %.2f simulated s (%.0f req/s), p50 %.1f "
      "us, p99 %.1f us, errors %llu\n",
      prog, cfg.connections, static_cast<unsigned long long>(r.requests), secs,
      static_cast<double>(r.requests) / secs, static_cast<double>(r.latency.percentile(0.5)) / 1e3,
      static_cast<double>(r.latency.percentile(0.99)) / 1e3,
      static_cast<unsigned long long>(r.connect_errors + r.io_errors + r.status_errors));
  std::printf("%s\n", http::counters_json().c_str());
  http::set_stats_source(nullptr, nullptr);
  const bool ok = st.failures.empty() && r.requests > 0 && r.io_errors + r.status_errors == 0;
  return ok ? 0 : 1;
}

void usage() {
  std::printf(
      "usage: http_server [--backend sim|tap|dpdk|pcap|kernel] [--port N] [options]\n"
      "  An HTTP/1.1 server (Boost.Beast, C++20 coroutines; keep-alive and pipelining) with\n"
      "  routes /  /echo (POST: the body back)  /bytes/N (N <= 64 MiB bytes, else 400)\n"
      "  /stats (JSON counters). Stops gracefully at --max-seconds or SIGINT/SIGTERM and\n"
      "  prints its counters as one JSON line.\n"
      "%s",
      common_usage());
}

}  // namespace

int main(int argc, char** argv) {
  backend_options o;
  o.port = 8080;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    const int r = parse_common(prog, argc, argv, i, o);
    if (r == 2) {
      return 2;
    }
    if (r == 0) {
      return bad_argument(prog, "unknown argument '" + a + "'");
    }
  }
  if (const int r = finish_common(prog, o, true); r != 0) {
    return r;
  }
  try {
    switch (o.backend) {
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
