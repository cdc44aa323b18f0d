#include "dpdk_net/dpdk/dpdk_device.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <new>

#include "dpdk_net/dpdk/detail/tx_prepare.hpp"

namespace dpdk_net::dpdk {

namespace {

std::atomic<bool> g_eal_ready{false};

/// The descriptor kept in an mbuf's private area.
segment* seg_of(rte_mbuf* m) noexcept {
  return static_cast<segment*>(rte_mbuf_to_priv(m));
}
rte_mbuf* mbuf_of(const segment* s) noexcept {
  return static_cast<rte_mbuf*>(s->native);
}

constexpr std::uint16_t priv_size() noexcept {
  return static_cast<std::uint16_t>(RTE_ALIGN(sizeof(segment), RTE_MBUF_PRIV_ALIGN));
}

checksum_status ip_status(std::uint64_t flags) noexcept {
  switch (flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
    case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
      return checksum_status::good;
    case RTE_MBUF_F_RX_IP_CKSUM_BAD:
      return checksum_status::bad;
    default:
      return checksum_status::unknown;
  }
}
checksum_status l4_status(std::uint64_t flags) noexcept {
  switch (flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
    case RTE_MBUF_F_RX_L4_CKSUM_GOOD:
      return checksum_status::good;
    case RTE_MBUF_F_RX_L4_CKSUM_BAD:
      return checksum_status::bad;
    default:
      return checksum_status::unknown;
  }
}

/// Fills the descriptors of a received mbuf chain from the mbufs (the driver wrote the mbufs).
segment* adopt_rx_chain(rte_mbuf* head, std::uint16_t queue) noexcept {
  segment* h = seg_of(head);
  segment* prev = nullptr;
  for (rte_mbuf* m = head; m != nullptr; m = m->next) {
    segment* s = seg_of(m);
    s->buf = static_cast<std::byte*>(m->buf_addr);
    s->buf_len = m->buf_len;
    s->data_off = m->data_off;
    s->data_len = m->data_len;
    s->next = nullptr;
    s->ext = nullptr;
    s->status = segment::state::in_use;
    ++s->generation;
    if (prev != nullptr) {
      prev->next = s;
    }
    prev = s;
  }
  h->last = prev;
  h->pkt_len = head->pkt_len;
  h->nb_segs = head->nb_segs;
  packet_meta& meta = h->meta;
  meta = packet_meta{};
  meta.queue = queue;
  if ((head->ol_flags & RTE_MBUF_F_RX_RSS_HASH) != 0) {
    meta.rss_hash = head->hash.rss;
    meta.rss_hash_valid = true;
  }
  meta.ip_checksum = ip_status(head->ol_flags);
  meta.l4_checksum = l4_status(head->ol_flags);
  return h;
}

}  // namespace

// --------------------------------------------------------------------------------------------
// EAL
// --------------------------------------------------------------------------------------------

std::string eal::init(const std::vector<std::string>& args) {
  if (g_eal_ready.load()) {
    return "DPDK EAL is already initialised in this process (rte_eal_init runs once per process)";
  }
  std::vector<std::string> copy = args;
  if (copy.empty()) {
    copy.emplace_back("dpdk_net");
  }
  std::vector<char*> argv;
  for (std::string& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const int rc = rte_eal_init(static_cast<int>(copy.size()), argv.data());
  if (rc < 0) {
    const int err = rte_errno;
    std::string msg = "rte_eal_init failed: ";
    msg += rte_strerror(err);
    if (err == EACCES) {
      msg += " (run as root, or give the process access to hugepages and /dev/vfio)";
    } else if (err == ENOMEM) {
      msg += " (reserve hugepages with scripts/setup.sh, or pass --no-huge -m 256)";
    } else if (err == EALREADY) {
      msg += " (already initialised in this process)";
    } else if (err == EINVAL) {
      msg += " (an EAL argument is wrong: see the EAL log above)";
    }
    return msg;
  }
  g_eal_ready.store(true);
  return {};
}

bool eal::initialized() noexcept {
  return g_eal_ready.load();
}

void eal::cleanup() noexcept {
  if (g_eal_ready.exchange(false)) {
    rte_eal_cleanup();
  }
}

// --------------------------------------------------------------------------------------------
// mbuf pool: a buffer_pool over an rte_mempool whose mbufs carry a segment in their priv area.
// One per tx queue, all over the port's one mempool: alloc()'s segment cache (buffer_pool) is
// single-threaded, and queues run on different lcores. Freeing is thread-safe (the mempool and
// atomic counters), so a segment may go back through any of them.
// --------------------------------------------------------------------------------------------

class dpdk_device::mbuf_pool final : public buffer_pool {
 public:
  /// `describe`: set the constant fields of every descriptor (once per mempool, by the first).
  mbuf_pool(rte_mempool* mp, bool describe) : mp_(mp) {
    if (!describe) {
      return;
    }
    rte_mempool_obj_iter(
        mp_,
        [](rte_mempool*, void* self, void* obj, unsigned) {
          auto* m = static_cast<rte_mbuf*>(obj);
          auto* s = new (rte_mbuf_to_priv(m)) segment{};
          s->pool = static_cast<mbuf_pool*>(self);
          s->native = m;
          s->status = segment::state::free;
        },
        this);
  }
  ~mbuf_pool() override {
    drain_cache();  // alloc()'s cached mbufs go back (the device frees the mempool after us)
  }
  mbuf_pool(const mbuf_pool&) = delete;
  mbuf_pool& operator=(const mbuf_pool&) = delete;

  std::size_t alloc_bulk(std::span<segment*> out) noexcept override {
    std::array<rte_mbuf*, max_burst> batch;  // [0, want) written by DPDK: not zeroed per call
    std::size_t done = 0;
    while (done < out.size()) {
      auto want = static_cast<unsigned>(std::min(batch.size(), out.size() - done));
      // rte_pktmbuf_alloc_bulk is all-or-nothing: on failure fall back to what is there.
      if (rte_pktmbuf_alloc_bulk(mp_, batch.data(), want) != 0) {
        want = 0;
        while (done + want < out.size() && want < batch.size()) {
          rte_mbuf* m = rte_pktmbuf_alloc(mp_);
          if (m == nullptr) {
            break;
          }
          batch[want++] = m;
        }
        if (want == 0) {
          alloc_failures_.fetch_add(1, std::memory_order_relaxed);
          break;
        }
      }
      for (unsigned i = 0; i < want; ++i) {
        rte_mbuf* m = batch[i];
        segment* s = seg_of(m);
        s->buf = static_cast<std::byte*>(m->buf_addr);
        s->buf_len = m->buf_len;
        s->data_off = m->data_off;
        s->data_len = 0;
        s->next = nullptr;
        s->ext = nullptr;
        s->last = s;
        s->pkt_len = 0;
        s->nb_segs = 1;
        s->pool = this;  // freed through the queue that allocated it
        s->status = segment::state::in_use;
        ++s->generation;
        s->meta = packet_meta{};
        out[done + i] = s;
      }
      done += want;
      if (want < batch.size() && done < out.size()) {
        break;  // the pool ran dry
      }
    }
    return done;
  }

  /// One rte_pktmbuf_free_bulk per call (per 64 segments), not one DPDK call per segment.
  void free_bulk(std::span<segment* const> segments) noexcept override {
    std::array<rte_mbuf*, max_burst> batch;  // [0, n) used: not zeroed per call
    unsigned n = 0;
    for (segment* s : segments) {
      if (!holds(s)) {
        foreign_frees_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (s->status != segment::state::in_use) {
        double_frees_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      s->status = segment::state::free;
      rte_mbuf* m = mbuf_of(s);
      m->next = nullptr;  // our chain is freed segment by segment
      m->nb_segs = 1;
      batch[n++] = m;
      if (n == batch.size()) {
        put(batch.data(), n);
        n = 0;
      }
    }
    if (n != 0) {
      put(batch.data(), n);
    }
  }

  [[nodiscard]] rte_mempool* mempool() const noexcept { return mp_; }
  /// True if s is an mbuf of this port's mempool (whichever queue's pool allocated it).
  [[nodiscard]] bool holds(const segment* s) const noexcept {
    return s->native != nullptr && mbuf_of(s)->pool == mp_;
  }

 private:
  void put(rte_mbuf** mbufs, unsigned n) noexcept {
    rte_pktmbuf_free_bulk(mbufs, n);
    free_bulk_calls_.fetch_add(1, std::memory_order_relaxed);
  }

  rte_mempool* mp_;
  std::atomic<std::uint64_t> free_bulk_calls_{0};
  std::atomic<std::uint64_t> alloc_failures_{0};  // the mempool is shared by every queue
  std::atomic<std::uint64_t> double_frees_{0};
  std::atomic<std::uint64_t> foreign_frees_{0};

 public:
  void add_to(dpdk_port_counters& c) const noexcept {
    c.alloc_failures += alloc_failures_.load(std::memory_order_relaxed);
    c.double_frees += double_frees_.load(std::memory_order_relaxed);
    c.foreign_frees += foreign_frees_.load(std::memory_order_relaxed);
    c.stale_frees += stale_frees();
    c.mempool_free_calls += free_bulk_calls_.load(std::memory_order_relaxed);
    c.virtual_alloc_calls += virtual_alloc_calls();
  }
};

// --------------------------------------------------------------------------------------------
// Port
// --------------------------------------------------------------------------------------------

std::unique_ptr<dpdk_device> dpdk_device::open(const port_config& config, std::string& error) {
  if (!eal::initialized()) {
    error = "DPDK EAL is not initialised: call dpdk_net::dpdk::eal::init first";
    return nullptr;
  }
  if (config.rx_queues == 0 || config.tx_queues == 0) {
    error = "port '" + config.name + "': rx_queues and tx_queues must be at least 1";
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

  std::unique_ptr<dpdk_device> dev(new dpdk_device());
  dev->port_id_ = port;
  const std::string pool_name = "dn_pool_" + std::to_string(port);
  rte_mempool* mp =
      rte_pktmbuf_pool_create(pool_name.c_str(), config.mbufs, config.mbuf_cache, priv_size(),
                              config.data_room, static_cast<int>(rte_eth_dev_socket_id(port)));
  if (mp == nullptr) {
    error = "rte_pktmbuf_pool_create(" + std::to_string(config.mbufs) +
            " mbufs): " + rte_strerror(rte_errno) +
            " (reserve more hugepages, pass a larger -m, or lower port_config::mbufs)";
    return nullptr;
  }
  dev->mempool_ = mp;
  for (std::uint16_t q = 0; q < config.tx_queues; ++q) {
    dev->pools_.push_back(std::make_unique<mbuf_pool>(mp, q == 0));
  }

  rte_eth_conf conf{};
  conf.rxmode.mtu = config.mtu;
  // Offloads: take the checksum offloads the device has; RSS when there are several rx queues.
  const std::uint64_t rx_want =
      RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
  const std::uint64_t tx_want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
                                RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_TSO |
                                RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  conf.rxmode.offloads = dev_info.rx_offload_capa & rx_want;
  conf.txmode.offloads = dev_info.tx_offload_capa & tx_want;
  const std::uint64_t rss_types =
      dev_info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
  if (config.rx_queues > 1 && rss_types != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss_types;
  }
  if (const int rc = rte_eth_dev_configure(port, config.rx_queues, config.tx_queues, &conf);
      rc != 0) {
    error = "rte_eth_dev_configure(" + config.name + "): " + rte_strerror(-rc);
    return nullptr;
  }
  // From here a failure closes the port (in the destructor) before the mempool is freed: queues
  // set up so far reference it.
  dev->configured_ = true;
  if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0) {
    dev->tx_offloads_ |= tx_offload_request::ipv4_checksum;
  }
  if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) != 0) {
    dev->tx_offloads_ |= tx_offload_request::tcp_checksum;
  }
  if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0) {
    dev->tx_offloads_ |= tx_offload_request::udp_checksum;
  }
  if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_TSO) != 0) {
    dev->tx_offloads_ |= tx_offload_request::tcp_segmentation;
  }
  const auto socket = static_cast<unsigned>(rte_eth_dev_socket_id(port));
  for (std::uint16_t q = 0; q < config.rx_queues; ++q) {
    if (const int rc = rte_eth_rx_queue_setup(port, q, config.rx_descriptors, socket, nullptr, mp);
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
    error = "rte_eth_dev_start(" + config.name + "): " + rte_strerror(-rc);
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
  std::memcpy(info.mac.bytes.data(), mac.addr_bytes, 6);
  info.mtu = config.mtu;
  info.rx_queues = config.rx_queues;
  info.tx_queues = config.tx_queues;
  info.thread_safe_queues = true;  // ethdev queues are independent (one lcore per queue)
  if ((conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0) {
    info.rx_offloads.add(offload::ipv4_checksum);
  }
  if ((conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) != 0) {
    info.rx_offloads.add(offload::tcp_checksum);
  }
  if ((conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) != 0) {
    info.rx_offloads.add(offload::udp_checksum);
  }
  if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0) {
    info.tx_offloads.add(offload::ipv4_checksum);
  }
  if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) != 0) {
    info.tx_offloads.add(offload::tcp_checksum);
  }
  if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0) {
    info.tx_offloads.add(offload::udp_checksum);
  }
  if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_TSO) != 0) {
    info.tx_offloads.add(offload::tcp_segmentation);
  }
  // tx_multi_segment stays false until tx_burst maps external segments to attached mbufs
  // (issue 14): chains of pool mbufs alone would work, zero-copy frames would not.
  if (conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS) {
    if ((rss_types & RTE_ETH_RSS_IP) != 0) {
      info.rss.hash_types |= rss_hash::ipv4 | rss_hash::ipv6;
    }
    if ((rss_types & RTE_ETH_RSS_TCP) != 0) {
      info.rss.hash_types |= rss_hash::tcp_ipv4 | rss_hash::tcp_ipv6;
    }
    if ((rss_types & RTE_ETH_RSS_UDP) != 0) {
      info.rss.hash_types |= rss_hash::udp_ipv4 | rss_hash::udp_ipv6;
    }
    info.rss.key_size = dev_info.hash_key_size;
    info.rss.reta_size = dev_info.reta_size;
  }
  return dev;
}

