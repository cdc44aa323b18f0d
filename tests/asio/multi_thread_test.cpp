// The multi-core runtime with real threads: two multi_runtimes joined by a ring_link (a
// thread-safe multi-queue in-memory device pair), each worker on its own thread. Connections
// both ways under each kind of steering (hardware RSS, memif-like same queue, a device that
// puts everything on queue 0), pinning, configuration errors, ordinary threads reaching
// sockets through their worker's executor, one multi_acceptor whose accept loop runs on a plain
// io_context thread, stopping mid-traffic (then restarting, or destroying: every buffer back in
// its pool), graceful stop under each steering. Every wait has a deadline; on failure the
// workers are stopped and joined before anything they use goes.
// g++ 12 warns (wrongly) that use_future's async_completion is used uninitialized; Boost's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/multi_acceptor.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/cpu_affinity.hpp"
#include "dpdk_net/memory_device.hpp"
#include "dpdk_net/ring_device.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "multi_common.hpp"

namespace dpdk_net {
namespace {

using namespace multi_testing;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

/// Polls pred every millisecond until it holds or `limit` has passed.
bool wait_until(const std::function<bool()>& pred, milliseconds limit) {
  const auto end = steady::now() + limit;
  while (!pred()) {
    if (steady::now() > end) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

multi_runtime_options floating(std::uint16_t workers) {
  multi_runtime_options o;
  o.workers = workers;
  o.pin = false;  // --no-pin: the test machine's cores are shared
  return o;
}

ring_link_config small_link(std::uint16_t queues, ring_steering steering) {
  ring_link_config c;
  c.queues = queues;
  c.steering = steering;
  c.pool_size = 2048;
  c.ring_size = 512;
  return c;
}

/// The workers' hand-over counters, summed (relaxed atomics: readable while the workers run,
/// unlike the loop counters of stats()).
mesh_counters sum(multi_runtime& rt) {
  mesh_counters s;
  for (std::size_t i = 0; i < rt.size(); ++i) {
    const mesh_counters c = rt.mesh().counters(static_cast<std::uint16_t>(i));
    s.handed_out += c.handed_out;
    s.handed_in += c.handed_in;
    s.arp_copies += c.arp_copies;
    s.datagrams_out += c.datagrams_out;
    s.software_hashes += c.software_hashes;
    s.ring_full += c.ring_full;
    s.no_buffer += c.no_buffer;
    s.returned += c.returned;
  }
  return s;
}

/// Stops and joins a pair's workers when a test leaves (an ASSERT included), before the locals
/// they use go: declare it after them.
struct stop_on_exit {
  struct thread_pair* p;
  ~stop_on_exit();
};

/// Nothing is on its way between rt's workers: what was handed out was handed in.
bool balanced(multi_runtime& rt) {
  const mesh_counters c = sum(rt);
  return c.handed_out + c.arp_copies + c.datagrams_out == c.handed_in;
}

std::string first_error(tally& t) {
  const std::lock_guard<std::mutex> g(t.lock);
  return t.errors.empty() ? "" : t.errors.front();
}

/// Two multi_runtimes on a ring_link: end a (198.18.0.1) and end b (198.18.0.2). I/O objects
/// made on the main thread go in `acceptors`/`sockets` (destroyed after the workers joined).
struct thread_pair {
  thread_pair(const ring_link_config& config, std::uint16_t workers_a, std::uint16_t workers_b)
      : link(config) {
    // Both before either starts: each programs its device's RSS (ring_device: before the peer's
    // tx threads run).
    a.emplace(link.a(), node_config(1), floating(workers_a));
    b.emplace(link.b(), node_config(2), floating(workers_b));
  }
  thread_pair(const thread_pair&) = delete;
  thread_pair& operator=(const thread_pair&) = delete;
  ~thread_pair() { finish(); }

  void start() {
    a->start();
    b->start();
  }
  void stop() {
    if (a) {
      a->stop();
    }
    if (b) {
      b->stop();
    }
    if (a) {
      a->join();
    }
    if (b) {
      b->join();
    }
  }
  /// Stops and joins the workers, destroys the I/O objects (no worker runs: the main thread
  /// may), then the runtimes. The link stays (its pools can be checked).
  void finish() {
    stop();
    acceptors.clear();
    sockets.clear();
    a.reset();
    b.reset();
  }
  /// A listener on port 7 on every worker of rt, each with its accept loop (echo sessions).
  void listen_everywhere(multi_runtime& rt, tally& t) {
    for (std::size_t k = 0; k < rt.size(); ++k) {
      acceptors.push_back(std::make_unique<tcp::acceptor>(
          rt.get_executor(k), tcp::endpoint(net::ip::address_v4::any(), 7)));
      net::co_spawn(rt.get_executor(k), accept_loop(acceptors.back().get(), k, &t), net::detached);
    }
  }
  /// `per_worker` echo clients from every worker of rt to the other end.
  std::size_t connect_everywhere(multi_runtime& rt, std::uint32_t peer_octet,
                                 std::size_t per_worker, std::size_t bytes, std::uint32_t id_base,
                                 tally& t) {
    std::size_t n = 0;
    for (std::size_t k = 0; k < rt.size(); ++k) {
      for (std::size_t i = 0; i < per_worker; ++i) {
        const auto id = static_cast<std::uint32_t>(id_base + k * 100 + i);
        net::co_spawn(rt.get_executor(k),
                      echo_client(rt.get_executor(k), k, tcp::endpoint(node_ip(peer_octet), 7), id,
                                  bytes, &t),
                      net::detached);
        ++n;
      }
    }
    return n;
  }
  /// Waits (running) until the link is quiet: every frame sent was received, every hand-over
  /// taken, and nothing moved for 50 ms. The last frames of a closing connection may still be
  /// on their way when the clients are done; the mesh counters balance only once they arrived.
  bool quiet(milliseconds limit) {
    std::array<std::uint64_t, 4> last{};
    int stable = 0;
    return wait_until(
        [&] {
          std::this_thread::sleep_for(milliseconds(9));
          const device_stats sa = link.a().stats();
          const device_stats sb = link.b().stats();
          const std::array<std::uint64_t, 4> now{sa.tx_packets, sa.rx_packets, sb.tx_packets,
                                                 sb.rx_packets};
          const bool settled = sa.tx_packets == sb.rx_packets && sb.tx_packets == sa.rx_packets &&
                               balanced(*a) && balanced(*b);
          stable = settled && now == last ? stable + 1 : 0;
          last = now;
          return stable >= 5;
        },
        limit);
  }
  void expect_clean_pools(const std::string& where) {
    for (ring_device* d : {&link.a(), &link.b()}) {
      for (std::uint16_t q = 0; q < link.config().queues; ++q) {
        expect_clean_pool(d->pool(q), where + " queue " + std::to_string(q));
        // Everything came back: the stacks, the hand-over rings and the sockets are gone.
        EXPECT_EQ(d->pool(q).available(), d->pool(q).capacity())
            << where << ": queue " << q << " leaked buffers";
      }
    }
  }

  ring_link link;
  std::optional<multi_runtime> a;
  std::optional<multi_runtime> b;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::unique_ptr<tcp::socket>> sockets;
};

stop_on_exit::~stop_on_exit() {
  p->stop();
}

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

// --- 2. pinning ---------------------------------------------------------------------------

TEST(MultiThreadPinning, EachWorkerRunsOnItsCore) {
  const std::vector<unsigned> allowed = allowed_cores();
  ASSERT_FALSE(allowed.empty());
  multi_runtime_options o;
  o.cores.assign(allowed.begin(), allowed.begin() + (allowed.size() >= 2 ? 2 : 1));
  o.pin = true;
  ring_link link(small_link(2, ring_steering::rss));
  std::optional<multi_runtime> rt;
  rt.emplace(link.a(), node_config(1), o);
  ASSERT_EQ(rt->size(), o.cores.size());
  rt->start();
  EXPECT_TRUE(rt->running());
  const bool filled = wait_until(
      [&] {
        for (const auto& a : rt->worker_affinity()) {
          if (a.empty()) {
            return false;
          }
        }
        return true;
      },
      milliseconds(5000));
  const std::vector<std::vector<unsigned>> affinity = rt->worker_affinity();
  rt->stop();
  rt->join();
  const std::vector<worker_stats> stats = rt->stats();  // the loop counters: after the join
  EXPECT_FALSE(rt->running());
  ASSERT_TRUE(filled);
  ASSERT_EQ(affinity.size(), o.cores.size());
  for (std::size_t k = 0; k < o.cores.size(); ++k) {
    EXPECT_EQ(affinity[k], std::vector<unsigned>{o.cores[k]}) << "worker " << k;
    EXPECT_EQ(stats[k].core, static_cast<int>(o.cores[k]));
  }
  // The main thread was not pinned by starting the workers.
  EXPECT_EQ(current_thread_affinity(), allowed);
}

TEST(MultiThreadPinning, CoreOutsideTheAllowedSetIsRefusedNamingTheFix) {
  const std::vector<unsigned> allowed = allowed_cores();
  unsigned outside = 0;
  while (outside <= max_core &&
         std::find(allowed.begin(), allowed.end(), outside) != allowed.end()) {
    ++outside;
  }
  if (outside > max_core) {
    GTEST_SKIP() << "every core is allowed";
  }
  ring_link link(small_link(2, ring_steering::rss));
  multi_runtime_options o;
  o.cores = {outside};
  try {
    multi_runtime rt(link.a(), node_config(1), o);
    FAIL() << "core " << outside << " accepted; allowed " << format_core_list(allowed);
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--cores"), std::string::npos) << what;
    EXPECT_NE(what.find(std::to_string(outside)), std::string::npos) << what;
  }
  // Not pinning: the core list only numbers the workers, any core goes.
  o.pin = false;
  multi_runtime floating_rt(link.a(), node_config(1), o);
  EXPECT_EQ(floating_rt.size(), 1U);
  EXPECT_EQ(floating_rt.stats()[0].core, -1);
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

// --- 4. ordinary threads reach a worker's socket through its executor ----------------------

net::awaitable<void> connect_on(net::any_io_executor ex, tcp::endpoint peer,
                                std::unique_ptr<tcp::socket>* out, std::promise<error_code>* done) {
  auto s = std::make_unique<tcp::socket>(ex);
  auto [ec] = co_await s->async_connect(peer, net::as_tuple(net::use_awaitable));
  *out = std::move(s);
  done->set_value(ec);
}

struct exchange_result {
  std::string echo;
  std::thread::id thread;
  bool on_worker = false;
};

net::awaitable<exchange_result> write_then_read(tcp::socket* s, std::string msg,
                                                net_context::executor_type worker) {
  exchange_result r;
  r.thread = std::this_thread::get_id();
  r.on_worker = worker.running_in_this_thread();
  co_await net::async_write(*s, net::buffer(msg), net::use_awaitable);
  r.echo.assign(msg.size(), '\0');
  co_await net::async_read(*s, net::buffer(r.echo), net::use_awaitable);
  co_return r;
}

struct thread_and_flag {
  std::thread::id thread;
  bool on_worker;
};

struct where_am_i {
  net_context::executor_type worker;
  thread_and_flag operator()() const {
    return thread_and_flag{std::this_thread::get_id(), worker.running_in_this_thread()};
  }
};

TEST(MultiThreadBridge, OrdinaryThreadUsesAWorkersSocketThroughItsExecutor) {
  thread_pair p(small_link(2, ring_steering::rss), 2, 2);
  tally tb;
  p.listen_everywhere(*p.b, tb);
  std::unique_ptr<tcp::socket> sock;  // made and connected on worker 1 of end a
  std::promise<error_code> connected;
  std::future<error_code> connected_f = connected.get_future();
  const stop_on_exit guard{&p};
  net::co_spawn(p.a->get_executor(1),
                connect_on(p.a->get_executor(1), tcp::endpoint(node_ip(2), 7), &sock, &connected),
                net::detached);
  p.start();
  ASSERT_EQ(connected_f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_FALSE(connected_f.get());
  ASSERT_TRUE(sock);

  std::string msg;
  for (std::size_t i = 0; i < 20000; ++i) {
    msg.push_back(pattern(7, i));
  }
  for (int round = 0; round < 3; ++round) {
    std::future<exchange_result> f =
        net::co_spawn(p.a->get_executor(1), write_then_read(sock.get(), msg, p.a->get_executor(1)),
                      net::use_future);
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready) << round;
    const exchange_result r = f.get();
    EXPECT_TRUE(r.echo == msg) << "round " << round << ": the echo differs";
    EXPECT_NE(r.thread, std::this_thread::get_id());
    EXPECT_TRUE(r.on_worker);
  }

  // A function posted from this thread runs on worker 0 and its value comes back.
  std::future<thread_and_flag> w0 =
      net::post(p.a->get_executor(0), net::use_future(where_am_i{p.a->get_executor(0)}));
  ASSERT_EQ(w0.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  const thread_and_flag t0 = w0.get();
  EXPECT_NE(t0.thread, std::this_thread::get_id());
  EXPECT_TRUE(t0.on_worker);
  // ... and one posted to worker 1 on another thread than worker 0's.
  std::future<thread_and_flag> w1 =
      net::post(p.a->get_executor(1), net::use_future(where_am_i{p.a->get_executor(1)}));
  ASSERT_EQ(w1.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  const thread_and_flag t1 = w1.get();
  EXPECT_NE(t1.thread, t0.thread);
  EXPECT_TRUE(t1.on_worker);

  // The connection is on worker 1, which owns it.
  p.stop();
  EXPECT_GT(p.a->worker(0).context().counters().remote_posts, 0U);
  EXPECT_EQ(p.a->flows().flow_owner(6, wire::ipv4_address{node_ip(2).to_uint()}, 7,
                                    sock->local_endpoint().port()),
            1U);
  EXPECT_TRUE(first_error(tb).empty()) << first_error(tb);
  p.sockets.push_back(std::move(sock));  // destroyed after the join, with the rest
  p.finish();
  p.expect_clean_pools("bridge");
}

// --- 5. one multi_acceptor, its accept loop on an ordinary thread ---------------------------

/// On the socket's own worker: records the flow, then echoes.
net::awaitable<void> serve_on_worker(tcp::socket s, std::size_t worker,
                                     net_context::executor_type expected, tally* t,
                                     std::atomic<std::size_t>* wrong_thread) {
  if (!expected.running_in_this_thread()) {
    ++*wrong_thread;
  }
  const auto r = s.remote_endpoint();
  t->add(tally::flow{worker, r.address().to_v4().to_uint(), r.port(), s.local_endpoint().port(),
                     true});
  co_await echo_session(std::move(s), t);
}

/// The application's one accept loop, on a plain io_context: touches the sockets only to hand
/// them to their workers.
net::awaitable<void> accept_on_io(multi_acceptor* acc, multi_runtime* rt, tally* t,
                                  std::atomic<std::size_t>* unknown_executor,
                                  std::atomic<std::size_t>* wrong_thread) {
  for (;;) {
    auto [ec, s] = co_await acc->async_accept(net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    std::size_t worker = rt->size();
    for (std::size_t k = 0; k < rt->size(); ++k) {
      if (s.get_executor() == net::any_io_executor(rt->get_executor(k))) {
        worker = k;
      }
    }
    if (worker == rt->size()) {
      ++*unknown_executor;
      continue;
    }
    net::any_io_executor ex = s.get_executor();
    net::co_spawn(ex,
                  serve_on_worker(std::move(s), worker, rt->get_executor(worker), t, wrong_thread),
                  net::detached);
  }
}

TEST(MultiThreadAccept, OneAcceptorOnAnOrdinaryThreadHandsOutSocketsBoundToTheirOwners) {
  thread_pair p(small_link(2, ring_steering::rss), 2, 2);
  tally ta;
  tally tb;
  std::atomic<std::size_t> unknown_executor{0};
  std::atomic<std::size_t> wrong_thread{0};
  net::io_context io;
  std::optional<multi_acceptor> acc;
  acc.emplace(*p.b, tcp::endpoint(net::ip::address_v4::any(), 7));
  EXPECT_EQ(acc->workers(), 2U);
  EXPECT_EQ(acc->local_endpoint().port(), 7);
  EXPECT_EQ(p.b->flows().port_mask(6, 7), 3U);  // listening on both workers

  net::co_spawn(io, accept_on_io(&*acc, &*p.b, &tb, &unknown_executor, &wrong_thread),
                net::detached);
  std::promise<void> io_done;
  std::future<void> io_done_f = io_done.get_future();
  std::thread io_thread([&io, &io_done] {
    io.run();
    io_done.set_value();
  });
  struct io_stopper {  // on any failure: the io thread ends before what it uses
    net::io_context* io;
    std::thread* t;
    ~io_stopper() {
      io->stop();
      if (t->joinable()) {
        t->join();
      }
    }
  } stopper{&io, &io_thread};
  const stop_on_exit guard{&p};  // first out: the workers stop, then the io thread

  constexpr std::size_t n = 20;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = i % 2;
    net::co_spawn(p.a->get_executor(k),
                  echo_client(p.a->get_executor(k), k, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(i), 3000, &ta),
                  net::detached);
  }
  p.start();
  const bool done = wait_until([&] { return ta.clients_done == n; }, milliseconds(8000));
  EXPECT_TRUE(done) << ta.clients_done << " of " << n << " clients done";
  EXPECT_EQ(ta.clients_ok, n) << first_error(ta);
  EXPECT_EQ(tb.bytes_echoed, n * 3000);
  const std::vector<std::uint64_t> per = acc->accepted();
  ASSERT_EQ(per.size(), 2U);
  std::cout << "accepted per worker: " << per[0] << " " << per[1] << "\n";
  EXPECT_EQ(per[0] + per[1], n);
  EXPECT_GT(per[0], 0U);
  EXPECT_GT(per[1], 0U);
  EXPECT_EQ(unknown_executor.load(), 0U);
  EXPECT_EQ(wrong_thread.load(), 0U);

  // Closing ends the io thread's loop (operation_aborted) and closes the listeners on their
  // workers (the port is released once the sessions ended too).
  acc->close();
  EXPECT_EQ(io_done_f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(wait_until([&] { return p.b->flows().port_mask(6, 7) == 0; }, milliseconds(5000)))
      << "port 7 still listed on workers " << p.b->flows().port_mask(6, 7);
  p.stop();
  expect_owned(p.b->flows(), tb, "multi_acceptor");
  expect_owned(p.a->flows(), ta, "clients");
  {
    const std::lock_guard<std::mutex> g(tb.lock);
    EXPECT_EQ(tb.flows.size(), n);
  }
  acc.reset();
  p.finish();
  p.expect_clean_pools("multi_acceptor");
}

// --- 6. graceful stop -----------------------------------------------------------------------

struct idle_client_state {
  std::atomic<std::size_t> ready{0};
  std::atomic<std::size_t> eof{0};
  std::atomic<std::size_t> other{0};
  tally t;
};

/// Connects, checks one echo, then waits idle for the server's end of the stream.
net::awaitable<void> idle_client(net::any_io_executor ex, std::size_t worker, tcp::endpoint peer,
                                 std::uint32_t id, idle_client_state* st) {
  tcp::socket s(ex);
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (cec) {
    st->t.error("connect: " + cec.message());
    ++st->other;
    co_return;
  }
  st->t.add(tally::flow{worker, peer.address().to_v4().to_uint(), peer.port(),
                        s.local_endpoint().port(), false});
  std::array<char, 64> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = pattern(id, i);
  }
  std::array<char, 64> in{};
  auto [wec, w] = co_await net::async_write(s, net::buffer(out), net::as_tuple(net::use_awaitable));
  auto [rec, r] = co_await net::async_read(s, net::buffer(in), net::as_tuple(net::use_awaitable));
  if (wec || rec || in != out) {
    st->t.error("echo: " + wec.message() + " / " + rec.message());
    ++st->other;
    co_return;
  }
  ++st->ready;
  std::array<char, 16> more{};
  auto [ec, m] = co_await s.async_read_some(net::buffer(more), net::as_tuple(net::use_awaitable));
  if (ec == net::error::eof && m == 0) {
    ++st->eof;
  } else {
    st->t.error("after graceful stop: " + ec.message() + ", " + std::to_string(m) + " bytes");
    ++st->other;
  }
}

/// End b (an echo server on every worker) stops gracefully while end a's clients sit idle on
/// their connections: each client reads eof, closes, and the drain ends as soon as every
/// connection of b is closed -- well before the `drain` limit.
void graceful_stop_case(ring_steering steering, std::uint16_t workers, const char* name) {
  thread_pair p(small_link(workers, steering), workers, workers);
  tally tb;
  idle_client_state st;
  const stop_on_exit guard{&p};
  p.listen_everywhere(*p.b, tb);
  const std::size_t n = 6U * workers;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = i % workers;
    net::co_spawn(p.a->get_executor(k),
                  idle_client(p.a->get_executor(k), k, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(i), &st),
                  net::detached);
  }
  p.start();
  ASSERT_TRUE(wait_until([&] { return st.ready + st.other == n; }, milliseconds(5000)))
      << name << ": " << st.ready << " of " << n << " connected";
  ASSERT_EQ(st.ready, n) << name << ": " << first_error(st.t);
  const auto before = steady::now();
  p.b->graceful_stop(2 * second);
  const double took = seconds_since(before);
  EXPECT_FALSE(p.b->running());
  std::cout << name << ": graceful_stop took " << took << " s\n";
  // Every connection closes in a few round trips (milliseconds); the 2 s limit is not reached.
  EXPECT_LT(took, 1.5) << name << ": the drain waited for its limit";
  EXPECT_TRUE(wait_until([&] { return st.eof + st.other == n; }, milliseconds(5000)))
      << name << ": " << st.eof << " of " << n << " saw eof";
  EXPECT_EQ(st.eof, n) << name << ": " << first_error(st.t);
  p.stop();
  expect_owned(p.a->flows(), st.t, name);
  p.finish();
  p.expect_clean_pools(name);
}

TEST(MultiThreadGracefulStop, IdleClientsSeeEndOfStream) {
  graceful_stop_case(ring_steering::rss, 2, "rss2");
}

TEST(MultiThreadGracefulStop, SoftwareSteeringSameQueue) {
  graceful_stop_case(ring_steering::same_queue, 2, "same_queue2");
}

TEST(MultiThreadGracefulStop, SoftwareSteeringEverythingOnQueueZero) {
  // Frames of every worker's connections land on queue 0: worker 0 must keep taking them (and
  // handing them over) until the others have drained.
  graceful_stop_case(ring_steering::queue0, 3, "queue0_3");
}

}  // namespace
}  // namespace dpdk_net
