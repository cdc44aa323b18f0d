// Two stacks wired back to back in one process (no simulator): the quickest end-to-end check of
// the TCP engine — handshake, bulk transfer both ways with byte-exact content, close, TIME-WAIT,
// refused connects, and the costs that do not depend on time (one demux lookup per segment,
// idle connections never visited).
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <vector>

#include "../counting_allocator.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "tcp_duo.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_pair_test {

using wire::ipv4_address;

const ipv4_address a_ip = ipv4_address::from_octets(198, 18, 0, 1);
const ipv4_address b_ip = ipv4_address::from_octets(198, 18, 0, 2);

stack_config pair_config(ipv4_address ip, std::uint8_t mac_last) {
  stack_config c;
  c.mac = mac_address{{0x02, 0, 0, 0, 0, mac_last}};
  c.address = ip;
  return c;
}

using testing::duo_byte;  // a deterministic byte stream: byte i of stream `seed`

class TcpPair : public ::testing::Test {
 protected:
  /// Moves frames both ways until nothing is left, advancing the clock to the next deadline
  /// when the wire is idle (at most until `limit`). `drop` may discard frames from a.
  void run(time_ns limit, const std::function<bool()>& done = nullptr) {
    std::array<packet, 32> burst{};
    while (now_ <= limit) {
      bool moved = false;
      for (int dir = 0; dir < 2; ++dir) {
        stack& from = dir == 0 ? a_ : b_;
        stack& to = dir == 0 ? b_ : a_;
        std::size_t n = 0;
        while ((n = from.drain_tx(burst, now_)) != 0) {
          for (std::size_t i = 0; i < n; ++i) {
            ++frames_;
            if (dir == 0 && drop_a_ && drop_a_(frames_)) {
              burst[i].reset();
              continue;
            }
            to.receive(std::move(burst[i]), now_);
          }
          moved = true;
        }
      }
      if (app_) {
        app_();
      }
      if (done && done()) {
        return;
      }
      if (!moved && a_.tx_pending() == 0 && b_.tx_pending() == 0) {
        const time_ns next = std::min(a_.next_deadline(), b_.next_deadline());
        if (next == UINT64_MAX || next > limit) {
          now_ = limit + 1;
          return;
        }
        now_ = std::max(now_ + 1, next);
        a_.advance(now_);
        b_.advance(now_);
      }
    }
  }

  packet_pool pool_a_{packet_pool_config{"a", 4096}};
  packet_pool pool_b_{packet_pool_config{"b", 4096}};
  stack a_{pair_config(a_ip, 1), pool_a_, stack_secret{1, 2}};
  stack b_{pair_config(b_ip, 2), pool_b_, stack_secret{3, 4}};
  time_ns now_ = 0;
  std::uint64_t frames_ = 0;
  std::function<bool(std::uint64_t)> drop_a_;
  std::function<void()> app_;

  /// b listens on 80, a connects to it.
  void open_pair(std::uint32_t backlog = 16) {
    ASSERT_FALSE(b_.tcp().open(listener_));
    ASSERT_FALSE(b_.tcp().bind(listener_, 80));
    ASSERT_FALSE(b_.tcp().listen(listener_, backlog));
    ASSERT_FALSE(a_.tcp().open(client_));
    ASSERT_FALSE(a_.tcp().connect(client_, tcp_endpoint{b_ip, 80}, now_));
  }
  /// Drains both stacks' events and accepts b's connection once it is there.
  void poll_and_accept() {
    std::array<socket_event, 16> ev{};
    b_.poll_events(ev);
    a_.poll_events(ev);
    if (server_ == tcp_layer::invalid_socket) {
      (void)b_.tcp().accept(listener_, server_);
    }
  }

  tcp_layer::socket_id listener_ = 0, client_ = 0, server_ = tcp_layer::invalid_socket;
};

/// One direction of a checked byte stream (duo_byte(seed, i) is byte i).
struct checked_stream {
  checked_stream(std::uint64_t stream_seed, std::size_t bytes) : seed(stream_seed), total(bytes) {}
  std::uint64_t seed = 0;
  std::size_t total = 0;
  std::size_t sent = 0, got = 0;
  bool eof = false;
  std::optional<std::size_t> wrong;  // the first byte that arrived wrong

