// The HTTP server the examples share (Boost.Beast, C++20 coroutines): HTTP/1.1 keep-alive and
// pipelining (requests on a connection are answered in order), routes
//   /          a small HTML page
//   /echo      the request's body, echoed (POST)
//   /bytes/N   N bytes of a fixed pattern (byte i is pattern_byte(i)); N <= 64 MiB, else 400
//   /stats     JSON counters: requests, connections, bytes (+ our stack's, on our stack; per
//              worker with several workers)
// The code is templated on the protocol (dpdk_net::tcp or boost::asio::ip::tcp) and compiled for
// both in one TU (http_app.cpp, the only one that includes Beast).
#pragma once

#include <atomic>
#include <cstddef>
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

/// A counter one thread writes and any thread may read (relaxed atomics: plain loads and stores
/// on x86, no lock prefix): a worker's counters are read by /stats on another worker.
class relaxed_counter {
 public:
  relaxed_counter& operator+=(std::uint64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return *this;
  }
  relaxed_counter& operator++() noexcept { return *this += 1; }
  relaxed_counter& operator--() noexcept { return *this += ~std::uint64_t{0}; }
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// One worker's server counters (its own cache line: workers do not share lines).
struct alignas(64) server_counters {
  relaxed_counter requests;
  relaxed_counter connections;       ///< accepted
  relaxed_counter connections_open;  ///< open now
  relaxed_counter bytes_in;          ///< request bytes (headers + bodies)
  relaxed_counter bytes_out;         ///< response bytes
  relaxed_counter bad_requests;      ///< 4xx answers
};

/// Most workers the counters keep apart.
inline constexpr std::size_t max_server_workers = 64;

/// Worker `worker`'s server counters (one server per process; worker 0 with one worker).
server_counters& counters(std::size_t worker = 0) noexcept;
/// How many workers serve (1 unless set): counters_json() sums over them.
void set_workers(std::size_t workers) noexcept;
/// Extra members for /stats and the final JSON (our stack's counters, per-worker counters):
/// fn(context) returns `"name":{...},...` or "". Unset: none. fn is called on whichever worker
/// serves /stats.
void set_stats_source(std::string (*fn)(void* context), void* context) noexcept;
/// The counters (summed over the workers) as one JSON object (with the stats source's members).
[[nodiscard]] std::string counters_json();
/// Worker `worker`'s counters as JSON members (no braces): "requests":..,"connections":..,...
[[nodiscard]] std::string worker_counters_json(std::size_t worker);

/// One connection: requests read and answered in order until the peer closes or asks to;
/// counted in worker `worker`'s counters.
template <class Protocol>
boost::asio::awaitable<void> session(typename Protocol::socket s, std::size_t worker = 0);

/// Accepts connections and spawns a session for each (on the socket's executor), until the
/// acceptor is closed. worker: whose counters count them (a per-worker accept loop's worker).
template <class Protocol>
boost::asio::awaitable<void> serve(typename Protocol::acceptor& acceptor, std::size_t worker = 0);

extern template boost::asio::awaitable<void> session<dpdk_net::tcp>(dpdk_net::tcp::socket,
                                                                    std::size_t);
extern template boost::asio::awaitable<void> session<boost::asio::ip::tcp>(
    boost::asio::ip::tcp::socket, std::size_t);
extern template boost::asio::awaitable<void> serve<dpdk_net::tcp>(dpdk_net::tcp::acceptor&,
                                                                  std::size_t);
extern template boost::asio::awaitable<void> serve<boost::asio::ip::tcp>(
    boost::asio::ip::tcp::acceptor&, std::size_t);

}  // namespace dpdk_net::examples::http
