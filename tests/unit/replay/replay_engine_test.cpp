// The replay engine on crafted captures: rewriting (addresses, ports, seq/ack, SACK, TS,
// checksums) field by field, the wait rule and its timeout, divergences, UDP/ICMP, bad captures.
#include <gtest/gtest.h>

#include "dpdk_net/replay/replay.hpp"
#include "replay_engine_fixture.hpp"
#include "replay_frames.hpp"

namespace {
namespace replay_engine_test {

using namespace dpdk_net;
using namespace dpdk_net::replay;
using namespace dpdk_net::replay::test;

TEST(ReplayEngine, RewritesEveryFieldAgainstTheLiveIsn) {
  recording r = http_like();
  harness h(config_for());
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.start(1 * second);
  const std::uint32_t our = isn_for(7, 0);
  h.poll(1 * second);  // the SYN, at the recorded offset 0
  ASSERT_EQ(h.sent.size(), 1U);
  auto d = h.last();
  ASSERT_TRUE(d.tcp);
  EXPECT_EQ(d.eth.src, us.mac);
  EXPECT_EQ(d.eth.dst, live.mac);
  EXPECT_EQ(d.ipv4->src, us.ip);
  EXPECT_EQ(d.ipv4->dst, live.ip);
  EXPECT_EQ(d.tcp->src_port, 40000);
  EXPECT_EQ(d.tcp->dst_port, 8080);
  EXPECT_EQ(d.tcp->seq, our);
  EXPECT_EQ(d.tcp->options.mss, 1460);
  EXPECT_EQ(d.tcp->options.window_scale, 7);
  EXPECT_TRUE(d.tcp->options.sack_permitted);
  const std::uint32_t ts_base = 1000 + 1;  // our clock in ms at the flow's start, + 1
  ASSERT_TRUE(d.tcp->options.timestamps);
  EXPECT_EQ(d.tcp->options.timestamps->value, ts_base);
  EXPECT_EQ(d.tcp->options.timestamps->echo_reply, 0U);
  // Nothing more until the live SYN-ACK: the ACK acknowledges live byte 1.
  h.poll(1 * second + 10 * millisecond);
  EXPECT_EQ(h.sent.size(), 1U);
  using namespace wire::tcp_flag;
  h.e.on_frame(1 * second + 10 * millisecond,
               tcp_frame(live, us, live_isn, our + 1, wire::tcp_flag::syn | ack, ts(777, ts_base)));
  h.poll(1 * second + 10 * millisecond);
  ASSERT_EQ(h.sent.size(), 2U);  // the ACK, 8 ms late: the flow's later frames shift by 8 ms
  EXPECT_EQ(h.e.next_wakeup(), 1 * second + 11 * millisecond);
  h.poll(1 * second + 11 * millisecond);  // "GET", 1 ms after the ACK as recorded
  ASSERT_EQ(h.sent.size(), 3U);
  d = wire::decode_frame(h.sent[1]);
  EXPECT_EQ(d.tcp->seq, our + 1);
  EXPECT_EQ(d.tcp->ack, live_isn + 1);
  EXPECT_EQ(d.tcp->options.timestamps->value, ts_base + 2);
  EXPECT_EQ(d.tcp->options.timestamps->echo_reply, 777U);
  d = h.last();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.payload.data()), d.payload.size()), "GET");
  EXPECT_EQ(d.tcp->options.timestamps->value, ts_base + 3);
  // The SACK-carrying ACK waits for live byte 3 ("OK").
  h.poll(2 * second);
  EXPECT_EQ(h.sent.size(), 3U);
  h.e.on_frame(2 * second, tcp_frame(live, us, live_isn + 1, our + 4, ack, ts(780, ts_base), "OK"));
  h.poll(2 * second);
  ASSERT_EQ(h.sent.size(), 4U);
  d = h.last();
  EXPECT_EQ(d.tcp->seq, our + 4);
  EXPECT_EQ(d.tcp->ack, live_isn + 3);
  ASSERT_EQ(d.tcp->options.sack_count, 1);
  EXPECT_EQ(d.tcp->options.sack[0].left, live_isn + 3);
  EXPECT_EQ(d.tcp->options.sack[0].right, live_isn + 10);
  EXPECT_EQ(d.tcp->options.timestamps->echo_reply, 780U);
  EXPECT_FALSE(h.e.done());  // all came: done after the settle time without traffic
  EXPECT_EQ(h.e.next_wakeup(), 2 * second + 100 * millisecond);
  h.poll(2 * second + 100 * millisecond);
  EXPECT_TRUE(h.e.done());
  const replay_report& rep = h.e.report();
  EXPECT_FALSE(rep.diverged()) << rep.json();
  ASSERT_EQ(rep.flows.size(), 1U);
  EXPECT_EQ(rep.flows[0].recorded_bytes, 2U);
  EXPECT_EQ(rep.flows[0].live_bytes, 2U);
  EXPECT_EQ(rep.flows[0].live_isn, live_isn);
  EXPECT_EQ(rep.frames_sent, 5U);  // ARP + 4
}

