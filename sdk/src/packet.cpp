#include "dpdk_net/packet.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "dpdk_net/buffer_pool.hpp"

namespace dpdk_net {

namespace {

/// Collects segments to free and hands them to their pool in runs, so that freeing a burst costs
/// one virtual call per run of same-pool segments rather than one per segment.
class segment_freer {
 public:
  segment_freer() = default;
  segment_freer(const segment_freer&) = delete;
  segment_freer& operator=(const segment_freer&) = delete;
  ~segment_freer() { flush(); }

  void add_chain(segment* s) noexcept {
    while (s != nullptr) {
      segment* next = s->next;
      if (s->ext != nullptr) {
        external_buffer* ext = s->ext;
        s->ext = nullptr;
        ext->drop_reference();
      }
      if (s->pool != pool_ || count_ == batch_.size()) {
        flush();
        pool_ = s->pool;
      }
      batch_[count_++] = s;
      s = next;
    }
  }

  void flush() noexcept {
    if (count_ != 0) {
      pool_->free_bulk(std::span<segment* const>(batch_.data(), count_));
      count_ = 0;
    }
  }

 private:
  // Only [0, count_) is ever read: left uninitialised, so a free costs no 512-byte memset.
  std::array<segment*, 64> batch_;
  std::size_t count_ = 0;
  buffer_pool* pool_ = nullptr;
};

}  // namespace

std::byte* packet::prepend(std::size_t n) noexcept {
  if (head_ == nullptr || head_->ext != nullptr || n > head_->data_off) {
    return nullptr;  // external data is the application's: never written through a packet
  }
  const auto k = static_cast<std::uint32_t>(n);
  head_->data_off -= k;
  head_->data_len += k;
  head_->pkt_len += k;
  return head_->data();
}

std::byte* packet::append(std::size_t n) noexcept {
  if (head_ == nullptr) {
    return nullptr;
  }
  segment* tail = head_->last;
  if (tail->ext != nullptr || n > tail->tailroom()) {
    return nullptr;
  }
  const auto k = static_cast<std::uint32_t>(n);
  std::byte* at = tail->data() + tail->data_len;
  tail->data_len += k;
  head_->pkt_len += k;
  return at;
}

bool packet::trim_front(std::size_t n) noexcept {
  if (head_ == nullptr || n > head_->data_len) {
    return false;
  }
  const auto k = static_cast<std::uint32_t>(n);
  head_->data_off += k;
  head_->data_len -= k;
  head_->pkt_len -= k;
  return true;
}

bool packet::trim_back(std::size_t n) noexcept {
  if (head_ == nullptr || n > head_->last->data_len) {
    return false;
  }
  const auto k = static_cast<std::uint32_t>(n);
  head_->last->data_len -= k;
  head_->pkt_len -= k;
  return true;
}

bool packet::chain(packet&& tail) noexcept {
  // A stale handle's chain belongs to someone else now: neither side may be spliced.
  if (head_ == nullptr || !tail || this == &tail || !current() || !tail.current() ||
      head_->nb_segs + tail.head_->nb_segs > max_segments) {
    return false;
  }
  segment* t = tail.release();
  head_->last->next = t;
  head_->last = t->last;
  head_->pkt_len += t->pkt_len;
  head_->nb_segs = static_cast<std::uint16_t>(head_->nb_segs + t->nb_segs);
  // t is now an inner segment: its head-only fields are meaningless and reset on reallocation.
  t->last = nullptr;
  t->meta = packet_meta{};
  return true;
}

std::size_t packet::copy_out(std::size_t offset, std::span<std::byte> out) const noexcept {
  std::size_t copied = 0;
  for (const segment& s : segments()) {
    if (copied == out.size()) {
      break;
    }
    if (offset >= s.data_len) {
      offset -= s.data_len;
      continue;
    }
    const std::size_t n = std::min<std::size_t>(s.data_len - offset, out.size() - copied);
    std::memcpy(out.data() + copied, s.data() + offset, n);
    copied += n;
    offset = 0;
  }
  return copied;
}

void packet::free_chain(segment* head) noexcept {
  segment_freer freer;
  freer.add_chain(head);
}

void packet::count_stale_free(segment* head) noexcept {
  ++head->pool->stale_frees_;
}

void free_burst(std::span<packet> packets) noexcept {
  segment_freer freer;
  for (packet& p : packets) {
    if (p.head_ != nullptr && !p.tag_.matches(p.head_)) {
      packet::count_stale_free(p.head_);
      p.head_ = nullptr;
      continue;
    }
    freer.add_chain(p.release());
  }
}

}  // namespace dpdk_net
