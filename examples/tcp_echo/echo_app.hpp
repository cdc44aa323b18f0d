// tcp_echo's application side: an echo server and a verifying client, C++20 coroutines on our
// Asio sockets (dpdk_net::tcp), run by the one-worker runtime in main.cpp. Nothing here touches a
// device or a clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/stack/tcp.hpp"
#include "dpdk_net/time.hpp"

namespace tcp_echo {

using dpdk_net::time_ns;
using executor = boost::asio::any_io_executor;

/// What the application did (printed with the stack's counters).
struct app_counters {
  std::uint64_t accepted = 0;   ///< server: connections accepted
  std::uint64_t completed = 0;  ///< server: peer finished, all echoed, closed by us
  std::uint64_t failed = 0;     ///< connections that ended in an error (reset, timeout, ...)
  std::uint64_t bytes_echoed = 0;
  std::uint64_t streams_intact = 0;  ///< client: streams fully echoed and verified
  std::uint64_t bytes_verified = 0;  ///< client
};

/// A reproducible byte stream: byte i depends only on the seed and i, so any range can be
/// produced (to send) and produced again (to check the echo) without keeping what was sent.
class stream_generator {
 public:
  explicit stream_generator(std::uint64_t seed) noexcept : seed_(seed) {}
  void fill(std::uint64_t offset, std::span<std::byte> out) const noexcept;

 private:
  std::uint64_t seed_;
};

/// Per-connection buffer: data taken from the socket, waiting to be sent (or checked).
inline constexpr std::size_t chunk_bytes = 64 * 1024;

class echo_server {
 public:
  echo_server(const executor& ex, std::uint16_t port, bool no_delay);
  /// Opens the listener and starts accepting. Errors: as open/bind/listen.
  std::error_code start(std::uint32_t backlog = 1024);
  /// Listens without ever accepting (--no-accept): the accept queue stays full.
  std::error_code listen_only(std::uint32_t backlog);
  [[nodiscard]] const app_counters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t open_sessions() const noexcept { return sessions_; }

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> session(dpdk_net::tcp::socket s);

  dpdk_net::tcp::acceptor acceptor_;
  std::uint16_t port_;
  bool no_delay_;
  std::size_t sessions_ = 0;
  app_counters counters_;
};

struct client_config {
  dpdk_net::tcp::endpoint remote;
  std::uint16_t local_port = 0;  ///< 0: ephemeral (always, with several connections)
  std::uint64_t bytes = 0;       ///< per connection
  unsigned connections = 1;
  std::uint64_t seed = 1;  ///< connection i streams from seed + i
  bool no_delay = false;
};

class echo_client {
 public:
  echo_client(const executor& ex, const client_config& config);
  /// Starts every connection (failures, a refused connect included, end that stream).
  void start();
  /// Every stream has finished (intact or failed).
  [[nodiscard]] bool done() const noexcept { return finished_ == config_.connections; }
  [[nodiscard]] bool all_intact() const noexcept {
    return done() && counters_.streams_intact == config_.connections;
  }
  /// One line per failed stream (empty if none), for stderr.
  [[nodiscard]] std::vector<std::string> failures() const;
  [[nodiscard]] const app_counters& counters() const noexcept { return counters_; }

 private:
  struct stream {
    explicit stream(const executor& ex) : socket(ex) {}
    dpdk_net::tcp::socket socket;
    std::string failure;
    bool sent = false;  // the writer handed over everything and shut down
  };
  boost::asio::awaitable<void> run(std::size_t index);
  boost::asio::awaitable<void> write_all(std::size_t index);
  boost::asio::awaitable<void> verify(std::size_t index);

  executor ex_;
  client_config config_;
  std::vector<std::unique_ptr<stream>> streams_;
  std::size_t finished_ = 0;
  app_counters counters_;
};

}  // namespace tcp_echo
