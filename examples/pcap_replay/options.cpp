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
      "  Replays a recorded conversation (pcap or pcapng, Ethernet) against a live stack that\n"
      "  plays the recorded target T, and reports where its responses diverge from the recorded\n"
      "  ones. Frames sent to T are replayed from --ip (the i-th distinct peer of T from --ip + "
      "i),\n"
      "  frames sent by T are the expected responses.\n"
      "  --backend sim      (default) the live stack is ours, in the simulator, running --app at\n"
      "                     198.18.0.2: deterministic (the same capture and seed, the same --out)\n"
      "  --backend pcap     live: the replayer sends and receives on --iface NAME through\n"
      "                     libpcap; the live stack is whatever answers --live ADDR on that link\n"
      "                     (our http_server --backend pcap on the other end of a veth, the Linux\n"
      "                     kernel, ...); give the interface no kernel address of its own\n"
      "  --backend tap      live against the Linux kernel: a TAP device --iface NAME (default\n"
      "                     dnreplay0) is created with the kernel's side at --live ADDR/24, so\n"
      "                     the live stack is the kernel and whatever listens there\n"
      "  --iface NAME       the interface (pcap: existing; tap: created)\n"
      "  --ip ADDR          the replayer's first address (sim: 198.18.0.10; pcap, tap: required)\n"
      "  --live ADDR        the live stack's address (sim: 198.18.0.2; pcap, tap: required)\n"
      "  --target ADDR      the recorded address the live stack plays (default: the first SYN's\n"
      "                     destination; --as server: its source)\n"
      "  --port-map A:B     T's recorded port A is port B on the live stack (repeatable)\n"
      "  --peer-port-offset N  added to the replayed side's ports (default 0)\n"
      "  --as client|server which recorded side we play: client (default; the live app serves)\n"
      "                     or server (pcap, tap: a live client connects to --ip at the recorded\n"
      "                     server port, whenever it will, and gets the recorded responses)\n"
      "  --app http|echo    sim: the live application, the examples' Beast HTTP server (default)\n"
      "                     or tcp_echo's echo server; it listens on every replayed port\n"
      "  --fast             no recorded gaps: each frame as soon as the wait rule allows\n"
      "  --seed N           the simulation's seed and our ISNs (default 1)\n"
      "  --timeout SECONDS  how long a frame waits for the live response it acknowledges\n"
      "                     (default 2); then the divergence is reported and the flow reset\n"
      "  --max-seconds S    seconds (sim: simulated) before giving up (default 60)\n"
      "  --out FILE         everything the replayer sent and received, as pcapng (sim: simulated\n"
      "                     time stamps, so the same capture and seed give the same file)\n"
      "  --report FILE      the report as JSON;  --json: the JSON on stdout\n"
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
  bool have_ip = false;
  bool have_app = false;
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
                                                 "--report",  "--backend",     "--iface",
                                                 "--ip",      "--live"};
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
      have_app = true;
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
      if (v == "sim") {
        out.backend = replay_backend::sim;
      } else if (v == "pcap") {
        out.backend = replay_backend::pcap;
      } else if (v == "tap") {
        out.backend = replay_backend::tap;
      } else {
        return bad("--backend " + v + ": replay runs on sim, pcap or tap (dpdk: not yet)");
      }
    } else if (a == "--iface") {
      out.iface = v;
    } else if (a == "--ip" || a == "--live") {
      const auto addr = dpdk_net::wire::ipv4_address::parse(v);
      if (!addr) {
        return bad(a + ": '" + v + "' is not an IPv4 address");
      }
      (a == "--ip" ? out.replay.address : out.replay.live_address) = *addr;
      (a == "--ip" ? have_ip : out.have_live) = true;
    } else {
      return bad("unknown argument '" + a + "'");
    }
  }
  if (out.capture.empty()) {
    return bad("no capture given");
  }
  if (out.replay.play == dpdk_net::replay::play_role::server &&
      out.backend == replay_backend::sim) {
    return bad(
        "--as server needs a live client, and the simulator's live apps are servers: use "
        "--backend pcap with the client on that link, or replay::engine with your client in the "
        "simulator (docs/pcap.md)");
  }
  const bool live = out.backend != replay_backend::sim;
  const std::string name = out.backend == replay_backend::tap ? "tap" : "pcap";
  if (out.backend == replay_backend::tap && out.iface.empty()) {
    out.iface = "dnreplay0";
  }
  if (live) {
    std::string missing;
    const auto need = [&](bool given, const char* what) {
      if (!given) {
        missing += (missing.empty() ? "" : ", ") + std::string(what);
      }
    };
    need(!out.iface.empty(), "--iface NAME");
    need(out.have_live, "--live ADDR (the address that answers)");
    need(have_ip, "--ip ADDR (the replayer's own, unused on that link)");
    if (!missing.empty()) {
      return bad("--backend " + name + " needs " + missing);
    }
  }
  if (out.backend == replay_backend::tap &&
      (out.replay.address.value >> 8U) != (out.replay.live_address.value >> 8U)) {
    return bad("--backend tap: --ip " + out.replay.address.to_string() + " is not in --live " +
               out.replay.live_address.to_string() +
               "/24, the kernel side's subnet (the kernel would route its answers elsewhere)");
  }
  if (live && have_app) {
    return bad("--app chooses the simulator's live application; with --backend " + name +
               " the live stack is whatever answers --live");
  }
  if (out.backend == replay_backend::sim && (!out.iface.empty() || out.have_live || have_ip)) {
    return bad(
        "--iface, --ip and --live are for --backend pcap or tap (the simulator's live stack is "
        "198.18.0.2)");
  }
  return -1;
}

}  // namespace pcap_replay