  /// Sends what the buffer takes; shut down for sending after the last byte when `finish`.
  void send(tcp_layer& t, tcp_layer::socket_id id, std::vector<std::byte>& buf, time_ns now,
            bool finish = true) {
    while (sent < total) {
      const std::size_t n = std::min(buf.size(), total - sent);
      for (std::size_t i = 0; i < n; ++i) {
        buf[i] = duo_byte(seed, sent + i);
      }
      const auto r = t.send(id, std::span(buf).first(n));
      if (r.bytes == 0) {
        return;
      }
      sent += r.bytes;
      if (sent == total && finish) {
        EXPECT_FALSE(t.shutdown(id, shutdown_type::send, now));
      }
    }
  }
  /// Receives and checks everything available.
  void receive(tcp_layer& t, tcp_layer::socket_id id, std::vector<std::byte>& buf) {
    while (id != tcp_layer::invalid_socket) {
      const auto r = t.receive(id, buf);
      if (r.bytes == 0) {
        eof = eof || r.error == make_error_code(tcp_errc::end_of_stream);
        return;
      }
      for (std::size_t i = 0; i < r.bytes && !wrong; ++i) {
        if (buf[i] != duo_byte(seed, got + i)) {
          wrong = got + i;
        }
      }
      got += r.bytes;
    }
  }
};

TEST_F(TcpPair, HandshakeTransferCloseBothWays) {
  open_pair();
  constexpr std::size_t total = 4 << 20;
  checked_stream up{7, total}, down{9, total / 2};
  std::vector<std::byte> buf(64 * 1024);
  app_ = [&] {
    poll_and_accept();
    up.send(a_.tcp(), client_, buf, now_);
    up.receive(b_.tcp(), server_, buf);
    if (server_ != tcp_layer::invalid_socket) {
      down.send(b_.tcp(), server_, buf, now_);
    }
    down.receive(a_.tcp(), client_, buf);
  };
  run(60 * second, [&] { return up.eof && down.eof; });
  EXPECT_FALSE(up.wrong) << "a->b byte " << *up.wrong;
  EXPECT_FALSE(down.wrong) << "b->a byte " << *down.wrong;
  EXPECT_EQ(up.got, total);
  EXPECT_EQ(down.got, total / 2);
  // Each side held at most one send and one receive ring of 256 KiB (the defaults), and holds
  // none now that everything is acknowledged and read (drained rings go back to the cache).
  EXPECT_EQ(a_.counters().tcp.buffer_peak, 2U * 256 * 1024);
  EXPECT_EQ(b_.counters().tcp.buffer_peak, 2U * 256 * 1024);
  EXPECT_EQ(a_.counters().tcp.buffer_bytes + b_.counters().tcp.buffer_bytes, 0U);
  EXPECT_TRUE(up.eof);
  EXPECT_TRUE(down.eof);
  const auto cb = b_.counters().tcp;
  const auto ca = a_.counters().tcp;
  EXPECT_EQ(ca.retransmits + cb.retransmits, 0U);
  EXPECT_EQ(ca.out_of_order + cb.out_of_order, 0U) << "nothing was reordered or lost";
  EXPECT_EQ(cb.demux_lookups, cb.segments_in);
  EXPECT_EQ(ca.demux_lookups, ca.segments_in);
  // Delayed ACKs: about one ACK per two full segments.
  EXPECT_LT(cb.segments_out, cb.segments_in + total / 2 / 1400);
  ASSERT_FALSE(a_.tcp().close(client_, now_));
  ASSERT_FALSE(b_.tcp().close(server_, now_));
  run(now_ + 5 * second);
  // The side that sent FIN first (a shut down first) holds TIME-WAIT as a record.
  EXPECT_EQ(a_.tcp().time_wait_count() + b_.tcp().time_wait_count(), 1U);
  EXPECT_EQ(a_.tcp().connections(), 0U);
  EXPECT_EQ(b_.tcp().connections(), 0U);
  run(now_ + 61 * second);
  EXPECT_EQ(a_.tcp().time_wait_count() + b_.tcp().time_wait_count(), 0U);
  // What TCP held in memory went back with the connections.
  EXPECT_EQ(a_.counters().tcp.buffer_bytes + b_.counters().tcp.buffer_bytes, 0U);
}

TEST_F(TcpPair, ConnectToAClosedPortIsRefused) {
  tcp_layer::socket_id c = 0;
  ASSERT_FALSE(a_.tcp().open(c));
  ASSERT_FALSE(a_.tcp().connect(c, tcp_endpoint{b_ip, 81}, now_));
  std::uint8_t seen = 0;
  app_ = [&] {
    std::array<socket_event, 4> ev{};
    const std::size_t n = a_.poll_events(ev);
    for (std::size_t i = 0; i < n; ++i) {
      seen |= ev[i].events;
    }
  };
  run(5 * second, [&] { return (seen & socket_events::error) != 0; });
  EXPECT_EQ(a_.tcp().error(c), std::make_error_code(std::errc::connection_refused));
  EXPECT_EQ(b_.counters().tcp.no_socket, 1U);
}

