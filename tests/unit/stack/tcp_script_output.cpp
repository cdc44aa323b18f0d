// The script fixture's output side (see tcp_script.hpp): draining the stack, parsing and
// placing our segments in their flows, and checking them against expected specs.
#include <array>
#include <sstream>

#include "dpdk_net/wire/arp.hpp"
#include "dpdk_net/wire/ethernet.hpp"
#include "tcp_script.hpp"

namespace dpdk_net::stack::script {

using detail::ack_dont_care;
using detail::drain_stack;
using detail::seq_after;

std::uint8_t parse_flags(const char* spec) {
  std::uint8_t f = 0;
  for (const char* p = spec; *p != '\0'; ++p) {
    switch (*p) {
      case 'S':
        f |= wire::tcp_flag::syn;
        break;
      case 'F':
        f |= wire::tcp_flag::fin;
        break;
      case 'R':
        f |= wire::tcp_flag::rst;
        break;
      case 'P':
        f |= wire::tcp_flag::psh;
        break;
      case 'U':
        f |= wire::tcp_flag::urg;
        break;
      case '.':
        f |= wire::tcp_flag::ack;
        break;
      case '*':
        f |= ack_dont_care;
        break;
      default:
        ADD_FAILURE() << "bad flag letter '" << *p << "' in \"" << spec << "\"";
    }
  }
  return f;
}

std::string flags_string(std::uint8_t flags) {
  std::string s;
  if ((flags & wire::tcp_flag::syn) != 0)
    s += 'S';
  if ((flags & wire::tcp_flag::fin) != 0)
    s += 'F';
  if ((flags & wire::tcp_flag::rst) != 0)
    s += 'R';
  if ((flags & wire::tcp_flag::psh) != 0)
    s += 'P';
  if ((flags & wire::tcp_flag::urg) != 0)
    s += 'U';
  if ((flags & wire::tcp_flag::ece) != 0)
    s += 'E';
  if ((flags & wire::tcp_flag::cwr) != 0)
    s += 'W';
  if ((flags & wire::tcp_flag::ack) != 0)
    s += '.';
  return s.empty() ? "none" : s;
}

std::string stream_bytes(std::uint64_t offset, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = stream_byte(offset + i);
  }
  return s;
}

std::string observed::str() const {
  if (!valid) {
    return "(no segment)";
  }
  std::ostringstream o;
  o << "t=" << at / millisecond << "ms " << flags_string(tcp.flags) << " seq " << rel_seq;
  if (tcp.has(wire::tcp_flag::ack)) {
    o << " ack " << rel_ack;
  }
  o << " win " << tcp.window;
  const auto& op = tcp.options;
  if (op.mss || op.window_scale || op.timestamps || op.sack_permitted) {
    o << " <";
    if (op.mss)
      o << "mss " << *op.mss << ",";
    if (op.window_scale)
      o << "ws " << static_cast<int>(*op.window_scale) << ",";
    if (op.sack_permitted)
      o << "sackOK,";
    if (op.timestamps)
      o << "ts " << op.timestamps->value << " " << op.timestamps->echo_reply;
    o << ">";
  }
  o << " len " << payload.size() << " ports " << tcp.src_port << "->" << tcp.dst_port;
  return o.str();
}

observed TcpScript::run_until_segment(std::uint64_t limit_ms, where w) {
  const time_ns limit = limit_ms * millisecond;
  pull(w);
  while (out_.empty()) {
    const time_ns next = st().next_deadline();
    if (next == UINT64_MAX || next < base_ || next - base_ > limit) {
      if (now_ < limit) {
        at_ns(limit, w);
        pull(w);
      }
      break;
    }
    at_ns(std::max(now_, next - base_), w);
    pull(w);
  }
  if (out_.empty()) {
    return {};
  }
  observed o = std::move(out_.front());
  out_.pop_front();
  return o;
}

void TcpScript::note(observed& o) {
  flow& f = flow_for(o.tcp.dst_port);
  if (o.tcp.has(wire::tcp_flag::syn)) {
    f.our_isn = o.tcp.seq;
    f.our_isn_known = true;
    f.our_next = 1;
    f.our_port = o.tcp.src_port;
    f.we_offered_ts = o.tcp.options.timestamps.has_value();
  }
  o.rel_seq = o.tcp.seq - f.our_isn;
  o.rel_ack = o.tcp.ack - f.peer_isn;
  if (o.tcp.options.timestamps) {
    f.our_tsval = o.tcp.options.timestamps->value;
  }
  if (!o.tcp.has(wire::tcp_flag::rst)) {
    const std::uint32_t end = o.rel_seq + static_cast<std::uint32_t>(o.payload.size()) +
                              (o.tcp.has(wire::tcp_flag::syn) ? 1U : 0U) +
                              (o.tcp.has(wire::tcp_flag::fin) ? 1U : 0U);
    if (seq_after(end, f.our_next)) {
      f.our_next = end;
    }
  }
}

