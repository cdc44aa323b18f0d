// The packet-by-packet stack fixture: craft a frame, feed it at time t, collect what comes out.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::stack {

using wire::ipv4_address;

inline const mac_address our_mac{{0x02, 0, 0, 0, 0, 0x01}};
inline const mac_address peer_mac{{0x02, 0, 0, 0, 0, 0x02}};
inline const ipv4_address our_ip = ipv4_address::from_octets(198, 18, 0, 1);
inline const ipv4_address peer_ip = ipv4_address::from_octets(198, 18, 0, 2);

class StackTest : public ::testing::Test {
 protected:
  StackTest() = default;
  explicit StackTest(const stack_config& c) : st_{c, pool_, stack_secret{1234, 0}} {}
  static stack_config config() {
    stack_config c;
    c.mac = our_mac;
    c.address = our_ip;
    c.udp_queue = 4;
    return c;
  }

  /// A frame from the peer: Ethernet + IPv4 + the given L4 bytes (checksums right unless bent).
  packet frame(std::uint8_t protocol, std::span<const std::byte> l4, ipv4_address dst = our_ip,
               mac_address eth_dst = our_mac, ipv4_address src = peer_ip) {
    wire::ipv4_header h;
    h.protocol = protocol;
    h.src = src;
    h.dst = dst;
    return ip_frame(h, l4, eth_dst);
  }
  /// A frame from the peer with the IPv4 header h (its total length set here) and l4 after it.
  packet ip_frame(wire::ipv4_header h, std::span<const std::byte> l4,
                  mac_address eth_dst = our_mac) {
    packet p = pool_.alloc();
    std::byte* d = p.append(34 + l4.size());
    wire::write_ethernet(std::span(d, 14),
                         wire::ethernet_header{eth_dst, peer_mac, wire::ethertype::ipv4, false, 0});
    h.total_length = static_cast<std::uint16_t>(20 + l4.size());
    wire::write_ipv4(std::span(d + 14, 20), h);
    std::memcpy(d + 34, l4.data(), l4.size());
    return p;
  }
  packet ping(std::uint16_t seq, ipv4_address dst = our_ip, ipv4_address src = peer_ip,
              mac_address eth_dst = our_mac) {
    std::array<std::byte, 16> icmp{};
    std::memcpy(icmp.data() + 8, "pingdata", 8);
    wire::write_icmp(icmp,
                     wire::icmp_header{wire::icmp_type::echo_request, 0, 0, 0x42420000U | seq},
                     std::span(icmp).subspan(8));
    return frame(wire::ip_protocol::icmp, icmp, dst, eth_dst, src);
  }
  packet udp(std::uint16_t dport, const char* text, ipv4_address dst = our_ip,
             mac_address eth_dst = our_mac) {
    const std::size_t n = std::strlen(text);
    std::vector<std::byte> l4(8 + n);
    std::memcpy(l4.data() + 8, text, n);
    wire::write_udp(l4, wire::udp_header{5555, dport, 0, 0}, std::span(l4).subspan(8),
                    wire::pseudo_header{peer_ip, dst});
    return frame(wire::ip_protocol::udp, l4, dst, eth_dst);
  }
  /// Tells the stack who the peer is (an ARP request for us), and discards our reply.
  void learn_peer() { learn(peer_ip, peer_mac); }
  /// Tells the stack that ip is at mac (an ARP request from it for us); discards our reply.
  void learn(ipv4_address ip, mac_address mac) {
    std::array<std::byte, 42> f{};
    wire::write_ethernet(
        f, wire::ethernet_header{mac_address::broadcast(), mac, wire::ethertype::arp, false, 0});
    wire::write_arp(std::span(f).subspan(14),
                    wire::arp_packet{wire::arp_op::request, mac, ip, {}, our_ip});
    packet p = pool_.alloc();
    std::memcpy(p.append(f.size()), f.data(), f.size());
    st_.receive(std::move(p), now_);
    out();
  }
  std::vector<std::vector<std::byte>> out() {
    std::vector<std::vector<std::byte>> frames;
    std::array<packet, 64> burst;
    std::size_t n = 0;
    while ((n = st_.drain_tx(burst)) != 0) {
      for (std::size_t i = 0; i < n; ++i) {
        std::vector<std::byte> f(burst[i].length());
        burst[i].copy_out(0, f);
        frames.push_back(std::move(f));
      }
      free_burst(std::span(burst.data(), n));
    }
    return frames;
  }

  packet_pool pool_{packet_pool_config{}};
  time_ns now_ = 0;
  stack st_{config(), pool_, stack_secret{1234, 0}};
};

}  // namespace dpdk_net::stack
