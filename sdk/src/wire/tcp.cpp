#include "dpdk_net/wire/tcp.hpp"

#include <cstdint>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::wire {

wire_error parse_tcp_options(std::span<const std::byte> area, tcp_options& out) noexcept {
  const std::byte* p = area.data();
  const std::size_t n = area.size();
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t kind = load8(p + i);
    if (kind == tcp_option_kind::eol) {
      break;  // the rest is padding
    }
    if (kind == tcp_option_kind::nop) {
      ++i;
      continue;
    }
    if (i + 1 >= n) {
      return wire_error::tcp_bad_option;  // kind without a length byte
    }
    const std::uint8_t len = load8(p + i + 1);
    if (len < 2 || len > n - i) {
      return wire_error::tcp_bad_option;  // the AMNESIA:33 / Ripple20 family
    }
    const std::byte* v = p + i + 2;
    switch (kind) {
      case tcp_option_kind::mss:
        if (len != 4) {
          return wire_error::tcp_bad_option;
        }
        out.mss = load16(v);
        break;
      case tcp_option_kind::window_scale:
        if (len != 3) {
          return wire_error::tcp_bad_option;
        }
        out.window_scale = load8(v);
        break;
      case tcp_option_kind::sack_permitted:
        if (len != 2) {
          return wire_error::tcp_bad_option;
        }
        out.sack_permitted = true;
        break;
      case tcp_option_kind::timestamps:
        if (len != 10) {
          return wire_error::tcp_bad_option;
        }
        out.timestamps = tcp_timestamps{load32(v), load32(v + 4)};
        break;
      case tcp_option_kind::sack: {
        const std::size_t blocks = (len - 2U) / 8U;
        if ((len - 2U) % 8U != 0 || blocks == 0 || blocks > out.sack.size()) {
          return wire_error::tcp_bad_option;
        }
        out.sack_count = static_cast<std::uint8_t>(blocks);
        for (std::size_t b = 0; b < blocks; ++b) {
          out.sack[b] = sack_block{load32(v + b * 8), load32(v + b * 8 + 4)};
        }
        break;
      }
      default:
        if (out.unknown < UINT8_MAX) {
          ++out.unknown;
        }
        break;
    }
    i += len;
  }
  return wire_error::ok;
}

parse_result<tcp_header> parse_tcp(std::span<const std::byte> segment,
                                   const pseudo_header* ph) noexcept {
  parse_result<tcp_header> r;
  if (segment.size() < tcp_min_header_length) {
    r.error = wire_error::truncated;
    return r;
  }
  const std::byte* p = segment.data();
  tcp_header& h = r.header;
  h.src_port = load16(p);
  h.dst_port = load16(p + 2);
  h.seq = load32(p + 4);
  h.ack = load32(p + 8);
  const std::uint8_t offset_byte = load8(p + 12);
  h.header_length = static_cast<std::uint8_t>((offset_byte >> 4U) * 4U);
  h.reserved = offset_byte & 0x0fU;
  h.flags = load8(p + 13);
  h.window = load16(p + 14);
  h.checksum = load16(p + 16);
  h.urgent_pointer = load16(p + 18);
  if (h.header_length < tcp_min_header_length) {
    r.error = wire_error::tcp_bad_data_offset;
    return r;
  }
  if (h.header_length > segment.size()) {
    r.error = wire_error::tcp_data_offset_exceeds_segment;
    return r;
  }
  if (ph != nullptr) {
    if (segment.size() > 65535U) {
      r.error = wire_error::truncated;
      return r;
    }
    checksum_accumulator acc;
    add_pseudo_header(acc, ph->src, ph->dst, ip_protocol::tcp,
                      static_cast<std::uint16_t>(segment.size()));
    acc.add(segment);
    if (acc.finish() != 0) {
      r.error = wire_error::tcp_bad_checksum;
      return r;
    }
  }
  const wire_error e = parse_tcp_options(
      segment.subspan(tcp_min_header_length, h.header_length - tcp_min_header_length), h.options);
  if (e != wire_error::ok) {
    r.error = e;
    return r;
  }
  r.payload = segment.subspan(h.header_length);
  return r;
}

