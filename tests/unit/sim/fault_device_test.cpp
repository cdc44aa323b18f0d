// The fault-injecting wrapper on a real device (the in-memory pair), with a manual clock.
#include "dpdk_net/sim/fault_device.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "dpdk_net/memory_device.hpp"

namespace dpdk_net::sim {
namespace {
namespace fault_device_test {

struct rig {
  memory_link link;
  time_ns clock = 0;
  fault_device dev;
  rig(const link_config& rx, const link_config& tx)
      : dev(
            link.a(), [this] { return clock; }, 5, rx, tx) {}

  void send_from_peer(std::uint8_t tag) {
    std::array<packet, 1> one{link.b().tx_pool(0).alloc()};
    std::memset(one[0].append(64), tag, 64);
    link.b().tx_burst(0, one);
  }
  std::vector<std::uint8_t> receive() {
    std::vector<std::uint8_t> tags;
    std::array<packet, 64> in;
    const std::size_t n = dev.rx_burst(0, in);
    for (std::size_t i = 0; i < n; ++i) {
      tags.push_back(static_cast<std::uint8_t>(in[i].front()[0]));
    }
    free_burst(std::span(in.data(), n));
    return tags;
  }
};

TEST(FaultDevice, DelaysReceivedFramesUntilTheClockPasses) {
  link_config rx;
  rx.delay = 100 * microsecond;
  rig r(rx, link_config{.delay = 0});
  r.send_from_peer(1);
  EXPECT_TRUE(r.receive().empty());  // pulled in, held
  EXPECT_EQ(r.dev.held(), 1U);
  r.clock = 99 * microsecond;
  EXPECT_TRUE(r.receive().empty());
  r.clock = 100 * microsecond;
  EXPECT_EQ(r.receive(), (std::vector<std::uint8_t>{1}));
  EXPECT_EQ(r.dev.held(), 0U);
}

TEST(FaultDevice, LossDuplicationAndCorruptionOnTransmit) {
  link_config tx;
  tx.delay = 0;
  tx.loss = 0.2;
  tx.duplicate = 0.1;
  link_config rx;
  rx.delay = 0;
  rig r(rx, tx);
  std::size_t sent = 0;
  for (int i = 0; i < 2000; ++i) {
    std::array<packet, 1> one{r.dev.tx_pool(0).alloc()};
    std::memset(one[0].append(64), 7, 64);
    r.dev.tx_burst(0, one);
    ++sent;
    r.clock += 10 * microsecond;  // duplicates come up to `delay` later: release them too
    std::array<packet, 8> in;
    std::size_t n = 0;
    while ((n = r.link.b().rx_burst(0, in)) != 0) {
      free_burst(std::span(in.data(), n));
    }
  }
  r.clock += second;
  std::array<packet, 1> none{};
  r.dev.tx_burst(0, std::span(none.data(), 0));
  const link_counters& c = r.dev.tx_model().counters();
  EXPECT_EQ(c.offered, 2000U);
  EXPECT_NEAR(static_cast<double>(c.dropped_loss), 400, 5 * std::sqrt(2000 * 0.2 * 0.8));
  EXPECT_NEAR(static_cast<double>(c.duplicated), 160, 5 * std::sqrt(1600 * 0.1 * 0.9));
  const std::uint64_t arrived = r.link.b().stats().rx_packets;
  EXPECT_EQ(arrived, c.delivered + c.duplicated);  // every survivor, and every copy, arrived
  EXPECT_EQ(r.dev.decisions().size(), c.dropped_loss + c.duplicated);
}

TEST(FaultDevice, CorruptionFlipsExactlyOneBit) {
  link_config rx;
  rx.delay = 0;
  rx.corrupt = 1.0;
  rig r(rx, link_config{.delay = 0});
  for (int i = 0; i < 50; ++i) {
    r.send_from_peer(0);
    std::array<packet, 1> in;
    ASSERT_EQ(r.dev.rx_burst(0, in), 1U);
    int bits = 0;
    for (std::byte b : in[0].front()) {
      bits += std::popcount(std::to_integer<unsigned>(b));
    }
    EXPECT_EQ(bits, 1);
  }
}

TEST(FaultDevice, ReorderingLetsLaterFramesOvertake) {
  link_config rx;
  rx.delay = 10 * microsecond;
  rx.reorder = 0.3;
  rx.reorder_delay = 1000 * microsecond;
  rig r(rx, link_config{.delay = 0});
  std::vector<std::uint8_t> got;
  for (std::uint8_t i = 0; i < 100; ++i) {
    r.send_from_peer(i);
    r.clock += 20 * microsecond;
    for (std::uint8_t t : r.receive()) {
      got.push_back(t);
    }
  }
  r.clock += 10 * millisecond;
  for (std::uint8_t t : r.receive()) {
    got.push_back(t);
  }
  ASSERT_EQ(got.size(), 100U);  // nothing lost
  EXPECT_FALSE(std::is_sorted(got.begin(), got.end()));
  std::vector<std::uint8_t> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  for (std::uint8_t i = 0; i < 100; ++i) {
    EXPECT_EQ(sorted[i], i);
  }
}

TEST(FaultDevice, BadQueueIsRefusedAndTheWrapperIsNotThreadSafe) {
  rig r(link_config{.delay = 0}, link_config{.delay = 0});
  std::array<packet, 1> one{r.dev.tx_pool(0).alloc()};
  one[0].append(64);
  EXPECT_EQ(r.dev.tx_burst(3, one), 0U);
  EXPECT_TRUE(one[0]);  // still the caller's
  EXPECT_EQ(r.dev.rx_burst(3, one), 0U);
  EXPECT_EQ(r.dev.stats().bad_queue, 2U);
  EXPECT_FALSE(r.dev.info().thread_safe_queues);
  EXPECT_EQ(r.dev.tx_burst(0, one), 1U);  // queue 0 still works
}

TEST(FaultDevice, HeldFramesAreFreedWithTheWrapper) {
  memory_link link;
  {
    time_ns clock = 0;
    link_config rx;
    rx.delay = second;
    fault_device dev(
        link.a(), [&clock] { return clock; }, 1, rx, rx);
    std::array<packet, 1> one{dev.tx_pool(0).alloc()};
    one[0].append(64);
    dev.tx_burst(0, one);  // held for a second
    EXPECT_EQ(dev.held(), 1U);
  }
  EXPECT_EQ(link.a().pool().available(), link.a().pool().capacity());
}

}  // namespace fault_device_test
}  // namespace
}  // namespace dpdk_net::sim
