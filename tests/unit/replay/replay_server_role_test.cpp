// The replay engine playing the recorded server (play_role::server): the live client's port
// and MAC learned when it comes, no response timeout before it does, recorded pacing from its
// SYN, UDP answered to its own port, ICMP skipped.
#include <gtest/gtest.h>

#include "dpdk_net/replay/replay.hpp"
#include "replay_engine_fixture.hpp"
#include "replay_frames.hpp"

namespace {
namespace replay_server_role_test {

using namespace dpdk_net;
using namespace dpdk_net::replay;
using namespace dpdk_net::replay::test;

replay_config server_config(bool fast) {
  replay_config c = config_for(fast);
  c.play = play_role::server;
  c.port_map.clear();
  return c;
}

/// The live client at `port`, and the replayer as the recorded server (port 80).
endpoint4 live_client(std::uint16_t port) {
  endpoint4 c = live;
  c.port = port;
  return c;
}
endpoint4 our_server() {
  endpoint4 s = us;
  s.port = 80;
  return s;
}

TEST(ReplayServerRole, PlaysTheRecordedServerAgainstALiveClient) {
  // --as server: T is the recorded client; the live client connects to the replayer (at the
  // recorded server's port), and each recorded server frame waits for the client bytes it
  // acknowledges. Its port is learned from the live SYN.
  recording r = http_like();
  const replay_config cfg = server_config(true);
  harness h(cfg);
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  EXPECT_EQ(h.e.report().target, rec_client.ip);
  h.start(0);
  h.poll(0);
  EXPECT_TRUE(h.sent.empty());  // the SYN-ACK waits for a live SYN
  using namespace wire::tcp_flag;
  endpoint4 client = live_client(51000);
  const endpoint4 server = our_server();
  wire::tcp_options syn_options = ts(42, 0);
  syn_options.mss = 1460;
  h.e.on_frame(1 * millisecond,
               tcp_frame(client, server, live_isn, 0, wire::tcp_flag::syn, syn_options));
  h.poll(1 * millisecond);
  ASSERT_EQ(h.sent.size(), 1U);
  const std::uint32_t our = isn_for(7, 0);
  auto d = h.last();
  ASSERT_TRUE(d.tcp);
  EXPECT_TRUE(d.tcp->has(wire::tcp_flag::syn) && d.tcp->has(ack));
  EXPECT_EQ(d.ipv4->src, us.ip);
  EXPECT_EQ(d.tcp->src_port, 80);
  EXPECT_EQ(d.tcp->dst_port, 51000);
  EXPECT_EQ(d.tcp->seq, our);
  EXPECT_EQ(d.tcp->ack, live_isn + 1);
  ASSERT_TRUE(d.tcp->options.timestamps);
  EXPECT_EQ(d.tcp->options.timestamps->echo_reply, 42U);
  // "OK" waits for the client's "GET" (client byte 4 acknowledged in the recording).
  h.e.on_frame(2 * millisecond, tcp_frame(client, server, live_isn + 1, our + 1, ack, ts(43, 1)));
  h.poll(2 * millisecond);
  EXPECT_EQ(h.sent.size(), 1U);
  h.e.on_frame(3 * millisecond,
               tcp_frame(client, server, live_isn + 1, our + 1, ack | psh, ts(44, 1), "GET"));
  h.poll(3 * millisecond);
  ASSERT_EQ(h.sent.size(), 2U);
  d = h.last();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.payload.data()), d.payload.size()), "OK");
  EXPECT_EQ(d.tcp->seq, our + 1);
  EXPECT_EQ(d.tcp->ack, live_isn + 4);
  EXPECT_EQ(d.tcp->options.timestamps->echo_reply, 44U);
  wire::tcp_options sack = ts(45, 2);
  sack.sack_count = 1;
  sack.sack[0] = {our + 3, our + 10};
  h.e.on_frame(4 * millisecond, tcp_frame(client, server, live_isn + 4, our + 3, ack, sack));
  h.poll(200 * millisecond);
  EXPECT_TRUE(h.e.done());
  const replay_report& rep = h.e.report();
  EXPECT_FALSE(rep.diverged()) << rep.json();
  ASSERT_EQ(rep.flows.size(), 1U);
  EXPECT_EQ(rep.flows[0].recorded_bytes, 3U);  // the client's "GET", compared with the live one
  EXPECT_EQ(rep.flows[0].live_bytes, 3U);
  EXPECT_EQ(rep.frames_unexpected, 0U);
}

