// libFuzzer targets, one per parser entry point, selected at compile time by DPDK_NET_FUZZ_TARGET.
// Besides "no crash, no out-of-bounds read" (ASan/UBSan), each checks properties of what it
// accepted and aborts when one fails: payloads lie inside the input, and re-building an accepted
// header reproduces the input bytes or parses back to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/pcap_file.hpp"
#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace {

using namespace dpdk_net;
using namespace dpdk_net::wire;

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

/// a and b are equal, except that the 16-bit checksum at `field` may be 0x0000 in one and 0xffff
/// in the other: both encode zero in one's-complement arithmetic (RFC 1624 section 3), so a header
/// whose field holds 0xffff verifies, while a writer computes 0x0000.
bool same_but_checksum_zero(const std::byte* a, const std::byte* b, std::size_t n,
                            std::size_t field) {
  if (std::memcmp(a, b, n) == 0) {
    return true;
  }
  auto word = [field](const std::byte* p) {
    return static_cast<unsigned>((std::to_integer<unsigned>(p[field]) << 8U) |
                                 std::to_integer<unsigned>(p[field + 1]));
  };
  const bool zero_pair = (word(a) == 0 && word(b) == 0xffff) || (word(a) == 0xffff && word(b) == 0);
  return zero_pair && std::memcmp(a, b, field) == 0 &&
         std::memcmp(a + field + 2, b + field + 2, n - field - 2) == 0;
}

