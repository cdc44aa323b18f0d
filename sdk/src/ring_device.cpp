#include "dpdk_net/ring_device.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <stdexcept>

#include "dpdk_net/rss.hpp"
#include "dpdk_net/wire/bytes.hpp"

namespace dpdk_net {

namespace {
constexpr std::size_t cache_line = 64;
constexpr std::uint16_t max_queues = 64;
constexpr std::size_t max_ring_size = std::size_t{1} << 20U;
constexpr std::uint64_t max_slot_bytes = std::uint64_t{4} << 30U;  // over both ends
constexpr std::uint16_t min_mtu = 68;
constexpr std::uint16_t reta_size = 128;
constexpr std::uint32_t supported_hash_types =
    rss_hash::ipv4 | rss_hash::tcp_ipv4 | rss_hash::udp_ipv4;

constexpr std::uint16_t ethertype_ipv4 = 0x0800;
constexpr std::uint16_t ethertype_vlan = 0x8100;
constexpr std::uint16_t ethertype_qinq = 0x88a8;
constexpr std::uint8_t proto_tcp = 6;
constexpr std::uint8_t proto_udp = 17;
constexpr std::size_t eth_len = 14;
constexpr std::size_t ipv4_min_len = 20;
/// Enough of a frame to steer it: Ethernet, two VLAN tags, the largest IPv4 header, two ports.
constexpr std::size_t steer_bytes = eth_len + 8 + 60 + 4;

constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) / to * to;
}

static_assert(std::atomic<std::size_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

/// Adds n to a counter only this thread writes: a relaxed load and store, no locked instruction.
void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  if (n != 0) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
}

std::uint64_t read(const std::atomic<std::uint64_t>& counter) noexcept {
  return counter.load(std::memory_order_relaxed);
}

/// Slots a ring of one end needs memory for: the (rx, tx) pairs the steering can use.
bool reachable(ring_steering steering, std::uint16_t rx, std::uint16_t tx) noexcept {
  switch (steering) {
    case ring_steering::rss:
      return true;
    case ring_steering::same_queue:
      return rx == tx;
    case ring_steering::queue0:
      return rx == 0;
  }
  return false;
}
}  // namespace

/// What a slot carries besides the frame bytes.
struct slot_meta {
  std::uint32_t length = 0;
  std::uint32_t hash = 0;
  bool hash_valid = false;
};

/// One SPSC ring (see "Rings" at the top of the header). Indices run freely; slot = index & mask.
struct ring_device::ring {
  // The producer's line: tail is written only by the sender's tx thread; head_seen is its cache of
  // head, reloaded (acquire) only when the ring looks full.
  alignas(cache_line) std::atomic<std::size_t> tail{0};
  std::size_t head_seen = 0;
  // The consumer's line: head is written only by the receiver's rx thread; tail_seen is its cache
  // of tail, reloaded (acquire) only when the ring looks empty.
  alignas(cache_line) std::atomic<std::size_t> head{0};
  std::size_t tail_seen = 0;
  // Fixed after construction.
  alignas(cache_line) std::size_t mask = 0;  // capacity - 1; capacity 0: never used
  std::size_t stride = 0;                    // bytes per slot
  std::unique_ptr<slot_meta[]> meta;
  std::unique_ptr<std::byte[]> data;

  [[nodiscard]] std::byte* slot(std::size_t index) const noexcept {
    return data.get() + (index & mask) * stride;
  }
};

/// Per-queue state of one end, a cache line (or more) of its own: the queue's pool and counters,
/// all touched only by the queue's thread (the counters read from anywhere).
struct alignas(cache_line) ring_device::queue_state {
  std::unique_ptr<packet_pool> pool;
  std::size_t next_source = 0;  // rx_burst's round-robin start
  std::atomic<std::uint64_t> rx_packets{0};
  std::atomic<std::uint64_t> rx_bytes{0};
  std::atomic<std::uint64_t> tx_packets{0};
  std::atomic<std::uint64_t> tx_bytes{0};
  std::atomic<std::uint64_t> tx_dropped{0};
  std::atomic<std::uint64_t> tx_busy{0};
};

