// The DPDK backend on net_ring (a software ethdev whose tx ring is its rx ring: a loopback), under
// a private EAL (--no-huge, own --file-prefix) so tests need no hugepages and do not collide.
#include "dpdk_net/dpdk/dpdk_device.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <string>

#include "../unit/counting_allocator.hpp"

namespace dpdk_net::dpdk {
namespace {

/// Where the EAL keeps its runtime files (even with --no-huge) for one --file-prefix.
std::filesystem::path runtime_dir(const std::string& prefix) {
  return std::filesystem::path("/var/run/dpdk") / prefix;
}

class dpdk_environment : public ::testing::Environment {
 public:
  void SetUp() override {
    // Remove what earlier runs that died left behind (their process is gone), then use our own.
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/var/run/dpdk", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("dpdk_net_test_") &&
          !std::filesystem::exists("/proc/" + name.substr(14), ec)) {
        std::filesystem::remove_all(entry.path(), ec);
      }
    }
    prefix_ = "dpdk_net_test_" + std::to_string(::getpid());
    const std::string prefix = "--file-prefix=" + prefix_;
    const std::string error = eal::init(std::vector<std::string>{
        "dpdk_net_dpdk_tests", "--no-huge", "-m", "256", "--no-pci", "-l", "0", prefix.c_str(),
        "--vdev=net_ring0", "--log-level=lib.eal:error"});
    ASSERT_EQ(error, "") << "EAL init failed";
  }
  void TearDown() override {
    eal::cleanup();
    std::error_code ec;
    std::filesystem::remove_all(runtime_dir(prefix_), ec);
  }

 private:
  std::string prefix_;
};
[[maybe_unused]] auto* const g_env =
    ::testing::AddGlobalTestEnvironment(new dpdk_environment());  // NOLINT: gtest owns it

std::unique_ptr<dpdk_device> open_ring(port_config config = {}) {
  config.name = "net_ring0";
  config.mbufs = 1023;
  config.mbuf_cache = 32;
  std::string error;
  auto dev = dpdk_device::open(config, error);
  EXPECT_NE(dev, nullptr) << error;
  return dev;
}

packet frame(device& dev, std::size_t n, std::uint8_t tag) {
  packet p = dev.tx_pool(0).alloc();
  std::byte* d = p.append(n);
  for (std::size_t i = 0; i < n; ++i) {
    d[i] = static_cast<std::byte>(tag + i);
  }
  return p;
}

TEST(DpdkDevice, UnknownPortNamesTheFix) {
  port_config config;
  config.name = "net_nonexistent9";
  std::string error;
  EXPECT_EQ(dpdk_device::open(config, error), nullptr);
  EXPECT_NE(error.find("no DPDK port named 'net_nonexistent9'"), std::string::npos) << error;
  EXPECT_NE(error.find("--vdev"), std::string::npos) << error;
}

TEST(DpdkDevice, TooManyQueuesIsRefused) {
  port_config config;
  config.name = "net_ring0";
  config.rx_queues = 64;
  std::string error;
  EXPECT_EQ(dpdk_device::open(config, error), nullptr);
  EXPECT_NE(error.find("supports at most"), std::string::npos) << error;
}

TEST(DpdkDevice, SecondEalInitIsAClearError) {
  EXPECT_NE(eal::init(std::vector<std::string>{"again"}).find("already initialised"),
            std::string::npos);
}

TEST(DpdkDevice, LoopbackIsZeroCopyAndPreservesBytes) {
  auto dev = open_ring();
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->info().name, "net_ring0");
  EXPECT_TRUE(dev->link().up);
  std::array<packet, 8> out;
  std::array<segment*, 8> heads{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = frame(*dev, 60 + i, static_cast<std::uint8_t>(i));
    heads[i] = out[i].head();
    EXPECT_NE(out[i].head()->native, nullptr);  // an mbuf underneath
  }
  ASSERT_EQ(dev->tx_burst(0, out), 8U);
  for (const packet& p : out) {
    EXPECT_FALSE(p);
  }
  std::array<packet, 16> in;
  ASSERT_EQ(dev->rx_burst(0, in), 8U);
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(in[i].head(), heads[i]);  // the same mbuf came back: no copy anywhere
    ASSERT_EQ(in[i].length(), 60 + i);
    for (std::size_t b = 0; b < in[i].length(); ++b) {
      ASSERT_EQ(in[i].front()[b], static_cast<std::byte>(i + b));
    }
  }
  EXPECT_EQ(dev->counters().tx_copied, 0U);
}

