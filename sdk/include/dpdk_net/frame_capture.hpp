// Capturing what a device sends and receives, for every backend: a frame_capture (a pcapng file
// behind a run-time switch, shared by the queues of a device) and capture_device, a device that
// wraps any other and records its rx and tx frames into one. The simulator's network::capture
// writes through the same frame_capture (with virtual time), so there is one capture path.
//
// Cost: while the switch is off, capture_device adds one relaxed atomic load per burst -- no
// allocation, no lock, no syscall (tests/unit/capture_test.cpp counts them). While it is on, a
// burst takes the capture's mutex once and copies its frames into the file's stdio buffer; that is
// a debugging mode, not the fast path.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/device.hpp"
#include "dpdk_net/time.hpp"

namespace dpdk_net {

struct capture_options {
  std::string path;                ///< the pcapng file (rotation adds .1, .2, ...)
  capture_limits limits{};         ///< size cap / ring of files
  std::uint32_t snaplen = 262144;  ///< bytes kept of each frame (0: all, as in pcapng)
  bool enabled = true;             ///< write from the start (else from enable(true))
};

/// A pcapng file behind an on/off switch. record() may be called from several threads (one lock
/// per call); enable() from any thread at any time.
class frame_capture {
 public:
  frame_capture() = default;
  frame_capture(const frame_capture&) = delete;
  frame_capture& operator=(const frame_capture&) = delete;
  ~frame_capture() { close(0); }

  /// Opens the file with these interfaces. False with a message on failure.
  bool open(const capture_options& options, std::vector<capture_interface> interfaces,
            std::string& error);

  void enable(bool on) noexcept {
    enabled_.store(on && open_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  [[nodiscard]] bool enabled() const noexcept { return enabled_.load(std::memory_order_relaxed); }

  /// Writes frames (all on one interface, one timestamp) if enabled. One lock per call.
  void record(std::uint32_t interface, time_ns timestamp, frame_direction direction,
              std::span<const packet> frames);
  void record(std::uint32_t interface, time_ns timestamp, frame_direction direction,
              const packet& frame);
  /// Appends already-serialized frames (capture_device's staging of offered tx frames).
  void record_bytes(std::uint32_t interface, time_ns timestamp, frame_direction direction,
                    std::span<const std::byte> data, std::uint32_t original_length);

  /// Drop counts for an interface's statistics block (see pcapng_writer::set_drops).
  void set_drops(std::uint32_t interface, std::uint64_t if_dropped, std::uint64_t os_dropped);
  /// Writes the statistics blocks and closes the file; later records are ignored.
  void close(time_ns timestamp) noexcept;

  [[nodiscard]] capture_file_stats stats() const;
  [[nodiscard]] std::string error() const;
  /// Bytes kept of each frame (capture_options::snaplen of the last open()).
  [[nodiscard]] std::uint32_t snaplen() const noexcept { return snaplen_; }

 private:
  friend class capture_device;  // writes a whole tx burst under one lock
  mutable std::mutex mutex_;
  pcapng_writer writer_;
  std::atomic<bool> enabled_{false};
  std::atomic<bool> open_{false};  // read by enable() without the lock (e.g. a signal handler)
  std::uint32_t snaplen_ = 262144;
};

/// A device that forwards every call to `inner` and, while `sink` is enabled, records each frame
/// rx_burst returns (inbound) and each frame tx_burst accepted (outbound) on interface `queue`.
/// The tx frames are copied to a per-queue staging area before the inner tx_burst (it consumes
/// them) and only those it accepted are written: a declined frame is recorded when it is sent.
/// Timestamps come from `clock` (default: realtime_now, the wall clock Wireshark expects).
class capture_device final : public device {
 public:
  using clock_function = std::function<time_ns()>;

  capture_device(device& inner, frame_capture& sink, clock_function clock = {});

  /// One interface per queue, named "<device name>/q<n>", for frame_capture::open.
  [[nodiscard]] static std::vector<capture_interface> interfaces_for(const device_info& info,
                                                                     std::uint32_t snaplen);
  /// Copies the inner device's drop counters into the capture's statistics blocks (interface 0
  /// gets the device-wide rx_dropped + tx_dropped); call before closing the capture.
  void publish_drops();

  [[nodiscard]] device& inner() noexcept { return inner_; }
  [[nodiscard]] frame_capture& capture() noexcept { return sink_; }

  [[nodiscard]] const device_info& info() const noexcept override { return inner_.info(); }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override {
    return inner_.tx_pool(queue);
  }
  [[nodiscard]] link_status link() const noexcept override { return inner_.link(); }
  [[nodiscard]] device_stats stats() const noexcept override { return inner_.stats(); }
  [[nodiscard]] std::vector<named_counter> extended_stats() const override {
    return inner_.extended_stats();
  }
  [[nodiscard]] wait_handle rx_wait_handle(std::uint16_t queue) const noexcept override {
    return inner_.rx_wait_handle(queue);
  }
  [[nodiscard]] rss_config rss() const override { return inner_.rss(); }
  std::error_code configure_rss(const rss_config& config) override {
    return inner_.configure_rss(config);
  }

 private:
  struct staged_frame {
    std::size_t offset = 0;
    std::uint32_t captured = 0;
    std::uint32_t original = 0;
  };
  struct queue_staging {
    std::vector<std::byte> bytes;  // grown on first use, then reused
    std::vector<staged_frame> frames;
  };
  device& inner_;
  frame_capture& sink_;
  clock_function clock_;
  std::vector<queue_staging> staging_;  // per tx queue
};

}  // namespace dpdk_net
