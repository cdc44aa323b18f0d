// udp_echo: our IPv4 stack on a TAP device, echoing UDP datagrams and answering pings: a
// coroutine on dpdk_net::udp::socket, run by the one-worker runtime (which sleeps on the TAP
// descriptor until a frame or the next timer). With --cores naming several cores: a multi_runtime
// over a multi-queue TAP, a socket bound to the port on every worker (a datagram goes to the
// worker its flow's hash picks; pings are answered where they land).
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cores.hpp"
#include "dpdk_net/asio/udp.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "dpdk_net/runtime/runtime.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/tap/tap_device.hpp"

namespace {

using namespace dpdk_net;
namespace net = boost::asio;
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

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: udp_echo --backend tap --iface NAME --ip ADDR/PREFIX --port N\n"
               "                [--kernel-ip ADDR] [--seconds S] [--cores LIST] [--no-pin]\n"
               "  Creates TAP interface NAME and runs our stack on it at ADDR, echoing UDP on\n"
               "  port N and answering pings. --kernel-ip also configures the kernel's side of\n"
               "  the interface (else configure it yourself). Stops after S seconds (default:\n"
               "  on SIGINT/SIGTERM) and prints the stack's counters (several workers: summed).\n"
               "%s",
               dpdk_net::examples::cores_usage());
}

bool parse_cidr(std::string_view text, wire::ipv4_address& a, std::uint8_t& prefix) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return false;
  }
  const auto ip = wire::ipv4_address::parse(text.substr(0, slash));
  const std::string_view p = text.substr(slash + 1);
  if (!ip || p.empty() || p.size() > 2 ||
      p.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  const int n = std::stoi(std::string(p));
  if (n < 0 || n > 32) {
    return false;
  }
  a = *ip;
  prefix = static_cast<std::uint8_t>(n);
  return true;
}

/// The stack's counters as one JSON line (what the tests read), malformed frames by reason;
/// `workers` (several workers): a JSON array, one object per worker.
void print_counters(const stack::stack_counters& c, const std::string& workers = {}) {
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
  json += workers.empty() ? "}" : ", \"workers\": " + workers + "}";
  std::printf("%s\n", json.c_str());
}

