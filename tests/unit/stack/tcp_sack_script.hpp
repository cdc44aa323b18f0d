// The SACK script tests' fixture (tcp_sack_test.cpp, tcp_sack_recovery_test.cpp): the script
// fixture (tcp_script.hpp) plus what it cannot say yet: SACK-permitted in the peer's SYN or
// SYN-ACK and SACK blocks in the peer's ACKs. Such segments are built here, whole, from a seg
// spec (relative numbers as in tcp_script.hpp) and given to the stack like the fixture's own;
// the fixture's flow bookkeeping does not see them, so every field they need (seq, ack, ts) is
// spelled out by the helpers below.
//
// Block numbers are relative to OUR ISN (they acknowledge our data) when the peer sends them, and
// relative to the PEER's ISN when we send them (blocks_of): both as [left, right).
#pragma once

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "dpdk_net/wire/ethernet.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {

/// A SACK block [left, right), relative.
using block = std::pair<std::uint32_t, std::uint32_t>;

inline std::string str(const std::vector<block>& bs) {
  std::ostringstream o;
  o << "<";
  for (std::size_t i = 0; i < bs.size(); ++i) {
    o << (i != 0 ? " " : "") << "[" << bs[i].first << "," << bs[i].second << ")";
  }
  o << ">";
  return o.str();
}

/// Segment k of 1460 bytes of our stream (relative: the first data byte is 1), as a block.
inline block s(std::uint32_t k) {
  return {1 + 1460 * k, 1 + 1460 * (k + 1)};
}
/// Segments a..b (inclusive) as one block.
inline block s(std::uint32_t a, std::uint32_t b) {
  return {1 + 1460 * a, 1 + 1460 * (b + 1)};
}

class TcpSack : public TcpScript {
 protected:
  /// What the peer adds to a seg that the fixture cannot build.
  struct sack_spec {
    bool permitted = false;     ///< SACK-permitted (SYN, SYN-ACK)
    std::vector<block> blocks;  ///< relative to our ISN; at most 4 (the option's room)
  };

