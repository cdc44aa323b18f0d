// Bulk TCP through a memory_link, one thread, with the device's offloads emulated: no offloads,
// checksum offload, checksum + TSO, and TSO with zero-copy send. Prints ns per wire segment and
// per frame the stack built, and Gbit/s. The emulation does in software what a NIC does in
// hardware, so the figures show what the *stack* saves (fewer frames built, no copy into the send
// ring); the device's share is printed apart. A program that prints figures, not a test.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dpdk_net/memory_device.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack {
namespace {

struct mode {
  const char* name;
  offload_set offloads;
  bool zero_copy;
};

stack_config make_config(std::uint8_t last, const device_info& device) {
  stack_config c;
  c.mac = device.mac;
  c.address = wire::ipv4_address::from_octets(198, 18, 0, last);
  c.tcp.send_buffer = c.tcp.receive_buffer = 1 << 20;
  use_device(c, device);
  return c;
}

void run_mode(const mode& m, std::uint64_t total) {
  memory_link_config lc;
  lc.offloads = m.offloads;
  lc.pool_size = 16384;
  lc.ring_size = 4096;
  memory_link link(lc);
  stack a{make_config(1, link.a().info()), link.a().tx_pool(0), stack_secret{1, 2}};
  stack b{make_config(2, link.b().info()), link.b().tx_pool(0), stack_secret{3, 4}};
  tcp_layer::socket_id l = 0, client = 0, server = tcp_layer::invalid_socket;
  if (b.tcp().open(l) || b.tcp().bind(l, 80) || b.tcp().listen(l, 4) || a.tcp().open(client) ||
      a.tcp().connect(client, tcp_endpoint{b.config().address, 80}, 0)) {
    std::fprintf(stderr, "setup failed\n");
    std::exit(1);
  }
  // The source: one buffer the application owns (zero-copy sends slices of it).
  std::vector<std::byte> source(8 << 20, std::byte{0x42});
  external_buffer ext;
  ext.data = source.data();
  ext.size = source.size();
  std::vector<std::byte> in(256 * 1024);
  std::array<packet, 32> burst{};
  std::uint64_t sent = 0, got = 0;
  time_ns now = 0;
  double device_seconds = 0;
  const auto start = std::chrono::steady_clock::now();
  while (got < total) {
    for (int dir = 0; dir < 2; ++dir) {
      stack& from = dir == 0 ? a : b;
      stack& to = dir == 0 ? b : a;
      memory_device& tx = dir == 0 ? link.a() : link.b();
      memory_device& rx = dir == 0 ? link.b() : link.a();
      std::size_t n = 0;
      while ((n = from.drain_tx(burst, now)) != 0) {
        std::size_t done = 0;
        while (done < n) {
          auto d0 = std::chrono::steady_clock::now();
          done += tx.tx_burst(0, std::span(burst).subspan(done, n - done));
          device_seconds +=
              std::chrono::duration<double>(std::chrono::steady_clock::now() - d0).count();
          std::array<packet, 32> got_frames{};
          std::size_t k = 0;
          while (true) {
            d0 = std::chrono::steady_clock::now();
            k = rx.rx_burst(0, got_frames);
            device_seconds +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - d0).count();
            if (k == 0) {
              break;
            }
            for (std::size_t i = 0; i < k; ++i) {
              to.receive(std::move(got_frames[i]), now);
            }
          }
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
      const std::uint64_t at = sent % source.size();
      const std::size_t n = std::min<std::uint64_t>(64 * 1024, total - sent);
      const auto r = m.zero_copy ? a.tcp().send_external(client, ext, at, n)
                                 : a.tcp().send(client, std::span(source).subspan(at, n));
      if (r.bytes == 0) {
        break;
      }
      sent += r.bytes;
    }
    if (server != tcp_layer::invalid_socket) {
      while (true) {
        const auto r = b.tcp().receive(server, in);
        if (r.bytes == 0) {
          break;
        }
        got += r.bytes;
      }
    }
    now += 10 * microsecond;
    a.advance(now);
    b.advance(now);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto ca = a.counters().tcp;
  const std::uint64_t wire_segments = link.a().stats().tx_packets;
  std::printf(
      "tcp_offload_bench %-22s %6.2f Gbit/s  %5.0f ns per wire data segment, %4.0f without the "
      "device emulation's tx/rx bursts  frames built by the sender %llu for %llu wire segments  "
      "(TSO frames "
      "%llu)\n",
      m.name, static_cast<double>(total) * 8 / seconds / 1e9,
      seconds * 1e9 / static_cast<double>(wire_segments),
      (seconds - device_seconds) * 1e9 / static_cast<double>(wire_segments),
      static_cast<unsigned long long>(ca.segments_out),
      static_cast<unsigned long long>(wire_segments),
      static_cast<unsigned long long>(ca.tso_frames));
}

int run(int argc, char** argv) {
  const std::uint64_t total = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256) << 20;
  const mode modes[] = {
      {"no offloads", {}, false},
      {"checksum offload", {offload::ipv4_checksum, offload::tcp_checksum}, false},
      {"checksum + TSO",
       {offload::ipv4_checksum, offload::tcp_checksum, offload::tcp_segmentation},
       false},
      {"TSO + zero-copy send",
       {offload::ipv4_checksum, offload::tcp_checksum, offload::tcp_segmentation},
       true},
  };
  for (const mode& m : modes) {
    run_mode(m, total);
  }
  std::printf("tcp_offload_bench: bytes per idle connection (slot) %zu\n",
              tcp_layer::idle_connection_bytes());
  return 0;
}

}  // namespace
}  // namespace dpdk_net::stack

int main(int argc, char** argv) {
  return dpdk_net::stack::run(argc, argv);
}