/// Several workers (--cores): a socket bound to the port on each, one echo coroutine each; the
/// stacks' counters summed once the workers have stopped.
int run_multi(tap::tap_device& dev, const stack::stack_config& sc, std::uint16_t port,
              double seconds, const examples::worker_options& workers, const std::string& ip_text,
              const std::string& iface) {
  multi_runtime rt(dev, sc, examples::multi_options(workers));
  std::vector<std::unique_ptr<udp::socket>> sockets;
  for (std::size_t i = 0; i < rt.size(); ++i) {
    sockets.push_back(std::make_unique<udp::socket>(rt.get_executor(i)));
    boost::system::error_code ec;
    sockets[i]->bind(udp::endpoint(net::ip::address_v4::any(), port), ec);
    if (ec) {
      std::fprintf(stderr, "udp_echo: bind %u (worker %zu): %s\n", port, i, ec.message().c_str());
      return 1;
    }
    net::co_spawn(rt.get_executor(i), echo(sockets[i].get()), net::detached);
  }
  std::signal(SIGINT, [](int) { g_signalled = true; });
  std::signal(SIGTERM, [](int) { g_signalled = true; });
  rt.start();
  examples::announce_workers("udp_echo", rt);
  std::printf("udp_echo: %s on %s (%s), echoing UDP port %u, %zu workers\n", ip_text.c_str(),
              iface.c_str(), dev.info().mac.to_string().c_str(), port, rt.size());
  std::fflush(stdout);
  const auto end =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds > 0 ? seconds : 1e9);
  while (!g_signalled && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  rt.stop();
  rt.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  stack::stack_counters sum{};
  std::string per_worker;
  const std::vector<worker_stats> ws = rt.stats();
  const auto affinity = rt.worker_affinity();
  for (std::size_t i = 0; i < rt.size(); ++i) {
    sockets[i]->close();
    const stack::stack_counters c = rt.worker(i).ip().counters();
    examples::add_counters(sum, c);
    per_worker += (i == 0 ? "[{" : ", {") + examples::worker_json(i, ws[i], affinity[i]) +
                  ",\"udp_delivered\":" + std::to_string(c.udp_delivered) +
                  ",\"icmp_echo_replies\":" + std::to_string(c.icmp_echo_replies) + "}";
  }
  print_counters(sum, per_worker + "]");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend, iface, ip_text, kernel_ip_text;
  long port = -1;
  double seconds = 0;
  examples::worker_options workers;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    }
    if (a == "--no-pin") {
      workers.pin = false;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "udp_echo: %s needs a value (try --help)\n", argv[i]);
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--backend") {
      backend = v;
    } else if (a == "--iface") {
      iface = v;
    } else if (a == "--ip") {
      ip_text = v;
    } else if (a == "--kernel-ip") {
      kernel_ip_text = v;
    } else if (a == "--port") {
      port = v.find_first_not_of("0123456789") == std::string::npos && !v.empty() && v.size() < 6
                 ? std::stol(v)
                 : -1;
    } else if (a == "--seconds") {
      seconds = std::strtod(v.c_str(), nullptr);
    } else if (a == "--cores") {
      workers.text = v;
      workers.given = true;
    } else {
      std::fprintf(stderr, "udp_echo: unknown argument '%s' (try --help)\n", argv[i - 1]);
      return 2;
    }
  }
  wire::ipv4_address address;
  std::uint8_t prefix = 0;
  if (backend != "tap") {
    std::fprintf(stderr, "udp_echo: --backend must be tap (the only backend wired up so far)\n");
    return 2;
  }
  if (iface.empty() || !parse_cidr(ip_text, address, prefix) || port < 1 || port > 65535) {
    std::fprintf(stderr,
                 "udp_echo: need --iface NAME, --ip ADDR/PREFIX (0..32) and --port 1..65535\n");
    return 2;
  }
  std::optional<wire::ipv4_address> kernel_ip;
  if (!kernel_ip_text.empty() && !(kernel_ip = wire::ipv4_address::parse(kernel_ip_text))) {
    std::fprintf(stderr, "udp_echo: --kernel-ip needs an IPv4 address\n");
    return 2;
  }
  if (const std::string e = examples::resolve_workers(workers, false); !e.empty()) {
    std::fprintf(stderr, "udp_echo: %s (try --help)\n", e.c_str());
    return 2;
  }
  if (!workers.multi() && !examples::pin_single_worker("udp_echo", workers)) {
    return 1;
  }

  std::string error;
  tap::tap_config tc;
  tc.name = iface;
  tc.queues = workers.workers;  // one per worker (several: IFF_MULTI_QUEUE)
  auto dev = tap::tap_device::open(tc, error);
  if (!dev) {
    std::fprintf(stderr, "udp_echo: %s\n", error.c_str());
    return 1;
  }
  if (kernel_ip && !dev->configure_kernel_side(tap::kernel_side{*kernel_ip, prefix, true}, error)) {
    std::fprintf(stderr, "udp_echo: %s\n", error.c_str());
    return 1;
  }
  stack::stack_config sc;
  sc.mac = dev->info().mac;
  sc.address = address;
  sc.prefix_length = prefix;
  if (const std::string bad = stack::validate(sc, dev->info().mtu); !bad.empty()) {
    std::fprintf(stderr, "udp_echo: --ip %s: %s\n", ip_text.c_str(), bad.c_str());
    return 2;
  }
  if (workers.multi()) {
    return run_multi(*dev, sc, static_cast<std::uint16_t>(port), seconds, workers, ip_text, iface);
  }
  runtime rt(*dev, sc);
  udp::socket socket(rt.get_executor());
  boost::system::error_code ec;
  socket.bind(udp::endpoint(net::ip::address_v4::any(), static_cast<std::uint16_t>(port)), ec);
  if (ec) {
    std::fprintf(stderr, "udp_echo: bind %ld: %s\n", port, ec.message().c_str());
    return 1;
  }
  g_runtime = &rt;
  std::signal(SIGINT, [](int) { g_runtime.load()->stop(); });
  std::signal(SIGTERM, [](int) { g_runtime.load()->stop(); });
  std::printf("udp_echo: %s on %s (%s), echoing UDP port %ld\n", ip_text.c_str(), iface.c_str(),
              dev->info().mac.to_string().c_str(), port);
  std::fflush(stdout);
  net::co_spawn(rt.get_executor(), echo(&socket), net::detached);
  rt.run_for(seconds > 0 ? static_cast<time_ns>(seconds * 1e9) : UINT64_MAX);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  g_runtime = nullptr;
  socket.close();
  print_counters(rt.ip().counters());
  return 0;
}