  /// The peer's segment `sg` (seq, ack, ts, options: explicit only) with `k` added.
  void inject_raw(const seg& sg, const sack_spec& k, where w = where::current()) {
    const std::uint16_t port = sg.port != 0 ? sg.port : peer_port();
    const std::uint8_t flags =
        parse_flags(sg.flags) & static_cast<std::uint8_t>(~detail::ack_dont_care);
    const bool syn = (flags & wire::tcp_flag::syn) != 0;
    wire::tcp_header h;
    h.src_port = port;
    h.dst_port = our_port(port);
    const std::uint32_t rel_seq = sg.seq.value_or(syn ? 0 : 1);
    h.seq = peer_isn_of(port) + rel_seq;
    if (sg.ack) {
      h.ack = our_isn(port) + *sg.ack;
    }
    h.flags = flags;
    h.window = sg.win.value_or(65535);
    if (sg.mss.how == option_spec<std::uint16_t>::mode::equal) {
      h.options.mss = sg.mss.value;
    }
    if (sg.ws.how == option_spec<std::uint8_t>::mode::equal) {
      h.options.window_scale = sg.ws.value;
    }
    if (sg.ts.how == option_spec<wire::tcp_timestamps>::mode::equal) {
      h.options.timestamps = sg.ts.value;
    }
    h.options.sack_permitted = k.permitted;
    if (k.blocks.size() > h.options.sack.size()) {
      ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line())) << "more than 4 SACK blocks";
      return;
    }
    h.options.sack_count = static_cast<std::uint8_t>(k.blocks.size());
    for (std::size_t i = 0; i < k.blocks.size(); ++i) {
      h.options.sack[i] = {our_isn(port) + k.blocks[i].first, our_isn(port) + k.blocks[i].second};
    }
    std::string payload = sg.data;
    if (payload.empty() && sg.len) {
      payload = stream_bytes(rel_seq - 1U, *sg.len);
    }
    const std::size_t hl = 20 + wire::tcp_options_length(h.options);
    std::vector<std::byte> l4(hl + payload.size());
    if (wire::write_tcp(l4, h) != hl) {
      ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line())) << "options do not fit";
      return;
    }
    std::memcpy(l4.data() + hl, payload.data(), payload.size());
    wire::set_tcp_checksum(l4, wire::pseudo_header{peer_ip, our_ip});
    packet p = raw_pool().alloc();
    std::byte* d = p.append(34 + l4.size());
    wire::write_ethernet(std::span(d, 14),
                         wire::ethernet_header{our_mac, peer_mac, wire::ethertype::ipv4, false, 0});
    wire::ipv4_header ip;
    ip.protocol = wire::ip_protocol::tcp;
    ip.src = peer_ip;
    ip.dst = our_ip;
    ip.dont_fragment = true;
    ip.total_length = static_cast<std::uint16_t>(20 + l4.size());
    wire::write_ipv4(std::span(d + 14, 20), ip);
    std::memcpy(d + 34, l4.data(), l4.size());
    st().receive(std::move(p), now());
  }

  /// A pure ACK from the peer (no timestamps: the sender tests' connections have none).
  void ack(std::uint32_t rel_ack, std::vector<block> blocks = {}, std::uint16_t win = 65535,
           where w = where::current()) {
    inject_raw({.flags = ".", .seq = 1, .ack = rel_ack, .win = win}, {.blocks = std::move(blocks)},
               w);
  }

  /// Active open (connect to port 80) without timestamps or window scaling, so segments carry
  /// 1460 bytes and every window is the raw field (as tcp_script_rto_test.cpp's no_ts). The peer
  /// offers SACK-permitted if `peer_sack`; our SYN must offer it iff cfg_.tcp.sack. The
  /// controller is NewReno (CUBIC would only change ssthresh: 0.7 instead of 0.5).
  socket_id open_sender(bool peer_sack = true, std::uint16_t peer_mss = 1460,
                        where w = where::current()) {
    const socket_id c = connect(80, w);
    tcp_socket_options o = tcp().options(c);
    o.congestion = congestion_algorithm::new_reno;
    EXPECT_FALSE(tcp().set_options(c, o));
    const observed syn = expect({.flags = "S", .seq = 0}, w);
    EXPECT_EQ(syn.tcp.options.sack_permitted, cfg_.tcp.sack)
        << "our SYN offers SACK-permitted iff tcp_config::sack (RFC 2018 2): " << syn.str();
    at(now_ms() + 100, w);
    inject_raw({.flags = "S.", .seq = 0, .ack = 1, .win = 65535, .mss = peer_mss},
               {.permitted = peer_sack}, w);
    expect({.flags = ".", .seq = 1, .ack = 1}, w);
    EXPECT_EQ(info(c, w).sack, peer_sack && cfg_.tcp.sack);
    return c;
  }

  /// Passive open on 8080 from the current peer port; the peer offers SACK-permitted if
  /// `peer_sack`, and timestamps if `ts` (then every later segment of the peer must carry them:
  /// see data()). Returns the accepted socket; the SYN-ACK is in `synack`.
  socket_id open_receiver(bool peer_sack, bool ts, observed* synack = nullptr,
                          where w = where::current()) {
    if (sack_listener_ == tcp_layer::invalid_socket) {
      sack_listener_ = listen(8080, 16, w);
    }
    ts_ = ts;
    seg syn{.flags = "S", .seq = 0, .win = 65535, .mss = 1460, .ws = 7};
    if (ts) {
      syn.ts = tsopt(peer_tsval(), 0);
    }
    inject_raw(syn, {.permitted = peer_sack}, w);
    const observed sa = expect({.flags = "S.", .ack = 1}, w);
    if (synack != nullptr) {
      *synack = sa;
    }
    at(now_ms() + 100, w);
    seg a{.flags = ".", .seq = 1, .ack = 1, .win = 512};  // 512 << 7 = 65536
    if (ts) {
      a.ts = tsopt(peer_tsval(), our_tsval());
    }
    inject_raw(a, {}, w);
    expect_nothing(w);
    return accept_one(sack_listener_, w);
  }

  /// The peer's data [rel_seq, rel_seq + len) (its stream pattern), with timestamps if the
  /// connection has them.
  void data(std::uint32_t rel_seq, std::size_t len, where w = where::current()) {
    seg d{.flags = ".", .seq = rel_seq, .ack = 1, .win = 512, .len = len};
    if (ts_) {
      d.ts = tsopt(peer_tsval(), our_tsval());
    }
    inject_raw(d, {}, w);
  }

  /// The SACK blocks of one of our segments, relative to the peer's ISN.
  [[nodiscard]] std::vector<block> blocks_of(const observed& o) {
    std::vector<block> out;
    const std::uint32_t isn = peer_isn_of();
    for (const wire::sack_block& b : o.tcp.options.sack_blocks()) {
      out.emplace_back(b.left - isn, b.right - isn);
    }
    return out;
  }

  /// Every segment we sent since the last drain, with payload (data or retransmissions).
  [[nodiscard]] std::vector<observed> data_segments() {
    std::vector<observed> out;
    for (observed& o : drain()) {
      if (o.len() != 0) {
        out.push_back(std::move(o));
      }
    }
    return out;
  }

  socket_id sack_listener_ = tcp_layer::invalid_socket;
  bool ts_ = false;

 private:
  /// Frames built here come from their own pool (the fixture's is private). It outlives every
  /// stack (a static): a stack frees received frames in receive(), but nothing may outlive its
  /// pool even if one did not.
  static packet_pool& raw_pool() {
    static packet_pool pool{packet_pool_config{.name = "tcp_sack_raw", .count = 256}};
    return pool;
  }
};

}  // namespace dpdk_net::stack::script
