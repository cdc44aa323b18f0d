// The script fixture (see tcp_script.hpp).
#include "tcp_script.hpp"

#include <array>
#include <cstring>
#include <sstream>

#include "dpdk_net/wire/arp.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack::script {

using detail::ack_dont_care;
using detail::drain_stack;
using detail::seq_after;

namespace {
namespace tcp_script {
packet_pool_config script_pool() {
  packet_pool_config c;
  c.name = "tcp_script";
  c.count = 1024;  // a script holds a few dozen frames at most
  return c;
}
}  // namespace tcp_script
}  // namespace

TcpScript::TcpScript() : pool_{tcp_script::script_pool()} {
  cfg_.mac = our_mac;
  cfg_.address = our_ip;
  cfg_.prefix_length = 24;
  cfg_.mtu = 1500;
  // Keep the peer's ARP entry quiet on long scripts (the fixture answers requests anyway).
  cfg_.arp.reachable_time = 3600 * second;
  // Small tables: a script uses a handful of sockets, and building the default 1024-socket slab
  // for each of a hundred scripts costs more than the scripts themselves.
  cfg_.tcp.sockets = 64;
  cfg_.tcp.time_wait_records = 64;
}

TcpScript::~TcpScript() {
  out_.clear();
  st_.reset();
}

stack& TcpScript::st() {
  if (!st_) {
    st_.emplace(cfg_, pool_, stack_secret{0x5eed, 0x7c9}, base_ + now_);
    // The peer's MAC, learned from its ARP request for us (our reply is discarded).
    std::array<std::byte, 42> f{};
    wire::write_ethernet(f, wire::ethernet_header{mac_address::broadcast(), peer_mac,
                                                  wire::ethertype::arp, false, 0});
    wire::write_arp(std::span(f).subspan(14),
                    wire::arp_packet{wire::arp_op::request, peer_mac, peer_ip, {}, our_ip});
    packet p = pool_.alloc();
    std::memcpy(p.append(f.size()), f.data(), f.size());
    st_->receive(std::move(p), now());
    std::array<packet, 16> burst;
    while (const std::size_t n = drain_stack(*st_, burst, now())) {
      free_burst(std::span(burst.data(), n));
    }
  }
  return *st_;
}

TcpScript::flow& TcpScript::flow_for(std::uint16_t port) {
  auto [it, fresh] = flows_.try_emplace(port == 0 ? peer_port_ : port);
  if (fresh) {
    it->second.peer_isn = default_peer_isn_;
    it->second.our_port = listen_port_ != 0 ? listen_port_ : 8080;
  }
  return it->second;
}

void TcpScript::peer_isn(std::uint32_t isn) {
  default_peer_isn_ = isn;
  for (auto& [port, f] : flows_) {
    if (f.peer_next == 0) {
      f.peer_isn = isn;
    }
  }
}
std::uint32_t TcpScript::peer_isn_of(std::uint16_t port) {
  return flow_for(port).peer_isn;
}
std::uint16_t TcpScript::our_port(std::uint16_t port) {
  return flow_for(port).our_port;
}
std::uint32_t TcpScript::our_isn(std::uint16_t port) {
  return flow_for(port).our_isn;
}
std::uint32_t TcpScript::our_tsval(std::uint16_t port) {
  pull(where::current());
  return flow_for(port).our_tsval;
}

void TcpScript::new_flow(std::uint16_t port, std::uint32_t isn) {
  const std::uint16_t ours = flow_for(port).our_port;
  flows_.erase(port);
  flow& f = flow_for(port);
  f.peer_isn = isn;
  f.our_port = ours;
}

void TcpScript::at(std::uint64_t ms, where w) {
  at_ns(ms * millisecond, w);
}

