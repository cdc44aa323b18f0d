// The HTTP server the examples share (Boost.Beast, C++20 coroutines): HTTP/1.1 keep-alive and
// pipelining (requests on a connection are answered in order), routes
//   /          a small HTML page
//   /echo      the request's body, echoed (POST)
//   /bytes/N   N bytes of a fixed pattern (byte i is pattern_byte(i)); N <= 64 MiB, else 400
//   /stats     JSON counters: requests, connections, bytes (+ our stack's, on our stack)
// The code is templated on the protocol (dpdk_net::tcp or boost::asio::ip::tcp) and compiled for
// both in one TU (http_app.cpp, the only one that includes Beast).
#pragma once

#include <cstdint>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "dpdk_net/asio/tcp.hpp"

namespace dpdk_net::examples::http {

inline constexpr std::uint64_t max_bytes = 64ULL << 20U;  ///< /bytes/N and /echo bodies

/// Byte i of a /bytes/N body.
[[nodiscard]] inline char pattern_byte(std::uint64_t i) noexcept {
  constexpr char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return alphabet[i % 62];
}

struct server_counters {
  std::uint64_t requests = 0;
  std::uint64_t connections = 0;       ///< accepted
  std::uint64_t connections_open = 0;  ///< open now
  std::uint64_t bytes_in = 0;          ///< request bytes (headers + bodies)
  std::uint64_t bytes_out = 0;         ///< response bytes
  std::uint64_t bad_requests = 0;      ///< 4xx answers
};

/// The process's server counters (one server per process; one thread runs it).
server_counters& counters() noexcept;
/// Extra members for /stats and the final JSON (our stack's counters): fn(context) returns
/// `"name":{...},...` or "". Unset: none.
void set_stats_source(std::string (*fn)(void* context), void* context) noexcept;
/// The counters as one JSON object (with the stats source's members).
[[nodiscard]] std::string counters_json();

/// One connection: requests read and answered in order until the peer closes or asks to.
template <class Protocol>
boost::asio::awaitable<void> session(typename Protocol::socket s);

/// Accepts connections and spawns a session for each, until the acceptor is closed.
template <class Protocol>
boost::asio::awaitable<void> serve(typename Protocol::acceptor& acceptor);

extern template boost::asio::awaitable<void> session<dpdk_net::tcp>(dpdk_net::tcp::socket);
extern template boost::asio::awaitable<void> session<boost::asio::ip::tcp>(
    boost::asio::ip::tcp::socket);
extern template boost::asio::awaitable<void> serve<dpdk_net::tcp>(dpdk_net::tcp::acceptor&);
extern template boost::asio::awaitable<void> serve<boost::asio::ip::tcp>(
    boost::asio::ip::tcp::acceptor&);

}  // namespace dpdk_net::examples::http
