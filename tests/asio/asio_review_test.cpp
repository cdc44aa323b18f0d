// Review of the Asio layer (issue 12): one minimal test per defect found. Each names the seed of
// its simulated run (SCOPED_TRACE).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/post.hpp>

#include "asio_ops_common.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/asio/udp.hpp"
#include "dpdk_net/memory_device.hpp"
#include "dpdk_net/runtime/runtime.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"

namespace {
namespace asio_review_test {

namespace net = boost::asio;
using namespace dpdk_net;
using namespace dpdk_net::asio_ops_testing;

constexpr auto ms = std::chrono::milliseconds(1);

struct set_flag {
  bool* flag;
  void operator()() const { *flag = true; }
};

// sim_runtime::wake sets wake_pending_ and schedules host::after(0); a crash discards that
// callback, so wake_pending_ stayed set forever and no later post from outside a pump woke the
// host again (after the restart, a co_spawn from the test body never ran).
TEST(AsioReview, PostFromOutsideAPumpRunsAfterACrashAndRestart) {
  sim_pair p(9101);
  SCOPED_TRACE(trace(p));
  bool first = false;
  net::post(p.server.get_executor(), set_flag{&first});  // schedules a wake-up pump...
  p.sh.crash();                                          // ...which the crash discards
  p.sh.restart();                                        // the restart's pump runs it
  ASSERT_TRUE(p.run([&] { return first; }, 100 * millisecond));
  bool second = false;
  net::post(p.server.get_executor(), set_flag{&second});
  EXPECT_TRUE(p.run([&] { return second; }, 100 * millisecond));
}

// Asio: accepting into an open socket fails with already_open (the peer is left alone), and an
// accept on a closed acceptor fails with bad_descriptor. The sync accept closed the open peer
// and put the new connection in it; the async one reported already_connected; a closed
// acceptor reported invalid_argument.
TEST(AsioReview, AcceptIntoAnOpenSocketIsAlreadyOpenAndAClosedAcceptorIsBadDescriptor) {
  sim_pair p(9102);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  const tcp::endpoint peer = k.s.remote_endpoint();

  result acc;
  k.acceptor.async_accept(k.s, record_ec{&acc});
  ASSERT_TRUE(p.run([&] { return acc.done; }));
  EXPECT_EQ(acc.ec, net::error::already_open) << acc.ec.message();

  // A second connection waits in the accept queue: the sync form must not take it into k.s.
  tcp::socket c2(p.client.get_executor());
  result con;
  c2.async_connect(server_ep, record_ec{&con});
  ASSERT_TRUE(p.run([&] { return con.done; }));
  ASSERT_FALSE(con.ec) << con.ec.message();
  p.run([] { return false; }, 10 * millisecond);  // the server takes the handshake's ACK
  error_code ec;
  k.acceptor.accept(k.s, ec);
  EXPECT_EQ(ec, net::error::already_open) << ec.message();
  ASSERT_TRUE(k.s.is_open());
  EXPECT_EQ(k.s.remote_endpoint(), peer);
  tcp::socket s2(p.server.get_executor());
  k.acceptor.accept(s2, ec);  // the waiting connection is still there
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(s2.is_open());

  k.acceptor.close();
  tcp::socket s3(p.server.get_executor());
  result acc2;
  k.acceptor.async_accept(s3, record_ec{&acc2});
  ASSERT_TRUE(p.run([&] { return acc2.done; }));
  EXPECT_EQ(acc2.ec, net::error::bad_descriptor) << acc2.ec.message();
  k.acceptor.accept(s3, ec);
  EXPECT_EQ(ec, net::error::bad_descriptor) << ec.message();
}

// Asio: a moved-from I/O object keeps its executor and may be used again (as if newly
// constructed). udp::socket's defaulted move emptied the executor and left impl_ null, so an
// operation on the moved-from socket dereferenced null.
TEST(AsioReview, MovedFromUdpSocketKeepsItsExecutorAndIsReusable) {
  sim_pair p(9103);
  SCOPED_TRACE(trace(p));
  udp::socket a(p.client.get_executor(), udp::endpoint(net::ip::address_v4::any(), 9000));
  udp::socket b(std::move(a));
  EXPECT_TRUE(b.is_open());
  EXPECT_FALSE(a.is_open());
  EXPECT_TRUE(static_cast<bool>(a.get_executor()));
  std::array<char, 8> buf{};
  udp::endpoint from;
  result r;
  a.async_receive_from(net::buffer(buf), from, record_n{&r});
  ASSERT_TRUE(p.run([&] { return r.done; }));
  EXPECT_EQ(r.ec, net::error::bad_descriptor) << r.ec.message();
  a.bind(udp::endpoint(net::ip::address_v4::any(), 9002));
  EXPECT_TRUE(a.is_open());
}

// The same for steady_timer: the moved-from timer had no executor and a null impl_.
TEST(AsioReview, MovedFromSteadyTimerKeepsItsExecutorAndIsReusable) {
  sim_pair p(9104);
  SCOPED_TRACE(trace(p));
  steady_timer t(p.client.get_executor());
  steady_timer t2(std::move(t));
  EXPECT_TRUE(static_cast<bool>(t.get_executor()));
  t.expires_after(5 * ms);
  result r;
  t.async_wait(record_ec{&r});
  ASSERT_TRUE(p.run([&] { return r.done; }));
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(t.cancel(), 0U);
}

// Asio's UDP client idiom: open(), then send_to (the kernel binds an ephemeral port). open() was
// a no-op, so is_open() stayed false and send_to failed with bad_descriptor. open() then bind()
// (the server idiom) must still work.
TEST(AsioReview, UdpOpenThenSendToBindsAnEphemeralPort) {
  sim_pair p(9105);
  SCOPED_TRACE(trace(p));
  udp::socket srv(p.server.get_executor(), udp::endpoint(net::ip::address_v4::any(), 9001));
  udp::socket cli(p.client.get_executor());
  cli.open(udp::v4());
  EXPECT_TRUE(cli.is_open());
  result sent, got;
  std::array<char, 8> buf{};
  udp::endpoint from;
  srv.async_receive_from(net::buffer(buf), from, record_n{&got});
  cli.async_send_to(net::buffer("hi", 2), udp::endpoint(server_ip, 9001), record_n{&sent});
  ASSERT_TRUE(p.run([&] { return sent.done && got.done; }));
  EXPECT_FALSE(sent.ec) << sent.ec.message();
  EXPECT_FALSE(got.ec) << got.ec.message();
  EXPECT_EQ(std::string(buf.data(), got.n), "hi");
  EXPECT_NE(from.port(), 0);

  udp::socket srv2(p.server.get_executor());
  srv2.open(udp::v4());
  srv2.bind(udp::endpoint(net::ip::address_v4::any(), 9003));
  EXPECT_EQ(srv2.local_endpoint().port(), 9003);
}

/// A device whose first rx_burst waits until the test releases it (the loop thread is then inside
/// its first iteration, before its first turn).
class gated_device : public device {
 public:
  explicit gated_device(device& inner) : inner_(&inner) {}
  [[nodiscard]] const device_info& info() const noexcept override { return inner_->info(); }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override {
    int expected = 0;
    if (state.compare_exchange_strong(expected, 1)) {
      while (state.load() != 2) {
        std::this_thread::yield();
      }
    }
    return inner_->rx_burst(queue, out);
  }
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override {
    return inner_->tx_burst(queue, pkts);
  }
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override {
    return inner_->tx_pool(queue);
  }
  [[nodiscard]] link_status link() const noexcept override { return inner_->link(); }
  [[nodiscard]] device_stats stats() const noexcept override { return inner_->stats(); }
  std::atomic<int> state{0};  // 0: not yet polled, 1: in the first rx_burst, 2: released

