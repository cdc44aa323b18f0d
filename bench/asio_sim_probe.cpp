// The Asio layer's cross-build determinism probe (pytests/test_asio_sim.py): a coroutine echo
// (client and server on dpdk_net::tcp sockets, sim_runtime on two simulated hosts) over a lossy,
// reordering, duplicating link, then the trace hash -- every frame sent and received, with its
// virtual time. The same seed must print the same line in every build (ASan -O1, -O2). No Beast
// here: it is small enough to build in every tree.
//
//   asio_sim_probe [--seed N] [--bytes N]
#include <array>
#include <cstdio>
#include <cstring>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "dpdk_net/asio/tcp.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/sim/sim_runtime.hpp"

namespace {

namespace net = boost::asio;
using namespace dpdk_net;

net::awaitable<void> echo_once(tcp::acceptor* acceptor) {
  tcp::socket s = co_await acceptor->async_accept(net::use_awaitable);
  std::array<char, 8192> buf;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    co_await net::async_write(s, net::buffer(buf.data(), n), net::use_awaitable);
  }
}

struct client_result {
  bool done = false;
  bool intact = false;
};

net::awaitable<void> client(tcp::endpoint server, std::string message, client_result* r) {
  tcp::socket s(co_await net::this_coro::executor);
  co_await s.async_connect(server, net::use_awaitable);
  co_await net::async_write(s, net::buffer(message), net::use_awaitable);
  std::string reply(message.size(), '\0');
  co_await net::async_read(s, net::buffer(reply), net::use_awaitable);
  s.shutdown(net::socket_base::shutdown_send);
  r->intact = reply == message;
  r->done = true;
}

stack::stack_config host(std::uint32_t last) {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | last};
  c.prefix_length = 24;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 1;
  std::size_t bytes = 200000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = std::stoull(argv[++i]);
    } else if (std::strcmp(argv[i], "--bytes") == 0 && i + 1 < argc) {
      bytes = std::stoull(argv[++i]);
    } else {
      std::fprintf(stderr, "asio_sim_probe: unknown argument '%s' (--seed N, --bytes N)\n",
                   argv[i]);
      return 2;
    }
  }
  sim::network netw(seed);
  sim::host& ch = netw.add_host("client");
  sim::host& sh = netw.add_host("server");
  sim::sim_nic& cn = netw.add_nic(ch);
  sim::sim_nic& sn = netw.add_nic(sh);
  sim::link_config link;
  link.delay = 200 * microsecond;
  link.loss = 0.02;
  link.reorder = 0.05;
  link.duplicate = 0.01;
  netw.connect(cn, sn, link, link);
  sim::sim_runtime client_rt(ch, cn, host(1));
  sim::sim_runtime server_rt(sh, sn, host(2));
  tcp::acceptor acceptor(server_rt.get_executor(), tcp::endpoint(net::ip::address_v4::any(), 7));
  net::co_spawn(server_rt.get_executor(), echo_once(&acceptor), net::detached);
  std::string message(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) {
    message[i] = static_cast<char>((i * 131 + seed) & 0xffU);
  }
  client_result r;
  net::co_spawn(client_rt.get_executor(),
                client(tcp::endpoint(net::ip::make_address_v4("198.18.0.2"), 7), message, &r),
                net::detached);
  netw.run_until([&] { return r.done; }, 120 * second);
  std::printf("seed %llu: %s, %zu bytes, finished at %llu ns, trace %016llx\n",
              static_cast<unsigned long long>(seed),
              r.done ? (r.intact ? "intact" : "CORRUPT") : "NOT FINISHED", bytes,
              static_cast<unsigned long long>(netw.now()),
              static_cast<unsigned long long>(netw.trace_hash()));
  return r.done && r.intact ? 0 : 1;
}
