// Checksum and segmentation offloads: the same transfer through a memory_link without offloads
// and with them (the stack requests checksums and TSO super-frames through packet_meta::tx and
// the device emulation fills and cuts them, DPDK's way) puts byte-identical frames on the wire.
// So the offload path is exactly the software path, moved into the device.
#include <gtest/gtest.h>

#include <vector>

#include "tcp_duo.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_offload_test {

using testing::duo;
using testing::duo_a_ip;
using testing::duo_b_ip;
using testing::duo_byte;
using testing::duo_config;

struct capture {
  std::vector<std::vector<std::byte>> frames;  // what b received, in order
  tcp_counters a{}, b{};
  memory_offload_counters device_a{}, device_b{};
  std::size_t got_up = 0, got_down = 0;
  bool wrong = false;
};

/// a sends `up` bytes to b (in 32 KiB writes: copied, or external runs), b answers each 1,000 bytes
/// it reads with 100 bytes (small segments: Nagle and PSH at work), then both close.
capture transfer(offload_set offloads, bool zero_copy) {
  memory_link_config link;
  link.offloads = offloads;
  link.pool_size = 8192;
  link.ring_size = 1024;
  stack_config ca = duo_config(duo_a_ip, 1);
  stack_config cb = duo_config(duo_b_ip, 2);
  // What each stack learns from its device: tx offloads and chaining (both ends chain).
  memory_link_config small = link;
  small.pool_size = 16;
  memory_link probe(small);
  use_device(ca, probe.a().info());
  use_device(cb, probe.b().info());
  duo d(ca, cb, &link);
  capture cap;
  d.seen_by_b = [&](const packet& p) {
    std::vector<std::byte> bytes(p.length());
    (void)p.copy_out(0, bytes);
    cap.frames.push_back(std::move(bytes));
  };
  constexpr std::size_t up = 1 << 20;
  std::vector<std::byte> source(up);
  for (std::size_t i = 0; i < up; ++i) {
    source[i] = duo_byte(5, i);
  }
  external_buffer ext;
  ext.data = source.data();
  ext.size = source.size();
  tcp_layer::socket_id listener = 0, client = 0, server = tcp_layer::invalid_socket;
  EXPECT_FALSE(d.b().tcp().open(listener));
  EXPECT_FALSE(d.b().tcp().bind(listener, 80));
  EXPECT_FALSE(d.b().tcp().listen(listener, 4));
  EXPECT_FALSE(d.a().tcp().open(client));
  EXPECT_FALSE(d.a().tcp().connect(client, tcp_endpoint{duo_b_ip, 80}, d.now()));
  std::size_t sent = 0, owed_down = 0, read_since = 0;
  bool a_closed = false, b_closed = false, a_eof = false;
  std::vector<std::byte> buf(10000);
  d.app = [&] {
    std::array<socket_event, 8> ev{};
    (void)d.a().poll_events(ev);
    (void)d.b().poll_events(ev);
    tcp_layer& ta = d.a().tcp();
    tcp_layer& tb = d.b().tcp();
    if (server == tcp_layer::invalid_socket) {
      (void)tb.accept(listener, server);
    }
    while (sent < up) {
      const std::size_t n = std::min<std::size_t>(32768, up - sent);
      const auto r = zero_copy ? ta.send_external(client, ext, sent, n)
                               : ta.send(client, std::span(source).subspan(sent, n));
      sent += r.bytes;
      if (r.bytes == 0) {
        break;
      }
    }
    if (sent == up && !a_closed) {
      a_closed = true;
      EXPECT_FALSE(ta.shutdown(client, shutdown_type::send, d.now()));
    }
    while (server != tcp_layer::invalid_socket) {
      const auto r = tb.receive(server, buf);
      if (r.bytes == 0) {
        if (r.error == make_error_code(tcp_errc::end_of_stream) && !b_closed && owed_down == 0) {
          b_closed = true;
          EXPECT_FALSE(tb.shutdown(server, shutdown_type::send, d.now()));
        }
        break;
      }
      for (std::size_t i = 0; i < r.bytes && !cap.wrong; ++i) {
        cap.wrong = buf[i] != source[cap.got_up + i];
      }
      cap.got_up += r.bytes;
      read_since += r.bytes;
      owed_down += read_since / 1000 * 100;
      read_since %= 1000;
    }
    while (owed_down != 0 && server != tcp_layer::invalid_socket) {
      std::vector<std::byte> answer(std::min<std::size_t>(owed_down, 100), std::byte{0x5a});
      const auto w = tb.send(server, answer);
      owed_down -= w.bytes;
      if (w.bytes == 0) {
        break;
      }
    }
    while (true) {
      const auto r = ta.receive(client, buf);
      cap.got_down += r.bytes;
      if (r.bytes == 0) {
        a_eof = a_eof || r.error == make_error_code(tcp_errc::end_of_stream);
        break;
      }
    }
  };
  d.run(120 * second, [&] { return a_eof && b_closed; });
  EXPECT_TRUE(a_eof);
  EXPECT_EQ(cap.got_up, up);
  EXPECT_EQ(cap.got_down, up / 1000 * 100);
  cap.a = d.a().counters().tcp;
  cap.b = d.b().counters().tcp;
  return cap;
}

