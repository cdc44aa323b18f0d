// Review of the multi-core runtime (issue 13): each test here states a property the runtime
// should have and that a reviewer found broken (or at risk). Simulator tests print their seed.
// Each failed before its fix (docs/asio.md "The multi-core runtime" has the resulting rules).
// g++ 12 warns (wrongly) that use_future's async_completion is used uninitialized; Boost's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <gtest/gtest.h>

#include <chrono>
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
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/multi_acceptor.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/ring_device.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_multi_runtime.hpp"
#include "multi_common.hpp"

namespace dpdk_net {
namespace {
namespace multi_review_test {

using namespace multi_testing;
using std::chrono::milliseconds;

/// Two hosts (client .1, server .2), each a sim_multi_runtime with hardware steering.
struct review_pair {
  review_pair(std::uint64_t s, std::uint16_t client_workers, std::uint16_t server_workers,
              const stack::stack_config& base = node_config(1))
      : seed(s),
        netw(s),
        ch(netw.add_host("client")),
        sh(netw.add_host("server")),
        cn(netw.add_nic(ch, nic(client_workers))),
        sn(netw.add_nic(sh, nic(server_workers))),
        link(netw.connect(cn, sn)) {
    stack::stack_config cc = base;
    stack::stack_config sc = base;
    cc.address = wire::ipv4_address{node_ip(1).to_uint()};
    sc.address = wire::ipv4_address{node_ip(2).to_uint()};
    sim::sim_multi_options co;
    co.workers = client_workers;
    sim::sim_multi_options so;
    so.workers = server_workers;
    client.emplace(ch, cn, cc, co);
    server.emplace(sh, sn, sc, so);
  }
  ~review_pair() {
    client.reset();
    server.reset();
  }
  static sim::nic_config nic(std::uint16_t workers) {
    sim::nic_config c;
    c.queues = workers;
    return c;
  }
  bool run(const std::function<bool()>& pred, time_ns limit = 5 * second) {
    return netw.run_until(pred, netw.now() + limit);
  }
  [[nodiscard]] std::string trace() const { return "seed " + std::to_string(seed); }