bool inside(std::span<const std::byte> part, std::span<const std::byte> whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

[[maybe_unused]] void fuzz_ethernet(std::span<const std::byte> in) {
  const auto r = parse_ethernet(in);
  if (!r) {
    return;
  }
  FUZZ_CHECK(inside(r.payload, in));
  std::byte out[18];
  const std::size_t n = write_ethernet(out, r.header);
  FUZZ_CHECK(n == r.header.length());
  FUZZ_CHECK(std::memcmp(out, in.data(), n) == 0 || r.header.has_vlan);  // 0x88a8 is written 0x8100
  const auto back = parse_ethernet(std::span<const std::byte>(out, n));
  FUZZ_CHECK(back && back.header.ethertype == r.header.ethertype &&
             back.header.vlan_tci == r.header.vlan_tci && back.header.dst == r.header.dst);
}

[[maybe_unused]] void fuzz_arp(std::span<const std::byte> in) {
  const auto r = parse_arp(in);
  if (!r) {
    return;
  }
  std::byte out[arp_length];
  FUZZ_CHECK(write_arp(out, r.header) == arp_length);
  FUZZ_CHECK(std::memcmp(out, in.data(), arp_length) == 0);
}

[[maybe_unused]] void fuzz_ipv4(std::span<const std::byte> in) {
  for (bool quoted : {false, true}) {
    const auto r = parse_ipv4(in, ipv4_parse_options{.verify_checksum = true, .quoted = quoted});
    if (!r) {
      continue;
    }
    FUZZ_CHECK(r.header.header_length >= 20 && r.header.header_length <= 60);
    FUZZ_CHECK(inside(r.payload, in));
    FUZZ_CHECK(quoted || r.payload.size() == r.header.payload_length());
    if (!quoted && r.header.header_length == 20) {
      std::byte out[20];
      FUZZ_CHECK(write_ipv4(out, r.header) == 20);
      FUZZ_CHECK(same_but_checksum_zero(out, in.data(), 20, 10));  // verified: same bytes
    }
  }
}

[[maybe_unused]] void fuzz_icmp(std::span<const std::byte> in) {
  const auto r = parse_icmp(in);
  if (!r) {
    return;
  }
  FUZZ_CHECK(inside(r.payload, in));
  std::vector<std::byte> out(in.size());
  FUZZ_CHECK(write_icmp(out, r.header, r.payload) == in.size());
  FUZZ_CHECK(same_but_checksum_zero(out.data(), in.data(), in.size(), 2));
}

/// The first 8 bytes are the pseudo-header addresses, the rest the L4 bytes.
bool split_pseudo(std::span<const std::byte> in, pseudo_header& ph,
                  std::span<const std::byte>& l4) {
  if (in.size() < 8) {
    return false;
  }
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  for (int i = 0; i < 4; ++i) {
    a = (a << 8U) | std::to_integer<std::uint32_t>(in[static_cast<std::size_t>(i)]);
    b = (b << 8U) | std::to_integer<std::uint32_t>(in[static_cast<std::size_t>(i) + 4]);
  }
  ph = pseudo_header{ipv4_address{a}, ipv4_address{b}};
  l4 = in.subspan(8);
  return true;
}

[[maybe_unused]] void fuzz_udp(std::span<const std::byte> in) {
  pseudo_header ph;
  std::span<const std::byte> d;
  if (!split_pseudo(in, ph, d)) {
    return;
  }
  const auto r = parse_udp(d, &ph);
  if (!r) {
    return;
  }
  FUZZ_CHECK(inside(r.payload, d) && r.payload.size() + 8 == r.header.length);
  if (r.header.checksum != 0) {
    std::byte out[8];
    FUZZ_CHECK(write_udp(out, r.header, r.payload, ph) == 8);
    FUZZ_CHECK(same_but_checksum_zero(out, d.data(), 8, 6));
  }
}

[[maybe_unused]] void fuzz_tcp(std::span<const std::byte> in) {
  pseudo_header ph;
  std::span<const std::byte> d;
  if (!split_pseudo(in, ph, d)) {
    return;
  }
  const pseudo_header* const modes[] = {&ph, nullptr};  // checksum verified, then not
  for (const pseudo_header* verify : modes) {
    const auto r = parse_tcp(d, verify);
    if (!r) {
      continue;
    }
    FUZZ_CHECK(inside(r.payload, d));
    FUZZ_CHECK(r.payload.size() + r.header.header_length == d.size());
    const tcp_options& o = r.header.options;
    FUZZ_CHECK(o.sack_count <= 4);
    FUZZ_CHECK(o.effective_window_scale() <= tcp_max_window_scale);
    // Re-write what the writer supports and parse it back: the same option values.
    std::byte out[60];
    const std::size_t n = write_tcp(out, r.header);
    if (n != 0) {
      const auto back = parse_tcp(std::span<const std::byte>(out, n));
      FUZZ_CHECK(back);
      FUZZ_CHECK(back.header.options.mss == o.mss);
      FUZZ_CHECK(back.header.options.window_scale == o.window_scale);
      FUZZ_CHECK(back.header.options.timestamps == o.timestamps);
      FUZZ_CHECK(back.header.options.sack_permitted == o.sack_permitted);
      FUZZ_CHECK(back.header.options.sack_count == o.sack_count);
      FUZZ_CHECK(back.header.seq == r.header.seq && back.header.flags == r.header.flags);
    }
  }
}

[[maybe_unused]] void fuzz_tcp_options(std::span<const std::byte> in) {
  tcp_options o;
  const wire_error e = parse_tcp_options(in.first(std::min<std::size_t>(in.size(), 40)), o);
  FUZZ_CHECK(e == wire_error::ok || e == wire_error::tcp_bad_option);
  FUZZ_CHECK(o.sack_count <= 4);
}

[[maybe_unused]] void fuzz_frame(std::span<const std::byte> in) {
  for (bool verify : {true, false}) {
    const decoded_frame d = decode_frame(in, decode_options{verify});
    FUZZ_CHECK(d.accepted() || !d.payload.data() || inside(d.payload, in));
    if (d.accepted()) {
      FUZZ_CHECK(inside(d.payload, in));
    }
  }
}

[[maybe_unused]] void fuzz_pcap(std::span<const std::byte> in) {
  pcap_reader r(in);
  pcap_record rec;
  std::size_t n = 0;
  while (r.next(rec)) {
    FUZZ_CHECK(inside(rec.data, in));
    (void)decode_frame(rec.data);
    ++n;
  }
  FUZZ_CHECK(n <= in.size() / 16);

  // The same bytes through the pcap + pcapng reader (what the replay tool and dpdk-net-decode
  // read). Properties: every frame lies inside the input and belongs to a described interface;
  // a stop is either the clean end of the file or an error message; no block is counted twice.
  capture_reader c(in);
  capture_record cr;
  std::size_t frames = 0;
  while (c.next(cr)) {
    FUZZ_CHECK(inside(cr.data, in));
    FUZZ_CHECK(cr.data.size() <= in.size());
    FUZZ_CHECK(cr.interface < c.interfaces().size());
    FUZZ_CHECK(cr.linktype == c.interfaces()[cr.interface].linktype);
    (void)decode_frame(cr.data);
    ++frames;
  }
  // The smallest frame record is a 16-byte classic record or a 16-byte simple packet block.
  FUZZ_CHECK(frames <= in.size() / 16);
  FUZZ_CHECK(c.interfaces().size() <= in.size() / 20 + 1);
  FUZZ_CHECK(!c.next(cr));  // stays stopped
}

/// Arbitrary bytes as a sequence of frames into a live stack (with a UDP socket bound and an
/// ARP entry for the peer), at advancing times. Properties: no crash, and every buffer comes back
/// to the pool once the output is drained and the stack is gone (no leak, no double free).
[[maybe_unused]] void fuzz_stack(std::span<const std::byte> in) {
  packet_pool_config pc;
  pc.count = 256;
  packet_pool pool(pc);
  {
    stack::stack_config c;
    c.mac = mac_address{{0x02, 0, 0, 0, 0, 1}};
    c.address = wire::ipv4_address::from_octets(198, 18, 0, 1);
    c.udp_queue = 8;
    c.tcp.sockets = 16;  // small tables: construction per input stays cheap
    c.tcp.time_wait_records = 16;
    c.tcp.send_buffer = c.tcp.receive_buffer = 16 * 1024;
    stack::stack st(c, pool, stack::stack_secret{42, 1});
    stack::stack::socket_id sock = 0;
    FUZZ_CHECK(!st.udp_bind(7, sock));
    // TCP: a listener on 80 whose connections echo, and one connect towards the peer (its SYN
    // and the ARP it waits for go out; a SYN-ACK the fuzzer forges meets SYN-SENT).
    stack::tcp_layer& tcp = st.tcp();
    stack::tcp_layer::socket_id listener = 0, client = 0;
    FUZZ_CHECK(!tcp.open(listener) && !tcp.bind(listener, 80) && !tcp.listen(listener, 8));
    FUZZ_CHECK(!tcp.open(client));
    FUZZ_CHECK(!tcp.connect(
        client, stack::tcp_endpoint{wire::ipv4_address::from_octets(198, 18, 0, 2), 80}, 0));
    std::vector<stack::tcp_layer::socket_id> accepted;
    time_ns now = 0;
    std::array<packet, 16> out;
    // Input: [len_hi len_lo frame...]*, each frame's destination MAC forced to ours half the time.
    std::size_t at = 0;
    while (at + 2 <= in.size()) {
      const std::size_t len =
          (std::to_integer<std::size_t>(in[at]) << 8U | std::to_integer<std::size_t>(in[at + 1])) %
          1600;
      at += 2;
      const std::size_t n = std::min(len, in.size() - at);
      packet p = pool.alloc();
      if (!p || n > p.tailroom()) {
        break;
      }
      std::byte* d = p.append(n);
      std::memcpy(d, in.data() + at, n);
      if (n >= 6 && (std::to_integer<unsigned>(in[at]) & 1U) == 0) {
        std::memcpy(d, c.mac.bytes.data(), 6);
      }
      // Half the IPv4 frames get a right header checksum, so the fuzzer reaches what lies
      // behind it (reassembly, ICMP, UDP) instead of stopping at the checksum.
      if (n >= 34 && (std::to_integer<unsigned>(in[at]) & 2U) == 0 && d[12] == std::byte{0x08} &&
          d[13] == std::byte{0x00}) {
        const std::size_t ihl = (std::to_integer<std::size_t>(d[14]) & 0x0fU) * 4U;
        if (ihl >= 20 && 14 + ihl <= n) {
          d[24] = d[25] = std::byte{0};
          const std::uint16_t sum =
              wire::internet_checksum(std::span<const std::byte>(d + 14, ihl));
          d[24] = static_cast<std::byte>(sum >> 8U);
          d[25] = static_cast<std::byte>(sum & 0xffU);
          // TCP too (the same half), so segments reach the state machine.
          const std::size_t total =
              std::to_integer<std::size_t>(d[16]) << 8U | std::to_integer<std::size_t>(d[17]);
          if (d[23] == std::byte{6} && total >= ihl + 20 && 14 + total <= n) {
            const wire::pseudo_header ph{wire::ipv4_address{wire::load32(d + 26)},
                                         wire::ipv4_address{wire::load32(d + 30)}};
            wire::set_tcp_checksum(std::span(d + 14 + ihl, total - ihl), ph);
          }
        }
      }
      at += n;
      st.receive(std::move(p), now);
      now += 10 * millisecond;
      st.advance(now);
      while (auto dgram = st.udp_receive(sock)) {
        FUZZ_CHECK(dgram->offset + dgram->length <= dgram->frame.length());
        std::array<std::byte, 2048> copy{};
        const std::size_t got = dgram->copy_payload(copy);
        (void)st.udp_send_to(sock, dgram->source, dgram->source_port, std::span(copy.data(), got),
                             now);
      }
      std::array<stack::socket_event, 16> events{};
      const std::size_t ne = st.poll_events(events);
      for (std::size_t e = 0; e < ne; ++e) {
        FUZZ_CHECK(events[e].events != 0);
      }
      stack::tcp_layer::socket_id child = 0;
      while (accepted.size() < 8 && !tcp.accept(listener, child)) {
        accepted.push_back(child);
      }
      for (const auto id : accepted) {
        std::array<std::byte, 4096> buf{};
        const stack::io_result r = tcp.receive(id, buf);
        FUZZ_CHECK(r.bytes <= buf.size());
        if (r.bytes != 0) {
          (void)tcp.send(id, std::span(buf.data(), r.bytes));
        } else if (r.error == stack::make_error_code(stack::tcp_errc::end_of_stream)) {
          (void)tcp.shutdown(id, stack::shutdown_type::send, now);
        }
      }
      std::size_t k = 0;
      while ((k = st.drain_tx(out, now)) != 0) {
        for (std::size_t i = 0; i < k; ++i) {
          FUZZ_CHECK(decode_frame(out[i].front(), decode_options{true}).accepted());
        }
        free_burst(std::span(out.data(), k));
      }
    }
  }
  FUZZ_CHECK(pool.available() == pool.capacity());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A private copy of exactly `size` bytes, so ASan catches a read one past the end.
  std::vector<std::byte> copy(size);
  if (size != 0) {
    std::memcpy(copy.data(), data, size);
  }
  DPDK_NET_FUZZ_TARGET(std::span<const std::byte>(copy.data(), copy.size()));
  return 0;
}
