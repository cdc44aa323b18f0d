// The Asio layer in the simulator: per-operation cancellation (cancellation slots), the
// objects' cancel(), awaitable operators, destruction with operations pending, steady_timer in
// virtual time.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "asio_ops_common.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/wire/tcp.hpp"

namespace {
namespace asio_ops2_test {

namespace net = boost::asio;
using namespace dpdk_net;
using namespace dpdk_net::asio_ops_testing;

constexpr auto ms = std::chrono::milliseconds(1);

/// Checks the socket still reads: the peer sends `text`, a new read gets it.
void expect_reads(sim_pair& p, tcp::socket& reader, tcp::socket& writer, const std::string& text) {
  result wr, rd;
  std::array<char, 64> buf{};
  writer.async_write_some(net::buffer(text), record_n{&wr});
  reader.async_read_some(net::buffer(buf), record_n{&rd});
  ASSERT_TRUE(p.run([&] { return wr.done && rd.done; }));
  EXPECT_FALSE(rd.ec) << rd.ec.message();
  EXPECT_EQ(std::string(buf.data(), rd.n), text);
}

TEST(AsioOpsCancel, ReadBySlot) {
  sim_pair p(301);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  net::cancellation_signal sig;
  result rd;
  std::array<char, 16> buf{};
  k.c.async_read_some(net::buffer(buf), net::bind_cancellation_slot(sig.slot(), record_n{&rd}));
  p.run([] { return false; }, 10 * millisecond);
  ASSERT_FALSE(rd.done);
  sig.emit(net::cancellation_type::total);
  ASSERT_TRUE(p.run([&] { return rd.done; }));
  EXPECT_EQ(rd.ec, net::error::operation_aborted);
  EXPECT_EQ(rd.n, 0U);
  expect_reads(p, k.c, k.s, "after");
}

TEST(AsioOpsCancel, WriteBySlotWhenThePeerNeverReads) {
  sim_pair p(302);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  // k.s never reads: the client's send buffer and the server's window fill up.
  std::vector<char> big(64 * 1024, 'w');
  net::cancellation_signal sig;
  result wr;
  std::size_t written = 0;
  bool pending = false;
  for (int i = 0; i < 64 && !pending; ++i) {
    wr = {};
    k.c.async_write_some(net::buffer(big), net::bind_cancellation_slot(sig.slot(), record_n{&wr}));
    pending = !p.run([&] { return wr.done; }, 200 * millisecond);
    if (!pending) {
      ASSERT_FALSE(wr.ec) << wr.ec.message();
      written += wr.n;
    }
  }
  ASSERT_TRUE(pending) << "every write completed: " << written;
  EXPECT_GE(written, 256U * 1024);  // at least the peer's window
  sig.emit(net::cancellation_type::total);
  ASSERT_TRUE(p.run([&] { return wr.done; }));
  EXPECT_EQ(wr.ec, net::error::operation_aborted);
  EXPECT_EQ(wr.n, 0U);
}

TEST(AsioOpsCancel, AcceptBySlot) {
  sim_pair p(303);
  SCOPED_TRACE(trace(p));
  tcp::acceptor a(p.server.get_executor(), listen_ep);
  tcp::socket s(p.server.get_executor());
  net::cancellation_signal sig;
  result acc;
  a.async_accept(s, net::bind_cancellation_slot(sig.slot(), record_ec{&acc}));
  p.run([] { return false; }, 10 * millisecond);
  ASSERT_FALSE(acc.done);
  sig.emit(net::cancellation_type::total);
  ASSERT_TRUE(p.run([&] { return acc.done; }));
  EXPECT_EQ(acc.ec, net::error::operation_aborted);
  EXPECT_FALSE(s.is_open());
  // The acceptor still accepts (the move form this time, also cancelled by slot first).
  result acc2, con;
  std::optional<tcp::socket> s2;
  a.async_accept(net::bind_cancellation_slot(sig.slot(), [&](error_code ec, tcp::socket t) {
    acc2.done = true;
    acc2.ec = ec;
    s2.emplace(std::move(t));
  }));
  sig.emit(net::cancellation_type::partial);
  ASSERT_TRUE(p.run([&] { return acc2.done; }));
  EXPECT_EQ(acc2.ec, net::error::operation_aborted);
  ASSERT_TRUE(s2.has_value());
  EXPECT_FALSE(s2->is_open());
  acc = {};
  tcp::socket c(p.client.get_executor());
  a.async_accept(s, record_ec{&acc});
  c.async_connect(server_ep, record_ec{&con});
  ASSERT_TRUE(p.run([&] { return acc.done && con.done; }));
  EXPECT_FALSE(acc.ec);
  EXPECT_FALSE(con.ec);
}

TEST(AsioOpsCancel, ConnectIsTerminalOnly) {
  sim_pair p(304);
  SCOPED_TRACE(trace(p));
  // The server host drops every SYN (ARP still answered): the connect stays pending.
  sim::link_rule rule;
  rule.description = "drop SYN";
  rule.match = sim::match::tcp(wire::tcp_flag::syn, wire::tcp_flag::ack);
  p.link.from(p.cn).add_rule(rule);
  tcp::acceptor a(p.server.get_executor(), listen_ep);
  tcp::socket c(p.client.get_executor());
  net::cancellation_signal sig;
  result con;
  c.async_connect(server_ep, net::bind_cancellation_slot(sig.slot(), record_ec{&con}));
  p.run([] { return false; }, 50 * millisecond);
  ASSERT_FALSE(con.done);
  // Total or partial: a connect supports terminal cancellation only (as Asio's): ignored.
  sig.emit(net::cancellation_type::total);
  p.run([] { return false; }, 10 * millisecond);
  EXPECT_FALSE(con.done);
  sig.emit(net::cancellation_type::terminal);
  ASSERT_TRUE(p.run([&] { return con.done; }));
  EXPECT_EQ(con.ec, net::error::operation_aborted);
  EXPECT_FALSE(c.is_open());
}

TEST(AsioOpsCancel, TimerWaitBySlot) {
  sim_pair p(305);
  SCOPED_TRACE(trace(p));
  steady_timer t(p.client.get_executor());
  t.expires_after(std::chrono::seconds(10));
  net::cancellation_signal sig;
  result wt;
  t.async_wait(net::bind_cancellation_slot(sig.slot(), record_ec{&wt}));
  p.run([] { return false; }, 10 * millisecond);
  ASSERT_FALSE(wt.done);
  sig.emit(net::cancellation_type::total);
  ASSERT_TRUE(p.run([&] { return wt.done; }));
  EXPECT_EQ(wt.ec, net::error::operation_aborted);
  EXPECT_LT(p.netw.now(), 1 * second);
}

TEST(AsioOpsCancel, SocketAndAcceptorCancel) {
  sim_pair p(306);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  result r1, r2, acc;
  std::array<char, 16> b1{}, b2{};
  k.c.async_read_some(net::buffer(b1), record_n{&r1});
  k.c.async_read_some(net::buffer(b2), record_n{&r2});
  tcp::socket s2(p.server.get_executor());
  k.acceptor.async_accept(s2, record_ec{&acc});
  p.run([] { return false; }, 10 * millisecond);
  ASSERT_FALSE(r1.done || r2.done || acc.done);
  k.c.cancel();
  k.acceptor.cancel();
  EXPECT_FALSE(r1.done || r2.done || acc.done);  // posted, not run inside cancel()
  ASSERT_TRUE(p.run([&] { return r1.done && r2.done && acc.done; }));
  EXPECT_EQ(r1.ec, net::error::operation_aborted);
  EXPECT_EQ(r2.ec, net::error::operation_aborted);
  EXPECT_EQ(acc.ec, net::error::operation_aborted);
  expect_reads(p, k.c, k.s, "still here");
  EXPECT_TRUE(k.acceptor.is_open());
}

net::awaitable<void> read_or_timeout(tcp::socket* s, steady_timer* t, std::size_t* winner,
                                     bool* done) {
  using namespace net::experimental::awaitable_operators;
  std::array<char, 16> buf{};
  t->expires_after(5 * ms);
  auto r = co_await (s->async_read_some(net::buffer(buf), net::use_awaitable) ||
                     t->async_wait(net::use_awaitable));
  *winner = r.index();
  *done = true;
}

TEST(AsioOpsCancel, AwaitableOrTimerWinsAndTheSocketStillWorks) {
  sim_pair p(307);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  steady_timer t(p.client.get_executor());
  std::size_t winner = 99;
  bool done = false;
  net::co_spawn(p.client.get_executor(), read_or_timeout(&k.c, &t, &winner, &done), net::detached);
  ASSERT_TRUE(p.run([&] { return done; }));
  EXPECT_EQ(winner, 1U);  // the timer
  expect_reads(p, k.c, k.s, "later");
}

// --- 4. destruction with operations pending ------------------------------------------------

TEST(AsioOpsDestroy, PendingHandlersRunAbortedAfterTheDestructor) {
  sim_pair p(401);
  SCOPED_TRACE(trace(p));
  connected k(p);
  ASSERT_TRUE(k.ok);
  bool in_destructor = false;
  struct seen {
    bool done = false;
    bool during_destructor = false;
    error_code ec;
  };
  seen rd, acc, wt;
  std::optional<tcp::socket> sock(std::move(k.c));
  std::optional<tcp::acceptor> acceptor(std::move(k.acceptor));
  std::optional<steady_timer> timer(std::in_place, p.client.get_executor());
  tcp::socket s2(p.server.get_executor());
  std::array<char, 16> buf{};
  auto rec = [&in_destructor](seen* s) {
    return [s, &in_destructor](error_code ec, auto&&...) {
      s->done = true;
      s->during_destructor = in_destructor;
      s->ec = ec;
    };
  };
  sock->async_read_some(net::buffer(buf), rec(&rd));
  acceptor->async_accept(s2, rec(&acc));
  timer->expires_after(std::chrono::seconds(5));
  timer->async_wait(rec(&wt));
  p.run([] { return false; }, 10 * millisecond);
  in_destructor = true;
  sock.reset();
  acceptor.reset();
  timer.reset();
  in_destructor = false;
  EXPECT_FALSE(rd.done || acc.done || wt.done);
  ASSERT_TRUE(p.run([&] { return rd.done && acc.done && wt.done; }));
  for (const seen* s : {&rd, &acc, &wt}) {
    EXPECT_FALSE(s->during_destructor);
    EXPECT_EQ(s->ec, net::error::operation_aborted);
  }
  // The destroyed socket closed gracefully: the peer reads eof.
  result r;
  k.s.async_read_some(net::buffer(buf), record_n{&r});
  ASSERT_TRUE(p.run([&] { return r.done; }));
  EXPECT_EQ(r.ec, net::error::eof);
}

// --- 5. steady_timer in virtual time ------------------------------------------------------

TEST(AsioOpsTimer, ExpiresAfterFiresAtTheVirtualTime) {
  sim_pair p(501);
  SCOPED_TRACE(trace(p));
  steady_timer t(p.client.get_executor());
  time_ns armed = 0, fired = 0, fired_host = 0;
  result wt;
  // Armed inside a turn (from a handler): measured from that turn's time.
  t.async_wait([&](error_code) {
    armed = p.client.context().now();
    t.expires_after(25 * ms);
    t.async_wait([&](error_code ec) {
      fired = p.client.context().now();
      fired_host = p.ch.local_now();
      record_ec{&wt}(ec);
    });
  });
  ASSERT_TRUE(p.run([&] { return wt.done; }));
  EXPECT_FALSE(wt.ec);
  EXPECT_GE(fired, armed + 25 * millisecond);
  EXPECT_LE(fired, armed + 25 * millisecond + 20 * microsecond);  // 10 us wheel resolution
  EXPECT_EQ(fired_host, fired);
  EXPECT_EQ(t.expiry().time_since_epoch().count(),
            static_cast<std::int64_t>(armed + 25 * millisecond));
}

// A timer armed outside a turn (after a quiet second) counts from the host's clock now, not from
// the context's last turn (net_context::now() reads the driver's clock outside a turn; before
// that fix the timer fired at once).
TEST(AsioOpsTimer, ExpiresAfterOutsideATurnCountsFromTheHostsNow) {
  sim_pair p(502);
  SCOPED_TRACE(trace(p));
  // Let virtual time pass with no turn on the client host, then arm from the test's code.
  p.run([] { return false; }, 1 * second);
  const time_ns armed = p.ch.local_now();
  steady_timer t(p.client.get_executor());
  t.expires_after(25 * ms);
  time_ns fired = 0;
  result wt;
  t.async_wait([&](error_code ec) {
    fired = p.ch.local_now();
    record_ec{&wt}(ec);
  });
  ASSERT_TRUE(p.run([&] { return wt.done; }));
  EXPECT_FALSE(wt.ec);
  EXPECT_GE(fired, armed + 25 * millisecond);
  EXPECT_LE(fired, armed + 25 * millisecond + 20 * microsecond);
}

TEST(AsioOpsTimer, CancelReturnsTheCount) {
  sim_pair p(503);
  SCOPED_TRACE(trace(p));
  steady_timer t(p.client.get_executor());
  EXPECT_EQ(t.cancel(), 0U);
  t.expires_after(std::chrono::seconds(1));
  result w1, w2;
  t.async_wait(record_ec{&w1});
  t.async_wait(record_ec{&w2});
  EXPECT_EQ(t.cancel(), 2U);
  EXPECT_EQ(t.cancel(), 0U);
  EXPECT_FALSE(w1.done || w2.done);
  ASSERT_TRUE(p.run([&] { return w1.done && w2.done; }));
  EXPECT_EQ(w1.ec, net::error::operation_aborted);
  EXPECT_EQ(w2.ec, net::error::operation_aborted);
  EXPECT_LT(p.netw.now(), 100 * millisecond);
}

TEST(AsioOpsTimer, ExpiresAtRearmingCancelsPendingWaits) {
  sim_pair p(504);
  SCOPED_TRACE(trace(p));
  steady_timer t(p.client.get_executor());
  const time_ns start = p.ch.local_now();
  t.expires_at(steady_timer::time_point(std::chrono::nanoseconds(start + 1 * second)));
  result w1, w2;
  t.async_wait(record_ec{&w1});
  EXPECT_EQ(
      t.expires_at(steady_timer::time_point(std::chrono::nanoseconds(start + 30 * millisecond))),
      1U);
  time_ns fired = 0;
  t.async_wait([&](error_code ec) {
    fired = p.ch.local_now();
    record_ec{&w2}(ec);
  });
  ASSERT_TRUE(p.run([&] { return w1.done && w2.done; }));
  EXPECT_EQ(w1.ec, net::error::operation_aborted);
  EXPECT_FALSE(w2.ec);
  EXPECT_GE(fired, start + 30 * millisecond);
  EXPECT_LE(fired, start + 30 * millisecond + 20 * microsecond);
  // A wait on an expired timer completes at once (posted), successfully.
  result w3;
  t.async_wait(record_ec{&w3});
  EXPECT_FALSE(w3.done);
  ASSERT_TRUE(p.run([&] { return w3.done; }));
  EXPECT_FALSE(w3.ec);
  EXPECT_EQ(p.ch.local_now(), fired);
}

}  // namespace asio_ops2_test
}  // namespace