ring_device::ring_device(const ring_link_config& config, mac_address mac, const char* name)
    : steering_(config.steering),
      queues_(config.queues),
      max_frame_(std::size_t{config.mtu} + max_l2_overhead) {
  info_.name = name;
  info_.mac = mac;
  info_.mtu = config.mtu;
  info_.rx_queues = config.queues;
  info_.tx_queues = config.queues;
  info_.tx_multi_segment = false;
  info_.thread_safe_queues = true;
  if (steering_ == ring_steering::rss) {
    info_.rss = rss_capabilities{supported_hash_types,
                                 static_cast<std::uint16_t>(default_rss_key.size()), reta_size};
    rss_.hash_types = supported_hash_types;
    rss_.key.assign(default_rss_key.begin(), default_rss_key.end());
    rss_.reta.resize(reta_size);
    for (std::size_t i = 0; i < rss_.reta.size(); ++i) {
      rss_.reta[i] = static_cast<std::uint16_t>(i % queues_);
    }
  }

  const std::size_t capacity = std::bit_ceil(config.ring_size);
  const std::size_t stride = round_up(max_frame_, cache_line);
  rings_ = std::make_unique<ring[]>(std::size_t{queues_} * queues_);
  sources_.resize(queues_);
  for (std::uint16_t rx = 0; rx < queues_; ++rx) {
    for (std::uint16_t tx = 0; tx < queues_; ++tx) {
      if (!reachable(steering_, rx, tx)) {
        continue;
      }
      ring& r = ring_for(rx, tx);
      r.mask = capacity - 1;
      r.stride = stride;
      r.meta = std::make_unique<slot_meta[]>(capacity);
      r.data = std::make_unique_for_overwrite<std::byte[]>(capacity * stride);
      sources_[rx].push_back(&r);
    }
  }

  state_ = std::make_unique<queue_state[]>(queues_);
  for (std::uint16_t q = 0; q < queues_; ++q) {
    packet_pool_config pc;
    pc.name = info_.name + ".q" + std::to_string(q);
    pc.count = config.pool_size;
    pc.headroom = headroom;
    pc.buffer_size = static_cast<std::uint32_t>(round_up(headroom + max_frame_, cache_line));
    state_[q].pool = std::make_unique<packet_pool>(pc);
  }
}

// Rings hold copies, not packets: nothing in flight belongs to a pool, so the order in which the
// two ends and their pools go does not matter.
ring_device::~ring_device() = default;

ring_device::ring& ring_device::ring_for(std::uint16_t rx_queue, std::uint16_t tx_queue) noexcept {
  return rings_[std::size_t{rx_queue} * queues_ + tx_queue];
}

ring_device::route ring_device::steer(const packet& p, std::uint16_t tx_queue) const noexcept {
  switch (steering_) {
    case ring_steering::rss:
      return rss_route(p);
    case ring_steering::same_queue:
      return route{tx_queue, 0, false};
    case ring_steering::queue0:
      break;
  }
  return route{};
}

ring_device::route ring_device::rss_route(const packet& p) const noexcept {
  if (rss_.hash_types == 0) {
    return route{};
  }
  // The headers from the first segment, or gathered from a chain whose first segment is short.
  std::span<const std::byte> h = p.front();
  std::array<std::byte, steer_bytes> gathered;
  if (h.size() < steer_bytes && p.segment_count() > 1) {
    h = std::span<const std::byte>(gathered.data(), p.copy_out(0, gathered));
  }
  if (h.size() < eth_len) {
    return route{};
  }
  std::size_t l2 = eth_len;
  std::uint16_t type = wire::load16(h.data() + 12);
  for (int tags = 0; tags < 2 && (type == ethertype_vlan || type == ethertype_qinq); ++tags) {
    if (h.size() < l2 + 4) {
      return route{};
    }
    type = wire::load16(h.data() + l2 + 2);
    l2 += 4;
  }
  if (type != ethertype_ipv4 || h.size() < l2 + ipv4_min_len) {
    return route{};
  }
  const std::byte* ip = h.data() + l2;
  const std::size_t l3 = (wire::load8(ip) & 0x0fU) * 4U;
  if ((wire::load8(ip) >> 4U) != 4 || l3 < ipv4_min_len || h.size() < l2 + l3) {
    return route{};
  }
  const wire::ipv4_address src{wire::load32(ip + 12)};
  const wire::ipv4_address dst{wire::load32(ip + 16)};
  const std::uint8_t protocol = wire::load8(ip + 9);
  const bool fragment = (wire::load16(ip + 6) & 0x3fffU) != 0;  // MF or an offset
  const bool l4 = !fragment && h.size() >= l2 + l3 + 4 &&
                  ((protocol == proto_tcp && (rss_.hash_types & rss_hash::tcp_ipv4) != 0) ||
                   (protocol == proto_udp && (rss_.hash_types & rss_hash::udp_ipv4) != 0));
  std::uint32_t hash = 0;
  if (l4) {
    hash = rss_hash_ipv4_l4(rss_.key, src, dst, wire::load16(ip + l3), wire::load16(ip + l3 + 2));
  } else if ((rss_.hash_types & rss_hash::ipv4) != 0) {
    hash = rss_hash_ipv4(rss_.key, src, dst);
  } else {
    return route{};
  }
  return route{rss_.reta[hash % rss_.reta.size()], hash, true};
}

