// sim_demo: two clients and a server on a simulated switch with faulty links. Clients send UDP
// requests and retransmit on a timer until the server's echo comes back; every frame is written
// to a pcap per host. The same seed gives the same bytes, run after run and build after build.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace {

using namespace dpdk_net;
using namespace dpdk_net::sim;

constexpr std::uint16_t echo_port = 7;

struct options {
  std::uint64_t seed = 1;
  std::uint32_t requests = 200;
  double loss = 0.05;
  std::string pcap_dir;
  bool hash_only = false;
};

wire::ipv4_address ip_of(const host& h) {
  return wire::ipv4_address::from_octets(198, 18, 0, static_cast<std::uint8_t>(10 + h.index()));
}

/// A UDP datagram from `from` to the MAC/IP/port given, carrying `body`.
packet udp(sim_nic& from, mac_address to_mac, wire::ipv4_address to_ip, std::uint16_t sport,
           std::uint16_t dport, std::span<const std::byte> body) {
  packet p = from.tx_pool(0).alloc();
  if (!p) {
    return p;
  }
  std::byte* d = p.append(42 + body.size());
  wire::write_ethernet(std::span(d, 14), wire::ethernet_header{to_mac, from.info().mac,
                                                               wire::ethertype::ipv4, false, 0});
  wire::ipv4_header ip;
  ip.total_length = static_cast<std::uint16_t>(28 + body.size());
  ip.protocol = wire::ip_protocol::udp;
  ip.src = ip_of(from.owner());
  ip.dst = to_ip;
  wire::write_ipv4(std::span(d + 14, 20), ip);
  std::memcpy(d + 42, body.data(), body.size());
  wire::write_udp(std::span(d + 34, 8), wire::udp_header{sport, dport, 0, 0},
                  std::span<const std::byte>(d + 42, body.size()), {ip.src, to_ip});
  return p;
}

void send(sim_nic& nic, packet p) {
  std::array<packet, 1> one{std::move(p)};
  nic.tx_burst(0, one);
}

struct client {
  host* h = nullptr;
  sim_nic* nic = nullptr;
  std::uint32_t next = 0;      // next request to send
  std::uint32_t answered = 0;  // replies received for the outstanding request
  std::uint32_t retransmits = 0;
  std::uint32_t stale_replies = 0;
  std::function<void()> send_current;  // sends request `next` and arms its retransmit timer
};

int parse(int argc, char** argv, options& o) {
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
      if (*end != '\0') {
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
    } else if (a == "--pcap-dir") {
      o.pcap_dir = value("--pcap-dir");
    } else if (a == "--hash") {
      o.hash_only = true;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: sim_demo [--seed N] [--requests N] [--loss P] [--pcap-dir DIR] [--hash]\n"
          "  Two clients exchange N UDP requests each with an echo server over a simulated\n"
          "  switch whose links lose, duplicate, reorder and corrupt frames (seeded).\n"
          "  --hash prints only the run's fingerprint (trace and event-log hashes).\n");
      return 0;
    } else {
      std::fprintf(stderr, "sim_demo: unknown argument '%s' (try --help)\n", argv[i]);
      return 2;
    }
  }
  return -1;
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

  host& server = net.add_host("server");
  sim_nic& server_nic = net.add_nic(server);
  net.connect(server_nic, sw, faulty);
  std::vector<client> clients(2);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    host_config skewed;
    skewed.drift_ppm = i == 0 ? 50 : -30;  // the clients' clocks disagree a little
    clients[i].h = &net.add_host("client" + std::to_string(i + 1), skewed);
    clients[i].nic = &net.add_nic(*clients[i].h);
    net.connect(*clients[i].nic, sw, faulty);
  }
  if (!o.pcap_dir.empty()) {
    std::filesystem::create_directories(o.pcap_dir);
    for (sim_nic* n : {&server_nic, clients[0].nic, clients[1].nic}) {
      std::string error;
      if (!net.capture(*n, o.pcap_dir + "/" + n->owner().name() + ".pcap", error)) {
        std::fprintf(stderr, "sim_demo: %s\n", error.c_str());
        return 1;
      }
    }
  }

  // The server echoes every valid request (corrupted ones fail their checksums and are dropped).
  std::uint64_t server_bad = 0;
  server.on_receive = [&](host&) {
    std::array<packet, 32> in;
    std::size_t n = 0;
    while ((n = server_nic.rx_burst(0, in)) != 0) {
      for (std::size_t i = 0; i < n; ++i) {
        const wire::decoded_frame d = wire::decode_frame(in[i].front());
        if (!d.accepted() || !d.udp || d.udp->dst_port != echo_port) {
          ++server_bad;
          continue;
        }
        send(server_nic,
             udp(server_nic, d.eth.src, d.ipv4->src, echo_port, d.udp->src_port, d.payload));
      }
      free_burst(std::span(in.data(), n));
    }
  };
  const mac_address server_mac = server_nic.info().mac;
  const wire::ipv4_address server_ip = ip_of(server);
  for (client& c : clients) {
    c.send_current = [&c, &o, server_mac, server_ip] {
      if (c.next >= o.requests) {
        return;
      }
      std::array<std::byte, 8> body{};
      wire::store32(body.data(), c.next);
      wire::store32(body.data() + 4, static_cast<std::uint32_t>(c.h->index()));
      send(*c.nic, udp(*c.nic, server_mac, server_ip, 4000, echo_port, body));
      const std::uint32_t sent = c.next;
      // Retransmit after 2 ms of the client's own clock unless the reply came.
      c.h->after(2 * millisecond, [&c, sent] {
        if (c.next == sent) {
          ++c.retransmits;
          c.send_current();
        }
      });
    };
    c.h->on_receive = [&c](host&) {
      std::array<packet, 32> in;
      std::size_t n = 0;
      while ((n = c.nic->rx_burst(0, in)) != 0) {
        for (std::size_t i = 0; i < n; ++i) {
          const wire::decoded_frame d = wire::decode_frame(in[i].front());
          if (d.accepted() && d.udp && d.payload.size() >= 4 &&
              wire::load32(d.payload.data()) == c.next) {
            ++c.next;
            c.send_current();
          } else {
            ++c.stale_replies;  // a duplicate, a late echo of a retransmitted request, or corrupt
          }
        }
        free_burst(std::span(in.data(), n));
      }
    };
    c.send_current();
  }

  const bool done = net.run_until(
      [&] { return clients[0].next >= o.requests && clients[1].next >= o.requests; }, 600 * second);
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
  std::printf(
      "  links     200 us +- 50 us, 1 Gbit/s, loss %.1f%%, duplicate 2%%, reorder 3%%, "
      "corrupt 1%%\n",
      o.loss * 100);
  for (const client& c : clients) {
    std::printf("  %-8s  %u/%u answered, %u retransmissions, %u stale or bad replies ignored\n",
                c.h->name().c_str(), c.next, o.requests, c.retransmits, c.stale_replies);
  }
  std::printf("  server    %llu corrupt or stray frames dropped\n",
              static_cast<unsigned long long>(server_bad));
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
  return done ? 0 : 1;
}
