// TCP: the socket API, the connection slab, the 4-tuple index, ports and ISNs, TIME-WAIT records
// and readiness events. Segment processing is in tcp_input.cpp, segment generation in
// tcp_output.cpp, timers in tcp_timers.cpp.
#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

#include "dpdk_net/stack/detail/ring_cache.hpp"
#include "dpdk_net/stack/detail/tcp_connection.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack {

using detail::no_slot;
using detail::seq_lt;

namespace {
constexpr unsigned slot_bits = 20;  // ids: generation << 20 | slot
constexpr std::uint32_t slot_mask = (1U << slot_bits) - 1;
constexpr std::uint32_t generation_mask = (1U << (32 - slot_bits)) - 1;

class tcp_error_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "dpdk_net.tcp"; }
  [[nodiscard]] std::string message(int v) const override {
    return v == static_cast<int>(tcp_errc::end_of_stream) ? "end of stream" : "unknown tcp error";
  }
};
}  // namespace

const std::error_category& tcp_category() noexcept {
  static const tcp_error_category c;
  return c;
}

const char* to_string(tcp_state s) noexcept {
  switch (s) {
    case tcp_state::closed:
      return "CLOSED";
    case tcp_state::listen:
      return "LISTEN";
    case tcp_state::syn_sent:
      return "SYN-SENT";
    case tcp_state::syn_received:
      return "SYN-RECEIVED";
    case tcp_state::established:
      return "ESTABLISHED";
    case tcp_state::fin_wait_1:
      return "FIN-WAIT-1";
    case tcp_state::fin_wait_2:
      return "FIN-WAIT-2";
    case tcp_state::close_wait:
      return "CLOSE-WAIT";
    case tcp_state::closing:
      return "CLOSING";
    case tcp_state::last_ack:
      return "LAST-ACK";
    case tcp_state::time_wait:
      return "TIME-WAIT";
  }
  return "?";
}

tcp_layer::tcp_layer(stack& ip, const tcp_config& config, buffer_pool& pool, timer_wheel& timers,
                     const stack_secret& secret)
    : ip_(&ip),
      config_(config),
      rings_ptr_(
          std::make_unique<detail::ring_cache>(config.memory_budget, config.receive_reserve)),
      rings_(*rings_ptr_),
      pool_(&pool),
      timers_(&timers),
      isn_key_(derive_key(secret, key_purpose::tcp_isn)),
      index_key_(derive_key(secret, key_purpose::tcp_connection_index)),
      port_key_(derive_key(secret, key_purpose::ephemeral_port)),
      challenge_key_(derive_key(secret, key_purpose::tcp_challenge_ack)),
      slab_(config.sockets),
      index_(config.sockets + config.time_wait_records),
      listeners_(65536, -1),
      port_users_(65536, 0),
      pending_(config.sockets),
      arp_wait_(config.sockets),
      events_(config.sockets),
      tw_(config.time_wait_records),
      tw_order_(config.time_wait_records),
      tw_acks_(config.time_wait_records),
      extent_tables_(config.zero_copy_connections),
      budget_wait_(config.sockets),
      extent_wait_(config.sockets),
      cookie_key_(derive_key(secret, key_purpose::tcp_syn_cookie)),
      // SYN-ACKs owed without state between two drains: a SYN queue's worth (no more than the
      // slab: half-open children could not be more either), and at least a burst's (syn_queue 0
      // answers every SYN with a cookie).
      cookie_synacks_(
          std::max<std::size_t>(std::min<std::size_t>(config.syn_queue, config.sockets), 256)),
      scoreboards_(std::min<std::size_t>(config.sack_scoreboards, config.sockets)) {
  for (std::size_t i = scoreboards_.size(); i-- > 0;) {
    scoreboards_[i].next_free = scoreboard_free_;
    scoreboard_free_ = static_cast<std::uint32_t>(i);
  }
  {
    // A TSO super-frame is a chain: at most packet::max_segments buffers, some taken by the
    // headers and by external runs. The pool's buffer size bounds its payload.
    packet probe = pool_->alloc();
    const std::size_t room = probe ? probe.tailroom() : 0;
    const std::size_t buffers = packet::max_segments - 2 - detail::extent_table::capacity;
    tso_chain_bytes_ = static_cast<std::uint32_t>(std::min<std::size_t>(room * buffers, 65535));
  }
  for (std::size_t i = extent_tables_.size(); i-- > 0;) {
    extent_tables_[i].next_free = extent_free_;
    extent_free_ = static_cast<std::uint32_t>(i);
  }
  free_slots_.reserve(slab_.size());
  for (std::size_t i = slab_.size(); i-- > 0;) {
    free_slots_.push_back(static_cast<std::uint32_t>(i));
    connection& c = slab_[i];
    c.owner = this;
    c.retransmit_timer.set_callback(&tcp_layer::on_retransmit_timer, &c);
    c.ack_timer.set_callback(&tcp_layer::on_ack_timer, &c);
    c.idle_timer.set_callback(&tcp_layer::on_idle_timer, &c);
  }
  tw_free_.reserve(tw_.size());
  for (std::size_t i = tw_.size(); i-- > 0;) {
    tw_free_.push_back(static_cast<std::uint32_t>(i));
  }
  tw_timer_.set_callback(&tcp_layer::on_time_wait_timer, this);
}

