// Integration: our Asio sockets used through use_future from a plain std::thread while the
// runtimes run on another; the TCP core's socket API driven by a hand-written loop with no Asio;
// the "sockets visited == sockets named by events" gate; the runtime's graceful stop.
// g++ 12 at -O1 warns (wrongly) that use_future's async_completion is used uninitialized when
// the initiation is inlined into a lambda; Boost's own code, not ours.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "asio_ops_common.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/memory_device.hpp"
#include "dpdk_net/os.hpp"
#include "dpdk_net/runtime/runtime.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace {
namespace asio_ops3_test {

namespace net = boost::asio;
using namespace dpdk_net;
using namespace dpdk_net::asio_ops_testing;

const wire::ipv4_address ip_a = wire::ipv4_address::from_octets(198, 18, 0, 1);
const wire::ipv4_address ip_b = wire::ipv4_address::from_octets(198, 18, 0, 2);

stack::stack_config raw_config(wire::ipv4_address ip, const device& dev) {
  stack::stack_config c;
  c.address = ip;
  c.prefix_length = 24;
  c.mac = dev.info().mac;
  return c;
}

// --- (a) the TCP core driven by a hand-written loop, no Asio --------------------------------

/// One stack on one end of a memory link, stepped by hand:
/// rx_burst -> receive -> advance -> poll_events -> (application) -> drain_tx -> tx_burst.
struct raw_host {
  raw_host(memory_device& d, wire::ipv4_address addr, stack::stack_secret secret, time_ns now)
      : dev(&d), ip(raw_config(addr, d), d.tx_pool(0), secret, now) {
    this->ip.start(now);
  }
  template <class App>
  void step(time_ns now, App&& app) {
    std::array<packet, 32> burst{};
    const std::size_t n = dev->rx_burst(0, burst);
    for (std::size_t i = 0; i < n; ++i) {
      ip.receive(std::move(burst[i]), now);
    }
    ip.advance(now);
    std::array<stack::socket_event, 32> events{};
    for (std::size_t k = 0; (k = ip.poll_events(events)) != 0;) {
      for (std::size_t i = 0; i < k; ++i) {
        app(events[i]);
      }
    }
    for (std::size_t k = 0; (k = ip.drain_tx(burst, now)) != 0;) {
      std::size_t sent = 0;
      while (sent < k) {
        const std::size_t m = dev->tx_burst(0, std::span(burst).subspan(sent, k - sent));
        ASSERT_NE(m, 0U) << "the memory ring is full";
        sent += m;
      }
    }
  }
  memory_device* dev;
  stack::stack ip;
};

TEST(AsioOpsIntegration, TcpCoreEchoFromAHandWrittenLoop) {
  // examples/tcp_echo is such a loop over a device; this is the same loop in miniature.
  memory_link link;
  time_ns now = 1 * second;
  raw_host server(link.a(), ip_b, {1, 2}, now);
  raw_host client(link.b(), ip_a, {3, 4}, now);
  namespace ev = stack::socket_events;
  using id_t = stack::tcp_layer::socket_id;
  stack::tcp_layer& st = server.ip.tcp();
  stack::tcp_layer& ct = client.ip.tcp();
  id_t listener = stack::tcp_layer::invalid_socket;
  ASSERT_FALSE(st.open(listener));
  ASSERT_FALSE(st.bind(listener, 7));
  ASSERT_FALSE(st.listen(listener, 16));
  id_t conn = stack::tcp_layer::invalid_socket;
  id_t c = stack::tcp_layer::invalid_socket;
  ASSERT_FALSE(ct.open(c));
  ASSERT_FALSE(ct.connect(c, {ip_b, 7}, now));
  std::string msg(50000, '\0');
  for (std::size_t i = 0; i < msg.size(); ++i) {
    msg[i] = static_cast<char>('a' + i % 26);
  }
  std::size_t sent = 0;
  std::string echoed;
  std::vector<std::byte> pending;  // server: received, not yet echoed
  bool eof = false;
  auto send_more = [&] {
    while (sent < msg.size()) {
      const auto r = ct.send(c, std::as_bytes(std::span(msg)).subspan(sent));
      if (r.bytes == 0) {
        break;
      }
      sent += r.bytes;
    }
    if (sent == msg.size()) {
      (void)ct.shutdown(c, stack::shutdown_type::send, now);
    }
  };
  auto server_app = [&](const stack::socket_event& e) {
    if (e.socket == listener && (e.events & ev::acceptable) != 0) {
      ASSERT_FALSE(st.accept(listener, conn));
    }
    if (e.socket == conn && (e.events & (ev::readable | ev::writable)) != 0) {
      std::array<std::byte, 4096> buf{};
      for (;;) {
        const auto r = st.receive(conn, buf);
        if (r.bytes == 0) {
          break;
        }
        pending.insert(pending.end(), buf.begin(), buf.begin() + static_cast<long>(r.bytes));
      }
      while (!pending.empty()) {
        const auto w = st.send(conn, pending);
        if (w.bytes == 0) {
          break;
        }
        pending.erase(pending.begin(), pending.begin() + static_cast<long>(w.bytes));
      }
    }
  };
  auto client_app = [&](const stack::socket_event& e) {
    if (e.socket != c) {
      return;
    }
    if ((e.events & (ev::connected | ev::writable)) != 0) {
      send_more();
    }
    if ((e.events & ev::readable) != 0) {
      std::array<char, 4096> buf{};
      for (;;) {
        const auto r = ct.receive(c, std::as_writable_bytes(std::span(buf)));
        if (r.error == stack::tcp_errc::end_of_stream) {
          eof = true;
        }
        if (r.bytes == 0) {
          break;
        }
        echoed.append(buf.data(), r.bytes);
      }
    }
  };
  for (int i = 0; i < 200000 && echoed.size() < msg.size(); ++i) {
    server.step(now, server_app);
    client.step(now, client_app);
    now += 10 * microsecond;
  }
  EXPECT_EQ(echoed.size(), msg.size());
  EXPECT_TRUE(echoed == msg);
  EXPECT_FALSE(eof);  // the server never shut down its side
}

// --- (b) a std::thread using our sockets through use_future ---------------------------------

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

net::awaitable<void> echo_server(tcp::acceptor* a) {
  for (;;) {
    auto [ec, s] = co_await a->async_accept(net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    net::co_spawn(s.get_executor(), echo_session(std::move(s)), net::detached);
  }
}

template <class T>
T get_within(std::future<T>& f, std::string& failure, const char* what) {
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    failure = std::string(what) + ": no completion in 5 s";
    throw std::runtime_error(failure);
  }
  return f.get();
}

TEST(AsioOpsIntegration, StdThreadUsesSocketsThroughUseFuture) {
  memory_link link;
  runtime_options opts;
  runtime server(link.a(), raw_config(ip_b, link.a()), stack::stack_secret{1, 2}, opts);
  runtime client(link.b(), raw_config(ip_a, link.b()), stack::stack_secret{3, 4}, opts);
  tcp::acceptor acceptor(server.get_executor(), listen_ep);
  net::co_spawn(server.get_executor(), echo_server(&acceptor), net::detached);

  // The memory link is single-threaded: one thread drives both runtimes.
  std::atomic<bool> stop{false};
  std::thread driver([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const bool a = server.poll_once();
      const bool b = client.poll_once();
      if (!a && !b) {
        std::this_thread::yield();
      }
    }
  });

