// The TCP engine's own cost: two stacks back to back in one thread (no simulator, no device),
// one bulk transfer, frames handed straight from one stack's drain_tx to the other's receive.
// Prints ns per segment (data segments and ACKs, both stacks' work), throughput, and bytes per
// idle connection. A program that prints figures, not a test.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack {
namespace {

stack_config make_config(std::uint8_t last, std::size_t idle) {
  stack_config c;
  c.tcp.sockets = idle + 16;
  c.mac = mac_address{{0x02, 0, 0, 0, 0, last}};
  c.address = wire::ipv4_address::from_octets(198, 18, 0, last);
  c.tcp.send_buffer = c.tcp.receive_buffer = 1 << 20;
  return c;
}

/// Moves frames both ways until neither stack has any to send.
void pump(stack& a, stack& b, time_ns now) {
  std::array<packet, 32> burst{};
  bool moved = true;
  while (moved) {
    moved = false;
    for (int dir = 0; dir < 2; ++dir) {
      stack& from = dir == 0 ? a : b;
      stack& to = dir == 0 ? b : a;
      std::size_t n = 0;
      while ((n = from.drain_tx(burst, now)) != 0) {
        moved = true;
        for (std::size_t i = 0; i < n; ++i) {
          to.receive(std::move(burst[i]), now);
        }
      }
    }
  }
}

//   tcp_pair_bench [MIB] [IDLE]: MIB of bulk data while IDLE other connections are open (idle).
int run(int argc, char** argv) {
  const std::uint64_t total = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 512) << 20;
  const std::size_t idle = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  packet_pool pool_a{packet_pool_config{"a", 8192}};
  packet_pool pool_b{packet_pool_config{"b", 8192}};
  stack a{make_config(1, idle), pool_a, stack_secret{1, 2}};
  stack b{make_config(2, idle), pool_b, stack_secret{3, 4}};
  const wire::ipv4_address b_ip = make_config(2, idle).address;
  tcp_layer::socket_id l = 0, client = 0, server = tcp_layer::invalid_socket;
  if (b.tcp().open(l) || b.tcp().bind(l, 80) ||
      b.tcp().listen(l, static_cast<std::uint32_t>(idle + 4))) {
    std::fprintf(stderr, "setup failed\n");
    return 1;
  }
  // The idle connections: connected, accepted, then left alone for the whole transfer.
  for (std::size_t i = 0; i < idle; ++i) {
    tcp_layer::socket_id c = 0;
    if (a.tcp().open(c) || a.tcp().connect(c, tcp_endpoint{b_ip, 80}, 0)) {
      std::fprintf(stderr, "idle connection %zu failed\n", i);
      return 1;
    }
    if (i % 256 == 255) {
      pump(a, b, 0);
    }
  }
  pump(a, b, 0);
  for (tcp_layer::socket_id s = 0; b.tcp().accept(l, s) == std::error_code{};) {
  }
  if (a.tcp().open(client) || a.tcp().connect(client, tcp_endpoint{b_ip, 80}, 0)) {
    std::fprintf(stderr, "setup failed\n");
    return 1;
  }
  const std::uint64_t visits_before =
      a.counters().tcp.output_visits + b.counters().tcp.output_visits;
  // Setup's segments (the idle connections' handshakes) are not the transfer's.
  const std::uint64_t a_before = a.counters().tcp.segments_out;
  const std::uint64_t b_before = b.counters().tcp.segments_out;
  std::vector<std::byte> buf(256 * 1024, std::byte{0x42});
  std::array<packet, 32> burst{};
  std::uint64_t sent = 0, got = 0;
  time_ns now = 0;
  const auto start = std::chrono::steady_clock::now();
  while (got < total) {
    for (int dir = 0; dir < 2; ++dir) {
      stack& from = dir == 0 ? a : b;
      stack& to = dir == 0 ? b : a;
      std::size_t n = 0;
      while ((n = from.drain_tx(burst, now)) != 0) {
        for (std::size_t i = 0; i < n; ++i) {
          to.receive(std::move(burst[i]), now);
        }
      }
    }
    std::array<socket_event, 8> ev{};
    a.poll_events(ev);
    b.poll_events(ev);
    if (server == tcp_layer::invalid_socket) {
      (void)b.tcp().accept(l, server);
    }
    while (sent < total) {
      const auto r = a.tcp().send(
          client, std::span(buf).first(std::min<std::uint64_t>(buf.size(), total - sent)));
      if (r.bytes == 0) {
        break;
      }
      sent += r.bytes;
    }
    if (server != tcp_layer::invalid_socket) {
      while (true) {
        const auto r = b.tcp().receive(server, buf);
        if (r.bytes == 0) {
          break;
        }
        got += r.bytes;
      }
    }
    now += 10 * microsecond;  // virtual time moves, so delayed ACKs and RTT samples behave
    a.advance(now);
    b.advance(now);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto ca = a.counters().tcp;
  const auto cb = b.counters().tcp;
  const std::uint64_t a_segments = ca.segments_out - a_before;
  const std::uint64_t b_segments = cb.segments_out - b_before;
  const std::uint64_t segments = a_segments + b_segments;
  std::printf(
      "tcp_pair_bench: %llu MiB in %.3f s: %.2f Gbit/s, %llu segments (%llu data, %llu from the "
      "receiver)\n",
      static_cast<unsigned long long>(total >> 20), seconds, total * 8 / seconds / 1e9,
      static_cast<unsigned long long>(segments), static_cast<unsigned long long>(a_segments),
      static_cast<unsigned long long>(b_segments));
  std::printf(
      "tcp_pair_bench: %.0f ns per segment (both stacks: build, checksum, parse, copy), %.0f ns "
      "per data segment\n",
      seconds * 1e9 / static_cast<double>(segments),
      seconds * 1e9 / static_cast<double>(a_segments));
  std::printf("tcp_pair_bench: retransmits %llu, bytes per idle connection (slot) %zu\n",
              static_cast<unsigned long long>(ca.retransmits), tcp_layer::idle_connection_bytes());
  std::printf(
      "tcp_pair_bench: %zu idle connections open (%zu on a); output visits per segment %.3f\n",
      idle, a.tcp().connections(),
      static_cast<double>(ca.output_visits + cb.output_visits - visits_before) /
          static_cast<double>(segments));
  return 0;
}

}  // namespace
}  // namespace dpdk_net::stack

int main(int argc, char** argv) {
  return dpdk_net::stack::run(argc, argv);
}
