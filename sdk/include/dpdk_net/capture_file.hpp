// Capture files: a pcapng writer (one interface per device queue, nanosecond timestamps, the
// direction of each frame, drop counts) and one reader for both classic pcap and pcapng, so the
// replay tool reads our own captures, tcpdump's and Wireshark's alike.
//
// The writer is bounded: max_file_bytes caps a file; with max_files > 1 a full file is closed and
// the next one opened (PATH, PATH.1, ..., PATH.<max_files-1>, then PATH again: a ring of files);
// with max_files == 1 frames past the cap are counted (capture_file_stats::frames_over_cap), not
// written. Every file is a complete pcapng on its own (section header and interface blocks first,
// an interface statistics block per interface when it is closed or rotated).
//
// Nothing in the output depends on the host, the wall clock or the process (no hostname, no OS
// string): the same frames and timestamps give the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "dpdk_net/pcap_file.hpp"

namespace dpdk_net {

class packet;

/// Which way a frame went through an interface (pcapng's epb_flags bits 0-1).
enum class frame_direction : std::uint8_t { unknown = 0, inbound = 1, outbound = 2 };

/// One pcapng interface description.
struct capture_interface {
  std::string name;         ///< if_name, e.g. "tap0/q0"
  std::string description;  ///< if_description (may be empty)
  std::uint32_t linktype = pcap_linktype_ethernet;
  std::uint32_t snaplen = 262144;  ///< frames longer are truncated (original length kept); 0: none
};

struct capture_limits {
  std::uint64_t max_file_bytes = 0;  ///< 0: unbounded; else no file grows past this (>= 4096)
  std::uint32_t max_files = 1;       ///< 1: stop writing at the cap; N > 1: a ring of N files
};

/// What a writer did (all counts since open()).
struct capture_file_stats {
  std::uint64_t frames_written = 0;
  std::uint64_t bytes_written = 0;    ///< file bytes, all files
  std::uint64_t frames_over_cap = 0;  ///< not written: past the cap, or too big for any file
  std::uint64_t write_errors = 0;     ///< not written: the file system refused (error() says)
  std::uint32_t files_opened = 0;
};

class pcapng_writer {
 public:
  pcapng_writer() = default;
  pcapng_writer(const pcapng_writer&) = delete;
  pcapng_writer& operator=(const pcapng_writer&) = delete;
  ~pcapng_writer() { close(0); }

  /// Creates (truncates) path and writes the section header and one interface description per
  /// entry. False with error() on failure (unwritable path, no interfaces, a cap below 4096).
  bool open(const std::string& path, std::vector<capture_interface> interfaces,
            const capture_limits& limits = {});
  [[nodiscard]] bool is_open() const noexcept { return file_ != nullptr; }

  /// Appends one frame as an enhanced packet block on `interface` (an index into the vector given
  /// to open). original_length 0 means data.size(). False if not written (see stats()).
  bool write(std::uint32_t interface, std::uint64_t timestamp_ns, frame_direction direction,
             std::span<const std::byte> data, std::uint32_t original_length = 0);
  /// Appends a (possibly chained) packet: its segments are written in order, no copy.
  bool write(std::uint32_t interface, std::uint64_t timestamp_ns, frame_direction direction,
             const packet& p);

  /// Sets the drop counts the next interface statistics block of `interface` reports:
  /// if_dropped (the device's: isb_ifdrop) and os_dropped (the capture's own: isb_osdrop).
  void set_drops(std::uint32_t interface, std::uint64_t if_dropped,
                 std::uint64_t os_dropped) noexcept;

  /// Writes an interface statistics block per interface (timestamp_ns as its time), flushes and
  /// closes. Idempotent.
  void close(std::uint64_t timestamp_ns) noexcept;

  [[nodiscard]] const capture_file_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  /// The file being written now (PATH or PATH.<n> after rotations).
  [[nodiscard]] const std::string& current_path() const noexcept { return current_path_; }

