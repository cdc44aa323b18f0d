// Our stacks on simulated networks, driven by sim::stack_host: ARP resolution, UDP and ping over
// lossy, duplicating, reordering links (fault rates from the seed in swarm mode), deterministic;
// a host's clock skew reaches its stack.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "dpdk_net/sim/gtest.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/stack_host.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::stack {
namespace {
namespace stack_sim_test {

using sim::network;
using wire::ipv4_address;

constexpr std::uint16_t test_port = 7000;

/// NICs with a smaller pool than the default: plenty for these tests, and quicker to build.
sim::nic_config small_pool() {
  sim::nic_config c;
  c.pool_size = 512;
  return c;
}

stack_config config_for(ipv4_address ip) {
  stack_config c;
  c.address = ip;
  return c;
}

/// A stack host with a UDP socket on test_port that records the 32-bit numbers it receives.
class udp_host : public sim::stack_host {
 public:
  udp_host(sim::host& h, sim::sim_nic& n, ipv4_address address)
      : stack_host(h, n, config_for(address)) {
    EXPECT_FALSE(ip().udp_bind(test_port, sock));
  }
  stack::socket_id sock = 0;
  std::vector<std::uint32_t> received;

  void send(ipv4_address dst, std::uint32_t value) {
    std::array<std::byte, 4> body{};
    wire::store32(body.data(), value);
    ip().udp_send_to(sock, dst, test_port, body, now());
    pump();
  }
  /// Resolves dst before the measured traffic: a lost ARP exchange costs a 1 s retry, during
  /// which only the newest few datagrams may wait (the bounded queue doing its job).
  void warm_up(network& net, ipv4_address dst) {
    for (int i = 0; i < 30 && !ip().arp_layer().lookup(dst); ++i) {
      send(dst, UINT32_MAX);
      net.run_for(1100 * millisecond);
    }
    EXPECT_TRUE(ip().arp_layer().lookup(dst)) << "ARP never resolved";
  }