dpdk_device::~dpdk_device() {
  if (started_) {
    rte_eth_dev_stop(port_id_);
  }
  if (configured_) {
    // Closing frees the mbufs still held in the driver's rings, before the pool goes.
    rte_eth_dev_close(port_id_);
  }
  pools_.clear();  // their alloc() caches go back into the mempool...
  if (mempool_ != nullptr) {
    rte_mempool_free(mempool_);  // ...before it goes
  }
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
  return c;
}

std::size_t dpdk_device::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  if (queue >= info_.rx_queues) {
    soft_.bad_queue.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  std::array<rte_mbuf*, max_burst> mbufs;  // [0, n) written by the driver: not zeroed per burst
  const auto want = static_cast<std::uint16_t>(std::min(out.size(), mbufs.size()));
  const std::uint16_t n = rte_eth_rx_burst(port_id_, queue, mbufs.data(), want);
  for (std::uint16_t i = 0; i < n; ++i) {
    out[i] = packet::adopt(adopt_rx_chain(mbufs[i], queue));
  }
  return n;
}

namespace {

/// Marks every segment of the mbuf chain starting at m as `status` (the driver frees what it
/// sends without going through our pool, and gives back what it does not take).
void mark_chain(rte_mbuf* m, segment::state status, std::uint64_t& visits) noexcept {
  for (; m != nullptr; m = m->next) {
    seg_of(m)->status = status;
    ++visits;
  }
}

/// The one walk over a packet's chain on tx: writes each descriptor into its mbuf (offsets,
/// lengths, chaining) and marks it handed over. Returns the head mbuf, or null if a segment is not
/// one of `pool`'s mbufs (another pool, or external memory): then nothing is marked and the
/// caller copies the packet instead.
rte_mbuf* write_chain(segment* head, const rte_mempool* mp, std::uint64_t& visits) noexcept {
  for (segment* s = head; s != nullptr; s = s->next) {
    ++visits;
    if (s->native == nullptr || mbuf_of(s)->pool != mp || s->ext != nullptr) {
      for (segment* t = head; t != s; t = t->next) {
        t->status = segment::state::in_use;  // undo the marks of the native prefix
        ++visits;
      }
      return nullptr;
    }
    rte_mbuf* m = mbuf_of(s);
    m->data_off = static_cast<std::uint16_t>(s->data_off);
    m->data_len = static_cast<std::uint16_t>(s->data_len);
    m->next = s->next != nullptr ? mbuf_of(s->next) : nullptr;
    s->status = segment::state::free;
  }
  rte_mbuf* m = mbuf_of(head);
  m->pkt_len = head->pkt_len;
  m->nb_segs = head->nb_segs;
  return m;
}

}  // namespace

