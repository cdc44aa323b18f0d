// Two of our stacks on a simulated lossy link: ARP resolution, UDP both ways, deterministic.
#include <gtest/gtest.h>

#include "dpdk_net/sim/gtest.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"

#include <algorithm>
#include <memory>
#include <string>

namespace dpdk_net::stack {
namespace {

using sim::network;
using wire::ipv4_address;

/// A host running our stack: the simulator wakes it on rx; a timer drives the stack's deadlines.
struct stack_host {
  sim::host& h;
  sim::sim_nic& nic;
  stack st;
  stack::socket_id sock = 0;
  std::vector<std::uint32_t> received;
  time_ns timer_at = UINT64_MAX;  // the host timer already armed for the stack's deadline

  stack_host(network& net, sim::host& host, sim::sim_nic& n, ipv4_address ip, std::uint64_t seed)
      : h(host), nic(n), st(make_config(n, ip), n.tx_pool(0), seed, net.now()) {
    EXPECT_FALSE(st.udp_bind(7000, sock));
    h.on_receive = [this](sim::host&) { pump(); };
  }
  static stack_config make_config(sim::sim_nic& n, ipv4_address ip) {
    stack_config c;
    c.mac = n.info().mac;
    c.address = ip;
    return c;
  }
  /// Resolves dst before the measured traffic: a lost ARP exchange costs a 1 s retry, during
  /// which only the newest few datagrams may wait (the bounded queue doing its job).
  void warm_up(network& net, ipv4_address dst) {
    for (int i = 0; i < 30 && !st.arp_layer().lookup(dst); ++i) {
      const std::array<std::byte, 4> probe{};
      st.udp_send_to(sock, dst, 7000, probe, net.now());
      pump();
      net.run_for(1100 * millisecond);
    }
    EXPECT_TRUE(st.arp_layer().lookup(dst)) << "ARP never resolved";
  }
  void pump() {
    const time_ns now = h.net().now();
    std::array<packet, 32> in;
    std::size_t n = 0;
    while ((n = nic.rx_burst(0, in)) != 0) {
      for (std::size_t i = 0; i < n; ++i) {
        st.receive(std::move(in[i]), now);
      }
    }
    st.advance(now);
    while (auto d = st.udp_receive(sock)) {
      received.push_back(wire::load32(d->payload().data()));
    }
    while ((n = st.drain_tx(in)) != 0) {
      nic.tx_burst(0, std::span(in.data(), n));
    }
    const time_ns next = st.next_deadline();
    if (next != UINT64_MAX && next > now && next < timer_at) {
      timer_at = next;  // one host timer for the earliest deadline, not one per pump
      h.after(next - now, [this] {
        timer_at = UINT64_MAX;
        pump();
      });
    }
  }
};

/// Three stack hosts on `sw` (198.18.0.<first_octet + i>), each having resolved the others.
void switch_hosts(network& net, sim::sim_switch& sw, const sim::link_config& c, std::uint64_t seed,
                  std::uint8_t first_octet, std::vector<std::unique_ptr<stack_host>>& hosts,
                  std::vector<ipv4_address>& ips) {
  for (std::uint8_t i = 0; i < 3; ++i) {
    sim::host& h = net.add_host("h" + std::to_string(i));
    sim::sim_nic& n = net.add_nic(h);
    net.connect(n, sw, c);
    ips.push_back(
        ipv4_address::from_octets(198, 18, 0, static_cast<std::uint8_t>(first_octet + i)));
    hosts.push_back(std::make_unique<stack_host>(net, h, n, ips.back(), seed + i));
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
  sim::for_each_seed([](std::uint64_t seed, bool) {
    network net(seed);
    sim::link_config c;
    c.loss = 0.1;
    c.delay = 100 * microsecond;
    sim::host& ha = net.add_host("a");
    sim::host& hb = net.add_host("b");
    sim::sim_nic& na = net.add_nic(ha);
    sim::sim_nic& nb = net.add_nic(hb);
    net.connect(na, nb, c);
    const ipv4_address ia = ipv4_address::from_octets(198, 18, 0, 1);
    const ipv4_address ib = ipv4_address::from_octets(198, 18, 0, 2);
    stack_host a(net, ha, na, ia, seed);
    stack_host b(net, hb, nb, ib, seed + 1);
    a.warm_up(net, ib);
    b.received.clear();
    const std::uint64_t sent_before = a.st.counters().udp_sent;
    const time_ns start = net.now();
    for (std::uint32_t i = 0; i < 200; ++i) {
      net.events().at(start + i * millisecond, [&a, ib, i] {
        std::array<std::byte, 4> body{};
        wire::store32(body.data(), i);
        a.st.udp_send_to(a.sock, ib, 7000, body, a.h.net().now());
        a.pump();
      });
    }
    net.run_for(2 * second);
    // With ARP resolved, about 90 % of the datagrams arrive, each exactly once.
    EXPECT_GT(b.received.size(), 150U);
    EXPECT_LT(b.received.size(), 200U);
    std::vector<std::uint32_t> sorted = b.received;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
    EXPECT_EQ(a.st.counters().udp_sent - sent_before, 200U);
    EXPECT_EQ(b.st.arp_layer().lookup(ia), na.info().mac);  // b learned a from its request
    EXPECT_EQ(a.st.arp_layer().lookup(ib), nb.info().mac);
  });
}

TEST(StackSim, ThreeHostsOnASwitchResolveEachOtherAndTalk) {
  sim::for_each_seed([](std::uint64_t seed, bool) {
    network net(seed);
    sim::sim_switch& sw = net.add_switch("sw");
    sim::link_config c;
    c.loss = 0.05;
    c.delay = 50 * microsecond;
    std::vector<std::unique_ptr<stack_host>> hosts;
    std::vector<ipv4_address> ips;
    switch_hosts(net, sw, c, seed, 10, hosts, ips);
    for (auto& h : hosts) {
      h->received.clear();
    }
    const time_ns start = net.now();
    // Every host sends 50 datagrams to each of the others, 1 ms apart.
    for (std::uint32_t k = 0; k < 50; ++k) {
      for (std::size_t from = 0; from < 3; ++from) {
        for (std::size_t to = 0; to < 3; ++to) {
          if (from == to) {
            continue;
          }
          net.events().at(start + k * millisecond, [&hosts, &ips, from, to, k] {
            std::array<std::byte, 4> body{};
            wire::store32(body.data(), static_cast<std::uint32_t>(from * 1000 + k));
            stack_host& h = *hosts[from];
            h.st.udp_send_to(h.sock, ips[to], 7000, body, h.h.net().now());
            h.pump();
          });
        }
      }
    }
    net.run_for(2 * second);
    for (std::size_t i = 0; i < 3; ++i) {
      // About 90 % of 100 datagrams (two senders x 50, a 5 % loss on each of two hops).
      EXPECT_GT(hosts[i]->received.size(), 70U) << "host " << i;
      for (std::size_t j = 0; j < 3; ++j) {
        if (i != j) {
          EXPECT_EQ(hosts[i]->st.arp_layer().lookup(ips[j]), hosts[j]->nic.info().mac);
        }
      }
    }
    EXPECT_GE(sw.flooded(), 3U);  // ARP requests are broadcasts: flooded to every port
  });
}

/// Three stacks on a switch over links that lose, duplicate and reorder: every host pings the
/// others and sends them UDP. Returns the run's fingerprint (for the determinism check).
sim::run_fingerprint faulty_ip_scenario(std::uint64_t seed, std::array<stack_counters, 3>* out) {
  network net(seed);
  sim::sim_switch& sw = net.add_switch("sw");
  sim::link_config c;
  c.delay = 80 * microsecond;
  c.jitter = 40 * microsecond;
  c.loss = 0.03;
  c.duplicate = 0.03;
  c.reorder = 0.05;
  std::vector<std::unique_ptr<stack_host>> hosts;
  std::vector<ipv4_address> ips;
  switch_hosts(net, sw, c, seed, 20, hosts, ips);
  const time_ns start = net.now();
  std::array<std::uint64_t, 3> before{};
  for (std::size_t i = 0; i < 3; ++i) {
    before[i] = hosts[i]->st.counters().udp_delivered;
  }
  for (std::uint32_t k = 0; k < 40; ++k) {
    for (std::size_t from = 0; from < 3; ++from) {
      const std::size_t to = (from + 1 + k % 2) % 3;
      net.events().at(start + k * millisecond, [&hosts, &ips, from, to, k] {
        stack_host& h = *hosts[from];
        std::array<std::byte, 32> data{};
        wire::store32(data.data(), k);
        h.st.send_echo_request(ips[to], 1, static_cast<std::uint16_t>(k), data, h.h.net().now());
        h.st.udp_send_to(h.sock, ips[to], 7000, std::span(data).first(4), h.h.net().now());
        h.pump();
      });
    }
  }
  net.run_for(2 * second);
  if (out != nullptr) {
    for (std::size_t i = 0; i < 3; ++i) {
      (*out)[i] = hosts[i]->st.counters();
      (*out)[i].udp_delivered -= before[i];  // the measured traffic only
    }
  }
  return sim::run_fingerprint{net.trace_hash(), net.event_log_hash()};
}

TEST(StackSim, PingAndUdpOverLossDuplicationReorderingAreDeterministic) {
  sim::for_each_seed([](std::uint64_t seed, bool) {
    std::array<stack_counters, 3> c{};
    faulty_ip_scenario(seed, &c);
    std::uint64_t requests = 0;
    std::uint64_t replies = 0;
    std::uint64_t answered = 0;
    for (const stack_counters& k : c) {
      requests += k.echo_requests_sent;
      replies += k.echo_replies_received;
      answered += k.icmp_echo_replies;
      EXPECT_GT(k.udp_delivered, 30U);  // ~40 sent to each host, a few % lost per hop
    }
    EXPECT_EQ(requests, 120U);
    // Each ping crosses two hops twice; duplicates can add replies, losses remove some.
    EXPECT_GT(replies, 90U);
    EXPECT_LE(answered, 140U);
    // The same seed gives the same IP traffic, byte for byte.
    EXPECT_EQ(sim::double_run(seed, [](std::uint64_t s) { return faulty_ip_scenario(s, nullptr); }),
              "");
  });
}

}  // namespace
}  // namespace dpdk_net::stack