 private:
  device* inner_;
};

// The runtime's constructor attached the stack inside a turn_scope, which made the constructing
// thread the context's owner until the loop's first turn: an operation initiated on that thread
// while run() had started on another (the use_future idiom of docs/asio.md) was started directly
// on the stack, concurrently with the loop's rx/advance. attach() no longer claims ownership:
// until the first turn every initiation from a thread that runs no turn is posted.
TEST(AsioReview, InitiationOnTheConstructingThreadIsPostedWhileAnotherThreadRunsTheLoop) {
  memory_link link;
  gated_device dev(link.a());
  stack::stack_config config;
  config.address = wire::ipv4_address::from_octets(198, 18, 0, 1);
  config.prefix_length = 24;
  runtime rt(dev, config, stack::stack_secret{1, 2}, runtime_options{});
  tcp::socket s(rt.get_executor());
  const std::uint64_t posts = rt.context().counters().remote_posts;
  std::thread loop([&rt] {
    (void)rt.poll_once();
    (void)rt.poll_once();
  });
  while (dev.state.load() != 1) {
    std::this_thread::yield();
  }
  result con;
  s.async_connect(tcp::endpoint(server_ip, 7), record_ec{&con});
  dev.state.store(2);
  loop.join();
  EXPECT_GT(rt.context().counters().remote_posts, posts)
      << "the connect was started on this thread while the loop ran on another";
  EXPECT_FALSE(con.done);
}

// An initiation from another thread is posted with o->owner = &impl; closing or destroying the
// socket on the owning thread before the loop takes the post used to leave the op pointing at a
// freed impl_base (heap-use-after-free under ASan). The op now keeps the state alive and, seeing
// it closed since, completes aborted.
TEST(AsioReview, SocketDestroyedWhileARemoteInitiationIsQueued) {
  sim_pair p(9106);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  auto sock = std::make_optional<tcp::socket>(std::move(k.c));
  p.client.context().set_threaded(true);  // as the runtime: other threads post across
  std::array<char, 8> buf{};
  result rd;
  std::thread user([&] { sock->async_read_some(net::buffer(buf), record_n{&rd}); });
  user.join();
  sock.reset();  // the owning thread: the read is still in the remote queue
  ASSERT_TRUE(p.run([&] { return rd.done; }));
  EXPECT_EQ(rd.ec, net::error::operation_aborted) << rd.ec.message();
}

}  // namespace asio_review_test
}  // namespace
