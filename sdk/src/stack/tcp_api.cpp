// TCP: the socket API (tcp.hpp documents each call, its errors and its events).
#include <algorithm>

#include "dpdk_net/stack/detail/ring_cache.hpp"
#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::stack {

using detail::no_slot;

std::error_code tcp_layer::open(socket_id& out) {
  connection* c = alloc_connection();
  if (c == nullptr) {
    return std::make_error_code(std::errc::too_many_files_open);
  }
  out = id_of(*c);
  return {};
}

std::error_code tcp_layer::set_options(socket_id id, const tcp_socket_options& o) {
  connection* c = lookup(id);
  if (c == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  const bool buffers_changed =
      o.send_buffer != c->options.send_buffer || o.receive_buffer != c->options.receive_buffer;
  if (buffers_changed && c->state != tcp_state::closed && c->state != tcp_state::listen) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (o.keepalive_idle != 0 && (o.keepalive_interval == 0 || o.keepalive_probes == 0)) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  // Buffers: 0 (the config's) or what the config allows (RFC 7323 caps a window at 2^30).
  const auto buffer_ok = [](std::uint32_t b) { return b == 0 || (b >= 1024 && b <= (1U << 30U)); };
  if (!buffer_ok(o.send_buffer) || !buffer_ok(o.receive_buffer) ||
      o.receive_buffer > config_.memory_budget) {  // a receive ring must fit the budget
    return std::make_error_code(std::errc::invalid_argument);
  }
  const bool nagle_turned_off = o.no_delay && !c->options.no_delay;
  c->options = o;
  if (nagle_turned_off) {
    want_output(*c);  // data Nagle was holding may go now
  }
  if (c->synchronized()) {
    arm_idle(*c, c->last_receive);  // keepalive on or off, in whichever state it applies
  }
  return {};
}

tcp_socket_options tcp_layer::options(socket_id id) const noexcept {
  const connection* c = lookup(id);
  return c != nullptr ? c->options : tcp_socket_options{};
}

std::error_code tcp_layer::bind(socket_id id, std::uint16_t port,
                                std::optional<wire::ipv4_address> address) {
  connection* c = lookup(id);
  if (c == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (address && !address->is_unspecified() && *address != ip_->config().address) {
    return std::make_error_code(std::errc::address_not_available);
  }
  if (c->bound || c->state != tcp_state::closed) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (port == 0) {
    // Any free ephemeral port (no remote yet: the per-destination hash uses 0). pick_port's
    // coordinator check claimed it.
    port = pick_port(tcp_endpoint{}, port_filter{}, 0);
    if (port == 0) {
      return std::make_error_code(std::errc::resource_unavailable_try_again);
    }
  } else if (port_in_use(port)) {
    return std::make_error_code(std::errc::address_in_use);
  } else if (coordinator_ != nullptr &&
             !coordinator_->acquire(port_claim::bind, 6, port, wire::ipv4_address{}, 0)) {
    // Another worker's connection uses it, or this bind would take another worker's accepted
    // connections (docs/asio.md "Flow ownership").
    return std::make_error_code(std::errc::address_in_use);
  }
  c->local_port = port;
  c->bound = true;
  ++port_users_[port];
  hold_port(port, c->held, detail::port_hold::bound);
  return {};
}

std::error_code tcp_layer::listen(socket_id id, std::uint32_t backlog) {
  connection* c = lookup(id);
  if (c == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if ((c->state != tcp_state::closed && c->state != tcp_state::listen) || c->used) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (!c->bound) {
    if (const std::error_code e = bind(id, 0); e) {
      return e;
    }
  }
  if (listeners_[c->local_port] >= 0 &&
      listeners_[c->local_port] != static_cast<std::int32_t>(c - slab_.data())) {
    return std::make_error_code(std::errc::address_in_use);
  }
  c->backlog = std::clamp<std::uint32_t>(backlog, 1, config_.max_backlog);
  c->state = tcp_state::listen;
  c->listening = true;
  listeners_[c->local_port] = static_cast<std::int32_t>(c - slab_.data());
  return {};
}

std::error_code tcp_layer::accept(socket_id listener, socket_id& out) {
  connection* l = lookup(listener);
  if (l == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (!l->listening) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (l->accept_head == no_slot) {
    return std::make_error_code(std::errc::resource_unavailable_try_again);
  }
  connection& c = slab_[l->accept_head];
  detach_child(c);
  c.attached = true;
  out = id_of(c);
  // What happened before accept is not lost: data, end of stream or reset are reported now.
  std::uint8_t ev = socket_events::writable;
  if (c.readable() != 0 || c.fin_received) {
    ev |= socket_events::readable;
  }
  notify(c, ev);
  return {};
}

void tcp_layer::detach_child(connection& c) noexcept {
  if (c.parent == no_slot) {
    return;
  }
  connection& l = slab_[c.parent];
  const bool queued = c.list == detail::list_kind::accept_queue;
  std::uint32_t& head = queued ? l.accept_head : l.half_open_head;
  std::uint32_t& tail = queued ? l.accept_tail : l.half_open_tail;
  (c.sibling_prev != no_slot ? slab_[c.sibling_prev].sibling_next : head) = c.sibling_next;
  (c.sibling_next != no_slot ? slab_[c.sibling_next].sibling_prev : tail) = c.sibling_prev;
  (queued ? l.queued : l.half_open) -= 1;
  c.sibling_prev = c.sibling_next = c.parent = no_slot;
  c.list = detail::list_kind::none;
}

std::error_code tcp_layer::connect(socket_id id, tcp_endpoint remote, time_ns now,
                                   port_filter filter) {
  connection* c = lookup(id);
  if (c == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  switch (c->state) {
    case tcp_state::closed:
      break;
    case tcp_state::syn_sent:
    case tcp_state::syn_received:
      return std::make_error_code(std::errc::connection_already_in_progress);
    case tcp_state::listen:
      return std::make_error_code(std::errc::invalid_argument);
    default:
      return std::make_error_code(std::errc::already_connected);
  }
  if (c->error || c->used) {
    // A socket connects once (failed or finished: open a new one); reusing one would carry the
    // old connection's state into the new.
    return std::make_error_code(std::errc::invalid_argument);
  }
  const stack_config& ipc = ip_->config();
  const wire::ipv4_address a = remote.address;
  if (remote.port == 0 || a.is_unspecified() || a.is_broadcast() || a.is_multicast() ||
      a.is_loopback() || a == ipc.address || ip_->is_local_broadcast(a)) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (!ip_->next_hop(a)) {
    return std::make_error_code(std::errc::network_unreachable);
  }
  if (!c->bound) {
    const std::uint16_t port = pick_port(remote, filter, now);
    if (port == 0) {
      return std::make_error_code(std::errc::address_not_available);
    }
    c->local_port = port;
    c->bound = true;
    ++port_users_[port];
    hold_port(port, c->held, detail::port_hold::connect);  // pick_port acquired it
  } else {
    if (find_tuple(a, remote.port, c->local_port) != no_slot) {
      return std::make_error_code(std::errc::address_in_use);
    }
    // Bound first (bind(0) or a port): the flow must be steered here (a port bound on other
    // workers too goes by hash), and one the hash steers elsewhere is held as off hash, so that
    // no other worker's bind of the port takes it (as for an accepted child).
    if (coordinator_ != nullptr && (c->held & detail::port_hold::bound) != 0) {
      if (!coordinator_->acquire(port_claim::bound_connect, 6, c->local_port, a, remote.port)) {
        return std::make_error_code(std::errc::address_in_use);
      }
      if (coordinator_->acquire(port_claim::child, 6, c->local_port, a, remote.port)) {
        hold_port(c->local_port, c->held, detail::port_hold::child);
      }
    }
  }
  c->remote = a;  // only now: a refused connect leaves no remote behind
  c->remote_port = remote.port;
  c->iss = initial_sequence(a, remote.port, c->local_port, now);
  c->snd_una = c->snd_nxt = c->snd_max = c->recover = c->iss;
  c->sbuf_seq = c->iss + 1;
  c->state = tcp_state::syn_sent;
  c->used = true;
  ++connection_count_;
  c->ts_offset = timestamp_offset(a, remote.port, c->local_port);
  c->rcv_buffer =
      c->options.receive_buffer != 0 ? c->options.receive_buffer : config_.receive_buffer;
  c->rcv_scale = 0;
  if (config_.window_scaling) {
    while (c->rcv_scale < wire::tcp_max_window_scale && (c->rcv_buffer >> c->rcv_scale) > 65535) {
      ++c->rcv_scale;
    }
  }
  c->una_since = now;
  index_insert(*c);
  ++counters_.active_opens;
  // The SYN's timer runs from now, even if the SYN waits for ARP: a next hop that never
  // answers fails the connect (host_unreachable) after the SYN retries instead of hanging.
  arm_retransmit(*c, now);
  want_output(*c);
  return {};
}

io_result tcp_layer::receive(socket_id id, std::span<std::byte> out) {
  connection* c = lookup(id);
  if (c == nullptr) {
    return {0, std::make_error_code(std::errc::bad_file_descriptor)};
  }
  const std::uint32_t available = c->readable();
  if (available != 0 && !out.empty()) {
    const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(available, out.size()));
    c->rbuf.read(c->read_seq, out.first(n));
    c->read_seq += n;
    return_drained_receive_ring(*c);
    // Receiver-side silly window avoidance (RFC 1122 4.2.3.3): announce the opened window only
    // once it has grown by min(buffer / 2, MSS).
    const std::uint32_t window = receive_window(*c);
    const std::uint32_t advertised = c->rcv_adv - c->rcv_nxt;
    if (c->synchronized() && !c->fin_received && window > advertised &&
        window - advertised >= std::min(c->rcv_buffer / 2, send_mss(*c))) {
      c->ack_now = true;
      ++counters_.window_updates;
      want_output(*c);
    }
    return {n, {}};
  }
  if (available != 0) {
    return {0, {}};
  }
  if (c->fin_received || c->read_shut) {
    return {0, make_error_code(tcp_errc::end_of_stream)};
  }
  if (c->error) {
    return {0, c->error};
  }
  if (c->state == tcp_state::closed || c->state == tcp_state::listen) {
    return {0, std::make_error_code(std::errc::not_connected)};
  }
  return {0, std::make_error_code(std::errc::resource_unavailable_try_again)};
}

std::error_code tcp_layer::shutdown(socket_id id, shutdown_type how, time_ns now) {
  connection* c = lookup(id);
  if (c == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (c->state == tcp_state::closed || c->state == tcp_state::listen) {
    return std::make_error_code(std::errc::not_connected);
  }
  if (how != shutdown_type::send) {
    c->read_shut = true;
    c->read_seq = c->rcv_nxt;  // discard what is unread, and what was held out of order
    c->ooo_count = 0;
    c->ooo_fin = false;
    return_drained_receive_ring(*c);
    notify(*c, socket_events::readable);
  }
  if (how != shutdown_type::receive) {
    (void)shutdown_internal(*c);
  }
  (void)now;
  return {};
}

std::error_code tcp_layer::close(socket_id id, time_ns now) {
  connection* c = lookup(id);
  if (c == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (c->listening) {
    // Every child goes with it (no one will ever accept them). As Linux does: the accept
    // queue's (established) are reset, the SYN queue's (half-open) go silently, and a segment of
    // theirs later meets a closed port (RST).
    while (c->accept_head != no_slot) {
      connection& child = slab_[c->accept_head];
      detach_child(child);
      child.attached = false;
      abort_connection(child, now);
    }
    while (c->half_open_head != no_slot) {
      connection& child = slab_[c->half_open_head];
      detach_child(child);
      child.attached = false;
      become_closed(child, now);
    }
    free_connection(*c);
    return {};
  }
  const bool unread = c->readable() != 0;
  const bool linger_zero = c->options.linger && *c->options.linger == 0;
  if (c->state == tcp_state::closed || c->state == tcp_state::syn_sent) {
    free_connection(*c);
    return {};
  }
  c->attached = false;
  leave_budget_wait(*c);  // no one is waiting for `writable` any more
  leave_extent_wait(*c);
  c->events = 0;
  events_.remove(static_cast<std::uint32_t>(c - slab_.data()));
  if (unread || linger_zero) {
    abort_connection(*c, now);  // RFC 2525 2.17: unread data makes close an abort
    return {};
  }
  if (c->state == tcp_state::time_wait) {
    free_connection(*c);
    return {};
  }
  (void)shutdown_internal(*c);
  if (c->state == tcp_state::fin_wait_2) {
    c->close_deadline = now + config_.fin_wait_2;  // orphaned: do not wait forever for the FIN
  }
  if (c->options.linger) {
    const time_ns linger = now + *c->options.linger;
    c->close_deadline = c->close_deadline == 0 ? linger : std::min(c->close_deadline, linger);
  }
  if (c->close_deadline != 0) {
    arm_idle(*c, now);
  }
  return {};
}

std::error_code tcp_layer::abort(socket_id id, time_ns now) {
  connection* c = lookup(id);
  if (c == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (c->listening) {
    return close(id, now);
  }
  c->attached = false;
  abort_connection(*c, now);
  return {};
}

std::optional<tcp_endpoint> tcp_layer::local_endpoint(socket_id id) const noexcept {
  const connection* c = lookup(id);
  if (c == nullptr) {
    return std::nullopt;
  }
  return tcp_endpoint{ip_->config().address, c->local_port};
}

std::optional<tcp_endpoint> tcp_layer::remote_endpoint(socket_id id) const noexcept {
  const connection* c = lookup(id);
  if (c == nullptr || c->remote_port == 0) {
    return std::nullopt;
  }
  return tcp_endpoint{c->remote, c->remote_port};
}

std::optional<tcp_info> tcp_layer::info(socket_id id) const noexcept {
  const connection* c = lookup(id);
  if (c == nullptr) {
    return std::nullopt;
  }
  tcp_info i;
  i.state = c->state;
  i.srtt = c->srtt;
  i.rttvar = c->rttvar;
  i.rto = std::min(c->rto << std::min(c->backoff, 20U), config_.rto_max);  // backed off
  i.cwnd = c->cc.cwnd;
  i.ssthresh = c->cc.ssthresh;
  i.send_window = c->snd_wnd;
  i.receive_window = detail::seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
  i.mss = c->synchronized() ? send_mss(*c) : 0;
  i.in_flight = c->synchronized() ? c->flight() : 0;
  i.send_scale = c->snd_scale;
  i.receive_scale = c->rcv_scale;
  i.timestamps = c->ts_enabled;
  i.sack = c->sack_ok;
  i.sacked_bytes = sacked_bytes(*c);
  i.retransmits = c->retransmits;
  i.rto_expirations = c->rto_expirations;
  i.fast_retransmits = c->fast_retransmits;
  i.bytes_sent = c->bytes_sent;
  i.bytes_acked = c->bytes_acked;
  i.bytes_received = c->bytes_received;
  return i;
}

std::error_code tcp_layer::error(socket_id id) const noexcept {
  const connection* c = lookup(id);
  if (c == nullptr) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  return c->error;
}

std::size_t tcp_layer::readable_bytes(socket_id id) const noexcept {
  const connection* c = lookup(id);
  return c == nullptr ? 0 : c->readable();
}

std::size_t tcp_layer::writable_bytes(socket_id id) const noexcept {
  const connection* c = lookup(id);
  if (c == nullptr || c->fin_queued || c->error) {
    return 0;
  }
  switch (c->state) {
    case tcp_state::syn_sent:
    case tcp_state::syn_received:
    case tcp_state::established:
    case tcp_state::close_wait:
      break;
    default:
      return 0;
  }
  const std::uint32_t limit = send_limit(*c);
  if (c->sbuf_len >= limit) {
    return 0;
  }
  // What send() would copy now: the ring's free space, or the ring the budget would give.
  std::uint32_t ring_free = 0;
  if (c->sbuf.allocated()) {
    ring_free = c->sbuf.capacity() - (c->sbuf_len - c->external_queued);
  } else {
    for (std::uint32_t size = detail::ring_cache::ring_size(limit);
         size >= detail::ring_cache::min_size && ring_free == 0; size /= 2) {
      ring_free = rings_.send_room(size, counters_) ? size : 0;
    }
  }
  return std::min(limit - c->sbuf_len, ring_free);
}

}  // namespace dpdk_net::stack