/// Runs http_like against a live side that answers the SYN, then sends `response` (and a FIN /
/// RST if asked); returns the final report.
replay_report run_with_response(const std::string& response, std::uint8_t extra_flags,
                                std::vector<std::vector<std::byte>>* sent = nullptr) {
  recording r = http_like();
  harness h(config_for(true));
  std::string error;
  EXPECT_TRUE(h.e.load(r.records, error)) << error;
  h.start(0);
  h.poll(0);
  const std::uint32_t our = isn_for(7, 0);
  using namespace wire::tcp_flag;
  h.e.on_frame(1 * millisecond,
               tcp_frame(live, us, live_isn, our + 1, wire::tcp_flag::syn | ack, ts(1, 1)));
  h.poll(1 * millisecond);
  if (!response.empty() || extra_flags != 0) {
    h.e.on_frame(2 * millisecond,
                 tcp_frame(live, us, live_isn + 1, our + 4,
                           static_cast<std::uint8_t>(ack | extra_flags), ts(2, 1), response));
  }
  time_ns now = 2 * millisecond;
  for (int i = 0; i < 100 && !h.e.done(); ++i) {
    h.poll(now);
    now = std::max(now + 1, h.e.next_wakeup());
  }
  EXPECT_TRUE(h.e.done());
  if (sent != nullptr) {
    *sent = h.sent;
  }
  return h.e.report();
}

TEST(ReplayEngine, MissingResponseTimesOutAndResets) {
  std::vector<std::vector<std::byte>> sent;
  const replay_report rep = run_with_response("", 0, &sent);
  ASSERT_TRUE(rep.diverged());
  EXPECT_NE(rep.divergences[0].find("missing response: flow tcp 198.18.0.10:40000 > "
                                    "198.18.0.2:8080 waited for byte 3, live sent 1"),
            std::string::npos)
      << rep.divergences[0];
  EXPECT_TRUE(rep.flows[0].aborted);
  EXPECT_EQ(rep.flows[0].missing_responses, 1U);
  const auto d = wire::decode_frame(sent.back());
  ASSERT_TRUE(d.tcp);
  EXPECT_TRUE(d.tcp->has(wire::tcp_flag::rst));
  EXPECT_EQ(d.tcp->seq, isn_for(7, 0) + 4);  // the next byte we would have sent
}