void TcpScript::at_ns(time_ns t, where w) {
  if (t < now_) {
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line()))
        << "at(" << t / millisecond << " ms): the clock is already at " << now_ms() << " ms";
    return;
  }
  pull(w);
  // Like an event loop: run every deadline on the way at its own time (draining after each), so
  // a timer never fires late just because the script jumped ahead.
  bool ran_now = false;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    const time_ns next = st().next_deadline();
    if (next == UINT64_MAX) {
      break;
    }
    const time_ns due = next <= base_ ? 0 : next - base_;
    if (due > t) {
      break;
    }
    if (due <= now_) {
      if (ran_now) {
        break;  // still due after running (a retry deadline): time must move on
      }
    } else {
      now_ = due;
    }
    st().advance(now());
    pull(w);
    ran_now = true;
  }
  now_ = t;
  st().advance(now());
}

std::vector<std::byte> TcpScript::build_segment(const seg& s, flow& f, std::uint16_t port) {
  const std::uint8_t flags = parse_flags(s.flags) & static_cast<std::uint8_t>(~ack_dont_care);
  const bool is_syn = (flags & wire::tcp_flag::syn) != 0;
  wire::tcp_header h;
  h.src_port = port;
  h.dst_port = f.our_port;
  const std::uint32_t rel_seq = s.seq.value_or(f.peer_next);
  h.seq = f.peer_isn + rel_seq;
  if (s.ack) {
    h.ack = f.our_isn + *s.ack;
  } else if ((flags & wire::tcp_flag::ack) != 0) {
    h.ack = f.our_isn + f.our_next;
  }
  h.flags = flags;
  h.window = s.win.value_or(65535);
  h.urgent_pointer = s.urp;
  if (s.mss.how == option_spec<std::uint16_t>::mode::equal) {
    h.options.mss = s.mss.value;
  } else if (s.mss.how == option_spec<std::uint16_t>::mode::is_present) {
    h.options.mss = 1460;
  }
  if (s.ws.how == option_spec<std::uint8_t>::mode::equal) {
    h.options.window_scale = s.ws.value;
  } else if (s.ws.how == option_spec<std::uint8_t>::mode::is_present) {
    h.options.window_scale = 7;
  }
  using ts_mode = option_spec<wire::tcp_timestamps>::mode;
  if (s.ts.how == ts_mode::equal) {
    h.options.timestamps = s.ts.value;
  } else if (s.ts.how == ts_mode::is_present || (s.ts.how == ts_mode::unspecified && !is_syn &&
                                                 f.peer_offered_ts && f.we_offered_ts)) {
    h.options.timestamps =
        wire::tcp_timestamps{peer_tsval(), (flags & wire::tcp_flag::ack) != 0 ? f.our_tsval : 0};
  }
  if (is_syn) {
    f.peer_offered_ts = h.options.timestamps.has_value();
  }
  std::string payload = s.data;
  if (payload.empty() && s.len) {
    // The pattern at the segment's stream offset (first data byte is relative seq 1).
    payload = stream_bytes(rel_seq - 1U + (is_syn ? 1U : 0U), *s.len);
  }
  const std::size_t hl = 20 + wire::tcp_options_length(h.options);
  std::vector<std::byte> l4(hl + payload.size());
  const std::size_t written = wire::write_tcp(l4, h);
  EXPECT_EQ(written, hl);
  std::memcpy(l4.data() + hl, payload.data(), payload.size());
  wire::set_tcp_checksum(l4, wire::pseudo_header{peer_ip, our_ip});
  const std::uint32_t end = rel_seq + static_cast<std::uint32_t>(payload.size()) +
                            (is_syn ? 1U : 0U) + ((flags & wire::tcp_flag::fin) != 0 ? 1U : 0U);
  if ((flags & wire::tcp_flag::rst) == 0 && seq_after(end, f.peer_next)) {
    f.peer_next = end;
  }
  return l4;
}

void TcpScript::deliver_ip(std::uint8_t protocol, std::span<const std::byte> l4, ipv4_address src) {
  packet p = pool_.alloc();
  std::byte* d = p.append(34 + l4.size());
  wire::write_ethernet(std::span(d, 14),
                       wire::ethernet_header{our_mac, peer_mac, wire::ethertype::ipv4, false, 0});
  wire::ipv4_header h;
  h.protocol = protocol;
  h.src = src;
  h.dst = our_ip;
  h.dont_fragment = true;
  h.total_length = static_cast<std::uint16_t>(20 + l4.size());
  wire::write_ipv4(std::span(d + 14, 20), h);
  std::memcpy(d + 34, l4.data(), l4.size());
  st().receive(std::move(p), now());
}

