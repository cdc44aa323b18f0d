#include "dpdk_net/memory_device.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <stdexcept>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"

namespace dpdk_net {

namespace {
/// Ethernet header + one VLAN tag on top of the MTU.
constexpr std::size_t max_l2_overhead = 18;

constexpr std::uint16_t ethertype_ipv4 = 0x0800;
constexpr std::uint16_t ethertype_vlan = 0x8100;
constexpr std::uint8_t proto_tcp = 6;
constexpr std::uint8_t proto_udp = 17;
constexpr std::size_t eth_len = 14;
constexpr std::size_t ipv4_min_len = 20;
constexpr std::size_t tcp_min_len = 20;
constexpr std::size_t udp_len = 8;
// TCP flags a segmenting NIC spreads over the pieces.
constexpr std::uint8_t tcp_fin = 0x01;
constexpr std::uint8_t tcp_psh = 0x08;
constexpr std::uint8_t tcp_cwr = 0x80;

/// rte_ipv4_phdr_cksum: the pseudo-header sum (folded, not inverted) of the IPv4 header at ip, for
/// protocol and L4 length (0 under TSO: the NIC adds each piece's).
std::uint16_t pseudo_sum(const std::byte* ip, std::uint8_t protocol, std::size_t l4_length) {
  wire::checksum_accumulator acc;
  acc.add32(wire::load32(ip + 12));
  acc.add32(wire::load32(ip + 16));
  acc.add16(protocol);
  acc.add16(static_cast<std::uint16_t>(l4_length));
  return acc.sum();
}

/// Writes the IPv4 header checksum of the l3-byte header at ip (the field's old value ignored).
void set_ipv4_checksum(std::byte* ip, std::size_t l3) {
  wire::store16(ip + 10, 0);
  wire::store16(ip + 10, wire::internet_checksum(std::span<const std::byte>(ip, l3)));
}

std::uint8_t tx_bits(offload_set o) {
  std::uint8_t bits = 0;
  bits |= o.has(offload::ipv4_checksum) ? tx_offload_request::ipv4_checksum : 0;
  bits |= o.has(offload::tcp_checksum) ? tx_offload_request::tcp_checksum : 0;
  bits |= o.has(offload::udp_checksum) ? tx_offload_request::udp_checksum : 0;
  bits |= o.has(offload::tcp_segmentation) ? tx_offload_request::tcp_segmentation : 0;
  return bits;
}
}  // namespace

/// Where the headers of a frame asking for offloads are, once checked against the frame.
struct memory_device::tx_layout {
  std::size_t l2 = 0;        // Ethernet (+VLAN) header bytes
  std::size_t l3 = 0;        // IPv4 header bytes
  std::size_t l4 = 0;        // TCP header (or UDP header) bytes; 0 without an L4 offload
  std::size_t l4_total = 0;  // L4 bytes per the IPv4 total length (not used under TSO)
  std::uint8_t protocol = 0;
  std::uint8_t flags = 0;  // tx_offload_request bits
};

memory_device::memory_device(memory_link& link, const memory_link_config& config, mac_address mac,
                             const char* name)
    : link_(&link) {
  info_.name = name;
  info_.mac = mac;
  info_.mtu = config.mtu;
  info_.rx_queues = config.queues;
  info_.tx_queues = config.queues;
  info_.tx_multi_segment = true;  // the packet handle travels as it is: any chain goes
  info_.tx_offloads = config.offloads;
  for (offload o : {offload::ipv4_checksum, offload::tcp_checksum, offload::udp_checksum}) {
    if (config.offloads.has(o)) {
      info_.rx_offloads.add(o);  // segmentation is transmit only
    }
  }
  tx_offload_bits_ = tx_bits(config.offloads);
  packet_pool_config pool_config;
  pool_config.name = std::string(name) + ".tx";
  pool_config.count = config.pool_size;
  pool_config.buffer_size = config.buffer_size;
  pool_ = std::make_unique<packet_pool>(pool_config);
  rx_rings_.resize(config.queues);
  for (ring& r : rx_rings_) {
    r.slots.resize(std::bit_ceil(config.ring_size));
  }
}

memory_device::~memory_device() = default;

std::size_t memory_device::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  if (queue >= rx_rings_.size()) {
    ++stats_.bad_queue;
    return 0;
  }
  ring& r = rx_rings_[queue];
  const std::size_t n = std::min(out.size(), r.size());
  const std::size_t mask = r.slots.size() - 1;
  for (std::size_t i = 0; i < n; ++i) {
    segment* s = r.slots[(r.head + i) & mask];
    // Receive metadata is the receiving device's to set; the sender's tx requests do not travel.
    s->meta = packet_meta{};
    s->meta.queue = queue;
    stats_.rx_bytes += s->pkt_len;
    out[i] = packet::adopt(s);
    if (info_.rx_offloads.bits() != 0) {
      check_received(out[i]);
    }
  }
  r.head += n;
  stats_.rx_packets += n;
  return n;
}

