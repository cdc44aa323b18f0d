// Second review of the multi-core runtime's port tables (issue 13, after 50dc09f): each test
// states a property the runtime should have and that was found broken; each failed before its
// fix. Simulator tests print their seed.
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
namespace multi_review2_test {

using namespace multi_testing;

// --- helpers ---------------------------------------------------------------------------------

struct conn_state {
  std::uint16_t local_port = 0;
  bool connected = false;
  bool done = false;
  bool ok = false;
  std::string error;
};

/// The server side: accepts one connection and closes it at once (the server closes first, so
/// its side enters TIME-WAIT).
net::awaitable<void> accept_then_close(tcp::acceptor* a, bool* accepted) {
  auto [ec, s] = co_await a->async_accept(net::as_tuple(net::use_awaitable));
  if (!ec) {
    *accepted = true;
    s.close();
  }
}

/// The client side: from local port `port`, connects and reads until end of stream.
net::awaitable<void> connect_from_read_eof(net::any_io_executor ex, std::uint16_t port,
                                           tcp::endpoint peer, conn_state* st) {
  tcp::socket s(ex);
  s.open(tcp::v4());
  s.bind(tcp::endpoint(net::ip::address_v4::any(), port));
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (cec) {
    st->error = "connect: " + cec.message();
    st->done = true;
    co_return;
  }
  st->connected = true;
  std::array<char, 64> buf{};
  auto [rec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
  st->ok = rec == net::error::eof && n == 0;
  if (!st->ok) {
    st->error = "read: " + rec.message();
  }
  st->done = true;
}

/// Connects an already bound socket, waits `pause` (the test changes something meanwhile), then
/// checks a 256-byte echo.
net::awaitable<void> connect_bound_pause_echo(tcp::socket s, tcp::endpoint peer,
                                              std::chrono::milliseconds pause, conn_state* st) {
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (cec) {
    st->error = "connect: " + cec.message();
    st->done = true;
    co_return;
  }
  st->local_port = s.local_endpoint().port();
  st->connected = true;
  steady_timer t(s.get_executor());
  t.expires_after(pause);
  co_await t.async_wait(net::as_tuple(net::use_awaitable));
  std::array<char, 256> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = pattern(7, i);
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

node_options workers(std::uint16_t n) {
  node_options o;
  o.workers = n;
  return o;
}

// --- 1. a TIME-WAIT record is not thrown away for a port connect then refuses ----------------

TEST(MultiReview2, ConnectKeepsATimeWaitRecordWhosePortItCannotUse) {
  // One ephemeral port, P, on both hosts. A lone listener on server worker 0 at P accepts a
  // connection whose hash points at worker 1 (off hash); the server closes first and keeps the
  // tuple in TIME-WAIT. Later worker 0 connects to that same remote ip:port: P is the only
  // candidate, its tuple is in TIME-WAIT (reusable: timestamps), but the flow hashes to worker 1,
  // so the port coordinator refuses it and the connect fails. The TIME-WAIT record must still be
  // there: it was freed before the coordinator was asked.
  constexpr std::uint16_t port = 40000;
  stack::stack_config base = node_config(1);
  base.ephemeral_first = port;
  base.ephemeral_last = port;
  multi_pair p(9101, workers(1), workers(2), base);
  const wire::ipv4_address client_ip{node_ip(1).to_uint()};
  std::uint16_t rp = 20000;
  while (p.server->flows().hash_owner(client_ip, rp, port) != 1) {
    ++rp;
  }
  auto a = std::make_unique<tcp::acceptor>(p.server->get_executor(0),
                                           tcp::endpoint(net::ip::address_v4::any(), port));
  bool accepted = false;
  net::co_spawn(p.server->get_executor(0), accept_then_close(a.get(), &accepted), net::detached);
  conn_state c;
  net::co_spawn(
      p.client->get_executor(0),
      connect_from_read_eof(p.client->get_executor(0), rp, tcp::endpoint(node_ip(2), port), &c),
      net::detached);
  ASSERT_TRUE(p.run([&] { return c.done; })) << p.trace();
  ASSERT_TRUE(c.ok && accepted) << c.error << "; " << p.trace();
  stack::tcp_layer& t = p.server->worker(0).ip().tcp();
  ASSERT_TRUE(p.run([&] { return t.time_wait_count() == 1; })) << p.trace();
  a->close();
  a.reset();
  p.run([] { return false; }, 10 * millisecond);
  ASSERT_EQ(t.time_wait_count(), 1U) << p.trace();
  const std::uint64_t reused = t.counters().time_wait_reused;

  stack::tcp_layer::socket_id id = 0;
  ASSERT_FALSE(t.open(id));
  const std::error_code e =
      t.connect(id, stack::tcp_endpoint{client_ip, rp}, p.server->worker(0).now());
  EXPECT_EQ(e, std::make_error_code(std::errc::address_not_available)) << p.trace();
  EXPECT_EQ(t.time_wait_count(), 1U)
      << "the connect failed, yet it freed the TIME-WAIT record of the tuple it tried; "
      << p.trace();
  EXPECT_EQ(t.counters().time_wait_reused, reused) << p.trace();
  (void)t.close(id, p.server->worker(0).now());
}

// --- 2. bind() then connect(): another worker's bind must not take the flow -----------------

TEST(MultiReview2, AnotherWorkersBindDoesNotTakeABoundThenConnectedFlow) {
  // Worker 0 of the client binds a socket to port 0 (a port for it alone) and connects; the
  // flow's hash points at worker 1, but the port is bound on worker 0 only, so its frames go to
  // worker 0. Worker 1 then binds the same port explicitly: that bind would make the port
  // shared and send the flow to worker 1 (its hash), so it must be refused (address_in_use),
  // as a bind is where another worker's plain connect uses the port.
  multi_pair p(9201, workers(2), workers(1));
  tcp::acceptor srv(p.server->get_executor(0), tcp::endpoint(net::ip::address_v4::any(), 7));
  tally st;
  net::co_spawn(p.server->get_executor(0), accept_loop(&srv, 0, &st), net::detached);

  const wire::ipv4_address server_ip{node_ip(2).to_uint()};
  std::vector<std::unique_ptr<tcp::socket>> others;
  std::optional<tcp::socket> chosen;
  for (int i = 0; i < 64 && !chosen; ++i) {
    tcp::socket s(p.client->get_executor(0));
    s.open(tcp::v4());
    s.bind(tcp::endpoint(net::ip::address_v4::any(), 0));
    if (p.client->flows().hash_owner(server_ip, 7, s.local_endpoint().port()) == 1) {
      chosen.emplace(std::move(s));
    } else {
      others.push_back(std::make_unique<tcp::socket>(std::move(s)));
    }
  }
  ASSERT_TRUE(chosen) << p.trace();
  others.clear();
  const std::uint16_t port = chosen->local_endpoint().port();
  conn_state c;
  net::co_spawn(p.client->get_executor(0),
                connect_bound_pause_echo(std::move(*chosen), tcp::endpoint(node_ip(2), 7),
                                         std::chrono::milliseconds(200), &c),
                net::detached);
  ASSERT_TRUE(p.run([&] { return c.connected || c.done; })) << p.trace();
  ASSERT_TRUE(c.connected) << c.error << "; " << p.trace();
  ASSERT_EQ(p.client->flows().flow_owner(6, server_ip, 7, port), 0U) << p.trace();

  tcp::acceptor late(p.client->get_executor(1));
  late.open(tcp::v4());
  error_code ec;
  try {
    late.bind(tcp::endpoint(net::ip::address_v4::any(), port));
  } catch (const boost::system::system_error& e) {
    ec = e.code();
  }
  EXPECT_EQ(ec, net::error::address_in_use) << p.trace();
  EXPECT_EQ(p.client->flows().flow_owner(6, server_ip, 7, port), 0U)
      << "worker 0's connection is now steered to worker "
      << p.client->flows().flow_owner(6, server_ip, 7, port) << "; " << p.trace();
  ASSERT_TRUE(p.run([&] { return c.done; })) << p.trace();
  EXPECT_TRUE(c.ok) << c.error << "; " << p.trace();
  late.close();
  srv.close();
  p.run([] { return false; }, 10 * millisecond);
}

// --- 3. multi_acceptor: a listener that is gone for good is not retried forever -------------

TEST(MultiReview2, MultiAcceptorStopsRetryingAListenerThatIsGone) {
  // The server host crashes and restarts: the fresh stacks have no listener, and each worker's
  // pending accept fails (backend_down). The acceptor retries an accept error after 1 ms; on a
  // listener that is gone for good every retry fails again (bad_descriptor), so each worker
  // would wake every millisecond for as long as the acceptor lives.
  multi_pair p(9301, workers(1), workers(2));
  multi_acceptor acc(*p.server, tcp::endpoint(net::ip::address_v4::any(), 7));
  p.run([] { return false; }, 10 * millisecond);
  p.sh.crash();
  p.run([] { return false; }, 10 * millisecond);
  p.sh.restart();
  p.run([] { return false; }, 10 * millisecond);
  const std::uint64_t before = p.server->worker(0).pumps() + p.server->worker(1).pumps();
  p.run([] { return false; }, 1 * second);
  const std::uint64_t pumps = p.server->worker(0).pumps() + p.server->worker(1).pumps() - before;
  EXPECT_LT(pumps, 100U) << "the idle workers pumped " << pumps
                         << " times in one second: a dead listener's accept retried every "
                            "millisecond; "
                         << p.trace();
  acc.close();
  p.run([] { return false; }, 10 * millisecond);
}

// --- 4. the per-port holder counts do not wrap at 65536 users -------------------------------

/// Records which (kind, port) claims are held at the coordinator: set by acquire, cleared by
/// release (for TCP only; every claim granted, children none).
struct claim_table final : stack::port_coordinator {
  std::vector<std::string> early_releases;
  bool listener_open = true;
  bool acquire(stack::port_claim kind, std::uint8_t, std::uint16_t, wire::ipv4_address,
               std::uint16_t) noexcept override {
    return kind != stack::port_claim::child;
  }
  void release(stack::port_claim kind, std::uint8_t, std::uint16_t port) noexcept override {
    if (kind == stack::port_claim::bind && port == 80 && listener_open) {
      early_releases.push_back("release bind 80 while the listener is open");
    }
  }
};

TEST(MultiReview2, ThePortOfAListenerWithManyChildrenStaysHeld) {
  // A stack counts the users of each port it holds at the coordinator (the listener, each
  // child, each TIME-WAIT record) and releases the port when the count reaches 0. Sockets go
  // up to 2^20 and TIME-WAIT records to 2^24, so one port can have more than 65535 users: a
  // 16-bit count wraps, and the port is released while the listener still uses it (another
  // worker may then take it; the steering forgets this worker's flows).
  const auto our = wire::ipv4_address::from_octets(198, 18, 0, 1);
  stack::stack_config c;
  c.mac = mac_address{{0x02, 0, 0, 0, 0, 0x01}};
  c.address = our;
  c.tcp.sockets = 65600;
  c.tcp.syn_queue = 65600;
  packet_pool pool{packet_pool_config{"rig", 8192}};
  stack::stack st(c, pool, stack::stack_secret{1234, 0});
  claim_table ct;
  st.set_port_coordinator(&ct);
  stack::tcp_layer& t = st.tcp();
  stack::tcp_layer::socket_id l = 0;
  ASSERT_FALSE(t.open(l));
  ASSERT_FALSE(t.bind(l, 80));
  ASSERT_FALSE(t.listen(l, 16));

  std::array<packet, 64> burst;
  const auto drain = [&] {
    std::size_t n = 0;
    while ((n = st.drain_tx(burst)) != 0) {
      free_burst(std::span(burst.data(), n));
    }
  };
  const auto segment = [&](wire::ipv4_address src, std::uint16_t sport, std::uint32_t seq,
                           std::uint8_t flags) {
    std::array<std::byte, 20> l4{};
    wire::tcp_header h;
    h.src_port = sport;
    h.dst_port = 80;
    h.seq = seq;
    h.flags = flags;
    h.window = 65535;
    (void)wire::write_tcp(l4, h);
    wire::set_tcp_checksum(l4, wire::pseudo_header{src, our});
    packet p = pool.alloc();
    std::byte* d = p.append(34 + l4.size());
    wire::write_ethernet(std::span(d, 14),
                         wire::ethernet_header{c.mac, mac_address{{0x02, 0, 0, 0, 0, 0x02}},
                                               wire::ethertype::ipv4, false, 0});
    wire::ipv4_header ip;
    ip.protocol = wire::ip_protocol::tcp;
    ip.src = src;
    ip.dst = our;
    ip.total_length = static_cast<std::uint16_t>(20 + l4.size());
    wire::write_ipv4(std::span(d + 14, 20), ip);
    std::memcpy(d + 34, l4.data(), l4.size());
    st.receive(std::move(p), 0);
    drain();
  };
  // 65536 half-open children from two peers: with the listener, 65537 users of port 80.
  std::size_t made = 0;
  for (std::uint8_t last : {2, 3}) {
    const auto peer = wire::ipv4_address::from_octets(198, 18, 0, last);
    for (std::uint32_t port = 1; port <= 32768; ++port, ++made) {
      segment(peer, static_cast<std::uint16_t>(port), 1000, wire::tcp_flag::syn);
    }
  }
  ASSERT_EQ(t.connections(), made);
  // One child goes (the peer resets it): 65536 users remain, the listener among them.
  segment(wire::ipv4_address::from_octets(198, 18, 0, 3), 32768, 1001, wire::tcp_flag::rst);
  ASSERT_EQ(t.connections(), made - 1);
  EXPECT_TRUE(ct.early_releases.empty())
      << ct.early_releases.front() << ": the count of port 80's users wrapped at 65536";
  ct.listener_open = false;
  (void)t.close(l, 0);
  st.set_port_coordinator(nullptr);
}

// --- 8. set_port_coordinator(nullptr) while sockets hold ports ------------------------------

/// Tracks which TCP ports are bound at the coordinator.
struct bound_ports final : stack::port_coordinator {
  std::vector<bool> bound = std::vector<bool>(65536, false);
  bool acquire(stack::port_claim kind, std::uint8_t, std::uint16_t port, wire::ipv4_address,
               std::uint16_t) noexcept override {
    if (kind == stack::port_claim::bind || kind == stack::port_claim::ephemeral) {
      bound[port] = true;
    }
    return kind != stack::port_claim::child;
  }
  void release(stack::port_claim kind, std::uint8_t, std::uint16_t port) noexcept override {
    if (kind == stack::port_claim::bind) {
      bound[port] = false;
    }
  }
};

TEST(MultiReview2, ASocketClosedWithoutACoordinatorLeavesNoStaleCount) {
  // A socket closed while the stack has no coordinator dropped its hold without counting it
  // down; with a coordinator again, the port's count never reached 0 and the port stayed bound
  // at the coordinator after its last socket closed (other workers could never take it).
  stack::stack_config c;
  c.mac = mac_address{{0x02, 0, 0, 0, 0, 0x01}};
  c.address = wire::ipv4_address::from_octets(198, 18, 0, 1);
  packet_pool pool{packet_pool_config{"rig", 256}};
  stack::stack st(c, pool, stack::stack_secret{1234, 0});
  bound_ports ports;
  st.set_port_coordinator(&ports);
  stack::tcp_layer& t = st.tcp();
  stack::tcp_layer::socket_id a = 0;
  ASSERT_FALSE(t.open(a));
  ASSERT_FALSE(t.bind(a, 8080));
  st.set_port_coordinator(nullptr);
  (void)t.close(a, 0);
  st.set_port_coordinator(&ports);
  stack::tcp_layer::socket_id b = 0;
  ASSERT_FALSE(t.open(b));
  ASSERT_FALSE(t.bind(b, 8080));
  EXPECT_TRUE(ports.bound[8080]);
  (void)t.close(b, 0);
  EXPECT_FALSE(ports.bound[8080]) << "port 8080 stays bound with no socket on it";
  st.set_port_coordinator(nullptr);
}

// --- 9. bind() then connect() on a port other workers bound too -----------------------------

TEST(MultiReview2, BoundThenConnectOnASharedPortFailsAtOnceIfSteeredElsewhere) {
  // Client worker 1 listens on port P (shared by binds, like SO_REUSEPORT); worker 0 binds P
  // too and connects from it. A port bound on several workers goes by hash, and this flow's
  // hash picks worker 1: the SYN-ACKs reached worker 1's listener, which answered RST, and the
  // connect hung until its SYN retries ran out. It must fail at once (address_in_use) instead.
  multi_pair p(9901, workers(2), workers(1));
  tcp::acceptor srv(p.server->get_executor(0), tcp::endpoint(net::ip::address_v4::any(), 7));
  tally st;
  net::co_spawn(p.server->get_executor(0), accept_loop(&srv, 0, &st), net::detached);
  const wire::ipv4_address server_ip{node_ip(2).to_uint()};
  std::uint16_t port = 30000;
  while (p.client->flows().hash_owner(server_ip, 7, port) != 1) {
    ++port;
  }
  tcp::acceptor l1(p.client->get_executor(1), tcp::endpoint(net::ip::address_v4::any(), port));
  tcp::socket s(p.client->get_executor(0));
  s.open(tcp::v4());
  s.bind(tcp::endpoint(net::ip::address_v4::any(), port));
  ASSERT_EQ(p.client->flows().port_mask(6, port), 3U);
  conn_state c;
  net::co_spawn(p.client->get_executor(0),
                connect_bound_pause_echo(std::move(s), tcp::endpoint(node_ip(2), 7),
                                         std::chrono::milliseconds(10), &c),
                net::detached);
  p.run([&] { return c.done; }, 100 * millisecond);
  EXPECT_TRUE(c.done) << "the connect still waits (its replies go to worker 1); " << p.trace();
  EXPECT_EQ(c.error, "connect: " + error_code(net::error::address_in_use).message()) << p.trace();
  l1.close();
  srv.close();
  p.run([] { return false; }, 10 * millisecond);
}

}  // namespace multi_review2_test
}  // namespace
}  // namespace dpdk_net