  std::optional<tcp::socket> sock;
  std::string reply;
  std::string failure;
  const std::string msg = "ping from a plain std::thread";
  std::thread user([&] {
    try {
      sock.emplace(client.get_executor());
      auto fc = sock->async_connect(tcp::endpoint(net::ip::make_address_v4("198.18.0.2"), 7),
                                    net::use_future);
      get_within(fc, failure, "connect");
      auto fw = sock->async_write_some(net::buffer(msg), net::use_future);
      const std::size_t w = get_within(fw, failure, "write");
      if (w != msg.size()) {
        failure = "short write";
        return;
      }
      while (reply.size() < msg.size()) {
        std::array<char, 64> buf{};
        auto fr = sock->async_read_some(net::buffer(buf), net::use_future);
        const std::size_t n = get_within(fr, failure, "read");
        reply.append(buf.data(), n);
      }
    } catch (const std::exception& e) {
      if (failure.empty()) {
        failure = e.what();
      }
    }
  });
  user.join();
  stop.store(true);
  driver.join();
  sock.reset();  // on this thread: the driver is gone
  EXPECT_EQ(failure, "");
  EXPECT_EQ(reply, msg);
  EXPECT_GT(client.context().counters().remote_posts, 0U);
}

// --- the gate: sockets visited == sockets named by events -----------------------------------

