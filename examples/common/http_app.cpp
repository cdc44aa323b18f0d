// The examples' HTTP server (see http_app.hpp): the one TU that instantiates Beast, for both
// protocols.
#include "http_app.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace dpdk_net::examples::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

std::array<server_counters, max_server_workers> g_counters;
std::size_t g_workers = 1;
std::string (*g_stats_fn)(void*) = nullptr;
void* g_stats_context = nullptr;

constexpr std::string_view index_page =
    "<!doctype html>\n<html><head><title>dpdk-net</title></head>\n<body><h1>Hello from "
    "dpdk-net</h1>\n<p>HTTP/1.1 served by Boost.Beast over a kernel-bypass TCP/IP stack.</p>\n"
    "<ul><li><a href=\"/bytes/1024\">/bytes/N</a></li><li><a href=\"/stats\">/stats</a></li>"
    "</ul></body></html>\n";

using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

response make_response(server_counters& c, const request& req, bhttp::status status,
                       std::string_view type, std::string body) {
  response res{status, req.version()};
  res.set(bhttp::field::server, "dpdk-net http_server");
  res.set(bhttp::field::content_type, type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  if (bhttp::to_status_class(status) == bhttp::status_class::client_error) {
    ++c.bad_requests;
  }
  return res;
}

response handle(server_counters& c, request& req) {
  const std::string_view target(req.target().data(), req.target().size());
  const bool get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
  if (target == "/" && get) {
    return make_response(c, req, bhttp::status::ok, "text/html", std::string(index_page));
  }
  if (target == "/echo") {
    std::string body = std::move(req.body());
    return make_response(c, req, bhttp::status::ok, "application/octet-stream", std::move(body));
  }
  if (target == "/stats" && get) {
    return make_response(c, req, bhttp::status::ok, "application/json", counters_json() + "\n");
  }
  constexpr std::string_view bytes_prefix = "/bytes/";
  if (target.starts_with(bytes_prefix) && get) {
    const std::string_view digits = target.substr(bytes_prefix.size());
    std::uint64_t n = 0;
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || p != digits.data() + digits.size() || digits.empty() ||
        n > max_bytes) {
      return make_response(c, req, bhttp::status::bad_request, "text/plain",
                           "need /bytes/N with N <= 67108864\n");
    }
    std::string body(n, '\0');
    for (std::uint64_t i = 0; i < n && i < 62; ++i) {
      body[i] = pattern_byte(i);
    }
    for (std::uint64_t done = std::min<std::uint64_t>(n, 62); done < n;) {  // doubling copies
      const std::uint64_t chunk = std::min(done - done % 62, n - done);
      body.replace(done, chunk, body, 0, chunk);
      done += chunk;
    }
    return make_response(c, req, bhttp::status::ok, "application/octet-stream", std::move(body));
  }
  return make_response(c, req, bhttp::status::not_found, "text/plain", "not found\n");
}

}  // namespace

server_counters& counters(std::size_t worker) noexcept {
  return g_counters[std::min(worker, max_server_workers - 1)];
}

void set_workers(std::size_t workers) noexcept {
  g_workers = std::clamp<std::size_t>(workers, 1, max_server_workers);
}

void set_stats_source(std::string (*fn)(void*), void* context) noexcept {
  g_stats_fn = fn;
  g_stats_context = context;
}

namespace {

std::string members_json(std::uint64_t requests, std::uint64_t connections, std::uint64_t open,
                         std::uint64_t bytes_in, std::uint64_t bytes_out, std::uint64_t bad) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "\"requests\":%llu,\"connections\":%llu,\"connections_open\":%llu,"
                "\"bytes_in\":%llu,\"bytes_out\":%llu,\"bad_requests\":%llu",
                static_cast<unsigned long long>(requests),
                static_cast<unsigned long long>(connections), static_cast<unsigned long long>(open),
                static_cast<unsigned long long>(bytes_in),
                static_cast<unsigned long long>(bytes_out), static_cast<unsigned long long>(bad));
  return buf;
}

}  // namespace

std::string worker_counters_json(std::size_t worker) {
  const server_counters& c = counters(worker);
  return members_json(c.requests.get(), c.connections.get(), c.connections_open.get(),
                      c.bytes_in.get(), c.bytes_out.get(), c.bad_requests.get());
}

std::string counters_json() {
  std::uint64_t t[6] = {};
  for (std::size_t w = 0; w < g_workers; ++w) {
    const server_counters& c = g_counters[w];
    t[0] += c.requests.get();
    t[1] += c.connections.get();
    t[2] += c.connections_open.get();
    t[3] += c.bytes_in.get();
    t[4] += c.bytes_out.get();
    t[5] += c.bad_requests.get();
  }
  std::string out = "{" + members_json(t[0], t[1], t[2], t[3], t[4], t[5]);
  if (g_stats_fn != nullptr) {
    const std::string extra = g_stats_fn(g_stats_context);
    if (!extra.empty()) {
      out += ',';
      out += extra;
    }
  }
  out += '}';
  return out;
}

template <class Protocol>
net::awaitable<void> session(typename Protocol::socket s, std::size_t worker) {
  server_counters& c = counters(worker);
  ++c.connections;
  ++c.connections_open;
  beast::flat_buffer buffer;  // keeps what follows a request: pipelined requests wait here
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(max_bytes);
    auto [ec, n] = co_await bhttp::async_read(s, buffer, parser, net::as_tuple(net::use_awaitable));
    c.bytes_in += n;
    if (ec) {
      if (ec.category() == boost::system::error_code(bhttp::error::end_of_stream).category() &&
          ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
        // A malformed request: answer 400 and close.
        request bad_req;
        bad_req.version(11);
        bad_req.keep_alive(false);
        response res =
            make_response(c, bad_req, bhttp::status::bad_request, "text/plain", "bad request\n");
        auto [wec, wn] = co_await bhttp::async_write(s, res, net::as_tuple(net::use_awaitable));
        c.bytes_out += wn;
      }
      break;
    }
    request req = parser.release();
    response res = handle(c, req);
    if (req.method() == bhttp::verb::head) {
      const std::size_t length = res.body().size();  // HEAD: the headers of a GET
      res.body().clear();
      res.content_length(length);
    }
    const bool close = res.need_eof();
    auto [wec, wn] = co_await bhttp::async_write(s, res, net::as_tuple(net::use_awaitable));
    c.bytes_out += wn;
    if (wec) {
      break;
    }
    ++c.requests;
    if (close) {
      break;
    }
  }
  boost::system::error_code ignored;
  s.shutdown(net::socket_base::shutdown_send, ignored);
  --c.connections_open;
}

template <class Protocol>
net::awaitable<void> serve(typename Protocol::acceptor& acceptor, std::size_t worker) {
  for (;;) {
    auto [ec, s] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) {
        co_return;
      }
      continue;
    }
    boost::system::error_code ignored;
    s.set_option(typename Protocol::no_delay(true), ignored);
    net::co_spawn(s.get_executor(), session<Protocol>(std::move(s), worker), net::detached);
  }
}

template net::awaitable<void> session<dpdk_net::tcp>(dpdk_net::tcp::socket, std::size_t);
template net::awaitable<void> session<net::ip::tcp>(net::ip::tcp::socket, std::size_t);
template net::awaitable<void> serve<dpdk_net::tcp>(dpdk_net::tcp::acceptor&, std::size_t);
template net::awaitable<void> serve<net::ip::tcp>(net::ip::tcp::acceptor&, std::size_t);

}  // namespace dpdk_net::examples::http