tcp_layer::~tcp_layer() {
  for (connection& c : slab_) {
    release_buffers(c);  // rings back to the cache (which frees them), external references dropped
  }
}

std::size_t tcp_layer::idle_connection_bytes() noexcept {
  return sizeof(connection);
}

// --- slots, ids, index ------------------------------------------------------------------------

tcp_layer::connection* tcp_layer::lookup(socket_id id) const noexcept {
  const std::uint32_t slot = id & slot_mask;
  if (id == invalid_socket || slot >= slab_.size()) {
    return nullptr;
  }
  auto& c = const_cast<connection&>(slab_[slot]);
  if (!c.in_use || !c.attached || c.generation != (id >> slot_bits)) {
    return nullptr;
  }
  return &c;
}

tcp_layer::socket_id tcp_layer::id_of(const connection& c) const noexcept {
  const auto slot = static_cast<std::uint32_t>(&c - slab_.data());
  return (std::uint32_t{c.generation} << slot_bits) | slot;
}

tcp_layer::connection* tcp_layer::alloc_connection() noexcept {
  if (free_slots_.empty()) {
    ++counters_.sockets_exhausted;
    return nullptr;
  }
  connection& c = slab_[free_slots_.back()];
  free_slots_.pop_back();
  const std::uint16_t generation = c.generation;
  // Reset every field but the timers (intrusive, already bound to this slot).
  c.state = tcp_state::closed;
  c.in_use = true;
  c.attached = true;
  c.listening = c.bound = c.indexed = false;
  c.held = 0;
  c.generation = generation;
  c.local_port = c.remote_port = 0;
  c.remote = {};
  c.hash = 0;
  c.options = {};
  c.error = c.soft_error = {};
  c.events = 0;
  c.backlog = c.half_open = c.queued = 0;
  c.half_open_head = c.half_open_tail = c.accept_head = c.accept_tail = no_slot;
  c.parent = c.sibling_prev = c.sibling_next = no_slot;
  c.list = detail::list_kind::none;
  c.iss = c.snd_una = c.snd_nxt = c.snd_max = 0;
  c.snd_wnd = c.max_snd_wnd = c.snd_wl1 = c.snd_wl2 = 0;
  c.sbuf_seq = c.sbuf_len = c.recover = 0;
  c.mss_peer = 536;
  c.mss_cap = 0;
  c.fin_queued = c.fin_acked = c.in_recovery = c.retransmit_one = false;
  c.dup_acks = 0;
  c.irs = c.rcv_nxt = c.read_seq = c.rcv_adv = c.rcv_buffer = c.unacked_bytes = 0;
  c.ooo_count = 0;
  c.fin_received = c.ooo_fin = c.read_shut = c.ack_now = false;
  c.dup_acks_owed = 0;
  c.rcv_mss = 536;
  c.used = false;
  c.force_send = false;
  c.orphan_probes = 0;
  c.ooo_fin_seq = 0;
  c.snd_scale = c.rcv_scale = 0;
  c.ws_ok = c.send_probe = false;
  c.sack_ok = c.sack_recovery = false;
  c.high_rxt = c.last_ooo = 0;
  c.keepalive_probes = 0;
  c.ts_enabled = c.ts_recent_valid = false;
  c.ts_recent = c.ts_offset = 0;
  c.ts_recent_time = 0;
  c.srtt = c.rttvar = 0;
  c.rto = config_.rto_initial;
  c.backoff = c.probes = c.retries = 0;
  c.arp_unresolved = false;
  c.last_ack_sent = 0;
  c.rtt_timing = false;
  c.rtt_seq = 0;
  c.rtx_ambiguous = false;
  c.rtx_high = c.rtx_tsval = 0;
  c.rtt_start = c.una_since = c.last_receive = c.close_deadline = 0;
  c.persist = false;
  c.cc = {};
  c.cc_algo = &new_reno();
  c.retransmits = c.rto_expirations = c.fast_retransmits = 0;
  c.bytes_sent = c.bytes_acked = c.bytes_received = 0;
  return &c;
}

