// Two ethdevs back to back through rte_rings: DPDK's ring PMD built from rings we create.
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include <vector>

#include "dpdk_net/dpdk/dpdk_device.hpp"

namespace dpdk_net::dpdk {

std::string create_ring_pair(const std::string& a, const std::string& b, std::uint16_t queues,
                             unsigned ring_size) {
  if (!eal::initialized()) {
    return "DPDK EAL is not initialised: call dpdk_net::dpdk::eal::init first";
  }
  if (queues == 0 || queues > 16) {
    return "create_ring_pair: queues must be 1..16";
  }
  const auto socket = static_cast<unsigned>(rte_socket_id());
  std::vector<rte_ring*> a_to_b(queues);
  std::vector<rte_ring*> b_to_a(queues);
  for (std::uint16_t q = 0; q < queues; ++q) {
    for (int dir = 0; dir < 2; ++dir) {
      // One producer (the sender's queue thread), one consumer (the receiver's).
      const std::string name =
          (dir == 0 ? a : b) + ">" + std::to_string(q);  // RTE_RING_NAMESIZE is 32
      rte_ring* r = rte_ring_create(name.c_str(), ring_size, static_cast<int>(socket),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (r == nullptr) {
        return "rte_ring_create(" + name + "): " + rte_strerror(rte_errno) +
               " (ring_size must be a power of two; names must be unique and short)";
      }
      (dir == 0 ? a_to_b : b_to_a)[q] = r;
    }
  }
  if (rte_eth_from_rings(a.c_str(), b_to_a.data(), queues, a_to_b.data(), queues, socket) < 0) {
    return "rte_eth_from_rings(" + a + "): " + rte_strerror(rte_errno);
  }
  if (rte_eth_from_rings(b.c_str(), a_to_b.data(), queues, b_to_a.data(), queues, socket) < 0) {
    return "rte_eth_from_rings(" + b + "): " + rte_strerror(rte_errno);
  }
  return {};
}

}  // namespace dpdk_net::dpdk
