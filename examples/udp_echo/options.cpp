// udp_echo's command line.
#include "options.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace udp_echo {

using namespace dpdk_net;

namespace {

void usage(std::FILE* to) {
  std::fprintf(
      to,
      "usage: udp_echo --backend tap --iface NAME --ip ADDR/PREFIX --port N\n"
      "                [--kernel-ip ADDR] [--seconds S] [--cores LIST] [--no-pin]\n"
      "       udp_echo --backend dpdk --vdev SPEC --ip ADDR/PREFIX --port N [options]\n"
      "       udp_echo --backend pcap --iface NAME --ip ADDR/PREFIX --port N [options]\n"
      "       udp_echo --backend tap|dpdk|pcap ... --connect ADDR:PORT [--count N] [--size B]\n"
      "  Creates TAP interface NAME (dpdk: opens the DPDK port) and runs our stack on it\n"
      "  at ADDR, echoing UDP on port N and answering pings. --kernel-ip also configures\n"
      "  the kernel's side of the interface (else configure it yourself). Stops after S\n"
      "  seconds (default: on SIGINT/SIGTERM) and prints the stack's counters (several\n"
      "  workers: summed).\n"
      "  Client mode (--connect): sends N datagrams (default 100) of B bytes (8..65507,\n"
      "  default 512) to ADDR:PORT one at a time and checks each echo byte for byte\n"
      "  (resent after 200 ms without it, up to 5 times); exits 0 only if every echo\n"
      "  came back intact. dpdk: several workers also in client mode (each sends its\n"
      "  share).\n"
      "%s%s%s",
      dpdk_net::examples::cores_usage(), dpdk_net::examples::dpdk_usage(),
      dpdk_net::examples::capture_usage());
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

bool parse_endpoint(std::string_view text, udp_target& e) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  const auto ip = wire::ipv4_address::parse(text.substr(0, colon));
  const std::string_view p = text.substr(colon + 1);
  if (!ip || p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != p.npos) {
    return false;
  }
  const long port = std::stol(std::string(p));
  if (port < 1 || port > 65535) {
    return false;
  }
  e = udp_target{*ip, static_cast<std::uint16_t>(port)};
  return true;
}

}  // namespace

int parse(int argc, char** argv, echo_options& o) {
  long port = -1;
  std::string kernel_ip_text;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return -1;
    }
    if (a == "--no-pin") {
      o.workers.pin = false;
      continue;
    }
    if (const int r = examples::parse_dpdk_option("udp_echo", argc, argv, i, o.dpdk); r != 0) {
      if (r == 2) {
        return 2;
      }
      continue;
    }
    if (const int r = examples::parse_capture_option("udp_echo", argc, argv, i, o.capture);
        r != 0) {
      if (r == 2) {
        return 2;
      }
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "udp_echo: %s needs a value (try --help)\n", argv[i]);
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--backend") {
      o.backend = v;
    } else if (a == "--iface") {
      o.iface = v;
    } else if (a == "--ip") {
      o.ip_text = v;
    } else if (a == "--kernel-ip") {
      kernel_ip_text = v;
    } else if (a == "--port") {
      port = v.find_first_not_of("0123456789") == std::string::npos && !v.empty() && v.size() < 6
                 ? std::stol(v)
                 : -1;
    } else if (a == "--seconds") {
      o.seconds = std::strtod(v.c_str(), nullptr);
    } else if (a == "--cores") {
      o.workers.text = v;
      o.workers.given = true;
    } else if (a == "--connect") {
      udp_target e;
      if (!parse_endpoint(v, e)) {
        std::fprintf(stderr, "udp_echo: --connect needs ADDR:PORT with a port 1..65535\n");
        return 2;
      }
      o.connect = e;
    } else if (a == "--count" || a == "--size") {
      const bool digits =
          !v.empty() && v.size() < 10 && v.find_first_not_of("0123456789") == std::string::npos;
      const long n = digits ? std::stol(v) : -1;
      if (a == "--count" ? n < 1 || n > 100000000 : n < 8 || n > 65507) {
        std::fprintf(stderr, "udp_echo: %s\n",
                     a == "--count" ? "--count needs 1..100000000 datagrams"
                                    : "--size needs 8..65507 bytes");
        return 2;
      }
      (a == "--count" ? o.count : o.size) = static_cast<std::size_t>(n);
    } else {
      std::fprintf(stderr, "udp_echo: unknown argument '%s' (try --help)\n", argv[i - 1]);
      return 2;
    }
  }
  if (o.backend != "tap" && o.backend != "dpdk" && o.backend != "pcap") {
    std::fprintf(stderr, "udp_echo: --backend must be tap, dpdk or pcap\n");
    return 2;
  }
  if (const std::string e = examples::finish_capture(o.capture, false); !e.empty()) {
    std::fprintf(stderr, "udp_echo: %s (try --help)\n", e.c_str());
    return 2;
  }
  if (o.backend == "pcap" && !kernel_ip_text.empty()) {
    std::fprintf(stderr, "udp_echo: --kernel-ip is an option of --backend tap\n");
    return 2;
  }
  const bool dpdk = o.backend == "dpdk";
  if (const std::string e = examples::finish_dpdk(o.dpdk, dpdk); !e.empty()) {
    std::fprintf(stderr, "udp_echo: %s (try --help)\n", e.c_str());
    return 2;
  }
  if (dpdk && (!o.iface.empty() || !kernel_ip_text.empty())) {
    std::fprintf(stderr, "udp_echo: --iface and --kernel-ip are options of --backend tap\n");
    return 2;
  }
  if (o.connect && port == -1) {
    port = 0;  // a client's local port: any
  }
  if ((!dpdk && o.iface.empty()) || !parse_cidr(o.ip_text, o.address, o.prefix) ||
      port < (o.connect ? 0 : 1) || port > 65535) {
    std::fprintf(stderr, "udp_echo: need %s--ip ADDR/PREFIX (0..32) and --port 1..65535%s\n",
                 dpdk ? "" : "--iface NAME, ", " (or --connect ADDR:PORT)");
    return 2;
  }
  o.port = static_cast<std::uint16_t>(port);
  if (!kernel_ip_text.empty() && !(o.kernel_ip = wire::ipv4_address::parse(kernel_ip_text))) {
    std::fprintf(stderr, "udp_echo: --kernel-ip needs an IPv4 address\n");
    return 2;
  }
  if (const std::string e = examples::resolve_workers(o.workers, false); !e.empty()) {
    std::fprintf(stderr, "udp_echo: %s (try --help)\n", e.c_str());
    return 2;
  }
  if (o.workers.multi() && o.backend == "pcap") {
    std::fprintf(stderr, "udp_echo: --cores %s: the pcap backend runs one worker (fix: one core)\n",
                 o.workers.text.c_str());
    return 2;
  }
  if (o.workers.multi() && o.connect && !dpdk) {
    std::fprintf(stderr,
                 "udp_echo: --cores with several cores is a server option on tap (fix: one "
                 "core with --connect)\n");
    return 2;
  }
  return 0;
}

}  // namespace udp_echo
