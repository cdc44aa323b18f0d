// tls_echo: a TLS 1.3 echo server on our stack over a TAP device -- boost::asio::ssl::stream over
// dpdk_net::tcp::socket, C++20 coroutines, run by the one-worker runtime. Each connection echoes
// with a reader and a writer in flight at once on the one ssl::stream (full duplex). What
// `openssl s_client` is tested against (pytests/test_http_tap.py). --backend pcap runs it on an
// existing interface through libpcap instead (no --kernel-ip); --capture FILE records every frame.
//
//   tls_echo [--backend tap] --iface NAME --ip ADDR/PREFIX --kernel-ip ADDR --port N --cert PEM
//            --key PEM [--seconds S] [--capture FILE]
//   tls_echo --backend pcap --iface NAME --ip ADDR/PREFIX --port N --cert PEM --key PEM ...
#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/impl/src.hpp>  // Asio's SSL layer, compiled in this program's one TU
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/runtime/runtime.hpp"
#include "dpdk_net/tap/tap_device.hpp"
#include "pcap_backend.hpp"

namespace {

using namespace dpdk_net;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tls_stream = ssl::stream<tcp::socket>;
std::atomic<runtime*> g_runtime{nullptr};

struct connection_state {
  explicit connection_state(tcp::socket s, ssl::context& ctx)
      : stream(std::move(s), ctx), wake(stream.get_executor()) {}
  tls_stream stream;
  steady_timer wake;  // the writer waits on it for data (cancelled by the reader)
  std::deque<std::vector<char>> queue;
  bool reader_done = false;
};

/// Writes what the reader queued, concurrently with it, until the reader is done.
net::awaitable<void> writer(std::shared_ptr<connection_state> c) {
  for (;;) {
    while (!c->queue.empty()) {
      std::vector<char> chunk = std::move(c->queue.front());
      c->queue.pop_front();
      auto [ec, n] = co_await net::async_write(c->stream, net::buffer(chunk),
                                               net::as_tuple(net::use_awaitable));
      if (ec) {
        co_return;
      }
    }
    if (c->reader_done) {
      co_await c->stream.async_shutdown(net::as_tuple(net::use_awaitable));
      co_return;
    }
    c->wake.expires_after(std::chrono::hours(24));
    co_await c->wake.async_wait(net::as_tuple(net::use_awaitable));
  }
}

net::awaitable<void> session(tcp::socket s, ssl::context& ctx) {
  auto c = std::make_shared<connection_state>(std::move(s), ctx);
  auto [hec] = co_await c->stream.async_handshake(ssl::stream_base::server,
                                                  net::as_tuple(net::use_awaitable));
  if (hec) {
    std::fprintf(stderr, "tls_echo: handshake: %s\n", hec.message().c_str());
    co_return;
  }
  net::co_spawn(c->stream.get_executor(), writer(c), net::detached);
  std::array<char, 16384> buf;
  for (;;) {
    auto [ec, n] =
        co_await c->stream.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
    if (ec) {
      break;
    }
    c->queue.emplace_back(buf.data(), buf.data() + n);
    c->wake.cancel();
  }
  c->reader_done = true;
  c->wake.cancel();
}

net::awaitable<void> serve(tcp::acceptor* acceptor, ssl::context* ctx) {
  for (;;) {
    auto [ec, s] = co_await acceptor->async_accept(net::as_tuple(net::use_awaitable));
    if (ec == net::error::operation_aborted) {
      co_return;
    }
    if (!ec) {
      net::co_spawn(acceptor->get_executor(), session(std::move(s), *ctx), net::detached);
    }
  }
}

int usage_error(const char* what) {
  std::fprintf(stderr, "tls_echo: %s (try --help)\n", what);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend = "tap", iface, ip_text, kernel_ip_text, cert, key;
  examples::capture_cli capture_options;
  long port = -1;
  double seconds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: tls_echo --iface NAME --ip ADDR/PREFIX --kernel-ip ADDR --port N --cert PEM "
          "--key PEM [--seconds S]\n"
          "  A TLS 1.3 echo server on our stack over TAP interface NAME (created), at ADDR; the\n"
          "  kernel's side gets --kernel-ip. --cert/--key: the server's certificate and key\n"
          "  (PEM files). Stops after S seconds or on SIGINT/SIGTERM.\n"
          "  --backend tap|pcap    tap (default), or pcap: --iface is an existing interface\n"
          "                        opened through libpcap, no --kernel-ip\n"
          "%s",
          examples::capture_usage());
      return 0;
    }
    if (const int r = examples::parse_capture_option("tls_echo", argc, argv, i, capture_options);
        r != 0) {
      if (r == 2) {
        return 2;
      }
      continue;
    }
    if (i + 1 >= argc) {
      return usage_error("an option needs a value");
    }
    const std::string v = argv[++i];
    if (a == "--backend") {
      backend = v;
    } else if (a == "--iface" || a == "--interface") {
      iface = v;
    } else if (a == "--ip") {
      ip_text = v;
    } else if (a == "--kernel-ip") {
      kernel_ip_text = v;
    } else if (a == "--port") {
      port = v.find_first_not_of("0123456789") == std::string::npos && !v.empty() && v.size() < 6
                 ? std::stol(v)
                 : -1;
    } else if (a == "--cert") {
      cert = v;
    } else if (a == "--key") {
      key = v;
    } else if (a == "--seconds") {
      seconds = std::strtod(v.c_str(), nullptr);
    } else {
      std::fprintf(stderr, "tls_echo: unknown argument '%s' (try --help)\n", argv[i - 1]);
      return 2;
    }
  }
  const std::size_t slash = ip_text.find('/');
  const auto address = wire::ipv4_address::parse(ip_text.substr(0, slash));
  const auto kernel_ip = wire::ipv4_address::parse(kernel_ip_text);
  const bool pcap = backend == "pcap";
  if (backend != "tap" && !pcap) {
    return usage_error("--backend must be tap or pcap");
  }
  if (pcap && !kernel_ip_text.empty()) {
    return usage_error("--kernel-ip is an option of --backend tap");
  }
  if (const std::string e = examples::finish_capture(capture_options, false); !e.empty()) {
    return usage_error(e.c_str());
  }
  if (iface.empty() || slash == std::string::npos || !address || (!pcap && !kernel_ip) ||
      port < 1 || port > 65535 || cert.empty() || key.empty()) {
    return usage_error(
        "need --iface NAME, --ip ADDR/PREFIX, --kernel-ip ADDR (tap), --port 1..65535, --cert "
        "and --key");
  }
  const int prefix = std::atoi(ip_text.c_str() + slash + 1);
  ssl::context ctx(ssl::context::tls_server);
  boost::system::error_code ec;
  SSL_CTX_ctrl(ctx.native_handle(), SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_3_VERSION, nullptr);
  ctx.use_certificate_chain_file(cert, ec);
  if (!ec) {
    ctx.use_private_key_file(key, ssl::context::pem, ec);
  }
  if (ec) {
    std::fprintf(stderr, "tls_echo: --cert/--key: %s\n", ec.message().c_str());
    return 2;
  }
  std::string error;
  std::unique_ptr<device> dev;
  if (pcap) {
    auto pc = examples::open_pcap_backend("tls_echo", iface, *address,
                                          static_cast<std::uint8_t>(prefix), std::nullopt);
    if (!pc) {
      return 1;
    }
    dev = std::move(pc->dev);
  } else {
    tap::tap_config tc;
    tc.name = iface;
    auto t = tap::tap_device::open(tc, error);
    if (!t || !t->configure_kernel_side(
                  tap::kernel_side{*kernel_ip, static_cast<std::uint8_t>(prefix), true}, error)) {
      std::fprintf(stderr, "tls_echo: %s\n", error.c_str());
      return 1;
    }
    dev = std::move(t);
  }
  examples::device_capture capture;  // --capture: closed after the runtime is gone
  if (!capture.open("tls_echo", capture_options, *dev)) {
    return 1;
  }
  stack::stack_config sc;
  sc.mac = dev->info().mac;
  sc.address = *address;
  sc.prefix_length = static_cast<std::uint8_t>(prefix);
  if (const std::string bad = stack::validate(sc, dev->info().mtu); !bad.empty()) {
    std::fprintf(stderr, "tls_echo: %s\n", bad.c_str());
    return 2;
  }
  runtime rt(capture.dev(), sc);
  tcp::acceptor acceptor(rt.get_executor(), tcp::endpoint(net::ip::address_v4::any(),
                                                          static_cast<std::uint16_t>(port)));
  g_runtime = &rt;
  std::signal(SIGINT, [](int) { g_runtime.load()->stop(); });
  std::signal(SIGTERM, [](int) { g_runtime.load()->stop(); });
  std::printf("tls_echo: %s on %s, TLS echo on port %ld\n", ip_text.c_str(), iface.c_str(), port);
  std::fflush(stdout);
  net::co_spawn(rt.get_executor(), serve(&acceptor, &ctx), net::detached);
  rt.run_for(seconds > 0 ? static_cast<time_ns>(seconds * 1e9) : UINT64_MAX);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  g_runtime = nullptr;
  return 0;
}
