#include "options.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace tcp_echo {
namespace {

using dpdk_net::wire::ipv4_address;

void usage(std::FILE* to) {
  std::fprintf(
      to,
      "usage: tcp_echo --backend tap --iface NAME --ip ADDR/PREFIX --port N [options]\n"
      "       tcp_echo --backend tap --iface NAME --ip ADDR/PREFIX --connect ADDR:PORT\n"
      "                [--bytes N] [--connections K] [options]\n"
      "       tcp_echo --backend dpdk --vdev SPEC --ip ADDR/PREFIX (--port N | --connect A:P)\n"
      "                [dpdk options] [options]\n"
      "       tcp_echo --backend pcap --iface NAME --ip ADDR/PREFIX (--port N | --connect A:P)\n"
      "  Creates TAP interface NAME (dpdk: opens the DPDK port) and runs our stack on it\n"
      "  at ADDR. Server mode (--port): echoes every TCP connection on port N, many in\n"
      "  parallel, and closes its side once the peer has finished sending and everything\n"
      "  is echoed. Client mode (--connect): opens K connections (default 1), streams N\n"
      "  bytes (default 1M; suffixes K, M, G = 2^10, 2^20, 2^30) from a seeded generator\n"
      "  on each and verifies the echo byte for byte; exits 0 only if every stream came\n"
      "  back intact.\n"
      "options:\n"
      "  --kernel-ip ADDR      also configure the kernel's side of the interface\n"
      "  --gateway ADDR        next hop for destinations off the subnet\n"
      "  --seconds S           stop after S seconds (alias --max-seconds; default: at\n"
      "                        SIGINT/SIGTERM, or when the client is done)\n"
      "  --stats FILE          write the counters JSON to FILE instead of stdout\n"
      "  --seed N              the client's stream generator and the fault decisions\n"
      "  --no-delay            Nagle off\n"
      "  --syn-queue N         server: half-open connections kept per listener (default\n"
      "                        1024); past them SYN cookies answer\n"
      "  --backlog N           server: the accept queue's size (1..1024, default 1024)\n"
      "  --no-accept           server: listen but never accept (the accept queue fills)\n"
      "  --delay MS            faults around the TAP device, in both directions: one-way\n"
      "  --reorder PCT         delay (milliseconds), frames held back by --reorder-delay MS\n"
      "  --reorder-delay MS    (default 1), duplicated, lost (percent of frames)\n"
      "  --duplicate PCT\n"
      "  --loss PCT\n"
      "%s"
      "  (dpdk: several workers also in client mode, connection i on worker i %% workers)\n"
      "%s"
      "  Prints the stack's and TCP's counters as one JSON line when it stops (several\n"
      "  workers: summed, and per worker under \"workers\").\n"
      "%s",
      dpdk_net::examples::cores_usage(), dpdk_net::examples::dpdk_usage(),
      dpdk_net::examples::capture_usage());
}

bool parse_u64(std::string_view s, std::uint64_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_double(const std::string& s, double& v, double max) {
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(v) && v >= 0 && v <= max;
}

bool parse_size(std::string_view s, std::uint64_t& v) {
  std::uint64_t scale = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k':
      case 'K':
        scale = 1ULL << 10U;
        break;
      case 'm':
      case 'M':
        scale = 1ULL << 20U;
        break;
      case 'g':
      case 'G':
        scale = 1ULL << 30U;
        break;
      default:
        break;
    }
  }
  if (scale != 1) {
    s.remove_suffix(1);
  }
  return parse_u64(s, v) && v <= (1ULL << 40U) / scale && (v *= scale, true);
}

bool parse_cidr(std::string_view text, ipv4_address& a, std::uint8_t& prefix) {
  const std::size_t slash = text.find('/');
  std::uint64_t n = 0;
  if (slash == std::string_view::npos || !parse_u64(text.substr(slash + 1), n) || n > 32) {
    return false;
  }
  const auto ip = ipv4_address::parse(text.substr(0, slash));
  if (!ip) {
    return false;
  }
  a = *ip;
  prefix = static_cast<std::uint8_t>(n);
  return true;
}

bool parse_endpoint(std::string_view text, dpdk_net::stack::tcp_endpoint& e) {
  const std::size_t colon = text.rfind(':');
  std::uint64_t port = 0;
  if (colon == std::string_view::npos || !parse_u64(text.substr(colon + 1), port) || port < 1 ||
      port > 65535) {
    return false;
  }
  const auto ip = ipv4_address::parse(text.substr(0, colon));
  if (!ip) {
    return false;
  }
  e = {*ip, static_cast<std::uint16_t>(port)};
  return true;
}

int bad(const char* what) {
  std::fprintf(stderr, "tcp_echo: %s (try --help)\n", what);
  return 2;
}

}  // namespace

