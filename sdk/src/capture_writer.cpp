// pcapng_writer: section header, interface descriptions, enhanced packet blocks and interface
// statistics blocks (draft-ietf-opsawg-pcapng sections 4.1, 4.2, 4.3 and 4.6), little-endian,
// nanosecond timestamps (if_tsresol 9), nothing host- or time-dependent in the output.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/packet.hpp"

namespace dpdk_net {

namespace {
namespace pcapng {
constexpr std::uint32_t section_header = 0x0a0d0d0a;
constexpr std::uint32_t interface_description = 1;
constexpr std::uint32_t interface_statistics = 5;
constexpr std::uint32_t enhanced_packet = 6;
constexpr std::uint32_t byte_order_magic = 0x1a2b3c4d;
constexpr std::uint16_t opt_endofopt = 0;
constexpr std::uint16_t if_name = 2;
constexpr std::uint16_t if_description = 3;
constexpr std::uint16_t if_tsresol = 9;
constexpr std::uint16_t epb_flags = 2;
constexpr std::uint16_t isb_ifrecv = 4;
constexpr std::uint16_t isb_ifdrop = 5;
constexpr std::uint16_t isb_osdrop = 7;
/// EPB: type, length, interface, timestamp high/low, captured and original length.
constexpr std::size_t epb_header = 28;
/// EPB: the epb_flags option (4 + 4), opt_endofopt (4) and the trailing length (4); without a
/// known direction, only the trailing length.
constexpr std::size_t epb_trailer = 16;
constexpr std::size_t epb_trailer_length(frame_direction d) noexcept {
  return d == frame_direction::unknown ? 4 : epb_trailer;
}
/// ISB: type, length, interface, timestamp (20), three u64 options (36), end (4), length (4).
constexpr std::size_t isb_length = 64;
}  // namespace pcapng

/// Bytes of a frame an interface keeps (snaplen 0: all of it, as pcapng defines).
std::uint32_t kept_bytes(const capture_interface& i) noexcept {
  return i.snaplen == 0 ? UINT32_MAX : i.snaplen;
}

constexpr std::size_t pad4(std::size_t n) noexcept {
  return (n + 3U) & ~std::size_t{3};
}

/// A block assembled in memory, little-endian.
class block_builder {
 public:
  void u16(std::uint16_t v) {
    bytes_.push_back(static_cast<std::byte>(v & 0xffU));
    bytes_.push_back(static_cast<std::byte>(v >> 8U));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v & 0xffffU));
    u16(static_cast<std::uint16_t>(v >> 16U));
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v & 0xffffffffU));
    u32(static_cast<std::uint32_t>(v >> 32U));
  }
  void option(std::uint16_t code, const void* value, std::size_t length) {
    u16(code);
    u16(static_cast<std::uint16_t>(length));
    const auto* p = static_cast<const std::byte*>(value);
    bytes_.insert(bytes_.end(), p, p + length);
    bytes_.resize(pad4(bytes_.size()));
  }
  void option_u64(std::uint16_t code, std::uint64_t v) {
    u16(code);
    u16(8);
    u64(v);
  }
  /// Ends the options and fills in both length fields.
  std::vector<std::byte>& finish(bool with_options) {
    if (with_options) {
      u32(0);  // opt_endofopt, length 0
    }
    const auto total = static_cast<std::uint32_t>(bytes_.size() + 4);
    u32(total);
    for (int i = 0; i < 4; ++i) {
      bytes_[4 + static_cast<std::size_t>(i)] =
          static_cast<std::byte>((total >> (8U * static_cast<unsigned>(i))) & 0xffU);
    }
    return bytes_;
  }

 private:
  std::vector<std::byte> bytes_;
};

void put_le32(std::byte* p, std::uint32_t v) noexcept {
  for (unsigned i = 0; i < 4; ++i) {
    p[i] = static_cast<std::byte>((v >> (8U * i)) & 0xffU);
  }
}

