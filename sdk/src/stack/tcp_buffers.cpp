// TCP buffers: the rings and their budget (ring_cache), the send queue with its zero-copy
// extents, send() and send_external(), and the writer that puts a segment's data into a frame
// (copied from the ring, or chained by reference to external memory).
#include <algorithm>
#include <bit>
#include <cstring>
#include <new>

#include "dpdk_net/stack/detail/ring_cache.hpp"
#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack {

using detail::seq_gt;
using detail::seq_le;
using detail::seq_lt;

namespace detail {

// --- byte_ring ------------------------------------------------------------------------------

void byte_ring::write(std::uint32_t pos, std::span<const std::byte> in) noexcept {
  if (in.size() > size_) {
    std::abort();  // a caller bug (input is trimmed to the window): never write past the ring
  }
  const std::uint32_t at = pos & (size_ - 1);
  const std::size_t first = std::min<std::size_t>(in.size(), size_ - at);
  std::memcpy(data_ + at, in.data(), first);
  std::memcpy(data_, in.data() + first, in.size() - first);
}

void byte_ring::read(std::uint32_t pos, std::span<std::byte> out) const noexcept {
  if (out.size() > size_) {
    std::abort();  // a caller bug: never read past the ring
  }
  const std::uint32_t at = pos & (size_ - 1);
  const std::size_t first = std::min<std::size_t>(out.size(), size_ - at);
  std::memcpy(out.data(), data_ + at, first);
  std::memcpy(out.data() + first, data_, out.size() - first);
}

// --- ring_cache -----------------------------------------------------------------------------

ring_cache::~ring_cache() {
  for (std::byte*& head : free_) {
    while (head != nullptr) {
      std::byte* next = nullptr;
      std::memcpy(&next, head, sizeof(std::byte*));
      delete[] head;
      head = next;
    }
  }
}

std::uint32_t ring_cache::ring_size(std::uint32_t bytes) noexcept {
  return std::bit_ceil(std::max(bytes, min_size));
}

unsigned ring_cache::class_of(std::uint32_t size) noexcept {
  return static_cast<unsigned>(std::countr_zero(size) - std::countr_zero(min_size));
}

std::byte* ring_cache::pop(unsigned cls) noexcept {
  std::byte* r = free_[cls];
  if (r != nullptr) {
    std::memcpy(&free_[cls], r, sizeof(std::byte*));  // the next free ring
  }
  return r;
}

bool ring_cache::make_room(std::size_t bytes, unsigned keep, tcp_counters& k) noexcept {
  for (unsigned cls = classes; cls-- > 0 && k.buffer_bytes + k.buffer_cached + bytes > budget_;) {
    if (cls == keep) {
      continue;
    }
    while (free_[cls] != nullptr && k.buffer_bytes + k.buffer_cached + bytes > budget_) {
      delete[] pop(cls);
      k.buffer_cached -= std::size_t{min_size} << cls;
    }
  }
  return k.buffer_bytes + k.buffer_cached + bytes <= budget_;
}

bool ring_cache::send_room(std::uint32_t size, const tcp_counters& k) const noexcept {
  return k.buffer_bytes + size <= budget_ - reserve_;
}

std::byte* ring_cache::take(std::uint32_t size, use u, tcp_counters& k) noexcept {
  const unsigned cls = class_of(size);
  if (cls >= classes) {
    return nullptr;
  }
  // What connections hold may grow to the budget (receives) or to the budget less the reserve
  // (sends); the cache gives way to them.
  const std::size_t limit = u == use::send ? budget_ - reserve_ : budget_;
  if (k.buffer_bytes + size > limit) {
    return nullptr;
  }
  std::byte* r = pop(cls);
  if (r != nullptr) {
    k.buffer_cached -= size;
  } else {
    if (!make_room(size, cls, k)) {
      return nullptr;
    }
    r = new (std::nothrow) std::byte[size];
    if (r == nullptr) {
      return nullptr;
    }
    ++k.buffer_heap_allocations;
  }
  if (u == use::receive && k.buffer_bytes + size > budget_ - reserve_) {
    ++k.receive_reserve_grants;
  }
  k.buffer_bytes += size;
  k.buffer_peak = std::max(k.buffer_peak, k.buffer_bytes);
  ++k.buffers_taken;
  return r;
}

void ring_cache::give(std::byte* ring, std::uint32_t size, tcp_counters& k) noexcept {
  const unsigned cls = class_of(size);
  std::memcpy(ring, &free_[cls], sizeof(std::byte*));
  free_[cls] = ring;
  k.buffer_bytes -= size;
  k.buffer_cached += size;
  ++k.buffers_returned;
}

}  // namespace detail

