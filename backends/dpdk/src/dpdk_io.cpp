// The bursts: rx adopts the driver's mbufs as packets (no copy), tx writes our descriptors back
// into the mbufs (no copy) -- external segments included, attached as DPDK external buffers.
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <array>

#include "dpdk_net/dpdk/detail/tx_prepare.hpp"
#include "dpdk_net/dpdk/dpdk_device.hpp"
#include "mbuf_pool.hpp"

namespace dpdk_net::dpdk {

using detail::mbuf_of;
using detail::private_of;
using detail::seg_of;

std::size_t dpdk_device::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  if (queue >= info_.rx_queues) {
    soft_.bad_queue.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  std::array<rte_mbuf*, max_burst> mbufs;  // [0, n) written by the driver: not zeroed per burst
  const auto want = static_cast<std::uint16_t>(std::min(out.size(), mbufs.size()));
  const std::uint16_t n = rte_eth_rx_burst(port_id_, queue, mbufs.data(), want);
  const detail::rx_timestamp_field ts{timestamp_offset_, timestamp_flag_};
  for (std::uint16_t i = 0; i < n; ++i) {
    out[i] = packet::adopt(detail::adopt_rx_chain(mbufs[i], queue, ts));
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

/// A segment pointing into an external buffer goes out as its own mbuf with the buffer attached
/// (rte_pktmbuf_attach_extbuf, no copy). The reference the segment holds passes to the attached
/// mbuf's callback, which drops it when the driver frees the mbuf after sending it; a burst that
/// is declined leaves it attached, and a later free through our pool detaches it without a drop
/// (the packet layer drops that reference itself).
void attach_external(segment* s, rte_mbuf* m, bool iova_as_va) noexcept {
  detail::mbuf_private* p = private_of(m);
  std::byte* data = s->data();
  const rte_iova_t iova =
      iova_as_va ? static_cast<rte_iova_t>(reinterpret_cast<std::uintptr_t>(data)) : RTE_BAD_IOVA;
  if (!detail::has_our_extbuf(m)) {
    p->ext_info.free_cb = detail::release_external;
    rte_mbuf_ext_refcnt_set(&p->ext_info, 1);
    rte_pktmbuf_attach_extbuf(m, data, iova, static_cast<std::uint16_t>(s->data_len), &p->ext_info);
  } else {
    // Still attached (a declined burst, or our own frame received back): the segment may have
    // been trimmed since, so point the mbuf at what it holds now.
    m->buf_addr = data;
    rte_mbuf_iova_set(m, iova);
    m->buf_len = static_cast<std::uint16_t>(s->data_len);
  }
  p->ext_info.fcb_opaque = s->ext;
  m->data_off = 0;
}

}  // namespace

/// The one walk over a packet's chain on tx: writes each descriptor into its mbuf (offsets,
/// lengths, chaining) and marks it handed over. Returns the head mbuf, or null if a segment is not
/// one of this port's mbufs (another pool), or points into external memory on a port that
/// cannot send chains: then nothing is marked and the caller copies the packet instead.
rte_mbuf* dpdk_device::write_chain(segment* head, std::uint16_t queue, std::uint64_t& visits,
                                   std::uint64_t& external) noexcept {
  std::uint64_t attached = 0;
  for (segment* s = head; s != nullptr; s = s->next) {
    ++visits;
    const bool ext_ok = s->ext == nullptr || (attach_external_ && s->data_len <= UINT16_MAX);
    if (!ours(s, queue) || !ext_ok) {
      for (segment* t = head; t != s; t = t->next) {
        t->status = segment::state::in_use;  // undo the marks of the native prefix
        ++visits;
      }
      return nullptr;
    }
    rte_mbuf* m = mbuf_of(s);
    if (s->ext != nullptr) {
      attach_external(s, m, iova_as_va_);
      ++attached;
    } else {
      m->data_off = static_cast<std::uint16_t>(s->data_off);
    }
    m->data_len = static_cast<std::uint16_t>(s->data_len);
    m->next = s->next != nullptr ? mbuf_of(s->next) : nullptr;
    s->status = segment::state::free;
  }
  external += attached;
  rte_mbuf* m = mbuf_of(head);
  m->pkt_len = head->pkt_len;
  m->nb_segs = head->nb_segs;
  return m;
}

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
  // External segments attached: added to the shared counter once per burst, not per packet
  // (every queue's thread writes that cache line).
  std::uint64_t external = 0;
  for (std::size_t i = 0; i < count; ++i) {
    packet& p = pkts[i];
    if (!p) {
      continue;
    }
    rte_mbuf* head = write_chain(p.head(), queue, visits, external);
    if (head == nullptr) {
      // From another pool, or external memory on a port without chains: copy into one fresh
      // mbuf. Correct, not zero copy (counted, so a deployment can see it happen).
      packet copy = pools_[queue]->alloc();
      std::byte* d = copy ? copy.append(p.length()) : nullptr;
      if (d == nullptr) {
        if (copy) {  // else the mempool was empty: counted in alloc_failures, not too big
          soft_.tx_too_big.fetch_add(1, std::memory_order_relaxed);
        }
        soft_.tx_dropped.fetch_add(1, std::memory_order_relaxed);
        p.reset();
        continue;
      }
      p.copy_out(0, std::span<std::byte>(d, p.length()));
      copy.meta() = p.meta();
      p = std::move(copy);
      soft_.tx_copied.fetch_add(1, std::memory_order_relaxed);
      head = write_chain(p.head(), queue, visits, external);  // one segment
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
    // Keep the external-buffer flag attach set (it is not an offload request).
    head->ol_flags = (head->ol_flags & RTE_MBUF_F_EXTERNAL) | flags;
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
  if (external != 0) {
    soft_.tx_external.fetch_add(external, std::memory_order_relaxed);
  }
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

}  // namespace dpdk_net::dpdk
