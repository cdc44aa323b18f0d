// Beast, TLS and the helpers around our TCP socket, in the simulator: HTTP/1.1 over
// dpdk_net::tcp_stream (keep-alive, pipelining, 1 MiB bodies both ways; clean and lossy links),
// the tcp_stream deadline, TLS 1.3 full duplex over ssl::stream<tcp::socket>, websocket over
// websocket::stream<tcp_stream>, async_connect over an endpoint sequence and the host resolver.
// Every Beast instantiation of the test binary lives in this one TU (compile time).
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "dpdk_net/asio/beast.hpp"
#include "dpdk_net/asio/connect.hpp"
#include "dpdk_net/asio/resolver.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/asio/tcp_stream.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"

// Asio's SSL support is compiled separately (BOOST_ASIO_SEPARATE_COMPILATION): its one copy is
// here, the only TU of the binary that uses it.
#include <boost/asio/ssl/impl/src.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using namespace dpdk_net;
using net::use_awaitable;

constexpr std::uint16_t http_port = 80;

stack::stack_config host_config(std::uint32_t last_octet) {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | last_octet};  // 198.18.0.x
  c.prefix_length = 24;
  return c;
}

/// Two simulated hosts (client 198.18.0.1, server 198.18.0.2) on one link.
struct duo {
  explicit duo(std::uint64_t s, const sim::link_config& link = {})
      : seed(s),
        netw(s),
        ch(netw.add_host("client")),
        sh(netw.add_host("server")),
        cn(netw.add_nic(ch)),
        sn(netw.add_nic(sh)),
        linked((netw.connect(cn, sn, link), true)),
        client(ch, cn, host_config(1)),
        server(sh, sn, host_config(2)) {}
  std::uint64_t seed;
  sim::network netw;
  sim::host& ch;
  sim::host& sh;
  sim::sim_nic& cn;
  sim::sim_nic& sn;
  bool linked;
  sim::sim_runtime client;
  sim::sim_runtime server;
  [[nodiscard]] static tcp::endpoint server_endpoint(std::uint16_t port) {
    return {net::ip::make_address_v4("198.18.0.2"), port};
  }
};

/// co_spawn completion: records that the coroutine ended and what it threw.
struct finished {
  bool* done;
  std::string* failure;
  void operator()(const std::exception_ptr& e) const {
    *done = true;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        *failure = x.what();
      }
    }
  }
};