struct gate_result {
  std::uint64_t events = 0, visited = 0;  // both hosts, during the active connection's traffic
};

gate_result run_gate(std::size_t idle) {
  sim_pair p(601);
  SCOPED_TRACE(trace(p) + ", idle connections " + std::to_string(idle));
  tcp::acceptor a(p.server.get_executor(), listen_ep);
  std::vector<tcp::socket> clients;
  std::vector<tcp::socket> servers;
  clients.reserve(idle + 1);
  servers.reserve(idle + 1);
  for (std::size_t i = 0; i <= idle; ++i) {
    clients.emplace_back(p.client.get_executor());
    servers.emplace_back(p.server.get_executor());
    result acc, con;
    a.async_accept(servers.back(), record_ec{&acc});
    clients.back().async_connect(server_ep, record_ec{&con});
    EXPECT_TRUE(p.run([&] { return acc.done && con.done; }));
    EXPECT_FALSE(acc.ec || con.ec);
  }
  p.run([] { return false; }, 500 * millisecond);  // quiet: delayed ACKs sent
  const net_context_counters c0 = p.client.context().counters();
  const net_context_counters s0 = p.server.context().counters();

  tcp::socket& c = clients.back();
  tcp::socket& s = servers.back();
  const std::string msg(20000, 'g');
  std::string got, back;
  result wr, wr2;
  c.async_write_some(net::buffer(msg), record_n{&wr});
  std::array<char, 4096> buf{};
  while (got.size() < msg.size()) {
    result rd;
    s.async_read_some(net::buffer(buf), record_n{&rd});
    EXPECT_TRUE(p.run([&] { return rd.done; }));
    if (rd.ec) {
      break;
    }
    got.append(buf.data(), rd.n);
  }
  s.async_write_some(net::buffer(got), record_n{&wr2});
  while (back.size() < msg.size()) {
    result rd;
    c.async_read_some(net::buffer(buf), record_n{&rd});
    EXPECT_TRUE(p.run([&] { return rd.done; }));
    if (rd.ec) {
      break;
    }
    back.append(buf.data(), rd.n);
  }
  EXPECT_TRUE(wr.done && wr2.done);
  EXPECT_EQ(wr.n, msg.size());
  EXPECT_EQ(back, msg);
  p.run([] { return false; }, 500 * millisecond);
  const net_context_counters c1 = p.client.context().counters();
  const net_context_counters s1 = p.server.context().counters();
  gate_result r;
  r.events = (c1.events - c0.events) + (s1.events - s0.events);
  r.visited = (c1.sockets_visited - c0.sockets_visited) + (s1.sockets_visited - s0.sockets_visited);
  // Every event names an owned socket: each is one visit, and nothing else is visited.
  EXPECT_EQ(c1.sockets_visited - c0.sockets_visited, c1.events - c0.events);
  EXPECT_EQ(s1.sockets_visited - s0.sockets_visited, s1.events - s0.events);
  return r;
}

TEST(AsioOpsGate, SocketsVisitedEqualEventsAndIdleSocketsAreNeverVisited) {
  const gate_result few = run_gate(5);
  const gate_result many = run_gate(50);
  std::printf(
      "gate: events/visits during the active connection's traffic: %llu/%llu with 5 idle, "
      "%llu/%llu with 50 idle\n",
      static_cast<unsigned long long>(few.events), static_cast<unsigned long long>(few.visited),
      static_cast<unsigned long long>(many.events), static_cast<unsigned long long>(many.visited));
  EXPECT_GT(few.visited, 0U);
  EXPECT_EQ(few.visited, few.events);
  EXPECT_EQ(many.visited, many.events);
  // Idle connections add nothing: the visits do not depend on how many there are.
  EXPECT_EQ(many.visited, few.visited);
  EXPECT_EQ(many.events, few.events);
}

