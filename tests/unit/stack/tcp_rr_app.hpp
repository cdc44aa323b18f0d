// Request/response over many TCP connections between two of our stacks in the simulator: the
// at-scale test (tcp_scale_sim_test.cpp) and the callgrind cost gate (bench/tcp_scale_probe.cpp)
// share it, so the gate measures the same traffic the test checks.
//
// The client opens N connections and then runs exchanges: a request (request_bytes, its first 8
// bytes a tag) on one connection, answered by the server with response_bytes whose first 8 bytes
// echo the tag. Exchanges go round-robin over the connections with a bounded number outstanding,
// so at 10 and at 10,000 connections the traffic has the same shape (the same segments at the
// same simulated times): only the number of idle connections beside it differs.
//
// Both apps are driven by readiness events only (poll_events); their per-event work is O(1)
// (a hash map from socket id to connection, reserved up front), so what grows with N in a cost
// measurement is the stack's, not the test application's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/stack_host.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/stack/tcp.hpp"

namespace dpdk_net::stack::test {

struct rr_setup {
  std::size_t connections = 10;
  std::uint32_t request_bytes = 64;
  std::uint32_t response_bytes = 256;
  std::uint64_t seed = 1;
  sim::link_config link{};  ///< both directions
  /// Both NICs. The default has no line rate (frames go onto the link at once: fewest simulator
  /// events, for the cost gate); give it one (and a tx ring) to pace bursts as a real NIC does.
  sim::nic_config nic = default_nic();
  static sim::nic_config default_nic() {
    sim::nic_config n;
    n.rx_ring = 4096;
    n.pool_size = 8192;
    return n;
  }
  /// Both stacks (sockets, max_backlog and the ARP lifetime are set from connections by
  /// rr_world; the rest is used as given).
  tcp_config tcp = small_buffers();
  /// Send and receive buffers of 4 KiB: a request or a response fits many times over, and
  /// 10,000 connections stay cheap even where buffers are held.
  static tcp_config small_buffers() {
    tcp_config t;
    t.send_buffer = t.receive_buffer = 4096;
    return t;
  }
};

inline constexpr std::uint16_t rr_port = 7000;

/// Anything the stack did that the test forbids, recorded for the failure message (bounded).
struct rr_problems {
  std::vector<std::string> list;
  void add(const std::string& what) {
    if (list.size() < 20) {
      list.push_back(what);
    }
  }
};

class rr_server : public sim::stack_host {
 public:
  rr_server(sim::host& h, sim::sim_nic& nic, stack_config config, const rr_setup& setup);
  [[nodiscard]] tcp_layer& tcp() noexcept { return ip().tcp(); }
  [[nodiscard]] std::size_t accepted() const noexcept { return conns_.size(); }
  [[nodiscard]] std::uint64_t served() const noexcept { return served_; }
  rr_problems problems;

 protected:
  void on_pump(time_ns now) override;

 private:
  struct conn {
    tcp_layer::socket_id id = tcp_layer::invalid_socket;
    std::uint32_t got = 0;           // bytes of the current request received
    std::array<std::byte, 8> tag{};  // its first 8 bytes
  };
  void serve(conn& c);

  rr_setup setup_;
  tcp_layer::socket_id listener_ = tcp_layer::invalid_socket;
  std::vector<conn> conns_;
  std::unordered_map<tcp_layer::socket_id, std::uint32_t> index_;  // socket id -> conns_
  std::vector<std::byte> in_, out_;
  std::uint64_t served_ = 0;
};

class rr_client : public sim::stack_host {
 public:
  rr_client(sim::host& h, sim::sim_nic& nic, stack_config config, const rr_setup& setup,
            tcp_endpoint server);
  [[nodiscard]] tcp_layer& tcp() noexcept { return ip().tcp(); }

  /// Opens `n` more connections, at most `window` connecting at once (so a 10,000-connection
  /// setup does not overflow the peer's rx ring with SYNs).
  void open(std::size_t n, std::size_t window);
  /// Runs `requests` more exchanges, round-robin over the open connections (going on from where
  /// the last call stopped), at most `window` outstanding.
  void exchange(std::uint64_t requests, std::size_t window);
  /// Nothing in progress: every connect finished and every request answered.
  [[nodiscard]] bool done() const noexcept {
    return opened_ == open_target_ && connecting_ == 0 && issued_ == request_target_ &&
           outstanding_ == 0;
  }
  [[nodiscard]] std::size_t connected() const noexcept { return connected_; }
  [[nodiscard]] std::uint64_t completed() const noexcept { return completed_; }
  [[nodiscard]] std::size_t failed() const noexcept { return failed_; }
  rr_problems problems;

 protected:
  void on_pump(time_ns now) override;

 private:
  enum class phase : std::uint8_t { connecting, idle, waiting, failed };
  struct conn {
    tcp_layer::socket_id id = tcp_layer::invalid_socket;
    phase state = phase::connecting;
    std::uint32_t got = 0;  // bytes of the current response received
    std::uint64_t tag = 0;  // the outstanding request's tag
    std::array<std::byte, 8> echoed{};
  };
  void start_work(time_ns now);
  void receive_response(conn& c);

  rr_setup setup_;
  tcp_endpoint server_;
  std::vector<conn> conns_;
  std::unordered_map<tcp_layer::socket_id, std::uint32_t> index_;
  std::vector<std::byte> in_, out_;
  std::size_t open_target_ = 0, opened_ = 0, connecting_ = 0, connect_window_ = 1;
  std::size_t connected_ = 0, failed_ = 0;
  std::uint64_t request_target_ = 0, issued_ = 0, outstanding_ = 0, completed_ = 0;
  std::size_t request_window_ = 1;
  std::size_t next_ = 0;  // round-robin cursor into conns_
};

/// Two hosts ("client" 198.18.0.1, "server" 198.18.0.2) on one link, the apps on them.
class rr_world {
 public:
  explicit rr_world(const rr_setup& setup);
  rr_world(const rr_world&) = delete;
  rr_world& operator=(const rr_world&) = delete;

  /// Runs the network until the client is done() or `limit` of simulated time passes; returns
  /// done().
  bool run(time_ns limit);
  /// Both stacks' problems, one line each.
  [[nodiscard]] std::string problems() const;

  sim::network net;

 private:
  sim::host& client_host_;
  sim::host& server_host_;
  sim::sim_nic& client_nic_;
  sim::sim_nic& server_nic_;

 public:
  rr_server server;
  rr_client client;
};

/// The stack configuration rr_world gives each side.
[[nodiscard]] stack_config rr_stack_config(wire::ipv4_address address, const rr_setup& setup);

}  // namespace dpdk_net::stack::test