  std::uint64_t seed;
  sim::network netw;
  sim::host& ch;
  sim::host& sh;
  sim::sim_nic& cn;
  sim::sim_nic& sn;
  sim::sim_link& link;
  std::optional<sim::sim_multi_runtime> client;
  std::optional<sim::sim_multi_runtime> server;
};

/// One connection that connects, pauses (so the test can change something), then checks an echo.
struct paused_echo {
  std::uint16_t local_port = 0;
  bool connected = false;
  bool done = false;
  bool ok = false;
  std::string error;
};

net::awaitable<void> connect_pause_echo(net::any_io_executor ex, tcp::endpoint peer,
                                        std::chrono::milliseconds pause, std::uint32_t id,
                                        paused_echo* st) {
  tcp::socket s(ex);
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (cec) {
    st->error = "connect: " + cec.message();
    st->done = true;
    co_return;
  }
  st->local_port = s.local_endpoint().port();
  st->connected = true;
  steady_timer t(ex);
  t.expires_after(pause);
  co_await t.async_wait(net::as_tuple(net::use_awaitable));
  std::array<char, 256> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = pattern(id, i);
  }
  std::array<char, 256> in{};
  auto [wec, w] = co_await net::async_write(s, net::buffer(out), net::as_tuple(net::use_awaitable));
  auto [rec, r] = co_await net::async_read(s, net::buffer(in), net::as_tuple(net::use_awaitable));
  if (wec || rec || in != out) {
    st->error = "echo after the pause: " + wec.message() + " / " + rec.message() + ", " +
                std::to_string(r) + " bytes";
  } else {
    st->ok = true;
  }
  st->done = true;
}

// --- 1. bind(0) on one worker takes the port of another worker's outgoing connection --------

TEST(MultiReview, BindZeroOnOneWorkerDoesNotTakeAnotherWorkersConnectionPort) {
  // A small ephemeral range, so worker 0's bind(0)s go through every port of it.
  stack::stack_config base = node_config(1);
  base.ephemeral_first = 49152;
  base.ephemeral_last = 49152 + 63;
  review_pair p(8101, 2, 1, base);
  tcp::acceptor a(p.server->get_executor(0), tcp::endpoint(net::ip::address_v4::any(), 7));
  tally st;
  net::co_spawn(p.server->get_executor(0), accept_loop(&a, 0, &st), net::detached);

  paused_echo c;
  net::co_spawn(p.client->get_executor(1),
                connect_pause_echo(p.client->get_executor(1), tcp::endpoint(node_ip(2), 7),
                                   milliseconds(200), 1, &c),
                net::detached);
  ASSERT_TRUE(p.run([&] { return c.connected || c.done; })) << p.trace();
  ASSERT_TRUE(c.connected) << c.error << ", " << p.trace();
  const wire::ipv4_address server{node_ip(2).to_uint()};
  ASSERT_EQ(p.client->flows().flow_owner(6, server, 7, c.local_port), 1U);

  // Worker 0 binds sockets to port 0 until the range runs out (a listener on an ephemeral port,
  // or a client that binds before connecting, does this one at a time).
  std::vector<std::unique_ptr<tcp::socket>> bound;
  bool took_it = false;
  for (int i = 0; i < 80; ++i) {
    auto s = std::make_unique<tcp::socket>(p.client->get_executor(0));
    s->open(tcp::v4());
    error_code ec;
    s->bind(tcp::endpoint(net::ip::address_v4::any(), 0), ec);
    if (ec) {
      break;
    }
    took_it = took_it || s->local_endpoint().port() == c.local_port;
    bound.push_back(std::move(s));
  }
  EXPECT_FALSE(took_it) << "worker 0's bind(0) took port " << c.local_port
                        << ", which worker 1's connection uses; " << p.trace();
  EXPECT_EQ(p.client->flows().flow_owner(6, server, 7, c.local_port), 1U)
      << "the connection's frames are now steered to worker "
      << p.client->flows().flow_owner(6, server, 7, c.local_port) << "; " << p.trace();
  ASSERT_TRUE(p.run([&] { return c.done; })) << p.trace();
  EXPECT_TRUE(c.ok) << c.error << "; " << p.trace();
  bound.clear();
  a.close();
  p.run([] { return false; }, 10 * millisecond);
}

// --- 2. a port listened on by some (>= 2) but not all workers ------------------------------

TEST(MultiReview, PortListenedOnTwoOfThreeWorkersServesEveryConnection) {
  review_pair p(8201, 1, 3);
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  tally st;
  for (std::size_t k : {0U, 1U}) {  // worker 2 does not listen (yet, or any more)
    acceptors.push_back(std::make_unique<tcp::acceptor>(
        p.server->get_executor(k), tcp::endpoint(net::ip::address_v4::any(), 7)));
    net::co_spawn(p.server->get_executor(k), accept_loop(acceptors.back().get(), k, &st),
                  net::detached);
  }
  ASSERT_EQ(p.server->flows().port_mask(6, 7), 3U);
  tally ct;
  constexpr std::size_t n = 12;
  for (std::size_t i = 0; i < n; ++i) {
    net::co_spawn(p.client->get_executor(0),
                  echo_client(p.client->get_executor(0), 0, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(i), 2000, &ct),
                  net::detached);
  }
  ASSERT_TRUE(p.run([&] { return ct.clients_done == n; }, 10 * second)) << p.trace();
  EXPECT_EQ(ct.clients_ok, n) << "first error: " << (ct.errors.empty() ? "" : ct.errors[0])
                              << " (a flow hashed to worker 2, which has no listener); "
                              << p.trace();
  for (auto& a : acceptors) {
    a->close();
  }
  p.run([] { return false; }, 10 * millisecond);
}

// --- 3. a second listener on a lone listener's port orphans its connections ----------------

TEST(MultiReview, SecondListenerKeepsTheLoneListenersConnections) {
  review_pair p(8301, 1, 2);
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  tally st;
  acceptors.push_back(std::make_unique<tcp::acceptor>(
      p.server->get_executor(0), tcp::endpoint(net::ip::address_v4::any(), 7)));
  net::co_spawn(p.server->get_executor(0), accept_loop(acceptors.back().get(), 0, &st),
                net::detached);
  constexpr std::size_t n = 8;
  std::vector<paused_echo> c(n);
  for (std::size_t i = 0; i < n; ++i) {
    net::co_spawn(p.client->get_executor(0),
                  connect_pause_echo(p.client->get_executor(0), tcp::endpoint(node_ip(2), 7),
                                     milliseconds(200), static_cast<std::uint32_t>(i), &c[i]),
                  net::detached);
  }
  ASSERT_TRUE(p.run([&] {
    for (const auto& x : c) {
      if (!x.connected && !x.done) {
        return false;
      }
    }
    return true;
  })) << p.trace();
  // Worker 1 now tries to listen too (an accept loop per worker that started late, a second
  // server). Some of worker 0's open connections hash to worker 1: listening there would take
  // them, so the bind is refused (address_in_use) while they live, not allowed to reset them.
  {
    tcp::acceptor late(p.server->get_executor(1));
    late.open(tcp::v4());
    error_code ec;
    try {
      late.bind(tcp::endpoint(net::ip::address_v4::any(), 7));
    } catch (const boost::system::system_error& e) {
      ec = e.code();
    }
    EXPECT_EQ(ec, net::error::address_in_use) << p.trace();
  }
  ASSERT_TRUE(p.run([&] {
    for (const auto& x : c) {
      if (!x.done) {
        return false;
      }
    }
    return true;
  })) << p.trace();
  std::size_t ok = 0;
  std::string first;
  for (const auto& x : c) {
    ok += x.ok ? 1 : 0;
    if (!x.ok && first.empty()) {
      first = x.error;
    }
  }
  EXPECT_EQ(ok, n) << "connections of the lone listener (worker 0) broke when worker 1 listened: "
                   << first << "; " << p.trace();
  for (auto& a : acceptors) {
    a->close();
  }
  p.run([] { return false; }, 10 * millisecond);
}

// --- 4. a crash forgets the crashed stacks' ports -----------------------------------------

TEST(MultiReview, CrashAndRestartStartWithEmptyPortTables) {
  review_pair p(8401, 1, 2);
  {
    std::vector<std::unique_ptr<tcp::acceptor>> before;
    for (std::size_t k = 0; k < 2; ++k) {
      before.push_back(std::make_unique<tcp::acceptor>(
          p.server->get_executor(k), tcp::endpoint(net::ip::address_v4::any(), 7)));
    }
    ASSERT_EQ(p.server->flows().port_mask(6, 7), 3U);
    p.run([] { return false; }, 10 * millisecond);
    p.sh.crash();
    p.run([] { return false; }, 10 * millisecond);
    p.sh.restart();
    p.run([] { return false; }, 10 * millisecond);
  }  // the old acceptors belong to the crashed stacks
  EXPECT_EQ(p.server->flows().port_mask(6, 7), 0U)
      << "the fresh stacks have no socket, yet port 7 is still listed; " << p.trace();
  // After the restart the application listens on worker 0 only: a lone listener.
  tcp::acceptor a(p.server->get_executor(0), tcp::endpoint(net::ip::address_v4::any(), 7));
  tally st;
  net::co_spawn(p.server->get_executor(0), accept_loop(&a, 0, &st), net::detached);
  tally ct;
  constexpr std::size_t n = 8;
  for (std::size_t i = 0; i < n; ++i) {
    net::co_spawn(p.client->get_executor(0),
                  echo_client(p.client->get_executor(0), 0, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(i), 1000, &ct),
                  net::detached);
  }
  ASSERT_TRUE(p.run([&] { return ct.clients_done == n; }, 10 * second)) << p.trace();
  EXPECT_EQ(ct.clients_ok, n) << "first error: " << (ct.errors.empty() ? "" : ct.errors[0]) << "; "
                              << p.trace();
  a.close();
  p.run([] { return false; }, 10 * millisecond);
}

// --- 5. multi_acceptor destroyed after the workers stopped --------------------------------

void acceptor_outlives_running_workers() {
  review_pair p(8501, 1, 2);
  {
    multi_acceptor acc(*p.server, tcp::endpoint(net::ip::address_v4::any(), 7));
    p.run([] { return false; }, 10 * millisecond);  // each worker's accept is pending
  }  // closed while no worker runs again: its close tasks never run
  p.server.reset();
}

TEST(MultiReview, MultiAcceptorDestroyedWhenTheWorkersNoLongerRun) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        acceptor_outlives_running_workers();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "")
      << "a use after free: the last worker's context destroys the acceptor state, whose "
         "listeners belong to workers already destroyed";
}

