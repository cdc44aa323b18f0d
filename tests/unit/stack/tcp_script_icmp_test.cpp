// Scripted TCP: ICMP errors about our segments (RFC 5927, RFC 1122 4.2.3.9, RFC 1191): matched
// by the quoted 4-tuple, accepted only if the quoted sequence number lies in SND.UNA..SND.NXT
// (SND.UNA <= seq < SND.NXT), hard errors refuse a connect, later ones are soft.
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_icmp_test {

class TcpIcmp : public TcpScript {};

constexpr std::uint8_t unreachable = wire::icmp_type::destination_unreachable;

// RFC 1122 4.2.3.9 / RFC 5927 4: port unreachable about our SYN (quoting seq = ISS, the only
// valid value in SYN-SENT) refuses the connect: connection_refused, `error`, connect_failed.
TEST_F(TcpIcmp, PortUnreachableInSynSentRefusesTheConnect) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  inject_icmp(unreachable, wire::icmp_unreachable::port, 0);
  expect_nothing();
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::connection_refused));
  EXPECT_NE(events(c) & socket_events::error, 0);
  EXPECT_EQ(tcp().counters().connect_failed, 1U);
  EXPECT_EQ(tcp().counters().icmp_accepted, 1U);
}

// RFC 5927 4.1 (forged quotes): a quoted sequence number outside SND.UNA..SND.NXT is ignored
// (here ISS + 1000, and SND.NXT itself); the connect goes on and completes.
TEST_F(TcpIcmp, ForgedQuoteIsIgnoredInSynSent) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  inject_icmp(unreachable, wire::icmp_unreachable::port, 1000);
  inject_icmp(unreachable, wire::icmp_unreachable::port, 1);  // = SND.NXT: not in the range
  inject_icmp(unreachable, wire::icmp_unreachable::port, 0xFFFFFFF0U);
  EXPECT_FALSE(tcp().error(c));
  EXPECT_EQ(tcp().counters().icmp_ignored, 3U);
  inject({.flags = "S.", .seq = 0, .ack = 1, .mss = 1460});
  expect({.flags = ".", .seq = 1, .ack = 1});
  EXPECT_EQ(state(c), tcp_state::established);
}

// An error quoting a 4-tuple we have no connection for is ignored.
TEST_F(TcpIcmp, ErrorForAnUnknownConnectionIsIgnored) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  inject_icmp(unreachable, wire::icmp_unreachable::port, 0, 0, std::nullopt, 81);  // port 81
  EXPECT_FALSE(tcp().error(c));
  EXPECT_EQ(state(c), tcp_state::syn_sent);
}

// RFC 5927 4 / RFC 1122 4.2.3.9: host unreachable is a soft error - in SYN-SENT the connect
// goes on (and completes when the SYN-ACK comes).
TEST_F(TcpIcmp, HostUnreachableInSynSentIsSoft) {
  const socket_id c = connect(80);
  expect({.flags = "S", .seq = 0});
  inject_icmp(unreachable, wire::icmp_unreachable::host, 0);
  EXPECT_FALSE(tcp().error(c));
  EXPECT_EQ(state(c), tcp_state::syn_sent);
  inject({.flags = "S.", .seq = 0, .ack = 1, .mss = 1460});
  expect({.flags = ".", .seq = 1, .ack = 1});
}

// RFC 5927 4 (issue 9: "later ones are soft errors"): in ESTABLISHED a valid port unreachable
// does not abort the connection; data keeps flowing.
TEST_F(TcpIcmp, PortUnreachableWhenEstablishedIsSoft) {
  const socket_id c = passive_open();
  send_stream(c, 100);
  expect({.flags = ".", .seq = 1, .len = 100});
  inject_icmp(unreachable, wire::icmp_unreachable::port, 1);  // quotes SND.UNA: valid
  EXPECT_FALSE(tcp().error(c));
  EXPECT_EQ(state(c), tcp_state::established);
  at(150);
  inject({.flags = ".", .seq = 1, .ack = 101, .data = "still here"});
  at(200);
  EXPECT_EQ(read(c), "still here");
}

// RFC 1191 / RFC 5927 4 (frag-needed, valid quote): the path MTU drops to 1000, so segments
// carry at most 1000 - 40 - 12 (timestamps) = 948 bytes; what was in flight is sent again in
// segments of that size.
TEST_F(TcpIcmp, FragNeededLowersTheMss) {
  const socket_id c = passive_open();
  send_stream(c, 3 * 1448);
  EXPECT_EQ(drain().size(), 3U);
  at(120);
  inject_icmp(unreachable, wire::icmp_unreachable::fragmentation_needed, 1, 1000);
  EXPECT_EQ(info(c).mss, 948U);
  EXPECT_EQ(st().path_mtu(peer_ip, now()), 1000);
  const observed r = run_until_segment(2000);
  ASSERT_TRUE(r.valid);
  EXPECT_EQ(r.rel_seq, 1U);
  EXPECT_LE(r.len(), 948U);
  EXPECT_LE(r.ip.total_length, 1000);
  for (const observed& o : drain()) {
    EXPECT_LE(o.len(), 948U) << o.str();
  }
}

// RFC 5927 4.1: frag-needed with a forged quote (a sequence number we have not sent) changes
// nothing.
TEST_F(TcpIcmp, FragNeededWithForgedQuoteIsIgnored) {
  const socket_id c = passive_open();
  send_stream(c, 1448);
  EXPECT_EQ(drain().size(), 1U);
  inject_icmp(unreachable, wire::icmp_unreachable::fragmentation_needed, 50000, 1000);
  inject_icmp(unreachable, wire::icmp_unreachable::fragmentation_needed, 1449, 1000);  // SND.NXT
  EXPECT_EQ(info(c).mss, 1448U);
  EXPECT_EQ(tcp().counters().icmp_ignored, 2U);
}

}  // namespace tcp_script_icmp_test
}  // namespace
}  // namespace dpdk_net::stack::script
