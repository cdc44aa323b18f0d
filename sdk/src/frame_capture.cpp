// frame_capture (a pcapng file behind a switch) and capture_device (any device, recorded).
#include "dpdk_net/frame_capture.hpp"

#include <algorithm>
#include <cstring>

#include "dpdk_net/os.hpp"

namespace dpdk_net {

bool frame_capture::open(const capture_options& options, std::vector<capture_interface> interfaces,
                         std::string& error) {
  const std::lock_guard lock(mutex_);
  enabled_.store(false, std::memory_order_relaxed);
  open_ = false;
  // A snaplen of 0 means "no limit", as in pcapng's interface description.
  for (capture_interface& i : interfaces) {
    if (options.snaplen != 0) {
      i.snaplen = i.snaplen == 0 ? options.snaplen : std::min(i.snaplen, options.snaplen);
    }
  }
  if (!writer_.open(options.path, std::move(interfaces), options.limits)) {
    error = writer_.error();
    return false;
  }
  open_ = true;
  snaplen_ = options.snaplen == 0 ? UINT32_MAX : options.snaplen;
  enabled_.store(options.enabled, std::memory_order_relaxed);
  return true;
}

void frame_capture::record(std::uint32_t interface, time_ns timestamp, frame_direction direction,
                           std::span<const packet> frames) {
  if (!enabled()) {
    return;
  }
  const std::lock_guard lock(mutex_);
  if (!open_) {
    return;
  }
  for (const packet& p : frames) {
    if (p) {
      writer_.write(interface, timestamp, direction, p);
    }
  }
}

void frame_capture::record(std::uint32_t interface, time_ns timestamp, frame_direction direction,
                           const packet& frame) {
  record(interface, timestamp, direction, std::span<const packet>(&frame, 1));
}

void frame_capture::record_bytes(std::uint32_t interface, time_ns timestamp,
                                 frame_direction direction, std::span<const std::byte> data,
                                 std::uint32_t original_length) {
  if (!enabled()) {
    return;
  }
  const std::lock_guard lock(mutex_);
  if (open_) {
    writer_.write(interface, timestamp, direction, data, original_length);
  }
}

void frame_capture::set_drops(std::uint32_t interface, std::uint64_t if_dropped,
                              std::uint64_t os_dropped) {
  const std::lock_guard lock(mutex_);
  writer_.set_drops(interface, if_dropped, os_dropped);
}

void frame_capture::close(time_ns timestamp) noexcept {
  const std::lock_guard lock(mutex_);
  enabled_.store(false, std::memory_order_relaxed);
  open_ = false;
  writer_.close(timestamp);
}

capture_file_stats frame_capture::stats() const {
  const std::lock_guard lock(mutex_);
  return writer_.stats();
}

std::string frame_capture::error() const {
  const std::lock_guard lock(mutex_);
  return writer_.error();
}

capture_device::capture_device(device& inner, frame_capture& sink, clock_function clock)
    : inner_(inner), sink_(sink), clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] { return realtime_now(); };
  }
  staging_.resize(inner_.info().tx_queues);
}

std::vector<capture_interface> capture_device::interfaces_for(const device_info& info,
                                                              std::uint32_t snaplen) {
  std::vector<capture_interface> out;
  const std::uint16_t queues = std::max(info.rx_queues, info.tx_queues);
  for (std::uint16_t q = 0; q < std::max<std::uint16_t>(queues, 1); ++q) {
    capture_interface i;
    i.name = info.name + "/q" + std::to_string(q);
    i.snaplen = snaplen;
    out.push_back(std::move(i));
  }
  return out;
}

void capture_device::publish_drops() {
  const device_stats s = inner_.stats();
  const capture_file_stats c = sink_.stats();
  sink_.set_drops(0, s.rx_dropped + s.tx_dropped, c.frames_over_cap + c.write_errors);
}

std::size_t capture_device::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  const std::size_t n = inner_.rx_burst(queue, out);
  if (n != 0 && sink_.enabled()) {
    try {
      sink_.record(queue, clock_(), frame_direction::inbound, out.first(n));
    } catch (...) {  // NOLINT(bugprone-empty-catch): a capture must never break the data path
    }
  }
  return n;
}

std::size_t capture_device::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (!sink_.enabled() || queue >= staging_.size()) {
    return inner_.tx_burst(queue, pkts);
  }
  // Stage copies first: the inner device takes (and may free) what it accepts.
  queue_staging& st = staging_[queue];
  try {
    st.bytes.clear();
    st.frames.clear();
    for (const packet& p : pkts) {
      staged_frame f;
      f.offset = st.bytes.size();
      f.original = p ? static_cast<std::uint32_t>(p.length()) : 0;
      f.captured = std::min(f.original, sink_.snaplen());
      st.bytes.resize(f.offset + f.captured);
      std::uint32_t left = f.captured;
      std::size_t at = f.offset;
      if (p) {
        for (const segment& s : p.segments()) {
          const std::uint32_t k = std::min(left, s.data_len);
          std::memcpy(st.bytes.data() + at, s.data(), k);
          at += k;
          left -= k;
        }
      }
      st.frames.push_back(f);
    }
  } catch (...) {  // out of memory while staging: send without recording
    st.frames.clear();
    return inner_.tx_burst(queue, pkts);
  }
  const std::size_t n = inner_.tx_burst(queue, pkts);
  if (n == 0 || st.frames.size() < n) {
    return n;
  }
  try {
    const time_ns now = clock_();
    const std::lock_guard lock(sink_.mutex_);
    if (sink_.open_) {
      for (std::size_t i = 0; i < n; ++i) {
        const staged_frame& f = st.frames[i];
        if (f.original != 0) {
          sink_.writer_.write(queue, now, frame_direction::outbound,
                              std::span<const std::byte>(st.bytes).subspan(f.offset, f.captured),
                              f.original);
        }
      }
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch)
  }
  return n;
}

}  // namespace dpdk_net
