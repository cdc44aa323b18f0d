// Beast over our TCP socket, in the simulator: HTTP/1.1 over dpdk_net::tcp_stream (keep-alive,
// pipelining, 1 MiB bodies both ways; clean and lossy links), the tcp_stream deadline, the
// synchronous teardown, async_connect over an endpoint sequence and the host resolver.
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include "asio_beast_common.hpp"
#include "dpdk_net/asio/connect.hpp"
#include "dpdk_net/asio/resolver.hpp"

namespace {
namespace asio_beast_http_test {

using namespace asio_beast_test;
namespace http = beast::http;
namespace websocket = beast::websocket;

// --- HTTP/1.1: the application (the same code in every variant) ------------------------------

constexpr std::size_t big = 1 << 20;

/// Answers: POST /echo -> the request body; GET /big -> 1 MiB of pattern(big, 2); other GETs ->
/// "hello <target>". Keeps the connection while the client asks for keep-alive.
net::awaitable<void> http_session(tcp::socket s, int* requests_served) {
  tcp_stream stream(std::move(s));
  beast::flat_buffer buf;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(8 * big);
    auto [ec, n] = co_await http::async_read(stream, buf, parser, net::as_tuple(use_awaitable));
    if (ec) {
      break;  // http::error::end_of_stream: the client closed
    }
    http::request<http::string_body> req = parser.release();
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "dpdk_net");
    if (req.target() == "/echo") {
      res.body() = std::move(req.body());
    } else if (req.target() == "/big") {
      res.body() = pattern(big, 2);
    } else {
      res.body() = "hello " + std::string(req.target());
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_await http::async_write(stream, res, use_awaitable);
    ++*requests_served;
    if (!res.keep_alive()) {
      break;
    }
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(net::socket_base::shutdown_send, ignored);
}

net::awaitable<void> http_server(tcp::acceptor& a, int* requests_served) {
  for (;;) {
    tcp::socket s = co_await a.async_accept(use_awaitable);
    net::co_spawn(s.get_executor(), http_session(std::move(s), requests_served), net::detached);
  }
}

http::request<http::string_body> make_request(http::verb v, const std::string& target,
                                              std::string body = {}) {
  http::request<http::string_body> req{v, target, 11};
  req.set(http::field::host, "server");
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

struct http_results {
  std::vector<std::string> keep_alive;  // 3 sequential GETs
  std::vector<std::string> pipelined;   // 3 POST /echo written before any read
  std::string big_echo;                 // POST /echo of 1 MiB
  std::string big_get;                  // GET /big
  bool last_closed = false;             // Connection: close -> the server's FIN
};

net::awaitable<void> http_client(tcp::endpoint server, http_results* out) {
  tcp_stream stream(co_await net::this_coro::executor);
  stream.expires_after(std::chrono::seconds(30));
  co_await stream.async_connect(server, use_awaitable);
  beast::flat_buffer buf;
  for (int i = 0; i < 3; ++i) {
    co_await http::async_write(stream, make_request(http::verb::get, "/k" + std::to_string(i)),
                               use_awaitable);
    http::response<http::string_body> res;
    co_await http::async_read(stream, buf, res, use_awaitable);
    out->keep_alive.push_back(res.body());
  }
  for (int i = 0; i < 3; ++i) {
    co_await http::async_write(
        stream, make_request(http::verb::post, "/echo", "pipelined " + std::to_string(i)),
        use_awaitable);
  }
  for (int i = 0; i < 3; ++i) {
    http::response<http::string_body> res;
    co_await http::async_read(stream, buf, res, use_awaitable);
    out->pipelined.push_back(res.body());
  }
  {
    co_await http::async_write(stream, make_request(http::verb::post, "/echo", pattern(big, 1)),
                               use_awaitable);
    http::response_parser<http::string_body> parser;
    parser.body_limit(8 * big);
    co_await http::async_read(stream, buf, parser, use_awaitable);
    out->big_echo = parser.get().body();
  }
  {
    auto req = make_request(http::verb::get, "/big");
    req.keep_alive(false);
    co_await http::async_write(stream, req, use_awaitable);
    http::response_parser<http::string_body> parser;
    parser.body_limit(8 * big);
    co_await http::async_read(stream, buf, parser, use_awaitable);
    out->big_get = parser.get().body();
    EXPECT_FALSE(parser.get().keep_alive());
  }
  char extra = 0;
  auto [ec, n] =
      co_await stream.async_read_some(net::buffer(&extra, 1), net::as_tuple(use_awaitable));
  out->last_closed = ec == net::error::eof && n == 0;
  stream.close();
}

/// Returns the virtual time the client finished at.
time_ns run_http(std::uint64_t seed, const sim::link_config& link) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  duo d(seed, link);
  int served = 0;
  tcp::acceptor acceptor(d.server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 80));
  net::co_spawn(d.server.get_executor(), http_server(acceptor, &served), net::detached);
  http_results r;
  bool done = false;
  std::string failure;
  net::co_spawn(d.client.get_executor(), http_client(duo::server_endpoint(http_port), &r),
                finished{&done, &failure});
  EXPECT_TRUE(d.netw.run_until([&] { return done; }, 60 * second))
      << "seed " << seed << ": the client did not finish";
  EXPECT_EQ(failure, "") << "seed " << seed;
  EXPECT_EQ(r.keep_alive, (std::vector<std::string>{"hello /k0", "hello /k1", "hello /k2"}));
  EXPECT_EQ(r.pipelined, (std::vector<std::string>{"pipelined 0", "pipelined 1", "pipelined 2"}));
  EXPECT_TRUE(r.big_echo == pattern(big, 1)) << "1 MiB echo differs, size " << r.big_echo.size();
  EXPECT_TRUE(r.big_get == pattern(big, 2)) << "1 MiB GET differs, size " << r.big_get.size();
  EXPECT_TRUE(r.last_closed);
  EXPECT_EQ(served, 8);
  std::printf("http seed %llu: done at %.3f ms virtual\n", static_cast<unsigned long long>(seed),
              static_cast<double>(d.netw.now()) / 1e6);
  return d.netw.now();
}

TEST(AsioBeast, HttpKeepAlivePipeliningLargeBodies) {
  run_http(11, {});
}

TEST(AsioBeast, HttpUnderLossAndReordering) {
  sim::link_config link;
  link.loss = 0.02;
  link.reorder = 0.02;
  link.jitter = 20 * microsecond;
  for (std::uint64_t seed : {21U, 22U, 23U}) {
    run_http(seed, link);
  }
  // DPDK_NET_SEED_SWEEP=n: n more seeds (5% loss), for bug hunting (TLS: its own test's sweep).
  if (const char* sweep = std::getenv("DPDK_NET_SEED_SWEEP"); sweep != nullptr) {
    sim::link_config heavy = link;
    heavy.loss = 0.05;
    heavy.reorder = 0.05;
    const std::uint64_t n = std::strtoull(sweep, nullptr, 10);
    for (std::uint64_t seed = 1000; seed < 1000 + n; ++seed) {
      run_http(seed, heavy);
      if (HasFailure()) {
        break;
      }
    }
  }
  // The same seed, the same run: the application over Beast adds no nondeterminism.
  EXPECT_EQ(run_http(24, link), run_http(24, link)) << "seed 24";
}

// --- tcp_stream deadline ----------------------------------------------------------------------

/// Accepts and holds the connection without answering.
net::awaitable<void> silent_server(tcp::acceptor& a, std::unique_ptr<tcp::socket>* held) {
  *held = std::make_unique<tcp::socket>(co_await a.async_accept(use_awaitable));
}

struct timeout_result {
  boost::system::error_code ec;
  time_ns started = 0;
  time_ns ended = 0;
};

net::awaitable<void> timeout_client(tcp::endpoint server, timeout_result* out) {
  tcp_stream stream(co_await net::this_coro::executor);
  co_await stream.async_connect(server, use_awaitable);
  co_await http::async_write(stream, make_request(http::verb::get, "/"), use_awaitable);
  out->started = static_cast<time_ns>(net_clock::now().time_since_epoch().count());
  stream.expires_after(std::chrono::milliseconds(1500));
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  auto [ec, n] = co_await http::async_read(stream, buf, res, net::as_tuple(use_awaitable));
  out->ec = ec;
  out->ended = static_cast<time_ns>(net_clock::now().time_since_epoch().count());
}

TEST(AsioBeast, TcpStreamReadTimesOutAtTheDeadline) {
  duo d(31);
  std::unique_ptr<tcp::socket> held;
  tcp::acceptor acceptor(d.server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 80));
  net::co_spawn(d.server.get_executor(), silent_server(acceptor, &held), net::detached);
  timeout_result r;
  bool done = false;
  std::string failure;
  net::co_spawn(d.client.get_executor(), timeout_client(duo::server_endpoint(http_port), &r),
                finished{&done, &failure});
  ASSERT_TRUE(d.netw.run_until([&] { return done; }, 10 * second)) << "seed 31";
  ASSERT_EQ(failure, "");
  EXPECT_EQ(r.ec, beast::error::timeout) << r.ec.message();
  const time_ns waited = r.ended - r.started;
  EXPECT_GE(waited, 1500 * millisecond);
  EXPECT_LE(waited, 1500 * millisecond + millisecond) << waited;
  EXPECT_NE(held, nullptr);
}

