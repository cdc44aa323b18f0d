#include "dpdk_net/buffer_pool.hpp"

#include <array>
#include <new>
#include <stdexcept>

namespace dpdk_net {

bool buffer_pool::refill_cache() noexcept {
  ++virtual_alloc_calls_;
  cached_ = alloc_bulk(std::span<segment*>(cache_.data(), cache_.size()));
  for (std::size_t i = 0; i < cached_; ++i) {
    cache_[i]->status = segment::state::free;
  }
  return cached_ != 0;
}

segment* buffer_pool::take_cached() noexcept {
  if (cached_ == 0 && !refill_cache()) {
    return nullptr;
  }
  segment* s = cache_[--cached_];
  s->status = segment::state::in_use;
  return s;
}

void buffer_pool::drain_cache() noexcept {
  for (std::size_t i = 0; i < cached_; ++i) {
    cache_[i]->status = segment::state::in_use;
  }
  free_bulk(std::span<segment* const>(cache_.data(), cached_));
  cached_ = 0;
}

std::size_t buffer_pool::alloc_burst(std::span<packet> out) noexcept {
  if (lifo_ != nullptr) {
    std::size_t done = 0;
    for (; done < out.size(); ++done) {
      segment* s = lifo_->take_one();
      if (s == nullptr) {
        break;
      }
      out[done] = packet::adopt(s);
    }
    return done;
  }
  std::array<segment*, 64> batch;  // only [0, got) is read: not zeroed per call
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t want = std::min(batch.size(), out.size() - done);
    ++virtual_alloc_calls_;
    const std::size_t got = alloc_bulk(std::span<segment*>(batch.data(), want));
    for (std::size_t i = 0; i < got; ++i) {
      out[done + i] = packet::adopt(batch[i]);
    }
    done += got;
    if (got < want) {
      break;
    }
  }
  return done;
}

packet buffer_pool::attach_external(external_buffer& ext, std::size_t offset,
                                    std::size_t length) noexcept {
  if (offset > ext.size || length > ext.size - offset || length > UINT32_MAX) {
    return {};
  }
  packet p = alloc();
  if (!p) {
    return p;
  }
  segment* s = p.head();
  s->buf = ext.data + offset;
  s->buf_len = static_cast<std::uint32_t>(length);
  s->data_off = 0;
  s->data_len = static_cast<std::uint32_t>(length);
  s->pkt_len = s->data_len;
  s->ext = &ext;
  ext.add_reference();
  return p;
}

packet_pool::packet_pool(const packet_pool_config& config) : buffer_pool(this), config_(config) {
  if (config_.count == 0) {
    throw std::invalid_argument("packet_pool '" + config_.name + "': count must be at least 1");
  }
  if (config_.buffer_size == 0 || config_.headroom >= config_.buffer_size) {
    throw std::invalid_argument("packet_pool '" + config_.name +
                                "': headroom must be smaller than buffer_size");
  }
  descriptors_ = std::make_unique<segment[]>(config_.count);
  memory_ = std::make_unique<std::byte[]>(config_.count * std::size_t{config_.buffer_size});
  free_list_ = std::make_unique<segment*[]>(config_.count);
  // Push in reverse so that the first allocations hand out the lowest addresses.
  for (std::size_t i = config_.count; i-- > 0;) {
    segment& s = descriptors_[i];
    s.pool = this;
    s.status = segment::state::free;
    free_list_[free_count_++] = &s;
  }
}

packet_pool::~packet_pool() = default;

bool packet_pool::owns(const segment* s) const noexcept {
  const segment* first = descriptors_.get();
  return s >= first && s < first + config_.count;
}

std::size_t packet_pool::alloc_bulk(std::span<segment*> out) noexcept {
  std::size_t n = out.size();
  if (n > free_count_) {
    ++alloc_failures_;
    n = free_count_;
  }
  for (std::size_t i = 0; i < n; ++i) {
    segment* s = free_list_[--free_count_];
    prepare(s);
    out[i] = s;
  }
  allocations_ += n;
  return n;
}

void packet_pool::free_bulk(std::span<segment* const> segments) noexcept {
  for (segment* s : segments) {
    if (!owns(s)) {
      ++foreign_frees_;
      continue;
    }
    if (s->status != segment::state::in_use) {
      ++double_frees_;
      continue;
    }
    s->status = segment::state::free;
    free_list_[free_count_++] = s;
  }
}

packet_pool_stats packet_pool::stats() const noexcept {
  return packet_pool_stats{config_.count, free_count_,    allocations_, alloc_failures_,
                           double_frees_, foreign_frees_, stale_frees()};
}

}  // namespace dpdk_net
