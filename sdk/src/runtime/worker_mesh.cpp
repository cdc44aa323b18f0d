#include "dpdk_net/runtime/worker_mesh.hpp"

#include <algorithm>
#include <array>
#include <bit>

namespace dpdk_net {
namespace {

constexpr std::uint8_t kind_frame = 0;
constexpr std::uint8_t kind_arp_copy = 1;
constexpr std::uint8_t kind_datagram = 2;
// Hand-overs taken from one peer per drain: the rest wait for the next iteration, so one busy
// peer cannot hold the loop away from its own queue.
constexpr std::size_t drain_batch = 64;

enum counter : std::size_t {
  c_handed_out,
  c_handed_in,
  c_arp_copies,
  c_datagrams_out,
  c_software_hashes,
  c_ring_full,
  c_no_buffer,
  c_returned,
  c_count
};

}  // namespace

struct worker_mesh::lane {
  lane(worker_mesh& m, std::uint16_t s) : mesh(&m), self(s), ports(*m.flows_, s) {}
  worker_mesh* mesh;
  std::uint16_t self;
  worker_ports ports;
  void (*wake)(void*) = nullptr;
  void* wake_context = nullptr;
  std::uint64_t to_wake = 0;  // workers handed something since the last flush
  // One writer (this lane's thread); others read. Bumped with load + store, not an RMW.
  std::array<std::atomic<std::uint64_t>, c_count> counters{};
  void bump(counter c) noexcept {
    counters[c].store(counters[c].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

packet copy_packet(const packet& p, buffer_pool& pool) noexcept {
  packet out = pool.alloc();
  if (!out) {
    return out;
  }
  out.meta() = p.meta();
  const std::size_t total = p.length();
  std::size_t at = 0;
  packet* tail = &out;
  packet next;
  while (at < total) {
    std::size_t room = tail->tailroom();
    if (room == 0) {
      next = pool.alloc();
      if (!next) {
        out.reset();
        return out;
      }
      room = next.tailroom();
      const std::size_t n = std::min(room, total - at);
      std::byte* d = next.append(n);
      at += p.copy_out(at, std::span(d, n));
      if (!out.chain(std::move(next))) {
        out.reset();
        return out;
      }
      continue;
    }
    const std::size_t n = std::min(room, total - at);
    std::byte* d = out.append(n);
    at += p.copy_out(at, std::span(d, n));
  }
  return out;
}

worker_mesh::worker_mesh(flow_steering& flows, std::size_t ring_size) : flows_(&flows) {
  const std::uint16_t n = flows.workers();
  for (std::uint16_t w = 0; w < n; ++w) {
    lanes_.push_back(std::make_unique<lane>(*this, w));
  }
  forward_.resize(std::size_t{n} * n);
  back_.resize(std::size_t{n} * n);
  for (std::uint16_t from = 0; from < n; ++from) {
    for (std::uint16_t to = 0; to < n; ++to) {
      if (from != to) {
        forward_[std::size_t{from} * n + to] =
            std::make_unique<detail::spsc_ring<handoff>>(ring_size);
        // A return ring at least as large as the forward ring it answers.
        back_[std::size_t{from} * n + to] = std::make_unique<detail::spsc_ring<packet>>(ring_size);
      }
    }
  }
}

worker_mesh::~worker_mesh() {
  // Whatever is still in a ring is freed here: the workers' threads have ended.
  handoff h;
  packet p;
  for (auto& r : forward_) {
    while (r && r->pop(h)) {
      h.frame.reset();
    }
  }
  for (auto& r : back_) {
    while (r && r->pop(p)) {
      p.reset();
    }
  }
}

detail::spsc_ring<worker_mesh::handoff>& worker_mesh::forward(std::uint16_t from,
                                                              std::uint16_t to) noexcept {
  return *forward_[std::size_t{from} * workers() + to];
}

detail::spsc_ring<packet>& worker_mesh::back(std::uint16_t from, std::uint16_t to) noexcept {
  return *back_[std::size_t{from} * workers() + to];
}

void worker_mesh::set_wake(std::uint16_t w, void (*wake)(void*), void* context) noexcept {
  lanes_[w]->wake = wake;
  lanes_[w]->wake_context = context;
}

void worker_mesh::attach(std::uint16_t w, stack::stack& st) noexcept {
  st.set_port_coordinator(&lanes_[w]->ports);
  st.set_datagram_hook(stack::datagram_hook{&worker_mesh::take_datagram, lanes_[w].get()});
}

bool worker_mesh::hand(lane& from, std::uint16_t to, packet& p, std::uint8_t kind) noexcept {
  handoff h{std::move(p), kind};
  if (!forward(from.self, to).push(h)) {
    from.bump(c_ring_full);
    h.frame.reset();  // dropped here, where it was received (its pool's thread)
    return false;
  }
  from.to_wake |= std::uint64_t{1} << to;
  return true;
}

bool worker_mesh::take_datagram(void* context, packet& datagram) noexcept {
  auto& l = *static_cast<lane*>(context);
  const std::uint16_t owner = l.mesh->flows_->datagram_owner(datagram, l.self);
  if (owner == l.self) {
    return false;
  }
  if (l.mesh->hand(l, owner, datagram, kind_datagram)) {
    l.bump(c_datagrams_out);
  }
  return true;
}

void worker_mesh::receive(std::uint16_t self, stack::stack& st, packet frame, time_ns now,
                          buffer_pool& pool) noexcept {
  lane& l = *lanes_[self];
  const frame_verdict v = flows_->classify(frame, self);
  if (v.hashed) {
    l.bump(c_software_hashes);
  }
  switch (v.to) {
    case frame_verdict::kind::here:
      st.receive(std::move(frame), now);
      return;
    case frame_verdict::kind::owner:
      if (hand(l, v.worker, frame, kind_frame)) {
        l.bump(c_handed_out);
      }
      return;
    case frame_verdict::kind::all:
      for (std::uint16_t w = 0; w < workers(); ++w) {
        if (w == self) {
          continue;
        }
        packet copy = copy_packet(frame, pool);
        if (!copy) {
          l.bump(c_no_buffer);
          continue;
        }
        if (hand(l, w, copy, kind_arp_copy)) {
          l.bump(c_arp_copies);
        }
      }
      st.receive(std::move(frame), now);
      return;
  }
}

std::size_t worker_mesh::drain(std::uint16_t self, stack::stack& st, buffer_pool& pool,
                               time_ns now) noexcept {
  lane& l = *lanes_[self];
  std::size_t done = 0;
  handoff h;
  packet p;
  for (std::uint16_t from = 0; from < workers(); ++from) {
    if (from == self) {
      continue;
    }
    // Originals we handed over, sent back: freed here, on the thread of their pool.
    while (back(from, self).pop(p)) {
      p.reset();
      ++done;
    }
    detail::spsc_ring<handoff>& in = forward(from, self);
    detail::spsc_ring<packet>& out = back(self, from);
    std::size_t room = out.free_space();
    for (std::size_t i = 0; i < drain_batch && room != 0 && in.pop(h); ++i, --room) {
      ++done;
      packet copy = copy_packet(h.frame, pool);
      (void)out.push(h.frame);  // room was checked: the original goes back to its pool's thread
      l.bump(c_returned);       // not woken for it: the receiver frees it at its next iteration
      if (!copy) {
        l.bump(c_no_buffer);
        continue;
      }
      l.bump(c_handed_in);
      switch (h.kind) {
        case kind_arp_copy:
          st.receive_arp_copy(copy, now);
          break;
        case kind_datagram:
          st.receive_datagram(std::move(copy), now);
          break;
        default:
          st.receive(std::move(copy), now);
          break;
      }
    }
  }
  return done;
}

void worker_mesh::flush(std::uint16_t self) noexcept {
  lane& l = *lanes_[self];
  if (l.to_wake == 0) {
    return;
  }
  // Orders the ring writes before the owners' "sleeping" flags are read (their side stores the
  // flag, then checks the rings: a Dekker pair, so one of the two sees the other).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (std::uint64_t m = l.to_wake; m != 0; m &= m - 1) {
    const lane& to = *lanes_[static_cast<std::size_t>(std::countr_zero(m))];
    if (to.wake != nullptr) {
      to.wake(to.wake_context);
    }
  }
  l.to_wake = 0;
}

bool worker_mesh::idle(std::uint16_t self) const noexcept {
  const std::uint16_t n = workers();
  for (std::uint16_t other = 0; other < n; ++other) {
    if (other != self && (!forward_[std::size_t{other} * n + self]->empty() ||
                          !back_[std::size_t{other} * n + self]->empty())) {
      return false;
    }
  }
  return true;
}

void worker_mesh::discard(std::uint16_t self) noexcept {
  handoff h;
  packet p;
  for (std::uint16_t from = 0; from < workers(); ++from) {
    if (from == self) {
      continue;
    }
    while (back(from, self).pop(p)) {
      p.reset();
    }
    while (forward(from, self).pop(h)) {
      if (!back(self, from).push(h.frame)) {
        h.frame.reset();  // only when the sender's thread has ended too (shutdown)
      }
    }
  }
}

mesh_counters worker_mesh::counters(std::uint16_t w) const noexcept {
  const lane& l = *lanes_[w];
  auto get = [&](counter c) { return l.counters[c].load(std::memory_order_relaxed); };
  return mesh_counters{get(c_handed_out),    get(c_handed_in),       get(c_arp_copies),
                       get(c_datagrams_out), get(c_software_hashes), get(c_ring_full),
                       get(c_no_buffer),     get(c_returned)};
}

}  // namespace dpdk_net
