// tcp_echo: our TCP on a TAP device, a DPDK port (--backend dpdk) or an existing interface through
// libpcap (--backend pcap; --capture FILE records every frame), as an echo server (--port)
// or a client that streams seeded bytes and verifies their echo (--connect): coroutines on our
// Asio sockets (echo_app.*), run by the one-worker runtime (which sleeps on the TAP descriptor
// when idle: an idle echo server uses no CPU). A server with --cores naming several cores runs on
// a multi_runtime over a multi-queue TAP or DPDK port: one worker per core, each with its own
// echo_server (listener and accept loop); on dpdk a client too (each worker its share of the
// connections: both ends of a memif need the same number of queues).
//
// Faults (--delay, --reorder, --duplicate, --loss) come from sim::fault_device wrapped around the
// TAP device: it is device-generic and lives in the simulator library, which this example links
// (a static library: only the fault model's objects come along, none of the simulator's network).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "dpdk_backend.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/os.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "dpdk_net/runtime/runtime.hpp"
#include "dpdk_net/sim/fault_device.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/tap/tap_device.hpp"
#include "echo_app.hpp"
#include "options.hpp"
#include "stats.hpp"

namespace {

using namespace dpdk_net;
namespace net = boost::asio;
std::atomic<runtime*> g_runtime{nullptr};
std::atomic<bool> g_signalled{false};

sim::link_config fault_link(const tcp_echo::fault_options& f) {
  sim::link_config c;
  c.delay = static_cast<time_ns>(f.delay_ms * 1e6);
  c.reorder = f.reorder_percent / 100;
  c.reorder_delay = static_cast<time_ns>(f.reorder_delay_ms * 1e6);
  c.duplicate = f.duplicate_percent / 100;
  c.loss = f.loss_percent / 100;
  c.queue_limit = 1 << 16;  // no serialization (bandwidth 0): the limit never applies
  return c;
}

/// Every millisecond: samples the connections in a slot (what the SYN and accept queues bound)
/// and, once the client is done, lingers until its connections are gone (at most 500 ms) so our
/// FINs and last ACKs leave, then stops the runtime.
struct supervisor {
  runtime* rt;
  const tcp_echo::echo_client* client;
  std::size_t* peak;
  /// A worker of several: once its client is done and lingered, count it here instead of
  /// stopping (the other workers go on; the main thread stops them all).
  std::atomic<std::size_t>* finished = nullptr;
};

net::awaitable<void> supervise(supervisor s) {
  steady_timer tick(co_await net::this_coro::executor);
  time_ns done_at = 0;
  for (;;) {
    *s.peak = std::max(*s.peak, s.rt->ip().tcp().connections());
    if (s.client != nullptr && s.client->done()) {
      const time_ns now = s.rt->context().now();
      done_at = done_at == 0 ? now : done_at;
      if (s.rt->ip().tcp().connections() == 0 || now - done_at > 500 * millisecond) {
        if (s.finished != nullptr) {
          s.finished->fetch_add(1, std::memory_order_release);
        } else {
          s.rt->stop();
        }
        co_return;
      }
    }
    tick.expires_after(std::chrono::milliseconds(1));
    co_await tick.async_wait(net::use_awaitable);
  }
}

/// Several workers (--cores): a server (one echo_server per worker, all on the port) or, on
/// dpdk, a client (connection i on worker i % workers); the counters are summed after the
/// workers have stopped (and listed per worker).
int run_multi(const tcp_echo::options& opt, device& dev, const stack::stack_config& sc,
              const multi_runtime_options& mo, const std::string& where) {
  multi_runtime rt(dev, sc, mo);
  const std::size_t n = rt.size();
  std::vector<std::unique_ptr<tcp_echo::echo_server>> servers;
  std::vector<std::unique_ptr<tcp_echo::echo_client>> clients;
  std::vector<std::size_t> peaks(n, 0);
  std::atomic<std::size_t> finished{0};
  const std::uint32_t backlog = opt.backlog.value_or(1024);
  for (std::size_t i = 0; i < n; ++i) {
    if (opt.connect) {
      // Worker i runs every n-th connection (as many as fall to it), its streams seeded apart
      // from the other workers' (seed + i * 1000003 + k for its k-th).
      const auto count = static_cast<unsigned>((opt.connections + n - 1 - i) / n);
      clients.push_back(std::make_unique<tcp_echo::echo_client>(
          rt.get_executor(i),
          tcp_echo::client_config{
              tcp::endpoint(net::ip::address_v4(opt.connect->address.value), opt.connect->port), 0,
              opt.bytes, count, opt.seed + i * 1000003ULL, opt.no_delay}));
      if (count != 0) {
        clients[i]->start();
      }
    } else {
      servers.push_back(
          std::make_unique<tcp_echo::echo_server>(rt.get_executor(i), opt.port, opt.no_delay));
      if (const auto e =
              opt.no_accept ? servers[i]->listen_only(backlog) : servers[i]->start(backlog)) {
        std::fprintf(stderr, "tcp_echo: listen on port %u (worker %zu): %s\n", opt.port, i,
                     e.message().c_str());
        return 1;
      }
    }
    net::co_spawn(rt.get_executor(i),
                  supervise(supervisor{&rt.worker(i), opt.connect ? clients[i].get() : nullptr,
                                       &peaks[i], opt.connect ? &finished : nullptr}),
                  net::detached);
  }
  std::signal(SIGINT, [](int) { g_signalled = true; });
  std::signal(SIGTERM, [](int) { g_signalled = true; });
  const time_ns start = monotonic_now();
  rt.start();
  examples::announce_workers("tcp_echo", rt);
  if (!opt.connect) {
    std::printf("tcp_echo: %s/%u on %s (%s), %s TCP port %u%s, %zu workers\n",
                opt.address.to_string().c_str(), opt.prefix, where.c_str(),
                dev.info().mac.to_string().c_str(), opt.no_accept ? "listening on" : "echoing",
                opt.port, opt.no_accept ? ", never accepting" : "", n);
    std::fflush(stdout);
  }
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::duration<double>(opt.max_seconds > 0 ? opt.max_seconds : 1e9);
  while (!g_signalled && std::chrono::steady_clock::now() < end &&
         !(opt.connect && finished.load(std::memory_order_acquire) == n)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  rt.stop();
  rt.join();
  const time_ns now = monotonic_now();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  tcp_echo::run_stats stats{{}, {}, {}, dev.stats(), 0, 0, nullptr, nullptr};
  const std::vector<worker_stats> ws = rt.stats();
  const auto affinity = rt.worker_affinity();
  int status = 0;
  for (std::size_t i = 0; i < n; ++i) {
    stack::stack& ip = rt.worker(i).ip();
    examples::add_counters(stats.stack, ip.counters());
    examples::add_counters(stats.tcp, ip.tcp().counters());
    const tcp_echo::app_counters& a = opt.connect ? clients[i]->counters() : servers[i]->counters();
    stats.app.accepted += a.accepted;
    stats.app.completed += a.completed;
    stats.app.failed += a.failed;
    stats.app.bytes_echoed += a.bytes_echoed;
    stats.app.streams_intact += a.streams_intact;
    stats.app.bytes_verified += a.bytes_verified;
    stats.connections += ip.tcp().connections();
    stats.time_wait += ip.tcp().time_wait_count();
    stats.connections_peak += peaks[i];
    stats.workers += std::string(i == 0 ? "[{" : ",{") +
                     examples::worker_json(i, ws[i], affinity[i]) +
                     ",\"accepted\":" + std::to_string(a.accepted) +
                     ",\"bytes_echoed\":" + std::to_string(a.bytes_echoed) +
                     ",\"bytes_verified\":" + std::to_string(a.bytes_verified) + "}";
    if (opt.connect && !clients[i]->all_intact()) {
      status = 1;
      for (const std::string& f : clients[i]->failures()) {
        std::fprintf(stderr, "tcp_echo: worker %zu: %s\n", i, f.c_str());
      }
    }
  }
  stats.workers += "]";
  if (opt.connect) {
    const double secs = static_cast<double>(now - start) / 1e9;
    if (status == 0) {
      std::fprintf(stderr,
                   "tcp_echo: %u connection(s) x %llu bytes echoed intact in %.3f s (%.1f MB/s), "
                   "%zu workers\n",
                   opt.connections, static_cast<unsigned long long>(opt.bytes), secs,
                   static_cast<double>(stats.app.bytes_verified) / 1e6 / (secs > 0 ? secs : 1), n);
    } else {
      std::fprintf(stderr,
                   "tcp_echo: stopped before every echo was complete (%llu bytes verified)\n",
                   static_cast<unsigned long long>(stats.app.bytes_verified));
    }
  }
  if (!tcp_echo::write_stats(stats, opt.stats_path)) {
    std::fprintf(stderr, "tcp_echo: cannot write --stats %s\n", opt.stats_path.c_str());
    return 1;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  tcp_echo::options opt;
  if (const int r = tcp_echo::parse_options(argc, argv, opt); r != 0) {
    return r < 0 ? 0 : r;
  }
  std::string error;
  if (!opt.workers.multi() && !examples::pin_single_worker("tcp_echo", opt.workers)) {
    return 1;
  }
  // The device: a TAP interface, or a DPDK port (which lives until the runtime is gone: its
  // destructor closes the port, then the EAL).
  std::unique_ptr<tap::tap_device> tap_dev;
  std::unique_ptr<examples::dpdk_port> port;
  std::optional<examples::pcap_backend> pc;
  stack::stack_config sc;
  if (opt.backend == "pcap") {
    pc = examples::open_pcap_backend("tcp_echo", opt.iface, opt.address, opt.prefix, opt.gateway);
    if (!pc) {
      return 1;
    }
    sc = pc->config;
  } else if (opt.backend == "dpdk") {
    port = examples::dpdk_port::open(
        "tcp_echo", opt.dpdk, opt.workers,
        examples::dpdk_stack_config(opt.address, opt.prefix, opt.gateway));
    if (!port) {
      return 1;
    }
    std::printf("tcp_echo: %s\n", port->describe().c_str());
    std::fflush(stdout);
    sc = port->config();
    if (opt.connect && !port->wait_for_link("tcp_echo", 10)) {
      return 1;
    }
  } else {
    tap::tap_config tc;
    tc.name = opt.iface;
    tc.queues = opt.workers.workers;  // one per worker (several: IFF_MULTI_QUEUE)
    // Receive windows of many connections (256 KiB each by default) may hold received frames,
    // and the fault model holds delayed ones: more buffers than udp_echo needs.
    tc.pool_size = 16384;
    tap_dev = tap::tap_device::open(tc, error);
    if (!tap_dev) {
      std::fprintf(stderr, "tcp_echo: %s\n", error.c_str());
      return 1;
    }
    if (opt.kernel_ip && !tap_dev->configure_kernel_side(
                             tap::kernel_side{*opt.kernel_ip, opt.prefix, true}, error)) {
      std::fprintf(stderr, "tcp_echo: %s\n", error.c_str());
      return 1;
    }
    sc.mac = tap_dev->info().mac;
    sc.address = opt.address;
    sc.prefix_length = opt.prefix;
    sc.gateway = opt.gateway;
  }
  device& inner = port ? port->dev() : pc ? *pc->dev : *tap_dev;
  const std::string where = port ? port->name() : opt.iface;
  examples::device_capture capture;  // --capture: closed after the runtime is gone
  if (!capture.open("tcp_echo", opt.capture, inner)) {
    return 1;
  }
  device& base_dev = capture.dev();
  std::unique_ptr<sim::fault_device> faulty;
  if (opt.faults.any()) {
    const sim::link_config link = fault_link(opt.faults);
    faulty = std::make_unique<sim::fault_device>(
        base_dev, [] { return monotonic_now(); }, opt.seed, link, link);
  }
  device& dev = faulty ? static_cast<device&>(*faulty) : base_dev;
  if (opt.syn_queue) {
    sc.tcp.syn_queue = *opt.syn_queue;
  }
  if (opt.backlog) {
    // listen() clamps its backlog to max_backlog: this lowers the echo server's 1024 without
    // the application knowing.
    sc.tcp.max_backlog = *opt.backlog;
  }
  if (const std::string bad = stack::validate(sc, dev.info().mtu); !bad.empty()) {
    std::fprintf(stderr, "tcp_echo: %s\n", bad.c_str());
    return 2;
  }
  if (opt.workers.multi()) {
    return run_multi(opt, base_dev, sc,
                     port ? examples::dpdk_port::multi_options(opt.workers)
                          : examples::multi_options(opt.workers),
                     where);
  }
  runtime_options ro;
  if (faulty) {
    // Frames the fault model holds back are due at times no descriptor announces: wake often.
    ro.max_fd_wait = 200 * microsecond;
  }
  runtime rt(dev, sc, ro);
  const auto ex = rt.get_executor();
  g_runtime = &rt;
  std::signal(SIGINT, [](int) { g_runtime.load()->stop(); });
  std::signal(SIGTERM, [](int) { g_runtime.load()->stop(); });

  std::unique_ptr<tcp_echo::echo_server> server;
  std::unique_ptr<tcp_echo::echo_client> client;
  if (opt.connect) {
    client = std::make_unique<tcp_echo::echo_client>(
        ex, tcp_echo::client_config{
                tcp::endpoint(net::ip::address_v4(opt.connect->address.value), opt.connect->port),
                opt.port, opt.bytes, opt.connections, opt.seed, opt.no_delay});
    client->start();
  } else {
    server = std::make_unique<tcp_echo::echo_server>(ex, opt.port, opt.no_delay);
    const std::uint32_t backlog = opt.backlog.value_or(1024);
    // --no-accept: a listener nobody accepts from: handshakes fill its accept queue, which must
    // stay bounded by the backlog (the rest wait in the SYN queue or are dropped, counted).
    if (const auto e = opt.no_accept ? server->listen_only(backlog) : server->start(backlog)) {
      std::fprintf(stderr, "tcp_echo: listen on port %u: %s\n", opt.port, e.message().c_str());
      return 1;
    }
    std::printf("tcp_echo: %s/%u on %s (%s), %s TCP port %u%s\n", opt.address.to_string().c_str(),
                opt.prefix, where.c_str(), dev.info().mac.to_string().c_str(),
                opt.no_accept ? "listening on" : "echoing", opt.port,
                opt.no_accept ? ", never accepting" : "");
    std::fflush(stdout);
  }

  const time_ns start = monotonic_now();
  std::size_t connections_peak = 0;
  net::co_spawn(ex, supervise(supervisor{&rt, client.get(), &connections_peak}), net::detached);
  rt.run_for(opt.max_seconds > 0 ? static_cast<time_ns>(opt.max_seconds * 1e9) : UINT64_MAX);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  g_runtime = nullptr;
  const time_ns now = monotonic_now();
  stack::stack& net_stack = rt.ip();
  stack::tcp_layer& tcp = net_stack.tcp();

  int status = 0;
  tcp_echo::app_counters app;
  if (client) {
    app = client->counters();
    const double secs = static_cast<double>(now - start) / 1e9;
    if (client->all_intact()) {
      std::fprintf(stderr,
                   "tcp_echo: %u connection(s) x %llu bytes echoed intact in %.3f s (%.1f MB/s)\n",
                   opt.connections, static_cast<unsigned long long>(opt.bytes), secs,
                   static_cast<double>(app.bytes_verified) / 1e6 / (secs > 0 ? secs : 1));
    } else {
      status = 1;
      for (const std::string& f : client->failures()) {
        std::fprintf(stderr, "tcp_echo: %s\n", f.c_str());
      }
      if (!client->done()) {
        std::fprintf(stderr,
                     "tcp_echo: stopped before every echo was complete (%llu bytes "
                     "verified)\n",
                     static_cast<unsigned long long>(app.bytes_verified));
      }
    }
  } else if (server) {
    app = server->counters();
  }
  tcp_echo::run_stats stats{net_stack.counters(), tcp.counters(),        app,     dev.stats(),
                            tcp.connections(),    tcp.time_wait_count(), nullptr, nullptr};
  stats.connections_peak = connections_peak;
  if (faulty) {
    stats.fault_rx = &faulty->rx_model().counters();
    stats.fault_tx = &faulty->tx_model().counters();
  }
  if (!tcp_echo::write_stats(stats, opt.stats_path)) {
    std::fprintf(stderr, "tcp_echo: cannot write --stats %s\n", opt.stats_path.c_str());
    return 1;
  }
  return status;
}