std::size_t dpdk_device::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (queue >= info_.tx_queues) {
    soft_.bad_queue.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  const std::size_t count = std::min(pkts.size(), max_burst);
  // Only [0, k) of these is ever read: not zeroed per burst.
  std::array<rte_mbuf*, max_burst> wire;
  std::array<std::size_t, max_burst> index;  // wire[j] is pkts[index[j]]
  std::uint16_t k = 0;
  bool any_offload = false;
  std::uint64_t visits = 0;  // segment visits, to prove each chain is walked once
  for (std::size_t i = 0; i < count; ++i) {
    packet& p = pkts[i];
    if (!p) {
      continue;
    }
    rte_mbuf* head = write_chain(p.head(), mempool_, visits);
    if (head == nullptr) {
      // From another pool, or pointing into external memory: copy into one fresh mbuf. Correct,
      // not zero copy (counted, so a deployment can see it happen).
      packet copy = pools_[queue]->alloc();
      std::byte* d = copy ? copy.append(p.length()) : nullptr;
      if (d == nullptr) {
        soft_.tx_too_big.fetch_add(1, std::memory_order_relaxed);
        soft_.tx_dropped.fetch_add(1, std::memory_order_relaxed);
        p.reset();
        continue;
      }
      p.copy_out(0, std::span<std::byte>(d, p.length()));
      copy.meta() = p.meta();
      p = std::move(copy);
      soft_.tx_copied.fetch_add(1, std::memory_order_relaxed);
      head = write_chain(p.head(), mempool_, visits);  // one segment
    }
    const tx_offload_request& tx = p.head()->meta.tx;
    // Only what the port was configured for; any L3/L4 offload needs TX_IPV4 (DPDK's rule).
    const std::uint8_t requested = tx.flags & tx_offloads_;
    any_offload = any_offload || requested != 0;
    std::uint64_t flags = requested != 0 ? RTE_MBUF_F_TX_IPV4 : 0;
    if ((requested & tx_offload_request::ipv4_checksum) != 0) {
      flags |= RTE_MBUF_F_TX_IP_CKSUM;
    }
    if ((requested & tx_offload_request::tcp_checksum) != 0) {
      flags |= RTE_MBUF_F_TX_TCP_CKSUM;
    }
    if ((requested & tx_offload_request::udp_checksum) != 0) {
      flags |= RTE_MBUF_F_TX_UDP_CKSUM;
    }
    if ((requested & tx_offload_request::tcp_segmentation) != 0) {
      flags |= RTE_MBUF_F_TX_TCP_SEG;
      head->tso_segsz = tx.tso_mss;
    }
    head->ol_flags = flags;
    head->l2_len = tx.l2_len;
    head->l3_len = tx.l3_len;
    head->l4_len = tx.l4_len;
    wire[k] = head;
    index[k++] = i;
  }
  // With offloads, the driver's tx_prepare sets what it needs (e.g. pseudo-header checksums). A
  // packet it refuses is dropped and counted: handed back, a caller retrying its leftovers would
  // offer it again for ever.
  if (any_offload) {
    k = static_cast<std::uint16_t>(detail::prepare_or_drop(
        k,
        [&](std::size_t first, std::size_t n) {
          return rte_eth_tx_prepare(port_id_, queue, wire.data() + first,
                                    static_cast<std::uint16_t>(n));
        },
        [&](std::size_t at) {
          packet& refused = pkts[index[at]];
          mark_chain(wire[at], segment::state::in_use, visits);  // ours again, to free
          refused.reset();
          soft_.tx_unprepared.fetch_add(1, std::memory_order_relaxed);
          soft_.tx_dropped.fetch_add(1, std::memory_order_relaxed);
          std::copy(wire.begin() + static_cast<std::ptrdiff_t>(at) + 1,
                    wire.begin() + static_cast<std::ptrdiff_t>(k),
                    wire.begin() + static_cast<std::ptrdiff_t>(at));
          std::copy(index.begin() + static_cast<std::ptrdiff_t>(at) + 1,
                    index.begin() + static_cast<std::ptrdiff_t>(k),
                    index.begin() + static_cast<std::ptrdiff_t>(at));
          --k;
        }));
  }
  soft_.tx_segment_visits.fetch_add(visits, std::memory_order_relaxed);
  const std::uint16_t sent = rte_eth_tx_burst(port_id_, queue, wire.data(), k);
  // The driver owns what it took (DPDK frees those mbufs after sending): drop our handles. Their
  // segments were marked free by write_chain, so no second walk.
  for (std::uint16_t j = 0; j < sent; ++j) {
    (void)pkts[index[j]].release();
  }
  if (sent == k) {
    return count;
  }
  // The ring is full: pkts[index[sent]..] stay with the caller (dropped ones among them are empty),
  // and their segments are in use again.
  std::uint64_t returned = 0;
  for (std::uint16_t j = sent; j < k; ++j) {
    mark_chain(wire[j], segment::state::in_use, returned);
  }
  soft_.tx_segment_visits.fetch_add(returned, std::memory_order_relaxed);
  soft_.tx_busy.fetch_add(k - sent, std::memory_order_relaxed);
  return index[sent];
}

buffer_pool& dpdk_device::tx_pool(std::uint16_t queue) noexcept {
  // One mempool per port (its per-lcore cache makes it safe across queues), one pool object per
  // queue (alloc()'s cache is not). A bad queue gets queue 0's: tx_burst will refuse the queue.
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

}  // namespace dpdk_net::dpdk
