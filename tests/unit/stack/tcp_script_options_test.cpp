// Scripted TCP: options - MSS (RFC 6691), window scale and timestamps (RFC 7323), PAWS, and
// sequence and timestamp numbers across 2^32.
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_options_test {

class TcpOptions : public TcpScript {};

const peer_syn no_ts{.mss = 1460, .ws = 7, .ts = false};

// RFC 6691 / RFC 9293 3.7.1: the MSS we advertise is the MTU minus 40 (IP and TCP headers).
TEST_F(TcpOptions, AdvertisedMssIsMtuMinus40) {
  cfg_.mtu = 1280;
  listen();
  inject({.flags = "S", .seq = 0, .mss = 1460});
  expect({.flags = "S.", .seq = 0, .ack = 1, .mss = 1240});
}

// RFC 6691 / tcp_config::min_mss: a peer MSS of 0 or 1 is raised to 64, so there is no division
// by zero and no 1-byte segments; with IW = min(10*64, max(128, 14600)) = 640 bytes, ten
// 64-byte segments go first.
TEST_F(TcpOptions, PeerMssZeroOrOneIsRaisedToTheMinimum) {
  for (const std::uint16_t tiny : {std::uint16_t{0}, std::uint16_t{1}}) {
    use_port(static_cast<std::uint16_t>(40000 + tiny));
    const socket_id c = passive_open({.mss = tiny, .ws = 7, .ts = false});
    EXPECT_EQ(info(c).mss, 64U);
    send_stream(c, 1000);
    std::size_t segments = 0;
    for (const observed& o : drain()) {
      EXPECT_EQ(o.len(), 64U) << o.str();
      ++segments;
    }
    EXPECT_EQ(segments, 10U);
    EXPECT_FALSE(tcp().abort(c, now()));
    drain();
  }
}

// RFC 9293 3.7.1 / RFC 6691: without an MSS option the peer's MSS is 536.
TEST_F(TcpOptions, MissingMssMeans536) {
  const socket_id c = passive_open({.mss = std::nullopt, .ws = std::nullopt, .ts = false});
  EXPECT_EQ(info(c).mss, 536U);
  send_stream(c, 1000);
  expect({.flags = ".", .seq = 1, .len = 536});
}

// A peer MSS larger than our MTU allows is bounded by our MTU (1460).
TEST_F(TcpOptions, PeerMssAboveOurMtuIsBoundedByIt) {
  const socket_id c = passive_open({.mss = 9000, .ws = 7, .ts = false});
  EXPECT_EQ(info(c).mss, 1460U);
  send_stream(c, 3000);
  expect({.flags = ".", .seq = 1, .len = 1460});
}

// RFC 7323 2.3: the shift is the smallest s with receive_buffer >> s <= 65535 (1 MiB -> 5,
// scripts/tcp_expected.py); RFC 7323 2.2: the SYN-ACK's own window is not scaled; later window
// fields are (ACK of the SYN-ACK: 1048576 >> 5 = 32768).
TEST_F(TcpOptions, WindowScaleFollowsTheReceiveBuffer) {
  cfg_.tcp.receive_buffer = 1 << 20;
  connect(80);
  expect({.flags = "S", .seq = 0, .win = 65535, .ws = 5});
  inject({.flags = "S.", .seq = 0, .ack = 1, .mss = 1460, .ws = 0});
  expect({.flags = ".", .seq = 1, .ack = 1, .win = 32768});
}

TEST_F(TcpOptions, SmallReceiveBufferAdvertisesShiftZero) {
  cfg_.tcp.receive_buffer = 65535;
  connect(80);
  expect({.flags = "S", .seq = 0, .win = 65535, .ws = 0});
}

// tcp_config::window_scaling / timestamps off: our SYN carries neither option.
TEST_F(TcpOptions, OptionsCanBeTurnedOff) {
  cfg_.tcp.window_scaling = false;
  cfg_.tcp.timestamps = false;
  connect(80);
  expect({.flags = "S", .seq = 0, .mss = 1460, .ws = absent, .ts = absent});
}

// RFC 7323 2.3: a shift above 14 is used as 14 (and it is logged, not refused).
TEST_F(TcpOptions, PeerShiftAbove14IsUsedAs14) {
  const socket_id c = passive_open({.mss = 1460, .ws = 15, .ts = false, .win = 65535});
  EXPECT_EQ(info(c).send_scale, 14);
  inject({.flags = ".", .seq = 1, .ack = 1, .win = 2});
  EXPECT_EQ(info(c).send_window, 2U << 14U);
}

// RFC 7323 3.2 / 4.3: our ACK echoes the peer's TSval (TS.Recent), and our TSval advances with
// our clock in milliseconds. When two segments are acknowledged together, TS.Recent is the
// TSval of the earlier one (it is updated only when SEG.SEQ <= Last.ACK.sent).
TEST_F(TcpOptions, TimestampsAreEchoedAndAdvanceInMilliseconds) {
  const socket_id c = passive_open();
  const std::uint32_t v0 = our_tsval();
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 1, .ts = tsopt(7000, v0), .data = "one"});
  at(210);
  inject({.flags = ".", .seq = 4, .ack = 1, .ts = tsopt(7010, v0), .data = "two"});
  at(240);
  const observed a = expect({.flags = ".", .seq = 1, .ack = 7, .ts = present, .tsecr = 7000});
  EXPECT_EQ(a.tsval() - v0, static_cast<std::uint32_t>(a.at / millisecond) - 0U)
      << "TSval = ms clock + offset (the SYN-ACK went out at 0 ms)";
  EXPECT_EQ(read(c), "onetwo");
}