void TcpScript::inject(const seg& s, where w) {
  (void)w;
  const std::uint16_t port = s.port != 0 ? s.port : peer_port_;
  flow& f = flow_for(port);
  st();
  const std::vector<std::byte> l4 = build_segment(s, f, port);
  deliver_ip(wire::ip_protocol::tcp, l4, peer_ip);
}

void TcpScript::inject_fragmented(const seg& s, std::size_t first, bool reversed, where w) {
  (void)w;
  const std::uint16_t port = s.port != 0 ? s.port : peer_port_;
  flow& f = flow_for(port);
  st();
  const std::vector<std::byte> l4 = build_segment(s, f, port);
  ASSERT_EQ(first % 8, 0U);
  ASSERT_LT(first, l4.size());
  const auto fragment = [&](std::size_t at, std::size_t n, bool more) {
    packet p = pool_.alloc();
    std::byte* d = p.append(34 + n);
    wire::write_ethernet(std::span(d, 14),
                         wire::ethernet_header{our_mac, peer_mac, wire::ethertype::ipv4, false, 0});
    wire::ipv4_header h;
    h.protocol = wire::ip_protocol::tcp;
    h.src = peer_ip;
    h.dst = our_ip;
    h.id = 0x4242;
    h.more_fragments = more;
    h.fragment_offset = static_cast<std::uint16_t>(at / 8);
    h.total_length = static_cast<std::uint16_t>(20 + n);
    wire::write_ipv4(std::span(d + 14, 20), h);
    std::memcpy(d + 34, l4.data() + at, n);
    st().receive(std::move(p), now());
  };
  if (reversed) {
    fragment(first, l4.size() - first, false);
    fragment(0, first, true);
  } else {
    fragment(0, first, true);
    fragment(first, l4.size() - first, false);
  }
}

void TcpScript::inject_icmp(std::uint8_t type, std::uint8_t code, std::uint32_t quoted_rel_seq,
                            std::uint16_t mtu, std::optional<ipv4_address> from,
                            std::uint16_t port) {
  const std::uint16_t p = port != 0 ? port : peer_port_;
  flow& f = flow_for(p);
  // The quote: the IP header of a segment of ours and the first 8 bytes of its TCP header.
  std::array<std::byte, 28> quote{};
  wire::ipv4_header qh;
  qh.protocol = wire::ip_protocol::tcp;
  qh.src = our_ip;
  qh.dst = peer_ip;
  qh.dont_fragment = true;
  qh.total_length = 1500;
  wire::write_ipv4(std::span(quote).first(20), qh);
  wire::store16(quote.data() + 20, f.our_port);
  wire::store16(quote.data() + 22, p);
  wire::store32(quote.data() + 24, f.our_isn + quoted_rel_seq);
  std::array<std::byte, 8 + 28> icmp{};
  const std::uint32_t rest = type == wire::icmp_type::destination_unreachable &&
                                     code == wire::icmp_unreachable::fragmentation_needed
                                 ? mtu
                                 : 0U;
  wire::write_icmp(icmp, wire::icmp_header{type, code, 0, rest}, quote);
  deliver_ip(wire::ip_protocol::icmp, icmp, from.value_or(peer_ip));
}

socket_id TcpScript::listen(std::uint16_t port, std::uint32_t backlog, where w) {
  socket_id id = tcp_layer::invalid_socket;
  const std::error_code e1 = tcp().open(id);
  const std::error_code e2 = e1 ? e1 : tcp().bind(id, port);
  const std::error_code e3 = e2 ? e2 : tcp().listen(id, backlog);
  if (e3) {
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line())) << "listen: " << e3.message();
  }
  listen_port_ = port;
  for (auto& [p, f] : flows_) {
    if (!f.our_isn_known) {
      f.our_port = port;
    }
  }
  return id;
}