TEST(ReplayServerRole, WaitsForItsClientWithoutTimeoutOrBusyLoop) {
  recording r = http_like();
  const replay_config cfg = server_config(true);
  harness h(cfg);
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.start(0);
  h.poll(0);
  h.poll(60 * second);  // far past the response timeout: still waiting, nothing sent
  EXPECT_TRUE(h.sent.empty());
  EXPECT_FALSE(h.e.done());
  EXPECT_EQ(h.e.next_wakeup(), UINT64_MAX);  // the live SYN, not a timer, wakes it
  const replay_report& rep = h.e.report();
  EXPECT_EQ(rep.flows[0].missing_responses, 0U);
  ASSERT_EQ(rep.divergences.size(), 1U) << rep.json();
  EXPECT_EQ(rep.divergences[0],
            "flow tcp 10.0.0.2:80 > 10.0.0.1:40000: no live client connected for it (server role)");
}

TEST(ReplayServerRole, WaitsForAClientThatComesUpLater) {
  // Nobody answers ARP at first (the client's host is not up yet): the server role keeps asking
  // and learns the client's MAC from its own ARP request, then answers its SYN.
  recording r = http_like();
  const replay_config cfg = server_config(true);
  harness h(cfg);
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.poll(0);
  ASSERT_EQ(h.sent.size(), 1U);  // ARP request
  h.poll(3 * second);            // past the response timeout: still trying, not done
  EXPECT_FALSE(h.e.done());
  EXPECT_LE(h.e.next_wakeup(), 3 * second + 500 * millisecond);  // the next ARP request
  EXPECT_GE(h.sent.size(), 2U);
  h.sent.clear();
  h.e.on_frame(5 * second, arp_frame(live, wire::arp_op::request, us));
  endpoint4 client = live_client(51000);
  const endpoint4 server = our_server();
  h.e.on_frame(5 * second, tcp_frame(client, server, live_isn, 0, wire::tcp_flag::syn, ts(9, 0)));
  h.poll(5 * second);
  ASSERT_EQ(h.sent.size(), 2U);  // the ARP reply and the SYN-ACK
  const auto d = h.last();
  ASSERT_TRUE(d.tcp);
  EXPECT_TRUE(d.tcp->has(wire::tcp_flag::syn) && d.tcp->has(wire::tcp_flag::ack));
  EXPECT_EQ(d.tcp->ack, live_isn + 1);
  EXPECT_EQ(d.eth.dst, live.mac);
}

/// Two handshakes, from client ports 40000 and 40001, the second `gap` after the first.
recording two_connections(time_ns gap) {
  recording r;
  using namespace wire::tcp_flag;
  const wire::tcp_options none;
  endpoint4 second_client = rec_client;
  second_client.port = 40001;
  r.add(0, tcp_frame(rec_client, rec_server, 100, 0, wire::tcp_flag::syn, none));
  r.add(1 * millisecond,
        tcp_frame(rec_server, rec_client, 900, 101, wire::tcp_flag::syn | ack, none));
  r.add(2 * millisecond, tcp_frame(rec_client, rec_server, 101, 901, ack, none));
  r.add(gap, tcp_frame(second_client, rec_server, 500, 0, wire::tcp_flag::syn, none));
  r.add(gap + 1 * millisecond,
        tcp_frame(rec_server, second_client, 2000, 501, wire::tcp_flag::syn | ack, none));
  r.add(gap + 2 * millisecond, tcp_frame(second_client, rec_server, 501, 2001, ack, none));
  return r;
}

TEST(ReplayServerRole, PacedFlowsStartWhenTheirClientConnects) {
  // Two connections recorded 30 s apart, recorded pacing: the second client connecting at 1 s
  // gets its SYN-ACK at once, not at 30 s.
  const recording r = two_connections(30 * second);
  using namespace wire::tcp_flag;
  const wire::tcp_options none;
  const replay_config cfg = server_config(false);
  harness h(cfg);
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.start(0);
  endpoint4 client = live_client(51000);
  const endpoint4 server = our_server();
  h.e.on_frame(0, tcp_frame(client, server, 7, 0, wire::tcp_flag::syn, none));
  h.poll(1 * millisecond);  // the first SYN-ACK, 1 ms after the SYN as recorded
  ASSERT_EQ(h.sent.size(), 1U);
  client.port = 51001;
  h.e.on_frame(1 * second, tcp_frame(client, server, 70, 0, wire::tcp_flag::syn, none));
  h.poll(1 * second + 1 * millisecond);
  ASSERT_EQ(h.sent.size(), 2U);
  const auto d = h.last();
  ASSERT_TRUE(d.tcp);
  EXPECT_EQ(d.tcp->dst_port, 51001);
  EXPECT_EQ(d.tcp->ack, 71U);
}