/// n bytes of a pattern that is not periodic at any small stride (all byte values).
std::string pattern(std::size_t n, std::uint32_t salt) {
  std::string s(n, '\0');
  std::uint32_t x = 0x9e3779b9U ^ salt;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

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

void run_tls(std::uint64_t seed, const sim::link_config& link);

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
  // DPDK_NET_SEED_SWEEP=n: n more seeds (HTTP and TLS, 5% loss), for bug hunting.
  if (const char* sweep = std::getenv("DPDK_NET_SEED_SWEEP"); sweep != nullptr) {
    sim::link_config heavy = link;
    heavy.loss = 0.05;
    heavy.reorder = 0.05;
    const std::uint64_t n = std::strtoull(sweep, nullptr, 10);
    for (std::uint64_t seed = 1000; seed < 1000 + n; ++seed) {
      run_http(seed, heavy);
      run_tls(seed, heavy);
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

// --- TLS 1.3 ------------------------------------------------------------------------------------

/// A self-signed EC P-256 certificate made now (nothing read from disk).
struct tls_identity {
  tls_identity() {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("server.test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    signed_ok = X509_sign(cert, key, EVP_sha256()) > 0;
  }
  ~tls_identity() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  tls_identity(const tls_identity&) = delete;
  tls_identity& operator=(const tls_identity&) = delete;
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  bool signed_ok = false;
};

using tls_stream = net::ssl::stream<tcp::socket>;
constexpr std::size_t tls_bytes = 256 * 1024;

net::awaitable<void> tls_echo_server(tcp::acceptor& a, net::ssl::context& ctx, bool* clean) {
  tls_stream s(co_await a.async_accept(use_awaitable), ctx);
  co_await s.async_handshake(net::ssl::stream_base::server, use_awaitable);
  std::vector<char> buf(8192);
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(use_awaitable));
    if (ec) {
      *clean = ec == net::error::eof;  // the client's close_notify
      break;
    }
    co_await net::async_write(s, net::buffer(buf.data(), n), use_awaitable);
  }
  auto [ec] = co_await s.async_shutdown(net::as_tuple(use_awaitable));
  (void)ec;
}

net::awaitable<void> tls_writer(tls_stream& s, const std::string& data) {
  for (std::size_t off = 0; off < data.size(); off += 10000) {
    const std::size_t n = std::min<std::size_t>(10000, data.size() - off);
    co_await net::async_write(s, net::buffer(data.data() + off, n), use_awaitable);
  }
}

net::awaitable<void> tls_reader(tls_stream& s, std::string* got, std::size_t total) {
  got->resize(total);
  co_await net::async_read(s, net::buffer(*got), use_awaitable);
}

struct tls_client_result {
  std::string echoed;
  bool shutdown_ok = false;
  std::string cipher;
  int version = 0;
};

net::awaitable<void> tls_client(tcp::endpoint server, net::ssl::context& ctx,
                                tls_client_result* out) {
  using namespace net::experimental::awaitable_operators;
  tls_stream s(co_await net::this_coro::executor, ctx);
  co_await s.next_layer().async_connect(server, use_awaitable);
  co_await s.async_handshake(net::ssl::stream_base::client, use_awaitable);
  out->version = SSL_version(s.native_handle());
  out->cipher = SSL_get_cipher_name(s.native_handle());
  const std::string data = pattern(tls_bytes, 3);
  // A read and a write in flight at once on the same ssl::stream.
  co_await (tls_writer(s, data) && tls_reader(s, &out->echoed, data.size()));
  auto [ec] = co_await s.async_shutdown(net::as_tuple(use_awaitable));
  out->shutdown_ok = !ec || ec == net::error::eof;
}

void run_tls(std::uint64_t seed, const sim::link_config& link) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  tls_identity id;
  ASSERT_TRUE(id.signed_ok);
  net::ssl::context server_ctx(net::ssl::context::tlsv13_server);
  ASSERT_EQ(SSL_CTX_use_certificate(server_ctx.native_handle(), id.cert), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(server_ctx.native_handle(), id.key), 1);
  net::ssl::context client_ctx(net::ssl::context::tlsv13_client);
  ASSERT_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx.native_handle()), id.cert), 1);
  client_ctx.set_verify_mode(net::ssl::verify_peer);

  duo d(seed, link);
  tcp::acceptor acceptor(d.server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 443));
  bool server_clean = false;
  bool server_done = false;
  std::string server_failure;
  net::co_spawn(d.server.get_executor(), tls_echo_server(acceptor, server_ctx, &server_clean),
                finished{&server_done, &server_failure});
  tls_client_result r;
  bool done = false;
  std::string failure;
  net::co_spawn(d.client.get_executor(), tls_client(duo::server_endpoint(443), client_ctx, &r),
                finished{&done, &failure});
  ASSERT_TRUE(d.netw.run_until([&] { return done && server_done; }, 30 * second))
      << "seed " << seed << ": client done " << done << ", server done " << server_done;
  ASSERT_EQ(failure, "");
  ASSERT_EQ(server_failure, "");
  EXPECT_EQ(r.version, TLS1_3_VERSION);
  EXPECT_TRUE(r.echoed == pattern(tls_bytes, 3)) << "size " << r.echoed.size();
  EXPECT_TRUE(r.shutdown_ok);
  EXPECT_TRUE(server_clean);
  std::printf("tls seed %llu: %s, done at %.3f ms virtual\n", static_cast<unsigned long long>(seed),
              r.cipher.c_str(), static_cast<double>(d.netw.now()) / 1e6);
}

TEST(AsioBeast, Tls13FullDuplexEcho) {
  run_tls(41, {});
}

TEST(AsioBeast, Tls13FullDuplexEchoUnderLossAndReordering) {
  sim::link_config link;
  link.loss = 0.02;
  link.reorder = 0.02;
  link.jitter = 20 * microsecond;
  for (std::uint64_t seed : {42U, 43U}) {
    run_tls(seed, link);
  }
}

// --- WebSocket ----------------------------------------------------------------------------------

using ws_stream = websocket::stream<tcp_stream>;

