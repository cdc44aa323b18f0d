// SYN cookies beyond one script: two stacks sharing a secret (the multi-core property) and the
// encoding's properties. docs/tcp.md "Queues and SYN cookies"; the scripted tests are in
// tcp_queue_test.cpp.
#include <set>
#include <tuple>

#include "dpdk_net/stack/detail/tcp_syn_cookie.hpp"
#include "tcp_raw_peer.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_queue_cookie_test {

namespace flag = wire::tcp_flag;
namespace cookie = dpdk_net::stack::detail;  // script::detail is the fixture's

// The multi-core property: stacks built from the same secret (one per core, RSS spreading the
// tuples) validate each other's cookies, so an ACK steered to another core than its SYN (a
// changed RSS table, a restarted core) still completes. A stack with another secret refuses it.
TEST(TcpQueueTwoStacks, StacksFromTheSameSecretValidateEachOthersCookies) {
  stack_config cfg;
  cfg.mac = our_mac;
  cfg.address = our_ip;
  cfg.prefix_length = 24;
  cfg.arp.reachable_time = 3600 * second;
  cfg.tcp.sockets = 16;
  cfg.tcp.time_wait_records = 16;
  cfg.tcp.syn_queue = 0;
  raw_peer peer;  // its frames' pool outlives the stacks
  packet_pool pool{packet_pool_config{"cores", 512}};
  const time_ns t0 = 5 * second;
  stack a{cfg, pool, stack_secret{0x5eed, 0x7c9}, t0};
  stack b{cfg, pool, stack_secret{0x5eed, 0x7c9}, t0};
  stack other{cfg, pool, stack_secret{0x5eed, 0x7ca}, t0};
  std::array<tcp_layer::socket_id, 3> listeners{};
  std::array<stack*, 3> stacks{&a, &b, &other};
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_FALSE(stacks[i]->tcp().open(listeners[i]));
    ASSERT_FALSE(stacks[i]->tcp().bind(listeners[i], 8080));
    ASSERT_FALSE(stacks[i]->tcp().listen(listeners[i], 8));
    peer.introduce(*stacks[i], t0);
  }
  time_ns now = t0;
  for (const auto& [from, to, port] :
       {std::tuple{&a, &b, std::uint16_t{40001}}, std::tuple{&b, &a, std::uint16_t{40002}}}) {
    SCOPED_TRACE(port);
    const std::uint32_t isn = 7000;
    (void)peer.drain(*from, now);  // what the last round left (an ACK of its data)
    peer.send(*from, syn_header(port, isn, 1460, 7, true, 4242), {}, now);
    const std::vector<raw_segment> sa = peer.drain(*from, now);
    ASSERT_EQ(sa.size(), 1U);
    ASSERT_EQ(sa[0].tcp.flags, flag::syn | flag::ack);
    ASSERT_TRUE(sa[0].tcp.options.timestamps);
    wire::tcp_header ack;
    ack.src_port = port;
    ack.dst_port = 8080;
    ack.seq = isn + 1;
    ack.ack = sa[0].tcp.seq + 1;
    ack.flags = flag::ack;
    ack.window = 512;
    ack.options.timestamps = wire::tcp_timestamps{4300, sa[0].tcp.options.timestamps->value};
    now += 20 * millisecond;
    const time_ns t1 = now;
    peer.send(other, ack, "x", t1);
    const std::vector<raw_segment> rst = peer.drain(other, t1);
    ASSERT_EQ(rst.size(), 1U);
    EXPECT_EQ(rst[0].tcp.flags, flag::rst);
    EXPECT_EQ(other.tcp().counters().syn_cookies_rejected, port - 40000U);
    peer.send(*to, ack, "x", t1);
    tcp_layer::socket_id c = 0;
    const std::size_t at = to == &a ? 0 : 1;
    ASSERT_FALSE(to->tcp().accept(listeners[at], c));
    const std::optional<tcp_info> i = to->tcp().info(c);
    ASSERT_TRUE(i);
    EXPECT_EQ(i->state, tcp_state::established);
    EXPECT_EQ(i->send_scale, 7);
    EXPECT_TRUE(i->sack);
    EXPECT_EQ(i->send_window, 512U << 7);
    std::array<std::byte, 8> buf{};
    EXPECT_EQ(to->tcp().receive(c, buf).bytes, 1U);
    EXPECT_EQ(to->tcp().counters().syn_cookies_accepted, 1U);
  }
  EXPECT_EQ(other.tcp().connections(), 0U);
}

