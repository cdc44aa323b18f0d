// Uses the installed SDK: a pool, a packet, the wire builders and parsers, the DPDK backend's
// header (which must compile without DPDK's include paths or flags).
#include <cstdio>
#include <dpdk_net/buffer_pool.hpp>
#include <dpdk_net/wire/frame.hpp>
#ifdef CONSUMER_HAS_DPDK
#include <dpdk_net/dpdk/dpdk_device.hpp>
#endif

int main() {
  using namespace dpdk_net;
  packet_pool pool(packet_pool_config{});
  packet p = pool.alloc();
  wire::ipv4_header ip;
  ip.total_length = 20;
  ip.protocol = 253;
  ip.src = *wire::ipv4_address::parse("198.18.0.1");
  ip.dst = *wire::ipv4_address::parse("198.18.0.2");
  wire::write_ipv4(std::span(p.append(20), 20), ip);
  wire::ethernet_header eth{mac_address::broadcast(), *mac_address::parse("02:00:00:00:00:01"),
                            wire::ethertype::ipv4, false, 0};
  if (!wire::push_ethernet(p, eth)) {
    return 1;
  }
  const wire::decoded_frame d = wire::decode_frame(p.front());
  const bool ok = d.accepted() && d.ipv4 && d.ipv4->dst == ip.dst;
#ifdef CONSUMER_HAS_DPDK
  std::printf("dpdk backend linked; EAL initialised: %s\n",
              dpdk::eal::initialized() ? "yes" : "no");
#endif
  std::printf("consumer: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
