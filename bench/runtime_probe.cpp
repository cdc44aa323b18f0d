// The runtime's cost gate program (pytests/test_runtime_gates.py): two one-worker runtimes over an
// in-memory (poll-mode) device pair, stepped alternately on one thread, a coroutine client and
// echo server doing 64-byte request/response. After a warm-up, the measured window is bracketed
// by two getppid() calls (markers strace can find); inside it the program counts heap allocations
// and prints, as JSON, what happened: iterations, round trips, allocations, events, sockets
// visited. The pytest runs it under strace and counts the syscalls between the markers.
//
//   runtime_probe [--iterations N] [--foreign-timer] [--workers N] [--capture-off|-on FILE]
//     --foreign-timer  a plain boost::asio::steady_timer waits on the server (Asio's reactor
//                      exists): its io_context is polled at most once per millisecond.
//     --workers N      two multi_runtimes of N workers each over a ring_device pair that lands
//                      every frame on queue 0 (software steering: most frames are handed to
//                      their owner over the workers' rings); a client per client worker, an
//                      accept loop per server worker; every worker stepped in turn.
//     --capture-off FILE  both devices wrapped in a capture_device whose capture (FILE, opened)
//                      is switched off: what a disabled capture costs per packet (nothing).
//     --capture-on FILE   the same, switched on (the control: frames are written).
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "counting_allocator.hpp"
#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/frame_capture.hpp"
#include "dpdk_net/memory_device.hpp"
#include "dpdk_net/os.hpp"
#include "dpdk_net/ring_device.hpp"
#include "dpdk_net/runtime/multi_runtime.hpp"
#include "dpdk_net/runtime/runtime.hpp"

namespace {

namespace net = boost::asio;
using namespace dpdk_net;

constexpr std::size_t message = 64;

net::awaitable<void> echo(tcp::socket s) {
  std::array<char, message> buf;
  for (;;) {
    co_await net::async_read(s, net::buffer(buf), net::use_awaitable);
    co_await net::async_write(s, net::buffer(buf), net::use_awaitable);
  }
}

net::awaitable<void> serve(tcp::acceptor* a) {
  tcp::socket s = co_await a->async_accept(net::use_awaitable);
  co_await echo(std::move(s));
}

net::awaitable<void> serve_all(tcp::acceptor* a) {
  for (;;) {
    tcp::socket s = co_await a->async_accept(net::use_awaitable);
    net::co_spawn(s.get_executor(), echo(std::move(s)), net::detached);
  }
}

net::awaitable<void> client(tcp::endpoint server, std::uint64_t* round_trips) {
  tcp::socket s(co_await net::this_coro::executor);
  co_await s.async_connect(server, net::use_awaitable);
  std::array<char, message> buf{};
  for (;;) {
    co_await net::async_write(s, net::buffer(buf), net::use_awaitable);
    co_await net::async_read(s, net::buffer(buf), net::use_awaitable);
    ++*round_trips;
  }
}

stack::stack_config config(std::uint32_t last) {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | last};
  c.prefix_length = 24;
  return c;
}

