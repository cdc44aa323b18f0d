#include "dpdk_net/sim/fault_device.hpp"

#include <array>

namespace dpdk_net::sim {

fault_device::fault_device(device& inner, clock now, std::uint64_t seed, const link_config& rx,
                           const link_config& tx)
    : inner_(inner),
      info_(inner.info()),
      now_(std::move(now)),
      rx_(inner.info().name + ".rx", 0, rx, derive_seed(seed, "fault-device:rx")),
      tx_(inner.info().name + ".tx", 1, tx, derive_seed(seed, "fault-device:tx")) {
  info_.thread_safe_queues = false;
}

device_stats fault_device::stats() const noexcept {
  device_stats s = inner_.stats();
  s.bad_queue += bad_queue_;
  return s;
}

fault_device::~fault_device() {
  for (held_queue* q : {&rx_held_, &tx_held_}) {
    while (!q->empty()) {
      packet::free_chain(q->top().frame);
      q->pop();
    }
  }
}

void fault_device::admit(link_model& model, held_queue& q, std::uint16_t queue, packet p,
                         time_ns now) {
  const frame_fate fate = model.decide(now, p.length(), p.front(), applied_);
  if (fate.dropped) {
    return;  // p freed
  }
  if (fate.duplicated) {
    // A copy in a fresh buffer of the same device pool.
    packet dup = inner_.tx_pool(queue).alloc();
    if (dup && dup.tailroom() >= p.length()) {
      p.copy_out(0, std::span<std::byte>(dup.append(p.length()), p.length()));
      dup.meta() = p.meta();
      q.push(held_frame{fate.duplicate_at, sequence_++, queue, dup.release()});
    }
  }
  if (fate.corrupted) {
    flip_bit(p, fate.corrupt_bit);
  }
  q.push(held_frame{fate.deliver_at, sequence_++, queue, p.release()});
}

void fault_device::release_tx(time_ns now) {
  // Due frames go to the inner device in order; a full ring keeps the rest for the next call.
  while (!tx_held_.empty() && tx_held_.top().due <= now) {
    held_frame h = tx_held_.top();
    tx_held_.pop();
    std::array<packet, 1> one{packet::adopt(h.frame)};
    if (inner_.tx_burst(h.queue, one) == 0) {
      // Still ours: hold whatever the slot now holds (the device may have swapped in a copy).
      h.frame = one[0].release();
      if (h.frame != nullptr) {
        tx_held_.push(h);
      }
      return;
    }
  }
}

std::size_t fault_device::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (queue >= info_.tx_queues) {
    ++bad_queue_;
    return 0;
  }
  const time_ns now = now_();
  for (packet& p : pkts) {
    if (p) {
      admit(tx_, tx_held_, queue, std::move(p), now);
    }
  }
  release_tx(now);
  return pkts.size();
}

std::size_t fault_device::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  if (queue >= info_.rx_queues) {
    ++bad_queue_;
    return 0;
  }
  const time_ns now = now_();
  release_tx(now);
  // Pull what the inner device has, pass it through the rx model, hand out what is due.
  std::array<packet, max_burst> in;
  const std::size_t n =
      inner_.rx_burst(queue, std::span(in.data(), std::min(in.size(), out.size())));
  for (std::size_t i = 0; i < n; ++i) {
    admit(rx_, rx_held_, queue, std::move(in[i]), now);
  }
  std::size_t given = 0;
  scratch_.clear();
  while (given < out.size() && !rx_held_.empty() && rx_held_.top().due <= now) {
    const held_frame h = rx_held_.top();
    rx_held_.pop();
    if (h.queue != queue) {
      scratch_.push_back(h);  // another queue's: put back below
      continue;
    }
    out[given++] = packet::adopt(h.frame);
  }
  for (const held_frame& h : scratch_) {
    rx_held_.push(h);
  }
  return given;
}

}  // namespace dpdk_net::sim
