#include "dpdk_net/memory_device.hpp"

#include <bit>
#include <stdexcept>

namespace dpdk_net {

namespace {
/// Ethernet header + one VLAN tag on top of the MTU.
constexpr std::size_t max_l2_overhead = 18;
}  // namespace

memory_device::memory_device(memory_link& link, const memory_link_config& config, mac_address mac,
                             const char* name)
    : link_(&link) {
  info_.name = name;
  info_.mac = mac;
  info_.mtu = config.mtu;
  info_.rx_queues = config.queues;
  info_.tx_queues = config.queues;
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
  const std::size_t mask = r.slots.size() - 1;
  const std::size_t max_frame = std::size_t{info_.mtu} + max_l2_overhead;
  std::size_t taken = 0;
  for (; taken < pkts.size(); ++taken) {
    packet& p = pkts[taken];
    if (!p) {
      continue;  // nothing to send; counts as taken
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
    stats_.tx_bytes += p.length();
    ++stats_.tx_packets;
    r.slots[r.tail & mask] = p.release();
    ++r.tail;
  }
  return taken;
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
