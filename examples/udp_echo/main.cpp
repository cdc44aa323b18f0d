// udp_echo: our IPv4 stack on a TAP device, a DPDK port (--backend dpdk) or an existing interface
// through libpcap (--backend pcap), echoing UDP datagrams and answering pings (--capture FILE:
// every frame as pcapng): a coroutine on dpdk_net::udp::socket, run by the one-worker
// runtime (which sleeps on the TAP descriptor until a frame or the next timer). With --cores
// naming several cores: a multi_runtime over a multi-queue TAP or DPDK port, a socket bound to
// the port on every worker (a datagram goes to the worker its flow's hash picks; pings are
// answered where they land).
//
// Client mode (--connect ADDR:PORT, what tests another udp_echo over a memif with): sends --count
// datagrams of --size bytes, one at a time, each numbered and filled from its number, and checks
// every echo byte for byte (a lost datagram or echo is sent again, up to 5 times, after 200 ms).
// Several workers (dpdk): each sends its share from a socket of its own.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cores.hpp"
#include "dpdk_backend.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/udp.hpp"
#include "dpdk_net/os.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "dpdk_net/runtime/runtime.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/tap/tap_device.hpp"
#include "options.hpp"
#include "pcap_backend.hpp"

namespace {

using namespace dpdk_net;
namespace net = boost::asio;
using udp_echo::echo_options;

udp::endpoint endpoint_of(const udp_echo::udp_target& t) {
  return {net::ip::address_v4(t.address.value), t.port};
}
std::atomic<runtime*> g_runtime{nullptr};
std::atomic<bool> g_signalled{false};

/// Echoes every datagram back to its sender until the socket is closed.
net::awaitable<void> echo(udp::socket* socket) {
  std::array<std::byte, 65536> payload;  // a reassembled datagram may be up to 65507 bytes
  udp::endpoint from;
  for (;;) {
    auto [ec, n] = co_await socket->async_receive_from(net::buffer(payload), from,
                                                       net::as_tuple(net::use_awaitable));
    if (ec == net::error::operation_aborted) {
      co_return;
    }
    if (!ec) {
      // A refused send (no buffer, no route) is counted by the stack; the echo goes on.
      co_await socket->async_send_to(net::buffer(payload.data(), n), from,
                                     net::as_tuple(net::use_awaitable));
    }
  }
}

/// What a client sent and got back.
struct client_counters {
  std::uint64_t sent = 0;     ///< datagrams sent (resends included)
  std::uint64_t echoed = 0;   ///< datagrams whose echo came back intact
  std::uint64_t lost = 0;     ///< datagrams whose echo never came (after every resend)
  std::uint64_t resends = 0;  ///< datagrams sent again after 200 ms without their echo
  std::uint64_t corrupt = 0;  ///< echoes that differ from what was sent
  std::uint64_t stale = 0;    ///< late echoes of an earlier send (ignored)
  /// The receive timeout's generation (here, not in the coroutine: a timeout handler already
  /// queued when the coroutine ends still reads it).
  std::uint64_t generation = 0;
};

/// Byte j of datagram k: its number in the first 8 bytes, then a pattern of both.
void fill_datagram(std::uint64_t k, std::span<std::byte> out) {
  for (std::size_t j = 0; j < out.size(); ++j) {
    out[j] = j < 8 ? static_cast<std::byte>(k >> (8 * j))
                   : static_cast<std::byte>((k * 131 + j * 7 + (j >> 8)) & 0xffU);
  }
}

std::uint64_t datagram_number(std::span<const std::byte> in) {
  std::uint64_t k = 0;
  for (std::size_t j = 0; j < 8 && j < in.size(); ++j) {
    k |= static_cast<std::uint64_t>(in[j]) << (8 * j);
  }
  return k;
}

/// The receive timeout: cancels the socket's receive unless a later wait replaced this one.
struct receive_timeout {
  udp::socket* socket;
  const std::uint64_t* generation;
  std::uint64_t mine;
  void operator()(const boost::system::error_code& ec) const {
    if (!ec && *generation == mine) {
      socket->cancel();
    }
  }
};

/// One client socket: datagrams first .. first + count - 1, one at a time. At the end: `done`
/// counts it (several workers) or `stop` stops its runtime (one).
struct client_job {
  udp::socket* socket;
  udp::endpoint target;
  std::uint64_t first;
  std::uint64_t count;
  std::size_t size;
  client_counters* counters;
  std::atomic<std::size_t>* done;
  runtime* stop;
};

net::awaitable<void> run_client(client_job job) {
  steady_timer timer(co_await net::this_coro::executor);
  std::vector<std::byte> out(job.size);
  std::vector<std::byte> in(65536);
  client_counters& c = *job.counters;
  std::uint64_t& generation = c.generation;
  for (std::uint64_t k = job.first; k < job.first + job.count; ++k) {
    fill_datagram(k, out);
    bool intact = false;
    for (int attempt = 0; attempt < 6 && !intact; ++attempt) {
      c.resends += attempt == 0 ? 0 : 1;
      ++c.sent;
      co_await job.socket->async_send_to(net::buffer(out), job.target,
                                         net::as_tuple(net::use_awaitable));
      timer.expires_after(std::chrono::milliseconds(200));
      timer.async_wait(receive_timeout{job.socket, &generation, ++generation});
      for (;;) {
        udp::endpoint from;
        auto [ec, n] = co_await job.socket->async_receive_from(net::buffer(in), from,
                                                               net::as_tuple(net::use_awaitable));
        if (ec) {
          break;  // the timeout: send again
        }
        const std::span<const std::byte> got(in.data(), n);
        if (n >= 8 && datagram_number(got) < k) {
          ++c.stale;  // the echo of a send we gave up waiting for
          continue;
        }
        intact = n == out.size() && std::equal(out.begin(), out.end(), in.begin());
        c.corrupt += intact ? 0 : 1;
        break;
      }
      ++generation;  // a timeout still queued cancels nothing now
      timer.cancel();
    }
    ++(intact ? c.echoed : c.lost);
  }
  job.socket->close();
  if (job.done != nullptr) {
    job.done->fetch_add(1, std::memory_order_release);
  }
  if (job.stop != nullptr) {
    job.stop->stop();
  }
}

/// The stack's counters as one JSON line (what the tests read), malformed frames by reason;
/// `workers` (several workers): a JSON array, one object per worker.
void print_counters(const stack::stack_counters& c, const std::string& workers = {},
                    const std::string& client = {}) {
  std::string json = "{";
  auto field = [&json](const char* name, std::uint64_t v) {
    json += "\"" + std::string(name) + "\": " + std::to_string(v) + ", ";
  };
  field("frames_in", c.frames_in);
  field("frames_out", c.frames_out);
  field("icmp_echo_replies", c.icmp_echo_replies);
  field("udp_delivered", c.udp_delivered);
  field("udp_sent", c.udp_sent);
  field("udp_no_port", c.udp_no_port);
  field("icmp_errors_sent", c.icmp_errors_sent);
  field("icmp_errors_suppressed", c.icmp_errors_suppressed);
  field("ip_not_for_us", c.ip_not_for_us);
  field("ip_martian_source", c.ip_martian_source);
  field("ip_fragments_dropped", c.ip_fragments_dropped);
  field("reassembled", c.reassembly.reassembled);
  field("reassembly_overlaps", c.reassembly.overlaps);
  field("reassembly_evicted", c.reassembly.evicted);
  field("fragments_sent", c.ip_fragments_sent);
  field("pmtu_lowered", c.pmtu_lowered);
  field("pmtu_ignored", c.pmtu_ignored);
  field("arp_replies_sent", c.arp.replies_sent);
  field("arp_malformed", c.arp.malformed);
  std::uint64_t total = 0;
  std::string by_reason;
  for (std::size_t i = 1; i < c.malformed.size(); ++i) {
    if (c.malformed[i] != 0) {
      total += c.malformed[i];
      by_reason += std::string(by_reason.empty() ? "" : ", ") + "\"" +
                   wire::to_string(static_cast<wire::wire_error>(i)) +
                   "\": " + std::to_string(c.malformed[i]);
    }
  }
  field("malformed", total);
  json += "\"malformed_by_reason\": {" + by_reason + "}";
  json += client.empty() ? "" : ", \"client\": " + client;
  json += workers.empty() ? "}" : ", \"workers\": " + workers + "}";
  std::printf("%s\n", json.c_str());
}

std::string client_json(const client_counters& c) {
  const auto u = [](std::uint64_t v) { return std::to_string(v); };
  return "{\"sent\": " + u(c.sent) + ", \"echoed\": " + u(c.echoed) + ", \"lost\": " + u(c.lost) +
         ", \"resends\": " + u(c.resends) + ", \"corrupt\": " + u(c.corrupt) +
         ", \"stale\": " + u(c.stale) + "}";
}

/// The client's end: one line on stderr, the counters JSON on stdout; 0 if every echo was intact.
int finish_client(const echo_options& o, const client_counters& c, time_ns elapsed,
                  const stack::stack_counters& stack, const std::string& workers = {}) {
  const bool ok = c.echoed == o.count && c.corrupt == 0;
  std::fprintf(stderr, "udp_echo: %llu of %llu datagrams of %zu bytes echoed intact in %.3f s%s\n",
               static_cast<unsigned long long>(c.echoed), static_cast<unsigned long long>(o.count),
               o.size, static_cast<double>(elapsed) / 1e9, ok ? "" : " (FAILED)");
  print_counters(stack, workers, client_json(c));
  return ok ? 0 : 1;
}

/// Several workers (--cores): a socket bound to the port on each, one echo coroutine each (or,
/// client mode, each worker's share of the datagrams from a socket of its own); the stacks'
/// counters summed once the workers have stopped.
int run_multi(device& dev, const stack::stack_config& sc, const multi_runtime_options& mo,
              const echo_options& o, const std::string& where) {
  multi_runtime rt(dev, sc, mo);
  const std::size_t n = rt.size();
  std::vector<std::unique_ptr<udp::socket>> sockets;
  std::vector<client_counters> clients(n);
  std::atomic<std::size_t> done{0};
  for (std::size_t i = 0; i < n; ++i) {
    sockets.push_back(std::make_unique<udp::socket>(rt.get_executor(i)));
    boost::system::error_code ec;
    sockets[i]->bind(udp::endpoint(net::ip::address_v4::any(), o.connect ? 0 : o.port), ec);
    if (ec) {
      std::fprintf(stderr, "udp_echo: bind %u (worker %zu): %s\n", o.port, i, ec.message().c_str());
      return 1;
    }
    if (o.connect) {
      const std::uint64_t first = o.count * i / n;
      const std::uint64_t last = o.count * (i + 1) / n;
      net::co_spawn(rt.get_executor(i),
                    run_client(client_job{sockets[i].get(), endpoint_of(*o.connect), first,
                                          last - first, o.size, &clients[i], &done, nullptr}),
                    net::detached);
    } else {
      net::co_spawn(rt.get_executor(i), echo(sockets[i].get()), net::detached);
    }
  }
  std::signal(SIGINT, [](int) { g_signalled = true; });
  std::signal(SIGTERM, [](int) { g_signalled = true; });
  const time_ns start = monotonic_now();
  rt.start();
  examples::announce_workers("udp_echo", rt);
  if (!o.connect) {
    std::printf("udp_echo: %s on %s (%s), echoing UDP port %u, %zu workers\n", o.ip_text.c_str(),
                where.c_str(), dev.info().mac.to_string().c_str(), o.port, n);
    std::fflush(stdout);
  }
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::duration<double>(o.seconds > 0 ? o.seconds : 1e9);
  while (!g_signalled && std::chrono::steady_clock::now() < end &&
         !(o.connect && done.load(std::memory_order_acquire) == n)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  rt.stop();
  rt.join();
  const time_ns elapsed = monotonic_now() - start;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  stack::stack_counters sum{};
  client_counters total;
  std::string per_worker;
  const std::vector<worker_stats> ws = rt.stats();
  const auto affinity = rt.worker_affinity();
  for (std::size_t i = 0; i < n; ++i) {
    sockets[i]->close();
    const stack::stack_counters c = rt.worker(i).ip().counters();
    examples::add_counters(sum, c);
    per_worker += (i == 0 ? "[{" : ", {") + examples::worker_json(i, ws[i], affinity[i]) +
                  ",\"udp_delivered\":" + std::to_string(c.udp_delivered) +
                  ",\"icmp_echo_replies\":" + std::to_string(c.icmp_echo_replies) +
                  ",\"echoed\":" + std::to_string(clients[i].echoed) + "}";
    total.sent += clients[i].sent;
    total.echoed += clients[i].echoed;
    total.lost += clients[i].lost;
    total.resends += clients[i].resends;
    total.corrupt += clients[i].corrupt;
    total.stale += clients[i].stale;
  }
  if (o.connect) {
    return finish_client(o, total, elapsed, sum, per_worker + "]");
  }
  print_counters(sum, per_worker + "]");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  echo_options o;
  if (const int r = udp_echo::parse(argc, argv, o); r != 0) {
    return r < 0 ? 0 : r;
  }
  if (!o.workers.multi() && !examples::pin_single_worker("udp_echo", o.workers)) {
    return 1;
  }
  // The device: a TAP interface, or a DPDK port (which lives until the runtime is gone: its
  // destructor closes the port, then the EAL).
  std::string error;
  std::unique_ptr<tap::tap_device> tap_dev;
  std::unique_ptr<examples::dpdk_port> port;
  std::optional<examples::pcap_backend> pc;
  stack::stack_config sc;
  if (o.backend == "pcap") {
    pc = examples::open_pcap_backend("udp_echo", o.iface, o.address, o.prefix, {});
    if (!pc) {
      return 1;
    }
    sc = pc->config;
  } else if (o.backend == "dpdk") {
    port = examples::dpdk_port::open("udp_echo", o.dpdk, o.workers,
                                     examples::dpdk_stack_config(o.address, o.prefix, {}));
    if (!port) {
      return 1;
    }
    std::printf("udp_echo: %s\n", port->describe().c_str());
    std::fflush(stdout);
    sc = port->config();
    if (o.connect && !port->wait_for_link("udp_echo", 10)) {
      return 1;
    }
  } else {
    tap::tap_config tc;
    tc.name = o.iface;
    tc.queues = o.workers.workers;  // one per worker (several: IFF_MULTI_QUEUE)
    tap_dev = tap::tap_device::open(tc, error);
    if (!tap_dev) {
      std::fprintf(stderr, "udp_echo: %s\n", error.c_str());
      return 1;
    }
    if (o.kernel_ip &&
        !tap_dev->configure_kernel_side(tap::kernel_side{*o.kernel_ip, o.prefix, true}, error)) {
      std::fprintf(stderr, "udp_echo: %s\n", error.c_str());
      return 1;
    }
    sc.mac = tap_dev->info().mac;
    sc.address = o.address;
    sc.prefix_length = o.prefix;
    if (const std::string bad = stack::validate(sc, tap_dev->info().mtu); !bad.empty()) {
      std::fprintf(stderr, "udp_echo: --ip %s: %s\n", o.ip_text.c_str(), bad.c_str());
      return 2;
    }
  }
  device& inner = port ? port->dev() : pc ? *pc->dev : *tap_dev;
  const std::string where = port ? port->name() : o.iface;
  examples::device_capture capture;  // --capture: closed after the runtime is gone
  if (!capture.open("udp_echo", o.capture, inner)) {
    return 1;
  }
  device& dev = capture.dev();
  if (o.workers.multi()) {
    return run_multi(
        dev, sc,
        port ? examples::dpdk_port::multi_options(o.workers) : examples::multi_options(o.workers),
        o, where);
  }
  runtime rt(dev, sc);
  udp::socket socket(rt.get_executor());
  boost::system::error_code ec;
  socket.bind(udp::endpoint(net::ip::address_v4::any(), o.port), ec);
  if (ec) {
    std::fprintf(stderr, "udp_echo: bind %u: %s\n", o.port, ec.message().c_str());
    return 1;
  }
  g_runtime = &rt;
  std::signal(SIGINT, [](int) { g_runtime.load()->stop(); });
  std::signal(SIGTERM, [](int) { g_runtime.load()->stop(); });
  client_counters client;
  if (o.connect) {
    net::co_spawn(rt.get_executor(),
                  run_client(client_job{&socket, endpoint_of(*o.connect), 0, o.count, o.size,
                                        &client, nullptr, &rt}),
                  net::detached);
  } else {
    std::printf("udp_echo: %s on %s (%s), echoing UDP port %u\n", o.ip_text.c_str(), where.c_str(),
                dev.info().mac.to_string().c_str(), o.port);
    std::fflush(stdout);
    net::co_spawn(rt.get_executor(), echo(&socket), net::detached);
  }
  const time_ns start = monotonic_now();
  rt.run_for(o.seconds > 0 ? static_cast<time_ns>(o.seconds * 1e9) : UINT64_MAX);
  const time_ns elapsed = monotonic_now() - start;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  g_runtime = nullptr;
  socket.close();
  if (o.connect) {
    return finish_client(o, client, elapsed, rt.ip().counters());
  }
  print_counters(rt.ip().counters());
  return 0;
}
