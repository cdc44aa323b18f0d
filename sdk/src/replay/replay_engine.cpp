// Replay engine: the live side's frames in, rewritten recorded frames out (replay.hpp).
#include <algorithm>
#include <utility>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/frame.hpp"
#include "replay_state.hpp"

namespace dpdk_net::replay {

namespace {

using wire::load16;
using wire::load32;
using wire::store16;
using wire::store32;

/// The TCP header length a segment states (bounded by the segment).
std::size_t tcp_header_bytes(std::span<const std::byte> l4) noexcept {
  const std::size_t stated = (std::size_t{std::to_integer<std::uint8_t>(l4[12])} >> 4U) * 4;
  return std::min(l4.size(), stated);
}

constexpr std::size_t l2_l3_length = wire::ethernet_header_length + wire::ipv4_min_header_length;

/// Ethernet + a 20-byte IPv4 header in front of l4 (s.scratch), L4 checksum left to the caller.
std::span<std::byte> frame_around(engine::state& s, std::size_t l4_length, std::uint8_t protocol,
                                  wire::ipv4_address src, const replay_item* recorded) {
  s.scratch.assign(l2_l3_length + l4_length, std::byte{0});
  wire::ethernet_header eth;
  eth.dst = *s.live_mac;
  eth.src = s.config.mac;
  eth.ethertype = wire::ethertype::ipv4;
  wire::write_ethernet(s.scratch, eth);
  wire::ipv4_header ip;
  ip.total_length = static_cast<std::uint16_t>(wire::ipv4_min_header_length + l4_length);
  ip.protocol = protocol;
  ip.src = src;
  ip.dst = s.config.live_address;
  if (recorded != nullptr) {
    ip.tos = recorded->tos;
    ip.ttl = recorded->ttl;
    ip.id = recorded->ip_id;
    ip.dont_fragment = recorded->dont_fragment;
  } else {
    ip.dont_fragment = true;
  }
  wire::write_ipv4(std::span(s.scratch).subspan(wire::ethernet_header_length), ip);
  return std::span(s.scratch).subspan(l2_l3_length);
}

void finish_l4_checksum(std::span<std::byte> l4, std::uint8_t protocol, wire::ipv4_address src,
                        wire::ipv4_address dst) {
  if (protocol == wire::ip_protocol::tcp) {
    wire::set_tcp_checksum(l4, wire::pseudo_header{src, dst});
  } else if (protocol == wire::ip_protocol::udp) {
    if (load16(l4.data() + 6) == 0) {
      return;  // recorded without a checksum: kept so
    }
    store16(l4.data() + 6, 0);
    wire::checksum_accumulator acc;
    wire::add_pseudo_header(acc, src, dst, protocol, static_cast<std::uint16_t>(l4.size()));
    acc.add(l4);
    const std::uint16_t sum = acc.finish();
    store16(l4.data() + 6, sum == 0 ? 0xffffU : sum);
  } else if (protocol == wire::ip_protocol::icmp) {
    store16(l4.data() + 2, 0);
    store16(l4.data() + 2, wire::internet_checksum(l4));
  }
}

/// Rewrites the recorded TCP options in place: timestamps and SACK blocks.
void rewrite_tcp_options(std::span<std::byte> l4, replay_flow& f, time_ns now, bool syn_only) {
  const std::size_t header = tcp_header_bytes(l4);
  std::size_t i = wire::tcp_min_header_length;
  while (i < header) {
    const auto kind = std::to_integer<std::uint8_t>(l4[i]);
    if (kind == wire::tcp_option_kind::eol) {
      break;
    }
    if (kind == wire::tcp_option_kind::nop) {
      ++i;
      continue;
    }
    if (i + 1 >= header) {
      break;
    }
    const std::size_t length = std::to_integer<std::uint8_t>(l4[i + 1]);
    if (length < 2 || i + length > header) {
      break;
    }
    std::byte* const p = l4.data() + i;
    if (kind == wire::tcp_option_kind::timestamps && length == 10) {
      if (!f.ts_base_set) {
        f.ts_base = static_cast<std::uint32_t>(now / millisecond) + 1;
        f.ts_base_set = true;
      }
      store32(p + 2, f.ts_base + (load32(p + 2) - f.rec_first_tsval.value_or(load32(p + 2))));
      store32(p + 6, syn_only ? 0 : f.live_tsval.value_or(0));
    } else if (kind == wire::tcp_option_kind::sack && f.rec_isn_live) {
      const std::uint32_t shift = f.live_isn.value_or(0) - *f.rec_isn_live;
      for (std::size_t b = 2; b + 8 <= length; b += 8) {
        store32(p + b, load32(p + b) + shift);
        store32(p + b + 4, load32(p + b + 4) + shift);
      }
    }
    i += length;
  }
}

void emit_frame(engine::state& s, const engine::emit_function& emit) {
  ++s.report.frames_sent;
  emit(s.scratch);
}

void send_l4(engine::state& s, replay_flow& f, const replay_item& item,
             std::span<const std::byte> recorded, time_ns now, const engine::emit_function& emit) {
  const wire::ipv4_address src = s.peer_address(f.peer_index);
  std::span<std::byte> l4 = frame_around(s, recorded.size(), f.protocol, src, &item);
  std::copy(recorded.begin(), recorded.end(), l4.begin());
  if (f.protocol == wire::ip_protocol::tcp) {
    store16(l4.data(), f.peer_port_live);
    store16(l4.data() + 2, f.target_port_live);
    const std::uint32_t seq = load32(l4.data() + 4);
    const std::uint32_t rel = seq - *f.rec_isn_ours;
    store32(l4.data() + 4, f.our_isn + rel);
    const auto flags = std::to_integer<std::uint8_t>(l4[13]);
    if ((flags & wire::tcp_flag::ack) != 0) {
      const std::uint32_t ack = load32(l4.data() + 8);
      store32(l4.data() + 8, ack - f.rec_isn_live.value_or(ack) + f.live_isn.value_or(0));
    }
    const bool syn_only =
        (flags & (wire::tcp_flag::syn | wire::tcp_flag::ack)) == wire::tcp_flag::syn;
    rewrite_tcp_options(l4, f, now, syn_only);
    const std::size_t header = tcp_header_bytes(l4);
    const std::uint64_t end = std::uint64_t{rel} + (l4.size() - header) +
                              ((flags & wire::tcp_flag::syn) != 0 ? 1 : 0) +
                              ((flags & wire::tcp_flag::fin) != 0 ? 1 : 0);
    if (rel < 0x80000000U) {
      f.our_sent_rel = std::max(f.our_sent_rel, end);
    }
  } else if (f.protocol == wire::ip_protocol::udp) {
    store16(l4.data(), f.peer_port_live);
    store16(l4.data() + 2, f.target_port_live);
  }
  finish_l4_checksum(l4, f.protocol, src, s.config.live_address);
  ++f.frames_sent;
  f.last_activity = now;
  f.last_progress = now;
  emit_frame(s, emit);
}

/// Sends a recorded frame; a TCP segment larger than the MTU (a capture taken with TSO / GRO)
/// is cut into segments that fit, FIN and PSH on the last.
void send_item(engine::state& s, replay_flow& f, const replay_item& item, time_ns now,
               const engine::emit_function& emit) {
  const std::size_t room = std::max<std::size_t>(s.config.mtu, 576) - wire::ipv4_min_header_length;
  if (f.protocol != wire::ip_protocol::tcp || item.l4.size() <= room ||
      (std::to_integer<std::uint8_t>(item.l4[13]) & wire::tcp_flag::syn) != 0) {
    send_l4(s, f, item, item.l4, now, emit);
    return;
  }
  const std::size_t header = tcp_header_bytes(item.l4);
  const std::size_t payload = item.l4.size() - header;
  const std::size_t step = room > header + 8 ? room - header : 8;
  const auto flags = std::to_integer<std::uint8_t>(item.l4[13]);
  std::vector<std::byte> piece;
  for (std::size_t off = 0; off < payload; off += step) {
    const std::size_t n = std::min(step, payload - off);
    piece.assign(item.l4.begin(), item.l4.begin() + static_cast<std::ptrdiff_t>(header));
    piece.insert(piece.end(), item.l4.begin() + static_cast<std::ptrdiff_t>(header + off),
                 item.l4.begin() + static_cast<std::ptrdiff_t>(header + off + n));
    store32(piece.data() + 4, load32(item.l4.data() + 4) + static_cast<std::uint32_t>(off));
    const bool last = off + n == payload;
    const std::uint8_t keep =
        last ? 0xffU : static_cast<std::uint8_t>(~(wire::tcp_flag::fin | wire::tcp_flag::psh));
    piece[13] = std::byte{static_cast<std::uint8_t>(flags & keep)};
    send_l4(s, f, item, piece, now, emit);
  }
}

/// Our RST ending an aborted flow (seq: the next byte we would have sent).
void send_rst(engine::state& s, replay_flow& f, time_ns now, const engine::emit_function& emit) {
  const wire::ipv4_address src = s.peer_address(f.peer_index);
  std::span<std::byte> l4 =
      frame_around(s, wire::tcp_min_header_length, wire::ip_protocol::tcp, src, nullptr);
  wire::tcp_header h;
  h.src_port = f.peer_port_live;
  h.dst_port = f.target_port_live;
  h.seq = f.our_isn + static_cast<std::uint32_t>(f.our_sent_rel);
  h.flags = wire::tcp_flag::rst;
  wire::write_tcp(l4, h);
  finish_l4_checksum(l4, wire::ip_protocol::tcp, src, s.config.live_address);
  ++f.frames_sent;
  f.last_activity = now;
  f.last_progress = now;
  emit_frame(s, emit);
}

void send_arp(engine::state& s, const engine::emit_function& emit, std::uint16_t op,
              mac_address to_mac, wire::ipv4_address from_ip, wire::ipv4_address to_ip) {
  s.scratch.assign(wire::ethernet_header_length + wire::arp_length, std::byte{0});
  wire::ethernet_header eth;
  eth.dst = op == wire::arp_op::request ? mac_address::broadcast() : to_mac;
  eth.src = s.config.mac;
  eth.ethertype = wire::ethertype::arp;
  wire::write_ethernet(s.scratch, eth);
  wire::arp_packet a;
  a.operation = op;
  a.sender_mac = s.config.mac;
  a.sender_ip = from_ip;
  a.target_mac = op == wire::arp_op::request ? mac_address{} : to_mac;
  a.target_ip = to_ip;
  wire::write_arp(std::span(s.scratch).subspan(wire::ethernet_header_length), a);
  emit_frame(s, emit);
}

/// When the live side sees recorded time `recorded_at` of flow f (before its wait delays).
time_ns paced_at(const engine::state& s, const replay_flow& f, time_ns recorded_at) {
  return f.anchor.value_or(s.replay_start) + (recorded_at - std::min(recorded_at, f.anchor_rec));
}

time_ns planned_at(const engine::state& s, const replay_flow& f, const replay_item& item) {
  return s.config.fast ? s.replay_start : paced_at(s, f, item.recorded_at) + f.shift;
}

/// When a held item becomes a missing response: response_timeout after it was due and after the
/// flow's last progress (a frame sent, or new live bytes), so a long response still arriving, or
/// a --fast replay (where every item is due at the start), is not cut off, while live
/// retransmissions of bytes already seen do not extend the wait.
time_ns wait_deadline(const engine::state& s, const replay_flow& f, time_ns planned) {
  return std::max(planned, f.last_progress) + s.config.response_timeout;
}

bool blocked(const replay_flow& f, const replay_item& item) {
  if (!f.target_port_known) {
    return true;  // server role: until the live client's first SYN / datagram
  }
  return f.protocol == wire::ip_protocol::tcp && item.waits &&
         (!f.live_isn || f.live_sent_rel < item.ack_rel);
}

/// The flow a live frame belongs to. `new_syn`: the seq of a live SYN without ACK (a client's
/// connection request), which takes the next unassigned recorded connection (server role) unless
/// it repeats the SYN of a flow it already has.
replay_flow* find_live_flow(engine::state& s, std::uint8_t protocol, std::size_t peer,
                            std::uint16_t our_port, std::uint16_t live_port,
                            std::optional<std::uint32_t> new_syn, time_ns now) {
  replay_flow* found = nullptr;
  replay_flow* unassigned = nullptr;
  for (replay_flow& f : s.flows) {
    if (f.protocol != protocol || f.peer_index != peer || f.peer_port_live != our_port ||
        !f.skip_reason.empty()) {
      continue;
    }
    if (protocol == wire::ip_protocol::icmp ||
        (f.target_port_known && f.target_port_live == live_port)) {
      if (found == nullptr || f.started) {
        found = &f;  // the latest started flow on a reused 4-tuple
      }
    } else if (!f.target_port_known && unassigned == nullptr &&
               (new_syn || protocol == wire::ip_protocol::udp)) {
      unassigned = &f;
    }
  }
  const bool reconnect =
      found != nullptr && new_syn && found->live_isn && *found->live_isn != *new_syn;
  if (unassigned != nullptr && (found == nullptr || reconnect)) {
    // Server role: the live client's port, learned; the flow's recorded time starts now.
    unassigned->target_port_live = live_port;
    unassigned->target_port_known = true;
    unassigned->anchor = now;
    if (!unassigned->items.empty()) {
      unassigned->anchor_rec = s.items[unassigned->items.front()].recorded_at;
    }
    return unassigned;
  }
  return found;
}

void on_live_tcp(engine::state& s, replay_flow& f, time_ns now, const wire::tcp_header& h,
                 std::span<const std::byte> payload) {
  if (h.has(wire::tcp_flag::syn) && !f.live_isn) {
    f.live_isn = h.seq;
  }
  if (!f.live_isn) {
    // A refusal: RST|ACK acknowledging our SYN (RFC 9293 3.10.7.3, SYN-SENT) before any SYN-ACK.
    if (h.has(wire::tcp_flag::rst) && h.has(wire::tcp_flag::ack) && f.started &&
        h.ack == f.our_isn + 1) {
      f.live_rst = true;
      return;
    }
    ++s.report.frames_unexpected;
    return;
  }
  if (h.has(wire::tcp_flag::rst)) {
    f.live_rst = true;
    return;
  }
  if (h.options.timestamps) {
    f.live_tsval = h.options.timestamps->value;
  }
  const std::uint32_t rel = h.seq - *f.live_isn;
  if (rel >= 0x80000000U) {
    return;  // before the ISN: nothing to store
  }
  const std::uint64_t data_at = std::uint64_t{rel} + (h.has(wire::tcp_flag::syn) ? 1 : 0);
  if (data_at >= 1 && !payload.empty() &&
      f.live_stream.put(data_at - 1, payload, s.config.max_live_bytes)) {
    ++f.retransmissions;
  }
  f.live_fin = f.live_fin || h.has(wire::tcp_flag::fin);
  const std::uint64_t end = data_at + payload.size() + (h.has(wire::tcp_flag::fin) ? 1 : 0);
  if (end > f.live_sent_rel) {
    f.live_sent_rel = end;
    f.last_progress = now;
  }
}

}  // namespace

std::uint32_t isn_for(std::uint64_t seed, std::uint64_t index) noexcept {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (index + 1);
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return static_cast<std::uint32_t>(z ^ (z >> 31U));
}

engine::engine(replay_config config) : s_(std::make_unique<state>()) {
  s_->config = std::move(config);
}
engine::~engine() = default;
engine::engine(engine&&) noexcept = default;
engine& engine::operator=(engine&&) noexcept = default;

const replay_config& engine::config() const noexcept {
  return s_->config;
}

std::vector<std::uint16_t> engine::live_ports() const {
  std::vector<std::uint16_t> ports;
  for (const replay_flow& f : s_->flows) {
    if (f.protocol == wire::ip_protocol::tcp && f.skip_reason.empty() && f.target_port_known) {
      ports.push_back(f.target_port_live);
    }
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

std::size_t engine::peer_count() const noexcept {
  return std::max<std::size_t>(1, s_->peers.size());
}

bool engine::load(std::span<const capture_record> records, std::string& error) {
  return load_records(*s_, records, error);
}

void engine::on_frame(time_ns now, std::span<const std::byte> frame) {
  state& s = *s_;
  s.last_now = std::max(s.last_now, now);
  ++s.report.frames_received;
  const wire::decoded_frame d =
      wire::decode_frame(frame, wire::decode_options{.verify_checksums = false});
  if (!d.accepted()) {
    ++s.report.frames_unexpected;
    return;
  }
  const auto learn = [&](mac_address mac) {
    if (!s.live_mac && s.started) {
      s.live_mac = mac;
      s.replay_start = now;
      s.report.live_mac_learned = true;
    }
  };
  const std::size_t peers = std::max<std::size_t>(1, s.peers.size());
  const auto ours = [&](wire::ipv4_address a) -> std::optional<std::size_t> {
    const std::uint32_t i = a.value - s.config.address.value;
    return i < peers ? std::optional<std::size_t>(i) : std::nullopt;
  };
  if (d.arp) {
    if (d.arp->sender_ip == s.config.live_address) {
      learn(d.arp->sender_mac);
    }
    if (d.arp->operation == wire::arp_op::request && ours(d.arp->target_ip)) {
      s.arp_replies.push_back({d.arp->sender_mac, d.arp->target_ip, d.arp->sender_ip});
    } else if (d.arp->sender_ip != s.config.live_address) {
      ++s.report.frames_unexpected;
    }
    return;
  }
  const auto peer = d.ipv4 ? ours(d.ipv4->dst) : std::nullopt;
  if (!d.ipv4 || d.ipv4->src != s.config.live_address || !peer) {
    ++s.report.frames_unexpected;
    return;
  }
  learn(d.eth.src);
  replay_flow* f = nullptr;
  if (d.tcp) {
    const bool syn_only = d.tcp->has(wire::tcp_flag::syn) && !d.tcp->has(wire::tcp_flag::ack);
    f = find_live_flow(s, wire::ip_protocol::tcp, *peer, d.tcp->dst_port, d.tcp->src_port,
                       syn_only ? std::optional<std::uint32_t>(d.tcp->seq) : std::nullopt, now);
  } else if (d.udp) {
    f = find_live_flow(s, wire::ip_protocol::udp, *peer, d.udp->dst_port, d.udp->src_port,
                       std::nullopt, now);
  } else if (d.icmp && d.icmp->type == wire::icmp_type::echo_reply) {
    f = find_live_flow(s, wire::ip_protocol::icmp, *peer, d.icmp->identifier(), 0, std::nullopt,
                       now);
  }
  if (f == nullptr) {
    ++s.report.frames_unexpected;
    return;
  }
  ++f->frames_received;
  f->last_activity = now;
  if (d.tcp) {
    on_live_tcp(s, *f, now, *d.tcp, d.payload);
  }
}

void engine::poll(time_ns now, const emit_function& emit) {
  state& s = *s_;
  s.last_now = std::max(s.last_now, now);
  for (const auto& r : s.arp_replies) {
    ++s.report.arp_requests_answered;
    send_arp(s, emit, wire::arp_op::reply, r.to_mac, r.our_ip, r.to_ip);
  }
  s.arp_replies.clear();
  if (!s.started) {
    s.started = true;
    s.first_poll = now;
    s.report.started_at = now;
    s.arp_next = now;
  }
  if (!s.live_mac) {
    if (s.arp_failed) {
      return;
    }
    // The client role gives up on a silent live stack; a server waits for its client, which
    // may come up later (its ARP request or first frame teaches us its MAC too).
    if (s.config.play == play_role::client && now >= s.first_poll + s.config.response_timeout) {
      s.arp_failed = true;
      s.divergences.push_back("no ARP reply from the live stack " +
                              s.config.live_address.to_string());
      return;
    }
    if (now >= s.arp_next) {
      send_arp(s, emit, wire::arp_op::request, {}, s.config.address, s.config.live_address);
      s.arp_next = now + s.config.arp_retry;
    }
    return;
  }
  for (;;) {
    replay_flow* best = nullptr;
    for (replay_flow& f : s.flows) {
      if (!f.pending()) {
        continue;
      }
      const replay_item& item = s.items[f.items[f.next]];
      const time_ns planned = planned_at(s, f, item);
      if (now < planned) {
        continue;
      }
      if (blocked(f, item)) {
        if (!f.target_port_known) {
          continue;  // server role: the live client connects when it will (no response timeout)
        }
        if (now >= wait_deadline(s, f, planned)) {
          ++f.missing_responses;
          s.divergences.push_back("missing response: flow " + s.flow_name(f, true) +
                                  " waited for byte " + std::to_string(item.ack_rel) +
                                  ", live sent " + std::to_string(f.live_sent_rel));
          f.aborted = true;
          if (f.started && f.live_isn) {
            send_rst(s, f, now, emit);
          }
        }
        continue;
      }
      if (best == nullptr || item.index < s.items[best->items[best->next]].index) {
        best = &f;
      }
    }
    if (best == nullptr) {
      break;
    }
    const replay_item& item = s.items[best->items[best->next]];
    if (!s.config.fast) {
      best->shift = now - paced_at(s, *best, item.recorded_at);
    }
    best->started = true;
    ++best->next;
    send_item(s, *best, item, now, emit);
  }
  s.report.finished_at = now;
}

time_ns engine::next_wakeup() const noexcept {
  const state& s = *s_;
  if (!s.arp_replies.empty() || !s.started) {
    return s.last_now;
  }
  if (!s.live_mac) {
    if (s.arp_failed) {
      return UINT64_MAX;
    }
    return s.config.play == play_role::client
               ? std::min(s.arp_next, s.first_poll + s.config.response_timeout)
               : s.arp_next;
  }
  time_ns w = UINT64_MAX;
  for (const replay_flow& f : s.flows) {
    if (f.pending()) {
      if (!f.target_port_known) {
        continue;  // waits for a live SYN: its arrival is the wakeup
      }
      const replay_item& item = s.items[f.items[f.next]];
      const time_ns planned = planned_at(s, f, item);
      w = std::min(
          w, planned > s.last_now || !blocked(f, item) ? planned : wait_deadline(s, f, planned));
    } else if (f.started && !f.aborted && !f.live_rst) {
      const time_ns grace = f.last_activity + (f.responses_complete() ? s.config.settle_time
                                                                      : s.config.response_timeout);
      if (grace > s.last_now) {
        w = std::min(w, grace);
      }
    }
  }
  return w;
}

bool engine::done() const noexcept {
  const state& s = *s_;
  if (!s.started) {
    return false;
  }
  if (s.arp_failed) {
    return true;
  }
  if (!s.live_mac) {
    return false;
  }
  return std::all_of(s.flows.begin(), s.flows.end(), [&](const replay_flow& f) {
    const time_ns quiet = s.last_now - std::min(s.last_now, f.last_activity);
    return !f.pending() && (!f.started || f.aborted || f.live_rst ||
                            (f.responses_complete() && quiet >= s.config.settle_time) ||
                            quiet >= s.config.response_timeout);
  });
}

const replay_report& engine::report() const {
  build_report(*s_, s_->report);
  return s_->report;
}

}  // namespace dpdk_net::replay
