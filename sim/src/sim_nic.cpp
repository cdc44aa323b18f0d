// sim_nic: rx rings with RSS, optional copy into the NIC's own pool, a tx ring at line rate.
#include <algorithm>
#include <bit>

#include "dpdk_net/rss.hpp"
#include "dpdk_net/sim/network.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::sim {

namespace {

constexpr std::size_t max_l2_overhead = 18;  // Ethernet + one VLAN tag on top of the MTU

/// The RSS hash of an IPv4 frame (4-tuple for unfragmented TCP/UDP), if it is one.
std::optional<std::uint32_t> frame_rss_hash(const packet& p, std::span<const std::uint8_t> key) {
  const auto eth = wire::parse_ethernet(p.front());
  if (!eth || eth.header.ethertype != wire::ethertype::ipv4) {
    return std::nullopt;
  }
  const auto ip = wire::parse_ipv4(eth.payload, wire::ipv4_parse_options{.verify_checksum = false});
  if (!ip) {
    return std::nullopt;
  }
  const auto& h = ip.header;
  if (!h.is_fragment() &&
      (h.protocol == wire::ip_protocol::tcp || h.protocol == wire::ip_protocol::udp) &&
      ip.payload.size() >= 4) {
    const std::uint16_t sport = wire::load16(ip.payload.data());
    const std::uint16_t dport = wire::load16(ip.payload.data() + 2);
    return rss_hash_ipv4_l4(key, h.src, h.dst, sport, dport);
  }
  return rss_hash_ipv4(key, h.src, h.dst);
}

}  // namespace

sim_nic::sim_nic(network& net, host& owner, std::uint32_t index, const nic_config& config,
                 std::string name, mac_address mac)
    : net_(&net),
      host_(&owner),
      index_(index),
      ring_limit_(config.rx_ring),
      rx_copy_(config.rx_copy),
      line_rate_bps_(config.line_rate_bps),
      tx_ring_limit_(config.tx_ring) {
  info_.name = std::move(name);
  info_.mac = mac;
  info_.mtu = config.mtu;
  info_.rx_queues = config.queues;
  info_.tx_queues = config.queues;
  info_.rss = rss_capabilities{rss_hash::ipv4 | rss_hash::tcp_ipv4 | rss_hash::udp_ipv4, 40, 128};
  packet_pool_config pc;
  pc.name = info_.name;
  pc.count = config.pool_size;
  pool_ = std::make_unique<packet_pool>(pc);
  rings_.resize(config.queues);
  for (ring& r : rings_) {
    r.slots.resize(std::bit_ceil(std::max<std::size_t>(config.rx_ring, 1)));
  }
  rss_.hash_types = info_.rss.hash_types;
  rss_.key.assign(default_rss_key.begin(), default_rss_key.end());
  rss_.reta.resize(128);
  for (std::size_t i = 0; i < rss_.reta.size(); ++i) {
    rss_.reta[i] = static_cast<std::uint16_t>(i % config.queues);
  }
}

sim_nic::~sim_nic() {
  flush_rx();
}

void sim_nic::flush_rx() noexcept {
  for (ring& r : rings_) {
    for (; r.head != r.tail; ++r.head) {
      packet::free_chain(r.slots[r.head & (r.slots.size() - 1)]);
    }
  }
}

std::error_code sim_nic::configure_rss(const rss_config& config) {
  if (config.key.size() != info_.rss.key_size || config.reta.empty() ||
      (config.hash_types & ~info_.rss.hash_types) != 0) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  for (std::uint16_t q : config.reta) {
    if (q >= info_.rx_queues) {
      return std::make_error_code(std::errc::invalid_argument);
    }
  }
  rss_ = config;
  return {};
}

std::size_t sim_nic::rx_pending(std::uint16_t queue) const noexcept {
  return queue < rings_.size() ? rings_[queue].size() : 0;
}

