// replay::run_on_device over scripted devices: a link that never goes quiet cannot starve the
// loop (the deadline and the stop flag still work), and a frame the device declines (queue full)
// is sent later, in order, not lost.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/replay/device_replay.hpp"
#include "replay_frames.hpp"

namespace {
namespace device_replay_test {

using namespace dpdk_net;
using namespace dpdk_net::replay;
using namespace dpdk_net::replay::test;

const endpoint4 rec_client{wire::ipv4_address::from_octets(10, 0, 0, 1), 40000,
                           mac_address{{2, 0, 0, 0, 0, 1}}};
const endpoint4 rec_server{wire::ipv4_address::from_octets(10, 0, 0, 2), 80,
                           mac_address{{2, 0, 0, 0, 0, 2}}};
const endpoint4 live{wire::ipv4_address::from_octets(198, 18, 0, 2), 80,
                     mac_address{{2, 0, 0, 0, 9, 2}}};
const endpoint4 us{wire::ipv4_address::from_octets(198, 18, 0, 10), 40000,
                   mac_address{{2, 0, 0, 0, 9, 10}}};

/// A handshake: SYN, SYN-ACK, ACK.
recording handshake() {
  recording r;
  using namespace wire::tcp_flag;
  r.add(0, tcp_frame(rec_client, rec_server, 1000, 0, wire::tcp_flag::syn));
  r.add(1 * millisecond, tcp_frame(rec_server, rec_client, 7000, 1001, wire::tcp_flag::syn | ack));
  r.add(2 * millisecond, tcp_frame(rec_client, rec_server, 1001, 7001, ack));
  return r;
}

replay_config config() {
  replay_config c;
  c.mac = us.mac;
  c.address = us.ip;
  c.live_address = live.ip;
  c.fast = true;
  c.seed = 3;
  return c;
}

/// A handshake, then "GET" (no response recorded).
recording handshake_then_get() {
  recording r = handshake();
  r.add(3 * millisecond, tcp_frame(rec_client, rec_server, 1001, 7001,
                                   wire::tcp_flag::ack | wire::tcp_flag::psh, {}, "GET"));
  return r;
}

/// A poll-mode device playing the live host: it answers ARP for `live` and a SYN with a SYN-ACK.
/// tx_burst call number n (from 1) takes nothing when `decline(n)` (a full queue); `flood` makes
/// every rx_burst return a stray frame, forever.
class scripted_device final : public device {
 public:
  scripted_device(std::function<bool(std::size_t)> decline, bool flood)
      : pool_(packet_pool_config{}), decline_(std::move(decline)), flood_(flood) {
    info_.name = "scripted";
    info_.mac = live.mac;
  }
  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t /*queue*/, std::span<packet> out) noexcept override {
    std::size_t n = 0;
    while (n < out.size() && !replies_.empty()) {
      out[n++] = make(replies_.front());
      replies_.pop_front();
    }
    if (flood_ && n < out.size()) {
      endpoint4 stranger = live;
      stranger.ip = wire::ipv4_address::from_octets(198, 18, 0, 77);
      out[n++] = make(udp_frame(stranger, us, "noise"));
      ++flood_frames;
    }
    return n;
  }
  std::size_t tx_burst(std::uint16_t /*queue*/, std::span<packet> pkts) noexcept override {
    ++tx_calls;
    if (decline_ && decline_(tx_calls)) {
      return 0;
    }
    for (packet& p : pkts) {
      std::vector<std::byte> f(p.length());
      p.copy_out(0, f);
      p = packet();
      answer(f);
      sent.push_back(std::move(f));
    }
    return pkts.size();
  }
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t /*queue*/) noexcept override { return pool_; }
  [[nodiscard]] link_status link() const noexcept override { return {true, 0}; }
  [[nodiscard]] device_stats stats() const noexcept override { return {}; }

  std::vector<std::vector<std::byte>> sent;
  std::size_t tx_calls = 0;
  std::uint64_t flood_frames = 0;

 private:
  packet make(const std::vector<std::byte>& f) {
    packet p = pool_.alloc();
    std::memcpy(p.append(f.size()), f.data(), f.size());
    return p;
  }
  void answer(const std::vector<std::byte>& f) {
    const auto d = wire::decode_frame(f);
    if (d.arp && d.arp->operation == wire::arp_op::request && d.arp->target_ip == live.ip) {
      replies_.push_back(arp_frame(live, wire::arp_op::reply, us));
    } else if (d.tcp && d.tcp->has(wire::tcp_flag::syn)) {
      endpoint4 peer = us;
      peer.port = d.tcp->src_port;
      replies_.push_back(
          tcp_frame(live, peer, 555, d.tcp->seq + 1, wire::tcp_flag::syn | wire::tcp_flag::ack));
    }
  }
  packet_pool pool_;
  device_info info_;
  std::deque<std::vector<std::byte>> replies_;
  std::function<bool(std::size_t)> decline_;
  bool flood_;
};

