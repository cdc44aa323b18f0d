// Scripted TCP: flow control - zero windows and persist probes, window shrink, silly-window
// avoidance on both sides. passive_open() ends at t=100 ms with RTO = 300 ms (RFC 6298 from the
// 100 ms handshake sample; scripts/tcp_expected.py).
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {
namespace {
namespace tcp_script_window_test {

class TcpWindow : public TcpScript {};

// A peer without window scaling or timestamps: raw windows are the windows, segments 1460.
const peer_syn plain{.mss = 1460, .ws = std::nullopt, .ts = false};

// RFC 9293 3.8.6.1 / RFC 1122 4.2.2.17: a zero window is probed, first after an RTO, then at
// exponentially growing intervals capped at rto_max (60 s), and the connection is kept as long
// as the receiver answers: ten minutes here, more probes than data_retries (15) allows RTOs.
// When the window opens, the data goes. RTO: handshake sample 100 (active_open), then the data
// ACK at 200 is a second sample of 100: RTTVAR = 3/4*50 = 37.5, SRTT 100, RTO = 250; so probes
// at 200 + 250, then +500, +1000, ... (scripts/tcp_expected.py's doubling, from 250).
TEST_F(TcpWindow, ZeroWindowHeldOpenForTenMinutes) {
  const socket_id c = active_open(plain);
  send_stream(c, 1000);
  expect({.flags = ".", .seq = 1, .len = 1000});
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 1001, .win = 0});
  send_stream(c, 1000);
  expect_nothing();
  std::vector<std::uint64_t> probes;  // times (ms)
  while (now_ms() < 10 * 60 * 1000) {
    const observed p = run_until_segment(10 * 60 * 1000);
    if (!p.valid) {
      break;
    }
    // A probe: <SEQ=SND.UNA-1> with no data (Linux), or one byte of new data (RFC 9293).
    EXPECT_TRUE((p.rel_seq == 1000 && p.len() == 0) || (p.rel_seq == 1001 && p.len() == 1))
        << p.str();
    probes.push_back(p.at / millisecond);
    inject({.flags = ".", .seq = 1, .ack = 1001, .win = 0});
  }
  ASSERT_GE(probes.size(), 15U);  // 250 .. 64000 (9 probes in 127.75 s), then one a minute
  EXPECT_NEAR(static_cast<double>(probes[0] - 200), 250.0, 2.0);
  std::uint64_t previous = probes[0] - 200;
  for (std::size_t k = 1; k < probes.size(); ++k) {
    const std::uint64_t interval = probes[k] - probes[k - 1];
    const std::uint64_t want = std::min<std::uint64_t>(2 * previous, 60000);
    EXPECT_NEAR(static_cast<double>(interval), static_cast<double>(want), 3.0)
        << "probe " << k << " at " << probes[k];
    previous = interval;
  }
  EXPECT_EQ(state(c), tcp_state::established);
  EXPECT_FALSE(tcp().error(c));
  EXPECT_EQ(tcp().counters().window_probes, probes.size());
  inject({.flags = ".", .seq = 1, .ack = 1001, .win = 65535});
  const observed d = expect({.flags = ".", .seq = 1001, .len = 1000});
  EXPECT_EQ(d.text(), stream_bytes(1000, 1000));
}

// A zero-window probe that is never answered counts like a retransmission (tcp_config::
// data_retries: "RTOs in a row (data, FIN, probes)"): with 3, the connection fails (timed_out)
// instead of probing forever - by 200 + 250 * (1 + 2 + 4 + 8) = 3950 ms.
TEST_F(TcpWindow, UnansweredZeroWindowProbesTimeOut) {
  cfg_.tcp.data_retries = 3;
  const socket_id c = active_open(plain);
  send_stream(c, 1000);
  expect({.flags = ".", .seq = 1, .len = 1000});
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 1001, .win = 0});
  send_stream(c, 1000);
  std::size_t probes = 0;
  while (run_until_segment(60000).valid) {
    ++probes;
  }
  EXPECT_EQ(tcp().error(c), std::make_error_code(std::errc::timed_out)) << probes << " probes";
  EXPECT_LE(probes, 4U);
}