 protected:
  void on_pump(time_ns) override {
    while (auto d = ip().udp_receive(sock)) {
      const std::uint32_t v = wire::load32(d->payload().data());
      if (v != UINT32_MAX) {
        received.push_back(v);
      }
    }
  }
};

/// The link faults of a test: `fixed` normally, drawn from the seed in swarm mode.
sim::link_config faults_for(std::uint64_t seed, bool swarm, const sim::link_config& fixed) {
  return swarm ? sim::link_config::swarm(seed) : fixed;
}

/// A floor for how many of n messages crossing `hops` links with faults c arrive: the expected
/// number less a generous margin (bursty loss varies more than Bernoulli loss).
double delivery_floor(const sim::link_config& c, int hops, double n) {
  const auto& ge = c.burst_loss;
  const double bad =
      ge.p_good_to_bad > 0 ? ge.p_good_to_bad / (ge.p_good_to_bad + ge.p_bad_to_good) : 0.0;
  const double per_hop = 1.0 - c.loss - c.corrupt - bad;
  return n * std::pow(per_hop, hops) * 0.75 - 3;
}

/// Three stack hosts on `sw` (198.18.0.<first_octet + i>), each having resolved the others.
void switch_hosts(network& net, sim::sim_switch& sw, const sim::link_config& c,
                  std::uint8_t first_octet, std::vector<std::unique_ptr<udp_host>>& hosts,
                  std::vector<ipv4_address>& ips) {
  for (std::uint8_t i = 0; i < 3; ++i) {
    sim::host& h = net.add_host("h" + std::to_string(i));
    sim::sim_nic& n = net.add_nic(h, small_pool());
    net.connect(n, sw, c);
    ips.push_back(
        ipv4_address::from_octets(198, 18, 0, static_cast<std::uint8_t>(first_octet + i)));
    hosts.push_back(std::make_unique<udp_host>(h, n, ips.back()));
  }
  for (std::size_t from = 0; from < 3; ++from) {
    for (std::size_t to = 0; to < 3; ++to) {
      if (from != to) {
        hosts[from]->warm_up(net, ips[to]);
      }
    }
  }
}

TEST(StackSim, UdpAcrossALossyLinkAfterArp) {
  sim::for_each_seed([](std::uint64_t seed, bool swarm) {
    network net(seed);
    sim::link_config fixed;
    fixed.loss = 0.1;
    fixed.delay = 100 * microsecond;
    const sim::link_config c = faults_for(seed, swarm, fixed);
    sim::host& ha = net.add_host("a");
    sim::host& hb = net.add_host("b");
    sim::sim_nic& na = net.add_nic(ha, small_pool());
    sim::sim_nic& nb = net.add_nic(hb, small_pool());
    net.connect(na, nb, c);
    const ipv4_address ia = ipv4_address::from_octets(198, 18, 0, 1);
    const ipv4_address ib = ipv4_address::from_octets(198, 18, 0, 2);
    udp_host a(ha, na, ia);
    udp_host b(hb, nb, ib);
    a.warm_up(net, ib);
    b.received.clear();
    const std::uint64_t sent_before = a.ip().counters().udp_sent;
    const time_ns start = net.now();
    for (std::uint32_t i = 0; i < 200; ++i) {
      net.events().at(start + i * millisecond, [&a, ib, i] { a.send(ib, i); });
    }
    net.run_for(2 * second);
    EXPECT_GE(static_cast<double>(b.received.size()), delivery_floor(c, 1, 200));
    std::vector<std::uint32_t> sorted = b.received;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_TRUE(sorted.empty() || sorted.back() < 200U);
    if (c.duplicate == 0) {
      // UDP does not deduplicate: only a link that never duplicates gives each one exactly once.
      EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
    }
    if (!swarm) {
      EXPECT_LT(b.received.size(), 200U);  // 10 % loss: some are lost
    }
    EXPECT_EQ(a.ip().counters().udp_sent - sent_before, 200U);
    EXPECT_EQ(b.ip().arp_layer().lookup(ia), na.info().mac);  // b learned a from its request
    EXPECT_EQ(a.ip().arp_layer().lookup(ib), nb.info().mac);
  });
}

TEST(StackSim, ThreeHostsOnASwitchResolveEachOtherAndTalk) {
  sim::for_each_seed([](std::uint64_t seed, bool swarm) {
    network net(seed);
    sim::sim_switch& sw = net.add_switch("sw");
    sim::link_config fixed;
    fixed.loss = 0.05;
    fixed.delay = 50 * microsecond;
    const sim::link_config c = faults_for(seed, swarm, fixed);
    std::vector<std::unique_ptr<udp_host>> hosts;
    std::vector<ipv4_address> ips;
    switch_hosts(net, sw, c, 10, hosts, ips);
    for (auto& h : hosts) {
      h->received.clear();
    }
    const time_ns start = net.now();
    // Every host sends 50 datagrams to each of the others, 1 ms apart.
    for (std::uint32_t k = 0; k < 50; ++k) {
      for (std::size_t from = 0; from < 3; ++from) {
        for (std::size_t to = 0; to < 3; ++to) {
          if (from != to) {
            net.events().at(start + k * millisecond, [&hosts, &ips, from, to, k] {
              hosts[from]->send(ips[to], static_cast<std::uint32_t>(from * 1000 + k));
            });
          }
        }
      }
    }
    net.run_for(2 * second);
    for (std::size_t i = 0; i < 3; ++i) {
      // 100 datagrams each (two senders x 50), two hops through the switch.
      EXPECT_GE(static_cast<double>(hosts[i]->received.size()), delivery_floor(c, 2, 100))
          << "host " << i;
      for (std::size_t j = 0; j < 3; ++j) {
        if (i != j) {
          EXPECT_EQ(hosts[i]->ip().arp_layer().lookup(ips[j]), hosts[j]->nic().info().mac);
        }
      }
    }
    EXPECT_GE(sw.flooded(), 3U);  // ARP requests are broadcasts: flooded to every port
  });
}

/// Three stacks on a switch over links that lose, duplicate and reorder: every host pings the
/// others and sends them UDP. Returns the run's fingerprint (for the determinism check).
sim::run_fingerprint faulty_ip_scenario(std::uint64_t seed, bool swarm,
                                        std::array<stack_counters, 3>* out) {
  network net(seed);
  sim::sim_switch& sw = net.add_switch("sw");
  sim::link_config fixed;
  fixed.delay = 80 * microsecond;
  fixed.jitter = 40 * microsecond;
  fixed.loss = 0.03;
  fixed.duplicate = 0.03;
  fixed.reorder = 0.05;
  std::vector<std::unique_ptr<udp_host>> hosts;
  std::vector<ipv4_address> ips;
  switch_hosts(net, sw, faults_for(seed, swarm, fixed), 20, hosts, ips);
  const time_ns start = net.now();
  std::array<std::uint64_t, 3> before{};
  for (std::size_t i = 0; i < 3; ++i) {
    before[i] = hosts[i]->ip().counters().udp_delivered;
  }
  for (std::uint32_t k = 0; k < 40; ++k) {
    for (std::size_t from = 0; from < 3; ++from) {
      const std::size_t to = (from + 1 + k % 2) % 3;
      net.events().at(start + k * millisecond, [&hosts, &ips, from, to, k] {
        udp_host& h = *hosts[from];
        std::array<std::byte, 32> data{};
        wire::store32(data.data(), k);
        h.ip().send_echo_request(ips[to], 1, static_cast<std::uint16_t>(k), data, h.now());
        h.send(ips[to], k);
      });
    }
  }
  net.run_for(2 * second);
  if (out != nullptr) {
    for (std::size_t i = 0; i < 3; ++i) {
      (*out)[i] = hosts[i]->ip().counters();
      (*out)[i].udp_delivered -= before[i];  // the measured traffic only
    }
  }
  return sim::run_fingerprint{net.trace_hash(), net.event_log_hash()};
}

TEST(StackSim, PingAndUdpOverLossDuplicationReorderingAreDeterministic) {
  sim::for_each_seed([](std::uint64_t seed, bool swarm) {
    sim::link_config c;
    c.loss = 0.03;
    if (swarm) {
      c = sim::link_config::swarm(seed);
    }
    std::array<stack_counters, 3> k{};
    faulty_ip_scenario(seed, swarm, &k);
    std::uint64_t requests = 0;
    std::uint64_t replies = 0;
    std::uint64_t answered = 0;
    for (const stack_counters& one : k) {
      requests += one.echo_requests_sent;
      replies += one.echo_replies_received;
      answered += one.icmp_echo_replies;
      EXPECT_GE(static_cast<double>(one.udp_delivered), delivery_floor(c, 2, 40));
    }
    EXPECT_EQ(requests, 120U);
    // Each ping crosses two hops twice; duplicates can add replies, losses remove some.
    EXPECT_GE(static_cast<double>(replies), delivery_floor(c, 4, 120));
    // At most one answer per request and per duplicate of it (3 % a hop in the fixed case).
    EXPECT_LE(answered, swarm ? 240U : 140U);
    // The same seed gives the same IP traffic, byte for byte.
    EXPECT_EQ(sim::double_run(
                  seed, [swarm](std::uint64_t s) { return faulty_ip_scenario(s, swarm, nullptr); }),
              "");
  });
}

/// The global times at which `nic` received ARP requests.
struct arp_watch {
  std::vector<time_ns> requests;
  explicit arp_watch(sim::sim_nic& nic) {
    nic.owner().on_receive = [this, &nic](sim::host& h) {
      std::array<packet, 8> in;
      std::size_t n = 0;
      while ((n = nic.rx_burst(0, in)) != 0) {
        for (std::size_t i = 0; i < n; ++i) {
          const auto eth = wire::parse_ethernet(in[i].front());
          if (eth && eth.header.ethertype == wire::ethertype::arp) {
            requests.push_back(h.net().now());
          }
        }
        free_burst(std::span(in.data(), n));
      }
    };
  }
};

TEST(StackSim, ClockSkewReachesTheStack) {
  // a's clock is 3 h ahead and runs 10 % fast. Its stack lives on that clock: timer deadlines
  // are in local time, and ARP's 1 s retry takes 1 s / 1.1 of simulated (true) time.
  network net(5);
  sim::host_config skewed;
  skewed.clock_offset = 3 * 3600 * second;
  skewed.drift_ppm = 100'000;
  sim::host& ha = net.add_host("a", skewed);
  sim::host& hb = net.add_host("b");
  sim::sim_nic& na = net.add_nic(ha, small_pool());
  sim::sim_nic& nb = net.add_nic(hb, small_pool());
  net.connect(na, nb);
  arp_watch watch(nb);
  udp_host a(ha, na, ipv4_address::from_octets(198, 18, 0, 1));
  const time_ns sent_at = a.now();
  a.send(ipv4_address::from_octets(198, 18, 0, 99), 1);  // nobody has it: ARP retries
  EXPECT_GE(a.ip().next_deadline(), skewed.clock_offset) << "the stack's deadlines are local time";
  EXPECT_LE(a.ip().next_deadline(), sent_at + second + millisecond);
  net.run_for(5 * second);
  ASSERT_EQ(watch.requests.size(), 3U);  // arp_config::max_requests
  for (std::size_t i = 1; i < watch.requests.size(); ++i) {
    const time_ns gap = watch.requests[i] - watch.requests[i - 1];
    // 1 s of a's clock is 909.09 ms of true time (one 1 ms timer tick of slack).
    EXPECT_NEAR(static_cast<double>(gap), 1e9 / 1.1, 1.1e6) << "gap " << i;
  }
  EXPECT_EQ(a.ip().counters().arp.resolution_failed, 1U);
}

TEST(StackSim, DriverArmsOneTimerAndSurvivesACrash) {
  // The driver's single timer keeps the stack's ARP retries going with no traffic at all, and a
  // crashed host's stack is rebuilt on restart (its ARP cache starts empty again).
  network net(6);
  sim::host& ha = net.add_host("a");
  sim::host& hb = net.add_host("b");
  sim::sim_nic& na = net.add_nic(ha, small_pool());
  sim::sim_nic& nb = net.add_nic(hb, small_pool());
  net.connect(na, nb);
  const ipv4_address ia = ipv4_address::from_octets(198, 18, 0, 1);
  const ipv4_address ib = ipv4_address::from_octets(198, 18, 0, 2);
  udp_host a(ha, na, ia);
  udp_host b(hb, nb, ib);
  int restarts = 0;
  b.restarted = [&restarts](sim::stack_host& h) {
    ++restarts;
    stack::socket_id s = 0;
    EXPECT_FALSE(h.ip().udp_bind(test_port, s));
  };
  a.send(ib, 1);
  net.run_for(100 * millisecond);
  ASSERT_EQ(b.received, (std::vector<std::uint32_t>{1}));
  EXPECT_TRUE(b.ip().arp_layer().lookup(ia));
  const std::uint64_t pumps = a.pumps();
  net.run_for(10 * second);  // idle: no deadline worth a wake-up except ARP's aging
  EXPECT_LT(a.pumps() - pumps, 10U) << "an idle stack host must not spin";
  hb.crash();
  hb.restart();
  EXPECT_EQ(restarts, 1);
  EXPECT_FALSE(b.ip().arp_layer().lookup(ia)) << "a fresh stack after the restart";
  a.send(ib, 2);
  net.run_for(100 * millisecond);
  EXPECT_EQ(b.ip().counters().udp_delivered, 1U);  // the new stack's socket got it
}

TEST(StackSim, ABusyTxRingHoldsTheStacksFramesUntilItDrains) {
  // a's NIC has an 8-frame tx ring at 100 Mbit/s: a burst of 64 datagrams does not fit. The
  // driver keeps what tx_burst refused and offers it again as the ring drains: all 64 arrive,
  // in order.
  network net(7);
  sim::nic_config ring = small_pool();
  ring.tx_ring = 8;
  ring.line_rate_bps = 100'000'000;
  sim::host& ha = net.add_host("a");
  sim::host& hb = net.add_host("b");
  sim::sim_nic& na = net.add_nic(ha, ring);
  sim::sim_nic& nb = net.add_nic(hb, small_pool());
  net.connect(na, nb);
  const ipv4_address ib = ipv4_address::from_octets(198, 18, 0, 2);
  udp_host a(ha, na, ipv4_address::from_octets(198, 18, 0, 1));
  udp_host b(hb, nb, ib);
  a.warm_up(net, ib);
  b.received.clear();
  std::array<std::byte, 1000> body{};
  for (std::uint32_t i = 0; i < 64; ++i) {
    wire::store32(body.data(), i);
    ASSERT_FALSE(a.ip().udp_send_to(a.sock, ib, test_port, body, a.now()));
  }
  a.pump();
  EXPECT_EQ(na.tx_in_ring(), 8U);
  EXPECT_GT(a.tx_backlog(), 0U);
  net.run_for(20 * millisecond);  // 64 x 1042 bytes at 100 Mbit/s: about 5.3 ms
  EXPECT_GT(na.stats().tx_busy, 0U);
  EXPECT_GT(a.tx_busy(), 0U);
  EXPECT_EQ(a.tx_backlog(), 0U);
  EXPECT_EQ(a.ip().counters().tx_queue_full, 0U);
  std::vector<std::uint32_t> expected(64);
  for (std::uint32_t i = 0; i < 64; ++i) {
    expected[i] = i;
  }
  EXPECT_EQ(b.received, expected);
}

TEST(StackSim, TheDriverRefusesAConfigTheNicCannotCarry) {
  network net(8);
  sim::nic_config jumbo_less = small_pool();
  jumbo_less.mtu = 1500;
  sim::host& h = net.add_host("a");
  sim::sim_nic& n = net.add_nic(h, jumbo_less);
  stack_config c = config_for(ipv4_address::from_octets(198, 18, 0, 1));
  c.mtu = 9000;  // more than the NIC carries
  try {
    sim::stack_host bad(h, n, c);
    ADD_FAILURE() << "a 9000-byte MTU on a 1500-byte NIC was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("mtu"), std::string::npos) << e.what();
  }
  c.mtu = 1500;
  sim::stack_host good(h, n, c);
  EXPECT_EQ(good.ip().config().mac, n.info().mac) << "the MAC defaults to the NIC's";
}

}  // namespace stack_sim_test
}  // namespace
}  // namespace dpdk_net::stack