socket_id TcpScript::accept_one(socket_id listener, where w) {
  socket_id id = tcp_layer::invalid_socket;
  if (const std::error_code e = tcp().accept(listener, id)) {
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line())) << "accept: " << e.message();
  }
  return id;
}

socket_id TcpScript::connect(std::uint16_t remote_port, where w) {
  socket_id id = tcp_layer::invalid_socket;
  std::error_code e = tcp().open(id);
  if (!e) {
    e = tcp().connect(id, tcp_endpoint{peer_ip, remote_port}, now());
  }
  if (e) {
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line())) << "connect: " << e.message();
  }
  peer_port_ = remote_port;
  return id;
}

std::size_t TcpScript::send(socket_id id, const std::string& data, where w) {
  const io_result r = tcp().send(id, std::as_bytes(std::span(data.data(), data.size())));
  if (r.error) {
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line())) << "send: " << r.error.message();
  }
  return r.bytes;
}

std::size_t TcpScript::send_stream(socket_id id, std::size_t n, where w) {
  std::uint64_t& offset = sent_stream_[id];
  const std::string data = stream_bytes(offset, n);
  const std::size_t taken = send(id, data, w);
  offset += taken;
  return taken;
}

std::string TcpScript::read(socket_id id) {
  std::string all;
  std::array<std::byte, 4096> buf;
  for (;;) {
    const io_result r = tcp().receive(id, buf);
    if (r.bytes == 0) {
      break;
    }
    all.append(reinterpret_cast<const char*>(buf.data()), r.bytes);
  }
  return all;
}

std::uint8_t TcpScript::events(socket_id id) {
  std::array<socket_event, 64> ev;
  while (const std::size_t n = st().poll_events(ev)) {
    for (std::size_t i = 0; i < n; ++i) {
      if (ev[i].protocol == wire::ip_protocol::tcp) {
        events_[ev[i].socket] |= ev[i].events;
      }
    }
    if (n < ev.size()) {
      break;
    }
  }
  return std::exchange(events_[id], 0);
}

tcp_info TcpScript::info(socket_id id, where w) {
  const std::optional<tcp_info> i = tcp().info(id);
  if (!i) {
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line())) << "no info for socket " << id;
    return {};
  }
  return *i;
}

tcp_state TcpScript::state(socket_id id) {
  const std::optional<tcp_info> i = tcp().info(id);
  return i ? i->state : tcp_state::closed;
}

socket_id TcpScript::passive_open(peer_syn p, std::uint64_t rtt_ms, where w) {
  if (listener_ == tcp_layer::invalid_socket) {
    listener_ = listen(8080, 16, w);
  }
  seg syn{.flags = "S", .seq = 0, .win = p.win};
  if (p.mss)
    syn.mss = *p.mss;
  if (p.ws)
    syn.ws = *p.ws;
  if (p.ts)
    syn.ts = present;
  inject(syn, w);
  const observed sa = expect({.flags = "S.", .ack = 1}, w);
  (void)sa;
  at(now_ms() + rtt_ms, w);
  inject({.flags = ".", .seq = 1, .ack = 1, .win = p.win}, w);
  expect_nothing(w);
  return accept_one(listener_, w);
}

socket_id TcpScript::active_open(peer_syn p, std::uint64_t rtt_ms, where w) {
  const socket_id id = connect(80, w);
  expect({.flags = "S", .seq = 0}, w);
  at(now_ms() + rtt_ms, w);
  seg sa{.flags = "S.", .seq = 0, .ack = 1, .win = p.win};
  if (p.mss)
    sa.mss = *p.mss;
  if (p.ws)
    sa.ws = *p.ws;
  if (p.ts)
    sa.ts = present;
  inject(sa, w);
  expect({.flags = ".", .seq = 1, .ack = 1}, w);
  return id;
}

}  // namespace dpdk_net::stack::script