int parse_options(int argc, char** argv, options& out) {
  std::string ip_text;
  bool have_port = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return -1;
    }
    if (a == "--no-delay") {
      out.no_delay = true;
      continue;
    }
    if (a == "--no-accept") {
      out.no_accept = true;
      continue;
    }
    if (a == "--no-pin") {
      out.workers.pin = false;
      continue;
    }
    if (const int r = dpdk_net::examples::parse_dpdk_option("tcp_echo", argc, argv, i, out.dpdk);
        r != 0) {
      if (r == 2) {
        return 2;
      }
      continue;
    }
    if (const int r =
            dpdk_net::examples::parse_capture_option("tcp_echo", argc, argv, i, out.capture);
        r != 0) {
      if (r == 2) {
        return 2;
      }
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "tcp_echo: %s needs a value (try --help)\n", argv[i]);
      return 2;
    }
    const std::string v = argv[++i];
    std::uint64_t n = 0;
    fault_options& f = out.faults;
    if (a == "--backend") {
      out.backend = v;
    } else if (a == "--iface") {
      out.iface = v;
    } else if (a == "--ip") {
      if (!parse_cidr(v, out.address, out.prefix)) {
        return bad("need --ip ADDR/PREFIX (a prefix of 0..32)");
      }
      ip_text = v;
    } else if (a == "--kernel-ip" || a == "--gateway") {
      const auto ip = ipv4_address::parse(v);
      if (!ip) {
        return bad(a == "--gateway" ? "--gateway needs an IPv4 address"
                                    : "--kernel-ip needs an IPv4 address");
      }
      (a == "--gateway" ? out.gateway : out.kernel_ip) = *ip;
    } else if (a == "--port") {
      if (!parse_u64(v, n) || n < 1 || n > 65535) {
        return bad("need --port 1..65535");
      }
      out.port = static_cast<std::uint16_t>(n);
      have_port = true;
    } else if (a == "--connect") {
      dpdk_net::stack::tcp_endpoint e;
      if (!parse_endpoint(v, e)) {
        return bad("--connect needs ADDR:PORT with a port 1..65535");
      }
      out.connect = e;
    } else if (a == "--bytes") {
      if (!parse_size(v, out.bytes)) {
        return bad("--bytes needs a size (digits, optionally K, M or G; at most 1T)");
      }
    } else if (a == "--connections") {
      if (!parse_u64(v, n) || n < 1 || n > 10000) {
        return bad("--connections needs 1..10000");
      }
      out.connections = static_cast<unsigned>(n);
    } else if (a == "--seed") {
      if (!parse_u64(v, out.seed)) {
        return bad("--seed needs an unsigned integer");
      }
    } else if (a == "--seconds" || a == "--max-seconds") {
      if (!parse_double(v, out.max_seconds, 86400)) {
        return bad("--seconds needs a number of seconds (0..86400)");
      }
    } else if (a == "--syn-queue") {
      if (!parse_u64(v, n) || n < 1 || n > 1000000) {
        return bad("--syn-queue needs 1..1000000");
      }
      out.syn_queue = static_cast<std::uint32_t>(n);
    } else if (a == "--backlog") {
      // The echo server asks listen() for 1024; a backlog is lowered through max_backlog.
      if (!parse_u64(v, n) || n < 1 || n > 1024) {
        return bad("--backlog needs 1..1024");
      }
      out.backlog = static_cast<std::uint32_t>(n);
    } else if (a == "--stats") {
      out.stats_path = v;
    } else if (a == "--cores") {
      out.workers.text = v;
      out.workers.given = true;
    } else if (a == "--delay") {
      if (!parse_double(v, f.delay_ms, 10000)) {
        return bad("--delay needs milliseconds (0..10000)");
      }
    } else if (a == "--reorder-delay") {
      if (!parse_double(v, f.reorder_delay_ms, 10000)) {
        return bad("--reorder-delay needs milliseconds (0..10000)");
      }
    } else if (a == "--reorder" || a == "--duplicate" || a == "--loss") {
      double& p = a == "--reorder" ? f.reorder_percent
                                   : (a == "--duplicate" ? f.duplicate_percent : f.loss_percent);
      if (!parse_double(v, p, 100)) {
        return bad("--reorder, --duplicate and --loss need a percentage (0..100)");
      }
    } else {
      std::fprintf(stderr, "tcp_echo: unknown argument '%s' (try --help)\n", argv[i - 1]);
      return 2;
    }
  }
  if (out.backend != "tap" && out.backend != "dpdk" && out.backend != "pcap") {
    return bad("--backend must be tap, dpdk or pcap");
  }
  if (const std::string e = dpdk_net::examples::finish_capture(out.capture, false); !e.empty()) {
    return bad(e.c_str());
  }
  if (out.backend == "pcap" && out.kernel_ip) {
    return bad("--kernel-ip is an option of --backend tap");
  }
  const bool dpdk = out.backend == "dpdk";
  if (const std::string e = dpdk_net::examples::finish_dpdk(out.dpdk, dpdk); !e.empty()) {
    return bad(e.c_str());
  }
  if (dpdk && (!out.iface.empty() || out.kernel_ip)) {
    return bad("--iface and --kernel-ip are options of --backend tap");
  }
  if ((!dpdk && out.iface.empty()) || ip_text.empty() || (!out.connect && !have_port)) {
    return bad(dpdk ? "need --ip ADDR/PREFIX (0..32) and --port 1..65535 (or --connect "
                      "ADDR:PORT)"
                    : "need --iface NAME, --ip ADDR/PREFIX (0..32) and --port 1..65535 (or "
                      "--connect ADDR:PORT)");
  }
  if (out.connect && (out.no_accept || out.backlog || out.syn_queue)) {
    return bad("--no-accept, --backlog and --syn-queue are server options (not with --connect)");
  }
  if (const std::string e = dpdk_net::examples::resolve_workers(out.workers, false); !e.empty()) {
    return bad(e.c_str());
  }
  if (out.workers.multi() && out.backend == "pcap") {
    return bad("--cores with several cores: the pcap backend runs one worker (fix: one core)");
  }
  if (out.workers.multi() && out.connect && !dpdk) {
    return bad(
        "--cores with several cores is a server option on tap (fix: one core with --connect)");
  }
  if (out.workers.multi() && out.faults.any()) {
    return bad(
        "--cores with several cores: --delay, --reorder, --duplicate and --loss need one worker "
        "(the fault model is single-threaded; fix: one core)");
  }
  return 0;
}

}  // namespace tcp_echo