std::vector<std::byte> section_header_block() {
  block_builder b;
  b.u32(pcapng::section_header);
  b.u32(0);
  b.u32(pcapng::byte_order_magic);
  b.u16(1);  // version 1.0
  b.u16(0);
  b.u64(~std::uint64_t{0});  // section length: not specified
  return b.finish(false);
}

std::vector<std::byte> interface_block(const capture_interface& i) {
  block_builder b;
  b.u32(pcapng::interface_description);
  b.u32(0);
  b.u16(static_cast<std::uint16_t>(i.linktype));
  b.u16(0);
  b.u32(i.snaplen);
  if (!i.name.empty()) {
    b.option(pcapng::if_name, i.name.data(), i.name.size());
  }
  if (!i.description.empty()) {
    b.option(pcapng::if_description, i.description.data(), i.description.size());
  }
  const std::uint8_t nanoseconds = 9;
  b.option(pcapng::if_tsresol, &nanoseconds, 1);
  return b.finish(true);
}
}  // namespace

bool pcapng_writer::open(const std::string& path, std::vector<capture_interface> interfaces,
                         const capture_limits& limits) {
  close(0);
  stats_ = {};
  error_.clear();
  if (interfaces.empty()) {
    error_ = "cannot capture to '" + path + "': no interfaces";
    return false;
  }
  if (limits.max_file_bytes != 0 && limits.max_file_bytes < 4096) {
    error_ = "cannot capture to '" + path + "': a file cap of " +
             std::to_string(limits.max_file_bytes) + " bytes is below the 4096-byte minimum";
    return false;
  }
  if (limits.max_files == 0) {
    error_ = "cannot capture to '" + path + "': max_files must be at least 1";
    return false;
  }
  for (const capture_interface& i : interfaces) {
    if (i.name.size() > 65000 || i.description.size() > 65000 || i.linktype > 0xffffU) {
      error_ = "cannot capture to '" + path + "': interface '" + i.name.substr(0, 64) +
               "' has an over-long name or a linktype above 65535";
      return false;
    }
  }
  interfaces_.clear();
  for (capture_interface& i : interfaces) {
    interfaces_.push_back(interface_state{std::move(i)});
  }
  limits_ = limits;
  path_ = path;
  file_index_ = 0;
  if (limits_.max_file_bytes != 0) {
    std::size_t fixed = section_header_block().size();
    for (const interface_state& s : interfaces_) {
      fixed += interface_block(s.description).size() + pcapng::isb_length;
    }
    if (fixed + pcapng::epb_header + pcapng::epb_trailer > limits_.max_file_bytes) {
      error_ = "cannot capture to '" + path + "': the file cap of " +
               std::to_string(limits_.max_file_bytes) + " bytes does not hold the " +
               std::to_string(fixed) + " bytes of headers and statistics";
      interfaces_.clear();
      return false;
    }
  }
  return open_file(path) && write_preamble();
}

bool pcapng_writer::open_file(const std::string& path) {
  current_path_ = path;
  file_bytes_ = 0;
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) {
    error_ = "cannot create '" + path + "': " + std::strerror(errno);
    return false;
  }
  ++stats_.files_opened;
  return true;
}

bool pcapng_writer::put(const void* data, std::size_t length) {
  if (length == 0) {
    return true;
  }
  if (std::fwrite(data, 1, length, file_) != length) {
    error_ = "cannot write '" + current_path_ + "': " + std::strerror(errno);
    return false;
  }
  file_bytes_ += length;
  stats_.bytes_written += length;
  return true;
}

bool pcapng_writer::write_preamble() {
  const std::vector<std::byte> shb = section_header_block();
  bool ok = put(shb.data(), shb.size());
  for (const interface_state& s : interfaces_) {
    const std::vector<std::byte> idb = interface_block(s.description);
    ok = ok && put(idb.data(), idb.size());
  }
  preamble_bytes_ = file_bytes_;
  if (!ok) {
    std::fclose(file_);
    file_ = nullptr;
  }
  return ok;
}

