// Frames for simulator tests: valid Ethernet/IPv4/UDP or TCP frames carrying a 32-bit sequence
// number, built with the wire builders.
#pragma once

#include <array>
#include <cstring>

#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::sim::test {

inline wire::ipv4_address ip_of(const host& h) {
  return wire::ipv4_address::from_octets(198, 18, 0, static_cast<std::uint8_t>(1 + h.index()));
}

/// A UDP frame from `from` to `to` carrying seq (4 bytes) + padding to `size` bytes of frame.
inline packet udp_frame(sim_nic& from, const sim_nic& to, std::uint32_t seq,
                        std::uint16_t sport = 1000, std::uint16_t dport = 2000,
                        std::size_t size = 64) {
  packet p = from.tx_pool(0).alloc();
  const std::size_t payload = size - 42;
  std::byte* d = p.append(size);
  wire::ethernet_header eth{to.info().mac, from.info().mac, wire::ethertype::ipv4, false, 0};
  wire::write_ethernet(std::span(d, 14), eth);
  wire::ipv4_header ip;
  ip.total_length = static_cast<std::uint16_t>(20 + 8 + payload);
  ip.protocol = wire::ip_protocol::udp;
  ip.src = ip_of(from.owner());
  ip.dst = ip_of(to.owner());
  wire::write_ipv4(std::span(d + 14, 20), ip);
  std::byte* body = d + 42;
  std::memset(body, 0, payload);
  wire::store32(body, seq);
  wire::write_udp(std::span(d + 34, 8), wire::udp_header{sport, dport, 0, 0},
                  std::span<const std::byte>(body, payload), wire::pseudo_header{ip.src, ip.dst});
  return p;
}

/// A TCP segment with the given flags (no payload).
inline packet tcp_frame(sim_nic& from, const sim_nic& to, std::uint8_t flags, std::uint32_t seq) {
  packet p = from.tx_pool(0).alloc();
  std::byte* d = p.append(54);
  wire::ethernet_header eth{to.info().mac, from.info().mac, wire::ethertype::ipv4, false, 0};
  wire::write_ethernet(std::span(d, 14), eth);
  wire::ipv4_header ip;
  ip.total_length = 40;
  ip.protocol = wire::ip_protocol::tcp;
  ip.src = ip_of(from.owner());
  ip.dst = ip_of(to.owner());
  wire::write_ipv4(std::span(d + 14, 20), ip);
  wire::tcp_header t;
  t.src_port = 5555;
  t.dst_port = 80;
  t.seq = seq;
  t.flags = flags;
  wire::write_tcp(std::span(d + 34, 20), t);
  wire::set_tcp_checksum(std::span(d + 34, 20), wire::pseudo_header{ip.src, ip.dst});
  return p;
}

/// The sequence number of a frame made by udp_frame (or tcp_frame), or UINT32_MAX if it is not
/// a valid one (e.g. corrupted: the checksums catch it).
inline std::uint32_t seq_of(const packet& p) {
  const wire::decoded_frame d = wire::decode_frame(p.front());
  if (!d.accepted()) {
    return UINT32_MAX;
  }
  if (d.tcp) {
    return d.tcp->seq;
  }
  return d.udp && d.payload.size() >= 4 ? wire::load32(d.payload.data()) : UINT32_MAX;
}

inline void send(sim_nic& from, packet p) {
  std::array<packet, 1> one{std::move(p)};
  from.tx_burst(0, one);
}

/// Receives everything pending on every queue; returns the sequence numbers in arrival order.
inline std::vector<std::uint32_t> drain(sim_nic& nic) {
  std::vector<std::uint32_t> seqs;
  std::array<packet, 32> in;
  for (std::uint16_t q = 0; q < nic.info().rx_queues; ++q) {
    std::size_t n = 0;
    while ((n = nic.rx_burst(q, in)) != 0) {
      for (std::size_t i = 0; i < n; ++i) {
        seqs.push_back(seq_of(in[i]));
      }
      free_burst(std::span(in.data(), n));
    }
  }
  return seqs;
}

/// Host a sends `count` UDP frames to host b, one every `gap`; b records what arrives.
struct blaster {
  network& net;
  sim_nic& a;
  sim_nic& b;
  std::vector<std::uint32_t> received;

  blaster(network& n, sim_nic& from, sim_nic& to) : net(n), a(from), b(to) {
    b.owner().on_receive = [this](host&) {
      auto got = drain(b);
      received.insert(received.end(), got.begin(), got.end());
    };
  }
  void start(std::uint32_t count, time_ns gap) {
    for (std::uint32_t i = 0; i < count; ++i) {
      net.events().at(net.now() + i * gap, [this, i] { send(a, udp_frame(a, b, i)); });
    }
  }
};

}  // namespace dpdk_net::sim::test