void TcpScript::pull(where w) {
  std::array<packet, 64> burst;
  std::vector<wire::decoded_frame> arp_requests;
  while (const std::size_t n = drain_stack(st(), burst, now())) {
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<std::byte> bytes(burst[i].length());
      burst[i].copy_out(0, bytes);
      const wire::decoded_frame d = wire::decode_frame(bytes);
      if (!d.accepted()) {
        ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line()))
            << "we sent a frame the decoder refuses: " << wire::to_string(d.error);
        continue;
      }
      if (d.tcp) {
        EXPECT_EQ(d.ipv4->src, our_ip);
        EXPECT_EQ(d.ipv4->dst, peer_ip);
        EXPECT_FALSE(d.fragment) << "a TCP segment was fragmented";
        observed o;
        o.valid = true;
        o.at = now_;
        o.ip = *d.ipv4;
        o.tcp = *d.tcp;
        o.payload.assign(d.payload.begin(), d.payload.end());
        note(o);
        out_.push_back(std::move(o));
      } else if (d.arp) {
        if (d.arp->operation == wire::arp_op::request) {
          arp_requests.push_back(d);
        }
      } else {
        other_frames_.push_back(std::move(bytes));
        others_.push_back(wire::decode_frame(other_frames_.back()));
      }
    }
    free_burst(std::span(burst.data(), n));
  }
  for (const auto& d : arp_requests) {
    answer_arp(d);
  }
}

void TcpScript::answer_arp(const wire::decoded_frame& d) {
  if (d.arp->target_ip != peer_ip) {
    return;
  }
  std::array<std::byte, 42> f{};
  wire::write_ethernet(f, wire::ethernet_header{our_mac, peer_mac, wire::ethertype::arp, false, 0});
  wire::write_arp(std::span(f).subspan(14),
                  wire::arp_packet{wire::arp_op::reply, peer_mac, peer_ip, our_mac, our_ip});
  packet p = pool_.alloc();
  std::memcpy(p.append(f.size()), f.data(), f.size());
  st().receive(std::move(p), now());
}

observed TcpScript::expect(const seg& s, where w) {
  pull(w);
  const std::string want = std::string("expected ") + s.flags;
  if (out_.empty()) {
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line()))
        << want << " at t=" << now_ms() << "ms, but nothing was sent";
    return {};
  }
  observed o = std::move(out_.front());
  out_.pop_front();
  std::ostringstream bad;
  const std::uint8_t spec = parse_flags(s.flags);
  std::uint8_t mask = 0xff;
  if ((spec & wire::tcp_flag::psh) == 0) {
    mask &= static_cast<std::uint8_t>(~wire::tcp_flag::psh);
  }
  if ((spec & ack_dont_care) != 0) {
    mask &= static_cast<std::uint8_t>(~wire::tcp_flag::ack);
  }
  const std::uint8_t want_flags = spec & static_cast<std::uint8_t>(~ack_dont_care);
  if ((o.tcp.flags & mask) != (want_flags & mask)) {
    bad << " flags " << flags_string(o.tcp.flags) << " != " << s.flags << ";";
  }
  if (s.port != 0 && o.tcp.dst_port != s.port) {
    bad << " to port " << o.tcp.dst_port << " != " << s.port << ";";
  }
  if (s.seq && o.rel_seq != *s.seq) {
    bad << " seq " << o.rel_seq << " != " << *s.seq << ";";
  }
  if (s.ack && o.rel_ack != *s.ack) {
    bad << " ack " << o.rel_ack << " != " << *s.ack << ";";
  }
  if (s.win && o.tcp.window != *s.win) {
    bad << " win " << o.tcp.window << " != " << *s.win << ";";
  }
  const auto check = [&bad](const char* name, const auto& spec_opt, const auto& got) {
    using mode = typename std::decay_t<decltype(spec_opt)>::mode;
    switch (spec_opt.how) {
      case mode::unspecified:
        break;
      case mode::is_absent:
        if (got)
          bad << " " << name << " present, expected absent;";
        break;
      case mode::is_present:
        if (!got)
          bad << " " << name << " absent;";
        break;
      case mode::equal:
        if (!got || !(*got == spec_opt.value))
          bad << " " << name << " differs;";
        break;
    }
  };
  check("mss", s.mss, o.tcp.options.mss);
  check("wscale", s.ws, o.tcp.options.window_scale);
  check("timestamps", s.ts, o.tcp.options.timestamps);
  if (s.tsecr && (!o.tcp.options.timestamps || o.tcp.options.timestamps->echo_reply != *s.tsecr)) {
    bad << " tsecr " << (o.tcp.options.timestamps ? o.tcp.options.timestamps->echo_reply : 0)
        << " != " << *s.tsecr << ";";
  }
  if (!s.data.empty()) {
    const std::string got(reinterpret_cast<const char*>(o.payload.data()), o.payload.size());
    if (got != s.data) {
      bad << " payload \"" << got.substr(0, 64) << "\" != \"" << s.data.substr(0, 64) << "\";";
    }
  } else {
    const std::size_t want_len = s.len.value_or(0);
    if (o.payload.size() != want_len) {
      bad << " len " << o.payload.size() << " != " << want_len << ";";
    }
  }
  if (!bad.str().empty()) {
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line()))
        << want << ", got " << o.str() << ":" << bad.str();
  }
  return o;
}

void TcpScript::expect_nothing(where w) {
  pull(w);
  if (!out_.empty()) {
    std::ostringstream all;
    for (const auto& o : out_) {
      all << "\n  " << o.str();
    }
    ADD_FAILURE_AT(w.file_name(), static_cast<int>(w.line()))
        << "expected nothing at t=" << now_ms() << "ms, got:" << all.str();
    out_.clear();
  }
}

std::vector<observed> TcpScript::drain() {
  pull(where::current());
  std::vector<observed> v(std::make_move_iterator(out_.begin()),
                          std::make_move_iterator(out_.end()));
  out_.clear();
  return v;
}

std::vector<wire::decoded_frame> TcpScript::others() {
  pull(where::current());
  return std::exchange(others_, {});
}

}  // namespace dpdk_net::stack::script
