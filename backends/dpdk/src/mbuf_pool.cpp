#include "mbuf_pool.hpp"

#include <rte_mbuf_dyn.h>

namespace dpdk_net::dpdk::detail {

namespace {

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

}  // namespace

void release_external(void* /*addr*/, void* opaque) noexcept {
  if (opaque != nullptr) {
    static_cast<external_buffer*>(opaque)->drop_reference();
  }
}

mbuf_pool::mbuf_pool(rte_mempool* mp) : mp_(mp) {
  // The constant fields of every descriptor, once: the pool it goes back to, its mbuf.
  rte_mempool_obj_iter(
      mp_,
      [](rte_mempool*, void* self, void* obj, unsigned) {
        auto* m = static_cast<rte_mbuf*>(obj);
        auto* p = new (rte_mbuf_to_priv(m)) mbuf_private{};
        p->seg.pool = static_cast<mbuf_pool*>(self);
        p->seg.native = m;
        p->seg.status = segment::state::free;
      },
      this);
}

mbuf_pool::~mbuf_pool() {
  drain_cache();  // alloc()'s cached mbufs go back (the device frees the mempool after us)
}

std::size_t mbuf_pool::alloc_bulk(std::span<segment*> out) noexcept {
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

void mbuf_pool::free_bulk(std::span<segment* const> segments) noexcept {
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
    if (has_our_extbuf(m)) {
      // Attached by a tx_burst that did not send it: the packet layer dropped the reference it
      // held (segment::ext) before freeing, so the detach must not drop it again.
      private_of(m)->ext_info.fcb_opaque = nullptr;
    }
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

void mbuf_pool::put(rte_mbuf** mbufs, unsigned n) noexcept {
  rte_pktmbuf_free_bulk(mbufs, n);
  free_bulk_calls_.fetch_add(1, std::memory_order_relaxed);
}

void mbuf_pool::add_to(dpdk_port_counters& c) const noexcept {
  c.alloc_failures += alloc_failures_.load(std::memory_order_relaxed);
  c.double_frees += double_frees_.load(std::memory_order_relaxed);
  c.foreign_frees += foreign_frees_.load(std::memory_order_relaxed);
  c.stale_frees += stale_frees();
  c.mempool_free_calls += free_bulk_calls_.load(std::memory_order_relaxed);
  c.virtual_alloc_calls += virtual_alloc_calls();
}

segment* adopt_rx_chain(rte_mbuf* head, std::uint16_t queue,
                        const rx_timestamp_field& timestamps) noexcept {
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
    if (has_our_extbuf(m)) {
      // Our own zero-copy frame come back (net_ring loops a port's tx into an rx): the reference
      // its callback would drop passes to the segment, which the packet layer drops on free.
      s->ext = static_cast<external_buffer*>(private_of(m)->ext_info.fcb_opaque);
      private_of(m)->ext_info.fcb_opaque = nullptr;
    }
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
  if (timestamps.offset >= 0 && (head->ol_flags & timestamps.flag) != 0) {
    meta.rx_timestamp_ns = *RTE_MBUF_DYNFIELD(head, timestamps.offset, rte_mbuf_timestamp_t*);
  }
  return h;
}

}  // namespace dpdk_net::dpdk::detail
