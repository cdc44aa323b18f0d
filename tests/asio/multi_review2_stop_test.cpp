// Second review of the multi-core runtime (issue 13), continued from multi_review2_test.cpp:
// a UDP socket's ephemeral port, and graceful stop (an exception in a handler, a pending
// multi_acceptor accept). Each test failed before its fix. Simulator tests print their seed.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/asio/udp.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/frame.hpp"
#include "multi_sim_common.hpp"
#include "multi_thread_common.hpp"

namespace dpdk_net {
namespace {
namespace multi_review2_stop_test {

using namespace multi_testing;

node_options workers(std::uint16_t n) {
  node_options o;
  o.workers = n;
  return o;
}

// --- 5. a UDP socket's ephemeral port is its worker's alone ---------------------------------

struct udp_reply {
  std::array<char, 64> in{};
  udp::endpoint from;
  bool done = false;
  std::size_t n = 0;
  error_code ec;
};

struct on_udp_reply {
  udp_reply* r;
  void operator()(error_code ec, std::size_t n) const {
    r->ec = ec;
    r->n = n;
    r->done = true;
  }
};

struct udp_echo_once {
  udp::socket* s;
  std::array<char, 64>* buf;
  udp::endpoint* from;
  void operator()(error_code ec, std::size_t n) const {
    if (!ec) {
      s->async_send_to(net::buffer(buf->data(), n), *from, [](error_code, std::size_t) {});
    }
  }
};

TEST(MultiReview2, AnotherWorkersUdpBindDoesNotTakeAnEphemeralSocketsReplies) {
  // A UDP socket opened on client worker 0 gets an ephemeral port for it alone (docs/asio.md:
  // a UDP socket's port goes to its one worker, whatever the hash). A later explicit bind of
  // that port on worker 1 must be refused: it would make the port shared, and the replies whose
  // hash points at worker 1 would go to worker 1's socket.
  multi_pair p(9501, workers(2), workers(1));
  udp::socket srv(p.server->get_executor(0), udp::endpoint(net::ip::address_v4::any(), 5000));
  std::array<char, 64> sbuf{};
  udp::endpoint sfrom;
  srv.async_receive_from(net::buffer(sbuf), sfrom, udp_echo_once{&srv, &sbuf, &sfrom});

  const wire::ipv4_address server_ip{node_ip(2).to_uint()};
  std::vector<std::unique_ptr<udp::socket>> socks;
  udp::socket* chosen = nullptr;
  for (int i = 0; i < 64 && chosen == nullptr; ++i) {
    socks.push_back(std::make_unique<udp::socket>(p.client->get_executor(0)));
    socks.back()->open();
    if (p.client->flows().hash_owner(server_ip, 5000, socks.back()->local_endpoint().port()) == 1) {
      chosen = socks.back().get();
    }
  }
  ASSERT_NE(chosen, nullptr) << p.trace();
  const std::uint16_t port = chosen->local_endpoint().port();
  ASSERT_EQ(p.client->flows().flow_owner(17, server_ip, 5000, port), 0U) << p.trace();

  udp::socket other(p.client->get_executor(1));
  error_code ec;
  other.bind(udp::endpoint(net::ip::address_v4::any(), port), ec);
  EXPECT_EQ(ec, net::error::address_in_use) << p.trace();

  udp_reply r;
  chosen->async_receive_from(net::buffer(r.in), r.from, on_udp_reply{&r});
  const std::string msg = "hello from worker 0";
  chosen->async_send_to(net::buffer(msg), udp::endpoint(node_ip(2), 5000),
                        [](error_code, std::size_t) {});
  p.run([&] { return r.done; }, 1 * second);
  EXPECT_TRUE(r.done && !r.ec && r.n == msg.size())
      << "worker 0's socket got no reply (it went to worker "
      << p.client->flows().flow_owner(17, server_ip, 5000, port) << "); " << p.trace();
  other.close();
  socks.clear();
  srv.close();
  p.run([] { return false; }, 10 * millisecond);
}

// --- 6. real threads: a handler's exception during graceful_stop stops every worker --------

/// Connects, reads until end of stream, then keeps the socket open (never closes its side) for
/// `hold`: the server's connection waits in FIN-WAIT-2 until its drain limit.
net::awaitable<void> connect_hold_open(net::any_io_executor ex, tcp::endpoint peer,
                                       std::chrono::milliseconds hold, std::atomic<int>* state) {
  tcp::socket s(ex);
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (cec) {
    *state = -1;
    co_return;
  }
  *state = 1;
  std::array<char, 16> buf{};
  auto [ec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
  (void)ec;
  (void)n;
  steady_timer t(ex);
  t.expires_after(hold);
  co_await t.async_wait(net::as_tuple(net::use_awaitable));
}

struct throwing_handler {
  void operator()() const { throw std::runtime_error("handler failed during the drain"); }
};

TEST(MultiReview2, ExceptionDuringGracefulStopStopsEveryWorker) {
  // docs/asio.md: "A handler that throws on a worker stops every worker". During graceful_stop
  // a worker whose own connections are done keeps running (handing frames over) while the
  // others drain; a handler throwing there ended that worker alone, and graceful_stop waited for
  // the others' drain limit (here 3 s: a peer that never closes its side) before rethrowing.
  thread_pair p(small_link(2, ring_steering::queue0), 1, 2);
  p.acceptors.push_back(std::make_unique<tcp::acceptor>(
      p.b->get_executor(1), tcp::endpoint(net::ip::address_v4::any(), 7)));
  tally tb;
  net::co_spawn(p.b->get_executor(1), accept_loop(p.acceptors.back().get(), 1, &tb), net::detached);
  std::atomic<int> client{0};
  net::co_spawn(p.a->get_executor(0),
                connect_hold_open(p.a->get_executor(0), tcp::endpoint(node_ip(2), 7),
                                  milliseconds(10000), &client),
                net::detached);
  stop_on_exit guard{&p};
  p.start();
  ASSERT_TRUE(wait_until([&] { return client != 0; }, milliseconds(5000)));
  ASSERT_EQ(client, 1);
  ASSERT_TRUE(wait_until(
      [&] {
        const std::lock_guard<std::mutex> g(tb.lock);
        return tb.flows.size() == 1;
      },
      milliseconds(5000)));
  std::thread poster([&p] {
    std::this_thread::sleep_for(milliseconds(300));  // worker 0 has drained (it had nothing)
    net::post(p.b->get_executor(0), throwing_handler{});
  });
  const auto start = steady::now();
  bool threw = false;
  try {
    p.b->graceful_stop(3 * second);
  } catch (const std::runtime_error&) {
    threw = true;
  }
  const double took = seconds_since(start);
  poster.join();
  EXPECT_TRUE(threw) << "graceful_stop did not rethrow the handler's exception";
  EXPECT_LT(took, 1.5) << "graceful_stop took " << took
                       << " s: the exception ended its worker only, the other drained on";
}

// --- 7. real threads: graceful_stop ends multi_acceptor's waiting accepts ------------------

net::awaitable<void> accept_until_error(multi_acceptor* acc, std::atomic<int>* ended) {
  for (;;) {
    auto [ec, s] = co_await acc->async_accept(net::as_tuple(net::use_awaitable));
    if (ec) {
      *ended = ec == net::error::operation_aborted ? 1 : 2;
      co_return;
    }
  }
}

TEST(MultiReview2, GracefulStopAbortsMultiAcceptorsPendingAccept) {
  // runtime::graceful_stop closes the listeners and their pending accepts complete with
  // operation_aborted. multi_acceptor's workers saw that, but its waiting async_accept (the
  // application's one accept loop, here on an ordinary thread's io_context) stayed pending
  // until close(): that io_context never ran out of work, and a shutdown that joins its thread
  // hung.
  thread_pair p(small_link(2, ring_steering::rss), 1, 2);
  net::io_context io;
  std::optional<multi_acceptor> acc;
  acc.emplace(*p.b, tcp::endpoint(net::ip::address_v4::any(), 7));
  std::atomic<int> ended{0};
  net::co_spawn(io, accept_until_error(&*acc, &ended), net::detached);
  std::promise<void> io_done;
  std::future<void> io_done_f = io_done.get_future();
  std::thread io_thread([&io, &io_done] {
    io.run();
    io_done.set_value();
  });
  struct io_stopper {
    net::io_context* io;
    std::thread* t;
    ~io_stopper() {
      io->stop();
      if (t->joinable()) {
        t->join();
      }
    }
  } stopper{&io, &io_thread};
  const stop_on_exit guard{&p};
  p.start();
  std::this_thread::sleep_for(milliseconds(100));  // each worker's accept is pending
  p.b->graceful_stop(200 * millisecond);
  EXPECT_EQ(io_done_f.wait_for(std::chrono::seconds(2)), std::future_status::ready)
      << "the accept loop still waits after the graceful stop closed every listener";
  EXPECT_EQ(ended, 1) << "the waiting accept did not complete with operation_aborted";
  acc->close();
}

}  // namespace multi_review2_stop_test
}  // namespace
}  // namespace dpdk_net
