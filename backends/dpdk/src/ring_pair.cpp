// Two ethdevs back to back through rte_rings: DPDK's ring PMD built from rings we create.
#include <dlfcn.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include <vector>

#include "dpdk_net/dpdk/dpdk_device.hpp"

namespace dpdk_net::dpdk {

namespace {

using from_rings_fn = decltype(&rte_eth_from_rings);

/// rte_eth_from_rings lives in the ring PMD, which the EAL loads as a plugin (Debian's DPDK):
/// found in the loaded plugin rather than linked, so the driver is never loaded twice.
from_rings_fn find_from_rings() noexcept {
  for (const char* name : {"librte_net_ring.so.23", "librte_net_ring.so"}) {
    void* h = dlopen(name, RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) {
      h = dlopen(name, RTLD_NOW);
    }
    if (h != nullptr) {
      if (void* f = dlsym(h, "rte_eth_from_rings"); f != nullptr) {
        return reinterpret_cast<from_rings_fn>(f);
      }
    }
  }
  return nullptr;
}

}  // namespace

std::string create_ring_pair(const std::string& a, const std::string& b, std::uint16_t queues,
                             unsigned ring_size) {
  if (!eal::initialized()) {
    return "DPDK EAL is not initialised: call dpdk_net::dpdk::eal::init first";
  }
  if (queues == 0 || queues > 16) {
    return "create_ring_pair: queues must be 1..16";
  }
  const from_rings_fn from_rings = find_from_rings();
  if (from_rings == nullptr) {
    return "create_ring_pair: the ring PMD (librte_net_ring) is not installed";
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
  if (from_rings(a.c_str(), b_to_a.data(), queues, a_to_b.data(), queues, socket) < 0) {
    return "rte_eth_from_rings(" + a + "): " + rte_strerror(rte_errno);
  }
  if (from_rings(b.c_str(), a_to_b.data(), queues, b_to_a.data(), queues, socket) < 0) {
    return "rte_eth_from_rings(" + b + "): " + rte_strerror(rte_errno);
  }
  return {};
}

}  // namespace dpdk_net::dpdk
