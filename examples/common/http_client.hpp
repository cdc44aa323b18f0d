// A minimal HTTP/1.1 keep-alive client for the examples' load generator and simulated clients
// (no Beast: it reads Content-Length framed responses, which is what the example server sends),
// and a log-linear latency histogram (fixed buckets: recording allocates nothing).
// Templated on the protocol, so it runs on dpdk_net::tcp and boost::asio::ip::tcp alike.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/net_context.hpp"
#include "dpdk_net/asio/steady_timer.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/os.hpp"

namespace dpdk_net::examples::http {

/// Log-linear buckets over nanoseconds: values below 32 exactly, then 32 buckets per power of two
/// (about 3% resolution). Percentiles report a bucket's upper bound.
class latency_histogram {
 public:
  static constexpr unsigned sub_bits = 5;
  static constexpr std::size_t sub = std::size_t{1} << sub_bits;
  static constexpr std::size_t buckets = (64 - sub_bits + 1) * sub;

  void record(std::uint64_t v) noexcept {
    ++counts_[index(v)];
    ++total_;
    max_ = std::max(max_, v);
  }
  void merge(const latency_histogram& o) noexcept {
    for (std::size_t i = 0; i < buckets; ++i) {
      counts_[i] += o.counts_[i];
    }
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
  }
  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
  /// The value at quantile q (0..1): the upper bound of the bucket holding it.
  [[nodiscard]] std::uint64_t percentile(double q) const noexcept {
    if (total_ == 0) {
      return 0;
    }
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    rank = std::min(std::max<std::uint64_t>(rank, 1), total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        return std::min(upper(i), max_);
      }
    }
    return max_;
  }
  static std::size_t index(std::uint64_t v) noexcept {
    if (v < sub) {
      return static_cast<std::size_t>(v);
    }
    const unsigned msb = 63U - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - sub_bits;
    return (shift + 1) * sub + static_cast<std::size_t>((v >> shift) - sub);
  }
  static std::uint64_t upper(std::size_t i) noexcept {
    if (i < sub) {
      return i;
    }
    const std::size_t shift = i / sub - 1;
    const std::uint64_t base = sub + i % sub;
    return ((base + 1) << shift) - 1;
  }

 private:
  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

/// The clock and timer of a protocol: our context's time and timer (virtual in the simulator),
/// or the monotonic clock and Asio's steady_timer.
template <class Protocol>
struct clock_of {
  using timer = boost::asio::steady_timer;
  static time_ns now(const boost::asio::any_io_executor&) noexcept { return monotonic_now(); }
};
template <>
struct clock_of<dpdk_net::tcp> {
  using timer = dpdk_net::steady_timer;
  static time_ns now(const boost::asio::any_io_executor& ex) noexcept {
    return net_context::from(ex)->now();
  }
};

struct response_info {
  unsigned status = 0;
  std::uint64_t header_bytes = 0;
  std::uint64_t body_bytes = 0;
  bool close = false;  ///< the server asked to close (Connection: close)
};

namespace detail {
inline bool iequals_prefix(std::string_view line, std::string_view name) noexcept {
  if (line.size() < name.size()) {
    return false;
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto a = static_cast<unsigned char>(line[i]);
    const auto b = static_cast<unsigned char>(name[i]);
    if ((a | 0x20U) != (b | 0x20U)) {
      return false;
    }
  }
  return true;
}

/// Parses a complete header block; false if it is not a response we can frame.
inline bool parse_header(std::string_view h, response_info& out, std::uint64_t& length) {
  if (h.size() < 12 || !h.starts_with("HTTP/1.")) {
    return false;
  }
  out.status = static_cast<unsigned>((h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0'));
  length = 0;
  out.close = h.starts_with("HTTP/1.0");
  std::size_t pos = h.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < h.size()) {
    const std::size_t next = h.find("\r\n", pos + 2);
    const std::string_view line =
        h.substr(pos + 2, (next == std::string_view::npos ? h.size() : next) - pos - 2);
    if (iequals_prefix(line, "content-length:")) {
      std::uint64_t n = 0;
      for (const char c : line.substr(15)) {
        if (c >= '0' && c <= '9') {
          n = n * 10 + static_cast<std::uint64_t>(c - '0');
        }
      }
      length = n;
    } else if (iequals_prefix(line, "connection:")) {
      out.close = line.find("close") != std::string_view::npos;
    } else if (iequals_prefix(line, "transfer-encoding:")) {
      return false;  // chunked: not sent by the example server
    }
    pos = next;
  }
  return true;
}
}  // namespace detail

/// Reads one response from s. buf[0, have) holds bytes read earlier and not yet consumed (a
/// pipelined response's start); on return it holds what follows this response. body: if not
/// null, receives the body. Returns the error (bad_message if the response cannot be framed).
template <class Socket>
boost::asio::awaitable<boost::system::error_code> read_response(Socket& s, std::vector<char>& buf,
                                                                std::size_t& have,
                                                                response_info& out,
                                                                std::string* body) {
  namespace net = boost::asio;
  std::size_t header_end = 0;
  for (;;) {
    const std::string_view seen(buf.data(), have);
    const std::size_t at = seen.find("\r\n\r\n");
    if (at != std::string_view::npos) {
      header_end = at + 4;
      break;
    }
    if (have == buf.size()) {
      co_return boost::system::errc::make_error_code(boost::system::errc::bad_message);
    }
    auto [ec, n] = co_await s.async_read_some(net::buffer(buf.data() + have, buf.size() - have),
                                              net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return ec;
    }
    have += n;
  }
  std::uint64_t length = 0;
  if (!detail::parse_header(std::string_view(buf.data(), header_end), out, length)) {
    co_return boost::system::errc::make_error_code(boost::system::errc::bad_message);
  }
  out.header_bytes = header_end;
  out.body_bytes = length;
  if (body != nullptr) {
    body->clear();
  }
  const std::size_t in_buf =
      static_cast<std::size_t>(std::min<std::uint64_t>(have - header_end, length));
  if (body != nullptr) {
    body->append(buf.data() + header_end, in_buf);
  }
  std::uint64_t remaining = length - in_buf;
  std::size_t consumed = header_end + in_buf;
  std::memmove(buf.data(), buf.data() + consumed, have - consumed);
  have -= consumed;
  while (remaining != 0) {
    auto [ec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return ec;
    }
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, remaining));
    if (body != nullptr) {
      body->append(buf.data(), take);
    }
    remaining -= take;
    std::memmove(buf.data(), buf.data() + take, n - take);
    have = n - take;
  }
  co_return boost::system::error_code{};
}

