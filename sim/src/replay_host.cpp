#include "dpdk_net/sim/replay_host.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace dpdk_net::sim {

replay_host::replay_host(host& h, sim_nic& nic, replay::engine& engine)
    : host_(&h), nic_(&nic), engine_(&engine) {
  host_->on_receive = [this](host&) { pump(); };
}

replay_host::~replay_host() {
  host_->on_receive = nullptr;
  ++*timer_generation_;
  close_output();
}

bool replay_host::open_output(const std::string& path, std::string& error) {
  auto w = std::make_unique<pcapng_writer>();
  capture_interface iface;
  iface.name = host_->name() + "/replay";
  iface.description = "pcap_replay: frames the replayer sent and received";
  if (!w->open(path, {iface})) {
    error = w->error();
    return false;
  }
  out_ = std::move(w);
  return true;
}

void replay_host::close_output() {
  if (out_) {
    out_->close(host_->net().now());
    out_.reset();
  }
}

void replay_host::transmit(std::span<const std::byte> frame) {
  if (out_) {
    out_->write(0, host_->net().now(), frame_direction::outbound, frame);
  }
  packet p = nic_->tx_pool(0).alloc();
  std::byte* dst = p ? p.append(frame.size()) : nullptr;
  if (dst == nullptr) {
    ++tx_dropped_;
    return;
  }
  std::memcpy(dst, frame.data(), frame.size());
  if (nic_->tx_burst(0, std::span(&p, 1)) != 1) {
    ++tx_dropped_;
  }
}

void replay_host::pump() {
  if (host_->status() == host::state::crashed) {
    return;
  }
  ++pumps_;
  const time_ns now = host_->local_now();
  std::array<packet, 32> rx{};
  std::size_t n = 0;
  while ((n = nic_->rx_burst(0, rx)) != 0) {
    for (std::size_t i = 0; i < n; ++i) {
      rx_bytes_.resize(rx[i].length());
      rx[i].copy_out(0, rx_bytes_);
      rx[i] = packet();
      if (out_) {
        out_->write(0, host_->net().now(), frame_direction::inbound, rx_bytes_);
      }
      engine_->on_frame(now, rx_bytes_);
    }
  }
  engine_->poll(now, [this](std::span<const std::byte> frame) { transmit(frame); });
  arm_timer(now);
}

void replay_host::arm_timer(time_ns now) {
  time_ns next = engine_->next_wakeup();
  if (next == UINT64_MAX || next >= timer_at_) {
    return;
  }
  next = std::max(next, now + 1);
  timer_at_ = next;
  const std::uint64_t generation = ++*timer_generation_;
  host_->after(next - now, [this, generation, current = timer_generation_] {
    if (generation != *current) {
      return;
    }
    timer_at_ = UINT64_MAX;
    pump();
  });
}

}  // namespace dpdk_net::sim