std::size_t memory_device::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (queue >= info_.tx_queues) {
    ++stats_.bad_queue;
    return 0;
  }
  ring& r = peer_->rx_rings_[queue % peer_->rx_rings_.size()];
  const std::size_t max_frame = std::size_t{info_.mtu} + max_l2_overhead;
  std::size_t taken = 0;
  for (; taken < pkts.size(); ++taken) {
    packet& p = pkts[taken];
    if (!p) {
      continue;  // nothing to send; counts as taken
    }
    if (link_->up() && p.meta().tx.flags != 0) {
      if (offload_and_queue(p, r) == verdict::busy) {
        stats_.tx_busy += pkts.size() - taken;
        break;
      }
      continue;
    }
    if (!link_->up() || p.length() > max_frame) {
      ++stats_.tx_dropped;
      p.reset();
      continue;
    }
    if (r.free() == 0) {
      stats_.tx_busy += pkts.size() - taken;
      break;
    }
    enqueue(r, p);
  }
  return taken;
}

void memory_device::enqueue(ring& r, packet& p) noexcept {
  stats_.tx_bytes += p.length();
  ++stats_.tx_packets;
  r.slots[r.tail & (r.slots.size() - 1)] = p.release();
  ++r.tail;
}

memory_device::verdict memory_device::offload_and_queue(packet& p, ring& r) noexcept {
  tx_layout l;
  if (!check_request(p, l)) {
    ++stats_.tx_dropped;
    p.reset();
    return verdict::drop;
  }
  if ((l.flags & tx_offload_request::tcp_segmentation) != 0) {
    return segment_and_queue(p, l, r);
  }
  if (p.length() > std::size_t{info_.mtu} + max_l2_overhead) {
    ++stats_.tx_dropped;
    p.reset();
    return verdict::drop;
  }
  // Room is checked before the frame is touched: a declined frame goes back as the caller made it.
  if (r.free() == 0) {
    return verdict::busy;
  }
  fill_checksums(p, l);
  ++offload_.tx_checksummed;
  enqueue(r, p);
  return verdict::send;
}