TEST(ReplayEngine, DetectsDifferentBytesShorterResponsesAndResets) {
  replay_report rep = run_with_response("OX", 0);
  ASSERT_TRUE(rep.diverged());
  EXPECT_EQ(rep.flows[0].first_difference, 1U);
  EXPECT_EQ(rep.flows[0].live_bytes, 2U);
  rep = run_with_response("O", wire::tcp_flag::fin);  // shorter, then FIN: byte 3 reached
  ASSERT_TRUE(rep.diverged());
  EXPECT_EQ(rep.flows[0].first_difference, 1U);
  EXPECT_EQ(rep.flows[0].recorded_bytes, 2U);
  EXPECT_EQ(rep.flows[0].live_bytes, 1U);
  EXPECT_EQ(rep.flows[0].missing_responses, 0U);
  rep = run_with_response("", wire::tcp_flag::rst);
  EXPECT_TRUE(rep.flows[0].live_rst);
  EXPECT_NE(rep.json().find("the live stack reset the connection"), std::string::npos);
  rep = run_with_response("OK", 0);
  EXPECT_FALSE(rep.diverged()) << rep.json();
}

TEST(ReplayEngine, UdpAndIcmpAsRecordedCountedLoosely) {
  recording r;
  endpoint4 c = rec_client;
  c.port = 5353;
  endpoint4 s = rec_server;
  s.port = 53;
  r.add(0, udp_frame(c, s, "query"));
  r.add(1 * millisecond, udp_frame(s, c, "answer"));
  r.add(10 * millisecond, echo_frame(rec_client, rec_server, wire::icmp_type::echo_request, 77, 1));
  r.add(11 * millisecond, echo_frame(rec_server, rec_client, wire::icmp_type::echo_reply, 77, 1));
  replay_config cfg = config_for();
  cfg.port_map = {{53, 5300}};
  cfg.peer_port_offset = 100;
  harness h(cfg);
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.start(0);
  h.poll(0);
  ASSERT_EQ(h.sent.size(), 1U);
  auto d = h.last();
  ASSERT_TRUE(d.udp);
  EXPECT_EQ(d.udp->src_port, 5453);
  EXPECT_EQ(d.udp->dst_port, 5300);
  EXPECT_EQ(d.ipv4->src, us.ip);
  h.poll(5 * millisecond);
  EXPECT_EQ(h.sent.size(), 1U);  // paced: the echo request is recorded 10 ms in
  EXPECT_EQ(h.e.next_wakeup(), 10 * millisecond);
  h.poll(10 * millisecond);
  ASSERT_EQ(h.sent.size(), 2U);
  d = h.last();
  ASSERT_TRUE(d.icmp);
  EXPECT_EQ(d.icmp->identifier(), 77);
  EXPECT_EQ(d.icmp->sequence(), 1);
  endpoint4 lu = live;
  lu.port = 5300;
  endpoint4 uu = us;
  uu.port = 5453;
  h.e.on_frame(11 * millisecond, udp_frame(lu, uu, "answer"));
  h.e.on_frame(11 * millisecond, echo_frame(live, us, wire::icmp_type::echo_reply, 77, 1));
  h.poll(111 * millisecond);
  EXPECT_TRUE(h.e.done());
  EXPECT_FALSE(h.e.report().diverged()) << h.e.report().json();
}

TEST(ReplayEngine, CutsSegmentsLargerThanTheMtu) {
  // A capture taken with TSO/GRO on: one 4000-byte segment from the client.
  recording r = http_like();
  using namespace wire::tcp_flag;
  const std::string big(4000, 'b');
  r.frames[3] = tcp_frame(rec_client, rec_server, client_isn + 1, server_isn + 1,
                          ack | psh | wire::tcp_flag::fin, ts(5003, 900), big);
  r.records[3].data = r.frames[3];
  r.records[3].original_length = static_cast<std::uint32_t>(r.frames[3].size());
  r.records.resize(4);
  harness h(config_for(true));
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.start(0);
  h.poll(0);
  const std::uint32_t our = isn_for(7, 0);
  h.e.on_frame(0, tcp_frame(live, us, live_isn, our + 1, wire::tcp_flag::syn | ack, ts(1, 1)));
  h.poll(0);
  ASSERT_EQ(h.sent.size(), 5U);  // SYN, ACK, 3 pieces of at most 1500 - 20 - 32 bytes
  std::size_t total = 0;
  for (std::size_t i = 2; i < 5; ++i) {
    const auto d = wire::decode_frame(h.sent[i]);
    ASSERT_TRUE(d.tcp) << wire::to_string(d.error);
    EXPECT_LE(h.sent[i].size(), 1514U);
    EXPECT_EQ(d.tcp->seq, our + 1 + total);
    EXPECT_EQ(d.tcp->has(wire::tcp_flag::fin), i == 4);
    EXPECT_EQ(d.tcp->has(psh), i == 4);
    total += d.payload.size();
  }
  EXPECT_EQ(total, big.size());
}

