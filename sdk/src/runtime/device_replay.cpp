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
      e_.poll(now, [this](std::span<const std::byte> frame) { queue(frame); });
      flush();  // one burst: frames declined earlier first, then this turn's, in order
      if (e_.done() && head_ == pending_.size()) {  // and the last frames are out
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
      if (head_ != pending_.size()) {
        // The device is full: retry soon (a queue drains in microseconds), without spinning.
        const timespec ts = to_timespec(std::min<time_ns>(50 * microsecond, o_.max_idle_wait));
        (void)::nanosleep(&ts, nullptr);
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
    tx_dropped_ += pending_.size() - head_;  // declined to the end: freed here
    pending_.clear();
    r.tx_dropped = tx_dropped_;
    r.elapsed = monotonic_now() - start;
    return r;
  }

 private:
  /// Bursts read per loop turn at most: a link that never goes quiet (a busy bridge port, a NIC
  /// in promiscuous mode) must not starve the engine, the deadline and the stop flag.
  static constexpr int max_bursts_per_turn = 16;
  /// Declined frames kept for a retry at most; past it the device is not draining (link down).
  static constexpr std::size_t max_pending = 4096;

  bool receive(time_ns now) {
    bool any = false;
    for (int b = 0; b < max_bursts_per_turn; ++b) {
      const std::size_t n = dev_.rx_burst(o_.queue, rx_);
      if (n == 0) {
        break;
      }
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

  /// Copies an emitted frame into a device packet, behind those not yet sent (flush sends).
  void queue(std::span<const std::byte> frame) {
    if (pending_.size() - head_ >= max_pending) {
      ++tx_dropped_;
      return;
    }
    packet p = dev_.tx_pool(o_.queue).alloc();
    std::byte* dst = p ? p.append(frame.size()) : nullptr;
    if (dst == nullptr) {
      ++tx_dropped_;
      return;
    }
    std::memcpy(dst, frame.data(), frame.size());
    if (o_.out != nullptr) {
      o_.out->write(0, realtime_now(), frame_direction::outbound, frame);  // when emitted
    }
    pending_.push_back(std::move(p));
  }

  /// Offers the pending frames in order; what the device declines stays for the next turn
  /// (tx_burst leaves it with us: a full queue is not a loss).
  void flush() {
    while (head_ != pending_.size()) {
      const std::size_t n = dev_.tx_burst(o_.queue, std::span(pending_).subspan(head_));
      sent_ += n;
      head_ += n;
      if (n == 0) {
        break;
      }
    }
    if (head_ == pending_.size()) {
      pending_.clear();
      head_ = 0;
    }
  }

  engine& e_;
  device& dev_;
  const device_replay_options& o_;
  std::array<packet, 32> rx_{};
  std::vector<std::byte> bytes_;
  std::vector<packet> pending_;  // emitted, not yet taken by the device: [head_, size)
  std::size_t head_ = 0;
  std::uint64_t sent_ = 0;  // frames the device took
  std::uint64_t tx_dropped_ = 0;
};

}  // namespace

device_replay_result run_on_device(engine& engine, device& dev,
                                   const device_replay_options& options) {
  return driver(engine, dev, options).run();
}

}  // namespace dpdk_net::replay