// --- real threads (ring_device) ------------------------------------------------------------

ring_link_config queue0_link(std::uint16_t queues) {
  ring_link_config c;
  c.queues = queues;
  c.steering = ring_steering::queue0;  // a device that cannot steer: everything on queue 0
  c.pool_size = 1024;
  c.ring_size = 256;
  return c;
}

multi_runtime_options floating(std::uint16_t workers) {
  multi_runtime_options o;
  o.workers = workers;
  o.pin = false;
  return o;
}

struct idle_state {
  std::atomic<std::size_t> ready{0};
  std::atomic<std::size_t> eof{0};
  std::atomic<std::size_t> other{0};
  std::mutex lock;
  std::string first_error;
  void error(const std::string& e) {
    const std::lock_guard<std::mutex> g(lock);
    if (first_error.empty()) {
      first_error = e;
    }
  }
};

net::awaitable<void> idle_until_eof(net::any_io_executor ex, tcp::endpoint peer, idle_state* st) {
  tcp::socket s(ex);
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (cec) {
    ++st->other;
    co_return;
  }
  ++st->ready;
  std::array<char, 16> buf{};
  auto [ec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
  if (ec == net::error::eof && n == 0) {
    ++st->eof;
  } else {
    st->error("after the graceful stop: " + ec.message());
    ++st->other;
  }
}

bool wait_for(const std::function<bool()>& pred, milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

TEST(MultiReview, GracefulStopKeepsTakingFramesForWorkersStillDraining) {
  // Everything lands on queue 0 (software steering); the only listener is on worker 1, so worker
  // 0 has no connection of its own. A graceful stop must still end in a few round trips: worker 0
  // has to keep reading its queue (and handing frames over) while worker 1 drains.
  ring_link link(queue0_link(2));
  std::optional<multi_runtime> a;
  std::optional<multi_runtime> b;
  a.emplace(link.a(), node_config(1), floating(1));
  b.emplace(link.b(), node_config(2), floating(2));
  ASSERT_EQ(b->steering(), steering_mode::software);
  auto listener = std::make_unique<tcp::acceptor>(b->get_executor(1),
                                                  tcp::endpoint(net::ip::address_v4::any(), 7));
  tally tb;
  net::co_spawn(b->get_executor(1), accept_loop(listener.get(), 1, &tb), net::detached);
  idle_state st;
  constexpr std::size_t n = 4;
  for (std::size_t i = 0; i < n; ++i) {
    net::co_spawn(a->get_executor(0),
                  idle_until_eof(a->get_executor(0), tcp::endpoint(node_ip(2), 7), &st),
                  net::detached);
  }
  struct stopper {
    std::optional<multi_runtime>* a;
    std::optional<multi_runtime>* b;
    std::unique_ptr<tcp::acceptor>* l;
    ~stopper() {
      (*a)->stop();
      (*b)->stop();
      (*a)->join();
      (*b)->join();
      l->reset();
      a->reset();
      b->reset();
    }
  } guard{&a, &b, &listener};
  a->start();
  b->start();
  ASSERT_TRUE(wait_for([&] { return st.ready + st.other == n; }, milliseconds(5000)));
  ASSERT_EQ(st.ready, n);
  // Every connection accepted (one still in the accept queue would be reset with its listener).
  ASSERT_TRUE(wait_for(
      [&] {
        const std::lock_guard<std::mutex> g(tb.lock);
        return tb.flows.size() == n;
      },
      milliseconds(5000)));
  const auto before = std::chrono::steady_clock::now();
  b->graceful_stop(2 * second);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - before).count();
  std::cout << "graceful_stop took " << took << " s\n";
  for (std::size_t k = 0; k < 2; ++k) {
    const auto& tc = b->worker(k).ip().tcp().counters();
    std::cout << "worker " << k << ": resets_sent " << tc.resets_sent << ", no_socket "
              << tc.no_socket << ", connections " << b->worker(k).ip().tcp().connections()
              << ", time_wait " << b->worker(k).ip().tcp().time_wait_count() << ", mask "
              << b->flows().port_mask(6, 7) << "\n";
  }
  EXPECT_LT(took, 1.5) << "worker 1 waited for its drain limit: the clients' FINs and ACKs "
                          "landed on queue 0, whose worker had already stopped";
  EXPECT_TRUE(wait_for([&] { return st.eof + st.other == n; }, milliseconds(3000)));
  EXPECT_EQ(st.eof, n) << st.first_error;
}

TEST(MultiReview, StopBeforeRunIsNotLost) {
  // multi_runtime::stop() is callable from any thread or a signal handler; one that comes before
  // run() (a SIGINT during the application's setup) should make run() return, as runtime::run()
  // and io_context::run() do after a stop(). start() restarts every worker instead.
  ring_link link(queue0_link(2));
  multi_runtime rt(link.a(), node_config(1), floating(2));
  rt.stop();
  std::future<void> ran = std::async(std::launch::async, [&rt] { rt.run(); });
  const bool returned = ran.wait_for(std::chrono::milliseconds(500)) == std::future_status::ready;
  EXPECT_TRUE(returned) << "run() kept running after a stop() that came before it";
  if (!returned) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // threads_ filled by start()
    rt.stop();
    ran.wait();
  }
}

TEST(MultiReview, ExceptionFromAHandlerOnAWorkerReachesTheCaller) {
  // runtime::run() lets a handler's exception out to its caller, as io_context::run() does; a
  // worker of a multi_runtime runs on a std::thread, where it calls std::terminate.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ring_link link(queue0_link(2));
        multi_runtime rt(link.a(), node_config(1), floating(2));
        std::thread([] {  // a swallowed exception would leave run() running: end the child
          std::this_thread::sleep_for(std::chrono::seconds(3));
          std::_Exit(2);
        })
            .detach();
        net::post(rt.get_executor(1), [] { throw std::runtime_error("handler failed"); });
        try {
          rt.run();
        } catch (const std::runtime_error&) {
          std::exit(0);
        }
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "")
      << "the process aborted (std::terminate on the worker's thread)";
}

}  // namespace multi_review_test
}  // namespace
}  // namespace dpdk_net