// --- rings of a connection ------------------------------------------------------------------

std::uint32_t tcp_layer::send_limit(const connection& c) const noexcept {
  return c.options.send_buffer != 0 ? c.options.send_buffer : config_.send_buffer;
}

bool tcp_layer::take_send_ring(connection& c) noexcept {
  // Under budget pressure a smaller ring (down to the minimum): send() takes less rather than
  // nothing.
  for (std::uint32_t size = detail::ring_cache::ring_size(send_limit(c));
       size >= detail::ring_cache::min_size; size /= 2) {
    if (std::byte* r = rings_.take(size, detail::ring_cache::use::send, counters_)) {
      c.sbuf.attach(r, size);
      leave_budget_wait(c);
      return true;
    }
  }
  return false;
}

bool tcp_layer::take_receive_ring(connection& c) noexcept {
  // The whole promised window: what we advertised must fit.
  const std::uint32_t size = detail::ring_cache::ring_size(c.rcv_buffer);
  std::byte* r = rings_.take(size, detail::ring_cache::use::receive, counters_);
  if (r == nullptr) {
    return false;
  }
  c.rbuf.attach(r, size);
  return true;
}

void tcp_layer::give_ring(detail::byte_ring& ring) noexcept {
  const std::uint32_t size = ring.capacity();
  rings_.give(ring.detach(), size, counters_);
  // Connections that found no budget for a send ring may find one now: as many as the send share
  // has smallest rings for (each may take more; one that finds none waits again). Waiters leave
  // the list when they close, fail or get a ring, so each one woken is a live socket.
  std::uint32_t room = rings_.send_rings_free(counters_);
  while (!budget_wait_.empty() && room-- != 0) {
    connection& w = slab_[budget_wait_.front()];
    leave_budget_wait(w);
    notify(w, socket_events::writable);
  }
}

void tcp_layer::leave_budget_wait(connection& c) noexcept {
  budget_wait_.remove(static_cast<std::uint32_t>(&c - slab_.data()));
}

void tcp_layer::leave_extent_wait(connection& c) noexcept {
  extent_wait_.remove(static_cast<std::uint32_t>(&c - slab_.data()));
}

void tcp_layer::return_drained_send_ring(connection& c) noexcept {
  if (c.sbuf.allocated() && c.sbuf_len == c.external_queued) {
    give_ring(c.sbuf);
  }
}

void tcp_layer::return_drained_receive_ring(connection& c) noexcept {
  if (c.rbuf.allocated() && c.ooo_count == 0 && c.readable() == 0) {
    give_ring(c.rbuf);
  }
}

void tcp_layer::release_send_queue(connection& c) noexcept {
  // First off the wait lists: giving rings back below wakes waiters, never this connection.
  leave_budget_wait(c);
  leave_extent_wait(c);
  c.sack_recovery = false;
  free_scoreboard(c);
  if (c.sbuf.allocated()) {
    give_ring(c.sbuf);
  }
  if (c.extents != detail::no_slot) {
    detail::extent_table& t = extent_tables_[c.extents];
    for (std::uint32_t i = 0; i < t.count; ++i) {
      if (external_buffer* ext = t.at(i).ext) {
        --counters_.external_buffers;
        counters_.external_bytes -= t.at(i).end - t.at(i).begin;
        ext->drop_reference();
      }
    }
    free_extent_table(c);
  }
  c.external_queued = 0;
  c.ring_lag = 0;
}

void tcp_layer::release_buffers(connection& c) noexcept {
  release_send_queue(c);
  if (c.rbuf.allocated()) {
    give_ring(c.rbuf);
  }
}

// --- the send queue -------------------------------------------------------------------------

void tcp_layer::free_extent_table(connection& c) noexcept {
  detail::extent_table& t = extent_tables_[c.extents];
  t.count = 0;
  t.head = 0;
  t.next_free = extent_free_;
  extent_free_ = c.extents;
  c.extents = detail::no_slot;
  // A connection whose send_external found every table taken may have this one.
  if (!extent_wait_.empty()) {
    connection& w = slab_[extent_wait_.front()];
    leave_extent_wait(w);
    notify(w, socket_events::writable);
  }
}