TEST(ReplayEngine, AnswersArpForItsAddressesAndCountsStrangers) {
  recording r = http_like();
  harness h(config_for());
  std::string error;
  ASSERT_TRUE(h.e.load(r.records, error)) << error;
  h.start(0);
  h.e.on_frame(0, arp_frame(live, wire::arp_op::request, us));
  h.e.on_frame(0, udp_frame(live, us, "stray"));
  h.poll(0);
  ASSERT_GE(h.sent.size(), 1U);
  const auto d = wire::decode_frame(h.sent[0]);
  ASSERT_TRUE(d.arp);
  EXPECT_EQ(d.arp->operation, wire::arp_op::reply);
  EXPECT_EQ(d.arp->sender_ip, us.ip);
  EXPECT_EQ(d.arp->sender_mac, us.mac);
  EXPECT_EQ(d.eth.dst, live.mac);
  EXPECT_EQ(h.e.report().arp_requests_answered, 1U);
  EXPECT_EQ(h.e.report().frames_unexpected, 1U);
}

TEST(ReplayEngine, BadCapturesAreRefusedInPlainWords) {
  std::string error;
  recording r = http_like();
  r.records[2].linktype = 101;  // raw IP
  EXPECT_FALSE(engine(config_for()).load(r.records, error));
  EXPECT_NE(error.find("record 3: link type 101 is not Ethernet"), std::string::npos) << error;
  r = http_like();
  r.records[3].data = r.records[3].data.first(40);  // snaplen 40
  EXPECT_FALSE(engine(config_for()).load(r.records, error));
  EXPECT_NE(error.find("record 4: truncated by the capture's snap length (40 of "),
            std::string::npos)
      << error;
  r = http_like();
  r.frames[1][14] = std::byte{0x65};  // IP version 6 in an IPv4 EtherType
  EXPECT_FALSE(engine(config_for()).load(r.records, error));
  EXPECT_NE(error.find("record 2: malformed frame"), std::string::npos) << error;
  r = recording{};
  r.add(0, arp_frame(rec_client, wire::arp_op::request, rec_server));
  EXPECT_FALSE(engine(config_for()).load(r.records, error));
  EXPECT_NE(error.find("no IPv4 frame"), std::string::npos) << error;
  // A flow without its SYN (the capture started mid-flow) is skipped, not replayed; with no
  // other flow there is nothing to replay, which is an error, not an empty success.
  r = http_like();
  r.records.erase(r.records.begin(), r.records.begin() + 2);
  EXPECT_FALSE(engine(config_for()).load(r.records, error));
  EXPECT_NE(error.find("nothing to replay: every flow to 10.0.0.2 is skipped; tcp 10.0.0.1:40000 > "
                       "10.0.0.2:80: the capture has no SYN from the replayed side"),
            std::string::npos)
      << error;
  endpoint4 c = rec_client;
  c.port = 5353;
  endpoint4 srv = rec_server;
  srv.port = 53;
  r.add(9 * millisecond, udp_frame(c, srv, "query"));
  engine e(config_for());
  ASSERT_TRUE(e.load(r.records, error)) << error;
  ASSERT_EQ(e.report().flows.size(), 2U);
  EXPECT_TRUE(e.report().flows[0].skipped);
  EXPECT_FALSE(e.report().flows[1].skipped);
}

