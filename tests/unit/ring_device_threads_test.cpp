// ring_device with real threads: every frame once, in order, on its RSS queue.
#include "ring_device_util.hpp"

namespace dpdk_net {
namespace {
namespace ring_device_threads_test {

using namespace ring_testing;

TEST(RingDevice, RealThreadsEveryFrameOnceInOrderOnItsRssQueue) {
  constexpr std::uint16_t queues = 4;
  constexpr std::uint32_t flows = 16;           // per sender
  constexpr std::uint32_t per_sender = 50'000;  // 200k in all
  constexpr std::uint32_t per_flow = per_sender / flows;
  static_assert(per_sender % flows == 0);
  ring_link_config c;
  c.queues = queues;
  c.ring_size = 128;  // small: senders meet back-pressure
  c.pool_size = 512;
  ring_link link(c);
  const std::span<const std::uint8_t> key(default_rss_key);

  const auto spec_of = [](std::uint32_t s, std::uint32_t f) {
    frame_spec spec;
    spec.src = ipv4_address::from_octets(198, 18, 1, static_cast<std::uint8_t>(s + 1));
    spec.sport = static_cast<std::uint16_t>(20000 + s * 64 + f * 7);
    spec.dport = static_cast<std::uint16_t>(443 + f);
    spec.payload = 12;  // tag = s << 16 | f, then the sequence number
    return spec;
  };
  std::array<std::array<std::uint32_t, flows>, queues> hash{};
  std::array<std::array<std::uint16_t, flows>, queues> queue_of{};
  std::array<std::uint64_t, queues> expected{};
  for (std::uint32_t s = 0; s < queues; ++s) {
    for (std::uint32_t f = 0; f < flows; ++f) {
      const frame_spec spec = spec_of(s, f);
      hash[s][f] = rss_hash_ipv4_l4(key, spec.src, spec.dst, spec.sport, spec.dport);
      queue_of[s][f] = default_queue(hash[s][f], queues);
      expected[queue_of[s][f]] += per_flow;
    }
  }
  for (std::uint64_t e : expected) {
    ASSERT_GT(e, 0U);  // every receiver has work
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::atomic<bool> timed_out{false};

  struct receiver_result {
    std::uint64_t received = 0;
    std::uint64_t wrong_queue = 0;
    std::uint64_t wrong_hash = 0;
    std::uint64_t out_of_order = 0;
    std::array<std::array<std::uint32_t, flows>, queues> next{};
  };
  std::array<receiver_result, queues> results;

  std::vector<std::thread> threads;
  for (std::uint16_t r = 0; r < queues; ++r) {
    threads.emplace_back([&, r] {
      ring_device& b = link.b();
      receiver_result& res = results[r];
      std::array<packet, 32> out;
      while (res.received < expected[r]) {
        const std::size_t n = b.rx_burst(r, out);
        if (n == 0) {
          if (std::chrono::steady_clock::now() > deadline) {
            timed_out = true;
            return;
          }
          std::this_thread::yield();
          continue;
        }
        for (std::size_t i = 0; i < n; ++i) {
          const std::byte* payload = out[i].front().data() + 14 + 20 + 8;
          const std::uint32_t tag = wire::load32(payload);
          const std::uint32_t seq = wire::load32(payload + 4);
          const std::uint32_t s = tag >> 16U;
          const std::uint32_t f = tag & 0xffffU;
          if (s >= queues || f >= flows || out[i].meta().queue != r || queue_of[s][f] != r) {
            ++res.wrong_queue;
          } else {
            if (!out[i].meta().rss_hash_valid || out[i].meta().rss_hash != hash[s][f]) {
              ++res.wrong_hash;
            }
            if (seq != res.next[s][f]) {
              ++res.out_of_order;
            }
            res.next[s][f] = seq + 1;
          }
          ++res.received;
          out[i].reset();  // on this thread, into b's pool of queue r
        }
      }
    });
  }
  for (std::uint16_t s = 0; s < queues; ++s) {
    threads.emplace_back([&, s] {
      ring_device& a = link.a();
      std::array<frame_spec, flows> specs;
      std::array<std::vector<std::byte>, flows> templates;
      for (std::uint32_t f = 0; f < flows; ++f) {
        specs[f] = spec_of(s, f);
        specs[f].tag = (std::uint32_t{s} << 16U) | f;
        templates[f] = build(specs[f]);
      }
      std::array<packet, 32> burst;
      std::size_t held = 0;  // burst[0..held) still to send
      std::uint32_t made = 0;
      while (made < per_sender || held != 0) {
        for (; held < burst.size() && made < per_sender; ++held, ++made) {
          const std::uint32_t f = made % flows;
          packet p = a.tx_pool(s).alloc();
          if (!p) {
            break;
          }
          const std::vector<std::byte>& t = templates[f];
          std::byte* d = p.append(t.size());
          std::memcpy(d, t.data(), t.size());
          wire::store32(d + 14 + 20 + 8 + 4, made / flows);
          burst[held] = std::move(p);
        }
        const std::size_t taken = a.tx_burst(s, std::span(burst).first(held));
        for (std::size_t i = taken; i < held; ++i) {
          burst[i - taken] = std::move(burst[i]);
        }
        held -= taken;
        if (taken == 0) {
          if (std::chrono::steady_clock::now() > deadline) {
            timed_out = true;
            return;
          }
          std::this_thread::yield();
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  ASSERT_FALSE(timed_out.load()) << "stalled: " << link.b().stats().rx_packets << " received";

  std::uint64_t received = 0;
  for (std::uint16_t r = 0; r < queues; ++r) {
    const receiver_result& res = results[r];
    received += res.received;
    EXPECT_EQ(res.received, expected[r]) << "rx queue " << r;
    EXPECT_EQ(res.wrong_queue, 0U) << "rx queue " << r;
    EXPECT_EQ(res.wrong_hash, 0U) << "rx queue " << r;
    EXPECT_EQ(res.out_of_order, 0U) << "rx queue " << r;
    EXPECT_EQ(link.b().queue_stats(r).rx_packets, expected[r]);
    EXPECT_EQ(link.b().rx_pending(r), 0U);
    EXPECT_EQ(link.a().queue_stats(r).tx_packets, per_sender);
  }
  // Every flow complete: with the count above, each frame arrived exactly once.
  for (std::uint32_t s = 0; s < queues; ++s) {
    for (std::uint32_t f = 0; f < flows; ++f) {
      EXPECT_EQ(results[queue_of[s][f]].next[s][f], per_flow) << "sender " << s << " flow " << f;
    }
  }
  EXPECT_EQ(received, std::uint64_t{queues} * per_sender);
  EXPECT_EQ(link.a().stats().tx_packets, std::uint64_t{queues} * per_sender);
  EXPECT_EQ(link.a().stats().tx_dropped, 0U);
  EXPECT_EQ(link.b().stats().rx_packets, std::uint64_t{queues} * per_sender);
  RecordProperty("tx_busy", std::to_string(link.a().stats().tx_busy));
  expect_pools_clean(link);
}

}  // namespace ring_device_threads_test
}  // namespace
}  // namespace dpdk_net
