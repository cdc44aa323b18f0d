// The Asio layer's operations in the simulator: every async op with every completion token,
// completion semantics (zero-size, eof, refused), per-operation and object cancellation,
// destruction with operations pending, and steady_timer in virtual time.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/stream_traits.hpp>

#include "asio_ops_common.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/asio/udp.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"
#include "dpdk_net/wire/tcp.hpp"

static_assert(boost::beast::is_async_stream<dpdk_net::tcp::socket>::value);

namespace {
namespace asio_ops_test {

namespace net = boost::asio;
using namespace dpdk_net;
using namespace dpdk_net::asio_ops_testing;

// --- 1. every op with every token -----------------------------------------------------------

/// Launches an operation given as "a function of the token" with a callback: directly, or
/// through deferred (the deferred operation then invoked with the callback).
struct direct {
  template <class Op, class Handler>
  static void go(Op op, Handler h) {
    op(std::move(h));
  }
};
struct via_deferred {
  template <class Op, class Handler>
  static void go(Op op, Handler h) {
    auto d = op(net::deferred);
    std::move(d)(std::move(h));
  }
};

template <class Launch>
void exercise_callbacks(std::uint64_t seed) {
  sim_pair p(seed);
  SCOPED_TRACE(trace(p));
  tcp::acceptor a(p.server.get_executor(), listen_ep);
  tcp::socket c1(p.client.get_executor());
  tcp::socket c2(p.client.get_executor());
  tcp::socket s1(p.server.get_executor());
  std::optional<tcp::socket> s2;
  udp::socket u1(p.client.get_executor(), udp::endpoint(net::ip::address_v4::any(), 9000));
  udp::socket u2(p.server.get_executor(), udp::endpoint(net::ip::address_v4::any(), 9001));
  steady_timer t(p.client.get_executor());
  result acc1, con1, acc2, con2, wr, rd, snd, rcv, wt;

  Launch::go([&](auto&& tok) { return a.async_accept(s1, std::move(tok)); }, record_ec{&acc1});
  Launch::go([&](auto&& tok) { return c1.async_connect(server_ep, std::move(tok)); },
             record_ec{&con1});
  ASSERT_TRUE(p.run([&] { return acc1.done && con1.done; }));
  EXPECT_FALSE(acc1.ec);
  EXPECT_FALSE(con1.ec);

  Launch::go([&](auto&& tok) { return a.async_accept(std::move(tok)); },
             [&](error_code ec, tcp::socket s) {
               acc2.done = true;
               acc2.ec = ec;
               s2.emplace(std::move(s));
             });
  Launch::go([&](auto&& tok) { return c2.async_connect(server_ep, std::move(tok)); },
             record_ec{&con2});
  ASSERT_TRUE(p.run([&] { return acc2.done && con2.done; }));
  EXPECT_FALSE(acc2.ec);
  EXPECT_FALSE(con2.ec);
  ASSERT_TRUE(s2.has_value());
  EXPECT_TRUE(s2->is_open());
  EXPECT_EQ(s2->remote_endpoint().port(), c2.local_endpoint().port());

  const std::string msg = "hello";
  std::array<char, 16> in{};
  Launch::go([&](auto&& tok) { return c1.async_write_some(net::buffer(msg), std::move(tok)); },
             record_n{&wr});
  Launch::go([&](auto&& tok) { return s1.async_read_some(net::buffer(in), std::move(tok)); },
             record_n{&rd});
  ASSERT_TRUE(p.run([&] { return wr.done && rd.done; }));
  EXPECT_FALSE(wr.ec);
  EXPECT_EQ(wr.n, msg.size());
  EXPECT_FALSE(rd.ec);
  EXPECT_EQ(std::string(in.data(), rd.n), msg);

  udp::endpoint sender;
  std::array<char, 16> din{};
  Launch::go(
      [&](auto&& tok) { return u2.async_receive_from(net::buffer(din), sender, std::move(tok)); },
      record_n{&rcv});
  Launch::go(
      [&](auto&& tok) {
        return u1.async_send_to(net::buffer(msg), udp::endpoint(server_ip, 9001), std::move(tok));
      },
      record_n{&snd});
  ASSERT_TRUE(p.run([&] { return snd.done && rcv.done; }));
  EXPECT_FALSE(snd.ec);
  EXPECT_EQ(snd.n, msg.size());
  EXPECT_FALSE(rcv.ec);
  EXPECT_EQ(std::string(din.data(), rcv.n), msg);
  EXPECT_EQ(sender.port(), 9000);

  t.expires_after(std::chrono::milliseconds(1));
  Launch::go([&](auto&& tok) { return t.async_wait(std::move(tok)); }, record_ec{&wt});
  ASSERT_TRUE(p.run([&] { return wt.done; }));
  EXPECT_FALSE(wt.ec);
}

TEST(AsioOpsTokens, PlainCallback) {
  exercise_callbacks<direct>(101);
}

TEST(AsioOpsTokens, DeferredThenInvoked) {
  exercise_callbacks<via_deferred>(102);
}

/// The objects a token coroutine pair works on.
struct token_rig {
  explicit token_rig(sim_pair& p)
      : a(p.server.get_executor(), listen_ep),
        c1(p.client.get_executor()),
        c2(p.client.get_executor()),
        s1(p.server.get_executor()),
        u1(p.client.get_executor(), udp::endpoint(net::ip::address_v4::any(), 9000)),
        u2(p.server.get_executor(), udp::endpoint(net::ip::address_v4::any(), 9001)),
        t(p.client.get_executor()) {}
  tcp::acceptor a;
  tcp::socket c1, c2, s1;
  udp::socket u1, u2;
  steady_timer t;
  bool client_done = false;
  bool server_done = false;
};

net::awaitable<void> server_plain(token_rig* r) {
  co_await r->a.async_accept(r->s1, net::use_awaitable);
  std::array<char, 5> buf{};
  std::size_t got = 0;
  while (got < buf.size()) {
    got += co_await r->s1.async_read_some(net::buffer(buf.data() + got, buf.size() - got),
                                          net::use_awaitable);
  }
  const std::size_t n = co_await r->s1.async_write_some(net::buffer(buf), net::use_awaitable);
  EXPECT_EQ(n, buf.size());
  tcp::socket s2 = co_await r->a.async_accept(net::use_awaitable);
  EXPECT_TRUE(s2.is_open());
  udp::endpoint sender;
  const std::size_t d =
      co_await r->u2.async_receive_from(net::buffer(buf), sender, net::use_awaitable);
  EXPECT_EQ(d, 5U);
  r->server_done = true;
}

net::awaitable<void> client_plain(token_rig* r) {
  co_await r->c1.async_connect(server_ep, net::use_awaitable);
  const std::size_t w =
      co_await r->c1.async_write_some(net::buffer("hello", 5), net::use_awaitable);
  EXPECT_EQ(w, 5U);
  std::array<char, 5> buf{};
  std::size_t got = 0;
  while (got < buf.size()) {
    got += co_await r->c1.async_read_some(net::buffer(buf.data() + got, buf.size() - got),
                                          net::use_awaitable);
  }
  EXPECT_EQ(std::string(buf.data(), 5), "hello");
  co_await r->c2.async_connect(server_ep, net::use_awaitable);
  const std::size_t s = co_await r->u1.async_send_to(
      net::buffer("hello", 5), udp::endpoint(server_ip, 9001), net::use_awaitable);
  EXPECT_EQ(s, 5U);
  r->t.expires_after(std::chrono::milliseconds(1));
  co_await r->t.async_wait(net::use_awaitable);
  r->client_done = true;
}

net::awaitable<void> server_tuple(token_rig* r) {
  constexpr auto tok = net::as_tuple(net::use_awaitable);
  auto [e1] = co_await r->a.async_accept(r->s1, tok);
  EXPECT_FALSE(e1);
  std::array<char, 5> buf{};
  std::size_t got = 0;
  while (got < buf.size()) {
    auto [e, n] =
        co_await r->s1.async_read_some(net::buffer(buf.data() + got, buf.size() - got), tok);
    EXPECT_FALSE(e);
    got += n;
  }
  auto [e2, n2] = co_await r->s1.async_write_some(net::buffer(buf), tok);
  EXPECT_FALSE(e2);
  EXPECT_EQ(n2, buf.size());
  auto [e3, s2] = co_await r->a.async_accept(tok);
  EXPECT_FALSE(e3);
  EXPECT_TRUE(s2.is_open());
  udp::endpoint sender;
  auto [e4, d] = co_await r->u2.async_receive_from(net::buffer(buf), sender, tok);
  EXPECT_FALSE(e4);
  EXPECT_EQ(d, 5U);
  r->server_done = true;
}

net::awaitable<void> client_tuple(token_rig* r) {
  constexpr auto tok = net::as_tuple(net::use_awaitable);
  auto [e1] = co_await r->c1.async_connect(server_ep, tok);
  EXPECT_FALSE(e1);
  auto [e2, w] = co_await r->c1.async_write_some(net::buffer("hello", 5), tok);
  EXPECT_FALSE(e2);
  EXPECT_EQ(w, 5U);
  std::array<char, 5> buf{};
  std::size_t got = 0;
  while (got < buf.size()) {
    auto [e, n] =
        co_await r->c1.async_read_some(net::buffer(buf.data() + got, buf.size() - got), tok);
    EXPECT_FALSE(e);
    got += n;
  }
  auto [e3] = co_await r->c2.async_connect(server_ep, tok);
  EXPECT_FALSE(e3);
  auto [e4, s] =
      co_await r->u1.async_send_to(net::buffer("hello", 5), udp::endpoint(server_ip, 9001), tok);
  EXPECT_FALSE(e4);
  EXPECT_EQ(s, 5U);
  r->t.expires_after(std::chrono::milliseconds(1));
  auto [e5] = co_await r->t.async_wait(tok);
  EXPECT_FALSE(e5);
  r->client_done = true;
}

net::awaitable<void> server_redirect(token_rig* r) {
  error_code ec;
  co_await r->a.async_accept(r->s1, net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  std::array<char, 5> buf{};
  std::size_t got = 0;
  while (got < buf.size()) {
    got += co_await r->s1.async_read_some(net::buffer(buf.data() + got, buf.size() - got),
                                          net::redirect_error(net::use_awaitable, ec));
    EXPECT_FALSE(ec);
  }
  const std::size_t n = co_await r->s1.async_write_some(
      net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(n, buf.size());
  tcp::socket s2 = co_await r->a.async_accept(net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  EXPECT_TRUE(s2.is_open());
  udp::endpoint sender;
  const std::size_t d = co_await r->u2.async_receive_from(
      net::buffer(buf), sender, net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(d, 5U);
  r->server_done = true;
}

net::awaitable<void> client_redirect(token_rig* r) {
  error_code ec;
  co_await r->c1.async_connect(server_ep, net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  const std::size_t w = co_await r->c1.async_write_some(
      net::buffer("hello", 5), net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(w, 5U);
  std::array<char, 5> buf{};
  std::size_t got = 0;
  while (got < buf.size()) {
    got += co_await r->c1.async_read_some(net::buffer(buf.data() + got, buf.size() - got),
                                          net::redirect_error(net::use_awaitable, ec));
    EXPECT_FALSE(ec);
  }
  co_await r->c2.async_connect(server_ep, net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  const std::size_t s =
      co_await r->u1.async_send_to(net::buffer("hello", 5), udp::endpoint(server_ip, 9001),
                                   net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(s, 5U);
  r->t.expires_after(std::chrono::milliseconds(1));
  co_await r->t.async_wait(net::redirect_error(net::use_awaitable, ec));
  EXPECT_FALSE(ec);
  r->client_done = true;
}

using coro_fn = net::awaitable<void> (*)(token_rig*);

void exercise_coroutines(std::uint64_t seed, coro_fn server_fn, coro_fn client_fn) {
  sim_pair p(seed);
  SCOPED_TRACE(trace(p));
  token_rig r(p);
  net::co_spawn(p.server.get_executor(), server_fn(&r), net::detached);
  net::co_spawn(p.client.get_executor(), client_fn(&r), net::detached);
  ASSERT_TRUE(p.run([&] { return r.client_done && r.server_done; }));
}

TEST(AsioOpsTokens, UseAwaitable) {
  exercise_coroutines(103, &server_plain, &client_plain);
}

TEST(AsioOpsTokens, AsTupleUseAwaitable) {
  exercise_coroutines(104, &server_tuple, &client_tuple);
}

TEST(AsioOpsTokens, RedirectErrorUseAwaitable) {
  exercise_coroutines(105, &server_redirect, &client_redirect);
}

template <class T>
bool ready(const std::future<T>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

TEST(AsioOpsTokens, UseFutureInTheSimulator) {
  sim_pair p(106);
  SCOPED_TRACE(trace(p));
  token_rig r(p);
  auto fa = r.a.async_accept(r.s1, net::use_future);
  auto fc = r.c1.async_connect(server_ep, net::use_future);
  ASSERT_TRUE(p.run([&] { return ready(fa) && ready(fc); }));
  fa.get();
  fc.get();
  auto fw = r.c1.async_write_some(net::buffer("hello", 5), net::use_future);
  std::array<char, 16> buf{};
  auto fr = r.s1.async_read_some(net::buffer(buf), net::use_future);
  ASSERT_TRUE(p.run([&] { return ready(fw) && ready(fr); }));
  EXPECT_EQ(fw.get(), 5U);
  EXPECT_EQ(fr.get(), 5U);
  auto fa2 = r.a.async_accept(net::use_future);
  auto fc2 = r.c2.async_connect(server_ep, net::use_future);
  ASSERT_TRUE(p.run([&] { return ready(fa2) && ready(fc2); }));
  tcp::socket s2 = fa2.get();
  EXPECT_TRUE(s2.is_open());
  fc2.get();
  udp::endpoint sender;
  auto fu = r.u2.async_receive_from(net::buffer(buf), sender, net::use_future);
  auto fs =
      r.u1.async_send_to(net::buffer("hello", 5), udp::endpoint(server_ip, 9001), net::use_future);
  ASSERT_TRUE(p.run([&] { return ready(fu) && ready(fs); }));
  EXPECT_EQ(fs.get(), 5U);
  EXPECT_EQ(fu.get(), 5U);
  r.t.expires_after(std::chrono::milliseconds(1));
  auto ft = r.t.async_wait(net::use_future);
  ASSERT_TRUE(p.run([&] { return ready(ft); }));
  ft.get();
  // An error reaches the future as an exception carrying Asio's value.
  tcp::socket c3(p.client.get_executor());
  auto fbad = c3.async_connect(tcp::endpoint(server_ip, 9), net::use_future);
  ASSERT_TRUE(p.run([&] { return ready(fbad); }));
  try {
    fbad.get();
    ADD_FAILURE() << "connect to a closed port succeeded";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), net::error::connection_refused);
  }
}

// --- 2. semantics ------------------------------------------------------------------------------

TEST(AsioOpsSemantics, ZeroSizeCompletesWithSuccessAndNotInline) {
  sim_pair p(201);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  // Outside a turn (the test's own code).
  bool returned = false;
  bool seen_returned = false;
  result rd;
  std::array<char, 4> buf{};
  k.c.async_read_some(net::buffer(buf, 0), [&](error_code ec, std::size_t n) {
    seen_returned = returned;
    record_n{&rd}(ec, n);
  });
  returned = true;
  EXPECT_FALSE(rd.done);
  ASSERT_TRUE(p.run([&] { return rd.done; }));
  EXPECT_TRUE(seen_returned);
  EXPECT_FALSE(rd.ec);
  EXPECT_EQ(rd.n, 0U);

  // Inside a turn (from a handler): a write of nothing.
  bool w_returned = false;
  bool w_seen = false;
  result wr;
  steady_timer t(p.client.get_executor());
  t.async_wait([&](error_code) {
    k.c.async_write_some(net::const_buffer(), [&](error_code ec, std::size_t n) {
      w_seen = w_returned;
      record_n{&wr}(ec, n);
    });
    w_returned = true;
  });
  ASSERT_TRUE(p.run([&] { return wr.done; }));
  EXPECT_TRUE(w_seen);
  EXPECT_FALSE(wr.ec);
  EXPECT_EQ(wr.n, 0U);
}

TEST(AsioOpsSemantics, FinGivesEof) {
  sim_pair p(202);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  result rd;
  std::array<char, 4> buf{};
  k.c.async_read_some(net::buffer(buf), record_n{&rd});
  p.run([] { return false; }, 10 * millisecond);
  EXPECT_FALSE(rd.done);
  k.s.shutdown(net::socket_base::shutdown_send);
  ASSERT_TRUE(p.run([&] { return rd.done; }));
  EXPECT_EQ(rd.ec, net::error::eof);
  EXPECT_EQ(rd.n, 0U);
}

TEST(AsioOpsSemantics, DataThenFinGivesDataThenEof) {
  sim_pair p(203);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  const std::string msg(3000, 'q');
  result wr;
  k.s.async_write_some(net::buffer(msg), record_n{&wr});
  ASSERT_TRUE(p.run([&] { return wr.done; }));
  ASSERT_EQ(wr.n, msg.size());
  k.s.shutdown(net::socket_base::shutdown_send);
  p.run([] { return false; }, 100 * millisecond);  // data and FIN have arrived
  EXPECT_EQ(k.c.available(), msg.size());
  std::string got;
  error_code last;
  for (int i = 0; i < 10 && !last; ++i) {
    std::array<char, 1024> buf{};
    result rd;
    k.c.async_read_some(net::buffer(buf), record_n{&rd});
    ASSERT_TRUE(p.run([&] { return rd.done; }));
    if (!rd.ec) {
      EXPECT_GT(rd.n, 0U);
    }
    got.append(buf.data(), rd.n);
    last = rd.ec;
  }
  EXPECT_EQ(got, msg);
  EXPECT_EQ(last, net::error::eof);
}

TEST(AsioOpsSemantics, ConnectToAClosedPortIsRefused) {
  sim_pair p(204);
  SCOPED_TRACE(trace(p));
  tcp::socket c(p.client.get_executor());
  result con;
  c.async_connect(tcp::endpoint(server_ip, 9), record_ec{&con});
  ASSERT_TRUE(p.run([&] { return con.done; }));
  EXPECT_EQ(con.ec, net::error::connection_refused);
  EXPECT_EQ(&con.ec.category(), &boost::system::system_category());
  // A read on the failed socket fails (not a crash), with an Asio value.
  result rd;
  std::array<char, 4> buf{};
  c.async_read_some(net::buffer(buf), record_n{&rd});
  ASSERT_TRUE(p.run([&] { return rd.done; }));
  EXPECT_TRUE(rd.ec);
}

TEST(AsioOpsSemantics, AnLvalueHandlerIsCopied) {
  // Asio's ops take a handler by forwarding reference and decay-copy it: a named (even const)
  // handler object must compile and be copied.
  sim_pair p(205);
  SCOPED_TRACE(trace(p));
  steady_timer t(p.client.get_executor());
  t.expires_after(std::chrono::milliseconds(1));
  result r;
  const record_ec h{&r};
  t.async_wait(h);
  record_ec h2{&r};
  t.async_wait(h2);
  ASSERT_TRUE(p.run([&] { return r.done; }));
  EXPECT_FALSE(r.ec);
}

}  // namespace asio_ops_test
}  // namespace