// RFC 7323 5.3 (PAWS): a segment whose TSval is older than TS.Recent is dropped, with an ACK;
// its data is not delivered; counted in paws_rejected.
TEST_F(TcpOptions, PawsDropsOldTimestampWithAnAck) {
  const socket_id c = passive_open();
  inject({.flags = ".", .seq = 1, .ack = 1, .ts = tsopt(9000, our_tsval()), .data = "new"});
  at(140);
  expect({.flags = ".", .seq = 1, .ack = 4, .tsecr = 9000});
  inject({.flags = ".", .seq = 4, .ack = 1, .ts = tsopt(8000, our_tsval()), .data = "old"});
  expect({.flags = ".", .seq = 1, .ack = 4, .tsecr = 9000});
  EXPECT_EQ(tcp().counters().paws_rejected, 1U);
  EXPECT_EQ(read(c), "new");
}

// RFC 7323 5.2 / 5.3: timestamps compare modulo 2^32, so PAWS works across the TSval wrap: a
// TSval just past 2^32 is newer than one just below; one below it again is older.
TEST_F(TcpOptions, PawsAcrossTheTimestampWrap) {
  peer_ts_base(0xFFFFFF00U);  // the peer's clock wraps 256 ms into the script
  const socket_id c = passive_open();
  at(300);  // peer clock 0xFFFFFF00 + 300 = 0x2C: wrapped
  inject({.flags = ".", .seq = 1, .ack = 1, .data = "after wrap"});
  at(340);
  expect({.flags = ".", .seq = 1, .ack = 11, .tsecr = 0x2CU});
  inject({.flags = ".", .seq = 11, .ack = 1, .ts = tsopt(0xFFFFFFF0U, our_tsval()), .data = "x"});
  expect({.flags = ".", .seq = 1, .ack = 11, .tsecr = 0x2CU});  // older: PAWS
  inject({.flags = ".", .seq = 11, .ack = 1, .ts = tsopt(0x40U, our_tsval()), .data = "y"});
  at(400);
  expect({.flags = ".", .seq = 1, .ack = 12, .tsecr = 0x40U});
  EXPECT_EQ(read(c), "after wrapy");
  EXPECT_EQ(tcp().counters().paws_rejected, 1U);
}

// Issue 9: the peer's ISN is 0xFFFFFFFF, so its first data byte has sequence number 0 and
// every segment lives across 2^32; out-of-order data across the wrap is put back in order.
TEST_F(TcpOptions, PeerSequenceNumbersAcross2To32) {
  peer_isn(0xFFFFFFFFU);
  const socket_id c = passive_open(no_ts);
  inject({.flags = ".", .seq = 1461, .ack = 1, .len = 1460});  // ahead: out of order
  expect({.flags = ".", .seq = 1, .ack = 1});
  inject({.flags = ".", .seq = 1, .ack = 1, .len = 1460});
  expect({.flags = ".", .seq = 1, .ack = 2921});
  EXPECT_EQ(read(c), stream_bytes(0, 2920));
}

TEST_F(TcpOptions, PeerSegmentsStraddling2To32) {
  peer_isn(0xFFFFFF00U);  // 255 bytes of data before the wrap
  const socket_id c = passive_open(no_ts);
  std::string want;
  for (std::uint32_t off = 0; off < 3000; off += 1000) {
    inject({.flags = ".", .seq = 1 + off, .ack = 1, .len = 1000});
    want += stream_bytes(off, 1000);
  }
  at(200);
  const std::vector<observed> acks = drain();
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back().rel_ack, 3001U);
  EXPECT_EQ(acks.back().tcp.ack, 0xFFFFFF00U + 3001U);
  EXPECT_EQ(read(c), want);
}

// Our own sequence numbers across 2^32: the ISN is ours (RFC 6528), so the script looks for a
// peer port whose connection gets an ISN within 2 MiB below 2^32 (resetting the others), then
// sends 3 MiB through the wrap and checks every byte and acknowledgment.
TEST_F(TcpOptions, OurSequenceNumbersAcross2To32) {
  const socket_id l = listen();
  std::uint16_t port = 0;
  for (std::uint16_t p = 20000; p < 65000 && port == 0; ++p) {
    use_port(p);
    inject({.flags = "S", .seq = 0, .mss = 1460, .ws = 7});
    const observed sa = expect({.flags = "S.", .seq = 0, .ack = 1});
    if (sa.tcp.seq >= 0xFFE00000U) {
      port = p;
    } else {
      inject({.flags = "R", .seq = 1});
    }
  }
  ASSERT_NE(port, 0) << "no ISN near 2^32 in 45000 tries";
  inject({.flags = ".", .seq = 1, .ack = 1});
  const socket_id c = accept_one(l);
  const std::uint32_t isn = our_isn();
  const std::size_t total = 3 << 20;
  std::size_t queued = 0;
  std::uint32_t acked = 1;  // relative
  bool wrapped = false;
  for (int round = 0; round < 10000 && acked < total + 1; ++round) {
    if (queued < total) {
      queued += send_stream(c, std::min<std::size_t>(total - queued, 64 * 1024));
    }
    at(now_ms() + 1);
    for (const observed& o : drain()) {
      ASSERT_EQ(o.text(), stream_bytes(o.rel_seq - 1, o.len())) << o.str();
      wrapped = wrapped || o.tcp.seq < isn;
      acked = std::max<std::uint32_t>(acked, o.rel_seq + static_cast<std::uint32_t>(o.len()));
    }
    inject({.flags = ".", .seq = 1, .ack = acked});
  }
  EXPECT_TRUE(wrapped);
  EXPECT_EQ(acked, total + 1);
  EXPECT_EQ(info(c).bytes_acked, total);
  EXPECT_EQ(state(c), tcp_state::established);
}

}  // namespace tcp_script_options_test
}  // namespace
}  // namespace dpdk_net::stack::script