void tcp_layer::free_connection(connection& c) noexcept {
  const auto slot = static_cast<std::uint32_t>(&c - slab_.data());
  c.retransmit_timer.cancel();
  c.ack_timer.cancel();
  c.idle_timer.cancel();
  pending_.remove(slot);
  arp_wait_.remove(slot);
  events_.remove(slot);
  index_erase(c);
  if (c.bound && port_users_[c.local_port] > 0) {
    --port_users_[c.local_port];
  }
  drop_port(c.local_port, c.held);
  if (c.listening && listeners_[c.local_port] == static_cast<std::int32_t>(slot)) {
    listeners_[c.local_port] = -1;
  }
  if (c.state != tcp_state::closed && c.state != tcp_state::listen && connection_count_ > 0) {
    --connection_count_;
  }
  release_buffers(c);
  c.in_use = false;
  c.attached = false;
  c.state = tcp_state::closed;
  c.generation = static_cast<std::uint16_t>((c.generation + 1) & generation_mask);
  free_slots_.push_back(slot);
}

std::uint64_t tcp_layer::tuple_hash(wire::ipv4_address remote, std::uint16_t remote_port,
                                    std::uint16_t local_port) const noexcept {
  return siphash24(index_key_, (std::uint64_t{remote.value} << 32U) |
                                   (std::uint64_t{remote_port} << 16U) | local_port);
}

void tcp_layer::index_insert(connection& c) noexcept {
  if (c.indexed) {
    return;
  }
  c.hash = tuple_hash(c.remote, c.remote_port, c.local_port);
  index_.insert(c.hash, static_cast<std::uint32_t>(&c - slab_.data()));
  c.indexed = true;
}

void tcp_layer::index_erase(connection& c) noexcept {
  if (c.indexed) {
    index_.erase(c.hash, static_cast<std::uint32_t>(&c - slab_.data()));
    c.indexed = false;
  }
}

// --- events and the pending-output list --------------------------------------------------------

void tcp_layer::notify(connection& c, std::uint8_t events) noexcept {
  if (!c.attached) {
    return;  // orphaned: no one to tell
  }
  c.events |= events;
  const auto slot = static_cast<std::uint32_t>(&c - slab_.data());
  if (!events_.contains(slot)) {
    events_.push_back(slot);
  }
}

std::size_t tcp_layer::poll_events(std::span<socket_event> out) noexcept {
  std::size_t n = 0;
  while (n < out.size() && !events_.empty()) {
    const std::uint32_t slot = events_.front();
    events_.remove(slot);
    connection& c = slab_[slot];
    if (c.events == 0) {
      continue;
    }
    out[n++] = socket_event{id_of(c), wire::ip_protocol::tcp, c.events};
    c.events = 0;
  }
  return n;
}

void tcp_layer::want_output(connection& c) noexcept {
  const auto slot = static_cast<std::uint32_t>(&c - slab_.data());
  if (!pending_.contains(slot) && !arp_wait_.contains(slot)) {
    pending_.push_back(slot);
  }
}

void tcp_layer::next_hop_resolved() noexcept {
  while (!arp_wait_.empty()) {
    const std::uint32_t slot = arp_wait_.front();
    arp_wait_.remove(slot);
    pending_.push_back(slot);
  }
}

// --- ports and ISNs ----------------------------------------------------------------------------

void tcp_layer::set_port_coordinator(port_coordinator* coordinator) {
  coordinator_ = coordinator;
  for (auto& holders : port_holders_) {
    if (coordinator != nullptr && holders.empty()) {
      holders.assign(65536, 0);
    }
  }
}