// --- graceful stop -------------------------------------------------------------------------

/// The graceful-stop peer: a raw stack whose connection sends data and watches how the
/// connection ends (FIN: end_of_stream; RST: connection_reset).
struct stop_peer {
  explicit stop_peer(memory_device& d) : host(d, ip_a, {3, 4}, monotonic_now()) {}
  void start() {
    auto& t = host.ip.tcp();
    ASSERT_FALSE(t.open(id));
    ASSERT_FALSE(t.connect(id, {ip_b, 7}, monotonic_now()));
  }
  void step() {
    namespace ev = stack::socket_events;
    auto& t = host.ip.tcp();
    host.step(monotonic_now(), [&](const stack::socket_event& e) {
      if (e.socket != id) {
        return;
      }
      if ((e.events & ev::connected) != 0 && !sent) {
        const std::string data(1000, 'd');
        const auto r = t.send(id, std::as_bytes(std::span(data)));
        sent = r.bytes == data.size();
      }
      if ((e.events & (ev::readable | ev::error | ev::closed)) != 0 && ending.empty()) {
        std::array<std::byte, 256> buf{};
        const auto r = t.receive(id, buf);
        if (r.error == stack::tcp_errc::end_of_stream) {
          ending = "fin";
          (void)t.close(id, monotonic_now());
        } else if (r.error && r.error != std::errc::resource_unavailable_try_again) {
          ending = r.error.message();
        }
      }
    });
  }
  [[nodiscard]] bool acked() const {
    const auto info = host.ip.tcp().info(id);
    return info && info->bytes_acked >= 1000;
  }
  raw_host host;
  stack::tcp_layer::socket_id id = stack::tcp_layer::invalid_socket;
  bool sent = false;
  std::string ending;
};

struct pump_peer {
  steady_timer* t;
  stop_peer* peer;
  void operator()(error_code ec) const {
    if (ec) {
      return;
    }
    peer->step();
    t->expires_after(std::chrono::microseconds(20));
    t->async_wait(*this);
  }
};

/// Server side: accepts one connection and reads it until eof, then closes it.
struct stop_server {
  tcp::socket* s;
  std::array<char, 4096>* buf;
  std::size_t* got;
  void operator()(error_code ec, std::size_t n) const {
    *got += n;
    if (ec) {
      s->close();
      return;
    }
    s->async_read_some(net::buffer(*buf), *this);
  }
};

TEST(AsioOpsIntegration, GracefulStopSendsFinWhenDataWasAcknowledged) {
  memory_link link;
  runtime rt(link.a(), raw_config(ip_b, link.a()), stack::stack_secret{1, 2}, runtime_options{});
  stop_peer peer(link.b());
  tcp::acceptor acceptor(rt.get_executor(), listen_ep);
  tcp::socket s(rt.get_executor());
  std::array<char, 4096> buf{};
  std::size_t got = 0;
  bool accepted = false;
  acceptor.async_accept(s, [&](error_code ec) {
    accepted = !ec;
    if (!ec) {
      s.async_read_some(net::buffer(buf), stop_server{&s, &buf, &got});
    }
  });
  peer.start();
  const time_ns limit = monotonic_now() + 3 * second;
  while (!(accepted && got == 1000 && peer.acked()) && monotonic_now() < limit) {
    rt.poll_once();
    peer.step();
  }
  ASSERT_TRUE(accepted);
  ASSERT_EQ(got, 1000U);
  ASSERT_TRUE(peer.acked());
  // The peer keeps running inside the stopping runtime's loop (one thread: the memory link is
  // single-threaded), stepped by one of our timers.
  steady_timer t(rt.get_executor());
  t.expires_after(std::chrono::microseconds(20));
  t.async_wait(pump_peer{&t, &peer});
  const time_ns before = monotonic_now();
  rt.graceful_stop(1 * second);
  EXPECT_EQ(peer.ending, "fin");
  EXPECT_LT(monotonic_now() - before, 900 * millisecond);  // drained, not timed out
  EXPECT_EQ(rt.ip().tcp().connections(), 0U);
}

}  // namespace asio_ops3_test
}  // namespace