bool memory_device::check_request(const packet& p, tx_layout& out) noexcept {
  const tx_offload_request& tx = p.meta().tx;
  if ((tx.flags & ~tx_offload_bits_) != 0) {
    ++offload_.tx_unadvertised;
    return false;
  }
  const bool tso = (tx.flags & tx_offload_request::tcp_segmentation) != 0;
  const bool tcp = tso || (tx.flags & tx_offload_request::tcp_checksum) != 0;
  const bool udp = (tx.flags & tx_offload_request::udp_checksum) != 0;
  const segment* h = p.head();
  const std::size_t l2 = tx.l2_len;
  const std::size_t l3 = tx.l3_len;
  // The device writes the headers: they must be in a first segment of our memory (external data
  // is the application's and read-only), and be what l2_len/l3_len say.
  const auto malformed = [this] {
    ++offload_.tx_malformed;
    return false;
  };
  if ((tcp && udp) || h->ext != nullptr || l2 < eth_len || l3 < ipv4_min_len ||
      l2 + l3 > h->data_len) {
    return malformed();
  }
  const std::byte* d = h->data();
  const std::byte* ip = d + l2;
  if (wire::load16(d + l2 - 2) != ethertype_ipv4 || (wire::load8(ip) >> 4U) != 4 ||
      (wire::load8(ip) & 0x0fU) * 4U != l3) {
    return malformed();
  }
  const std::size_t total = wire::load16(ip + 2);
  // Under TSO the packet length rules (as on a NIC); otherwise the IPv4 length says what L4 is.
  if (!tso && (total < l3 || l2 + total > p.length())) {
    return malformed();
  }
  out = tx_layout{l2, l3, 0, tso ? std::size_t{0} : total - l3, 0, tx.flags};
  if (!tcp && !udp) {
    return true;
  }
  out.protocol = wire::load8(ip + 9);
  const bool fragment = (wire::load16(ip + 6) & 0x3fffU) != 0;  // MF or an offset
  if (fragment || out.protocol != (tcp ? proto_tcp : proto_udp)) {
    return malformed();
  }
  if (udp) {
    out.l4 = udp_len;
  } else if (l2 + l3 + tcp_min_len <= h->data_len) {
    out.l4 = (wire::load8(ip + l3 + 12) >> 4U) * 4U;
  }
  if (out.l4 < (tcp ? tcp_min_len : udp_len) || l2 + l3 + out.l4 > h->data_len ||
      (!tso && out.l4_total < out.l4) || (tso && (tx.l4_len != out.l4 || tx.tso_mss == 0))) {
    return malformed();
  }
  return true;
}

void memory_device::fill_checksums(packet& p, const tx_layout& l) noexcept {
  std::byte* ip = p.head()->data() + l.l2;
  bool mismatch = false;
  if ((l.flags & tx_offload_request::ipv4_checksum) != 0) {
    mismatch = wire::load16(ip + 10) != 0;
    set_ipv4_checksum(ip, l.l3);
  }
  if (l.l4 != 0) {
    std::byte* field = ip + l.l3 + (l.protocol == proto_tcp ? 16 : 6);
    mismatch = mismatch || wire::load16(field) != pseudo_sum(ip, l.protocol, l.l4_total);
    // The NIC's sum: the L4 bytes with the seed in the field (no pseudo-header of its own).
    wire::checksum_accumulator acc;
    wire::add_packet(acc, p, l.l2 + l.l3, l.l4_total);
    std::uint16_t c = acc.finish();
    if (c == 0 && l.protocol == proto_udp) {
      c = 0xffff;  // RFC 768: 0 means "no checksum"
    }
    wire::store16(field, c);
  }
  offload_.tx_seed_mismatch += mismatch ? 1 : 0;
}

memory_device::verdict memory_device::segment_and_queue(packet& p, const tx_layout& l,
                                                        ring& r) noexcept {
  const std::size_t headers = l.l2 + l.l3 + l.l4;
  const std::size_t payload = p.length() - headers;
  const std::size_t mss = p.meta().tx.tso_mss;
  const std::size_t pieces = payload == 0 ? 1 : (payload + mss - 1) / mss;
  const std::size_t room = pool_->config().buffer_size - pool_->config().headroom;
  const bool too_big = headers + std::min(mss, payload) > std::size_t{info_.mtu} + max_l2_overhead;
  // Pieces that could never be sent (over the MTU, more than the ring holds, headers larger than
  // a buffer) are dropped rather than declined: a retry would be declined for ever.
  if (too_big || pieces > r.slots.size() || headers > room) {
    offload_.tx_no_buffer += headers > room ? 1 : 0;
    ++stats_.tx_dropped;
    p.reset();
    return verdict::drop;
  }
  if (r.free() < pieces) {
    return verdict::busy;
  }
  const std::byte* ip = p.head()->data() + l.l2;
  if (wire::load16(ip + 10) != 0 || wire::load16(ip + l.l3 + 16) != pseudo_sum(ip, proto_tcp, 0)) {
    ++offload_.tx_seed_mismatch;
  }
  // Pieces go straight into ring slots past the tail, published only once all are built.
  const std::size_t mask = r.slots.size() - 1;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < pieces; ++i) {
    const std::size_t offset = i * mss;
    packet piece;
    if (!build_piece(p, l, i, offset, std::min(mss, payload - offset), piece)) {
      for (std::size_t j = 0; j < i; ++j) {
        packet::free_chain(r.slots[(r.tail + j) & mask]);
      }
      ++offload_.tx_no_buffer;
      ++stats_.tx_dropped;
      p.reset();
      return verdict::drop;
    }
    bytes += piece.length();
    r.slots[(r.tail + i) & mask] = piece.release();
  }
  r.tail += pieces;
  stats_.tx_packets += pieces;
  stats_.tx_bytes += bytes;
  ++offload_.tx_segmented;
  offload_.tx_segments += pieces;
  p.reset();  // the super-frame, and with it any external references
  return verdict::send;
}

