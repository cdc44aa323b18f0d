#include "options.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>

namespace pcap_replay {

namespace {

constexpr const char* prog = "pcap_replay";

void usage() {
  std::printf(
      "usage: pcap_replay CAPTURE [options]\n"
      "  Replays a recorded conversation (pcap or pcapng, Ethernet) against our stack running\n"
      "  an example application in the simulator, and reports where the live responses diverge\n"
      "  from the recorded ones. The live stack takes the role of the target T (198.18.0.2);\n"
      "  frames sent to T are replayed from 198.18.0.10 (the i-th distinct peer of T from\n"
      "  198.18.0.10 + i), frames sent by T are the expected responses.\n"
      "  --target ADDR      the recorded address the live stack plays (default: the first SYN's\n"
      "                     destination; with --as server its source)\n"
      "  --port-map A:B     T's recorded port A is port B on the live stack (repeatable)\n"
      "  --peer-port-offset N  added to the replayed side's ports (default 0)\n"
      "  --as client|server which recorded side we play (default client: the live app serves)\n"
      "  --app http|echo    the live application: the examples' Beast HTTP server (default) or\n"
      "                     tcp_echo's echo server; it listens on every replayed port\n"
      "  --fast             no recorded gaps: each frame as soon as the wait rule allows\n"
      "  --seed N           the simulation's seed and our ISNs (default 1)\n"
      "  --timeout SECONDS  how long a frame waits for the live response it acknowledges\n"
      "                     (default 2); then the divergence is reported and the flow reset\n"
      "  --max-seconds S    simulated seconds before giving up (default 60)\n"
      "  --out FILE         everything the replayer sent and received, as pcapng (simulated\n"
      "                     time stamps: the same capture and seed give the same file)\n"
      "  --report FILE      the report as JSON;  --json: the JSON on stdout\n"
      "  --backend sim      the only backend so far (live replay over tap/pcap/dpdk: not yet)\n"
      "Exit status: 0 no divergence, 1 divergences, 2 bad arguments or a bad capture.\n");
}

int bad(const std::string& what) {
  std::fprintf(stderr, "%s: %s (try --help)\n", prog, what.c_str());
  return 2;
}

bool number(const std::string& text, std::uint64_t& v) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  char* end = nullptr;
  v = std::strtoull(text.c_str(), &end, 10);
  return end != nullptr && *end == '\0';
}

bool seconds(const std::string& text, double& v) {
  char* end = nullptr;
  v = std::strtod(text.c_str(), &end);
  return !text.empty() && end != nullptr && *end == '\0' && v > 0 && v < 1e6;
}

}  // namespace

int parse(int argc, char** argv, options& out) {
  out.replay.address = dpdk_net::wire::ipv4_address::from_octets(198, 18, 0, 10);
  out.replay.live_address = dpdk_net::wire::ipv4_address::from_octets(198, 18, 0, 2);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if (a == "--fast") {
      out.replay.fast = true;
      continue;
    }
    if (a == "--json") {
      out.json = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      if (!out.capture.empty()) {
        return bad("more than one capture ('" + out.capture + "', '" + a + "')");
      }
      out.capture = a;
      continue;
    }
    static constexpr const char* with_value[] = {"--target",  "--port-map",    "--peer-port-offset",
                                                 "--as",      "--app",         "--seed",
                                                 "--timeout", "--max-seconds", "--out",
                                                 "--report",  "--backend"};
    if (std::find(std::begin(with_value), std::end(with_value), a) == std::end(with_value)) {
      return bad("unknown argument '" + a + "'");
    }
    if (i + 1 >= argc) {
      return bad(a + " needs a value");
    }
    const std::string v = argv[++i];
    std::uint64_t n = 0;
    double s = 0;
    if (a == "--target") {
      const auto addr = dpdk_net::wire::ipv4_address::parse(v);
      if (!addr) {
        return bad("--target: '" + v + "' is not an IPv4 address");
      }
      out.replay.target = *addr;
    } else if (a == "--port-map") {
      std::uint16_t from = 0;
      std::uint16_t to = 0;
      if (!dpdk_net::replay::parse_port_map(v, from, to)) {
        return bad("--port-map: '" + v + "' is not RECORDED:LIVE (ports 1-65535)");
      }
      out.replay.port_map[from] = to;
    } else if (a == "--peer-port-offset") {
      if (!number(v, n) || n > 65535) {
        return bad("--peer-port-offset: '" + v + "' is not 0-65535");
      }
      out.replay.peer_port_offset = static_cast<std::uint16_t>(n);
    } else if (a == "--as") {
      if (v != "client" && v != "server") {
        return bad("--as: '" + v + "' is not client or server");
      }
      out.replay.play =
          v == "client" ? dpdk_net::replay::play_role::client : dpdk_net::replay::play_role::server;
    } else if (a == "--app") {
      if (v != "http" && v != "echo") {
        return bad("--app: '" + v + "' is not http or echo");
      }
      out.app = v == "http" ? app_kind::http : app_kind::echo;
    } else if (a == "--seed") {
      if (!number(v, n)) {
        return bad("--seed: '" + v + "' is not a number");
      }
      out.replay.seed = n;
    } else if (a == "--timeout") {
      if (!seconds(v, s)) {
        return bad("--timeout: '" + v + "' is not a positive number of seconds");
      }
      out.replay.response_timeout = static_cast<dpdk_net::time_ns>(s * 1e9);
    } else if (a == "--max-seconds") {
      if (!seconds(v, s)) {
        return bad("--max-seconds: '" + v + "' is not a positive number of seconds");
      }
      out.max_seconds = s;
    } else if (a == "--out") {
      out.out = v;
    } else if (a == "--report") {
      out.report = v;
    } else if (a == "--backend") {
      if (v != "sim") {
        return bad("--backend " + v +
                   ": live replay is not implemented yet (only --backend sim replays)");
      }
    } else {
      return bad("unknown argument '" + a + "'");
    }
  }
  if (out.capture.empty()) {
    return bad("no capture given");
  }
  if (out.replay.play == dpdk_net::replay::play_role::server) {
    return bad("--as server needs a live client application; the simulator has none yet");
  }
  return -1;
}

}  // namespace pcap_replay
