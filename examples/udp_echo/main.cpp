// udp_echo: our IPv4 stack on a TAP device, echoing UDP datagrams and answering pings. A tiny
// runner: wait on the TAP descriptor (or the next timer), feed frames and the time to the stack,
// echo what the socket received, flush the stack's frames to the device. The Asio runtime comes
// in its own issue.
#include <poll.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "dpdk_net/os.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/tap/tap_device.hpp"

namespace {

using namespace dpdk_net;
std::atomic<bool> g_stop{false};

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: udp_echo --backend tap --iface NAME --ip ADDR/PREFIX --port N\n"
               "                [--kernel-ip ADDR] [--seconds S]\n"
               "  Creates TAP interface NAME and runs our stack on it at ADDR, echoing UDP on\n"
               "  port N and answering pings. --kernel-ip also configures the kernel's side of\n"
               "  the interface (else configure it yourself). Stops after S seconds (default:\n"
               "  on SIGINT/SIGTERM) and prints the stack's counters.\n");
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

/// The stack's counters as one JSON line (what the tests read), malformed frames by reason.
void print_counters(const stack::stack_counters& c) {
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
  json += "\"malformed_by_reason\": {" + by_reason + "}}";
  std::printf("%s\n", json.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend, iface, ip_text, kernel_ip_text;
  long port = -1;
  double seconds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
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

  std::string error;
  tap::tap_config tc;
  tc.name = iface;
  auto dev = tap::tap_device::open(tc, error);
  if (!dev) {
    std::fprintf(stderr, "udp_echo: %s\n", error.c_str());
    return 1;
  }
  if (kernel_ip && !dev->configure_kernel_side(tap::kernel_side{*kernel_ip, prefix, true}, error)) {
    std::fprintf(stderr, "udp_echo: %s\n", error.c_str());
    return 1;
  }
  stack::stack_secret secret;
  if (fill_random(std::as_writable_bytes(std::span(&secret, 1)))) {
    std::fprintf(stderr, "udp_echo: getrandom failed\n");
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
  time_ns now = monotonic_now();
  stack::stack net(sc, dev->tx_pool(0), secret, now);
  stack::stack::socket_id sock = 0;
  if (const auto ec = net.udp_bind(static_cast<std::uint16_t>(port), sock)) {
    std::fprintf(stderr, "udp_echo: bind %ld: %s\n", port, ec.message().c_str());
    return 1;
  }
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  net.start(now);
  std::printf("udp_echo: %s on %s (%s), echoing UDP port %ld\n", ip_text.c_str(), iface.c_str(),
              dev->info().mac.to_string().c_str(), port);
  std::fflush(stdout);

  const time_ns end = seconds > 0 ? now + static_cast<time_ns>(seconds * 1e9) : UINT64_MAX;
  std::array<packet, max_burst> burst;
  static std::array<std::byte, 65536> payload;  // a reassembled datagram may span buffers
  while (!g_stop && now < end) {
    const time_ns deadline = std::min(net.next_deadline(), end);
    const int timeout_ms =
        deadline <= now
            ? 0
            : static_cast<int>(std::min<time_ns>((deadline - now) / 1'000'000 + 1, 100));
    pollfd pfd{dev->rx_wait_handle(0).fd, POLLIN, 0};
    ::poll(&pfd, 1, timeout_ms);
    now = monotonic_now();
    const std::size_t n = dev->rx_burst(0, burst);
    for (std::size_t i = 0; i < n; ++i) {
      net.receive(std::move(burst[i]), now);
    }
    net.advance(now);
    while (auto d = net.udp_receive(sock)) {
      const std::size_t len = d->copy_payload(payload);
      net.udp_send_to(sock, d->source, d->source_port, std::span(payload.data(), len), now);
    }
    std::size_t out = 0;
    while ((out = net.drain_tx(burst)) != 0) {
      const std::size_t sent = dev->tx_burst(0, std::span(burst.data(), out));
      free_burst(std::span(burst.data() + sent, out - sent));  // TAP full: counted by the device
    }
  }
  print_counters(net.counters());
  return 0;
}
