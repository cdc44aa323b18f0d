// Shared by the ring_device tests (ring_device_test.cpp, ring_device_threads_test.cpp): frames
// built by hand (raw bytes: the device parses, not the wire library) and small helpers.
#pragma once

#include "dpdk_net/ring_device.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dpdk_net/rss.hpp"
#include "dpdk_net/wire/bytes.hpp"

namespace dpdk_net::ring_testing {

using wire::ipv4_address;

inline constexpr std::uint8_t proto_icmp = 1;
inline constexpr std::uint8_t proto_tcp = 6;
inline constexpr std::uint8_t proto_udp = 17;

/// What a hand-built frame carries (raw bytes: the device parses, not the wire library).
struct frame_spec {
  std::uint8_t protocol = proto_udp;
  ipv4_address src = ipv4_address::from_octets(198, 18, 0, 1);
  ipv4_address dst = ipv4_address::from_octets(198, 19, 0, 1);
  std::uint16_t sport = 1000;
  std::uint16_t dport = 2000;
  std::uint16_t frag = 0;  ///< the IPv4 flags/fragment-offset field (0x2000 = MF)
  bool vlan = false;
  std::size_t payload = 8;
  std::uint32_t tag = 0;  ///< first 4 payload bytes
};

inline std::vector<std::byte> build(const frame_spec& f) {
  const std::size_t l4 = f.protocol == proto_tcp ? 20 : 8;
  const std::size_t l2 = f.vlan ? 18 : 14;
  std::vector<std::byte> b(l2 + 20 + l4 + f.payload);
  std::byte* d = b.data();
  for (std::size_t i = 0; i < 12; ++i) {
    d[i] = static_cast<std::byte>(0x02 + i);
  }
  if (f.vlan) {
    wire::store16(d + 12, 0x8100);
    wire::store16(d + 14, 42);
  }
  wire::store16(d + l2 - 2, 0x0800);
  std::byte* ip = d + l2;
  wire::store8(ip, 0x45);
  wire::store16(ip + 2, static_cast<std::uint16_t>(20 + l4 + f.payload));
  wire::store16(ip + 6, f.frag);
  wire::store8(ip + 8, 64);
  wire::store8(ip + 9, f.protocol);
  wire::store32(ip + 12, f.src.value);
  wire::store32(ip + 16, f.dst.value);
  std::byte* l4p = ip + 20;
  if (f.protocol == proto_icmp) {
    wire::store8(l4p, 8);  // echo request: the "ports" are type/code/checksum
  } else {
    wire::store16(l4p, f.sport);
    wire::store16(l4p + 2, f.dport);
  }
  if (f.payload >= 4) {
    wire::store32(l4p + l4, f.tag);
  }
  return b;
}

inline std::vector<std::byte> arp_frame() {
  std::vector<std::byte> b(42);
  std::memset(b.data(), 0xff, 6);
  wire::store16(b.data() + 12, 0x0806);
  wire::store16(b.data() + 14, 1);
  return b;
}

inline packet make(ring_device& dev, std::uint16_t queue, const std::vector<std::byte>& bytes) {
  packet p = dev.tx_pool(queue).alloc();
  std::byte* d = p.append(bytes.size());
  std::memcpy(d, bytes.data(), bytes.size());
  return p;
}

inline std::vector<std::byte> bytes_of(const packet& p) {
  std::vector<std::byte> b(p.length());
  (void)p.copy_out(0, b);
  return b;
}

/// The payload tag of a frame built by build() (no VLAN, UDP or ICMP).
inline std::uint32_t udp_tag(const packet& p) {
  return wire::load32(p.front().data() + 14 + 20 + 8);
}

inline std::size_t send(ring_device& dev, std::uint16_t queue, packet p) {
  std::array<packet, 1> one{std::move(p)};
  return dev.tx_burst(queue, one);
}

/// Everything waiting on rx queue q, in bursts.
inline std::vector<packet> drain(ring_device& dev, std::uint16_t queue) {
  std::vector<packet> all;
  std::array<packet, max_burst> out;
  for (std::size_t n; (n = dev.rx_burst(queue, out)) != 0;) {
    for (std::size_t i = 0; i < n; ++i) {
      all.push_back(std::move(out[i]));
    }
  }
  return all;
}

/// The queue the default RSS table of a `queues`-queue receiver picks for a hash.
inline std::uint16_t default_queue(std::uint32_t hash, std::uint16_t queues) {
  return static_cast<std::uint16_t>((hash % 128) % queues);
}

/// A link config whose pools and rings are small (the pools are zero-filled: cheap to build).
inline ring_link_config small(std::uint16_t queues, ring_steering steering = ring_steering::rss) {
  ring_link_config c;
  c.queues = queues;
  c.steering = steering;
  c.ring_size = 64;
  c.pool_size = 256;
  return c;
}

inline void expect_pools_clean(ring_link& link) {
  for (ring_device* d : {&link.a(), &link.b()}) {
    for (std::uint16_t q = 0; q < d->info().rx_queues; ++q) {
      const packet_pool_stats s = d->pool(q).stats();
      EXPECT_EQ(s.available, s.capacity) << d->info().name << " q" << q;
      EXPECT_EQ(s.double_frees, 0U);
      EXPECT_EQ(s.foreign_frees, 0U);
      EXPECT_EQ(s.stale_frees, 0U);
    }
  }
}

}  // namespace dpdk_net::ring_testing
