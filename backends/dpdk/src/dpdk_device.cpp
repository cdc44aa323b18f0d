// The port: open (mempools per queue, offloads, RSS), close, and the control-path queries
// (link, stats, xstats, RSS). The bursts are in dpdk_io.cpp.
#include "dpdk_net/dpdk/dpdk_device.hpp"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <mutex>

#include "dpdk_net/rss.hpp"
#include "mbuf_pool.hpp"

namespace dpdk_net::dpdk {

namespace {

using detail::mbuf_pool;

std::uint32_t hash_types_of(std::uint64_t rss_hf) noexcept {
  std::uint32_t t = 0;
  if ((rss_hf & (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER)) != 0) {
    t |= rss_hash::ipv4;
  }
  if ((rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP) != 0) {
    t |= rss_hash::tcp_ipv4;
  }
  if ((rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_UDP) != 0) {
    t |= rss_hash::udp_ipv4;
  }
  if ((rss_hf & (RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER)) != 0) {
    t |= rss_hash::ipv6;
  }
  if ((rss_hf & RTE_ETH_RSS_NONFRAG_IPV6_TCP) != 0) {
    t |= rss_hash::tcp_ipv6;
  }
  if ((rss_hf & RTE_ETH_RSS_NONFRAG_IPV6_UDP) != 0) {
    t |= rss_hash::udp_ipv6;
  }
  return t;
}

std::uint64_t rss_hf_of(std::uint32_t types) noexcept {
  std::uint64_t hf = 0;
  if ((types & rss_hash::ipv4) != 0) {
    hf |= RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER;
  }
  if ((types & rss_hash::tcp_ipv4) != 0) {
    hf |= RTE_ETH_RSS_NONFRAG_IPV4_TCP;
  }
  if ((types & rss_hash::udp_ipv4) != 0) {
    hf |= RTE_ETH_RSS_NONFRAG_IPV4_UDP;
  }
  if ((types & rss_hash::ipv6) != 0) {
    hf |= RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_OTHER;
  }
  if ((types & rss_hash::tcp_ipv6) != 0) {
    hf |= RTE_ETH_RSS_NONFRAG_IPV6_TCP;
  }
  if ((types & rss_hash::udp_ipv6) != 0) {
    hf |= RTE_ETH_RSS_NONFRAG_IPV6_UDP;
  }
  return hf;
}

std::error_code errc_of(int rc) noexcept {
  if (rc == -ENOTSUP || rc == -EOPNOTSUPP) {
    return std::make_error_code(std::errc::not_supported);
  }
  if (rc == -EINVAL) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  return std::make_error_code(std::errc::io_error);
}

/// Which offloads the port was configured with, as our offload_set.
offload_set offloads_of(std::uint64_t flags, bool rx) noexcept {
  offload_set s;
  if ((flags & (rx ? RTE_ETH_RX_OFFLOAD_IPV4_CKSUM : RTE_ETH_TX_OFFLOAD_IPV4_CKSUM)) != 0) {
    s.add(offload::ipv4_checksum);
  }
  if ((flags & (rx ? RTE_ETH_RX_OFFLOAD_TCP_CKSUM : RTE_ETH_TX_OFFLOAD_TCP_CKSUM)) != 0) {
    s.add(offload::tcp_checksum);
  }
  if ((flags & (rx ? RTE_ETH_RX_OFFLOAD_UDP_CKSUM : RTE_ETH_TX_OFFLOAD_UDP_CKSUM)) != 0) {
    s.add(offload::udp_checksum);
  }
  if (!rx && (flags & RTE_ETH_TX_OFFLOAD_TCP_TSO) != 0) {
    s.add(offload::tcp_segmentation);
  }
  return s;
}

/// Memory registered by register_external_memory, with how many open ports registered it: one
/// buffer sent through two ports stays registered until the last of them closes.
struct extmem_registry {
  std::mutex lock;
  std::map<std::pair<void*, std::size_t>, unsigned> users;
};
extmem_registry& extmem() {
  static extmem_registry registry;
  return registry;
}

}  // namespace

std::uint32_t mbufs_needed(const mbuf_budget& b) noexcept {
  const std::uint64_t sum = std::uint64_t{b.rx_descriptors} + b.tx_descriptors + b.held_by_stack +
                            b.handover + std::uint64_t{b.cache} * b.lcores + 2 * max_burst;
  const std::uint64_t pow2 = std::bit_ceil(sum + 1);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(pow2 - 1, UINT32_MAX));
}

