// Simulated NICs as real ones behave: receiving into their own pool (so a receiver holding frames
// never pins the sender's buffers) and a bounded tx ring that makes tx_burst report busy.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "sim_frames.hpp"

namespace dpdk_net::sim {
namespace {
namespace nic_test {

using namespace test;

packet_pool& pool_of(sim_nic& nic) {
  return static_cast<packet_pool&>(nic.tx_pool(0));  // a sim_nic's pool is a packet_pool
}

/// b keeps every frame it receives (as an application holding data would).
struct hoarder {
  std::vector<packet> held;
  explicit hoarder(sim_nic& b) {
    b.owner().on_receive = [this, &b](host&) {
      std::array<packet, 32> in;
      std::size_t n = 0;
      while ((n = b.rx_burst(0, in)) != 0) {
        for (std::size_t i = 0; i < n; ++i) {
          held.push_back(std::move(in[i]));
        }
      }
    };
  }
};

TEST(SimNic, RxCopyMeansHeldFramesNeverPinTheSendersPool) {
  for (const bool copy : {false, true}) {
    SCOPED_TRACE(copy ? "rx_copy" : "zero copy");
    network net(1);
    nic_config sender;
    sender.pool_size = 64;
    nic_config receiver;
    receiver.pool_size = 256;
    receiver.rx_copy = copy;
    sim_nic& a = net.add_nic(net.add_host("a"), sender);
    sim_nic& b = net.add_nic(net.add_host("b"), receiver);
    net.connect(a, b);
    hoarder app(b);
    for (std::uint32_t i = 0; i < 40; ++i) {
      send(a, udp_frame(a, b, i, 1000, 2000, 300));
    }
    net.run_for(millisecond);
    ASSERT_EQ(app.held.size(), 40U);
    for (std::uint32_t i = 0; i < 40; ++i) {
      EXPECT_EQ(seq_of(app.held[i]), i);  // the copies carry the same bytes
    }
    if (copy) {
      EXPECT_EQ(pool_of(a).available(), pool_of(a).capacity()) << "the sender's pool is full again";
      EXPECT_EQ(pool_of(b).available(), pool_of(b).capacity() - 40);
    } else {
      // The control: without the copy, every frame b holds is a buffer of a's pool.
      EXPECT_EQ(pool_of(a).available(), pool_of(a).capacity() - 40);
      EXPECT_EQ(pool_of(b).available(), pool_of(b).capacity());
    }
    app.held.clear();  // before the pools go with the network
  }
}

TEST(SimNic, RxCopyIntoAnEmptyPoolDropsAndCounts) {
  network net(2);
  nic_config receiver;
  receiver.pool_size = 16;
  receiver.rx_copy = true;
  sim_nic& a = net.add_nic(net.add_host("a"));
  sim_nic& b = net.add_nic(net.add_host("b"), receiver);
  net.connect(a, b);
  hoarder app(b);
  for (std::uint32_t i = 0; i < 20; ++i) {
    send(a, udp_frame(a, b, i));
  }
  net.run_for(millisecond);
  EXPECT_EQ(app.held.size(), 16U);
  EXPECT_EQ(b.stats().rx_dropped, 4U);
  EXPECT_EQ(std::count_if(net.event_log().begin(), net.event_log().end(),
                          [](const event_record& e) { return e.what == fault::rx_no_buffer; }),
            4);
  EXPECT_EQ(pool_of(a).available(), pool_of(a).capacity());
  app.held.clear();
}

TEST(SimNic, ABoundedTxRingMakesTxBurstReportBusy) {
  network net(3);
  nic_config ring;
  ring.tx_ring = 8;
  ring.line_rate_bps = 1'000'000'000;  // a 1000-byte frame takes 8 us to serialize
  sim_nic& a = net.add_nic(net.add_host("a"), ring);
  sim_nic& b = net.add_nic(net.add_host("b"));
  net.connect(a, b);  // 10 us propagation, no serialization of its own
  std::vector<time_ns> arrivals;
  b.owner().on_receive = [&](host& h) {
    for (std::size_t i = 0, n = drain(b).size(); i < n; ++i) {
      arrivals.push_back(h.net().now());
    }
  };
  std::array<packet, 32> burst;
  for (std::uint32_t i = 0; i < burst.size(); ++i) {
    burst[i] = udp_frame(a, b, i, 1000, 2000, 1000);
  }
  EXPECT_EQ(a.tx_burst(0, burst), 8U) << "the ring has 8 slots";
  EXPECT_EQ(a.stats().tx_busy, 24U);
  EXPECT_EQ(a.tx_in_ring(), 8U);
  EXPECT_TRUE(std::all_of(burst.begin(), burst.begin() + 8, [](const packet& p) { return !p; }));
  EXPECT_TRUE(std::all_of(burst.begin() + 8, burst.end(), [](const packet& p) { return !!p; }))
      << "what was refused stays with the caller";
  net.run_for(8 * microsecond);  // the first frame is on the wire: one slot free
  EXPECT_EQ(a.tx_in_ring(), 7U);
  EXPECT_EQ(a.tx_burst(0, std::span(burst).subspan(8, 2)), 1U);
  net.run_for(200 * microsecond);
  EXPECT_EQ(a.tx_in_ring(), 0U);
  EXPECT_EQ(a.tx_burst(0, std::span(burst).subspan(9)), 8U);
  net.run_for(200 * microsecond);
  ASSERT_EQ(arrivals.size(), 17U);
  // Serialized back to back at line rate: 8 us apart, the first after 8 us + 10 us.
  EXPECT_EQ(arrivals[0], 18 * microsecond);
  EXPECT_EQ(arrivals[7] - arrivals[0], 7 * 8 * microsecond);
  free_burst(std::span(burst));
}

TEST(SimNic, FramesInTheTxRingOfACrashedHostAreDropped) {
  network net(4);
  nic_config ring;
  ring.tx_ring = 4;
  ring.line_rate_bps = 100'000'000;
  sim_nic& a = net.add_nic(net.add_host("a"), ring);
  sim_nic& b = net.add_nic(net.add_host("b"));
  net.connect(a, b);
  std::size_t got = 0;
  b.owner().on_receive = [&](host&) { got += drain(b).size(); };
  std::array<packet, 4> burst;
  for (std::uint32_t i = 0; i < burst.size(); ++i) {
    burst[i] = udp_frame(a, b, i, 1000, 2000, 1000);  // 80 us each at 100 Mbit/s
  }
  ASSERT_EQ(a.tx_burst(0, burst), 4U);
  net.run_for(100 * microsecond);  // the first is on the wire, three wait in the ring
  a.owner().crash();
  net.run_for(millisecond);
  EXPECT_EQ(got, 1U);
  EXPECT_EQ(a.stats().tx_dropped, 3U);
  EXPECT_EQ(a.tx_in_ring(), 0U);
  EXPECT_EQ(pool_of(a).available(), pool_of(a).capacity());
}

}  // namespace nic_test
}  // namespace
}  // namespace dpdk_net::sim