// The encoding's properties (the exact values are TcpQueue.CookieMatchesAnIndependentComputation).
TEST(TcpQueueCookie, EveryFieldIsBoundAndTheMssIndexRoundsDown) {
  const sip_key k = cookie::cookie_period_key(sip_key{1, 2}, 7);
  const auto ip1 = wire::ipv4_address::from_octets(10, 0, 0, 1);
  const auto ip2 = wire::ipv4_address::from_octets(10, 0, 0, 2);
  const std::uint32_t base = cookie::syn_cookie(k, ip1, ip2, 80, 5000, 12345, 6);
  EXPECT_EQ(base & 7U, 6U);
  std::set<std::uint32_t> seen{base};
  seen.insert(cookie::syn_cookie(cookie::cookie_period_key(sip_key{1, 2}, 8), ip1, ip2, 80, 5000,
                                 12345, 6));
  seen.insert(cookie::syn_cookie(cookie::cookie_period_key(sip_key{1, 3}, 7), ip1, ip2, 80, 5000,
                                 12345, 6));
  seen.insert(cookie::syn_cookie(k, ip2, ip2, 80, 5000, 12345, 6));
  seen.insert(cookie::syn_cookie(k, ip1, ip1, 80, 5000, 12345, 6));
  seen.insert(cookie::syn_cookie(k, ip1, ip2, 81, 5000, 12345, 6));
  seen.insert(cookie::syn_cookie(k, ip1, ip2, 80, 5001, 12345, 6));
  seen.insert(cookie::syn_cookie(k, ip1, ip2, 80, 5000, 12346, 6));
  EXPECT_EQ(seen.size(), 8U) << "period, key, both addresses, both ports, the peer's ISN";
  // The MSS index is authenticated: another index changes the MAC bits too.
  EXPECT_NE(cookie::syn_cookie(k, ip1, ip2, 80, 5000, 12345, 5) & ~7U, base & ~7U);
  using cookie::cookie_mss_index;
  EXPECT_EQ(cookie_mss_index(0), 0);
  EXPECT_EQ(cookie_mss_index(535), 0);
  EXPECT_EQ(cookie_mss_index(536), 1);
  EXPECT_EQ(cookie_mss_index(1452), 5);
  EXPECT_EQ(cookie_mss_index(1460), 6);
  EXPECT_EQ(cookie_mss_index(9000), 7);
  EXPECT_EQ(cookie_mss_index(65535), 7);
}

TEST(TcpQueueCookie, TimestampRoundTripsAndNeverRunsAheadOfTheClock) {
  for (const std::uint32_t clock :
       {0U, 5U, 63U, 64U, 1000U, 0x7fffffffU, 0xffffffc5U, 0xffffffffU}) {
    for (int ws = -1; ws <= 14; ++ws) {
      for (const bool sack : {false, true}) {
        cookie::cookie_options o;
        if (ws >= 0) {
          o.window_scale = static_cast<std::uint8_t>(ws);
        }
        o.sack = sack;
        const std::uint32_t ts = cookie::cookie_tsval(clock, o);
        EXPECT_EQ(cookie::cookie_decode_tsecr(ts), o) << clock << " " << ws << " " << sack;
        EXPECT_FALSE(detail::seq_after(ts, clock)) << clock;
        EXPECT_LT(clock - ts, 64U) << clock;
      }
    }
  }
}

}  // namespace tcp_queue_cookie_test
}  // namespace
}  // namespace dpdk_net::stack::script
