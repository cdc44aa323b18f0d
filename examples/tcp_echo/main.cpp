// tcp_echo: our TCP on a TAP device, as an echo server (--port) or a client that streams seeded
// bytes and verifies their echo (--connect). A plain driver loop -- the Asio runtime replaces it
// later:
//   rx_burst -> stack.receive -> advance -> poll_events -> application -> drain_tx -> tx_burst
// and, when a round moved nothing, sleep on the TAP descriptor until the next timer (the idle
// back-off: an idle echo server uses no CPU).
//
// Faults (--delay, --reorder, --duplicate, --loss) come from sim::fault_device wrapped around the
// TAP device: it is device-generic and lives in the simulator library, which this example links
// (a static library: only the fault model's objects come along, none of the simulator's network).
#include <poll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "dpdk_net/os.hpp"
#include "dpdk_net/sim/fault_device.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/tap/tap_device.hpp"
#include "echo_app.hpp"
#include "options.hpp"
#include "stats.hpp"

namespace {

using namespace dpdk_net;
std::atomic<bool> g_stop{false};

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

/// Frames the device refused (TAP full) wait here for the next round: TCP's segments are not
/// dropped on the way out by us.
struct tx_backlog {
  std::array<packet, max_burst> frames;
  std::size_t count = 0;
};

/// Offers frames[0..n) to the device; what it refuses goes to the backlog. Returns frames sent.
std::size_t transmit(device& dev, std::span<packet> frames, tx_backlog& backlog) {
  const std::size_t sent = dev.tx_burst(0, frames);
  for (std::size_t i = sent; i < frames.size(); ++i) {
    backlog.frames[backlog.count++] = std::move(frames[i]);
  }
  return sent;
}

}  // namespace