bool memory_device::build_piece(const packet& super, const tx_layout& l, std::size_t index,
                                std::size_t offset, std::size_t length, packet& piece) noexcept {
  const std::size_t headers = l.l2 + l.l3 + l.l4;
  piece = pool_->alloc();
  std::byte* h = piece ? piece.append(headers) : nullptr;
  if (h == nullptr) {
    return false;
  }
  std::memcpy(h, super.head()->data(), headers);
  // Payload from wherever it lies in the super-frame's chain; a piece larger than one buffer
  // (jumbo MTU) becomes a chain itself.
  std::size_t from = headers + offset;
  for (std::size_t left = length; left != 0;) {
    if (piece.tailroom() == 0) {
      packet more = pool_->alloc();
      if (!more || !piece.chain(std::move(more))) {
        return false;
      }
    }
    const std::size_t k = std::min(piece.tailroom(), left);
    std::byte* at = piece.append(k);
    (void)super.copy_out(from, std::span<std::byte>(at, k));
    from += k;
    left -= k;
  }
  std::byte* ip = h + l.l2;
  std::byte* tcp = ip + l.l3;
  wire::store16(ip + 2, static_cast<std::uint16_t>(l.l3 + l.l4 + length));
  wire::store16(ip + 4, static_cast<std::uint16_t>(wire::load16(ip + 4) + index));
  set_ipv4_checksum(ip, l.l3);
  wire::store32(tcp + 4, wire::load32(tcp + 4) + static_cast<std::uint32_t>(offset));
  std::uint8_t flags = wire::load8(tcp + 13);
  if (offset + length != super.length() - headers) {
    flags &= static_cast<std::uint8_t>(~(tcp_fin | tcp_psh));  // only the last piece ends
  }
  if (index != 0) {
    flags &= static_cast<std::uint8_t>(~tcp_cwr);  // the window was reduced once
  }
  wire::store8(tcp + 13, flags);
  // The seed (pseudo-header without length) is in the field: add this piece's L4 length and sum.
  wire::checksum_accumulator acc;
  acc.add(std::span<const std::byte>(tcp, l.l4));
  acc.add16(static_cast<std::uint16_t>(l.l4 + length));
  wire::add_packet(acc, piece, headers, length);
  wire::store16(tcp + 16, acc.finish());
  return true;
}

