// TLS 1.3 full duplex over ssl::stream<tcp::socket> (a certificate generated at test time) and
// websocket over websocket::stream<tcp_stream> / <tcp::socket>, in the simulator.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/websocket.hpp>

#include "asio_beast_common.hpp"

// Asio's SSL support is compiled separately (BOOST_ASIO_SEPARATE_COMPILATION): its one copy is
// here, the only TU of the binary that uses it.
#include <boost/asio/ssl/impl/src.hpp>

// A named namespace, not an anonymous one: in a unity batch this file is not the main file, and
// g++ 12 then flags the coroutine frame of ws_client<> (a template taking a pointer to a type of an
// anonymous namespace) with -Wsubobject-linkage.
namespace asio_beast_tls_ws_test {

using namespace asio_beast_test;
namespace websocket = beast::websocket;

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
  // DPDK_NET_SEED_SWEEP=n: n more seeds at 5% loss and reordering, for bug hunting.
  if (const char* sweep = std::getenv("DPDK_NET_SEED_SWEEP"); sweep != nullptr) {
    link.loss = 0.05;
    link.reorder = 0.05;
    const std::uint64_t n = std::strtoull(sweep, nullptr, 10);
    for (std::uint64_t seed = 1000; seed < 1000 + n && !HasFailure(); ++seed) {
      run_tls(seed, link);
    }
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

}  // namespace asio_beast_tls_ws_test
