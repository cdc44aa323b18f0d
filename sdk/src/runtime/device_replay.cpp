#include "dpdk_net/replay/device_replay.hpp"

#include <poll.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "dpdk_net/os.hpp"

namespace dpdk_net::replay {

namespace {

timespec to_timespec(time_ns ns) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / second);
  ts.tv_nsec = static_cast<long>(ns % second);
  return ts;
}

class driver {
 public:
  driver(engine& e, device& d, const device_replay_options& o) : e_(e), dev_(d), o_(o) {}

  device_replay_result run() {
    const wait_handle wh = dev_.rx_wait_handle(o_.queue);
    const time_ns start = monotonic_now();
    const time_ns deadline = start + o_.max_duration;
    time_ns backoff = 0;  // poll-mode idle sleep, doubled while nothing happens
    device_replay_result r;
    for (;;) {
      const time_ns now = monotonic_now();
      const bool received = receive(now);
      const std::uint64_t sent_before = sent_;
      e_.poll(now, [this, now](std::span<const std::byte> frame) { transmit(now, frame); });
      if (e_.done()) {
        r.finished = true;
        break;
      }
      if (o_.stop != nullptr && o_.stop->load(std::memory_order_relaxed)) {
        r.stopped = true;
        break;
      }
      if (now >= deadline) {
        break;
      }
      if (received || sent_ != sent_before) {
        backoff = 0;
        continue;
      }
      // Idle: sleep until the engine's next wakeup, a frame (fd devices), or max_idle_wait.
      const time_ns wake = e_.next_wakeup();
      time_ns wait = std::min({o_.max_idle_wait, deadline - now, wake > now ? wake - now : 0});
      if (wh.mode == wait_handle::kind::fd) {
        pollfd p{wh.fd, POLLIN, 0};
        const timespec ts = to_timespec(wait);
        (void)::ppoll(&p, 1, &ts, nullptr);
      } else {
        backoff = std::clamp<time_ns>(backoff * 2, 10 * microsecond, o_.max_idle_wait);
        wait = std::min(wait, backoff);
        const timespec ts = to_timespec(wait);
        (void)::nanosleep(&ts, nullptr);
      }
    }
    r.tx_dropped = tx_dropped_;
    r.elapsed = monotonic_now() - start;
    return r;
  }

 private:
  bool receive(time_ns now) {
    bool any = false;
    std::size_t n = 0;
    while ((n = dev_.rx_burst(o_.queue, rx_)) != 0) {
      any = true;
      for (std::size_t i = 0; i < n; ++i) {
        bytes_.resize(rx_[i].length());
        rx_[i].copy_out(0, bytes_);
        rx_[i] = packet();
        if (o_.out != nullptr) {
          o_.out->write(0, realtime_now(), frame_direction::inbound, bytes_);
        }
        e_.on_frame(now, bytes_);
      }
    }
    return any;
  }

  void transmit(time_ns /*now*/, std::span<const std::byte> frame) {
    ++sent_;
    if (o_.out != nullptr) {
      o_.out->write(0, realtime_now(), frame_direction::outbound, frame);
    }
    packet p = dev_.tx_pool(o_.queue).alloc();
    std::byte* dst = p ? p.append(frame.size()) : nullptr;
    if (dst == nullptr) {
      ++tx_dropped_;
      return;
    }
    std::memcpy(dst, frame.data(), frame.size());
    if (dev_.tx_burst(o_.queue, std::span(&p, 1)) != 1) {
      ++tx_dropped_;  // the packet we still hold is freed here
    }
  }

  engine& e_;
  device& dev_;
  const device_replay_options& o_;
  std::array<packet, 32> rx_{};
  std::vector<std::byte> bytes_;
  std::uint64_t sent_ = 0;
  std::uint64_t tx_dropped_ = 0;
};

}  // namespace

device_replay_result run_on_device(engine& engine, device& dev,
                                   const device_replay_options& options) {
  return driver(engine, dev, options).run();
}

}  // namespace dpdk_net::replay
