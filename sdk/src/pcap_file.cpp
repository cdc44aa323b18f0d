#include "dpdk_net/pcap_file.hpp"

#include <array>
#include <cerrno>
#include <cstring>

#include "dpdk_net/packet.hpp"

namespace dpdk_net {

namespace {
constexpr std::uint32_t magic_us = 0xa1b2c3d4;
constexpr std::uint32_t magic_ns = 0xa1b23c4d;
constexpr std::size_t file_header_length = 24;
constexpr std::size_t record_header_length = 16;
/// Larger records are refused even if the file's snaplen claims more (a corrupt length field
/// must not make us trust gigabytes).
constexpr std::uint32_t max_record_length = 262144;

std::uint32_t bswap(std::uint32_t v) noexcept {
  return (v >> 24U) | ((v >> 8U) & 0xff00U) | ((v << 8U) & 0xff0000U) | (v << 24U);
}

void put_le32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) {
    p[i] = static_cast<std::byte>((v >> (8U * static_cast<unsigned>(i))) & 0xffU);
  }
}
void put_le16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v & 0xffU);
  p[1] = static_cast<std::byte>(v >> 8U);
}
}  // namespace

pcap_reader::pcap_reader(std::span<const std::byte> file) noexcept : file_(file) {
  if (file_.size() < file_header_length) {
    error_ = "not a pcap file: shorter than the 24-byte file header";
    return;
  }
  const std::uint32_t magic = u32(0);
  if (magic == magic_us || magic == magic_ns) {
    swapped_ = false;
  } else if (bswap(magic) == magic_us || bswap(magic) == magic_ns) {
    swapped_ = true;
  } else if (magic == 0x0a0d0d0a) {
    error_ = "pcapng files are not supported: convert with 'tshark -F pcap -r IN -w OUT'";
    return;
  } else {
    error_ = "not a pcap file: unknown magic number";
    return;
  }
  nanosecond_ = (swapped_ ? bswap(magic) : magic) == magic_ns;
  snaplen_ = u32(16);
  linktype_ = u32(20) & 0x0fffffffU;  // the upper bits carry FCS information
  offset_ = file_header_length;
}

std::uint32_t pcap_reader::u32(std::size_t at) const noexcept {
  const std::byte* p = file_.data() + at;
  const std::uint32_t le =
      static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8U) |
      (static_cast<std::uint32_t>(p[2]) << 16U) | (static_cast<std::uint32_t>(p[3]) << 24U);
  return swapped_ ? bswap(le) : le;
}

bool pcap_reader::next(pcap_record& out) noexcept {
  if (!error_.empty() || offset_ == file_.size()) {
    return false;
  }
  if (file_.size() - offset_ < record_header_length) {
    error_ = "record " + std::to_string(index_) + ": truncated record header at byte " +
             std::to_string(offset_);
    return false;
  }
  const std::uint32_t sec = u32(offset_);
  const std::uint32_t frac = u32(offset_ + 4);
  const std::uint32_t incl = u32(offset_ + 8);
  const std::uint32_t orig = u32(offset_ + 12);
  if (incl > max_record_length) {
    error_ = "record " + std::to_string(index_) + ": captured length " + std::to_string(incl) +
             " exceeds " + std::to_string(max_record_length);
    return false;
  }
  if (file_.size() - offset_ - record_header_length < incl) {
    error_ = "record " + std::to_string(index_) + ": truncated data (" + std::to_string(incl) +
             " bytes announced)";
    return false;
  }
  out.timestamp_ns = std::uint64_t{sec} * 1'000'000'000U +
                     (nanosecond_ ? std::uint64_t{frac} : std::uint64_t{frac} * 1000U);
  out.original_length = orig;
  out.data = file_.subspan(offset_ + record_header_length, incl);
  offset_ += record_header_length + incl;
  ++index_;
  return true;
}

bool read_file(const std::string& path, std::vector<std::byte>& out, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = "cannot open '" + path + "': " + std::strerror(errno);
    return false;
  }
  out.clear();
  std::array<std::byte, 65536> chunk{};
  std::size_t n = 0;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), f)) > 0) {
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    error = "error reading '" + path + "'";
    return false;
  }
  return true;
}

bool pcap_writer::open(const std::string& path, std::uint32_t linktype, std::uint32_t snaplen) {
  close();
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) {
    error_ = "cannot create '" + path + "': " + std::strerror(errno);
    return false;
  }
  snaplen_ = snaplen;
  std::array<std::byte, file_header_length> h{};
  put_le32(h.data(), magic_ns);
  put_le16(h.data() + 4, 2);  // version 2.4
  put_le16(h.data() + 6, 4);
  put_le32(h.data() + 16, snaplen);
  put_le32(h.data() + 20, linktype);
  if (std::fwrite(h.data(), 1, h.size(), file_) != h.size()) {
    error_ = "cannot write '" + path + "'";
    close();
    return false;
  }
  return true;
}

bool pcap_writer::write_header(std::uint64_t timestamp_ns, std::size_t length,
                               std::uint32_t captured) {
  if (file_ == nullptr) {
    error_ = "pcap_writer: not open";
    return false;
  }
  std::array<std::byte, record_header_length> h{};
  put_le32(h.data(), static_cast<std::uint32_t>(timestamp_ns / 1'000'000'000U));
  put_le32(h.data() + 4, static_cast<std::uint32_t>(timestamp_ns % 1'000'000'000U));
  put_le32(h.data() + 8, captured);
  put_le32(h.data() + 12, static_cast<std::uint32_t>(length));
  if (std::fwrite(h.data(), 1, h.size(), file_) != h.size()) {
    error_ = "pcap_writer: write failed";
    return false;
  }
  return true;
}

bool pcap_writer::write(std::uint64_t timestamp_ns, std::span<const std::byte> data) {
  const auto incl = static_cast<std::uint32_t>(std::min<std::size_t>(data.size(), snaplen_));
  if (!write_header(timestamp_ns, data.size(), incl)) {
    return false;
  }
  if (std::fwrite(data.data(), 1, incl, file_) != incl) {
    error_ = "pcap_writer: write failed";
    return false;
  }
  return true;
}

bool pcap_writer::write(std::uint64_t timestamp_ns, const packet& p) {
  // Segment by segment: no flattening copy, no allocation.
  auto left = static_cast<std::uint32_t>(std::min<std::size_t>(p.length(), snaplen_));
  if (!write_header(timestamp_ns, p.length(), left)) {
    return false;
  }
  for (const segment& s : p.segments()) {
    const std::uint32_t n = std::min(left, s.data_len);
    if (std::fwrite(s.data(), 1, n, file_) != n) {
      error_ = "pcap_writer: write failed";
      return false;
    }
    left -= n;
  }
  return true;
}

void pcap_writer::close() noexcept {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
}

}  // namespace dpdk_net
