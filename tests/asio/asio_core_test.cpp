// The Asio layer's core in the simulator: a coroutine echo server and client over our sockets.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"

namespace {
namespace asio_core_test {

namespace net = boost::asio;
using namespace dpdk_net;

stack::stack_config host_config(std::uint32_t last_octet) {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | last_octet};  // 198.18.0.x
  c.prefix_length = 24;
  return c;
}

net::awaitable<void> echo_session(tcp::socket s) {
  std::array<char, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    co_await net::async_write(s, net::buffer(buf.data(), n), net::use_awaitable);
  }
}

net::awaitable<void> echo_server(tcp::acceptor& a) {
  for (;;) {
    tcp::socket s = co_await a.async_accept(net::use_awaitable);
    net::co_spawn(s.get_executor(), echo_session(std::move(s)), net::detached);
  }
}

net::awaitable<void> echo_client(tcp::endpoint server, std::string message, std::string* reply,
                                 bool* done) {
  tcp::socket s(co_await net::this_coro::executor);
  co_await s.async_connect(server, net::use_awaitable);
  co_await net::async_write(s, net::buffer(message), net::use_awaitable);
  reply->resize(message.size());
  co_await net::async_read(s, net::buffer(*reply), net::use_awaitable);
  s.shutdown(net::socket_base::shutdown_send);
  char extra = 0;
  auto [ec, n] =
      co_await s.async_read_some(net::buffer(&extra, 1), net::as_tuple(net::use_awaitable));
  EXPECT_EQ(ec, net::error::eof);
  EXPECT_EQ(n, 0U);
  *done = true;
}

struct echo_run {
  bool done = false;
  bool intact = false;
  std::uint64_t trace_hash = 0;
  time_ns finished_at = 0;
};

/// The coroutine echo over a faulty link: the same application code as the test above.
echo_run run_echo(std::uint64_t seed, const sim::link_config& link, std::size_t bytes) {
  sim::network netw(seed);
  sim::host& ch = netw.add_host("client");
  sim::host& sh = netw.add_host("server");
  sim::sim_nic& cn = netw.add_nic(ch);
  sim::sim_nic& sn = netw.add_nic(sh);
  netw.connect(cn, sn, link, link);
  sim::sim_runtime client(ch, cn, host_config(1));
  sim::sim_runtime server(sh, sn, host_config(2));
  tcp::acceptor acceptor(server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 7));
  net::co_spawn(server.get_executor(), echo_server(acceptor), net::detached);
  std::string message(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) {
    message[i] = static_cast<char>((i * 131 + seed) & 0xff);
  }
  std::string reply;
  echo_run r;
  net::co_spawn(client.get_executor(),
                echo_client(tcp::endpoint(net::ip::make_address_v4("198.18.0.2"), 7), message,
                            &reply, &r.done),
                net::detached);
  netw.run_until([&] { return r.done; }, 60 * second);
  r.intact = reply == message;
  r.trace_hash = netw.trace_hash();
  r.finished_at = netw.now();
  return r;
}

TEST(AsioCore, LossyEchoIsByteExactAndTheSameSeedGivesTheSameTrace) {
  sim::link_config lossy;
  lossy.delay = 200 * microsecond;
  lossy.loss = 0.02;
  lossy.reorder = 0.05;
  lossy.duplicate = 0.01;
  for (const std::uint64_t seed : {11ULL, 12ULL}) {
    SCOPED_TRACE("seed " + std::to_string(seed) +
                 " (repro: dpdk_net_asio_tests --gtest_filter=AsioCore.Lossy*)");
    const echo_run a = run_echo(seed, lossy, 300000);
    const echo_run b = run_echo(seed, lossy, 300000);
    ASSERT_TRUE(a.done);
    EXPECT_TRUE(a.intact);
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_EQ(a.finished_at, b.finished_at);
  }
  EXPECT_NE(run_echo(11, lossy, 300000).trace_hash, run_echo(12, lossy, 300000).trace_hash);
}

TEST(AsioCore, CoroutineEchoInTheSimulator) {
  const std::uint64_t seed = 7;
  SCOPED_TRACE("seed " + std::to_string(seed));
  sim::network netw(seed);
  sim::host& ch = netw.add_host("client");
  sim::host& sh = netw.add_host("server");
  sim::sim_nic& cn = netw.add_nic(ch);
  sim::sim_nic& sn = netw.add_nic(sh);
  netw.connect(cn, sn);
  sim::sim_runtime client(ch, cn, host_config(1));
  sim::sim_runtime server(sh, sn, host_config(2));

  tcp::acceptor acceptor(server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 7));
  net::co_spawn(server.get_executor(), echo_server(acceptor), net::detached);
  std::string reply;
  bool done = false;
  const std::string message(100000, 'x');
  net::co_spawn(
      client.get_executor(),
      echo_client(tcp::endpoint(net::ip::make_address_v4("198.18.0.2"), 7), message, &reply, &done),
      net::detached);
  ASSERT_TRUE(netw.run_until([&] { return done; }, 10 * second));
  EXPECT_EQ(reply, message);
}

}  // namespace asio_core_test
}  // namespace