int main(int argc, char** argv) {
  tcp_echo::options opt;
  if (const int r = tcp_echo::parse_options(argc, argv, opt); r != 0) {
    return r < 0 ? 0 : r;
  }
  std::string error;
  tap::tap_config tc;
  tc.name = opt.iface;
  // Receive windows of many connections (256 KiB each by default) may hold received frames, and
  // the fault model holds delayed ones: more buffers than udp_echo needs.
  tc.pool_size = 16384;
  auto tap_dev = tap::tap_device::open(tc, error);
  if (!tap_dev) {
    std::fprintf(stderr, "tcp_echo: %s\n", error.c_str());
    return 1;
  }
  if (opt.kernel_ip &&
      !tap_dev->configure_kernel_side(tap::kernel_side{*opt.kernel_ip, opt.prefix, true}, error)) {
    std::fprintf(stderr, "tcp_echo: %s\n", error.c_str());
    return 1;
  }
  std::unique_ptr<sim::fault_device> faulty;
  if (opt.faults.any()) {
    const sim::link_config link = fault_link(opt.faults);
    faulty = std::make_unique<sim::fault_device>(
        *tap_dev, [] { return monotonic_now(); }, opt.seed, link, link);
  }
  device& dev = faulty ? static_cast<device&>(*faulty) : *tap_dev;

  stack::stack_secret secret;
  if (fill_random(std::as_writable_bytes(std::span(&secret, 1)))) {
    std::fprintf(stderr, "tcp_echo: getrandom failed\n");
    return 1;
  }
  stack::stack_config sc;
  sc.mac = dev.info().mac;
  sc.address = opt.address;
  sc.prefix_length = opt.prefix;
  sc.gateway = opt.gateway;
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
  time_ns now = monotonic_now();
  stack::stack net(sc, dev.tx_pool(0), secret, now);
  stack::tcp_layer& tcp = net.tcp();

  std::unique_ptr<tcp_echo::echo_server> server;
  std::unique_ptr<tcp_echo::echo_client> client;
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  net.start(now);
  if (opt.connect) {
    client = std::make_unique<tcp_echo::echo_client>(
        tcp, tcp_echo::client_config{*opt.connect, opt.port, opt.bytes, opt.connections, opt.seed,
                                     opt.no_delay});
    if (const auto e = client->start(now)) {
      std::fprintf(stderr, "tcp_echo: connect %s:%u: %s\n",
                   opt.connect->address.to_string().c_str(), opt.connect->port,
                   e.message().c_str());
      return 1;
    }
  } else if (opt.no_accept) {
    // A listener nobody accepts from: handshakes fill its accept queue, which must stay bounded
    // by the backlog (the rest wait in the SYN queue or are dropped, counted).
    stack::tcp_layer::socket_id listener = stack::tcp_layer::invalid_socket;
    std::error_code e = tcp.open(listener);
    if (!e) {
      e = tcp.bind(listener, opt.port);
    }
    if (!e) {
      e = tcp.listen(listener, opt.backlog.value_or(1024));
    }
    if (e) {
      std::fprintf(stderr, "tcp_echo: listen on port %u: %s\n", opt.port, e.message().c_str());
      return 1;
    }
    std::printf("tcp_echo: %s/%u on %s (%s), listening on TCP port %u, never accepting\n",
                opt.address.to_string().c_str(), opt.prefix, opt.iface.c_str(),
                dev.info().mac.to_string().c_str(), opt.port);
    std::fflush(stdout);
  } else {
    server = std::make_unique<tcp_echo::echo_server>(tcp, opt.port, opt.no_delay);
    if (const auto e = server->start()) {
      std::fprintf(stderr, "tcp_echo: listen on port %u: %s\n", opt.port, e.message().c_str());
      return 1;
    }
    std::printf("tcp_echo: %s/%u on %s (%s), echoing TCP port %u\n",
                opt.address.to_string().c_str(), opt.prefix, opt.iface.c_str(),
                dev.info().mac.to_string().c_str(), opt.port);
    std::fflush(stdout);
  }

  const time_ns start = now;
  const time_ns end =
      opt.max_seconds > 0 ? now + static_cast<time_ns>(opt.max_seconds * 1e9) : UINT64_MAX;
  time_ns client_done_at = 0;
  std::size_t connections_peak = 0;
  std::array<packet, max_burst> burst;
  std::array<stack::socket_event, 256> events;
  tx_backlog backlog;
  const int fd = dev.rx_wait_handle(0).fd;
  while (!g_stop && now < end) {
    bool busy = false;
    const std::size_t n = dev.rx_burst(0, burst);
    for (std::size_t i = 0; i < n; ++i) {
      net.receive(std::move(burst[i]), now);
    }
    busy = n != 0;
    net.advance(now);
    for (std::size_t k = 0; (k = net.poll_events(events)) != 0;) {
      busy = true;
      for (std::size_t i = 0; i < k; ++i) {
        if (events[i].protocol != wire::ip_protocol::tcp) {
          continue;
        }
        if (client) {
          client->on_event(events[i], now);
        } else if (server) {
          server->on_event(events[i], now);
        }  // else --no-accept: the listener's events are ignored on purpose
      }
    }
    // Output: what the device refused last round first, then the stack's new segments.
    if (backlog.count != 0) {
      tx_backlog retry;
      std::swap(retry, backlog);
      busy = transmit(dev, std::span(retry.frames.data(), retry.count), backlog) != 0 || busy;
    }
    while (backlog.count == 0) {
      const std::size_t out = net.drain_tx(burst, now);
      if (out == 0) {
        break;
      }
      busy = true;
      transmit(dev, std::span(burst.data(), out), backlog);
    }
    connections_peak = std::max(connections_peak, tcp.connections());
    if (client && client->done()) {
      // Linger a little so our FINs and last ACKs leave, then stop.
      if (client_done_at == 0) {
        client_done_at = now;
      }
      if (tcp.connections() == 0 || now - client_done_at > 500 * millisecond) {
        break;
      }
    }
    if (!busy) {
      // Idle back-off: sleep on the descriptor until the next timer; a short nap while frames
      // are held by the fault model or refused by the device (nothing would wake us for them).
      time_ns wait = std::min({net.next_deadline(), tcp.retry_deadline(), end});
      wait = wait > now ? wait - now : 0;
      wait = std::min<time_ns>(wait, 100 * millisecond);
      if ((faulty && faulty->held() != 0) || backlog.count != 0) {
        wait = std::min<time_ns>(wait, 200 * microsecond);
      }
      if (wait != 0) {
        const timespec ts{static_cast<time_t>(wait / second), static_cast<long>(wait % second)};
        pollfd pfd{fd, POLLIN, 0};
        ::ppoll(&pfd, 1, &ts, nullptr);
      }
    }
    now = monotonic_now();
  }
  free_burst(std::span(backlog.frames.data(), backlog.count));

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
  tcp_echo::run_stats stats{net.counters(),    tcp.counters(),        app,     dev.stats(),
                            tcp.connections(), tcp.time_wait_count(), nullptr, nullptr};
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
