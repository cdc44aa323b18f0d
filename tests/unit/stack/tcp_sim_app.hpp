// A small TCP application on sim::stack_host, for simulated transfers between two of our stacks:
// a server that sinks, echoes or streams, and a client that streams N bytes of a seeded stream
// and checks what comes back. Both sides hash what they send and receive (64-bit FNV-1a) and
// compare every received byte with the generator the peer used, so a corruption is caught at its
// offset, not only as a wrong hash.
//
// Driven only by stack readiness events (stack::poll_events): a socket is serviced when an event
// names it; nothing scans the sockets. No gtest here: anomalies are recorded (`problems`) and the
// tests assert on them, so sim_demo-like programs can use it too.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "dpdk_net/sim/stack_host.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/stack/tcp.hpp"

namespace dpdk_net::stack::test {

/// A seeded byte stream with random access: byte i is byte (i mod 8) of splitmix64(seed, i / 8),
/// so a receiver can check any range against it without replaying the stream from the start.
class stream_generator {
 public:
  explicit stream_generator(std::uint64_t seed = 0) noexcept : seed_(seed) {}
  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  void fill(std::uint64_t offset, std::span<std::byte> out) const noexcept;
  /// The offset of the first byte of `data` (at stream offset `offset`) that differs from the
  /// stream, if any.
  [[nodiscard]] std::optional<std::uint64_t> mismatch(
      std::uint64_t offset, std::span<const std::byte> data) const noexcept;

 private:
  [[nodiscard]] std::uint64_t word(std::uint64_t index) const noexcept;
  std::uint64_t seed_;
};

/// FNV-1a, 64 bits, incremental (the stream hash both ends compute).
class fnv1a64 {
 public:
  void update(std::span<const std::byte> data) noexcept;
  [[nodiscard]] std::uint64_t value() const noexcept { return h_; }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

/// What one end does on a connection.
struct stream_role {
  /// Bytes to send from `send_seed`'s stream (ignored when echoing).
  std::uint64_t send_bytes = 0;
  std::uint64_t send_seed = 0;
  /// Send back what arrives, then half-close when the peer has (an echo server).
  bool echo = false;
  /// Received bytes must equal this many bytes of this seed's stream (nullopt: not checked,
  /// only hashed).
  std::optional<std::uint64_t> expect_seed;
  std::uint64_t expect_bytes = 0;
};

/// One connection as one end saw it (times are simulated, global).
struct stream_record {
  tcp_layer::socket_id socket = tcp_layer::invalid_socket;
  stream_role role;
  std::uint64_t sent = 0, received = 0;
  fnv1a64 sent_hash, received_hash;
  /// Offset of the first received byte that differs from the expected stream (or lies beyond
  /// its end).
  std::optional<std::uint64_t> first_mismatch;
  bool connected = false;      ///< connect() completed (client) or accepted (server)
  bool shutdown_sent = false;  ///< everything was handed to send() and shutdown(send) called
  bool end_of_stream = false;  ///< the peer's FIN: receive() said end_of_stream
  bool closed_event = false;   ///< a `closed` event named the socket
  bool lost = false;           ///< the host crashed with the connection open
  std::error_code error;       ///< why it failed (connection_reset, timed_out, ...)
  time_ns started_at = 0, connected_at = 0, done_at = 0, failed_at = 0;
  /// Everything sent and everything expected received, intact, and the stream ended.
  [[nodiscard]] bool complete() const noexcept {
    return !error && end_of_stream && shutdown_sent && !first_mismatch &&
           (!role.expect_seed || received == role.expect_bytes);
  }
  [[nodiscard]] bool finished() const noexcept { return complete() || static_cast<bool>(error); }
  /// One line for failure messages.
  [[nodiscard]] std::string describe() const;
};

struct tcp_app_options {
  tcp_socket_options socket{};          ///< every socket of this app (accepted ones too)
  std::size_t io_chunk = 16 * 1024;     ///< bytes per send()/receive() call
  std::size_t echo_buffer = 64 * 1024;  ///< echo: bytes read but not yet sent back, at most
};

/// Our stack on a simulated host with a TCP application on it: listens and/or connects, and runs
/// each connection's stream_role from readiness events.
class tcp_app : public sim::stack_host {
 public:
  tcp_app(sim::host& h, sim::sim_nic& nic, stack_config config, tcp_app_options options = {});

  /// Listens on port; accepted connections play `role`.
  void listen(std::uint16_t port, const stream_role& role, std::uint32_t backlog = 64);
  /// Connects to remote and plays `role`; returns the index of its record.
  std::size_t connect(tcp_endpoint remote, const stream_role& role);