TEST_F(TcpPair, LossIsRepairedByRetransmission) {
  // Every 20th frame from a is lost (data and ACKs alike): the stream still arrives intact, and
  // mostly by fast retransmit (limited transmit and uncoalesced duplicate ACKs), not by RTO.
  drop_a_ = [](std::uint64_t n) { return n % 20 == 3; };
  open_pair();
  checked_stream up{3, 1 << 20};
  std::vector<std::byte> buf(16 * 1024);
  app_ = [&] {
    poll_and_accept();
    up.send(a_.tcp(), client_, buf, now_);
    up.receive(b_.tcp(), server_, buf);
  };
  run(120 * second, [&] { return up.eof; });
  EXPECT_FALSE(up.wrong) << "byte " << *up.wrong;
  EXPECT_EQ(up.got, up.total);
  EXPECT_TRUE(up.eof);
  const auto ca = a_.counters().tcp;
  EXPECT_GT(ca.retransmits, 0U);
  EXPECT_GT(ca.fast_retransmits, 4 * ca.rto_expirations)
      << "fast " << ca.fast_retransmits << " rto " << ca.rto_expirations;
}

TEST_F(TcpPair, SteadyStateTransferAllocatesNothing) {
  // Once a connection has its buffers, moving data (segments, ACKs, timers, events) allocates
  // nothing: not per segment, not per burst.
  open_pair();
  checked_stream up{5, 1 << 20};
  std::vector<std::byte> buf(16 * 1024);
  app_ = [&] {
    poll_and_accept();
    up.send(a_.tcp(), client_, buf, now_, /*finish=*/false);
    up.receive(b_.tcp(), server_, buf);
  };
  const std::function<bool()> done = [&] { return up.got == up.total; };
  run(30 * second, done);
  ASSERT_EQ(up.got, up.total);
  up.total = 4 << 20;
  const std::uint64_t segments_before = b_.counters().tcp.segments_in;
  const std::uint64_t before = dpdk_net::test::allocation_count();
  run(now_ + 30 * second, done);
  const std::uint64_t allocations = dpdk_net::test::allocation_count() - before;
  ASSERT_EQ(up.got, up.total);
  EXPECT_FALSE(up.wrong);
  EXPECT_GT(b_.counters().tcp.segments_in - segments_before, 2000U);
  EXPECT_EQ(allocations, 0U) << "mode " << dpdk_net::test::allocation_counting_mode();
}

TEST_F(TcpPair, EphemeralPortsHonourTheFilterAndDependOnTheSecret) {
  // RFC 6056: ports come from the ephemeral range, keyed by the stack's secret (another secret,
  // another sequence), never repeat for one destination while in use, and only ports the
  // caller's predicate accepts are taken (the runtime's "lands on my core" filter).
  const auto ports = [](stack& st, int n, const port_filter& f) {
    std::vector<std::uint16_t> out;
    for (int i = 0; i < n; ++i) {
      tcp_layer::socket_id s = 0;
      EXPECT_FALSE(st.tcp().open(s));
      EXPECT_FALSE(st.tcp().connect(s, tcp_endpoint{b_ip, 80}, 0, f));
      out.push_back(st.tcp().local_endpoint(s)->port);
    }
    return out;
  };
  const port_filter even{[](const void*, std::uint16_t p, tcp_endpoint remote) {
                           return p % 2 == 0 && remote.port == 80;
                         },
                         nullptr};
  const std::vector<std::uint16_t> mine = ports(a_, 50, even);
  for (const std::uint16_t p : mine) {
    EXPECT_EQ(p % 2, 0) << p;
    EXPECT_GE(p, a_.config().ephemeral_first);
  }
  std::vector<std::uint16_t> sorted = mine;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "a port was reused";
  packet_pool pool{packet_pool_config{"c", 256}};
  stack other{pair_config(a_ip, 1), pool, stack_secret{99, 98}};
  EXPECT_NE(ports(other, 50, even), mine) << "the port sequence does not depend on the secret";
}

