// The multi-core runtime with real threads: connections both ways under each kind of steering
// (hardware RSS, memif-like same queue, a device that puts everything on queue 0), stopping
// mid-traffic (then restarting, or destroying: every buffer back in its pool), configuration
// errors. multi_thread_api_test.cpp has the rest.
// g++ 12 warns (wrongly) that use_future's async_completion is used uninitialized; Boost's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "multi_thread_common.hpp"

namespace dpdk_net {
namespace {
namespace multi_thread_test {

using namespace multi_testing;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// --- 1. connections both ways under each kind of steering ----------------------------------

struct thread_case {
  ring_steering steering;
  std::uint16_t queues;
  steering_mode want;
  std::size_t per_worker;
  const char* name;
};

class MultiThreadSteering : public ::testing::TestWithParam<thread_case> {};

TEST_P(MultiThreadSteering, ConnectionsBothWaysEveryByteEachFlowOnItsOwner) {
  const thread_case m = GetParam();
  const auto started = steady::now();
  constexpr std::size_t bytes = 6000;
  thread_pair p(small_link(m.queues, m.steering), m.queues, m.queues);
  ASSERT_EQ(p.a->steering(), m.want);
  ASSERT_EQ(p.b->steering(), m.want);
  tally ta;
  tally tb;
  const stop_on_exit guard{&p};
  p.listen_everywhere(*p.a, ta);
  p.listen_everywhere(*p.b, tb);
  std::size_t expected = p.connect_everywhere(*p.a, 2, m.per_worker, bytes, 0, ta);
  expected += p.connect_everywhere(*p.b, 1, m.per_worker, bytes, 10000, tb);
  p.start();
  const bool done = wait_until([&] { return ta.clients_done + tb.clients_done == expected; },
                               milliseconds(12000));
  const bool quiet = done && p.quiet(milliseconds(3000));
  p.stop();
  ASSERT_TRUE(done) << m.name << ": " << ta.clients_done + tb.clients_done << " of " << expected
                    << " clients done; " << first_error(ta) << first_error(tb);
  EXPECT_TRUE(quiet) << m.name << ": the link did not settle";
  for (tally* t : {&ta, &tb}) {
    EXPECT_TRUE(t->errors.empty()) << m.name << ": " << first_error(*t);
  }
  EXPECT_EQ(ta.clients_ok + tb.clients_ok, expected);
  // Every connection echoed whole, by the other end's sessions.
  EXPECT_EQ(ta.bytes_echoed + tb.bytes_echoed, expected * bytes);
  expect_owned(p.a->flows(), ta, std::string(m.name) + " end a");
  expect_owned(p.b->flows(), tb, std::string(m.name) + " end b");
  for (tally* t : {&ta, &tb}) {
    std::vector<int> served(m.queues, 0);
    std::vector<int> opened(m.queues, 0);
    for (const tally::flow& f : t->flows) {
      ++(f.accepted ? served : opened)[f.worker];
    }
    for (std::uint16_t k = 0; k < m.queues; ++k) {
      EXPECT_GT(served[k], 0) << m.name << ": worker " << k << " accepted nothing";
      EXPECT_EQ(opened[k], static_cast<int>(m.per_worker)) << m.name << ": worker " << k;
    }
  }
  std::uint64_t handed = 0;
  for (multi_runtime* rt : {&*p.a, &*p.b}) {
    const mesh_counters c = sum(*rt);
    const char* end = rt == &*p.a ? " end a" : " end b";
    EXPECT_EQ(c.ring_full, 0U) << m.name << end;
    EXPECT_EQ(c.no_buffer, 0U) << m.name << end;
    EXPECT_GT(c.arp_copies, 0U) << m.name << end;  // ARP reached every worker
    EXPECT_EQ(c.handed_out + c.arp_copies + c.datagrams_out, c.handed_in) << m.name << end;
    EXPECT_EQ(c.returned, c.handed_in) << m.name << end;  // every original went back
    handed += c.handed_out;
    if (m.want == steering_mode::hardware) {
      EXPECT_EQ(c.handed_out, 0U) << m.name << end;  // the device put each flow on its owner
      EXPECT_EQ(c.software_hashes, 0U) << m.name << end;
    } else {
      EXPECT_GT(c.software_hashes, 0U) << m.name << end;
    }
    std::uint64_t rx = 0;
    for (const worker_stats& w : rt->stats()) {
      rx += w.loop.rx_frames;
      EXPECT_EQ(w.core, -1);  // not pinned
    }
    EXPECT_GT(rx, 0U);
  }
  if (m.steering == ring_steering::queue0) {
    EXPECT_GT(handed, 0U) << m.name;  // queue 0 received other workers' flows
  }
  if (m.steering == ring_steering::same_queue) {
    // Symmetric software hashing with the same worker count at both ends: a flow sent from
    // worker k arrives on queue k, where its owner is worker k again. Nothing is handed over.
    EXPECT_EQ(handed, 0U) << m.name;
  }
  p.finish();
  p.expect_clean_pools(m.name);
  std::cout << m.name << ": " << expected << " connections in " << seconds_since(started) << " s\n";
}

INSTANTIATE_TEST_SUITE_P(
    MultiThread, MultiThreadSteering,
    ::testing::Values(
        thread_case{ring_steering::rss, 2, steering_mode::hardware, 10, "rss2"},
        thread_case{ring_steering::rss, 4, steering_mode::hardware, 10, "rss4"},
        thread_case{ring_steering::same_queue, 2, steering_mode::software, 10, "same_queue2"},
        thread_case{ring_steering::queue0, 3, steering_mode::software, 10, "queue0_3"}),
    [](const ::testing::TestParamInfo<thread_case>& i) { return std::string(i.param.name); });

// --- stopping while frames are on their way ------------------------------------------------

/// Software steering with everything landing on queue 0 (the most hand-over traffic), 4 echo
/// clients of `bytes` from every worker of each end; returns once traffic flows (or the
/// deadline passed: then false).
bool start_heavy(thread_pair& p, tally& ta, tally& tb, std::size_t bytes, std::size_t& expected) {
  p.listen_everywhere(*p.a, ta);
  p.listen_everywhere(*p.b, tb);
  expected = p.connect_everywhere(*p.a, 2, 4, bytes, 0, ta);
  expected += p.connect_everywhere(*p.b, 1, 4, bytes, 10000, tb);
  p.start();
  return wait_until(
      [&] {
        return ta.bytes_echoed + tb.bytes_echoed > 64 * 1024 && sum(*p.a).handed_in > 0 &&
               sum(*p.b).handed_in > 0;
      },
      milliseconds(8000));
}

constexpr std::size_t heavy_bytes = 256 * 1024;

TEST(MultiThreadStop, StoppedMidTrafficThenStartedAgainEveryConnectionCompletes) {
  thread_pair p(small_link(3, ring_steering::queue0), 3, 3);
  tally ta;
  tally tb;
  const stop_on_exit guard{&p};
  std::size_t expected = 0;
  const auto started = steady::now();
  ASSERT_TRUE(start_heavy(p, ta, tb, heavy_bytes, expected));
  p.stop();
  EXPECT_FALSE(p.a->running());
  ASSERT_LT(ta.clients_done + tb.clients_done, expected) << "finished before the stop";
  const std::size_t echoed = ta.bytes_echoed + tb.bytes_echoed;
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(ta.bytes_echoed + tb.bytes_echoed, echoed);  // stopped means stopped
  p.start();
  const bool done = wait_until([&] { return ta.clients_done + tb.clients_done == expected; },
                               milliseconds(12000));
  const bool quiet = done && p.quiet(milliseconds(3000));
  p.stop();
  ASSERT_TRUE(done) << ta.clients_done + tb.clients_done << " of " << expected;
  EXPECT_TRUE(quiet);
  EXPECT_EQ(ta.clients_ok + tb.clients_ok, expected) << first_error(ta) << first_error(tb);
  EXPECT_EQ(ta.bytes_echoed + tb.bytes_echoed, expected * heavy_bytes);
  expect_owned(p.a->flows(), ta, "end a");
  expect_owned(p.b->flows(), tb, "end b");
  for (multi_runtime* rt : {&*p.a, &*p.b}) {
    EXPECT_TRUE(balanced(*rt));
    EXPECT_GT(sum(*rt).handed_out, 0U);
  }
  p.finish();
  p.expect_clean_pools("restarted");
  std::cout << expected << " connections of " << heavy_bytes / 1024
            << " KiB, stopped and restarted, in " << seconds_since(started) << " s\n";
}

TEST(MultiThreadStop, DestroyedMidTrafficEveryBufferGoesBackToItsPool) {
  // Frames in the hand-over rings, in the device's rings, in sockets' queues when the workers
  // stop: destroying the runtimes frees each exactly once, into the pool it came from.
  thread_pair p(small_link(3, ring_steering::queue0), 3, 3);
  tally ta;
  tally tb;
  const stop_on_exit guard{&p};
  std::size_t expected = 0;
  ASSERT_TRUE(start_heavy(p, ta, tb, heavy_bytes, expected));
  p.stop();
  EXPECT_LT(ta.clients_done + tb.clients_done, expected);
  for (multi_runtime* rt : {&*p.a, &*p.b}) {
    const mesh_counters c = sum(*rt);
    // Handed in: only what was handed out (the rest is still in the rings).
    EXPECT_LE(c.handed_in, c.handed_out + c.arp_copies + c.datagrams_out);
  }
  p.finish();
  p.expect_clean_pools("destroyed mid-traffic");
}

// --- 3. configuration errors ----------------------------------------------------------------

std::string construction_error(device& dev, const multi_runtime_options& o) {
  try {
    multi_runtime rt(dev, node_config(1), o);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(MultiThreadConfig, MoreWorkersThanQueuesIsRefusedNamingTheQueuesAndTheFix) {
  ring_link link(small_link(2, ring_steering::rss));
  const std::string what = construction_error(link.a(), floating(3));
  ASSERT_FALSE(what.empty()) << "3 workers on a 2-queue device accepted";
  EXPECT_NE(what.find("3 workers"), std::string::npos) << what;
  EXPECT_NE(what.find("has 2 rx / 2 tx"), std::string::npos) << what;
  EXPECT_NE(what.find("at most 2"), std::string::npos) << what;
  EXPECT_NE(what.find("--cores"), std::string::npos) << what;
}

TEST(MultiThreadConfig, SeveralWorkersOnADeviceWithoutThreadSafeQueuesAreRefused) {
  memory_link_config mc;
  mc.queues = 2;
  mc.pool_size = 512;
  memory_link link(mc);
  ASSERT_FALSE(link.a().info().thread_safe_queues);
  const std::string what = construction_error(link.a(), floating(2));
  ASSERT_FALSE(what.empty()) << "2 workers on memory_device accepted";
  EXPECT_NE(what.find("thread-safe"), std::string::npos) << what;
  EXPECT_NE(what.find("one worker"), std::string::npos) << what;
  // One worker on it is fine.
  multi_runtime one(link.a(), node_config(1), floating(1));
  EXPECT_EQ(one.size(), 1U);
}

TEST(MultiThreadConfig, ZeroWorkersAreRefused) {
  ring_link link(small_link(2, ring_steering::rss));
  const std::string what = construction_error(link.a(), floating(0));
  ASSERT_FALSE(what.empty()) << "0 workers accepted";
  EXPECT_NE(what.find("0 workers"), std::string::npos) << what;
}

/// A thread-safe multi-queue device whose queues share one transmit pool (as a backend without
/// per-queue pools would): every call goes to a ring_device end, but tx_pool is queue 0's.
class shared_pool_device final : public device {
 public:
  explicit shared_pool_device(ring_device& inner) : inner_(&inner) {}
  [[nodiscard]] const device_info& info() const noexcept override { return inner_->info(); }
  std::size_t rx_burst(std::uint16_t q, std::span<packet> out) noexcept override {
    return inner_->rx_burst(q, out);
  }
  std::size_t tx_burst(std::uint16_t q, std::span<packet> pkts) noexcept override {
    return inner_->tx_burst(q, pkts);
  }
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t) noexcept override { return inner_->tx_pool(0); }
  [[nodiscard]] link_status link() const noexcept override { return inner_->link(); }
  [[nodiscard]] device_stats stats() const noexcept override { return inner_->stats(); }

 private:
  ring_device* inner_;
};

TEST(MultiThreadConfig, QueuesSharingOnePoolAreRefusedForSeveralWorkers) {
  ring_link link(small_link(2, ring_steering::rss));
  shared_pool_device dev(link.a());
  const std::string what = construction_error(dev, floating(2));
  ASSERT_FALSE(what.empty()) << "two workers allocating from one pool on two threads accepted";
  EXPECT_NE(what.find("one transmit pool"), std::string::npos) << what;
  EXPECT_NE(what.find("one worker"), std::string::npos) << what;
  EXPECT_TRUE(construction_error(dev, floating(1)).empty());
}

}  // namespace multi_thread_test
}  // namespace
}  // namespace dpdk_net