void pcapng_writer::set_drops(std::uint32_t interface, std::uint64_t if_dropped,
                              std::uint64_t os_dropped) noexcept {
  if (interface < interfaces_.size()) {
    interfaces_[interface].if_dropped = if_dropped;
    interfaces_[interface].os_dropped = os_dropped;
  }
}

void pcapng_writer::write_statistics(std::uint64_t timestamp_ns) noexcept {
  for (std::size_t i = 0; i < interfaces_.size(); ++i) {
    const interface_state& s = interfaces_[i];
    std::array<std::byte, pcapng::isb_length> b{};
    std::size_t at = 0;
    auto u16 = [&](std::uint16_t v) {
      b[at++] = static_cast<std::byte>(v & 0xffU);
      b[at++] = static_cast<std::byte>(v >> 8U);
    };
    auto u32 = [&](std::uint32_t v) {
      put_le32(b.data() + at, v);
      at += 4;
    };
    auto u64 = [&](std::uint64_t v) {
      u32(static_cast<std::uint32_t>(v & 0xffffffffU));
      u32(static_cast<std::uint32_t>(v >> 32U));
    };
    u32(pcapng::interface_statistics);
    u32(pcapng::isb_length);
    u32(static_cast<std::uint32_t>(i));
    u32(static_cast<std::uint32_t>(timestamp_ns >> 32U));
    u32(static_cast<std::uint32_t>(timestamp_ns & 0xffffffffU));
    for (const auto& [code, value] :
         {std::pair{pcapng::isb_ifrecv, s.received}, std::pair{pcapng::isb_ifdrop, s.if_dropped},
          std::pair{pcapng::isb_osdrop, s.os_dropped}}) {
      u16(code);
      u16(8);
      u64(value);
    }
    u16(pcapng::opt_endofopt);
    u16(0);
    u32(pcapng::isb_length);
    if (!put(b.data(), b.size())) {
      ++stats_.write_errors;
      return;
    }
  }
}

bool pcapng_writer::rotate(std::uint64_t timestamp_ns) {
  write_statistics(timestamp_ns);
  std::fclose(file_);
  file_ = nullptr;
  file_index_ = (file_index_ + 1) % limits_.max_files;
  const std::string next = file_index_ == 0 ? path_ : path_ + "." + std::to_string(file_index_);
  return open_file(next) && write_preamble();
}

bool pcapng_writer::write(std::uint32_t interface, std::uint64_t timestamp_ns,
                          frame_direction direction, std::span<const std::byte> data,
                          std::uint32_t original_length) {
  if (file_ == nullptr || interface >= interfaces_.size()) {
    error_ = file_ == nullptr ? "pcapng_writer: not open"
                              : "pcapng_writer: no interface " + std::to_string(interface);
    ++stats_.write_errors;
    return false;
  }
  const std::uint32_t length =
      original_length != 0 ? original_length : static_cast<std::uint32_t>(data.size());
  const auto captured = static_cast<std::uint32_t>(
      std::min<std::size_t>(data.size(), kept_bytes(interfaces_[interface].description)));
  if (!write_block_start(interface, timestamp_ns, direction, captured, length)) {
    return false;
  }
  if (!put(data.data(), captured)) {
    ++stats_.write_errors;
    return false;
  }
  return write_block_end(direction, captured, interface);
}