struct ws_server_result {
  int echoed = 0;
  boost::system::error_code end;
};

net::awaitable<void> ws_server(tcp::acceptor& a, ws_server_result* out) {
  ws_stream ws(tcp_stream(co_await a.async_accept(use_awaitable)));
  co_await ws.async_accept(use_awaitable);
  beast::flat_buffer buf;
  for (;;) {
    auto [ec, n] = co_await ws.async_read(buf, net::as_tuple(use_awaitable));
    if (ec) {
      out->end = ec;
      break;
    }
    ws.text(ws.got_text());
    co_await ws.async_write(buf.data(), use_awaitable);
    buf.consume(buf.size());
    ++out->echoed;
  }
}

/// The control callback (a named struct: stored by the stream, called from its reads).
struct on_control {
  std::vector<std::string>* seen;
  void operator()(websocket::frame_type kind, beast::string_view payload) const {
    seen->push_back(std::string(kind == websocket::frame_type::pong   ? "pong:"
                                : kind == websocket::frame_type::ping ? "ping:"
                                                                      : "close:") +
                    std::string(payload));
  }
};

struct ws_client_result {
  std::string text_echo;
  bool text_was_text = false;
  std::string binary_echo;
  bool binary_was_binary = false;
  std::vector<std::string> control;
  bool closed = false;
};

/// The client over websocket::stream<tcp_stream> and over websocket::stream<tcp::socket>.
template <class WebSocket>
net::awaitable<void> ws_client(tcp::endpoint server, ws_client_result* out) {
  WebSocket ws(co_await net::this_coro::executor);
  co_await beast::get_lowest_layer(ws).async_connect(server, use_awaitable);
  co_await ws.async_handshake("server", "/", use_awaitable);
  ws.control_callback(on_control{&out->control});
  beast::flat_buffer buf;
  ws.text(true);
  co_await ws.async_write(net::buffer(std::string("hello websocket")), use_awaitable);
  co_await ws.async_read(buf, use_awaitable);
  out->text_echo = beast::buffers_to_string(buf.data());
  out->text_was_text = ws.got_text();
  buf.consume(buf.size());

  const std::string bin = pattern(100000, 4);
  ws.binary(true);
  co_await ws.async_ping("are you there", use_awaitable);
  co_await ws.async_write(net::buffer(bin), use_awaitable);
  co_await ws.async_read(buf, use_awaitable);  // the pong arrives before the echo
  out->binary_echo = beast::buffers_to_string(buf.data());
  out->binary_was_binary = ws.got_binary();
  buf.consume(buf.size());

  co_await ws.async_close(websocket::close_code::normal, use_awaitable);
  out->closed = !ws.is_open();
}

template <class WebSocket>
void run_websocket(std::uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  duo d(seed);
  tcp::acceptor acceptor(d.server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 80));
  ws_server_result sr;
  bool server_done = false;
  std::string server_failure;
  net::co_spawn(d.server.get_executor(), ws_server(acceptor, &sr),
                finished{&server_done, &server_failure});
  ws_client_result r;
  bool done = false;
  std::string failure;
  net::co_spawn(d.client.get_executor(), ws_client<WebSocket>(duo::server_endpoint(http_port), &r),
                finished{&done, &failure});
  ASSERT_TRUE(d.netw.run_until([&] { return done && server_done; }, 10 * second))
      << "seed " << seed << ": client done " << done << ", server done " << server_done;
  ASSERT_EQ(failure, "");
  ASSERT_EQ(server_failure, "");
  EXPECT_EQ(r.text_echo, "hello websocket");
  EXPECT_TRUE(r.text_was_text);
  EXPECT_TRUE(r.binary_echo == pattern(100000, 4));
  EXPECT_TRUE(r.binary_was_binary);
  EXPECT_EQ(r.control, (std::vector<std::string>{"pong:are you there"}));
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(sr.echoed, 2);
  EXPECT_EQ(sr.end, websocket::error::closed) << sr.end.message();
}

TEST(AsioBeast, WebSocketOverTcpStreamEchoPingClose) {
  run_websocket<ws_stream>(51);
}

TEST(AsioBeast, WebSocketOverTcpSocketEchoPingClose) {
  run_websocket<websocket::stream<tcp::socket>>(52);
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

}  // namespace