void expect_identical(const capture& off, const capture& on) {
  EXPECT_FALSE(off.wrong);
  EXPECT_FALSE(on.wrong);
  ASSERT_EQ(off.frames.size(), on.frames.size());
  for (std::size_t i = 0; i < off.frames.size(); ++i) {
    ASSERT_EQ(off.frames[i], on.frames[i]) << "frame " << i << " of " << off.frames.size();
  }
}

TEST(TcpOffload, ChecksumOffloadGivesByteIdenticalFrames) {
  const capture off = transfer({}, false);
  const capture on = transfer({offload::ipv4_checksum, offload::tcp_checksum}, false);
  expect_identical(off, on);
  EXPECT_EQ(on.a.tso_frames, 0U);
  EXPECT_GT(off.frames.size(), 700U);
}

TEST(TcpOffload, TsoSuperFramesAreCutIntoTheSameFramesTheStackWouldHaveSent) {
  const capture off = transfer({}, false);
  const capture on =
      transfer({offload::ipv4_checksum, offload::tcp_checksum, offload::tcp_segmentation}, false);
  expect_identical(off, on);
  EXPECT_GT(on.a.tso_frames, 10U) << "super-frames were built";
  EXPECT_LT(on.a.segments_out, off.a.segments_out / 4) << "a handed the device far fewer frames";
}

TEST(TcpOffload, ZeroCopyWithTsoGivesTheSameFramesAsCopying) {
  const capture copied = transfer({}, false);
  const capture zero_copy =
      transfer({offload::ipv4_checksum, offload::tcp_checksum, offload::tcp_segmentation}, true);
  expect_identical(copied, zero_copy);
  // a held a receive ring (for b's answers) and no send ring: nothing was copied.
  EXPECT_EQ(zero_copy.a.buffer_peak, 256U * 1024);
  EXPECT_EQ(copied.a.buffer_peak, 2 * 256U * 1024);
  EXPECT_EQ(zero_copy.a.external_buffers, 0U) << "every reference dropped";
}

TEST(TcpOffload, AnMtuWhoseFramesDoNotFitOneBufferNeedsChaining) {
  packet_pool pool{packet_pool_config{"small", 16}};  // 2048-byte data room
  stack_config c = duo_config(duo_a_ip, 1);
  c.mtu = 9000;
  c.tcp.receive_buffer = 64 * 1024;
  try {
    stack s(c, pool, stack_secret{1, 2});
    ADD_FAILURE() << "9018-byte frames in 2048-byte buffers without chaining were accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tx_chaining"), std::string::npos) << e.what();
  }
  c.tx_chaining = true;  // a device that chains takes frames of several buffers
  stack s(c, pool, stack_secret{1, 2});
  EXPECT_EQ(s.config().mtu, 9000);
}

}  // namespace tcp_offload_test
}  // namespace
}  // namespace dpdk_net::stack