std::size_t sim_nic::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  if (queue >= rings_.size()) {
    ++stats_.bad_queue;
    return 0;
  }
  ring& r = rings_[queue];
  const std::size_t n = std::min(out.size(), r.size());
  const std::size_t mask = r.slots.size() - 1;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = packet::adopt(r.slots[(r.head + i) & mask]);
  }
  r.head += n;
  return n;
}

std::size_t sim_nic::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (queue >= info_.tx_queues) {
    ++stats_.bad_queue;
    return 0;
  }
  const std::size_t max_frame = std::size_t{info_.mtu} + max_l2_overhead;
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    packet& p = pkts[i];
    if (!p) {
      continue;
    }
    if (tx_ring_limit_ != 0 && tx_in_ring_ >= tx_ring_limit_) {
      stats_.tx_busy += pkts.size() - i;  // the ring is full: the rest stays with the caller
      return i;
    }
    if (host_->status() == host::state::crashed || port_.attached == nullptr ||
        p.length() > max_frame) {
      ++stats_.tx_dropped;
      net_->log(p.length() > max_frame ? fault::oversize : fault::host_down, UINT32_MAX, 0, index_);
      p.reset();
      continue;
    }
    ++stats_.tx_packets;
    stats_.tx_bytes += p.length();
    p.meta().queue = queue;  // a capture records the queue it was sent on
    if (line_rate_bps_ == 0) {
      put_on_link(std::move(p));
      continue;
    }
    // The frame holds a ring slot until the NIC has serialized it at line rate.
    const time_ns bits = p.length() * 8ULL * second;
    tx_busy_until_ =
        std::max(net_->now(), tx_busy_until_) + (bits + line_rate_bps_ - 1) / line_rate_bps_;
    ++tx_in_ring_;
    net_->events().at(tx_busy_until_, [this, epoch = host_->epoch_, p = std::move(p)]() mutable {
      --tx_in_ring_;
      if (epoch != host_->epoch_ || host_->status() == host::state::crashed ||
          port_.attached == nullptr) {
        ++stats_.tx_dropped;  // the host crashed while the frame waited in its ring
        net_->log(fault::host_down, UINT32_MAX, 0, index_);
        return;
      }
      put_on_link(std::move(p));
    });
  }
  return pkts.size();
}

void sim_nic::put_on_link(packet p) {
  net_->record_frame(*this, true, p);
  net_->transmit(port_.attached, port_.side, std::move(p), host_->index());
}

buffer_pool& sim_nic::tx_pool(std::uint16_t queue) noexcept {
  (void)queue;  // one pool per NIC: the simulation is single-threaded
  return *pool_;
}

link_status sim_nic::link() const noexcept {
  return link_status{port_.attached != nullptr && host_->status() != host::state::crashed, 0};
}

void sim_nic::receive(packet p) {
  // Receive metadata is this NIC's to set: nothing of the sender's travels with the frame.
  p.meta() = packet_meta{};
  std::uint16_t queue = 0;
  if (rings_.size() > 1 && rss_.hash_types != 0) {
    if (const auto hash = frame_rss_hash(p, rss_.key)) {
      p.meta().rss_hash = *hash;
      p.meta().rss_hash_valid = true;
      queue = rss_.reta[*hash % rss_.reta.size()];
    }
  }
  ring& r = rings_[queue];
  if (r.size() >= ring_limit_) {
    ++stats_.rx_dropped;
    net_->log(fault::rx_full, UINT32_MAX, 0, index_);
    return;  // p is freed here
  }
  if (rx_copy_) {
    packet own = net_->copy(p, *pool_);
    if (!own) {
      ++stats_.rx_dropped;
      net_->log(fault::rx_no_buffer, UINT32_MAX, 0, index_);
      return;
    }
    own.meta() = p.meta();
    p = std::move(own);  // the sender's buffer goes back to its pool here
  }
  p.meta().queue = queue;
  p.meta().rx_timestamp_ns = net_->now();
  ++stats_.rx_packets;
  stats_.rx_bytes += p.length();
  net_->record_frame(*this, false, p);
  r.slots[r.tail++ & (r.slots.size() - 1)] = p.release();
  host_->wake();
}

}  // namespace dpdk_net::sim