std::size_t ring_device::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (queue >= queues_) {
    bad_queue_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  queue_state& qs = state_[queue];
  std::uint64_t sent = 0;
  std::uint64_t bytes = 0;
  std::uint64_t dropped = 0;
  std::size_t taken = 0;
  for (; taken < pkts.size(); ++taken) {
    packet& p = pkts[taken];
    if (!p) {
      continue;  // nothing to send; counts as taken
    }
    const std::size_t length = p.length();
    if (length > max_frame_) {
      ++dropped;
      p.reset();
      continue;
    }
    const route to = peer_->steer(p, queue);
    ring& r = peer_->ring_for(to.queue, queue);
    const std::size_t tail = r.tail.load(std::memory_order_relaxed);  // ours
    if (tail - r.head_seen > r.mask) {
      // Looks full: see how far the consumer got (acquire: it is done reading those slots).
      r.head_seen = r.head.load(std::memory_order_acquire);
      if (tail - r.head_seen > r.mask) {
        bump(qs.tx_busy, pkts.size() - taken);
        break;
      }
    }
    (void)p.copy_out(0, std::span<std::byte>(r.slot(tail), length));
    r.meta[tail & r.mask] = slot_meta{static_cast<std::uint32_t>(length), to.hash, to.hash_valid};
    r.tail.store(tail + 1, std::memory_order_release);  // publishes the slot
    ++sent;
    bytes += length;
    p.reset();  // on this thread, into the pool it came from
  }
  bump(qs.tx_packets, sent);
  bump(qs.tx_bytes, bytes);
  bump(qs.tx_dropped, dropped);
  return taken;
}

std::size_t ring_device::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  if (queue >= queues_) {
    bad_queue_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  queue_state& qs = state_[queue];
  const std::vector<ring*>& sources = sources_[queue];
  const std::size_t k = sources.size();
  if (k == 0 || out.empty()) {
    return 0;
  }
  packet_pool& pool = *qs.pool;
  std::size_t n = 0;
  std::uint64_t bytes = 0;
  bool dry = false;
  const std::size_t start = qs.next_source;
  std::size_t next = start;
  for (std::size_t i = 0; i < k && n < out.size() && !dry; ++i) {
    const std::size_t at = start + i < k ? start + i : start + i - k;
    ring& r = *sources[at];
    const std::size_t head = r.head.load(std::memory_order_relaxed);  // ours
    if (r.tail_seen == head) {
      // Looks empty: see what the producer published (acquire: the slot bytes come with it).
      r.tail_seen = r.tail.load(std::memory_order_acquire);
    }
    std::size_t got = 0;
    for (; head + got != r.tail_seen && n < out.size(); ++got) {
      packet p = pool.alloc();
      if (!p) {
        dry = true;  // the frame waits in the ring for a buffer
        break;
      }
      const slot_meta& m = r.meta[(head + got) & r.mask];
      if (m.length != 0) {
        std::memcpy(p.append(m.length), r.slot(head + got), m.length);
      }
      packet_meta& meta = p.meta();
      meta.queue = queue;
      meta.rss_hash = m.hash;
      meta.rss_hash_valid = m.hash_valid;
      bytes += m.length;
      out[n++] = std::move(p);
    }
    if (got != 0) {
      r.head.store(head + got, std::memory_order_release);  // hands the slots back
      next = at;
    }
  }
  // The next call starts after the last ring served: every ring with frames is served within
  // sources.size() calls, however full the others are.
  qs.next_source = next + 1 < k ? next + 1 : 0;
  bump(qs.rx_packets, n);
  bump(qs.rx_bytes, bytes);
  return n;
}