TEST(ReplayServerRole, AClientReusingItsPortGetsTheNextRecordedConnection) {
  const recording r = two_connections(3 * millisecond);
  using namespace wire::tcp_flag;
  const wire::tcp_options none;
  const replay_config cfg = server_config(true);
  harness h(cfg);
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.start(0);
  const endpoint4 client = live_client(51000);  // both live connections from this port
  const endpoint4 server = our_server();
  h.e.on_frame(0, tcp_frame(client, server, 7, 0, wire::tcp_flag::syn, none));
  h.poll(0);
  ASSERT_EQ(h.sent.size(), 1U);
  h.e.on_frame(1 * millisecond, tcp_frame(client, server, 8, isn_for(7, 0) + 1, ack, none));
  h.e.on_frame(2 * millisecond, tcp_frame(client, server, 70000, 0, wire::tcp_flag::syn, none));
  h.poll(2 * millisecond);
  ASSERT_EQ(h.sent.size(), 2U);
  const auto d = h.last();
  ASSERT_TRUE(d.tcp);
  EXPECT_EQ(d.tcp->seq, isn_for(7, 1));  // the second recorded connection's SYN-ACK
  EXPECT_EQ(d.tcp->ack, 70001U);
  // A late retransmission of the first SYN takes no new connection (none is left) and is absorbed.
  h.e.on_frame(3 * millisecond, tcp_frame(client, server, 7, 0, wire::tcp_flag::syn, none));
  EXPECT_EQ(h.e.report().frames_unexpected, 0U);
  h.poll(200 * millisecond);
  EXPECT_TRUE(h.e.done());
  EXPECT_FALSE(h.e.report().diverged()) << h.e.report().json();
}

TEST(ReplayServerRole, UdpRepliesGoToTheLiveClientsPort) {
  // A recorded DNS-like exchange; the live client asks from a port of its own.
  recording r;
  endpoint4 c = rec_client;
  c.port = 5353;
  endpoint4 srv = rec_server;
  srv.port = 53;
  r.add(0, udp_frame(c, srv, "query"));
  r.add(1 * millisecond, udp_frame(srv, c, "answer"));
  r.add(2 * millisecond, echo_frame(rec_client, rec_server, wire::icmp_type::echo_request, 5, 1));
  r.add(3 * millisecond, echo_frame(rec_server, rec_client, wire::icmp_type::echo_reply, 5, 1));
  const replay_config cfg = server_config(true);
  harness h(cfg);
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.start(0);
  h.poll(10 * millisecond);
  EXPECT_TRUE(h.sent.empty());  // the answer waits for a live query
  endpoint4 lc = live;
  lc.port = 40123;
  endpoint4 ls = us;
  ls.port = 53;
  h.e.on_frame(20 * millisecond, udp_frame(lc, ls, "query"));
  h.poll(20 * millisecond);
  ASSERT_EQ(h.sent.size(), 1U);
  const auto d = h.last();
  ASSERT_TRUE(d.udp);
  EXPECT_EQ(d.udp->src_port, 53);
  EXPECT_EQ(d.udp->dst_port, 40123);
  h.poll(200 * millisecond);
  EXPECT_TRUE(h.e.done());
  const replay_report& rep = h.e.report();
  EXPECT_FALSE(rep.diverged()) << rep.json();
  EXPECT_EQ(rep.frames_unexpected, 0U);
  ASSERT_EQ(rep.flows.size(), 2U);
  EXPECT_TRUE(rep.flows[1].skipped);  // ICMP echo: the client's identifier is its own
  EXPECT_NE(rep.flows[1].skip_reason.find("server role"), std::string::npos);
}

}  // namespace replay_server_role_test
}  // namespace