TEST(DeviceReplay, DeclinedFramesAreSentLaterInOrder) {
  const recording r = handshake_then_get();
  // The ARP request is declined three times; after the SYN-ACK, the burst of the ACK and "GET"
  // (emitted in one poll) is declined twice, then goes out whole, in order.
  std::size_t syn_ack_calls = 0;
  scripted_device dev(
      [&](std::size_t n) {
        if (n <= 3) {
          return true;
        }
        return n >= 6 && n <= 7 && ++syn_ack_calls != 0;
      },
      false);
  engine e(config());
  std::string error;
  ASSERT_TRUE(e.load(r.records, error)) << error;
  device_replay_options o;
  o.max_duration = 5 * second;
  const device_replay_result res = run_on_device(e, dev, o);
  EXPECT_TRUE(res.finished);
  EXPECT_EQ(res.tx_dropped, 0U);
  EXPECT_EQ(syn_ack_calls, 2U);
  EXPECT_EQ(dev.tx_calls, 8U);  // 3 declined, ARP, SYN, 2 declined, ACK + GET in one burst
  ASSERT_EQ(dev.sent.size(), 4U);
  const auto arp = wire::decode_frame(dev.sent[0]);
  ASSERT_TRUE(arp.arp);
  const auto syn = wire::decode_frame(dev.sent[1]);
  ASSERT_TRUE(syn.tcp);
  EXPECT_TRUE(syn.tcp->has(wire::tcp_flag::syn));
  const auto ack = wire::decode_frame(dev.sent[2]);
  ASSERT_TRUE(ack.tcp);
  EXPECT_EQ(ack.tcp->ack, 556U);
  EXPECT_TRUE(ack.payload.empty());
  const auto get = wire::decode_frame(dev.sent[3]);
  ASSERT_TRUE(get.tcp);
  EXPECT_EQ(get.payload.size(), 3U);
  EXPECT_FALSE(e.report().diverged()) << e.report().json();
}

TEST(DeviceReplay, FramesStillDeclinedAtTheEndAreCountedAsDropped) {
  const recording r = handshake();
  scripted_device dev([](std::size_t) { return true; }, false);  // a queue that never drains
  engine e(config());
  std::string error;
  ASSERT_TRUE(e.load(r.records, error)) << error;
  device_replay_options o;
  o.max_duration = 300 * millisecond;  // before the ARP retry (500 ms): one frame emitted
  const device_replay_result res = run_on_device(e, dev, o);
  EXPECT_FALSE(res.finished);
  EXPECT_EQ(res.tx_dropped, 1U);
  EXPECT_TRUE(dev.sent.empty());
  EXPECT_GT(dev.tx_calls, 10U);  // retried, with the short sleep, until the deadline
}

TEST(DeviceReplay, ALinkThatNeverGoesQuietCannotStarveTheLoop) {
  const recording r = handshake();
  scripted_device dev({}, true);
  engine e(config());
  std::string error;
  ASSERT_TRUE(e.load(r.records, error)) << error;
  device_replay_options o;
  o.max_duration = 20 * second;  // a bound for a broken loop; the run takes ~0.1 s
  const device_replay_result res = run_on_device(e, dev, o);
  // The handshake completes between the stray frames, and the settle time passes despite them.
  EXPECT_TRUE(res.finished);
  EXPECT_LT(res.elapsed, 10 * second);
  EXPECT_GT(dev.flood_frames, 0U);
  EXPECT_GT(e.report().frames_unexpected, 0U);
  // And a stop request ends a run that cannot finish (no reply to ARP, stray frames forever).
  scripted_device mute({}, true);
  replay_config c = config();
  c.live_address = wire::ipv4_address::from_octets(198, 18, 0, 99);  // nobody answers ARP
  engine never(c);
  ASSERT_TRUE(never.load(r.records, error)) << error;
  std::atomic<bool> stop{true};
  o.stop = &stop;
  o.max_duration = 60 * second;
  const device_replay_result stopped = run_on_device(never, mute, o);
  EXPECT_TRUE(stopped.stopped);
  EXPECT_FALSE(stopped.finished);
  EXPECT_LT(stopped.elapsed, 1 * second);
}

}  // namespace device_replay_test
}  // namespace