bool pcapng_writer::write(std::uint32_t interface, std::uint64_t timestamp_ns,
                          frame_direction direction, const packet& p) {
  if (file_ == nullptr || interface >= interfaces_.size()) {
    error_ = file_ == nullptr ? "pcapng_writer: not open"
                              : "pcapng_writer: no interface " + std::to_string(interface);
    ++stats_.write_errors;
    return false;
  }
  const auto captured = static_cast<std::uint32_t>(
      std::min<std::size_t>(p.length(), kept_bytes(interfaces_[interface].description)));
  if (!write_block_start(interface, timestamp_ns, direction, captured,
                         static_cast<std::uint32_t>(p.length()))) {
    return false;
  }
  std::uint32_t left = captured;
  for (const segment& s : p.segments()) {
    const std::uint32_t n = std::min(left, s.data_len);
    if (!put(s.data(), n)) {
      ++stats_.write_errors;
      return false;
    }
    left -= n;
  }
  return write_block_end(direction, captured, interface);
}

bool pcapng_writer::write_block_start(std::uint32_t interface, std::uint64_t timestamp_ns,
                                      frame_direction direction, std::uint32_t captured,
                                      std::uint32_t original) {
  const std::size_t block =
      pcapng::epb_header + pad4(captured) + pcapng::epb_trailer_length(direction);
  if (limits_.max_file_bytes != 0) {
    const std::size_t closing = interfaces_.size() * pcapng::isb_length;
    if (file_bytes_ + block + closing > limits_.max_file_bytes) {
      // A frame that cannot fit even in a fresh file is counted, without rotating: rotating
      // would truncate the oldest file of the ring for nothing.
      const bool never_fits = preamble_bytes_ + block + closing > limits_.max_file_bytes;
      if (never_fits || limits_.max_files == 1 || !rotate(timestamp_ns) ||
          file_bytes_ + block + closing > limits_.max_file_bytes) {
        if (file_ == nullptr) {
          ++stats_.write_errors;
        } else {
          ++stats_.frames_over_cap;
        }
        return false;
      }
    }
  }
  std::array<std::byte, pcapng::epb_header> h{};
  put_le32(h.data(), pcapng::enhanced_packet);
  put_le32(h.data() + 4, static_cast<std::uint32_t>(block));
  put_le32(h.data() + 8, interface);
  put_le32(h.data() + 12, static_cast<std::uint32_t>(timestamp_ns >> 32U));
  put_le32(h.data() + 16, static_cast<std::uint32_t>(timestamp_ns & 0xffffffffU));
  put_le32(h.data() + 20, captured);
  put_le32(h.data() + 24, original);
  if (!put(h.data(), h.size())) {
    ++stats_.write_errors;
    return false;
  }
  return true;
}

bool pcapng_writer::write_block_end(frame_direction direction, std::uint32_t captured,
                                    std::uint32_t interface) {
  std::array<std::byte, 3 + pcapng::epb_trailer> t{};
  const std::size_t padding = pad4(captured) - captured;
  std::byte* p = t.data() + padding;
  const std::size_t trailer = pcapng::epb_trailer_length(direction);
  if (direction != frame_direction::unknown) {
    put_le32(p, pcapng::epb_flags | (std::uint32_t{4} << 16U));
    put_le32(p + 4, static_cast<std::uint32_t>(direction));  // bits 0-1: inbound 1, outbound 2
    put_le32(p + 8, 0);                                      // opt_endofopt
    p += 12;
  }
  put_le32(p, static_cast<std::uint32_t>(pcapng::epb_header + pad4(captured) + trailer));
  if (!put(t.data(), padding + trailer)) {
    ++stats_.write_errors;
    return false;
  }
  ++stats_.frames_written;
  if (direction == frame_direction::inbound) {
    ++interfaces_[interface].received;
  }
  return true;
}

void pcapng_writer::close(std::uint64_t timestamp_ns) noexcept {
  if (file_ == nullptr) {
    return;
  }
  write_statistics(timestamp_ns);
  if (std::fclose(file_) != 0) {
    ++stats_.write_errors;
    error_ = "cannot close '" + current_path_ + "': " + std::strerror(errno);
  }
  file_ = nullptr;
}

}  // namespace dpdk_net