/// Two request/response exchanges on one connection: "GET1" -> "R1", "GET2" -> "R2".
recording two_requests() {
  recording r;
  using namespace wire::tcp_flag;
  const wire::tcp_options none;
  r.add(0, tcp_frame(rec_client, rec_server, client_isn, 0, wire::tcp_flag::syn, none));
  r.add(1 * millisecond, tcp_frame(rec_server, rec_client, server_isn, client_isn + 1,
                                   wire::tcp_flag::syn | ack, none));
  r.add(2 * millisecond,
        tcp_frame(rec_client, rec_server, client_isn + 1, server_isn + 1, ack, none, "GET1"));
  r.add(3 * millisecond,
        tcp_frame(rec_server, rec_client, server_isn + 1, client_isn + 5, ack, none, "R1"));
  r.add(4 * millisecond,
        tcp_frame(rec_client, rec_server, client_isn + 5, server_isn + 3, ack, none, "GET2"));
  r.add(5 * millisecond,
        tcp_frame(rec_server, rec_client, server_isn + 3, client_isn + 9, ack, none, "R2"));
  r.add(6 * millisecond,
        tcp_frame(rec_client, rec_server, client_isn + 9, server_isn + 5, ack, none));
  return r;
}

TEST(ReplayEngine, FastReplayWaitsFromTheLastFrameNotFromTheStart) {
  // --fast plans every frame at the start; a session longer than the response timeout (2 s)
  // whose responses keep coming must not be cut off as "missing response".
  const recording r = two_requests();
  harness h(config_for(true));
  h.begin(r);
  h.syn_ack(1 * millisecond);  // then ACK + GET1
  const std::uint32_t our = isn_for(7, 0);
  using namespace wire::tcp_flag;
  const wire::tcp_options none;
  ASSERT_EQ(h.sent.size(), 2U);
  h.poll(1900 * millisecond);
  h.e.on_frame(1900 * millisecond, tcp_frame(live, us, live_isn + 1, our + 5, ack, none, "R1"));
  h.poll(1900 * millisecond);  // GET2
  ASSERT_EQ(h.sent.size(), 3U);
  EXPECT_EQ(h.e.next_wakeup(), 3900 * millisecond);  // 2 s after GET2 went out
  h.poll(2100 * millisecond);  // past start + 2 s: still waiting, not "missing"
  EXPECT_EQ(h.e.report().flows[0].missing_responses, 0U) << h.e.report().json();
  EXPECT_FALSE(h.e.report().flows[0].aborted);
  h.e.on_frame(2200 * millisecond, tcp_frame(live, us, live_isn + 3, our + 9, ack, none, "R2"));
  h.poll(2200 * millisecond);  // the last ACK
  ASSERT_EQ(h.sent.size(), 4U);
  h.poll(2300 * millisecond);
  EXPECT_TRUE(h.e.done());
  EXPECT_FALSE(h.e.report().diverged()) << h.e.report().json();
  // And a response that never comes is still reported, 2 s after the request.
  harness m(config_for(true));
  m.begin(r);
  m.syn_ack(1 * millisecond);
  m.poll(2000 * millisecond);
  EXPECT_EQ(m.e.report().flows[0].missing_responses, 0U);
  m.poll(2001 * millisecond);
  EXPECT_EQ(m.e.report().flows[0].missing_responses, 1U);
  ASSERT_TRUE(m.e.report().diverged());
  EXPECT_NE(m.e.report().divergences[0].find("waited for byte 3, live sent 1"), std::string::npos)
      << m.e.report().divergences[0];
}