std::size_t tcp_options_length(const tcp_options& o) noexcept {
  std::size_t n = 0;
  if (o.mss) {
    n += 4;
  }
  if (o.timestamps || o.sack_permitted) {
    // SACK-permitted rides in the two NOPs before the timestamps (the Linux SYN layout), or
    // takes NOP NOP SACKOK alone.
    n += o.timestamps ? 12 : 4;
  }
  if (o.window_scale) {
    n += 4;  // NOP + WS
  }
  if (o.sack_count > 0) {
    if (o.sack_count > o.sack.size()) {
      return SIZE_MAX;
    }
    n += 2 + 2 + 8U * o.sack_count;  // NOP NOP + kind, len + blocks
  }
  return n > tcp_max_options_length ? SIZE_MAX : n;
}

std::size_t write_tcp(std::span<std::byte> out, const tcp_header& h) noexcept {
  const std::size_t opt_len = tcp_options_length(h.options);
  if (opt_len == SIZE_MAX) {
    return 0;
  }
  const std::size_t len = tcp_min_header_length + opt_len;
  if (out.size() < len) {
    return 0;
  }
  std::byte* p = out.data();
  store16(p, h.src_port);
  store16(p + 2, h.dst_port);
  store32(p + 4, h.seq);
  store32(p + 8, h.ack);
  store8(p + 12, static_cast<std::uint8_t>(((len / 4U) << 4U) | (h.reserved & 0x0fU)));
  store8(p + 13, h.flags);
  store16(p + 14, h.window);
  store16(p + 16, 0);
  store16(p + 18, h.urgent_pointer);
  std::byte* o = p + tcp_min_header_length;
  const tcp_options& opt = h.options;
  if (opt.mss) {
    store8(o, tcp_option_kind::mss);
    store8(o + 1, 4);
    store16(o + 2, *opt.mss);
    o += 4;
  }
  if (opt.timestamps) {
    if (opt.sack_permitted) {
      store8(o, tcp_option_kind::sack_permitted);
      store8(o + 1, 2);
    } else {
      store8(o, tcp_option_kind::nop);
      store8(o + 1, tcp_option_kind::nop);
    }
    store8(o + 2, tcp_option_kind::timestamps);
    store8(o + 3, 10);
    store32(o + 4, opt.timestamps->value);
    store32(o + 8, opt.timestamps->echo_reply);
    o += 12;
  } else if (opt.sack_permitted) {
    store8(o, tcp_option_kind::nop);
    store8(o + 1, tcp_option_kind::nop);
    store8(o + 2, tcp_option_kind::sack_permitted);
    store8(o + 3, 2);
    o += 4;
  }
  if (opt.window_scale) {
    store8(o, tcp_option_kind::nop);
    store8(o + 1, tcp_option_kind::window_scale);
    store8(o + 2, 3);
    store8(o + 3, *opt.window_scale);
    o += 4;
  }
  if (opt.sack_count > 0) {
    store8(o, tcp_option_kind::nop);
    store8(o + 1, tcp_option_kind::nop);
    store8(o + 2, tcp_option_kind::sack);
    store8(o + 3, static_cast<std::uint8_t>(2 + 8 * opt.sack_count));
    o += 4;
    for (std::size_t b = 0; b < opt.sack_count; ++b) {
      store32(o, opt.sack[b].left);
      store32(o + 4, opt.sack[b].right);
      o += 8;
    }
  }
  return len;
}

void set_tcp_checksum(std::span<std::byte> segment, const pseudo_header& ph) noexcept {
  if (segment.size() < tcp_min_header_length || segment.size() > 65535U) {
    return;
  }
  store16(segment.data() + 16, 0);
  checksum_accumulator acc;
  add_pseudo_header(acc, ph.src, ph.dst, ip_protocol::tcp,
                    static_cast<std::uint16_t>(segment.size()));
  acc.add(segment);
  store16(segment.data() + 16, acc.finish());
}

}  // namespace dpdk_net::wire