void memory_device::check_received(packet& p) noexcept {
  packet_meta& meta = p.meta();
  // The headers, wherever the chain puts them: Ethernet + VLAN, the largest IPv4 header, UDP.
  std::array<std::byte, max_l2_overhead + 60 + udp_len> hb;
  const std::size_t got = p.copy_out(0, hb);
  if (got < eth_len + ipv4_min_len) {
    return;
  }
  std::size_t l2 = eth_len;
  std::uint16_t type = wire::load16(hb.data() + 12);
  if (type == ethertype_vlan) {
    l2 += 4;
    type = wire::load16(hb.data() + 16);
  }
  const std::byte* ip = hb.data() + l2;
  const std::size_t l3 = (wire::load8(ip) & 0x0fU) * 4U;
  if (type != ethertype_ipv4 || (wire::load8(ip) >> 4U) != 4 || l3 < ipv4_min_len ||
      got < l2 + l3) {
    return;  // not IPv4, or not enough of it to check
  }
  if (info_.rx_offloads.has(offload::ipv4_checksum)) {
    const bool ok = wire::internet_checksum(std::span<const std::byte>(ip, l3)) == 0;
    meta.ip_checksum = ok ? checksum_status::good : checksum_status::bad;
    offload_.rx_ip_bad += ok ? 0 : 1;
  }
  const std::uint8_t protocol = wire::load8(ip + 9);
  const std::size_t total = wire::load16(ip + 2);
  const bool fragment = (wire::load16(ip + 6) & 0x3fffU) != 0;
  const bool tcp = protocol == proto_tcp && info_.rx_offloads.has(offload::tcp_checksum);
  const bool udp = protocol == proto_udp && info_.rx_offloads.has(offload::udp_checksum);
  if ((!tcp && !udp) || fragment || total < l3 || l2 + total > p.length()) {
    return;
  }
  std::size_t l4_total = total - l3;
  if (tcp && l4_total < tcp_min_len) {
    return;
  }
  if (udp) {
    if (got < l2 + l3 + udp_len) {
      return;
    }
    const std::size_t ulen = wire::load16(ip + l3 + 4);
    if (ulen < udp_len || ulen > l4_total) {
      return;  // the software parser refuses it
    }
    if (wire::load16(ip + l3 + 6) == 0) {
      meta.l4_checksum = checksum_status::good;  // none sent (RFC 768): nothing is wrong
      return;
    }
    l4_total = ulen;
  }
  wire::checksum_accumulator acc;
  acc.add32(wire::load32(ip + 12));
  acc.add32(wire::load32(ip + 16));
  acc.add16(protocol);
  acc.add16(static_cast<std::uint16_t>(l4_total));
  wire::add_packet(acc, p, l2 + l3, l4_total);
  const bool ok = acc.finish() == 0;
  meta.l4_checksum = ok ? checksum_status::good : checksum_status::bad;
  offload_.rx_l4_bad += ok ? 0 : 1;
}

buffer_pool& memory_device::tx_pool(std::uint16_t queue) noexcept {
  (void)queue;  // one pool serves every queue: the pair is single-threaded
  return *pool_;
}

link_status memory_device::link() const noexcept {
  return link_status{link_->up(), 0};
}

std::size_t memory_device::rx_pending(std::uint16_t queue) const noexcept {
  return queue < rx_rings_.size() ? rx_rings_[queue].size() : 0;
}

void memory_link::deleter::operator()(memory_device* d) const noexcept {
  delete d;
}

memory_link::memory_link(const memory_link_config& config) {
  if (config.queues == 0) {
    throw std::invalid_argument("memory_link: queues must be at least 1");
  }
  if (config.ring_size == 0 || config.ring_size > (std::size_t{1} << 20U)) {
    throw std::invalid_argument("memory_link: ring_size must be between 1 and 2^20");
  }
  a_.reset(new memory_device(*this, config, config.mac_a, "mem0.a"));
  b_.reset(new memory_device(*this, config, config.mac_b, "mem0.b"));
  a_->peer_ = b_.get();
  b_->peer_ = a_.get();
}

memory_link::~memory_link() {
  // Frames in flight may belong to either end's pool: free them all before either pool goes.
  for (memory_device* d : {a_.get(), b_.get()}) {
    for (memory_device::ring& r : d->rx_rings_) {
      const std::size_t mask = r.slots.size() - 1;
      for (; r.head != r.tail; ++r.head) {
        packet::free_chain(r.slots[r.head & mask]);
      }
    }
  }
}

}  // namespace dpdk_net