TEST(DpdkDevice, ChainedSegmentsTravelAsAnMbufChain) {
  auto dev = open_ring();
  ASSERT_TRUE(dev);
  std::array<packet, 1> out{frame(*dev, 54, 0)};
  ASSERT_TRUE(out[0].chain(frame(*dev, 100, 54)));
  ASSERT_TRUE(out[0].chain(frame(*dev, 46, 154)));
  ASSERT_EQ(dev->tx_burst(0, out), 1U);
  std::array<packet, 1> in;
  ASSERT_EQ(dev->rx_burst(0, in), 1U);
  EXPECT_EQ(in[0].segment_count(), 3U);
  ASSERT_EQ(in[0].length(), 200U);
  std::array<std::byte, 200> all{};
  ASSERT_EQ(in[0].copy_out(0, all), 200U);
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i], static_cast<std::byte>(i));
  }
}

TEST(DpdkDevice, ForeignPacketIsCopiedIntoAnMbuf) {
  auto dev = open_ring();
  ASSERT_TRUE(dev);
  packet_pool_config pc;
  pc.count = 4;
  packet_pool heap(pc);
  std::array<packet, 1> out{heap.alloc()};
  std::memset(out[0].append(80), 0x5a, 80);
  ASSERT_EQ(dev->tx_burst(0, out), 1U);
  EXPECT_EQ(heap.available(), heap.capacity());  // the original went back to its pool
  EXPECT_EQ(dev->counters().tx_copied, 1U);
  std::array<packet, 1> in;
  ASSERT_EQ(dev->rx_burst(0, in), 1U);
  ASSERT_EQ(in[0].length(), 80U);
  EXPECT_EQ(in[0].front()[79], std::byte{0x5a});
}

TEST(DpdkDevice, BadQueueAndDoubleFreeAreCountedNotFatal) {
  auto dev = open_ring();
  ASSERT_TRUE(dev);
  std::array<packet, 1> pkts{frame(*dev, 64, 1)};
  EXPECT_EQ(dev->tx_burst(3, pkts), 0U);
  EXPECT_TRUE(pkts[0]);
  EXPECT_EQ(dev->stats().bad_queue, 1U);
  segment* raw = pkts[0].release();
  dev->tx_pool(0).free_bulk(std::span<segment* const>(&raw, 1));
  dev->tx_pool(0).free_bulk(std::span<segment* const>(&raw, 1));  // misuse: must not corrupt
  EXPECT_EQ(dev->counters().double_frees, 1U);
  EXPECT_EQ(dev->counters().foreign_frees, 0U);
  // The mempool still works and hands out distinct buffers.
  packet a = dev->tx_pool(0).alloc();
  packet b = dev->tx_pool(0).alloc();
  ASSERT_TRUE(a && b);
  EXPECT_NE(a.head(), b.head());
}

TEST(DpdkDevice, SteadyStateLoopbackAllocatesNothing) {
  auto dev = open_ring();
  ASSERT_TRUE(dev);
  std::array<packet, 32> tx;
  std::array<packet, 32> rx;
  auto round = [&] {
    const std::size_t n = dev->tx_pool(0).alloc_burst(tx);
    for (std::size_t i = 0; i < n; ++i) {
      tx[i].append(64);
    }
    const std::size_t sent = dev->tx_burst(0, std::span(tx.data(), n));
    free_burst(std::span(tx.data() + sent, n - sent));
    const std::size_t got = dev->rx_burst(0, rx);
    free_burst(std::span(rx.data(), got));
    return got;
  };
  for (int i = 0; i < 100; ++i) {
    round();
  }
  const std::uint64_t before = test::allocation_count();
  std::size_t moved = 0;
  for (int i = 0; i < 5000; ++i) {
    moved += round();
  }
  EXPECT_EQ(test::allocation_count() - before, 0U);
  EXPECT_EQ(moved, 5000U * 32U);
}