void tcp_layer::hold_port(std::uint16_t port, std::uint8_t& held, std::uint8_t kinds) noexcept {
  if (coordinator_ == nullptr) {
    return;
  }
  for (std::size_t k = 0; k < port_holders_.size(); ++k) {
    const auto bit = static_cast<std::uint8_t>(1U << k);
    if ((kinds & bit) != 0 && (held & bit) == 0) {
      held = static_cast<std::uint8_t>(held | bit);
      ++port_holders_[k][port];
    }
  }
}

void tcp_layer::drop_port(std::uint16_t port, std::uint8_t& held) noexcept {
  static constexpr port_claim claims[] = {port_claim::bind, port_claim::connect, port_claim::child};
  for (std::size_t k = 0; k < port_holders_.size() && held != 0; ++k) {
    const auto bit = static_cast<std::uint8_t>(1U << k);
    if ((held & bit) != 0) {
      held = static_cast<std::uint8_t>(held & ~bit);
      // Counted down even without a coordinator now (held bits imply the counts exist): a
      // stale count would keep the port from ever being released at the next one.
      if (--port_holders_[k][port] == 0 && coordinator_ != nullptr) {
        coordinator_->release(claims[k], 6, port);
      }
    }
  }
  held = 0;
}

bool tcp_layer::port_in_use(std::uint16_t port) const noexcept {
  return port_users_[port] != 0 || listeners_[port] >= 0;
}

std::uint16_t tcp_layer::pick_port(tcp_endpoint remote, const port_filter& filter,
                                   time_ns now) noexcept {
  // RFC 6056 3.3.4 (algorithm 4, "double-hash"): a keyed offset per destination plus a counter,
  // so ports are unpredictable to others and successive connects to one peer do not collide.
  const std::uint16_t first = ip_->config().ephemeral_first;
  const std::uint32_t range = std::uint32_t{ip_->config().ephemeral_last} - first + 1;
  const std::uint64_t offset =
      siphash24(port_key_, (std::uint64_t{remote.address.value} << 16U) | remote.port, 6 /* tcp */);
  for (std::uint32_t i = 0; i < range; ++i) {
    const auto port = static_cast<std::uint16_t>(first + (offset + port_counter_ + i) % range);
    if (port_in_use(port)) {
      continue;
    }
    if (filter.accept != nullptr && !filter.accept(filter.context, port, remote)) {
      continue;
    }
    const std::uint32_t found = find_tuple(remote.address, remote.port, port);
    // RFC 6191: a TIME-WAIT tuple may be reused when timestamps protect the new connection
    // from the old one's duplicates (our ISN is clock-driven and above the old SND.NXT).
    const bool reuse = found != no_slot && found >= slab_.size();
    if (found != no_slot &&
        (!reuse || !tw_[found - static_cast<std::uint32_t>(slab_.size())].ts_enabled ||
         !config_.timestamps)) {
      continue;
    }
    // Last (a yes may claim the port across workers): bind(0) takes it for this stack alone,
    // connect needs the flow steered here. Asked before a TIME-WAIT record goes: a refusal
    // keeps the record.
    if (coordinator_ != nullptr &&
        !coordinator_->acquire(remote.port == 0 ? port_claim::ephemeral : port_claim::connect, 6,
                               port, remote.address, remote.port)) {
      continue;
    }
    if (reuse) {
      // The record's holds go with it, but not the connect claim just acquired (the record may
      // hold the same one, whose release would clear it): counted across the release.
      std::uint32_t* claim = coordinator_ != nullptr ? &port_holders_[1][port] : nullptr;
      if (claim != nullptr) {
        ++*claim;
      }
      free_time_wait(found - static_cast<std::uint32_t>(slab_.size()));
      if (claim != nullptr) {
        --*claim;  // connect() holds it next
      }
      ++counters_.time_wait_reused;
    }
    port_counter_ += i + 1;
    (void)now;
    return port;
  }
  return 0;
}

std::uint32_t tcp_layer::timestamp_offset(wire::ipv4_address remote, std::uint16_t remote_port,
                                          std::uint16_t local_port) const noexcept {
  // RFC 7323 5.4: a random offset per connection hides our clock; keyed on the 4-tuple (not
  // drawn per connection) so a new incarnation of a tuple continues its old timestamps upward,
  // which is what TIME-WAIT reuse (RFC 6191) and PAWS across incarnations rely on.
  return static_cast<std::uint32_t>(siphash24(isn_key_,
                                              (std::uint64_t{remote.value} << 32U) | 0x7473U,
                                              (std::uint64_t{remote_port} << 16U) | local_port));
}