 private:
  struct interface_state {
    capture_interface description;
    std::uint64_t received = 0;  // isb_ifrecv: inbound frames written
    std::uint64_t if_dropped = 0;
    std::uint64_t os_dropped = 0;
  };
  bool open_file(const std::string& path);
  bool write_preamble();
  void write_statistics(std::uint64_t timestamp_ns) noexcept;
  bool rotate(std::uint64_t timestamp_ns);
  bool write_block_start(std::uint32_t interface, std::uint64_t timestamp_ns,
                         frame_direction direction, std::uint32_t captured, std::uint32_t original);
  bool write_block_end(frame_direction direction, std::uint32_t captured, std::uint32_t interface);
  bool put(const void* data, std::size_t length);
  std::FILE* file_ = nullptr;
  std::string path_;
  std::string current_path_;
  std::vector<interface_state> interfaces_;
  capture_limits limits_;
  std::uint64_t file_bytes_ = 0;
  std::uint64_t preamble_bytes_ = 0;  // a fresh file's header blocks
  std::uint32_t file_index_ = 0;
  capture_file_stats stats_;
  std::string error_;
};

/// One frame read from a capture file.
struct capture_record {
  std::uint64_t timestamp_ns = 0;
  std::uint32_t interface = 0;  ///< pcapng interface index in its section (0 for classic pcap)
  std::uint32_t linktype = pcap_linktype_ethernet;
  std::uint32_t original_length = 0;  ///< on the wire; data may be shorter (snaplen)
  frame_direction direction = frame_direction::unknown;
  std::span<const std::byte> data{};
};

/// Reads classic pcap (either byte order, micro- or nanosecond) and pcapng (either byte order,
/// several sections, any if_tsresol, enhanced and simple packet blocks; unknown blocks skipped),
/// bounds-checked over bytes the caller keeps alive. Never crashes on bad input: next() returns
/// false and error() says what is wrong, and where, in plain words.
class capture_reader {
 public:
  explicit capture_reader(std::span<const std::byte> file);

  [[nodiscard]] bool ok() const noexcept { return error_.empty(); }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] bool is_pcapng() const noexcept { return pcapng_; }

  /// The next frame; false at the end of the file or on a malformed block (then error() says).
  bool next(capture_record& out);

  /// Interfaces described so far (classic pcap: one, from the file header). For pcapng, the
  /// interfaces of the current section.
  [[nodiscard]] const std::vector<capture_interface>& interfaces() const noexcept {
    return interfaces_;
  }
  /// Drops of interface index i from the statistics blocks seen so far: isb_ifdrop is a running
  /// count, so each section's latest value, summed over the sections.
  [[nodiscard]] std::uint64_t interface_drops(std::uint32_t interface) const noexcept;

 private:
  using option_visitor = bool (capture_reader::*)(std::uint16_t code, std::size_t at,
                                                  std::uint16_t length);
  bool next_pcapng(capture_record& out);
  bool read_section_header();
  bool read_options(std::size_t from, std::size_t end, option_visitor visit);
  bool interface_option(std::uint16_t code, std::size_t at, std::uint16_t length);
  bool packet_option(std::uint16_t code, std::size_t at, std::uint16_t length);
  bool statistics_option(std::uint16_t code, std::size_t at, std::uint16_t length);
  bool fail(const std::string& what);
  [[nodiscard]] std::uint16_t u16(std::size_t at) const noexcept;
  [[nodiscard]] std::uint32_t u32(std::size_t at) const noexcept;
  [[nodiscard]] std::uint64_t u64(std::size_t at) const noexcept;
  std::span<const std::byte> file_;
  bool pcapng_ = false;
  pcap_reader classic_;
  std::size_t offset_ = 0;
  std::size_t block_index_ = 0;
  bool swapped_ = false;
  struct reader_interface {
    std::uint64_t units_per_second = 1000000;  // if_tsresol (default: microseconds)
  };
  std::vector<reader_interface> reader_interfaces_;
  std::vector<capture_interface> interfaces_;
  std::vector<std::uint64_t> drops_;          // per interface index: earlier sections' sum
  std::vector<std::uint64_t> section_drops_;  // per interface index: this section's latest
  std::uint32_t option_flags_ = 0;            // scratch for the option visitors
  std::uint64_t option_value_ = 0;
  std::string error_;
};

/// Reads a whole capture file (pcap or pcapng) into records that point into `storage`; false with
/// a message naming the file on failure (unreadable, not a capture, malformed, or truncated: the
/// records before the damage are kept and the message says where it stopped).
bool read_capture(const std::string& path, std::vector<std::byte>& storage,
                  std::vector<capture_record>& records, std::string& error);

}  // namespace dpdk_net