TEST_F(TcpPair, IdleConnectionsAreNeverVisited) {
  // Pull-based egress: 200 idle established connections beside one busy one cost nothing per
  // segment - output visits only connections on the pending list (each visit yields segments).
  open_pair(/*backlog=*/256);
  std::vector<tcp_layer::socket_id> idle_clients, idle_servers;
  for (int i = 0; i < 200; ++i) {
    tcp_layer::socket_id s = 0;
    ASSERT_FALSE(a_.tcp().open(s));
    ASSERT_FALSE(a_.tcp().connect(s, tcp_endpoint{b_ip, 80}, now_));
    idle_clients.push_back(s);
  }
  app_ = [&] {
    poll_and_accept();
    tcp_layer::socket_id s = 0;
    while (!b_.tcp().accept(listener_, s)) {
      idle_servers.push_back(s);
    }
  };
  run(now_ + 2 * second, [&] { return idle_servers.size() == 200; });
  ASSERT_EQ(idle_servers.size(), 200U);
  ASSERT_NE(server_, tcp_layer::invalid_socket);
  checked_stream up{11, 2 << 20};
  std::vector<std::byte> buf(16 * 1024);
  app_ = [&] {
    poll_and_accept();
    up.send(a_.tcp(), client_, buf, now_, /*finish=*/false);
    up.receive(b_.tcp(), server_, buf);
  };
  const auto before_a = a_.counters().tcp;
  const auto before_b = b_.counters().tcp;
  run(now_ + 30 * second, [&] { return up.got == up.total; });
  ASSERT_EQ(up.got, up.total);
  const auto after_a = a_.counters().tcp;
  const auto after_b = b_.counters().tcp;
  const std::uint64_t visits = (after_a.output_visits - before_a.output_visits) +
                               (after_b.output_visits - before_b.output_visits);
  const std::uint64_t segments = (after_a.segments_out - before_a.segments_out) +
                                 (after_b.segments_out - before_b.segments_out);
  EXPECT_GT(segments, 1000U);
  EXPECT_LE(visits, segments) << "visits " << visits << " for " << segments << " segments";
  EXPECT_EQ(after_b.demux_lookups - before_b.demux_lookups,
            after_b.segments_in - before_b.segments_in);
}

TEST(TcpScale, TenThousandConnectionsEachExchangeARequestAndCloseCleanly) {
  // 10,000 concurrent connections between two stacks: each sends a 100-byte request, gets a
  // 1000-byte response, and both sides close. Every one completes; the per-segment costs stay
  // those of one connection (one lookup per segment; output visits no more than segments).
  constexpr std::size_t n = 10000;
  stack_config ca = pair_config(a_ip, 1), cb = pair_config(b_ip, 2);
  for (stack_config* c : {&ca, &cb}) {
    c->tcp.sockets = n + 16;
    c->tcp.time_wait_records = n + 16;
    c->tcp.send_buffer = c->tcp.receive_buffer = 4096;
    c->tcp.max_backlog = n;
    c->tcp.syn_queue = n;  // 10,000 SYNs arrive before any is answered: no cookies
    c->ephemeral_first = 30000;
  }
  packet_pool pool_a{packet_pool_config{"a", 8192}};
  packet_pool pool_b{packet_pool_config{"b", 8192}};
  stack a{ca, pool_a, stack_secret{5, 6}};
  stack b{cb, pool_b, stack_secret{7, 8}};
  tcp_layer::socket_id l = 0;
  ASSERT_FALSE(b.tcp().open(l));
  ASSERT_FALSE(b.tcp().bind(l, 80));
  ASSERT_FALSE(b.tcp().listen(l, n));
  std::vector<tcp_layer::socket_id> clients(n);
  for (auto& c : clients) {
    ASSERT_FALSE(a.tcp().open(c));
    ASSERT_FALSE(a.tcp().connect(c, tcp_endpoint{b_ip, 80}, 0));
  }
  std::array<std::byte, 1000> response{};
  std::array<std::byte, 100> request{};
  std::array<std::byte, 2048> buf{};
  std::size_t responses = 0, served = 0;
  std::array<packet, 32> burst{};
  std::array<socket_event, 64> events{};
  time_ns now = 0;
  for (int round = 0;
       round < 40000 && (responses < n || a.tcp().connections() + b.tcp().connections() != 0);
       ++round) {
    for (int dir = 0; dir < 2; ++dir) {
      stack& from = dir == 0 ? a : b;
      stack& to = dir == 0 ? b : a;
      std::size_t k = 0;
      while ((k = from.drain_tx(burst, now)) != 0) {
        for (std::size_t i = 0; i < k; ++i) {
          to.receive(std::move(burst[i]), now);
        }
      }
    }
    std::size_t got = 0;
    while ((got = b.poll_events(events)) != 0) {
      for (std::size_t i = 0; i < got; ++i) {
        const tcp_layer::socket_id id = events[i].socket;
        if (id == l) {
          tcp_layer::socket_id child = 0;
          while (!b.tcp().accept(l, child)) {
          }
          continue;
        }
        const auto r = b.tcp().receive(id, buf);
        if (r.bytes == request.size()) {
          EXPECT_EQ(b.tcp().send(id, response).bytes, response.size());
          EXPECT_FALSE(b.tcp().close(id, now));
          ++served;
        }
      }
    }
    while ((got = a.poll_events(events)) != 0) {
      for (std::size_t i = 0; i < got; ++i) {
        const tcp_layer::socket_id id = events[i].socket;
        if ((events[i].events & socket_events::connected) != 0) {
          EXPECT_EQ(a.tcp().send(id, request).bytes, request.size());
        }
        if ((events[i].events & socket_events::readable) != 0 &&
            a.tcp().readable_bytes(id) == response.size()) {
          (void)a.tcp().receive(id, buf);
          EXPECT_FALSE(a.tcp().close(id, now));
          ++responses;
        }
      }
    }
    now += 100 * microsecond;
    a.advance(now);
    b.advance(now);
  }
  EXPECT_EQ(served, n);
  EXPECT_EQ(responses, n);
  const auto ta = a.counters().tcp;
  const auto tb = b.counters().tcp;
  EXPECT_EQ(ta.demux_lookups, ta.segments_in);
  EXPECT_EQ(tb.demux_lookups, tb.segments_in);
  // Each connection is visited once more than it sends: its first SYN found the peer's MAC
  // unresolved (one ARP for all, the SYNs wait in their connections).
  EXPECT_LE(ta.output_visits, ta.segments_out + n);
  EXPECT_LE(tb.output_visits, tb.segments_out);
  EXPECT_EQ(ta.retransmits + tb.retransmits, 0U);
  EXPECT_EQ(a.tcp().connections() + b.tcp().connections(), 0U) << "every connection closed";
  // The last ACKs of 10,000 closes came from TIME-WAIT records at drain time: none was lost
  // to a full tx queue (they used to be queued at once, and a burst of FINs overflowed it).
  EXPECT_EQ(a.counters().tx_queue_full + b.counters().tx_queue_full, 0U);
  EXPECT_EQ(b.tcp().time_wait_count(), n);
  EXPECT_EQ(tb.listen_overflow, 0U);
  EXPECT_LE(tcp_layer::idle_connection_bytes(), 1024U) << "the at-scale issue's bound";
}