void tcp_layer::send_queue_acked(connection& c, std::uint32_t from, std::uint32_t to) noexcept {
  if (c.extents == detail::no_slot) {
    return;  // copy only: the ring's bytes are simply behind sbuf_seq now
  }
  detail::extent_table& t = extent_tables_[c.extents];
  while (t.count != 0) {
    detail::send_extent& e = t.at(0);
    const std::uint32_t lo = seq_gt(from, e.begin) ? from : e.begin;
    const std::uint32_t hi = seq_lt(to, e.end) ? to : e.end;
    if (e.ext != nullptr && seq_lt(lo, hi)) {
      c.external_queued -= hi - lo;
    }
    if (seq_lt(to, e.end)) {
      break;
    }
    if (e.ext != nullptr) {
      --counters_.external_buffers;
      counters_.external_bytes -= e.end - e.begin;
      e.ext->drop_reference();  // frames in a device may still hold theirs
    }
    t.head = (t.head + 1) % detail::extent_table::capacity;
    --t.count;
  }
  bool external = false;
  for (std::uint32_t i = 0; i < t.count && !external; ++i) {
    external = t.at(i).ext != nullptr;
  }
  if (!external) {
    // What is left is ring data appended after the last external run: its lag is ring_lag, the
    // implicit single run of a copy-only queue.
    free_extent_table(c);
  }
}

io_result tcp_layer::check_sendable(const connection* c) const noexcept {
  if (c == nullptr) {
    return {0, std::make_error_code(std::errc::bad_file_descriptor)};
  }
  if (c->error) {
    return {0, c->error};
  }
  switch (c->state) {
    case tcp_state::syn_sent:
    case tcp_state::syn_received:
    case tcp_state::established:
    case tcp_state::close_wait:
      break;
    case tcp_state::closed:
    case tcp_state::listen:
      return {0, std::make_error_code(std::errc::not_connected)};
    default:
      return {0, std::make_error_code(std::errc::broken_pipe)};
  }
  if (c->fin_queued) {
    return {0, std::make_error_code(std::errc::broken_pipe)};
  }
  return {};
}

io_result tcp_layer::send(socket_id id, std::span<const std::byte> data) {
  connection* c = lookup(id);
  if (io_result r = check_sendable(c); r.error) {
    return r;
  }
  if (data.empty()) {
    return {};
  }
  const std::uint32_t limit = send_limit(*c);
  const auto would_block = std::make_error_code(std::errc::resource_unavailable_try_again);
  if (c->sbuf_len >= limit) {
    return {0, would_block};
  }
  if (!c->sbuf.allocated() && !take_send_ring(*c)) {
    // Only the receive reserve is left: wait for a ring to come back.
    ++counters_.send_budget_limited;
    if (const auto slot = static_cast<std::uint32_t>(c - slab_.data());
        !budget_wait_.contains(slot)) {
      budget_wait_.push_back(slot);
    }
    return {0, would_block};
  }
  const std::uint32_t ring_used = c->sbuf_len - c->external_queued;
  const std::uint32_t room = std::min(limit - c->sbuf_len, c->sbuf.capacity() - ring_used);
  auto n = static_cast<std::uint32_t>(std::min<std::size_t>(room, data.size()));
  const std::uint32_t end = c->sbuf_seq + c->sbuf_len;
  if (n != 0 && c->extents != detail::no_slot) {
    detail::extent_table& t = extent_tables_[c->extents];
    detail::send_extent& last = t.at(t.count - 1);
    if (last.ext == nullptr) {
      last.end += n;  // the ring run at the tail grows
    } else if (t.count < detail::extent_table::capacity) {
      t.at(t.count++) = detail::send_extent{end, end + n, c->ring_lag, nullptr};
    } else {
      n = 0;  // the table is full: wait for ACKs to free runs
    }
  }
  if (n == 0) {
    return {0, would_block};
  }
  if (n < data.size() && c->sbuf.capacity() < detail::ring_cache::ring_size(limit) &&
      c->sbuf.capacity() - ring_used == room) {
    ++counters_.send_budget_limited;  // took less because the budget gave a smaller ring
  }
  c->sbuf.write(end - c->ring_lag, data.first(n));
  c->sbuf_len += n;
  want_output(*c);
  return {n, {}};
}

