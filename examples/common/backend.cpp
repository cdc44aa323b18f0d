#include "backend.hpp"

#include "multi_backend.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace dpdk_net::examples {

const char* common_usage() noexcept {
  static const std::string text =
      std::string(
          "backend options (the same in every Asio example):\n"
          "  --backend sim|tap|dpdk|pcap|kernel  where the program runs (default sim):\n"
          "                        sim    the server and simulated clients in one process, on\n"
          "                               two simulated hosts (virtual time); prints a summary\n"
          "                        tap    our stack (dpdk_net::runtime) on a TAP interface\n"
          "                        dpdk   our stack on a DPDK ethdev (options below)\n"
          "                        pcap   our stack on an existing interface (libpcap)\n"
          "                        kernel the identical code on boost::asio::ip::tcp (baseline)\n"
          "  --iface NAME          tap: the TAP interface, created if absent (alias --interface;\n"
          "                        default dnhttp0); pcap: the interface to open (required)\n"
          "  --ip ADDR/PREFIX      tap, dpdk, pcap: our stack's address (default 198.18.7.2/24);\n"
          "                        kernel: the address to bind (default: any)\n"
          "  --kernel-ip ADDR      tap: the kernel side's address on the interface (default:\n"
          "                        host .1 of --ip's subnet, .2 if --ip is .1); keep to\n"
          "                        198.18.0.0/15\n"
          "  --gateway ADDR        tap, dpdk, pcap: next hop for destinations off the subnet\n"
          "  --port N              the TCP port (server: listen; default 8080)\n"
          "  --max-seconds S       stop after S seconds (default: at SIGINT/SIGTERM)\n"
          "  --seed N              sim: the simulation's seed (default 1)\n") +
      cores_usage() + dpdk_usage() + capture_usage() +
      "  --help                this text\n"
      "Bad arguments: one line on stderr, exit status 2.\n";
  return text.c_str();
}

int bad_argument(const char* prog, const std::string& what) {
  std::fprintf(stderr, "%s: %s (try --help)\n", prog, what.c_str());
  return 2;
}

