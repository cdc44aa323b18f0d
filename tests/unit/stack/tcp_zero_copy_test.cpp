// Zero-copy send (tcp_layer::send_external): external buffers go out by reference where the
// device chains (copied where it does not), every byte arrives in order even when mixed with
// copied data and under loss, and every buffer's release hook runs exactly once, only after the
// peer acknowledged its bytes (or the connection was aborted).
#include <gtest/gtest.h>

#include <deque>
#include <vector>

#include "tcp_duo.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_zero_copy_test {

using testing::duo;
using testing::duo_a_ip;
using testing::duo_b_ip;
using testing::duo_byte;
using testing::duo_config;

/// An application buffer with a release hook that counts.
struct app_buffer {
  std::vector<std::byte> bytes;
  external_buffer ext;
  int released = 0;

  app_buffer(std::uint64_t seed, std::size_t first_index, std::size_t size) : bytes(size) {
    for (std::size_t i = 0; i < size; ++i) {
      bytes[i] = duo_byte(seed, first_index + i);
    }
    ext.data = bytes.data();
    ext.size = bytes.size();
    ext.on_release = [](external_buffer&, void* self) noexcept {
      ++static_cast<app_buffer*>(self)->released;
    };
    ext.context = this;
  }
  app_buffer(const app_buffer&) = delete;
  app_buffer& operator=(const app_buffer&) = delete;
};

/// One connection a -> b: a sends `total` bytes of stream `seed`, alternating external buffers
/// of `chunk` bytes with copied runs of `copied` bytes (0: external only); b reads and checks.
struct zero_copy_run {
  static constexpr std::uint64_t seed = 42;
  std::size_t total, chunk, copied;
  std::deque<app_buffer> buffers;  // stable addresses
  std::size_t queued = 0, got = 0, acked_when_released_min = SIZE_MAX;
  bool wrong = false, eof = false, closed = false;
  tcp_layer::socket_id listener = 0, client = 0, server = tcp_layer::invalid_socket;

  zero_copy_run(std::size_t total_bytes, std::size_t chunk_bytes, std::size_t copied_bytes)
      : total(total_bytes), chunk(chunk_bytes), copied(copied_bytes) {}

  void open(duo& d) {
    ASSERT_FALSE(d.b().tcp().open(listener));
    ASSERT_FALSE(d.b().tcp().bind(listener, 80));
    ASSERT_FALSE(d.b().tcp().listen(listener, 4));
    ASSERT_FALSE(d.a().tcp().open(client));
    ASSERT_FALSE(d.a().tcp().connect(client, tcp_endpoint{duo_b_ip, 80}, d.now()));
  }