buffer_pool& ring_device::tx_pool(std::uint16_t queue) noexcept {
  if (queue >= queues_) {
    bad_queue_.fetch_add(1, std::memory_order_relaxed);
    return *state_[0].pool;
  }
  return *state_[queue].pool;
}

packet_pool& ring_device::pool(std::uint16_t queue) noexcept {
  return *state_[queue < queues_ ? queue : 0].pool;
}

device_stats ring_device::queue_stats(std::uint16_t queue) const noexcept {
  device_stats s;
  if (queue >= queues_) {
    return s;
  }
  const queue_state& qs = state_[queue];
  s.rx_packets = read(qs.rx_packets);
  s.rx_bytes = read(qs.rx_bytes);
  s.tx_packets = read(qs.tx_packets);
  s.tx_bytes = read(qs.tx_bytes);
  s.tx_dropped = read(qs.tx_dropped);
  s.tx_busy = read(qs.tx_busy);
  return s;
}

device_stats ring_device::stats() const noexcept {
  device_stats total;
  for (std::uint16_t q = 0; q < queues_; ++q) {
    const device_stats s = queue_stats(q);
    total.rx_packets += s.rx_packets;
    total.rx_bytes += s.rx_bytes;
    total.tx_packets += s.tx_packets;
    total.tx_bytes += s.tx_bytes;
    total.tx_dropped += s.tx_dropped;
    total.tx_busy += s.tx_busy;
  }
  total.bad_queue = bad_queue_.load(std::memory_order_relaxed);
  return total;
}

std::size_t ring_device::rx_pending(std::uint16_t queue) const noexcept {
  if (queue >= queues_) {
    return 0;
  }
  std::size_t pending = 0;
  for (const ring* r : sources_[queue]) {
    // head first: a tail loaded after it is never behind it.
    const std::size_t head = r->head.load(std::memory_order_acquire);
    pending += r->tail.load(std::memory_order_acquire) - head;
  }
  return pending;
}

rss_config ring_device::rss() const {
  return rss_;  // empty unless steering is rss
}

std::error_code ring_device::configure_rss(const rss_config& config) {
  if (steering_ != ring_steering::rss) {
    return std::make_error_code(std::errc::not_supported);
  }
  const bool bad_entry = std::any_of(config.reta.begin(), config.reta.end(),
                                     [this](std::uint16_t q) { return q >= queues_; });
  if (config.key.size() != info_.rss.key_size || config.reta.size() != info_.rss.reta_size ||
      (config.hash_types & ~info_.rss.hash_types) != 0 || bad_entry) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  rss_ = config;
  return {};
}

ring_link::ring_link(const ring_link_config& config) : config_(config) {
  if (config.queues == 0 || config.queues > max_queues) {
    throw std::invalid_argument("ring_link: queues must be between 1 and 64");
  }
  if (config.ring_size == 0 || config.ring_size > max_ring_size) {
    throw std::invalid_argument("ring_link: ring_size must be between 1 and 2^20");
  }
  if (config.pool_size == 0) {
    throw std::invalid_argument("ring_link: pool_size must be at least 1");
  }
  if (config.mtu < min_mtu) {
    throw std::invalid_argument("ring_link: mtu must be at least 68");
  }
  const std::uint64_t q = config.queues;
  const std::uint64_t rings = config.steering == ring_steering::rss ? q * q : q;
  const std::uint64_t slot =
      round_up(std::size_t{config.mtu} + ring_device::max_l2_overhead, cache_line) +
      sizeof(slot_meta);
  if (2 * rings * std::bit_ceil(config.ring_size) * slot > max_slot_bytes) {
    throw std::invalid_argument(
        "ring_link: the rings would take more than 4 GiB (queues^2 x ring_size x mtu with rss "
        "steering): lower ring_size, queues or mtu");
  }
  a_.reset(new ring_device(config, config.mac_a, "ring.a"));
  b_.reset(new ring_device(config, config.mac_b, "ring.b"));
  a_->peer_ = b_.get();
  b_->peer_ = a_.get();
}

ring_link::~ring_link() = default;

}  // namespace dpdk_net
