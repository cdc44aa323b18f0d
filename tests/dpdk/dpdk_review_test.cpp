// Review tests of the DPDK backend (each one a defect found in review, or a path no other test
// reaches): zero-copy external segments sent again after a declined burst, mempool errors naming
// their fix, external memory registered by two ports, the copy path's drop counters, and RSS
// read-back on a port that keeps a table (net_null, hot-plugged). Same process model as
// dpdk_device_test.cpp: the binary's EAL has net_ring0; each test runs in its own process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dpdk_net/dpdk/dpdk_device.hpp"

// Two DPDK calls, declared here rather than pulling DPDK's headers (and its -march flags) into
// the test: the test binary links librte_eal through the backend.
struct rte_memseg_list;
extern "C" rte_memseg_list* rte_mem_virt2memseg_list(const void* virt);
extern "C" int rte_dev_probe(const char* devargs);

namespace dpdk_net::dpdk {
namespace {

std::unique_ptr<dpdk_device> open_named(const std::string& name, std::uint16_t queues = 1) {
  port_config config;
  config.name = name;
  config.rx_queues = queues;
  config.tx_queues = queues;
  config.mbufs = 1023;
  config.mbuf_cache = 32;
  std::string error;
  auto dev = dpdk_device::open(config, error);
  EXPECT_NE(dev, nullptr) << error;
  return dev;
}

std::size_t drain(dpdk_device& dev) {
  std::array<packet, max_burst> in;
  std::size_t total = 0;
  std::size_t n = 0;
  while ((n = dev.rx_burst(0, in)) != 0) {
    total += n;
    free_burst(std::span(in).first(n));
  }
  return total;
}

struct app_buffer {
  std::vector<std::byte> bytes;
  external_buffer ext;
  explicit app_buffer(std::size_t n) : bytes(n) {
    for (std::size_t i = 0; i < n; ++i) {
      bytes[i] = static_cast<std::byte>(i * 13 + 5);
    }
    ext.data = bytes.data();
    ext.size = n;
  }
};

// A declined external segment stays attached to its mbuf. If its owner trims it before sending
// it again, the frame must carry the trimmed bytes, not the ones attached the first time.
TEST(DpdkReview, AnExternalSegmentTrimmedAfterADeclinedBurstSendsItsCurrentBytes) {
  // Rings of 2 slots hold one frame: the second burst is declined.
  ASSERT_EQ(create_ring_pair("rv_trim_a", "rv_trim_b", 1, 2), "");
  auto a = open_named("net_ring_rv_trim_a");
  auto b = open_named("net_ring_rv_trim_b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->info().tx_multi_segment);
  std::array<packet, 1> filler{a->tx_pool(0).alloc()};
  ASSERT_TRUE(filler[0].append(60));
  ASSERT_EQ(a->tx_burst(0, filler), 1U);

  app_buffer buf(1000);
  std::array<packet, 1> out{a->tx_pool(0).attach_external(buf.ext, 0, 1000)};
  ASSERT_TRUE(out[0]);
  ASSERT_EQ(a->tx_burst(0, out), 0U) << "the ring is full";
  ASSERT_TRUE(out[0].trim_front(100));
  ASSERT_EQ(drain(*b), 1U);
  ASSERT_EQ(a->tx_burst(0, out), 1U);

  std::array<packet, 1> in;
  ASSERT_EQ(b->rx_burst(0, in), 1U);
  ASSERT_EQ(in[0].length(), 900U);
  EXPECT_EQ(in[0].front().data(), buf.bytes.data() + 100) << "by reference, from offset 100";
  EXPECT_EQ(std::memcmp(in[0].front().data(), buf.bytes.data() + 100, 900), 0);
  in[0].reset();
  EXPECT_EQ(buf.ext.references, 1U);
  EXPECT_EQ(a->mbufs_in_use(), 0U);
}

// rte_pktmbuf_pool_create refuses a per-lcore cache that the pool cannot fill (cache * 1.5 >
// mbufs) with EINVAL: the fix is a smaller mbuf_cache or more mbufs, not fewer mbufs.
TEST(DpdkReview, AMempoolTooSmallForItsCacheNamesTheCache) {
  port_config config;
  config.name = "net_ring0";
  config.mbufs = 255;
  config.mbuf_cache = 256;
  std::string error;
  EXPECT_EQ(dpdk_device::open(config, error), nullptr);
  EXPECT_NE(error.find("mbuf_cache"), std::string::npos) << error;
  EXPECT_EQ(error.find("lower port_config::mbufs"), std::string::npos) << error;
}

// A second dpdk_device on a port this process has open finds its mempool names taken (EEXIST):
// the message must say the port is open already, not ask for hugepages.
TEST(DpdkReview, ASecondOpenOfAnOpenPortSaysItIsOpen) {
  ASSERT_EQ(create_ring_pair("rv_twice_a", "rv_twice_b", 1), "");
  auto first = open_named("net_ring_rv_twice_a");
  ASSERT_TRUE(first);
  port_config config;
  config.name = "net_ring_rv_twice_a";
  config.mbufs = 1023;
  config.mbuf_cache = 32;
  std::string error;
  EXPECT_EQ(dpdk_device::open(config, error), nullptr);
  EXPECT_NE(error.find("already open"), std::string::npos) << error;
  EXPECT_EQ(error.find("hugepages"), std::string::npos) << error;
}

// Two ports registering one send buffer (one buffer sent through both): closing the first must
// not unregister the memory the second still sends from; the last one out unregisters it.
TEST(DpdkReview, MemoryRegisteredByTwoPortsStaysRegisteredUntilBothAreClosed) {
  ASSERT_EQ(create_ring_pair("rv_mem_a", "rv_mem_b", 1), "");
  auto a = open_named("net_ring_rv_mem_a");
  auto b = open_named("net_ring_rv_mem_b");
  ASSERT_TRUE(a && b);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* mem = std::aligned_alloc(page, 4 * page);
  ASSERT_NE(mem, nullptr);
  ASSERT_EQ(rte_mem_virt2memseg_list(mem), nullptr);
  EXPECT_EQ(a->register_external_memory(mem, 4 * page), "");
  EXPECT_EQ(b->register_external_memory(mem, 4 * page), "");
  EXPECT_NE(rte_mem_virt2memseg_list(mem), nullptr);
  a.reset();
  EXPECT_NE(rte_mem_virt2memseg_list(mem), nullptr) << "port b still uses it";
  b.reset();
  EXPECT_EQ(rte_mem_virt2memseg_list(mem), nullptr) << "unregistered by the last port";
  std::free(mem);
}

// A foreign packet that finds the mempool empty is dropped: that is an allocation failure, not a
// packet too large to copy (tx_too_big sends an operator after MTUs).
TEST(DpdkReview, AForeignPacketDroppedForWantOfAnMbufIsNotTooBig) {
  auto dev = open_named("net_ring0");
  ASSERT_TRUE(dev);
  std::vector<packet> held;
  for (;;) {
    packet p = dev->tx_pool(0).alloc();
    if (!p) {
      break;
    }
    held.push_back(std::move(p));
    ASSERT_LT(held.size(), 100000U);
  }
  packet_pool_config pc;
  pc.count = 4;
  packet_pool foreign(pc);
  std::array<packet, 1> out{foreign.alloc()};
  ASSERT_TRUE(out[0].append(60));
  EXPECT_EQ(dev->tx_burst(0, out), 1U) << "taken (and dropped)";
  EXPECT_EQ(dev->stats().tx_dropped, 1U);
  EXPECT_EQ(dev->counters().tx_too_big, 0U);
  EXPECT_GT(dev->counters().alloc_failures, 0U);
  EXPECT_EQ(foreign.available(), foreign.capacity());
  held.clear();
  EXPECT_EQ(dev->mbufs_in_use(), 0U);
}

// RSS read-back and update on a port that keeps a table: net_null (hot-plugged) stores the hash
// types and the 128-entry table, so the groups and masks of rss()/configure_rss() are checked.
TEST(DpdkReview, RssTableRoundTripsThroughTheDriver) {
  ASSERT_EQ(rte_dev_probe("net_null0"), 0);
  auto dev = open_named("net_null0", 2);
  ASSERT_TRUE(dev);
  const rss_capabilities caps = dev->info().rss;
  ASSERT_NE(caps.hash_types, 0U);
  ASSERT_EQ(caps.reta_size, 128U);
  rss_config now = dev->rss();
  EXPECT_EQ(now.hash_types, caps.hash_types);
  ASSERT_EQ(now.reta.size(), 128U);
  for (std::size_t i = 0; i < now.reta.size(); ++i) {
    ASSERT_EQ(now.reta[i], i % 2) << "open programs entry % queues, entry " << i;
  }
  rss_config want;
  want.hash_types = rss_hash::tcp_ipv4;
  want.key.assign(caps.key_size, 0x5a);
  want.reta.resize(caps.reta_size);
  for (std::size_t i = 0; i < want.reta.size(); ++i) {
    want.reta[i] = static_cast<std::uint16_t>((i / 3 + i / 64) % 2);
  }
  ASSERT_FALSE(dev->configure_rss(want));
  now = dev->rss();
  EXPECT_EQ(now.hash_types & rss_hash::tcp_ipv4, rss_hash::tcp_ipv4);
  EXPECT_EQ(now.reta, want.reta);
  want.reta.back() = 2;  // no queue 2
  EXPECT_EQ(dev->configure_rss(want), std::make_error_code(std::errc::invalid_argument));
}

}  // namespace
}  // namespace dpdk_net::dpdk