/// Accepts and never reads: the client's writes fill the windows and stall.
struct write_timeout_result {
  boost::system::error_code ec;
  std::size_t written = 0;
  time_ns started = 0;
  time_ns ended = 0;
};

net::awaitable<void> stalled_writer(tcp::endpoint server, write_timeout_result* out) {
  tcp_stream stream(co_await net::this_coro::executor);
  co_await stream.async_connect(server, use_awaitable);
  const std::string chunk(64 * 1024, 'w');
  out->started = static_cast<time_ns>(net_clock::now().time_since_epoch().count());
  stream.expires_after(std::chrono::milliseconds(700));
  for (int i = 0; i < 1000; ++i) {
    auto [ec, n] =
        co_await net::async_write(stream, net::buffer(chunk), net::as_tuple(use_awaitable));
    out->written += n;
    if (ec) {
      out->ec = ec;
      break;
    }
  }
  out->ended = static_cast<time_ns>(net_clock::now().time_since_epoch().count());
}

TEST(AsioBeast, TcpStreamWriteTimesOutWhenThePeerDoesNotRead) {
  duo d(32);
  std::unique_ptr<tcp::socket> held;
  tcp::acceptor acceptor(d.server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 80));
  net::co_spawn(d.server.get_executor(), silent_server(acceptor, &held), net::detached);
  write_timeout_result r;
  bool done = false;
  std::string failure;
  net::co_spawn(d.client.get_executor(), stalled_writer(duo::server_endpoint(http_port), &r),
                finished{&done, &failure});
  ASSERT_TRUE(d.netw.run_until([&] { return done; }, 10 * second)) << "seed 32";
  ASSERT_EQ(failure, "");
  EXPECT_EQ(r.ec, beast::error::timeout) << r.ec.message();
  EXPECT_GT(r.written, 0U);
  EXPECT_LT(r.written, 1000U * 64 * 1024);
  EXPECT_GE(r.ended - r.started, 700 * millisecond);
  EXPECT_LE(r.ended - r.started, 701 * millisecond);
}