/// What a load run asks for.
struct load_config {
  std::string request;   ///< the request's bytes (keep-alive GET)
  time_ns start = 0;     ///< the run's start (the clock of the protocol)
  time_ns duration = 0;  ///< how long requests are sent
  time_ns interval = 0;  ///< open loop: each connection's gap between requests; 0 closed
  unsigned connections = 1;
};

/// What a load run measured (all connections: one thread updates it).
struct load_results {
  latency_histogram latency;
  std::uint64_t requests = 0;
  std::uint64_t bytes = 0;  ///< response bytes
  std::uint64_t connect_errors = 0, io_errors = 0, status_errors = 0;
  std::uint64_t reconnects = 0;
  unsigned finished = 0;  ///< connections whose loop has ended
  time_ns end = 0;        ///< when the last connection finished
};

/// One keep-alive connection of a load run: requests back to back (closed loop) or at
/// start + index * interval / connections + k * interval (open loop; latency counted from the
/// intended send time, so a slow server is not hidden by the wait).
template <class Protocol>
boost::asio::awaitable<void> load_connection(typename Protocol::endpoint target,
                                             const load_config* cfg, load_results* r,
                                             unsigned index) {
  namespace net = boost::asio;
  using clock = clock_of<Protocol>;
  const net::any_io_executor ex = co_await net::this_coro::executor;
  typename Protocol::socket s(ex);
  typename clock::timer timer(ex);
  std::vector<char> buf(64 * 1024);
  std::size_t have = 0;
  bool connected = false;
  const time_ns end = cfg->start + cfg->duration;
  time_ns intended =
      cfg->start + (cfg->interval == 0 ? 0 : cfg->interval * index / cfg->connections);
  for (;;) {
    time_ns now = clock::now(ex);
    if (cfg->interval != 0 && now < intended && intended < end) {
      timer.expires_after(std::chrono::nanoseconds(intended - now));
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      now = clock::now(ex);
    }
    if (now >= end || (cfg->interval != 0 && intended >= end)) {
      break;
    }
    if (!connected) {
      boost::system::error_code ignored;
      s.close(ignored);
      auto [ec] = co_await s.async_connect(target, net::as_tuple(net::use_awaitable));
      if (ec) {
        ++r->connect_errors;
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        continue;
      }
      s.set_option(typename Protocol::no_delay(true), ignored);
      connected = true;
      have = 0;
    }
    const time_ns sent = cfg->interval == 0 ? clock::now(ex) : intended;
    auto [wec, wn] =
        co_await net::async_write(s, net::buffer(cfg->request), net::as_tuple(net::use_awaitable));
    response_info info;
    boost::system::error_code rec = wec;
    if (!wec) {
      rec = co_await read_response(s, buf, have, info, nullptr);
    }
    if (rec) {
      ++r->io_errors;
      ++r->reconnects;
      connected = false;
      continue;
    }
    const time_ns done = clock::now(ex);
    r->latency.record(done - std::min(sent, done));
    ++r->requests;
    r->bytes += info.header_bytes + info.body_bytes;
    if (info.status != 200) {
      ++r->status_errors;
    }
    if (info.close) {
      ++r->reconnects;
      connected = false;
    }
    intended += cfg->interval;
  }
  boost::system::error_code ignored;
  s.shutdown(net::socket_base::shutdown_send, ignored);
  s.close(ignored);
  ++r->finished;
  r->end = std::max(r->end, clock::now(ex));
}

}  // namespace dpdk_net::examples::http