// RFC 9293 3.8.6.2 ("shrinking the window is strongly discouraged", but a sender must cope): the
// peer moves its right edge left; we send nothing beyond it, fail nothing, and carry on when it
// opens again - the stream stays intact.
TEST_F(TcpWindow, WindowShrinkIsTolerated) {
  const socket_id c = passive_open({.mss = 1460, .ws = std::nullopt, .ts = false, .win = 7300});
  send_stream(c, 30000);
  for (std::uint32_t i = 0; i < 5; ++i) {
    expect({.flags = ".", .seq = 1 + i * 1460, .len = 1460});
  }
  expect_nothing();  // the window (7300) is full
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 1461, .win = 1460});  // right edge 7301 -> 2921
  expect_nothing();
  EXPECT_EQ(state(c), tcp_state::established);
  at(250);
  inject({.flags = ".", .seq = 1, .ack = 7301, .win = 7300});
  for (std::uint32_t i = 0; i < 5; ++i) {
    const observed o = expect({.flags = ".", .seq = 7301 + i * 1460, .len = 1460});
    EXPECT_EQ(o.text(), stream_bytes(7300 + i * 1460, 1460));
  }
  expect_nothing();
  EXPECT_FALSE(tcp().error(c));
}

// RFC 9293 3.8.6.2.1 / RFC 1122 4.2.3.4 (sender SWS avoidance): a window of 100 bytes, less than
// an MSS and than half the largest window the peer offered (65535), is not used at once; a
// window of 3000 sends two full segments and holds the 80-byte remainder.
TEST_F(TcpWindow, SenderAvoidsSillyWindow) {
  const socket_id c = passive_open(plain);
  send_stream(c, 100000);
  EXPECT_EQ(drain().size(), 10U);
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 14601, .win = 100});
  expect_nothing();
  at(210);
  inject({.flags = ".", .seq = 1, .ack = 14601, .win = 3000});
  expect({.flags = ".", .seq = 14601, .len = 1460});
  expect({.flags = ".", .seq = 16061, .len = 1460});
  expect_nothing();
}

// RFC 9293 3.8.6.2.2 / RFC 1122 4.2.3.3 (receiver SWS avoidance): with the buffer full (window
// 0), reading 100 bytes does not advertise a 100-byte window; the window is offered again once
// it can grow by min(RCV.BUFF/2, MSS) = min(4096, 1460).
TEST_F(TcpWindow, ReceiverAvoidsSillyWindow) {
  cfg_.tcp.receive_buffer = 8192;
  const socket_id c = passive_open(plain);
  for (std::uint32_t off = 0; off < 8192; off += 1460) {
    inject(
        {.flags = ".", .seq = 1 + off, .ack = 1, .len = std::min<std::uint32_t>(1460, 8192 - off)});
  }
  at(150);
  const std::vector<observed> acks = drain();
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back().rel_ack, 8193U);
  EXPECT_EQ(acks.back().tcp.window, 0);
  std::array<std::byte, 1460> buf{};
  EXPECT_EQ(tcp().receive(c, std::span(buf).first(100)).bytes, 100U);
  at(400);
  expect_nothing();
  EXPECT_EQ(tcp().receive(c, std::span(buf).first(1400)).bytes, 1400U);
  expect({.flags = ".", .seq = 1, .ack = 8193, .win = 1500});
  EXPECT_GE(tcp().counters().window_updates, 1U);
}

// The peer's window (unscaled here) bounds what is in flight, whatever cwnd allows.
TEST_F(TcpWindow, PeerWindowBoundsDataInFlight) {
  const socket_id c = passive_open({.mss = 1460, .ws = std::nullopt, .ts = false, .win = 4380});
  send_stream(c, 20000);
  EXPECT_EQ(drain().size(), 3U);
  EXPECT_EQ(info(c).in_flight, 4380U);
  EXPECT_EQ(info(c).send_window, 4380U);
  at(200);
  inject({.flags = ".", .seq = 1, .ack = 2921, .win = 4380});
  expect({.flags = ".", .seq = 4381, .len = 1460});
  expect({.flags = ".", .seq = 5841, .len = 1460});
  expect_nothing();
}

}  // namespace tcp_script_window_test
}  // namespace
}  // namespace dpdk_net::stack::script
