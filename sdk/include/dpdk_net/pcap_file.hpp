// Classic pcap files (not pcapng): a bounds-checked reader over bytes in memory and a writer.
// Both timestamp resolutions (magic a1b2c3d4: microseconds, a1b23c4d: nanoseconds) and both byte
// orders are read; the writer writes nanosecond files, which tcpdump, tshark and scapy read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace dpdk_net {

class packet;

inline constexpr std::uint32_t pcap_linktype_ethernet = 1;

struct pcap_record {
  std::uint64_t timestamp_ns = 0;
  std::uint32_t original_length = 0;  ///< on the wire; data may be shorter (snaplen)
  std::span<const std::byte> data{};
};

class pcap_reader {
 public:
  /// Reads from bytes the caller keeps alive. error() says why if the header is not a pcap one.
  explicit pcap_reader(std::span<const std::byte> file) noexcept;

  [[nodiscard]] bool ok() const noexcept { return error_.empty(); }
  /// Empty while all is well; else what is wrong (and where) in plain words.
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] std::uint32_t linktype() const noexcept { return linktype_; }
  [[nodiscard]] std::uint32_t snaplen() const noexcept { return snaplen_; }
  [[nodiscard]] bool nanosecond() const noexcept { return nanosecond_; }

  /// The next record; false at the end of the file or on a malformed record (then error() says).
  bool next(pcap_record& out) noexcept;

 private:
  [[nodiscard]] std::uint32_t u32(std::size_t at) const noexcept;
  std::span<const std::byte> file_;
  std::size_t offset_ = 0;
  std::size_t index_ = 0;
  bool swapped_ = false;
  bool nanosecond_ = false;
  std::uint32_t snaplen_ = 0;
  std::uint32_t linktype_ = 0;
  std::string error_;
};

/// Reads a whole file into memory; false with a message on failure.
bool read_file(const std::string& path, std::vector<std::byte>& out, std::string& error);

class pcap_writer {
 public:
  pcap_writer() = default;
  pcap_writer(const pcap_writer&) = delete;
  pcap_writer& operator=(const pcap_writer&) = delete;
  ~pcap_writer() { close(); }

  /// Creates (truncates) path and writes the file header. False with error() on failure.
  bool open(const std::string& path, std::uint32_t linktype = pcap_linktype_ethernet,
            std::uint32_t snaplen = 262144);
  /// Appends one record (data truncated to snaplen; original length kept).
  bool write(std::uint64_t timestamp_ns, std::span<const std::byte> data);
  /// Appends a (possibly chained) packet.
  bool write(std::uint64_t timestamp_ns, const packet& p);
  void close() noexcept;
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  bool write_header(std::uint64_t timestamp_ns, std::size_t length, std::uint32_t captured);
  std::FILE* file_ = nullptr;
  std::uint32_t snaplen_ = 0;
  std::string error_;
};

}  // namespace dpdk_net
