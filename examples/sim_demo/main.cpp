// sim_demo: two clients and a server, each running our IPv4 stack (ARP, IPv4, UDP: the real
// dpdk_net::stack::stack, driven by sim::stack_host), on a simulated switch with faulty links.
// Clients send UDP requests and retransmit on a timer of their own (skewed) clocks until the
// server's echo comes back; every frame is written to a pcap per host. The same seed gives the
// same bytes, run after run and build after build (gcc, clang, sanitizers, -O2), so the
// cross-build check in pytests/test_sim.py covers the IP stack too. With --tcp BYTES it runs a
// TCP transfer instead (two stacks, BYTES each way at once over the same faulty links, every
// byte checked; the simulator tests' application, tests/unit/stack/tcp_sim_app.hpp), so the
// cross-build check covers TCP as well.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dpdk_net/sim/harness.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/stack_host.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "tcp_sim_app.hpp"

namespace {

using namespace dpdk_net;
using namespace dpdk_net::sim;

constexpr std::uint16_t echo_port = 7;
constexpr std::uint16_t client_port = 4000;

struct options {
  std::uint64_t seed = 1;
  bool swarm = false;  ///< DPDK_NET_SIM_SWARM=1: link faults drawn from the seed
  std::uint32_t requests = 200;
  double loss = 0.05;
  std::string pcap_dir;
  bool hash_only = false;
  std::uint64_t tcp_bytes = 0;  ///< --tcp: a TCP transfer of this many bytes each way instead
};

wire::ipv4_address ip_of(const host& h) {
  return wire::ipv4_address::from_octets(198, 18, 0, static_cast<std::uint8_t>(10 + h.index()));
}

stack::stack_config config_for(const host& h) {
  stack::stack_config c;
  c.address = ip_of(h);
  return c;
}

/// The server: echoes every datagram that reaches port 7 (corrupt frames fail their checksums
/// in the stack and never get here).
class echo_server : public stack_host {
 public:
  echo_server(host& h, sim_nic& nic) : stack_host(h, nic, config_for(h)) {
    if (const std::error_code e = ip().udp_bind(echo_port, sock_)) {
      throw std::runtime_error("bind port 7: " + e.message());
    }
  }
  std::uint64_t echoed = 0;

 protected:
  void on_pump(time_ns now) override {
    while (auto d = ip().udp_receive(sock_)) {
      std::array<std::byte, 64> body{};
      const std::size_t n = d->copy_payload(body);
      if (!ip().udp_send_to(sock_, d->source, d->source_port, std::span(body.data(), n), now)) {
        ++echoed;
      }
    }
  }

 private:
  stack::stack::socket_id sock_ = 0;
};

/// A client: one request outstanding at a time, retransmitted every 2 ms of its own clock until
/// the echo of exactly that request comes back.
class echo_client : public stack_host {
 public:
  echo_client(host& h, sim_nic& nic, wire::ipv4_address server, std::uint32_t requests)
      : stack_host(h, nic, config_for(h)), server_(server), requests_(requests) {
    if (const std::error_code e = ip().udp_bind(client_port, sock_)) {
      throw std::runtime_error("bind port 4000: " + e.message());
    }
  }
  std::uint32_t next = 0;  // the outstanding request; all before it were answered
  std::uint32_t retransmits = 0;
  std::uint32_t stale_replies = 0;

  void start() {
    send_current(now());
    pump();
  }
  [[nodiscard]] bool done() const noexcept { return next >= requests_; }

 protected:
  void on_pump(time_ns now) override {
    while (auto d = ip().udp_receive(sock_)) {
      std::array<std::byte, 4> got{};
      if (d->copy_payload(got) == 4 && wire::load32(got.data()) == next) {
        ++next;
        send_current(now);
      } else {
        ++stale_replies;  // a duplicate, or a late echo of a retransmitted request
      }
    }
  }

 private:
  void send_current(time_ns now) {
    if (done()) {
      return;
    }
    std::array<std::byte, 8> body{};
    wire::store32(body.data(), next);
    wire::store32(body.data() + 4, sim_host().index());
    (void)ip().udp_send_to(sock_, server_, echo_port, body, now);  // refused: the timer retries
    const std::uint32_t sent = next;
    sim_host().after(2 * millisecond, [this, sent] {
      if (next == sent) {
        ++retransmits;
        send_current(this->now());
        pump();
      }
    });
  }

