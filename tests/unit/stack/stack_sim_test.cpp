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
    for (std::uint32_t i = 0; i < 200; ++i) {
      net.events().at(i * millisecond, [&a, ib, i] {
        std::array<std::byte, 4> body{};
        wire::store32(body.data(), i);
        a.st.udp_send_to(a.sock, ib, 7000, body, a.h.net().now());
        a.pump();
      });
    }
    net.run_for(2 * second);
    // ARP may need retries under loss; then about 90 % of datagrams arrive, each exactly once.
    EXPECT_GT(b.received.size(), 150U);
    EXPECT_LT(b.received.size(), 200U);
    std::vector<std::uint32_t> sorted = b.received;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
    EXPECT_EQ(a.st.counters().udp_sent, 200U);
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
    for (std::uint8_t i = 0; i < 3; ++i) {
      sim::host& h = net.add_host("h" + std::to_string(i));
      sim::sim_nic& n = net.add_nic(h);
      net.connect(n, sw, c);
      ips.push_back(ipv4_address::from_octets(198, 18, 0, static_cast<std::uint8_t>(10 + i)));
      hosts.push_back(std::make_unique<stack_host>(net, h, n, ips.back(), seed + i));
    }
    // Every host sends 50 datagrams to each of the others, 1 ms apart.
    for (std::uint32_t k = 0; k < 50; ++k) {
      for (std::size_t from = 0; from < 3; ++from) {
        for (std::size_t to = 0; to < 3; ++to) {
          if (from == to) {
            continue;
          }
          net.events().at(k * millisecond, [&hosts, &ips, from, to, k] {
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

}  // namespace
}  // namespace dpdk_net::stack
