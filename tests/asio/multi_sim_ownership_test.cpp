// The multi-worker runtime in the simulator: flow ownership beyond TCP data (ARP, ICMP errors,
// UDP, fragments), 10,000 connects from two workers, both accept models, TIME-WAIT.
#include "multi_sim_common.hpp"

namespace dpdk_net {
namespace {
namespace multi_sim_ownership_test {

using namespace multi_testing;

TEST(MultiSimOwnership, EveryWorkerResolvesArpAtOnce) {
  // Each client worker's first connect needs ARP; the reply lands on one worker (the NIC puts ARP
  // on queue 0) and must reach the one that asked, or the connect waits for retries that land on
  // queue 0 again and fails.
  multi_pair p(7201, node_options{4, false, false}, node_options{1, false, false});
  tcp::acceptor a(p.server->get_executor(0), tcp::endpoint(net::ip::address_v4::any(), 7));
  tally st;
  net::co_spawn(p.server->get_executor(0), accept_loop(&a, 0, &st), net::detached);
  tally ct;
  for (std::size_t k = 0; k < 4; ++k) {
    net::co_spawn(p.client->get_executor(k),
                  echo_client(p.client->get_executor(k), k, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(k), 100, &ct),
                  net::detached);
  }
  const time_ns start = p.netw.now();
  ASSERT_TRUE(p.run([&] { return ct.clients_done == 4; }, 5 * second)) << p.trace();
  EXPECT_EQ(ct.clients_ok, 4U) << (ct.errors.empty() ? "" : ct.errors[0]);
  // Well under the ARP retry interval (1 s): every worker resolved from the first reply.
  EXPECT_LT(p.netw.now() - start, 200 * millisecond) << p.trace();
  EXPECT_GE(sum(*p.client).arp_copies, 3U);
}

// An ICMP frag-needed from the peer, quoting a UDP datagram we sent from port `local` to
// `remote_port`: built by hand and put on the link from the client's NIC.
packet frag_needed(sim::sim_nic& from, mac_address to_mac, std::uint16_t local,
                   std::uint16_t remote_port, std::uint16_t mtu) {
  std::array<std::byte, 28> quote{};
  wire::ipv4_header inner;
  inner.total_length = 1400;
  inner.dont_fragment = true;
  inner.protocol = 17;
  inner.src = wire::ipv4_address{node_ip(2).to_uint()};
  inner.dst = wire::ipv4_address{node_ip(1).to_uint()};
  wire::write_ipv4(std::span(quote).first(20), inner);
  wire::store16(quote.data() + 20, local);
  wire::store16(quote.data() + 22, remote_port);
  wire::store16(quote.data() + 24, 1380);
  packet p = from.tx_pool(0).alloc();
  std::byte* d = p.append(14 + 20 + 8 + quote.size());
  wire::write_ethernet(std::span(d, 14),
                       wire::ethernet_header{to_mac, from.info().mac, 0x0800, false, 0});
  wire::ipv4_header outer;
  outer.total_length = 20 + 8 + quote.size();
  outer.protocol = 1;
  outer.src = inner.dst;
  outer.dst = inner.src;
  wire::write_ipv4(std::span(d + 14, 20), outer);
  wire::icmp_header h;
  h.type = 3;
  h.code = 4;
  h.rest = mtu;
  wire::write_icmp(std::span(d + 34, 8 + quote.size()), h, quote);
  return p;
}

TEST(MultiSimOwnership, FragNeededReachesTheOwningWorker) {
  multi_pair p(7301, node_options{1, false, false}, node_options{2, false, false});
  // A UDP port bound on both server workers: datagrams (and errors about them) go by hash.
  std::vector<std::unique_ptr<udp::socket>> socks;
  for (std::size_t k = 0; k < 2; ++k) {
    socks.push_back(std::make_unique<udp::socket>(p.server->get_executor(k)));
    socks.back()->open();
    socks.back()->bind(udp::endpoint(net::ip::address_v4::any(), 5000));
  }
  ASSERT_EQ(p.server->flows().port_mask(17, 5000), 3U);
  // The server must know the client's MAC for nothing here; we address it directly.
  std::vector<std::uint64_t> lowered_before(2, 0);
  int per_owner[2] = {0, 0};
  for (std::uint16_t rport = 6000; rport < 6016; ++rport) {
    const std::uint16_t owner =
        p.server->flows().flow_owner(17, wire::ipv4_address{node_ip(1).to_uint()}, rport, 5000);
    for (std::size_t k = 0; k < 2; ++k) {
      lowered_before[k] = p.server->worker(k).ip().counters().pmtu_lowered;
    }
    packet f = frag_needed(p.cn, p.sn.info().mac, 5000, rport,
                           static_cast<std::uint16_t>(1400 - rport % 16 * 8));
    std::array<packet, 1> one{std::move(f)};
    ASSERT_EQ(p.cn.tx_burst(0, one), 1U);
    p.run([] { return false; }, 10 * millisecond);
    for (std::size_t k = 0; k < 2; ++k) {
      const std::uint64_t now = p.server->worker(k).ip().counters().pmtu_lowered;
      EXPECT_EQ(now - lowered_before[k], k == owner ? 1U : 0U)
          << "remote port " << rport << " owner " << owner << " " << p.trace();
    }
    ++per_owner[owner];
  }
  EXPECT_GT(per_owner[0], 0);  // both workers were the owner of some
  EXPECT_GT(per_owner[1], 0);
}

constexpr std::size_t total = 10000;

TEST(MultiSimOwnership, TwoWorkerClientOpensTenThousandConnectionsToOneServerPort) {
  // One destination ip:port, 10,000 connections from a 2-worker client: each worker picks ports
  // whose hash lands on it, so the workers never collide on a 4-tuple, and no frame is handed
  // over (hardware steering).
  stack::stack_config big = node_config(1);
  big.tcp.sockets = 12000;
  multi_pair p(7401, node_options{2, false, false}, node_options{1, false, false}, big);
  tcp::acceptor a(p.server->get_executor(0), tcp::endpoint(net::ip::address_v4::any(), 80));
  std::vector<std::unique_ptr<tcp::socket>> served;
  std::function<void()> next;
  struct accept_more {
    tcp::acceptor* a;
    std::vector<std::unique_ptr<tcp::socket>>* served;
    void operator()(error_code ec, tcp::socket s) const {
      if (ec) {
        return;
      }
      served->push_back(std::make_unique<tcp::socket>(std::move(s)));
      a->async_accept(*this);
    }
  };
  a.async_accept(accept_more{&a, &served});
  std::vector<std::unique_ptr<tcp::socket>> conns;
  std::size_t connected = 0;
  std::size_t failed = 0;
  // 256 connects in flight; each completion starts the next (as a client pool would).
  struct connector {
    multi_pair* p;
    std::vector<std::unique_ptr<tcp::socket>>* conns;
    std::size_t* ok;
    std::size_t* bad;
    void start() const {
      if (conns->size() == total) {
        return;
      }
      const std::size_t i = conns->size();
      conns->push_back(std::make_unique<tcp::socket>(p->client->get_executor(i % 2)));
      conns->back()->async_connect(tcp::endpoint(node_ip(2), 80), *this);
    }
    void operator()(error_code ec) const {
      ++(ec ? *bad : *ok);
      start();
    }
  };
  const connector c{&p, &conns, &connected, &failed};
  for (std::size_t i = 0; i < 256; ++i) {
    c.start();
  }
  ASSERT_TRUE(
      p.run([&] { return connected + failed == total && served.size() == total; }, 60 * second))
      << p.trace() << ": " << connected << " connected, " << failed << " failed, " << served.size()
      << " accepted";
  EXPECT_EQ(failed, 0U);
  std::vector<std::uint8_t> port_worker(65536, 0xff);
  for (std::size_t i = 0; i < total; ++i) {
    const std::uint16_t port = conns[i]->local_endpoint().port();
    const std::size_t worker = i % 2;
    ASSERT_EQ(port_worker[port], 0xff) << "port " << port << " used twice";
    port_worker[port] = static_cast<std::uint8_t>(worker);
    EXPECT_EQ(p.client->flows().hash_owner(wire::ipv4_address{node_ip(2).to_uint()}, 80, port),
              worker);
  }
  EXPECT_EQ(sum(*p.client).handed_out, 0U);
  EXPECT_EQ(
      p.client->worker(0).ip().tcp().connections() + p.client->worker(1).ip().tcp().connections(),
      total);
}

TEST(MultiSimAccept, OneAcceptorHandsOutSocketsBoundToTheirOwners) {
  multi_pair p(7501, node_options{1, false, false}, node_options{3, false, false});
  multi_acceptor acc(*p.server, tcp::endpoint(net::ip::address_v4::any(), 7));
  EXPECT_EQ(acc.workers(), 3U);
  struct accept_loop_state {
    multi_acceptor* acc;
    sim::sim_multi_runtime* rt;
    tally* t;
    std::size_t wrong_executor = 0;
  };
  tally st;
  accept_loop_state state{&acc, &*p.server, &st};
  struct on_accept {
    accept_loop_state* s;
    void operator()(error_code ec, tcp::socket sock) const {
      if (ec) {
        return;
      }
      // Which worker owns it: the one whose executor the socket has.
      std::size_t worker = 99;
      for (std::size_t k = 0; k < s->rt->size(); ++k) {
        if (sock.get_executor() == net::any_io_executor(s->rt->get_executor(k))) {
          worker = k;
        }
      }
      const auto r = sock.remote_endpoint();
      s->t->add(tally::flow{worker, r.address().to_v4().to_uint(), r.port(),
                            sock.local_endpoint().port(), true});
      net::any_io_executor ex = sock.get_executor();
      net::co_spawn(ex, echo_session(std::move(sock), s->t), net::detached);
      s->acc->async_accept(*this);
    }
  };
  // The accept loop runs on worker 0; the sockets belong to whichever worker owns them.
  acc.async_accept(net::bind_executor(p.server->get_executor(0), on_accept{&state}));
  tally ct;
  constexpr std::size_t n = 24;
  for (std::size_t i = 0; i < n; ++i) {
    net::co_spawn(p.client->get_executor(0),
                  echo_client(p.client->get_executor(0), 0, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(i), 3000, &ct),
                  net::detached);
  }
  ASSERT_TRUE(p.run([&] { return ct.clients_done == n; }, 10 * second)) << p.trace();
  EXPECT_EQ(ct.clients_ok, n) << (ct.errors.empty() ? "" : ct.errors[0]);
  expect_owned(p.server->flows(), st, p.trace());
  const std::vector<std::uint64_t> per = acc.accepted();
  ASSERT_EQ(per.size(), 3U);
  std::cout << "accepted per worker: " << per[0] << " " << per[1] << " " << per[2] << "\n";
  EXPECT_EQ(per[0] + per[1] + per[2], n);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_GT(per[k], 0U) << "worker " << k;
  }
  acc.close();
  p.run([] { return false; }, 10 * millisecond);
}

TEST(MultiSimAccept, LoneListenerOnOneWorkerGetsEveryConnection) {
  // A plain acceptor on worker 1 only: its port is steered to worker 1 whatever the hash, so a
  // naive single-acceptor app works (frames landing elsewhere are handed over).
  multi_pair p(7601, node_options{1, false, false}, node_options{2, false, false});
  tcp::acceptor a(p.server->get_executor(1), tcp::endpoint(net::ip::address_v4::any(), 7));
  EXPECT_EQ(p.server->flows().port_mask(6, 7), 2U);
  tally st;
  net::co_spawn(p.server->get_executor(1), accept_loop(&a, 1, &st), net::detached);
  tally ct;
  for (std::size_t i = 0; i < 12; ++i) {
    net::co_spawn(p.client->get_executor(0),
                  echo_client(p.client->get_executor(0), 0, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(i), 5000, &ct),
                  net::detached);
  }
  ASSERT_TRUE(p.run([&] { return ct.clients_done == 12; }, 10 * second)) << p.trace();
  EXPECT_EQ(ct.clients_ok, 12U) << (ct.errors.empty() ? "" : ct.errors[0]);
  EXPECT_GT(sum(*p.server).handed_out, 0U);  // worker 0 received some and handed them over
  a.close();
  p.run([] { return false; }, 100 * millisecond);
  EXPECT_EQ(p.server->flows().port_mask(6, 7), 0U);  // released with its last connection
}

// A session that echoes one message, then closes first (the server side goes to TIME-WAIT).
net::awaitable<void> echo_once_then_close(tcp::socket s) {
  std::array<char, 64> buf{};
  auto [ec, n] = co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
  if (!ec) {
    co_await net::async_write(s, net::buffer(buf.data(), n), net::as_tuple(net::use_awaitable));
  }
}

net::awaitable<void> accept_close_loop(tcp::acceptor* a) {
  for (;;) {
    auto [ec, s] = co_await a->async_accept(net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    net::co_spawn(s.get_executor(), echo_once_then_close(std::move(s)), net::detached);
  }
}

net::awaitable<void> hello_until_eof(net::any_io_executor ex, tcp::endpoint peer, int* done) {
  tcp::socket s(ex);
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (!cec) {
    co_await net::async_write(s, net::buffer("hello", 5), net::as_tuple(net::use_awaitable));
    std::array<char, 64> buf{};
    for (;;) {  // the echo, then end of stream
      auto [ec, n] =
          co_await s.async_read_some(net::buffer(buf), net::as_tuple(net::use_awaitable));
      if (ec) {
        break;
      }
    }
  }
  ++*done;
}

TEST(MultiSimAccept, LoneListenersPortStaysSteeredWhileItsTuplesWaitInTimeWait) {
  multi_pair p(7651, node_options{1, false, false}, node_options{2, false, false});
  auto a = std::make_unique<tcp::acceptor>(p.server->get_executor(1),
                                           tcp::endpoint(net::ip::address_v4::any(), 7));
  net::co_spawn(p.server->get_executor(1), accept_close_loop(a.get()), net::detached);
  int done = 0;
  for (int i = 0; i < 8; ++i) {
    net::co_spawn(p.client->get_executor(0),
                  hello_until_eof(p.client->get_executor(0), tcp::endpoint(node_ip(2), 7), &done),
                  net::detached);
  }
  ASSERT_TRUE(p.run([&] { return done == 8; }, 5 * second)) << p.trace();
  a.reset();  // the listener closes; its connections closed first and wait in TIME-WAIT
  p.run([] { return false; }, 1 * second);
  EXPECT_GT(p.server->worker(1).ip().tcp().counters().time_wait_entered, 0U);
  EXPECT_EQ(p.server->flows().port_mask(6, 7), 2U) << "TIME-WAIT tuples keep the port steered";
  p.run([] { return false; }, 61 * second);  // 2 MSL later the records are gone, and the port
  EXPECT_EQ(p.server->flows().port_mask(6, 7), 0U);
}

TEST(MultiSimUdp, EphemeralSocketGetsItsRepliesAndFragmentsReachTheOwner) {
  // A UDP echo on both server workers (port 5000); a client on 2 workers sends from bind(0)
  // sockets (port owned by their worker), some datagrams large enough to be fragmented: the
  // server reassembles where fragments land and hands the datagram to its flow's owner.
  multi_pair p(7701, node_options{2, false, false}, node_options{2, false, false});
  struct echo_state {
    udp::socket sock;
    std::array<char, 9000> buf{};
    udp::endpoint from;
    explicit echo_state(const net::any_io_executor& ex) : sock(ex) {}
  };
  std::vector<std::unique_ptr<echo_state>> echo;
  struct echo_one {
    echo_state* e;
    void operator()(error_code ec, std::size_t n) const {
      if (ec) {
        return;
      }
      e->sock.async_send_to(net::buffer(e->buf.data(), n), e->from, [](error_code, std::size_t) {});
      e->sock.async_receive_from(net::buffer(e->buf), e->from, *this);
    }
  };
  for (std::size_t k = 0; k < 2; ++k) {
    echo.push_back(std::make_unique<echo_state>(p.server->get_executor(k)));
    echo.back()->sock.open();
    echo.back()->sock.bind(udp::endpoint(net::ip::address_v4::any(), 5000));
    echo.back()->sock.async_receive_from(net::buffer(echo.back()->buf), echo.back()->from,
                                         echo_one{echo.back().get()});
  }
  struct client_state {
    udp::socket sock;
    std::vector<char> out, in;
    udp::endpoint from;
    bool done = false;
    bool ok = false;
    explicit client_state(const net::any_io_executor& ex) : sock(ex) {}
  };
  std::vector<std::unique_ptr<client_state>> clients;
  struct on_reply {
    client_state* c;
    void operator()(error_code ec, std::size_t n) const {
      c->done = true;
      c->ok = !ec && n == c->out.size() && std::equal(c->out.begin(), c->out.end(), c->in.begin());
    }
  };
  for (std::size_t i = 0; i < 16; ++i) {
    auto c = std::make_unique<client_state>(p.client->get_executor(i % 2));
    c->sock.open();                                    // an ephemeral port, owned by this worker
    const std::size_t size = i % 4 == 0 ? 4000 : 200;  // 4000: three fragments each way
    c->out.resize(size);
    c->in.resize(size + 16);
    for (std::size_t j = 0; j < size; ++j) {
      c->out[j] = pattern(static_cast<std::uint32_t>(i), j);
    }
    c->sock.async_receive_from(net::buffer(c->in), c->from, on_reply{c.get()});
    c->sock.async_send_to(net::buffer(c->out), udp::endpoint(node_ip(2), 5000),
                          [](error_code, std::size_t) {});
    clients.push_back(std::move(c));
  }
  ASSERT_TRUE(p.run(
      [&] {
        return std::all_of(clients.begin(), clients.end(), [](const auto& c) { return c->done; });
      },
      5 * second))
      << p.trace() << [&] {
           std::string s;
           for (std::size_t i = 0; i < clients.size(); ++i) {
             s += " " + std::to_string(i) + (clients[i]->done ? "+" : "-");
           }
           for (std::size_t k = 0; k < 2; ++k) {
             const auto c = p.server->counters(k);
             const auto sc = p.server->worker(k).ip().counters();
             s += " | server w" + std::to_string(k) + " out " + std::to_string(c.handed_out) +
                  " in " + std::to_string(c.handed_in) + " dg " + std::to_string(c.datagrams_out) +
                  " udp_in " + std::to_string(sc.udp_in) + " deliv " +
                  std::to_string(sc.udp_delivered) + " noport " + std::to_string(sc.udp_no_port);
             const auto cc = p.client->worker(k).ip().counters();
             const auto c2 = p.client->counters(k);
             s += " | client w" + std::to_string(k) + " out " + std::to_string(c2.handed_out) +
                  " in " + std::to_string(c2.handed_in) + " udp_in " + std::to_string(cc.udp_in) +
                  " deliv " + std::to_string(cc.udp_delivered) + " noport " +
                  std::to_string(cc.udp_no_port) + " sent " + std::to_string(cc.udp_sent);
           }
           return s;
         }();
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_TRUE(clients[i]->ok) << "client " << i << " " << p.trace();
  }
  // Replies to the clients' ephemeral ports are steered by port (a UDP port bound on one worker).
  for (const auto& c : clients) {
    EXPECT_TRUE(
        std::has_single_bit(p.client->flows().port_mask(17, c->sock.local_endpoint().port())));
  }
  // Some reassembled datagram was handed to another worker (the fragments' hash is by address
  // only, so they land on one queue whatever the ports).
  EXPECT_GT(sum(*p.server).datagrams_out + sum(*p.client).datagrams_out, 0U) << p.trace();
}

}  // namespace multi_sim_ownership_test
}  // namespace
}  // namespace dpdk_net