  wire::ipv4_address server_;
  std::uint32_t requests_;
  stack::stack::socket_id sock_ = 0;
};

int parse(int argc, char** argv, options& o) {
  // The seed comes from DPDK_NET_SIM_SEED (and DPDK_NET_SIM_SWARM) as in the tests; --seed wins.
  const seed_plan plan = seeds_from_environment({1});
  if (!plan.error.empty()) {
    std::fprintf(stderr, "sim_demo: %s\n", plan.error.c_str());
    return 2;
  }
  if (plan.seeds.size() != 1) {
    std::fprintf(stderr,
                 "sim_demo: runs one seed: set DPDK_NET_SIM_SEED, not DPDK_NET_SIM_SEEDS\n");
    return 2;
  }
  o.seed = plan.seeds[0];
  o.swarm = plan.swarm;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sim_demo: %s needs a value\n", what);
        std::exit(2);
      }
      return argv[++i];
    };
    char* end = nullptr;
    if (a == "--seed") {
      const char* v = value("--seed");
      o.seed = std::strtoull(v, &end, 10);
      if (*v == '\0' || *end != '\0') {
        std::fprintf(stderr, "sim_demo: --seed needs a whole number\n");
        return 2;
      }
    } else if (a == "--requests") {
      const char* v = value("--requests");
      const unsigned long n = std::strtoul(v, &end, 10);
      if (*end != '\0' || n == 0 || n > 1'000'000) {
        std::fprintf(stderr, "sim_demo: --requests needs 1..1000000\n");
        return 2;
      }
      o.requests = static_cast<std::uint32_t>(n);
    } else if (a == "--loss") {
      const char* v = value("--loss");
      o.loss = std::strtod(v, &end);
      if (*end != '\0' || !(o.loss >= 0 && o.loss < 0.9)) {
        std::fprintf(stderr, "sim_demo: --loss needs a probability below 0.9\n");
        return 2;
      }
    } else if (a == "--tcp") {
      const char* v = value("--tcp");
      const unsigned long long n = std::strtoull(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n == 0 || n > (1ULL << 30)) {
        std::fprintf(stderr, "sim_demo: --tcp needs a byte count 1..1073741824\n");
        return 2;
      }
      o.tcp_bytes = n;
    } else if (a == "--pcap-dir") {
      o.pcap_dir = value("--pcap-dir");
    } else if (a == "--hash") {
      o.hash_only = true;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: sim_demo [--seed N] [--requests N] [--loss P] [--tcp BYTES] [--pcap-dir DIR] "
          "[--hash]\n"
          "  Two clients exchange N UDP requests each with an echo server over a simulated\n"
          "  switch whose links lose, duplicate, reorder and corrupt frames (seeded). Every host\n"
          "  runs the dpdk-net IPv4 stack (ARP, IPv4, UDP) on its own, skewed clock.\n"
          "  --tcp BYTES: instead, two stacks stream BYTES to each other over TCP on one such\n"
          "  link, every byte checked (client.pcap, server.pcap).\n"
          "  --hash prints only the run's fingerprint (trace and event-log hashes).\n"
          "  The seed may also come from DPDK_NET_SIM_SEED (DPDK_NET_SIM_SWARM=1: fault rates\n"
          "  drawn from the seed, as a swarm test does).\n");
      return 0;
    } else {
      std::fprintf(stderr, "sim_demo: unknown argument '%s' (try --help)\n", argv[i]);
      return 2;
    }
  }
  return -1;
}

