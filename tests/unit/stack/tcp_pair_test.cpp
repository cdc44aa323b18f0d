// Two stacks wired back to back in one process (no simulator): the quickest end-to-end check of
// the TCP engine — handshake, bulk transfer both ways with byte-exact content, close, TIME-WAIT,
// refused connects, and the costs that do not depend on time (one demux lookup per segment,
// idle connections never visited).
#include <gtest/gtest.h>

#include <deque>
#include <vector>

#include "../counting_allocator.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack {
namespace {

using wire::ipv4_address;

const ipv4_address a_ip = ipv4_address::from_octets(198, 18, 0, 1);
const ipv4_address b_ip = ipv4_address::from_octets(198, 18, 0, 2);

stack_config pair_config(ipv4_address ip, std::uint8_t mac_last) {
  stack_config c;
  c.mac = mac_address{{0x02, 0, 0, 0, 0, mac_last}};
  c.address = ip;
  return c;
}

/// A deterministic byte stream: byte i of stream `seed`.
std::byte stream_byte(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 32;
  return static_cast<std::byte>(x);
}

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
};

TEST_F(TcpPair, HandshakeTransferCloseBothWays) {
  tcp_layer& ta = a_.tcp();
  tcp_layer& tb = b_.tcp();
  tcp_layer::socket_id l = 0, client = 0, server = tcp_layer::invalid_socket;
  ASSERT_FALSE(tb.open(l));
  ASSERT_FALSE(tb.bind(l, 80));
  ASSERT_FALSE(tb.listen(l, 16));
  ASSERT_FALSE(ta.open(client));
  ASSERT_FALSE(ta.connect(client, tcp_endpoint{b_ip, 80}, now_));

  constexpr std::size_t total = 4 << 20;
  std::size_t sent_a = 0, got_b = 0, sent_b = 0, got_a = 0;
  bool a_eof = false, b_eof = false;
  std::vector<std::byte> buf(64 * 1024);
  app_ = [&] {
    std::array<socket_event, 16> ev{};
    b_.poll_events(ev);
    a_.poll_events(ev);
    if (server == tcp_layer::invalid_socket) {
      (void)tb.accept(l, server);
    }
    // a -> b
    while (sent_a < total) {
      for (std::size_t i = 0; i < buf.size(); ++i) {
        buf[i] = stream_byte(7, sent_a + i);
      }
      const auto r = ta.send(client, std::span(buf).first(std::min(buf.size(), total - sent_a)));
      if (r.bytes == 0) {
        break;
      }
      sent_a += r.bytes;
      if (sent_a == total) {
        ASSERT_FALSE(ta.shutdown(client, shutdown_type::send, now_));
      }
    }
    if (server != tcp_layer::invalid_socket) {
      while (true) {
        const auto r = tb.receive(server, buf);
        if (r.bytes == 0) {
          if (r.error == make_error_code(tcp_errc::end_of_stream) && !b_eof) {
            b_eof = true;
          }
          break;
        }
        for (std::size_t i = 0; i < r.bytes; ++i) {
          ASSERT_EQ(buf[i], stream_byte(7, got_b + i)) << "a->b byte " << got_b + i;
        }
        got_b += r.bytes;
      }
      // b -> a (half the size)
      while (sent_b < total / 2) {
        for (std::size_t i = 0; i < buf.size(); ++i) {
          buf[i] = stream_byte(9, sent_b + i);
        }
        const auto r =
            tb.send(server, std::span(buf).first(std::min(buf.size(), total / 2 - sent_b)));
        if (r.bytes == 0) {
          break;
        }
        sent_b += r.bytes;
        if (sent_b == total / 2) {
          ASSERT_FALSE(tb.shutdown(server, shutdown_type::send, now_));
        }
      }
    }
    while (true) {
      const auto r = ta.receive(client, buf);
      if (r.bytes == 0) {
        if (r.error == make_error_code(tcp_errc::end_of_stream)) {
          a_eof = true;
        }
        break;
      }
      for (std::size_t i = 0; i < r.bytes; ++i) {
        ASSERT_EQ(buf[i], stream_byte(9, got_a + i)) << "b->a byte " << got_a + i;
      }
      got_a += r.bytes;
    }
  };
  run(60 * second, [&] { return a_eof && b_eof; });
  EXPECT_EQ(got_b, total);
  EXPECT_EQ(got_a, total / 2);
  EXPECT_TRUE(a_eof);
  EXPECT_TRUE(b_eof);
  const auto cb = b_.counters().tcp;
  const auto ca = a_.counters().tcp;
  EXPECT_EQ(ca.retransmits + cb.retransmits, 0U);
  EXPECT_EQ(cb.demux_lookups, cb.segments_in);
  EXPECT_EQ(ca.demux_lookups, ca.segments_in);
  // Delayed ACKs: about one ACK per two full segments.
  EXPECT_LT(cb.segments_out, cb.segments_in + total / 2 / 1400);
  std::cerr << "a: in " << ca.segments_in << " out " << ca.segments_out << "; b: in "
            << cb.segments_in << " out " << cb.segments_out << " virtual ms " << now_ / 1000000
            << "\n";
  ASSERT_FALSE(ta.close(client, now_));
  ASSERT_FALSE(tb.close(server, now_));
  run(now_ + 5 * second);
  // The side that sent FIN first (a shut down first) holds TIME-WAIT as a record.
  EXPECT_EQ(ta.time_wait_count() + tb.time_wait_count(), 1U);
  EXPECT_EQ(ta.connections(), 0U);
  EXPECT_EQ(tb.connections(), 0U);
  run(now_ + 61 * second);
  EXPECT_EQ(ta.time_wait_count() + tb.time_wait_count(), 0U);
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
  // Every 20th frame from a is lost (data and ACKs alike): the stream still arrives intact.
  drop_a_ = [](std::uint64_t n) { return n % 20 == 3; };
  tcp_layer& ta = a_.tcp();
  tcp_layer& tb = b_.tcp();
  tcp_layer::socket_id l = 0, client = 0, server = tcp_layer::invalid_socket;
  ASSERT_FALSE(tb.open(l));
  ASSERT_FALSE(tb.bind(l, 80));
  ASSERT_FALSE(tb.listen(l, 16));
  ASSERT_FALSE(ta.open(client));
  ASSERT_FALSE(ta.connect(client, tcp_endpoint{b_ip, 80}, now_));
  constexpr std::size_t total = 1 << 20;
  std::size_t sent = 0, got = 0;
  bool eof = false;
  std::vector<std::byte> buf(16 * 1024);
  app_ = [&] {
    std::array<socket_event, 16> ev{};
    b_.poll_events(ev);
    a_.poll_events(ev);
    if (server == tcp_layer::invalid_socket) {
      (void)tb.accept(l, server);
    }
    while (sent < total) {
      for (std::size_t i = 0; i < buf.size(); ++i) {
        buf[i] = stream_byte(3, sent + i);
      }
      const auto r = ta.send(client, std::span(buf).first(std::min(buf.size(), total - sent)));
      if (r.bytes == 0) {
        break;
      }
      sent += r.bytes;
      if (sent == total) {
        (void)ta.shutdown(client, shutdown_type::send, now_);
      }
    }
    if (server != tcp_layer::invalid_socket) {
      while (true) {
        const auto r = tb.receive(server, buf);
        if (r.bytes == 0) {
          eof = eof || r.error == make_error_code(tcp_errc::end_of_stream);
          break;
        }
        for (std::size_t i = 0; i < r.bytes; ++i) {
          ASSERT_EQ(buf[i], stream_byte(3, got + i)) << "byte " << got + i;
        }
        got += r.bytes;
      }
    }
  };
  run(120 * second, [&] { return eof; });
  EXPECT_EQ(got, total);
  EXPECT_TRUE(eof);
  const auto ca = a_.counters().tcp;
  EXPECT_GT(ca.retransmits, 0U);
  std::cerr << "dupacks " << ca.duplicate_acks << " partial " << ca.recovery_partial_acks
            << " retransmits " << ca.retransmits << " fast " << ca.fast_retransmits << " rto "
            << ca.rto_expirations << " virtual ms " << now_ / 1000000 << "\n";
}