struct connect_timeout_result {
  boost::system::error_code ec;
  time_ns started = 0;
  time_ns ended = 0;
};

net::awaitable<void> connect_nowhere(tcp::endpoint nowhere, connect_timeout_result* out) {
  tcp_stream stream(co_await net::this_coro::executor);
  out->started = static_cast<time_ns>(net_clock::now().time_since_epoch().count());
  stream.expires_after(std::chrono::milliseconds(300));
  auto [ec] = co_await stream.async_connect(nowhere, net::as_tuple(use_awaitable));
  out->ec = ec;
  out->ended = static_cast<time_ns>(net_clock::now().time_since_epoch().count());
}

TEST(AsioBeast, TcpStreamConnectTimesOut) {
  // The server host drops every SYN: nothing answers, the deadline ends the attempt.
  sim::link_config link;
  duo d(33, link);
  tcp::acceptor acceptor(d.server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 80));
  d.netw.partition({&d.ch}, {&d.sh});
  connect_timeout_result r;
  bool done = false;
  std::string failure;
  net::co_spawn(d.client.get_executor(), connect_nowhere(duo::server_endpoint(http_port), &r),
                finished{&done, &failure});
  ASSERT_TRUE(d.netw.run_until([&] { return done; }, 10 * second)) << "seed 33";
  ASSERT_EQ(failure, "");
  EXPECT_EQ(r.ec, beast::error::timeout) << r.ec.message();
  EXPECT_GE(r.ended - r.started, 300 * millisecond);
  EXPECT_LE(r.ended - r.started, 301 * millisecond);
}

// --- teardown and beast_close_socket (synchronous forms) --------------------------------------