io_result tcp_layer::send_external(socket_id id, external_buffer& buffer, std::size_t offset,
                                   std::size_t length) {
  connection* c = lookup(id);
  if (io_result r = check_sendable(c); r.error) {
    return r;
  }
  if (length == 0 || offset > buffer.size || length > buffer.size - offset ||
      buffer.data == nullptr || length > UINT32_MAX / 2 || offset > UINT32_MAX) {
    return {0, std::make_error_code(std::errc::invalid_argument)};
  }
  if (extent_tables_.empty()) {
    return {0, std::make_error_code(std::errc::operation_not_supported)};  // configured off
  }
  const auto would_block = std::make_error_code(std::errc::resource_unavailable_try_again);
  const std::uint32_t limit = send_limit(*c);
  if (length > limit) {
    return {0, std::make_error_code(std::errc::message_size)};  // would never fit: split it
  }
  if (c->sbuf_len >= limit || length > limit - c->sbuf_len) {
    return {0, would_block};
  }
  const std::uint32_t end = c->sbuf_seq + c->sbuf_len;
  if (c->extents == detail::no_slot) {
    if (extent_free_ == detail::no_slot) {
      // Every table is in use (zero_copy_connections): `writable` when one is freed.
      if (const auto slot = static_cast<std::uint32_t>(c - slab_.data());
          !extent_wait_.contains(slot)) {
        extent_wait_.push_back(slot);
      }
      return {0, would_block};
    }
    c->extents = extent_free_;
    detail::extent_table& t = extent_tables_[c->extents];
    extent_free_ = t.next_free;
    t.head = 0;
    t.count = 0;
    if (c->sbuf_len != 0) {
      t.at(t.count++) = detail::send_extent{c->sbuf_seq, end, c->ring_lag, nullptr};
    }
  }
  detail::extent_table& t = extent_tables_[c->extents];
  if (t.count == detail::extent_table::capacity) {
    return {0, would_block};
  }
  const auto len = static_cast<std::uint32_t>(length);
  t.at(t.count++) =
      detail::send_extent{end, end + len, static_cast<std::uint32_t>(offset), &buffer};
  buffer.add_reference();
  ++counters_.external_buffers;
  counters_.external_bytes += len;
  c->ring_lag += len;  // ring data appended later sits len bytes further back in sequence space
  c->external_queued += len;
  c->sbuf_len += len;
  want_output(*c);
  return {len, {}};
}

// --- a segment's data into a frame ----------------------------------------------------------

bool tcp_layer::append_copy(packet& frame, std::span<const std::byte> bytes) noexcept {
  while (!bytes.empty()) {
    std::size_t room = frame.tailroom();
    if (room == 0 || frame.head()->last->ext != nullptr) {
      packet more = pool_->alloc();
      if (!more || !frame.chain(std::move(more))) {
        return false;
      }
      room = frame.tailroom();
    }
    const std::size_t n = std::min(room, bytes.size());
    std::memcpy(frame.append(n), bytes.data(), n);
    bytes = bytes.subspan(n);
  }
  return true;
}

bool tcp_layer::append_payload(packet& frame, const connection& c, std::uint32_t seq,
                               std::uint32_t len) noexcept {
  const auto from_ring = [&](std::uint32_t pos, std::uint32_t n) {
    while (n != 0) {
      const std::span<const std::byte> part = c.sbuf.contiguous(pos, n);
      if (!append_copy(frame, part)) {
        return false;
      }
      pos += static_cast<std::uint32_t>(part.size());
      n -= static_cast<std::uint32_t>(part.size());
    }
    return true;
  };
  if (c.extents == detail::no_slot) {
    return from_ring(seq - c.ring_lag, len);
  }
  const detail::extent_table& t = extent_tables_[c.extents];
  const bool chaining = ip_->config().tx_chaining;
  for (std::uint32_t i = 0; i < t.count && len != 0; ++i) {
    const detail::send_extent& e = t.at(i);
    if (seq_le(e.end, seq)) {
      continue;
    }
    const std::uint32_t n = std::min(len, e.end - seq);
    if (e.ext == nullptr) {
      if (!from_ring(seq - e.lag_or_offset, n)) {
        return false;
      }
    } else {
      const std::size_t at = std::size_t{e.lag_or_offset} + (seq - e.begin);
      if (chaining) {
        packet ref = pool_->attach_external(*e.ext, at, n);
        if (!ref || !frame.chain(std::move(ref))) {
          return false;
        }
      } else if (!append_copy(frame, std::span<const std::byte>(e.ext->data + at, n))) {
        return false;
      }
    }
    seq += n;
    len -= n;
  }
  return len == 0;
}

}  // namespace dpdk_net::stack
