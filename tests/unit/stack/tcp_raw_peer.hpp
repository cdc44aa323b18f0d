// A raw peer for the TCP queue tests (tcp_queue_test.cpp, tcp_queue_cookie_test.cpp): segments
// as frames into any stack (SACK-permitted included, which the script's `seg` cannot say), and
// the TCP segments a stack sends, decoded.
#pragma once

#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dpdk_net/wire/arp.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/frame.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {

struct raw_segment {
  wire::tcp_header tcp;
  std::string payload;
};

/// The peer as raw frames, for what the script's `seg` cannot say (SACK-permitted) and for
/// stacks other than the script's.
class raw_peer {
 public:
  void send(stack& s, const wire::tcp_header& h, std::string_view data, time_ns now) {
    const std::size_t hl = wire::tcp_min_header_length + wire::tcp_options_length(h.options);
    std::vector<std::byte> l4(hl + data.size());
    ASSERT_EQ(wire::write_tcp(l4, h), hl);
    if (!data.empty()) {
      std::memcpy(l4.data() + hl, data.data(), data.size());
    }
    wire::set_tcp_checksum(l4, wire::pseudo_header{peer_ip, our_ip});
    packet p = pool_.alloc();
    std::byte* d = p.append(34 + l4.size());
    wire::write_ethernet(std::span(d, 14),
                         wire::ethernet_header{our_mac, peer_mac, wire::ethertype::ipv4, false, 0});
    wire::ipv4_header ih;
    ih.protocol = wire::ip_protocol::tcp;
    ih.src = peer_ip;
    ih.dst = our_ip;
    ih.dont_fragment = true;
    ih.total_length = static_cast<std::uint16_t>(20 + l4.size());
    wire::write_ipv4(std::span(d + 14, 20), ih);
    std::memcpy(d + 34, l4.data(), l4.size());
    s.receive(std::move(p), now);
  }
  /// The peer's ARP request: the stack learns its MAC (the reply is dropped).
  void introduce(stack& s, time_ns now) {
    std::array<std::byte, 42> f{};
    wire::write_ethernet(f, wire::ethernet_header{mac_address::broadcast(), peer_mac,
                                                  wire::ethertype::arp, false, 0});
    wire::write_arp(std::span(f).subspan(14),
                    wire::arp_packet{wire::arp_op::request, peer_mac, peer_ip, {}, our_ip});
    packet p = pool_.alloc();
    std::memcpy(p.append(f.size()), f.data(), f.size());
    s.receive(std::move(p), now);
    (void)drain(s, now);
  }
  /// The TCP segments the stack sends now.
  std::vector<raw_segment> drain(stack& s, time_ns now) {
    std::vector<raw_segment> got;
    std::array<packet, 32> burst;
    while (const std::size_t n = s.drain_tx(burst, now)) {
      for (std::size_t i = 0; i < n; ++i) {
        std::vector<std::byte> bytes(burst[i].length());
        burst[i].copy_out(0, bytes);
        const wire::decoded_frame d = wire::decode_frame(bytes);
        if (d.tcp) {
          got.push_back({*d.tcp, std::string(reinterpret_cast<const char*>(d.payload.data()),
                                             d.payload.size())});
        }
      }
      free_burst(std::span(burst.data(), n));
    }
    return got;
  }

 private:
  packet_pool pool_{packet_pool_config{"raw_peer", 256}};
};

inline wire::tcp_header syn_header(std::uint16_t port, std::uint32_t isn, std::uint16_t mss,
                                   std::optional<std::uint8_t> ws, bool sack,
                                   std::optional<std::uint32_t> tsval) {
  wire::tcp_header h;
  h.src_port = port;
  h.dst_port = 8080;
  h.seq = isn;
  h.flags = wire::tcp_flag::syn;
  h.window = 65535;
  h.options.mss = mss;
  h.options.window_scale = ws;
  h.options.sack_permitted = sack;
  if (tsval) {
    h.options.timestamps = wire::tcp_timestamps{*tsval, 0};
  }
  return h;
}

}  // namespace dpdk_net::stack::script