// Issue 8, item 12: the per-packet costs are counted, not timed. alloc() makes one virtual call
// per 32 packets (a cache refilled by alloc_bulk), tx walks each chain once (one visit per
// segment: the old path walked it twice and then once more to mark it sent), and freeing a burst
// is one rte_pktmbuf_free_bulk (the old path called rte_pktmbuf_free_seg per segment).
TEST(DpdkDevice, PerPacketCostsAreOneVirtualCallPer32AllocsOneWalkAndOneBulkFree) {
  auto dev = open_ring();
  ASSERT_TRUE(dev);
  const dpdk_port_counters start = dev->counters();
  std::array<packet, 16> out;
  std::size_t segments = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = frame(*dev, 60, static_cast<std::uint8_t>(i));
    ++segments;
    if (i % 2 == 0) {  // half of them are chains of three
      ASSERT_TRUE(out[i].chain(frame(*dev, 100, 1)));
      ASSERT_TRUE(out[i].chain(frame(*dev, 40, 2)));
      segments += 2;
    }
  }
  const dpdk_port_counters allocated = dev->counters();
  // 32 single-segment allocations: one refill of the cache (the old path: 32 virtual calls).
  EXPECT_EQ(segments, 32U);
  EXPECT_LE(allocated.virtual_alloc_calls - start.virtual_alloc_calls, 2U);

  ASSERT_EQ(dev->tx_burst(0, out), out.size());
  EXPECT_EQ(dev->counters().tx_segment_visits - start.tx_segment_visits, segments);

  std::array<packet, 16> in;
  ASSERT_EQ(dev->rx_burst(0, in), in.size());
  const std::uint64_t frees_before = dev->counters().mempool_free_calls;
  free_burst(in);
  EXPECT_EQ(dev->counters().mempool_free_calls - frees_before, 1U);  // 32 segments, one call
  EXPECT_EQ(dev->counters().double_frees, 0U);
}

// alloc()'s segment cache is single-threaded, and DPDK queues run on different lcores: each tx
// queue has its own pool object over the port's one mempool, and a segment may be freed through
// any of them.
TEST(DpdkDevice, EachTxQueueHasItsOwnPoolOverOneMempool) {
  port_config config;
  config.rx_queues = 2;  // net_ring: tx queue q loops back to rx queue q
  config.tx_queues = 2;
  auto dev = open_ring(config);
  ASSERT_TRUE(dev);
  EXPECT_NE(&dev->tx_pool(0), &dev->tx_pool(1));
  packet a = dev->tx_pool(0).alloc();
  packet b = dev->tx_pool(1).alloc();
  ASSERT_TRUE(a && b);
  EXPECT_NE(a.head(), b.head());
  // Chained across queues' pools and sent on queue 1: still all ours, so zero copy.
  a.append(60);
  b.append(40);
  std::array<packet, 1> out{std::move(a)};
  ASSERT_TRUE(out[0].chain(std::move(b)));
  ASSERT_EQ(dev->tx_burst(1, out), 1U);
  EXPECT_EQ(dev->counters().tx_copied, 0U);
  std::array<packet, 1> in;
  ASSERT_EQ(dev->rx_burst(1, in), 1U);
  EXPECT_EQ(in[0].length(), 100U);
  in[0].reset();
  EXPECT_EQ(dev->counters().foreign_frees, 0U);
  EXPECT_EQ(dev->counters().double_frees, 0U);
}

}  // namespace
}  // namespace dpdk_net::dpdk