/// --tcp: one TCP transfer, BYTES each way at once, between two stacks.
int run_tcp(const options& o, const link_config& faulty) {
  stack::test::transfer_spec spec;
  spec.what = stack::test::transfer_spec::pattern::both;
  spec.bytes = o.tcp_bytes;
  spec.to_server = spec.to_client = faulty;
  spec.nic.rx_copy = true;
  if (!o.pcap_dir.empty()) {
    std::filesystem::create_directories(o.pcap_dir);
    spec.pcap_dir = o.pcap_dir;
  }
  const stack::test::transfer_outcome out = stack::test::run_transfer(o.seed, spec);
  const bool ok = out.finished && out.problems.empty() && out.client.size() == 1 &&
                  out.server.size() == 1 && out.client[0].complete() && out.server[0].complete();
  if (o.hash_only) {
    std::printf("seed %llu trace %016llx events %016llx\n", static_cast<unsigned long long>(o.seed),
                static_cast<unsigned long long>(out.trace_hash),
                static_cast<unsigned long long>(out.event_log_hash));
    return ok ? 0 : 1;
  }
  std::printf("sim_demo: seed %llu, TCP: %llu bytes each way between two dpdk-net stacks\n",
              static_cast<unsigned long long>(o.seed),
              static_cast<unsigned long long>(o.tcp_bytes));
  std::printf("%s", out.describe().c_str());
  std::printf("  hashes    trace %016llx, event log %016llx (same seed => same hashes)\n",
              static_cast<unsigned long long>(out.trace_hash),
              static_cast<unsigned long long>(out.event_log_hash));
  std::printf("  result    %s\n", ok ? "OK" : "FAILED (not intact)");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (const int rc = parse(argc, argv, o); rc >= 0) {
    return rc;
  }
  network net(o.seed);
  sim_switch& sw = net.add_switch("sw");
  link_config faulty;
  faulty.delay = 200 * microsecond;
  faulty.jitter = 50 * microsecond;
  faulty.bandwidth_bps = 1'000'000'000;
  faulty.loss = o.loss;
  faulty.duplicate = 0.02;
  faulty.reorder = 0.03;
  faulty.corrupt = 0.01;
  if (o.swarm) {
    faulty = link_config::swarm(o.seed);
  }
  if (o.tcp_bytes != 0) {
    return run_tcp(o, faulty);
  }
  // Every NIC receives into its own pool, as a real one does.
  nic_config nic;
  nic.rx_copy = true;

  host& server_host = net.add_host("server");
  sim_nic& server_nic = net.add_nic(server_host, nic);
  net.connect(server_nic, sw, faulty);
  std::vector<host*> client_hosts;
  for (int i = 0; i < 2; ++i) {
    host_config skewed;
    skewed.drift_ppm = i == 0 ? 50 : -30;  // the clients' clocks disagree a little
    skewed.clock_offset = static_cast<time_ns>(i + 1) * 3600 * second;
    client_hosts.push_back(&net.add_host("client" + std::to_string(i + 1), skewed));
    net.connect(net.add_nic(*client_hosts.back(), nic), sw, faulty);
  }
  if (!o.pcap_dir.empty()) {
    std::filesystem::create_directories(o.pcap_dir);
    for (host* h : {&server_host, client_hosts[0], client_hosts[1]}) {
      std::string error;
      if (!net.capture(h->nic(), o.pcap_dir + "/" + h->name() + ".pcap", error)) {
        std::fprintf(stderr, "sim_demo: %s\n", error.c_str());
        return 1;
      }
    }
  }

  std::unique_ptr<echo_server> server;
  std::vector<std::unique_ptr<echo_client>> clients;
  try {
    server = std::make_unique<echo_server>(server_host, server_nic);
    for (host* h : client_hosts) {
      clients.push_back(
          std::make_unique<echo_client>(*h, h->nic(), ip_of(server_host), o.requests));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sim_demo: %s\n", e.what());
    return 1;
  }
  for (auto& c : clients) {
    c->start();
  }

  const bool done =
      net.run_until([&] { return clients[0]->done() && clients[1]->done(); }, 600 * second);
  if (o.hash_only) {
    std::printf("seed %llu trace %016llx events %016llx\n", static_cast<unsigned long long>(o.seed),
                static_cast<unsigned long long>(net.trace_hash()),
                static_cast<unsigned long long>(net.event_log_hash()));
    return done ? 0 : 1;
  }
  std::map<std::string, int> faults;
  for (const event_record& e : net.event_log()) {
    ++faults[to_string(e.what)];
  }
  std::printf("sim_demo: seed %llu, 2 clients x %u echo requests over a simulated switch\n",
              static_cast<unsigned long long>(o.seed), o.requests);
  if (o.swarm) {
    std::printf(
        "  links     swarm: delay %.0f us, loss %.1f%%, duplicate %.1f%%, reorder %.1f%%, "
        "corrupt %.1f%%\n",
        static_cast<double>(faulty.delay) / 1e3, faulty.loss * 100, faulty.duplicate * 100,
        faulty.reorder * 100, faulty.corrupt * 100);
  } else {
    std::printf(
        "  links     200 us +- 50 us, 1 Gbit/s, loss %.1f%%, duplicate 2%%, reorder 3%%, "
        "corrupt 1%%\n",
        o.loss * 100);
  }
  std::printf("  hosts     each runs the dpdk-net IPv4 stack (ARP, IPv4, UDP) on its own clock\n");
  for (const auto& c : clients) {
    const stack::stack_counters k = c->ip().counters();
    std::printf(
        "  %-8s  %u/%u answered, %u retransmissions, %u stale or bad replies ignored, "
        "%llu ARP requests\n",
        c->sim_host().name().c_str(), c->next, o.requests, c->retransmits, c->stale_replies,
        static_cast<unsigned long long>(k.arp.requests_sent));
  }
  const stack::stack_counters sk = server->ip().counters();
  std::uint64_t malformed = 0;
  for (std::uint64_t m : sk.malformed) {
    malformed += m;
  }
  std::printf("  server    %llu echoed, %llu corrupt frames dropped by the stack\n",
              static_cast<unsigned long long>(server->echoed),
              static_cast<unsigned long long>(malformed + sk.arp.malformed));
  std::printf("  faults   ");
  for (const auto& [kind, n] : faults) {
    std::printf(" %s=%d", kind.c_str(), n);
  }
  std::printf("\n  time      %.3f s simulated, %llu events\n", static_cast<double>(net.now()) / 1e9,
              static_cast<unsigned long long>(net.events().events_run()));
  std::printf("  hashes    trace %016llx, event log %016llx (same seed => same hashes)\n",
              static_cast<unsigned long long>(net.trace_hash()),
              static_cast<unsigned long long>(net.event_log_hash()));
  if (!o.pcap_dir.empty()) {
    std::printf("  pcaps     %s/{server,client1,client2}.pcap\n", o.pcap_dir.c_str());
  }
  std::printf("  result    %s\n", done ? "OK" : "FAILED (not all requests answered)");
  if (!done) {
    std::string rerun = repro_command(o.seed, argv[0], "", o.swarm);
    for (int i = 1; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--seed") {
        ++i;  // the line sets the seed
      } else {
        rerun += std::string(" ") + argv[i];
      }
    }
    std::printf("  rerun     %s\n", rerun.c_str());
  }
  return done ? 0 : 1;
}