  [[nodiscard]] tcp_layer& tcp() noexcept { return ip().tcp(); }
  /// Every connection this app ran (in the order they started; a crash keeps them, marked).
  [[nodiscard]] const std::vector<stream_record>& records() const noexcept { return records_; }
  /// Connections lost with the host's memory in a crash (records kept, error unset).
  [[nodiscard]] std::size_t lost_in_crash() const noexcept { return lost_in_crash_; }
  /// Anything the stack did that the contract forbids (an event for a socket we do not know
  /// with no reason, an unexpected error code from a call, an event storm...).
  std::vector<std::string> problems;
  /// Events handed out by poll_events (for the figures and for "driven by events" checks).
  [[nodiscard]] std::uint64_t events_seen() const noexcept { return events_seen_; }

 protected:
  void on_pump(time_ns now) override;
  void on_restart() override;

 private:
  void handle(const socket_event& e, time_ns now);
  void accept_all(tcp_layer::socket_id listener, time_ns now);
  void service(std::size_t index, time_ns now);
  bool read_some(stream_record& r, time_ns now);
  bool write_some(stream_record& r, time_ns now);
  void fail(stream_record& r, std::error_code e);
  void problem(const std::string& what);
  [[nodiscard]] time_ns global_now() const noexcept { return sim_host().net().now(); }

  tcp_app_options options_;
  std::optional<std::uint16_t> listen_port_;
  std::uint32_t backlog_ = 64;
  stream_role listen_role_;
  tcp_layer::socket_id listener_ = tcp_layer::invalid_socket;
  std::vector<stream_record> records_;
  std::map<tcp_layer::socket_id, std::size_t> live_;  // open sockets -> record index
  struct echo_queue {
    std::vector<std::byte> bytes;  // bytes[head..] read but not yet sent back
    std::size_t head = 0;
    [[nodiscard]] std::size_t size() const noexcept { return bytes.size() - head; }
  };
  std::map<std::size_t, echo_queue> echo_;  // per record index
  std::vector<std::byte> io_, expected_;    // scratch: one io_chunk each
  std::size_t lost_in_crash_ = 0;
  std::uint64_t events_seen_ = 0;
};

/// A transfer between two of our stacks ("client" 198.18.0.1 and "server" 198.18.0.2) over one
/// point-to-point link; the link directions are named "client.eth0>server.eth0" and
/// "server.eth0>client.eth0" (what a shrunk schedule prints).
struct transfer_spec {
  enum class pattern : std::uint8_t {
    upload,  ///< the client streams `bytes`, the server sinks and checks them
    echo,    ///< the client streams, the server echoes, the client checks the echo
    both,    ///< both stream `bytes` (different seeds) at once; each checks the other's
  };
  pattern what = pattern::both;
  std::uint64_t bytes = 8 << 20;
  sim::link_config to_server, to_client;
  sim::nic_config nic{};
  tcp_config tcp{};  ///< both stacks
  tcp_app_options client, server;
  /// Simulated time after which anything unfinished counts as a hang.
  time_ns give_up = 900 * second;
  /// Then how long (at most) to wait for both stacks to release every connection.
  time_ns settle = 200 * second;
  /// Non-empty: client.pcap and server.pcap written there (DPDK_NET_TCP_SIM_PCAP_DIR=dir does
  /// it for every run, to look at a failing seed's traffic).
  std::string pcap_dir;
  /// Called once the server has received half of the client's bytes (or at once for a download
  /// of nothing): a partition, a crash, a blackhole.
  std::function<void(sim::network&, tcp_app& client, tcp_app& server)> midway;
  /// Called when the run is over, before the network goes (for inspection).
  std::function<void(sim::network&, tcp_app& client, tcp_app& server)> at_end;
};

struct transfer_outcome {
  std::vector<stream_record> client, server;
  std::size_t server_lost_in_crash = 0, client_lost_in_crash = 0;
  std::vector<std::string> problems;
  tcp_counters client_tcp{}, server_tcp{};
  std::size_t client_connections = 0, server_connections = 0;  ///< after settling
  bool finished = false;  ///< every connection completed or failed before give_up
  bool settled = false;   ///< then both stacks released every connection
  time_ns midway_at = 0, finished_at = 0;
  std::uint64_t trace_hash = 0, event_log_hash = 0;
  std::uint64_t events = 0;  ///< simulated events run
  /// One paragraph for failure messages.
  [[nodiscard]] std::string describe() const;
};

inline constexpr std::uint16_t transfer_port = 5001;
inline constexpr std::uint64_t client_stream_seed = 0xc1;
inline constexpr std::uint64_t server_stream_seed = 0x5e;

/// Runs one transfer (the network is built inside: re-runnable, as shrinking needs).
[[nodiscard]] transfer_outcome run_transfer(std::uint64_t seed, const transfer_spec& spec);

}  // namespace dpdk_net::stack::test