TEST(TcpConfig, ValidateNamesTheFieldAndTheConstructorRefuses) {
  struct bad_case {
    void (*bend)(tcp_config&);
    const char* field;
  };
  const bad_case cases[] = {
      {[](tcp_config& t) { t.sockets = 0; }, "tcp.sockets"},
      {[](tcp_config& t) { t.sockets = (1U << 20U) + 1; }, "tcp.sockets"},
      {[](tcp_config& t) { t.time_wait_records = 0; }, "tcp.time_wait_records"},
      {[](tcp_config& t) { t.send_buffer = 10; }, "tcp.send_buffer"},
      {[](tcp_config& t) { t.receive_buffer = (1U << 30U) + 1; }, "tcp.receive_buffer"},
      {[](tcp_config& t) { t.rto_min = 0; }, "tcp.rto_min"},
      {[](tcp_config& t) { t.rto_min = 2 * t.rto_max; }, "tcp.rto_min"},
      {[](tcp_config& t) { t.rto_initial = 1; }, "tcp.rto_initial"},
      {[](tcp_config& t) { t.data_retries = 0; }, "data_retries"},
      {[](tcp_config& t) { t.delayed_ack = second; }, "tcp.delayed_ack"},
      {[](tcp_config& t) { t.time_wait = 0; }, "time_wait"},
      {[](tcp_config& t) { t.initial_window = 0; }, "tcp.initial_window"},
      {[](tcp_config& t) { t.min_mss = 1; }, "tcp.min_mss"},
      {[](tcp_config& t) { t.dup_ack_threshold = 0; }, "tcp.dup_ack_threshold"},
      {[](tcp_config& t) { t.out_of_order_ranges = 9; }, "tcp.out_of_order_ranges"},
      {[](tcp_config& t) { t.max_backlog = 0; }, "tcp.max_backlog"},
  };
  packet_pool pool{packet_pool_config{"v", 64}};
  for (const bad_case& b : cases) {
    stack_config c = pair_config(a_ip, 1);
    b.bend(c.tcp);
    const std::string e = validate(c, 1500);
    EXPECT_NE(e.find(b.field), std::string::npos) << e;
    EXPECT_THROW((stack{c, pool, stack_secret{1, 1}}), std::invalid_argument) << b.field;
  }
  EXPECT_EQ(validate(pair_config(a_ip, 1), 1500), "");
}

}  // namespace tcp_pair_test
}  // namespace
}  // namespace dpdk_net::stack