std::unique_ptr<dpdk_device> dpdk_device::open(const port_config& config, std::string& error) {
  if (!eal::initialized()) {
    error = "DPDK EAL is not initialised: call dpdk_net::dpdk::eal::init first";
    return nullptr;
  }
  if (config.rx_queues == 0 || config.tx_queues == 0) {
    error = "port '" + config.name + "': rx_queues and tx_queues must be at least 1";
    return nullptr;
  }
  const std::uint32_t frame = std::uint32_t{config.mtu} + 18U + RTE_PKTMBUF_HEADROOM;
  if (config.data_room < frame) {
    error = "port '" + config.name + "': an mbuf's data room of " +
            std::to_string(config.data_room) + " bytes cannot hold an MTU " +
            std::to_string(config.mtu) + " frame with its headers and headroom (" +
            std::to_string(frame) + "): raise port_config::data_room or lower the MTU";
    return nullptr;
  }
  std::uint16_t port = 0;
  if (rte_eth_dev_get_port_by_name(config.name.c_str(), &port) != 0) {
    error = "no DPDK port named '" + config.name + "' (" +
            std::to_string(rte_eth_dev_count_avail()) +
            " available): pass --vdev=<name>,... or bind the NIC to vfio-pci";
    return nullptr;
  }
  rte_eth_dev_info dev_info{};
  if (const int rc = rte_eth_dev_info_get(port, &dev_info); rc != 0) {
    error = "rte_eth_dev_info_get(" + config.name + "): " + rte_strerror(-rc);
    return nullptr;
  }
  if (config.rx_queues > dev_info.max_rx_queues || config.tx_queues > dev_info.max_tx_queues) {
    error = "port '" + config.name + "' supports at most " +
            std::to_string(dev_info.max_rx_queues) + " rx and " +
            std::to_string(dev_info.max_tx_queues) + " tx queues";
    return nullptr;
  }
  if (config.mtu > dev_info.max_mtu || config.mtu < dev_info.min_mtu) {
    error = "port '" + config.name + "': MTU " + std::to_string(config.mtu) +
            " is outside the device's range " + std::to_string(dev_info.min_mtu) + ".." +
            std::to_string(dev_info.max_mtu);
    return nullptr;
  }

  std::unique_ptr<dpdk_device> dev(new dpdk_device());
  dev->port_id_ = port;
  dev->driver_ = dev_info.driver_name != nullptr ? dev_info.driver_name : "";
  const int numa = rte_eth_dev_socket_id(port);  // SOCKET_ID_ANY (-1) when unknown
  const std::uint16_t queues = std::max(config.rx_queues, config.tx_queues);
  for (std::uint16_t q = 0; q < queues; ++q) {
    const std::string pool_name = "dn_" + std::to_string(port) + "_" + std::to_string(q);
    rte_mempool* mp = rte_pktmbuf_pool_create(pool_name.c_str(), config.mbufs, config.mbuf_cache,
                                              detail::private_size(), config.data_room, numa);
    if (mp == nullptr) {
      const int err = rte_errno;
      const char* fix =
          err == EINVAL
              ? " (the per-lcore cache must be at most 512 and at most 2/3 of the pool: lower "
                "port_config::mbuf_cache or raise port_config::mbufs)"
          : err == EEXIST
              ? " (the port is already open in this process: open it once)"
              : " (reserve more hugepages, pass a larger -m, or lower port_config::mbufs)";
      error = "rte_pktmbuf_pool_create(" + std::to_string(config.mbufs) + " mbufs for queue " +
              std::to_string(q) + " of " + config.name + "): " + rte_strerror(err) + fix;
      return nullptr;
    }
    dev->mempools_.push_back(mp);
    dev->pools_.push_back(std::make_unique<mbuf_pool>(mp));
  }

  rte_eth_conf conf{};
  conf.rxmode.mtu = config.mtu;
  // Offloads: the checksum offloads the device has, TSO and multi-segment transmit; RSS when
  // there are several rx queues.
  std::uint64_t rx_want =
      RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
  if (config.rx_timestamps) {
    rx_want |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
  }
  const std::uint64_t tx_want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
                                RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_TSO |
                                RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  conf.rxmode.offloads = dev_info.rx_offload_capa & rx_want;
  conf.txmode.offloads = dev_info.tx_offload_capa & tx_want;
  const std::uint64_t rss_types =
      dev_info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
  // Our key from the start (repeated to the device's key size), so the first flows already hash
  // the way the runtime computes.
  std::vector<std::uint8_t> key(dev_info.hash_key_size);
  for (std::size_t i = 0; i < key.size(); ++i) {
    key[i] = default_rss_key[i % default_rss_key.size()];
  }
  if (config.rx_queues > 1 && rss_types != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss_types;
    if (config.program_rss && !key.empty()) {
      conf.rx_adv_conf.rss_conf.rss_key = key.data();
      conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<std::uint8_t>(key.size());
    }
  }
  if (const int rc = rte_eth_dev_configure(port, config.rx_queues, config.tx_queues, &conf);
      rc != 0) {
    error = "rte_eth_dev_configure(" + config.name + "): " + rte_strerror(-rc);
    return nullptr;
  }
  // From here a failure closes the port (in the destructor) before the mempools are freed: queues
  // set up so far reference them.
  dev->configured_ = true;
  const offload_set tx_set = offloads_of(conf.txmode.offloads, false);
  if (tx_set.has(offload::ipv4_checksum)) {
    dev->tx_offloads_ |= tx_offload_request::ipv4_checksum;
  }
  if (tx_set.has(offload::tcp_checksum)) {
    dev->tx_offloads_ |= tx_offload_request::tcp_checksum;
  }
  if (tx_set.has(offload::udp_checksum)) {
    dev->tx_offloads_ |= tx_offload_request::udp_checksum;
  }
  if (tx_set.has(offload::tcp_segmentation)) {
    dev->tx_offloads_ |= tx_offload_request::tcp_segmentation;
  }
  if ((conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_TIMESTAMP) != 0) {
    if (rte_mbuf_dyn_rx_timestamp_register(&dev->timestamp_offset_, &dev->timestamp_flag_) != 0) {
      dev->timestamp_offset_ = -1;
    }
  }
  const auto socket = static_cast<unsigned>(numa);
  for (std::uint16_t q = 0; q < config.rx_queues; ++q) {
    if (const int rc = rte_eth_rx_queue_setup(port, q, config.rx_descriptors, socket, nullptr,
                                              dev->mempools_[q]);
        rc != 0) {
      error = "rte_eth_rx_queue_setup(" + config.name + ", " + std::to_string(q) +
              "): " + rte_strerror(-rc);
      return nullptr;
    }
  }
  for (std::uint16_t q = 0; q < config.tx_queues; ++q) {
    if (const int rc = rte_eth_tx_queue_setup(port, q, config.tx_descriptors, socket, nullptr);
        rc != 0) {
      error = "rte_eth_tx_queue_setup(" + config.name + ", " + std::to_string(q) +
              "): " + rte_strerror(-rc);
      return nullptr;
    }
  }
  if (const int rc = rte_eth_dev_start(port); rc != 0) {
    error = "rte_eth_dev_start(" + config.name + "): " + rte_strerror(-rc) +
            (rc == -EBUSY ? " (the port is in use by another process)" : "");
    return nullptr;
  }
  dev->started_ = true;
  if (config.promiscuous) {
    rte_eth_promiscuous_enable(port);
  }

  device_info& info = dev->info_;
  info.name = config.name;
  rte_ether_addr mac{};
  rte_eth_macaddr_get(port, &mac);
  if (config.mac || rte_is_zero_ether_addr(&mac)) {
    if (config.mac) {
      std::memcpy(mac.addr_bytes, config.mac->bytes.data(), 6);
    } else {
      mac = rte_ether_addr{{0x02, 0x64, 0x6e, 0, static_cast<std::uint8_t>(port >> 8U),
                            static_cast<std::uint8_t>(port & 0xffU)}};
    }
    if (const int rc = rte_eth_dev_default_mac_addr_set(port, &mac); rc != 0 && config.mac) {
      error = "rte_eth_dev_default_mac_addr_set(" + config.name + "): " + rte_strerror(-rc);
      return nullptr;
    }
  }
  std::memcpy(info.mac.bytes.data(), mac.addr_bytes, 6);
  info.mtu = config.mtu;
  info.rx_queues = config.rx_queues;
  info.tx_queues = config.tx_queues;
  info.thread_safe_queues = true;  // ethdev queues are independent (one lcore per queue)
  info.rx_offloads = offloads_of(conf.rxmode.offloads, true);
  info.tx_offloads = tx_set;
  // Chains (external segments attached as mbufs, TSO super-frames) need a driver that sends
  // multi-segment mbufs. net_ring passes mbuf pointers through, so it takes them too.
  dev->attach_external_ =
      (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0 || dev->driver_ == "net_ring";
  info.tx_multi_segment = dev->attach_external_;
  dev->iova_as_va_ = rte_eal_iova_mode() == RTE_IOVA_VA;
  if (conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS) {
    info.rss.hash_types = hash_types_of(rss_types);
    info.rss.key_size = dev_info.hash_key_size;
    info.rss.reta_size = dev_info.reta_size;
    if (config.program_rss && info.rss.reta_size != 0) {
      rss_config rc;
      rc.hash_types = info.rss.hash_types;
      rc.key = key;
      rc.reta.resize(info.rss.reta_size);
      for (std::size_t i = 0; i < rc.reta.size(); ++i) {
        rc.reta[i] = static_cast<std::uint16_t>(i % config.rx_queues);
      }
      (void)dev->configure_rss(rc);  // a driver that refuses keeps its own: rss() tells
    }
  }
  return dev;
}

dpdk_device::~dpdk_device() {
  if (started_) {
    rte_eth_dev_stop(port_id_);
  }
  if (configured_) {
    // Closing frees the mbufs still held in the driver's rings, before the pools go.
    rte_eth_dev_close(port_id_);
  }
  for (auto& range : registered_) {
    const std::lock_guard guard(extmem().lock);
    auto it = extmem().users.find(range);
    if (it != extmem().users.end() && --it->second == 0) {
      (void)rte_extmem_unregister(range.first, range.second);
      extmem().users.erase(it);
    }
  }
  pools_.clear();  // their alloc() caches go back into the mempools...
  for (rte_mempool* mp : mempools_) {
    rte_mempool_free(mp);  // ...before they go
  }
}

bool dpdk_device::ours(const segment* s, std::uint16_t queue) const noexcept {
  if (s->native == nullptr) {
    return false;
  }
  const rte_mempool* mp = detail::mbuf_of(s)->pool;
  if (queue < mempools_.size() && mp == mempools_[queue]) {
    return true;  // the common case: allocated for this queue
  }
  return std::find(mempools_.begin(), mempools_.end(), mp) != mempools_.end();
}

dpdk_port_counters dpdk_device::counters() const noexcept {
  dpdk_port_counters c;
  for (const auto& pool : pools_) {
    pool->add_to(c);
  }
  c.tx_copied = soft_.tx_copied.load(std::memory_order_relaxed);
  c.tx_too_big = soft_.tx_too_big.load(std::memory_order_relaxed);
  c.tx_unprepared = soft_.tx_unprepared.load(std::memory_order_relaxed);
  c.tx_segment_visits = soft_.tx_segment_visits.load(std::memory_order_relaxed);
  c.tx_external = soft_.tx_external.load(std::memory_order_relaxed);
  return c;
}

std::size_t dpdk_device::mbufs_in_use() const noexcept {
  std::size_t in_use = 0;
  for (rte_mempool* mp : mempools_) {
    in_use += rte_mempool_in_use_count(mp);
  }
  for (const auto& pool : pools_) {
    in_use -= std::min(in_use, pool->cached());
  }
  return in_use;
}

buffer_pool& dpdk_device::tx_pool(std::uint16_t queue) noexcept {
  // A bad queue gets queue 0's: tx_burst will refuse the queue.
  return *pools_[queue < pools_.size() ? queue : 0];
}

link_status dpdk_device::link() const noexcept {
  rte_eth_link l{};
  if (rte_eth_link_get_nowait(port_id_, &l) != 0) {
    return {};
  }
  return link_status{l.link_status == RTE_ETH_LINK_UP, l.link_speed};
}

device_stats dpdk_device::stats() const noexcept {
  device_stats out;
  out.bad_queue = soft_.bad_queue.load(std::memory_order_relaxed);
  out.tx_dropped = soft_.tx_dropped.load(std::memory_order_relaxed);
  out.tx_busy = soft_.tx_busy.load(std::memory_order_relaxed);
  rte_eth_stats s{};
  if (rte_eth_stats_get(port_id_, &s) == 0) {
    out.rx_packets = s.ipackets;
    out.rx_bytes = s.ibytes;
    out.rx_dropped = s.imissed + s.rx_nombuf;
    out.tx_packets = s.opackets;
    out.tx_bytes = s.obytes;
    out.tx_dropped += s.oerrors;
  }
  return out;
}

std::vector<named_counter> dpdk_device::extended_stats() const {
  const int n = rte_eth_xstats_get_names(port_id_, nullptr, 0);
  if (n <= 0) {
    return {};
  }
  std::vector<rte_eth_xstat_name> names(static_cast<std::size_t>(n));
  std::vector<rte_eth_xstat> values(static_cast<std::size_t>(n));
  const int got_names = rte_eth_xstats_get_names(port_id_, names.data(), static_cast<unsigned>(n));
  const int got = rte_eth_xstats_get(port_id_, values.data(), static_cast<unsigned>(n));
  std::vector<named_counter> out;
  // A count above n means the array was too small and nothing was written (the set changed
  // between the calls): report none rather than read past the arrays.
  if (got_names <= 0 || got <= 0 || got_names > n || got > n) {
    return out;
  }
  out.reserve(static_cast<std::size_t>(got));
  for (int i = 0; i < got; ++i) {
    const std::uint64_t id = values[static_cast<std::size_t>(i)].id;
    if (id < static_cast<std::uint64_t>(got_names)) {
      out.push_back({names[id].name, values[static_cast<std::size_t>(i)].value});
    }
  }
  return out;
}

rss_config dpdk_device::rss() const {
  rss_config out;
  if (info_.rss.hash_types == 0) {
    return out;
  }
  std::vector<std::uint8_t> key(info_.rss.key_size);
  rte_eth_rss_conf conf{};
  conf.rss_key = key.empty() ? nullptr : key.data();
  conf.rss_key_len = static_cast<std::uint8_t>(key.size());
  if (rte_eth_dev_rss_hash_conf_get(port_id_, &conf) != 0) {
    return out;
  }
  out.hash_types = hash_types_of(conf.rss_hf);
  out.key = std::move(key);
  const std::size_t groups =
      (info_.rss.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE;
  std::vector<rte_eth_rss_reta_entry64> reta(groups);
  for (auto& g : reta) {
    g.mask = ~0ULL;
  }
  if (info_.rss.reta_size != 0 &&
      rte_eth_dev_rss_reta_query(port_id_, reta.data(), info_.rss.reta_size) == 0) {
    out.reta.resize(info_.rss.reta_size);
    for (std::size_t i = 0; i < out.reta.size(); ++i) {
      out.reta[i] = reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
    }
  }
  return out;
}

std::error_code dpdk_device::configure_rss(const rss_config& config) {
  if (info_.rss.hash_types == 0) {
    return std::make_error_code(std::errc::not_supported);
  }
  const bool bad_entry = std::any_of(config.reta.begin(), config.reta.end(),
                                     [this](std::uint16_t q) { return q >= info_.rx_queues; });
  if (config.key.size() != info_.rss.key_size || config.reta.size() != info_.rss.reta_size ||
      (config.hash_types & ~info_.rss.hash_types) != 0 || config.hash_types == 0 || bad_entry) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  std::vector<std::uint8_t> key = config.key;
  rte_eth_rss_conf conf{};
  conf.rss_key = key.empty() ? nullptr : key.data();
  conf.rss_key_len = static_cast<std::uint8_t>(key.size());
  rte_eth_dev_info dev_info{};
  if (rte_eth_dev_info_get(port_id_, &dev_info) != 0) {
    return std::make_error_code(std::errc::io_error);
  }
  conf.rss_hf = rss_hf_of(config.hash_types) & dev_info.flow_type_rss_offloads;
  if (const int rc = rte_eth_dev_rss_hash_update(port_id_, &conf); rc != 0) {
    return errc_of(rc);
  }
  std::vector<rte_eth_rss_reta_entry64> reta((config.reta.size() + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                             RTE_ETH_RETA_GROUP_SIZE);
  for (std::size_t i = 0; i < config.reta.size(); ++i) {
    auto& g = reta[i / RTE_ETH_RETA_GROUP_SIZE];
    g.mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
    g.reta[i % RTE_ETH_RETA_GROUP_SIZE] = config.reta[i];
  }
  if (!config.reta.empty()) {
    if (const int rc = rte_eth_dev_rss_reta_update(port_id_, reta.data(),
                                                   static_cast<std::uint16_t>(config.reta.size()));
        rc != 0) {
      return errc_of(rc);
    }
  }
  return {};
}

std::string dpdk_device::register_external_memory(void* address, std::size_t length) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  if (address == nullptr || length == 0 || reinterpret_cast<std::uintptr_t>(address) % page != 0 ||
      length % page != 0) {
    return "register_external_memory: the range must be page-aligned and a whole number of "
           "pages (allocate it with aligned_alloc or mmap)";
  }
  {
    // Registered once per process however many ports send from it; memory the application
    // registered itself (EEXIST on our first registration) stays the application's.
    const std::lock_guard guard(extmem().lock);
    const std::pair<void*, std::size_t> range(address, length);
    auto it = extmem().users.find(range);
    if (it != extmem().users.end()) {
      ++it->second;
      registered_.push_back(range);
    } else if (rte_extmem_register(address, length, nullptr, 0, page) == 0) {
      extmem().users.emplace(range, 1U);
      registered_.push_back(range);
    } else if (rte_errno != EEXIST) {
      return std::string("rte_extmem_register: ") + rte_strerror(rte_errno);
    }
  }
  rte_eth_dev_info dev_info{};
  if (rte_eth_dev_info_get(port_id_, &dev_info) != 0 || dev_info.device == nullptr) {
    return {};
  }
  const auto va = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(address));
  if (rte_dev_dma_map(dev_info.device, address, va, length) != 0 && rte_errno != ENOTSUP) {
    return std::string("rte_dev_dma_map: ") + rte_strerror(rte_errno) +
           " (a NIC needs IOVA-as-VA mode: bind it to vfio-pci)";
  }
  return {};
}

}  // namespace dpdk_net::dpdk