std::uint32_t tcp_layer::initial_sequence(wire::ipv4_address remote, std::uint16_t remote_port,
                                          std::uint16_t local_port, time_ns now) const noexcept {
  // RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a 4 us clock.
  const std::uint64_t f =
      siphash24(isn_key_, (std::uint64_t{remote.value} << 32U) | ip_->config().address.value,
                (std::uint64_t{remote_port} << 16U) | local_port);
  return static_cast<std::uint32_t>(now / (4 * microsecond)) + static_cast<std::uint32_t>(f);
}

// --- state transitions shared by input and timers --------------------------------------------

bool tcp_layer::shutdown_internal(connection& c) noexcept {
  if (c.fin_queued) {
    return false;
  }
  // In SYN-SENT and SYN-RECEIVED the FIN waits for the handshake (RFC 9293 3.10.4).
  c.fin_queued = true;
  if (c.state == tcp_state::established) {
    c.state = tcp_state::fin_wait_1;
  } else if (c.state == tcp_state::close_wait) {
    c.state = tcp_state::last_ack;
  }
  want_output(c);
  return true;
}

void tcp_layer::abort_connection(connection& c, time_ns now) noexcept {
  // RFC 9293 3.10.4 ABORT: a RST in SYN-RECEIVED and the synchronized states, none before. At
  // SND.MAX, not SND.NXT (an RTO may have wound that back): the peer takes a RST only at exactly
  // its RCV.NXT (RFC 5961 3.2).
  if (c.synchronized() && c.state != tcp_state::time_wait) {
    send_control(c.remote, c.local_port, c.remote_port, c.snd_max, 0, wire::tcp_flag::rst, 0,
                 nullptr, now);
  }
  become_closed(c, now);
}

void tcp_layer::fail(connection& c, std::error_code e, time_ns now) noexcept {
  if (c.parent != no_slot) {
    // A half-open or unaccepted child: no one has its id; it simply goes.
    detach_child(c);
    become_closed(c, now);
    return;
  }
  if (c.state == tcp_state::syn_sent || c.state == tcp_state::syn_received) {
    ++counters_.connect_failed;
  }
  c.error = e;
  notify(c, socket_events::error | socket_events::readable | socket_events::writable);
  become_closed(c, now);
}

void tcp_layer::become_closed(connection& c, time_ns now) noexcept {
  (void)now;
  if (c.parent != no_slot) {
    detach_child(c);
  }
  if (!c.attached) {
    free_connection(c);
    return;
  }
  // The application still holds the id: keep the slot (closed) until it calls close().
  const auto slot = static_cast<std::uint32_t>(&c - slab_.data());
  c.retransmit_timer.cancel();
  c.ack_timer.cancel();
  c.idle_timer.cancel();
  pending_.remove(slot);
  arp_wait_.remove(slot);
  index_erase(c);
  if (c.state != tcp_state::closed && c.state != tcp_state::listen && connection_count_ > 0) {
    --connection_count_;
  }
  c.state = tcp_state::closed;
  // Nothing will be sent: the send ring and external buffers go back now (their release hooks
  // run); the receive ring stays for what the application may still read.
  release_send_queue(c);
  c.sbuf_len = 0;
  notify(c, socket_events::closed | socket_events::readable);
}

void tcp_layer::established(connection& c, time_ns now) noexcept {
  c.state = tcp_state::established;
  ++counters_.established;
  c.last_receive = now;
  const std::uint32_t mss = send_mss(c);
  c.cc_algo = c.options.congestion == congestion_algorithm::cubic ? &cubic() : &new_reno();
  c.cc_algo->init(c.cc, mss, config_.initial_window);
  if (c.parent != no_slot) {
    // Passive: half-open -> the accept queue.
    connection& l = slab_[c.parent];
    const std::uint32_t parent = c.parent;
    detach_child(c);
    c.parent = parent;
    c.list = detail::list_kind::accept_queue;
    c.sibling_prev = l.accept_tail;
    (l.accept_tail != no_slot ? slab_[l.accept_tail].sibling_next : l.accept_head) =
        static_cast<std::uint32_t>(&c - slab_.data());
    l.accept_tail = static_cast<std::uint32_t>(&c - slab_.data());
    ++l.queued;
    notify(l, socket_events::acceptable);
  } else {
    notify(c, socket_events::connected | socket_events::writable);
  }
  arm_idle(c, now);
}

}  // namespace dpdk_net::stack