/// The multi-worker probe: prints the same JSON plus the hand-over counters.
int run_multi(std::uint16_t workers, std::uint64_t iterations) {
  ring_link_config lc;
  lc.queues = workers;
  lc.steering = ring_steering::queue0;
  lc.pool_size = 2048;
  ring_link link(lc);
  multi_runtime_options o;
  o.workers = workers;
  multi_runtime server(link.a(), config(2), stack::stack_secret{1, 2}, o);
  multi_runtime client_rt(link.b(), config(1), stack::stack_secret{3, 4}, o);
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::uint64_t round_trips = 0;
  for (std::size_t k = 0; k < workers; ++k) {
    acceptors.push_back(std::make_unique<tcp::acceptor>(
        server.get_executor(k), tcp::endpoint(net::ip::address_v4::any(), 7)));
    net::co_spawn(server.get_executor(k), serve_all(acceptors.back().get()), net::detached);
    net::co_spawn(client_rt.get_executor(k),
                  client(tcp::endpoint(net::ip::make_address_v4("198.18.0.2"), 7), &round_trips),
                  net::detached);
  }
  auto handed = [&] {
    std::uint64_t n = 0;
    for (const multi_runtime* rt : {&server, &client_rt}) {
      for (const worker_stats& w : rt->stats()) {
        n += w.steering.handed_out;
      }
    }
    return n;
  };
  for (int i = 0; i < 20000; ++i) {
    server.poll_once();
    client_rt.poll_once();
  }
  const std::uint64_t trips_before = round_trips;
  const std::uint64_t handed_before = handed();
  const std::uint64_t allocations_before = dpdk_net::test::allocation_count();
  const time_ns t0 = monotonic_now();
  (void)getppid();  // marker: the window starts
  for (std::uint64_t i = 0; i < iterations; ++i) {
    server.poll_once();
    client_rt.poll_once();
  }
  (void)getppid();  // marker: the window ends
  const time_ns t1 = monotonic_now();
  const std::uint64_t allocations = dpdk_net::test::allocation_count() - allocations_before;
  std::printf(
      "{\"iterations\": %llu, \"workers\": %u, \"round_trips\": %llu, \"allocations\": %llu, "
      "\"seconds\": %.6f, \"handed_over\": %llu}\n",
      static_cast<unsigned long long>(iterations), static_cast<unsigned>(workers),
      static_cast<unsigned long long>(round_trips - trips_before),
      static_cast<unsigned long long>(allocations), static_cast<double>(t1 - t0) / 1e9,
      static_cast<unsigned long long>(handed() - handed_before));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t iterations = 200000;
  bool foreign_timer = false;
  std::uint16_t workers = 1;
  const char* capture_path = nullptr;
  bool capture_on = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
      iterations = std::stoull(argv[++i]);
    } else if (std::strcmp(argv[i], "--foreign-timer") == 0) {
      foreign_timer = true;
    } else if (std::strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
      workers = static_cast<std::uint16_t>(std::stoul(argv[++i]));
    } else if ((std::strcmp(argv[i], "--capture-off") == 0 ||
                std::strcmp(argv[i], "--capture-on") == 0) &&
               i + 1 < argc) {
      capture_on = std::strcmp(argv[i], "--capture-on") == 0;
      capture_path = argv[++i];
    } else {
      std::fprintf(stderr, "runtime_probe: unknown argument '%s' (see the top of the source)\n",
                   argv[i]);
      return 2;
    }
  }
  if (workers > 1) {
    return run_multi(workers, iterations);
  }
  memory_link link;
  device* dev_a = &link.a();
  device* dev_b = &link.b();
  frame_capture capture;
  std::optional<capture_device> capture_a;
  std::optional<capture_device> capture_b;
  if (capture_path != nullptr) {
    std::string error;
    capture_options options;
    options.path = capture_path;
    options.enabled = capture_on;
    if (!capture.open(options, capture_device::interfaces_for(dev_a->info(), options.snaplen),
                      error)) {
      std::fprintf(stderr, "runtime_probe: %s\n", error.c_str());
      return 2;
    }
    dev_a = &capture_a.emplace(link.a(), capture);
    dev_b = &capture_b.emplace(link.b(), capture);
  }
  const stack::stack_secret secret{1, 2};
  runtime server(*dev_a, config(2), secret, {});
  runtime client_rt(*dev_b, config(1), stack::stack_secret{3, 4}, {});
  tcp::acceptor acceptor(server.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 7));
  net::co_spawn(server.get_executor(), serve(&acceptor), net::detached);
  std::uint64_t round_trips = 0;
  net::co_spawn(client_rt.get_executor(),
                client(tcp::endpoint(net::ip::make_address_v4("198.18.0.2"), 7), &round_trips),
                net::detached);
  std::optional<net::steady_timer> plain;
  if (foreign_timer) {
    plain.emplace(server.get_executor(), std::chrono::seconds(60));
    plain->async_wait([](const boost::system::error_code&) {});
  }
  // Warm-up: connection set up, buffers and the recycling caches filled.
  for (int i = 0; i < 20000; ++i) {
    server.poll_once();
    client_rt.poll_once();
  }
  const std::uint64_t trips_before = round_trips;
  const auto ctx_before = server.context().counters();
  const std::uint64_t allocations_before = dpdk_net::test::allocation_count();
  const time_ns t0 = monotonic_now();
  (void)getppid();  // marker: the window starts
  for (std::uint64_t i = 0; i < iterations; ++i) {
    server.poll_once();
    client_rt.poll_once();
  }
  (void)getppid();  // marker: the window ends
  const time_ns t1 = monotonic_now();
  const std::uint64_t allocations = dpdk_net::test::allocation_count() - allocations_before;
  const auto ctx_after = server.context().counters();
  std::printf(
      "{\"iterations\": %llu, \"round_trips\": %llu, \"allocations\": %llu, \"seconds\": %.6f, "
      "\"events\": %llu, \"sockets_visited\": %llu, \"handlers_run\": %llu, "
      "\"foreign_polls\": %llu, \"foreign_timer\": %s, \"captured_frames\": %llu}\n",
      static_cast<unsigned long long>(iterations),
      static_cast<unsigned long long>(round_trips - trips_before),
      static_cast<unsigned long long>(allocations), static_cast<double>(t1 - t0) / 1e9,
      static_cast<unsigned long long>(ctx_after.events - ctx_before.events),
      static_cast<unsigned long long>(ctx_after.sockets_visited - ctx_before.sockets_visited),
      static_cast<unsigned long long>(ctx_after.handlers_run - ctx_before.handlers_run),
      static_cast<unsigned long long>(ctx_after.foreign_polls - ctx_before.foreign_polls),
      foreign_timer ? "true" : "false",
      static_cast<unsigned long long>(capture.stats().frames_written));
  if (plain) {
    plain->cancel();
  }
  return 0;
}