  void step(duo& d) {
    std::array<socket_event, 8> ev{};
    (void)d.a().poll_events(ev);
    (void)d.b().poll_events(ev);
    if (server == tcp_layer::invalid_socket) {
      (void)d.b().tcp().accept(listener, server);
    }
    tcp_layer& ta = d.a().tcp();
    bool copy_turn =
        copied != 0 && (queued / (chunk + copied)) * (chunk + copied) + chunk <= queued;
    while (queued < total) {
      if (copy_turn) {
        std::vector<std::byte> tmp(std::min(copied, total - queued));
        for (std::size_t i = 0; i < tmp.size(); ++i) {
          tmp[i] = duo_byte(seed, queued + i);
        }
        const auto r = ta.send(client, tmp);
        queued += r.bytes;
        if (r.bytes < tmp.size()) {
          break;
        }
      } else {
        const std::size_t n = std::min(chunk, total - queued);
        buffers.emplace_back(seed, queued, n);
        const auto r = ta.send_external(client, buffers.back().ext, 0, n);
        if (r.bytes == 0) {
          buffers.pop_back();
          ASSERT_EQ(r.error, std::make_error_code(std::errc::resource_unavailable_try_again));
          break;
        }
        ASSERT_EQ(r.bytes, n) << "all or nothing";
        queued += n;
        buffers.back().ext.drop_reference();  // the creator's reference: the stack holds its own
      }
      copy_turn = copied != 0 && !copy_turn;
    }
    if (queued == total && total != 0 && !closed) {
      closed = true;
      EXPECT_FALSE(ta.shutdown(client, shutdown_type::send, d.now()));
    }
    // A buffer is released only once all of it is acknowledged.
    const auto info = ta.info(client);
    std::size_t end = 0;
    for (app_buffer& b : buffers) {
      if (b.released != 0 && info) {
        EXPECT_LE(end + b.bytes.size(), info->bytes_acked + copied_before(end + b.bytes.size()))
            << "released before acknowledged";
      }
      end += b.bytes.size();
    }
    std::vector<std::byte> in(64 * 1024);
    while (server != tcp_layer::invalid_socket) {
      const auto r = d.b().tcp().receive(server, in);
      if (r.bytes == 0) {
        eof = eof || r.error == make_error_code(tcp_errc::end_of_stream);
        break;
      }
      for (std::size_t i = 0; i < r.bytes && !wrong; ++i) {
        wrong = in[i] != duo_byte(seed, got + i);
      }
      got += r.bytes;
    }
  }
  /// Copied bytes interleaved before the external byte count `external_end` (0 if none).
  [[nodiscard]] std::size_t copied_before(std::size_t external_end) const {
    return copied == 0 ? 0 : ((external_end + chunk - 1) / chunk) * copied;
  }
  [[nodiscard]] int released() const {
    int n = 0;
    for (const app_buffer& b : buffers) {
      n += b.released;
    }
    return n;
  }
};

stack_config chaining(stack_config c, bool on) {
  c.tx_chaining = on;
  return c;
}

TEST(TcpZeroCopy, ExternalBuffersGoByReferenceAndAreReleasedOnceAcknowledged) {
  zero_copy_run run(1 << 20, 64 * 1024, 0);
  duo d(chaining(duo_config(duo_a_ip, 1), true), duo_config(duo_b_ip, 2));
  std::uint64_t external_segments = 0;
  d.seen_by_b = [&](const packet& p) {
    for (const segment& s : p.segments()) {
      external_segments += s.ext != nullptr ? 1 : 0;
    }
  };
  run.open(d);
  d.app = [&] { run.step(d); };
  d.run(60 * second, [&] { return run.eof; });
  ASSERT_TRUE(run.eof);
  EXPECT_FALSE(run.wrong);
  EXPECT_EQ(run.got, run.total);
  EXPECT_GT(external_segments, run.total / 1460) << "every data segment points into a buffer";
  d.run(d.now() + second);
  EXPECT_EQ(run.released(), static_cast<int>(run.buffers.size())) << "each released once";
  const auto k = d.a().counters().tcp;
  EXPECT_EQ(k.external_buffers, 0U);
  EXPECT_EQ(k.external_bytes, 0U);
  EXPECT_EQ(k.buffer_peak, 0U) << "no send ring: nothing was copied";
}

TEST(TcpZeroCopy, MixedWithCopiedDataUnderLossEveryByteArrivesAndEveryBufferIsReleased) {
  zero_copy_run run(3 << 20, 48 * 1024 + 7, 1000);
  duo d(chaining(duo_config(duo_a_ip, 1), true), duo_config(duo_b_ip, 2));
  d.drop_a = [](std::uint64_t n, const packet&) { return n % 23 == 5 || n % 97 == 11; };
  run.open(d);
  d.app = [&] { run.step(d); };
  d.run(600 * second, [&] { return run.eof; });
  ASSERT_TRUE(run.eof);
  EXPECT_FALSE(run.wrong);
  EXPECT_EQ(run.got, run.total);
  EXPECT_GT(d.a().counters().tcp.retransmits, 10U) << "the loss was real";
  d.run(d.now() + second);
  EXPECT_EQ(run.released(), static_cast<int>(run.buffers.size()));
  EXPECT_EQ(d.a().counters().tcp.external_buffers, 0U);
  EXPECT_EQ(d.a().counters().tcp.buffer_bytes, 0U) << "the copied runs' ring went back too";
}