TEST(ReplayEngine, LiveRetransmissionsDoNotExtendTheWait) {
  // The replayer never acknowledges on its own, so a live stack retransmits a short response;
  // only new bytes count as progress, or "missing response" would never come.
  const recording r = http_like();
  harness h(config_for(true));
  h.begin(r);
  h.syn_ack(1 * millisecond, ts(1, 1));
  const std::uint32_t our = isn_for(7, 0);
  using namespace wire::tcp_flag;
  const auto short_response = tcp_frame(live, us, live_isn + 1, our + 4, ack, ts(2, 1), "O");
  h.e.on_frame(10 * millisecond, short_response);  // 1 of the 2 recorded bytes
  h.poll(10 * millisecond);
  h.e.on_frame(1510 * millisecond, short_response);  // retransmitted
  h.poll(1510 * millisecond);
  EXPECT_EQ(h.e.report().flows[0].missing_responses, 0U);
  EXPECT_EQ(h.e.next_wakeup(), 2010 * millisecond);  // 2 s after the last new byte
  h.poll(2010 * millisecond);
  EXPECT_EQ(h.e.report().flows[0].missing_responses, 1U) << h.e.report().json();
  EXPECT_EQ(h.e.report().flows[0].retransmissions, 1U);
}

TEST(ReplayEngine, RefusedConnectionsAreComparedOnBothSides) {
  recording r;
  using namespace wire::tcp_flag;
  const wire::tcp_options none;
  r.add(0, tcp_frame(rec_client, rec_server, client_isn, 0, wire::tcp_flag::syn, none));
  r.add(1 * millisecond,
        tcp_frame(rec_server, rec_client, 0, client_isn + 1, wire::tcp_flag::rst | ack, none));
  const std::uint32_t our = isn_for(7, 0);
  for (const bool live_refuses : {true, false}) {
    harness h(config_for(true));
    std::string error;
    ASSERT_TRUE(h.e.load(r.records, error)) << error;
    h.start(0);
    h.poll(0);
    ASSERT_EQ(h.sent.size(), 1U);
    if (live_refuses) {
      h.e.on_frame(1 * millisecond,
                   tcp_frame(live, us, 0, our + 1, wire::tcp_flag::rst | ack, none));
    } else {
      h.e.on_frame(1 * millisecond,
                   tcp_frame(live, us, live_isn, our + 1, wire::tcp_flag::syn | ack, none));
    }
    h.poll(200 * millisecond);
    EXPECT_TRUE(h.e.done()) << live_refuses;
    const replay_report& rep = h.e.report();
    ASSERT_EQ(rep.flows.size(), 1U);
    EXPECT_TRUE(rep.flows[0].recorded_rst);
    EXPECT_EQ(rep.flows[0].live_rst, live_refuses);
    EXPECT_EQ(rep.frames_unexpected, 0U);
    EXPECT_EQ(rep.diverged(), !live_refuses) << rep.json();
    if (!live_refuses) {
      EXPECT_NE(rep.json().find("the recorded reset was not sent"), std::string::npos);
    }
  }
}

TEST(ReplayEngine, BogusRecordedSequenceNumbersStayBounded) {
  // T's segments far past its ISN, or before it: the recorded stream must not grow to gigabytes.
  recording r = http_like();
  using namespace wire::tcp_flag;
  r.add(6 * millisecond, tcp_frame(rec_server, rec_client, server_isn + 1 + 0x10000000U,
                                   client_isn + 4, ack, ts(902, 5005), "far"));
  r.add(7 * millisecond, tcp_frame(rec_server, rec_client, server_isn - 100, client_isn + 4, ack,
                                   ts(903, 5005), "before"));
  replay_config cfg = config_for();
  cfg.max_live_bytes = 1 << 20;
  engine e(cfg);
  std::string error;
  ASSERT_TRUE(e.load(r.records, error)) << error;
  ASSERT_EQ(e.report().flows.size(), 1U);
  EXPECT_EQ(e.report().flows[0].recorded_bytes, 2U);  // "OK" only
}

}  // namespace replay_engine_test
}  // namespace
