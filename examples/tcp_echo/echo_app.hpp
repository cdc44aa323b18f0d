// tcp_echo's application side: an echo server and a verifying client on the TCP socket API,
// driven only by readiness events (stack::poll_events): nothing here scans the sockets, and
// nothing here touches a device or a clock (the driver loop in main.cpp does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "dpdk_net/stack/tcp.hpp"
#include "dpdk_net/time.hpp"

namespace tcp_echo {

using dpdk_net::time_ns;
using dpdk_net::stack::socket_event;
using dpdk_net::stack::tcp_layer;
using socket_id = tcp_layer::socket_id;

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
  echo_server(tcp_layer& tcp, std::uint16_t port, bool no_delay) noexcept
      : tcp_(tcp), port_(port), no_delay_(no_delay) {}
  /// Opens the listener. Errors: as tcp_layer::open/bind/listen.
  std::error_code start();
  void on_event(const socket_event& e, time_ns now);
  [[nodiscard]] const app_counters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t open_sessions() const noexcept { return sessions_.size(); }

 private:
  struct session {
    std::unique_ptr<std::byte[]> buffer;  // allocated at accept, never per segment
    std::size_t offset = 0, length = 0;   // received, not yet taken by send()
    bool peer_done = false;
  };
  void accept_all(time_ns now);
  /// Moves data both ways until neither moves; false if the session ended (and was erased).
  bool pump(socket_id id, session& s, time_ns now);
  void end(socket_id id, bool failed, time_ns now);

  tcp_layer& tcp_;
  std::uint16_t port_;
  bool no_delay_;
  socket_id listener_ = tcp_layer::invalid_socket;
  std::unordered_map<socket_id, session> sessions_;
  app_counters counters_;
};

struct client_config {
  dpdk_net::stack::tcp_endpoint remote;
  std::uint16_t local_port = 0;  ///< 0: ephemeral (always, with several connections)
  std::uint64_t bytes = 0;       ///< per connection
  unsigned connections = 1;
  std::uint64_t seed = 1;  ///< connection i streams from seed + i
  bool no_delay = false;
};

class echo_client {
 public:
  echo_client(tcp_layer& tcp, const client_config& config) : tcp_(tcp), config_(config) {}
  /// Opens and connects every connection. Errors: the first refusal (open, bind, connect).
  std::error_code start(time_ns now);
  void on_event(const socket_event& e, time_ns now);
  /// Every stream has finished (intact or failed).
  [[nodiscard]] bool done() const noexcept { return finished_ == streams_.size(); }
  [[nodiscard]] bool all_intact() const noexcept {
    return done() && counters_.streams_intact == streams_.size();
  }
  /// One line per failed stream (empty if none), for stderr.
  [[nodiscard]] std::vector<std::string> failures() const;
  [[nodiscard]] const app_counters& counters() const noexcept { return counters_; }

 private:
  struct stream {
    socket_id id = tcp_layer::invalid_socket;
    stream_generator generator{0};
    std::unique_ptr<std::byte[]> tx, rx, expected;
    std::uint64_t generated = 0;  // bytes produced into tx so far
    std::size_t tx_offset = 0, tx_length = 0;
    std::uint64_t received = 0;  // bytes of echo verified
    bool connected = false, shut = false, finished = false;
    std::string failure;
  };
  void pump(stream& s, time_ns now);
  void fail(stream& s, std::string why, time_ns now);
  void finish(stream& s, time_ns now);

  tcp_layer& tcp_;
  client_config config_;
  std::vector<stream> streams_;
  std::unordered_map<socket_id, std::size_t> by_id_;
  std::size_t finished_ = 0;
  app_counters counters_;
};

}  // namespace tcp_echo