TEST(TcpZeroCopy, WithoutChainingTheDataIsCopiedIntoOneBuffer) {
  zero_copy_run run(512 * 1024, 40000, 333);
  duo d(chaining(duo_config(duo_a_ip, 1), false), duo_config(duo_b_ip, 2));
  bool chained = false;
  d.seen_by_b = [&](const packet& p) { chained = chained || p.segment_count() != 1; };
  run.open(d);
  d.app = [&] { run.step(d); };
  d.run(60 * second, [&] { return run.eof; });
  ASSERT_TRUE(run.eof);
  EXPECT_FALSE(run.wrong);
  EXPECT_FALSE(chained) << "a device that cannot chain gets one buffer per frame";
  d.run(d.now() + second);
  EXPECT_EQ(run.released(), static_cast<int>(run.buffers.size()));
}

TEST(TcpZeroCopy, AbortReleasesWhatWasNeverAcknowledged) {
  zero_copy_run run(8 << 20, 256 * 1024, 0);
  duo d(chaining(duo_config(duo_a_ip, 1), true), duo_config(duo_b_ip, 2));
  run.open(d);
  d.app = [&] { run.step(d); };
  d.run(60 * second, [&] { return run.got > 300 * 1024; });
  ASSERT_GT(run.buffers.size(), 1U);
  EXPECT_LT(run.released(), static_cast<int>(run.buffers.size()));
  EXPECT_GT(d.a().counters().tcp.external_buffers, 0U);
  ASSERT_FALSE(d.a().tcp().abort(run.client, d.now()));
  d.app = nullptr;
  d.run(d.now() + second);
  EXPECT_EQ(run.released(), static_cast<int>(run.buffers.size())) << "once each";
  EXPECT_EQ(d.a().counters().tcp.external_buffers, 0U);
}

TEST(TcpZeroCopy, RefusesBadRangesAndAFullSendBufferWithoutTakingAReference) {
  duo d(chaining(duo_config(duo_a_ip, 1), true), duo_config(duo_b_ip, 2));
  zero_copy_run run(0, 1, 0);
  run.open(d);
  d.app = [&] { run.step(d); };
  d.run(second, [&] { return run.server != tcp_layer::invalid_socket; });
  d.app = nullptr;
  app_buffer big(1, 0, 300 * 1024);
  tcp_layer& t = d.a().tcp();
  const auto invalid = std::make_error_code(std::errc::invalid_argument);
  EXPECT_EQ(t.send_external(run.client, big.ext, 0, 0).error, invalid);
  EXPECT_EQ(t.send_external(run.client, big.ext, 10, big.bytes.size()).error, invalid);
  EXPECT_EQ(t.send_external(run.client, big.ext, big.bytes.size() + 1, 1).error, invalid);
  EXPECT_EQ(big.ext.references, 1U);
  // More than the send buffer (256 KiB) at once could never fit: message_size (not "try again").
  EXPECT_EQ(t.send_external(run.client, big.ext, 0, big.bytes.size()).error,
            std::make_error_code(std::errc::message_size));
  EXPECT_EQ(big.ext.references, 1U);
  EXPECT_EQ(t.send_external(run.client, big.ext, 0, 200 * 1024).bytes, 200U * 1024);
  EXPECT_EQ(big.ext.references, 2U);
  const auto full = t.send_external(run.client, big.ext, 0, 100 * 1024);
  EXPECT_EQ(full.bytes, 0U) << "over the limit with what is queued";
  EXPECT_EQ(full.error, std::make_error_code(std::errc::resource_unavailable_try_again));
  EXPECT_EQ(t.send_external(tcp_layer::invalid_socket, big.ext, 0, 1).error,
            std::make_error_code(std::errc::bad_file_descriptor));
  d.run(d.now() + 5 * second);
  EXPECT_EQ(big.ext.references, 1U) << "acknowledged: the stack's reference is gone";
  EXPECT_EQ(big.released, 0) << "the creator still holds one";
}

}  // namespace tcp_zero_copy_test
}  // namespace
}  // namespace dpdk_net::stack