struct teardown_result {
  boost::system::error_code sync_ec;
  bool closed_by_teardown = false;
  bool closed_by_beast = false;
};

net::awaitable<void> teardown_client(tcp::endpoint server, teardown_result* out) {
  auto ex = co_await net::this_coro::executor;
  tcp::socket a(ex);
  co_await a.async_connect(server, use_awaitable);
  // Synchronous teardown (client role): what has arrived is read, then shutdown(send) + close.
  // Called as Beast calls it: unqualified, Beast's own overloads visible, ours found by ADL.
  using websocket::teardown;
  teardown(beast::role_type::client, a, out->sync_ec);
  out->closed_by_teardown = !a.is_open();
  tcp::socket b(ex);
  co_await b.async_connect(server, use_awaitable);
  beast::close_socket(b);
  out->closed_by_beast = !b.is_open();
}

TEST(AsioBeast, SyncTeardownAndCloseSocket) {
  duo d(71);
  tcp::acceptor acceptor(d.server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 80));
  std::unique_ptr<tcp::socket> held;
  net::co_spawn(d.server.get_executor(), silent_server(acceptor, &held), net::detached);
  teardown_result r;
  bool done = false;
  std::string failure;
  net::co_spawn(d.client.get_executor(), teardown_client(duo::server_endpoint(http_port), &r),
                finished{&done, &failure});
  ASSERT_TRUE(d.netw.run_until([&] { return done; }, 10 * second)) << "seed 71";
  ASSERT_EQ(failure, "");
  EXPECT_FALSE(r.sync_ec) << r.sync_ec.message();
  EXPECT_TRUE(r.closed_by_teardown);
  EXPECT_TRUE(r.closed_by_beast);
}

// --- async_connect over a sequence, host_resolver ---------------------------------------------

struct connect_result {
  boost::system::error_code resolve_ec;
  boost::system::error_code unknown_ec;
  boost::system::error_code connect_ec;
  tcp::endpoint connected;
  std::size_t candidates = 0;
  boost::system::error_code empty_ec;
};

net::awaitable<void> connect_client(connect_result* out) {
  auto ex = co_await net::this_coro::executor;
  host_resolver resolver(ex);
  // Two candidates: port 81 on the server refuses (RST), then the resolved one accepts.
  resolver.add_host("svc", "198.18.0.2");
  auto [uec, unknown] =
      co_await resolver.async_resolve("nowhere", "80", net::as_tuple(use_awaitable));
  out->unknown_ec = uec;
  auto [rec, results] =
      co_await resolver.async_resolve("svc", "http", net::as_tuple(use_awaitable));
  out->resolve_ec = rec;
  std::vector<tcp::endpoint> endpoints = {
      tcp::endpoint(net::ip::make_address_v4("198.18.0.2"), 81)};
  for (const auto& e : results) {
    endpoints.push_back(e.endpoint());
  }
  out->candidates = endpoints.size();
  tcp::socket s(ex);
  auto [cec, ep] = co_await dpdk_net::async_connect(s, endpoints, net::as_tuple(use_awaitable));
  out->connect_ec = cec;
  out->connected = ep;
  tcp::socket s2(ex);
  auto [eec, ep2] = co_await dpdk_net::async_connect(s2, std::vector<tcp::endpoint>{},
                                                     net::as_tuple(use_awaitable));
  out->empty_ec = eec;
}

TEST(AsioBeast, ResolverAndRangeConnect) {
  duo d(61);
  tcp::acceptor acceptor(d.server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 80));
  connect_result r;
  bool done = false;
  std::string failure;
  net::co_spawn(d.client.get_executor(), connect_client(&r), finished{&done, &failure});
  ASSERT_TRUE(d.netw.run_until([&] { return done; }, 10 * second)) << "seed 61";
  ASSERT_EQ(failure, "");
  EXPECT_EQ(r.unknown_ec, dpdk_net::error::host_not_in_table);
  EXPECT_FALSE(r.resolve_ec) << r.resolve_ec.message();
  EXPECT_EQ(r.candidates, 2U);
  EXPECT_FALSE(r.connect_ec) << r.connect_ec.message();
  EXPECT_EQ(r.connected, duo::server_endpoint(80));
  EXPECT_EQ(r.empty_ec, net::error::not_found);
}

}  // namespace asio_beast_http_test
}  // namespace