bool parse_u64(const std::string& s, std::uint64_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_seconds(const std::string& s, double& v) {
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(v) && v >= 0 && v <= 86400;
}

bool parse_endpoint(const std::string& text, wire::ipv4_address& address, std::uint16_t& port) {
  const std::size_t colon = text.rfind(':');
  std::uint64_t n = 0;
  if (colon == std::string::npos || !parse_u64(text.substr(colon + 1), n) || n < 1 || n > 65535) {
    return false;
  }
  const auto ip = wire::ipv4_address::parse(std::string_view(text).substr(0, colon));
  if (!ip) {
    return false;
  }
  address = *ip;
  port = static_cast<std::uint16_t>(n);
  return true;
}

int parse_common(const char* prog, int argc, char** argv, int& i, backend_options& out) {
  const std::string_view a = argv[i];
  if (a == "--no-pin") {
    out.workers.pin = false;
    return 1;
  }
  if (const int r = parse_dpdk_option(prog, argc, argv, i, out.dpdk); r != 0) {
    return r;
  }
  if (const int r = parse_capture_option(prog, argc, argv, i, out.capture); r != 0) {
    return r;
  }
  const bool known = a == "--backend" || a == "--iface" || a == "--interface" || a == "--ip" ||
                     a == "--kernel-ip" || a == "--gateway" || a == "--port" ||
                     a == "--max-seconds" || a == "--seed" || a == "--cores";
  if (!known) {
    return 0;
  }
  if (i + 1 >= argc) {
    return bad_argument(prog, std::string(a) + " needs a value");
  }
  const std::string v = argv[++i];
  std::uint64_t n = 0;
  if (a == "--backend") {
    if (v == "sim") {
      out.backend = backend_kind::sim;
    } else if (v == "tap") {
      out.backend = backend_kind::tap;
    } else if (v == "kernel") {
      out.backend = backend_kind::kernel;
    } else if (v == "dpdk") {
      out.backend = backend_kind::dpdk;
    } else if (v == "pcap") {
      out.backend = backend_kind::pcap;
    } else {
      return bad_argument(prog, "--backend needs sim, tap, dpdk, pcap or kernel, not '" + v + "'");
    }
  } else if (a == "--iface" || a == "--interface") {
    if (v.empty() || v.size() > 15) {
      return bad_argument(prog, "--iface needs an interface name of 1..15 characters");
    }
    out.iface = v;
    out.have_iface = true;
  } else if (a == "--ip") {
    const std::size_t slash = v.find('/');
    const auto ip = wire::ipv4_address::parse(std::string_view(v).substr(0, slash));
    if (slash == std::string::npos || !ip || !parse_u64(v.substr(slash + 1), n) || n > 32) {
      return bad_argument(prog, "--ip needs ADDR/PREFIX (IPv4, a prefix of 0..32)");
    }
    out.address = *ip;
    out.prefix = static_cast<std::uint8_t>(n);
    out.have_ip = true;
  } else if (a == "--kernel-ip" || a == "--gateway") {
    const auto ip = wire::ipv4_address::parse(v);
    if (!ip) {
      return bad_argument(prog, std::string(a) + " needs an IPv4 address");
    }
    (a == "--gateway" ? out.gateway : out.kernel_ip) = *ip;
  } else if (a == "--port") {
    if (!parse_u64(v, n) || n < 1 || n > 65535) {
      return bad_argument(prog, "--port needs 1..65535");
    }
    out.port = static_cast<std::uint16_t>(n);
  } else if (a == "--max-seconds") {
    if (!parse_seconds(v, out.max_seconds)) {
      return bad_argument(prog, "--max-seconds needs a number of seconds (0..86400)");
    }
  } else if (a == "--cores") {
    out.workers.text = v;
    out.workers.given = true;
  } else {  // --seed
    if (!parse_u64(v, out.seed)) {
      return bad_argument(prog, "--seed needs an unsigned integer");
    }
  }
  return 1;
}

int finish_common(const char* prog, backend_options& out, bool tap_multi) {
  if (const std::string bad = resolve_workers(out.workers, out.backend == backend_kind::sim);
      !bad.empty()) {
    return bad_argument(prog, bad);
  }
  const bool dpdk = out.backend == backend_kind::dpdk;
  if (const std::string bad = finish_dpdk(out.dpdk, dpdk); !bad.empty()) {
    return bad_argument(prog, bad);
  }
  if (dpdk && (out.kernel_ip || out.have_iface)) {
    return bad_argument(prog,
                        "--iface and --kernel-ip are options of --backend tap (dpdk: "
                        "--vdev or --dpdk-port names the port)");
  }
  if (const std::string bad = finish_capture(out.capture, out.backend == backend_kind::kernel);
      !bad.empty()) {
    return bad_argument(prog, bad);
  }
  if (out.capture.paused && out.backend == backend_kind::sim) {
    return bad_argument(prog,
                        "--capture-paused is for live backends (a simulated run is short "
                        "and reproducible: capture all of it)");
  }
  if (out.backend == backend_kind::pcap) {
    if (!out.have_iface) {
      return bad_argument(prog, "--backend pcap needs --iface NAME (an existing interface)");
    }
    if (out.kernel_ip) {
      return bad_argument(prog,
                          "--kernel-ip is an option of --backend tap (pcap leaves the kernel's "
                          "side of the link as it is configured)");
    }
    if (out.workers.multi()) {
      return bad_argument(prog, "--cores " + out.workers.text +
                                    ": the pcap backend runs one worker (fix: one core)");
    }
    if (!pcap_available()) {
      return bad_argument(prog, no_pcap_message);
    }
  }
  const bool refused =
      out.backend == backend_kind::kernel || (out.backend == backend_kind::tap && !tap_multi);
  if (out.workers.multi() && refused) {
    return bad_argument(prog, "--cores " + out.workers.text + ": " +
                                  (out.backend == backend_kind::kernel
                                       ? std::string("the kernel backend runs one thread")
                                       : std::string(prog) + " runs one worker on tap") +
                                  " (fix: one core, or --backend " +
                                  (tap_multi ? "tap or sim" : "sim") + " for several workers)");
  }
  return 0;
}

wire::ipv4_address kernel_side_address(const backend_options& o) noexcept {
  if (o.kernel_ip) {
    return *o.kernel_ip;
  }
  const std::uint32_t mask = o.prefix == 0 ? 0 : ~0U << (32U - o.prefix);
  const std::uint32_t net = o.address.value & mask;
  return wire::ipv4_address{(o.address.value & ~mask) == 1 ? net | 2U : net | 1U};
}

std::optional<tap_backend> open_tap_backend(const char* prog, const backend_options& o) {
  std::string error;
  tap::tap_config tc;
  tc.name = o.iface;
  tc.pool_size = 16384;           // receive windows of many connections may hold received frames
  tc.queues = o.workers.workers;  // one per worker (several: IFF_MULTI_QUEUE)
  tap_backend b;
  b.dev = tap::tap_device::open(tc, error);
  if (!b.dev) {
    std::fprintf(stderr, "%s: %s\n", prog, error.c_str());
    return std::nullopt;
  }
  if (!b.dev->configure_kernel_side(tap::kernel_side{kernel_side_address(o), o.prefix, true},
                                    error)) {
    std::fprintf(stderr, "%s: %s\n", prog, error.c_str());
    return std::nullopt;
  }
  b.config.mac = b.dev->info().mac;
  b.config.address = o.address;
  b.config.prefix_length = o.prefix;
  b.config.gateway = o.gateway;
  if (const std::string bad = stack::validate(b.config, b.dev->info().mtu); !bad.empty()) {
    std::fprintf(stderr, "%s: %s\n", prog, bad.c_str());
    return std::nullopt;
  }
  return b;
}

stack::stack_config sim_host_config(std::uint8_t host) noexcept {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | host};  // 198.18.0.<host>
  c.prefix_length = 24;
  return c;
}

std::string stack_counters_json(stack::stack& ip) {
  stack::stack* const one[] = {&ip};
  return stacks_counters_json(one);
}

}  // namespace dpdk_net::examples