TEST_F(TcpPair, SteadyStateTransferAllocatesNothing) {
  // Once a connection has its buffers, moving data (segments, ACKs, timers, events) allocates
  // nothing: not per segment, not per burst.
  tcp_layer& ta = a_.tcp();
  tcp_layer& tb = b_.tcp();
  tcp_layer::socket_id l = 0, client = 0, server = tcp_layer::invalid_socket;
  ASSERT_FALSE(tb.open(l));
  ASSERT_FALSE(tb.bind(l, 80));
  ASSERT_FALSE(tb.listen(l, 16));
  ASSERT_FALSE(ta.open(client));
  ASSERT_FALSE(ta.connect(client, tcp_endpoint{b_ip, 80}, now_));
  std::vector<std::byte> buf(16 * 1024, std::byte{0x5a});
  std::size_t sent = 0, got = 0, target = 1 << 20;
  app_ = [&] {
    std::array<socket_event, 16> ev{};
    b_.poll_events(ev);
    a_.poll_events(ev);
    if (server == tcp_layer::invalid_socket) {
      (void)tb.accept(l, server);
    }
    while (sent < target) {
      const auto r = ta.send(client, std::span(buf).first(std::min(buf.size(), target - sent)));
      if (r.bytes == 0) {
        break;
      }
      sent += r.bytes;
    }
    if (server != tcp_layer::invalid_socket) {
      while (true) {
        const auto r = tb.receive(server, buf);
        if (r.bytes == 0) {
          break;
        }
        got += r.bytes;
      }
    }
  };
  const std::function<bool()> done = [&] { return got == target; };
  run(30 * second, done);
  ASSERT_EQ(got, target);
  target = 4 << 20;
  const std::uint64_t segments_before = b_.counters().tcp.segments_in;
  const std::uint64_t before = test::allocation_count();
  run(now_ + 30 * second, done);
  const std::uint64_t allocations = test::allocation_count() - before;
  ASSERT_EQ(got, target);
  EXPECT_GT(b_.counters().tcp.segments_in - segments_before, 2000U);
  EXPECT_EQ(allocations, 0U) << "mode " << test::allocation_counting_mode();
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

}  // namespace
}  // namespace dpdk_net::stack
