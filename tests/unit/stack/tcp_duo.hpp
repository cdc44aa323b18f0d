// Two stacks joined back to back for the scale tests (zero-copy, budget, offloads): directly
// (frames handed from one stack to the other) or through a memory_link (so the devices'
// offload emulation runs). Deterministic: no clock but the one the loop steps.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <vector>

#include "dpdk_net/memory_device.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack::testing {

inline const wire::ipv4_address duo_a_ip = wire::ipv4_address::from_octets(198, 18, 0, 1);
inline const wire::ipv4_address duo_b_ip = wire::ipv4_address::from_octets(198, 18, 0, 2);

inline stack_config duo_config(wire::ipv4_address ip, std::uint8_t mac_last) {
  stack_config c;
  c.mac = mac_address{{0x02, 0, 0, 0, 0, mac_last}};
  c.address = ip;
  return c;
}

/// A deterministic byte stream: byte i of stream `seed`.
inline std::byte duo_byte(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;
  x ^= x >> 29U;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 32U;
  return static_cast<std::byte>(x);
}

class duo {
 public:
  /// link: through a memory_link with this config (its devices' MACs are used), else direct.
  duo(stack_config a, stack_config b, const memory_link_config* link = nullptr) {
    if (link != nullptr) {
      link_ = std::make_unique<memory_link>(*link);
      a.mac = link_->a().info().mac;
      b.mac = link_->b().info().mac;
      a_ = std::make_unique<stack>(a, link_->a().tx_pool(0), stack_secret{1, 2});
      b_ = std::make_unique<stack>(b, link_->b().tx_pool(0), stack_secret{3, 4});
    } else {
      pool_a_ = std::make_unique<packet_pool>(packet_pool_config{"a", 8192});
      pool_b_ = std::make_unique<packet_pool>(packet_pool_config{"b", 8192});
      a_ = std::make_unique<stack>(a, *pool_a_, stack_secret{1, 2});
      b_ = std::make_unique<stack>(b, *pool_b_, stack_secret{3, 4});
    }
  }

  stack& a() { return *a_; }
  stack& b() { return *b_; }
  time_ns now() const { return now_; }

  /// Frames from a (before they reach b or its device): return true to drop one.
  std::function<bool(std::uint64_t frame_number, const packet&)> drop_a;
  /// Every frame b's stack receives from a (after the devices).
  std::function<void(const packet&)> seen_by_b;
  /// Runs after each round of frame moves (the application).
  std::function<void()> app;

  /// Moves frames both ways until `done` or `limit`, stepping the clock to the next deadline
  /// when the wire is idle.
  void run(time_ns limit, const std::function<bool()>& done = nullptr) {
    std::array<packet, 32> burst{};
    while (now_ <= limit) {
      bool moved = false;
      for (int dir = 0; dir < 2; ++dir) {
        stack& from = dir == 0 ? *a_ : *b_;
        stack& to = dir == 0 ? *b_ : *a_;
        std::size_t n = 0;
        while ((n = from.drain_tx(burst, now_)) != 0) {
          moved = true;
          for (std::size_t i = 0; i < n; ++i) {
            if (dir == 0 && drop_a && drop_a(++frames_a_, burst[i])) {
              burst[i].reset();
            }
          }
          if (link_) {
            memory_device& tx = dir == 0 ? link_->a() : link_->b();
            memory_device& rx = dir == 0 ? link_->b() : link_->a();
            std::size_t sent = 0;
            while (sent < n) {
              sent += tx.tx_burst(0, std::span(burst).subspan(sent, n - sent));
              deliver(rx, to, dir == 0);
            }
          } else {
            for (std::size_t i = 0; i < n; ++i) {
              if (burst[i]) {
                if (dir == 0 && seen_by_b) {
                  seen_by_b(burst[i]);
                }
                to.receive(std::move(burst[i]), now_);
              }
            }
          }
        }
      }
      if (app) {
        app();
      }
      if (done && done()) {
        return;
      }
      if (!moved && a_->tx_pending() == 0 && b_->tx_pending() == 0) {
        const time_ns next = std::min(a_->next_deadline(), b_->next_deadline());
        if (next == UINT64_MAX || next > limit) {
          now_ = limit + 1;
          return;
        }
        now_ = std::max(now_ + 1, next);
        a_->advance(now_);
        b_->advance(now_);
      }
    }
  }

 private:
  void deliver(memory_device& rx, stack& to, bool to_b) {
    std::array<packet, 32> in{};
    std::size_t n = 0;
    while ((n = rx.rx_burst(0, in)) != 0) {
      for (std::size_t i = 0; i < n; ++i) {
        if (to_b && seen_by_b) {
          seen_by_b(in[i]);
        }
        to.receive(std::move(in[i]), now_);
      }
    }
  }

  std::unique_ptr<packet_pool> pool_a_, pool_b_;  // direct mode (else the devices' pools)
  std::unique_ptr<memory_link> link_;
  std::unique_ptr<stack> a_, b_;
  time_ns now_ = 0;
  std::uint64_t frames_a_ = 0;
};

}  // namespace dpdk_net::stack::testing
