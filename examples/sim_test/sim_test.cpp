// A template to copy: test YOUR client and server coroutines in a lossy simulated network.
//
// Two simulated hosts each run our stack under sim_runtime (the same Asio code that runs on a
// device runs here, on one thread, in virtual time); the link between them loses, reorders and
// duplicates frames. Everything is decided by one seed, so a failure replays exactly:
//
//   DPDK_NET_SEED=<seed> ./sim_test_example --gtest_filter=<test>      (the failure prints it)
//
// Every frame goes to a pcap (kept when the test fails; open it with tcpdump -r or Wireshark).
// Replace `server_session` / `client` with your protocol; keep the checks in the test body.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

// --- your code: a server and a client ------------------------------------------------------
// The example protocol: the client sends a 4-byte length and that many bytes; the server
// answers with the bytes reversed. Templated on the protocol, this runs on the kernel too.

template <class Protocol>
net::awaitable<void> server_session(typename Protocol::socket s) {
  for (;;) {
    std::array<unsigned char, 4> header{};
    auto [ec, n] =
        co_await net::async_read(s, net::buffer(header), net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;  // the client is done (eof) or gone
    }
    const std::uint32_t length = header[0] | (header[1] << 8U) | (header[2] << 16U) |
                                 (static_cast<std::uint32_t>(header[3]) << 24U);
    std::string body(length, '\0');
    auto [rec, rn] =
        co_await net::async_read(s, net::buffer(body), net::as_tuple(net::use_awaitable));
    if (rec) {
      co_return;
    }
    std::string reply(body.rbegin(), body.rend());
    auto [wec, wn] =
        co_await net::async_write(s, net::buffer(reply), net::as_tuple(net::use_awaitable));
    if (wec) {
      co_return;
    }
  }
}

template <class Protocol>
net::awaitable<void> server(typename Protocol::acceptor& acceptor) {
  for (;;) {
    auto [ec, s] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    net::co_spawn(s.get_executor(), server_session<Protocol>(std::move(s)), net::detached);
  }
}

struct client_result {
  unsigned round_trips = 0;
  std::string error;  ///< empty: every reply was right
  bool done = false;
};

/// rounds requests of growing size; checks each reply.
template <class Protocol>
net::awaitable<void> client(typename Protocol::endpoint server_at, unsigned rounds,
                            client_result* out) {
  typename Protocol::socket s(co_await net::this_coro::executor);
  auto [cec] = co_await s.async_connect(server_at, net::as_tuple(net::use_awaitable));
  if (cec) {
    out->error = "connect: " + cec.message();
    out->done = true;
    co_return;
  }
  for (unsigned r = 0; r < rounds; ++r) {
    const std::uint32_t length = 1000 + r * 7919;  // up to tens of kilobytes: many segments
    std::string message(4 + length, '\0');
    for (unsigned i = 0; i < 4; ++i) {
      message[i] = static_cast<char>((length >> (8 * i)) & 0xffU);
    }
    for (std::uint32_t i = 0; i < length; ++i) {
      message[4 + i] = static_cast<char>('a' + (i * 31 + r) % 26);
    }
    auto [wec, wn] =
        co_await net::async_write(s, net::buffer(message), net::as_tuple(net::use_awaitable));
    std::string reply(length, '\0');
    auto [rec, rn] =
        co_await net::async_read(s, net::buffer(reply), net::as_tuple(net::use_awaitable));
    if (wec || rec) {
      out->error = "round " + std::to_string(r) + ": " + (wec ? wec : rec).message();
      break;
    }
    if (reply != std::string(message.rbegin(), message.rend() - 4)) {
      out->error = "round " + std::to_string(r) + ": wrong reply";
      break;
    }
    ++out->round_trips;
  }
  boost::system::error_code ignored;
  s.shutdown(net::socket_base::shutdown_send, ignored);
  out->done = true;
}

// --- the harness: seed, network, pcap, repro line ------------------------------------------

std::uint64_t test_seed() {
  const char* s = std::getenv("DPDK_NET_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : 20261201;
}

stack::stack_config host_config(std::uint8_t host) {
  stack::stack_config c;
  c.address = wire::ipv4_address{0xc6120000U | host};  // 198.18.0.<host>/24
  c.prefix_length = 24;
  return c;
}

/// Prints the repro line (and where the pcap is) when the test fails.
struct repro_on_failure {
  std::uint64_t seed;
  std::string pcap;
  ~repro_on_failure() {
    if (::testing::Test::HasFailure()) {
      const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
      std::printf(
          "repro: DPDK_NET_SEED=%llu ./sim_test_example --gtest_filter=%s.%s\n"
          "pcap:  %s\n",
          static_cast<unsigned long long>(seed), info->test_suite_name(), info->name(),
          pcap.c_str());
    } else {
      std::remove(pcap.c_str());
    }
  }
};

TEST(SimTestExample, ClientAndServerSurviveALossyLink) {
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  sim::network netw(seed);
  sim::host& ch = netw.add_host("client");
  sim::host& sh = netw.add_host("server");
  sim::sim_nic& cn = netw.add_nic(ch);
  sim::sim_nic& sn = netw.add_nic(sh);
  sim::link_config lossy;
  lossy.delay = 200 * microsecond;
  lossy.loss = 0.02;     // 2% of frames lost
  lossy.reorder = 0.02;  // 2% held back (overtaken by later ones)
  lossy.duplicate = 0.01;
  netw.connect(cn, sn, lossy);
  repro_on_failure repro{seed, ::testing::TempDir() + "sim_test_" + std::to_string(seed) + ".pcap"};
  std::string error;
  ASSERT_TRUE(netw.capture(sn, repro.pcap, error)) << error;

  sim::sim_runtime client_host(ch, cn, host_config(1));
  sim::sim_runtime server_host(sh, sn, host_config(2));
  tcp::acceptor acceptor(server_host.get_executor(),
                         tcp::endpoint(net::ip::address_v4::any(), 9000));
  net::co_spawn(server_host.get_executor(), server<tcp>(acceptor), net::detached);

  client_result result;
  const unsigned rounds = 20;
  net::co_spawn(
      client_host.get_executor(),
      client<tcp>(tcp::endpoint(net::ip::make_address_v4("198.18.0.2"), 9000), rounds, &result),
      net::detached);
  ASSERT_TRUE(netw.run_until([&] { return result.done; }, 60 * second))
      << "the client did not finish in 60 simulated seconds";
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.round_trips, rounds);
  const stack::tcp_counters& t = client_host.ip().tcp().counters();
  // The link did lose frames, and TCP recovered them.
  EXPECT_GT(t.retransmits + server_host.ip().tcp().counters().retransmits, 0U);
}

}  // namespace
