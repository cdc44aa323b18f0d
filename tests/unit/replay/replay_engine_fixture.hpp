// The replay engine tests' fixture: a recorded client and server, the live side, a Linux-like
// HTTP exchange, and a harness that collects what the engine emits.
#pragma once

#include <gtest/gtest.h>

#include "dpdk_net/replay/replay.hpp"
#include "replay_frames.hpp"

namespace dpdk_net::replay::test {

constexpr std::uint32_t client_isn = 1000;
constexpr std::uint32_t server_isn = 7000;
constexpr std::uint32_t live_isn = 555555;

inline const endpoint4 rec_client{wire::ipv4_address::from_octets(10, 0, 0, 1), 40000,
                                  mac_address{{2, 0, 0, 0, 0, 1}}};
inline const endpoint4 rec_server{wire::ipv4_address::from_octets(10, 0, 0, 2), 80,
                                  mac_address{{2, 0, 0, 0, 0, 2}}};
// The live side: the stack at 198.18.0.2:8080, the replayer at 198.18.0.10.
inline const endpoint4 live{wire::ipv4_address::from_octets(198, 18, 0, 2), 8080,
                            mac_address{{2, 0, 0, 0, 9, 2}}};
inline const endpoint4 us{wire::ipv4_address::from_octets(198, 18, 0, 10), 40000,
                          mac_address{{2, 0, 0, 0, 9, 10}}};

inline wire::tcp_options ts(std::uint32_t value, std::uint32_t echo) {
  wire::tcp_options o;
  o.timestamps = wire::tcp_timestamps{value, echo};
  return o;
}

/// A Linux-like client: SYN (MSS, SACK_PERM, TS, NOP, WS 7), "GET" -> "OK", a SACK-carrying ACK.
inline recording http_like() {
  recording r;
  wire::tcp_options syn = ts(5000, 0);
  syn.mss = 1460;
  syn.sack_permitted = true;
  syn.window_scale = 7;
  using namespace wire::tcp_flag;
  r.add(0, tcp_frame(rec_client, rec_server, client_isn, 0, wire::tcp_flag::syn, syn));
  r.add(1 * millisecond, tcp_frame(rec_server, rec_client, server_isn, client_isn + 1,
                                   wire::tcp_flag::syn | ack, ts(900, 5000)));
  r.add(2 * millisecond,
        tcp_frame(rec_client, rec_server, client_isn + 1, server_isn + 1, ack, ts(5002, 900)));
  r.add(3 * millisecond, tcp_frame(rec_client, rec_server, client_isn + 1, server_isn + 1,
                                   ack | psh, ts(5003, 900), "GET"));
  r.add(4 * millisecond, tcp_frame(rec_server, rec_client, server_isn + 1, client_isn + 4,
                                   ack | psh, ts(901, 5003), "OK"));
  wire::tcp_options sack = ts(5005, 901);
  sack.sack_count = 1;
  sack.sack[0] = {server_isn + 3, server_isn + 10};
  r.add(5 * millisecond,
        tcp_frame(rec_client, rec_server, client_isn + 4, server_isn + 3, ack, sack));
  return r;
}

inline replay_config config_for(bool fast = false) {
  replay_config c;
  c.mac = us.mac;
  c.address = us.ip;
  c.live_address = live.ip;
  c.port_map[80] = 8080;
  c.seed = 7;
  c.fast = fast;
  return c;
}

/// An engine under test with the frames it emitted.
struct harness {
  engine e;
  std::vector<std::vector<std::byte>> sent;
  explicit harness(const replay_config& c) : e(c) {}
  void poll(time_ns now) {
    e.poll(now, [&](std::span<const std::byte> f) { sent.emplace_back(f.begin(), f.end()); });
  }
  /// Starts: the ARP request, answered by the live side at `now`.
  void start(time_ns now) {
    poll(now);
    ASSERT_EQ(sent.size(), 1U);
    const auto d = wire::decode_frame(sent[0]);
    ASSERT_TRUE(d.arp);
    EXPECT_EQ(d.arp->operation, wire::arp_op::request);
    EXPECT_EQ(d.arp->target_ip, live.ip);
    EXPECT_EQ(d.arp->sender_ip, us.ip);
    sent.clear();
    e.on_frame(now, arp_frame(live, wire::arp_op::reply, us));
  }
  /// Loads r, starts at 0 and polls (the first SYN goes out); false (a test failure) if r does not
  /// load.
  void begin(const recording& r) {
    std::string error;
    ASSERT_TRUE(e.load(r.records, error)) << error;
    start(0);
    poll(0);
  }
  /// The live stack's SYN-ACK (ISN live_isn) to the first flow's SYN at `at`, then a poll.
  void syn_ack(time_ns at, const wire::tcp_options& options = {}) {
    e.on_frame(at, tcp_frame(live, us, live_isn, isn_for(e.config().seed, 0) + 1,
                             wire::tcp_flag::syn | wire::tcp_flag::ack, options));
    poll(at);
  }
  /// The last frame sent, decoded with checksums verified.
  wire::decoded_frame last() const {
    EXPECT_FALSE(sent.empty());
    const auto d = wire::decode_frame(sent.back());
    EXPECT_TRUE(d.accepted()) << wire::to_string(d.error);
    return d;
  }
};

}  // namespace dpdk_net::replay::test
