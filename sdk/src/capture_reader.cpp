// capture_reader: classic pcap (through pcap_reader) and pcapng (draft-ietf-opsawg-pcapng:
// section header 4.1, interface description 4.2, enhanced packet 4.3, simple packet 4.4,
// interface statistics 4.6), bounds-checked, either byte order, several sections.
#include <algorithm>
#include <cstring>

#include "dpdk_net/capture_file.hpp"

namespace dpdk_net {

namespace {
constexpr std::uint32_t section_header = 0x0a0d0d0a;
constexpr std::uint32_t interface_description = 1;
constexpr std::uint32_t simple_packet = 3;
constexpr std::uint32_t interface_statistics = 5;
constexpr std::uint32_t enhanced_packet = 6;
constexpr std::uint32_t byte_order_magic = 0x1a2b3c4d;
constexpr std::uint32_t byte_order_magic_swapped = 0x4d3c2b1a;
/// Frames above this are refused whatever the file says (a corrupt length must not make us trust
/// gigabytes); the same bound as the classic reader's.
constexpr std::uint32_t max_frame = 262144;

constexpr std::size_t pad4(std::size_t n) noexcept {
  return (n + 3U) & ~std::size_t{3};
}

std::uint32_t bswap32(std::uint32_t v) noexcept {
  return (v >> 24U) | ((v >> 8U) & 0xff00U) | ((v << 8U) & 0xff0000U) | (v << 24U);
}

std::uint32_t raw_le32(std::span<const std::byte> f, std::size_t at) noexcept {
  return static_cast<std::uint32_t>(f[at]) | (static_cast<std::uint32_t>(f[at + 1]) << 8U) |
         (static_cast<std::uint32_t>(f[at + 2]) << 16U) |
         (static_cast<std::uint32_t>(f[at + 3]) << 24U);
}

/// Timestamp units to nanoseconds without overflow for any resolution we accept.
std::uint64_t to_ns(std::uint64_t units, std::uint64_t per_second) noexcept {
  if (per_second == 1'000'000'000U) {
    return units;
  }
  __extension__ using u128 = unsigned __int128;
  return static_cast<std::uint64_t>(static_cast<u128>(units) * 1'000'000'000U / per_second);
}
}  // namespace

capture_reader::capture_reader(std::span<const std::byte> file) : file_(file), classic_(file) {
  if (file_.empty()) {
    error_ = "not a pcap or pcapng file: the file is empty";
    return;
  }
  if (file_.size() >= 4 && raw_le32(file_, 0) == section_header) {
    pcapng_ = true;
    return;  // next() reads the section header like any other block
  }
  if (!classic_.ok()) {
    const std::uint32_t magic = file_.size() >= 4 ? raw_le32(file_, 0) : 0;
    const bool classic_magic = magic == 0xa1b2c3d4 || magic == 0xa1b23c4d ||
                               bswap32(magic) == 0xa1b2c3d4 || bswap32(magic) == 0xa1b23c4d;
    error_ = classic_magic ? classic_.error() : "not a pcap or pcapng file: unknown magic number";
    return;
  }
  interfaces_.push_back(capture_interface{"", "", classic_.linktype(), classic_.snaplen()});
}

std::uint16_t capture_reader::u16(std::size_t at) const noexcept {
  const auto le = static_cast<std::uint16_t>(static_cast<unsigned>(file_[at]) |
                                             (static_cast<unsigned>(file_[at + 1]) << 8U));
  return swapped_ ? static_cast<std::uint16_t>((le >> 8U) | (le << 8U)) : le;
}

std::uint32_t capture_reader::u32(std::size_t at) const noexcept {
  const std::uint32_t le = raw_le32(file_, at);
  return swapped_ ? bswap32(le) : le;
}

std::uint64_t capture_reader::u64(std::size_t at) const noexcept {
  // A 64-bit option value is one integer in the section's byte order.
  const std::uint64_t a = u32(at);
  const std::uint64_t b = u32(at + 4);
  return swapped_ ? (a << 32U) | b : (b << 32U) | a;
}

std::uint64_t capture_reader::interface_drops(std::uint32_t interface) const noexcept {
  return (interface < drops_.size() ? drops_[interface] : 0) +
         (interface < section_drops_.size() ? section_drops_[interface] : 0);
}

bool capture_reader::fail(const std::string& what) {
  error_ =
      "block " + std::to_string(block_index_) + " at byte " + std::to_string(offset_) + ": " + what;
  return false;
}

bool capture_reader::next(capture_record& out) {
  if (!error_.empty()) {
    return false;
  }
  if (pcapng_) {
    return next_pcapng(out);
  }
  pcap_record r;
  if (!classic_.next(r)) {
    if (!classic_.ok()) {
      error_ = classic_.error();
    }
    return false;
  }
  out.timestamp_ns = r.timestamp_ns;
  out.interface = 0;
  out.linktype = classic_.linktype();
  out.original_length = r.original_length;
  out.direction = frame_direction::unknown;
  out.data = r.data;
  return true;
}

bool capture_reader::read_section_header() {
  const std::uint32_t magic = raw_le32(file_, offset_ + 8);
  if (magic == byte_order_magic) {
    swapped_ = false;
  } else if (magic == byte_order_magic_swapped) {
    swapped_ = true;
  } else {
    return fail("section header with an unknown byte-order magic");
  }
  return true;
}

bool capture_reader::read_options(std::size_t from, std::size_t end, option_visitor visit) {
  std::size_t at = from;
  while (end - at >= 4) {
    const std::uint16_t code = u16(at);
    const std::uint16_t length = u16(at + 2);
    if (code == 0) {
      break;
    }
    if (end - at - 4 < length) {
      return fail("option " + std::to_string(code) + " runs past the end of its block");
    }
    if (!(this->*visit)(code, at + 4, length)) {
      return false;
    }
    at += 4 + pad4(length);
    if (at > end) {
      break;  // the last option's padding is cut short: tolerated
    }
  }
  return true;
}

bool capture_reader::interface_option(std::uint16_t code, std::size_t at, std::uint16_t length) {
  capture_interface& i = interfaces_.back();
  const auto text = [&] {
    std::string s(reinterpret_cast<const char*>(file_.data() + at), length);
    s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
    return s;
  };
  if (code == 2) {
    i.name = text();
  } else if (code == 3) {
    i.description = text();
  } else if (code == 9 && length >= 1) {
    const auto v = static_cast<std::uint8_t>(file_[at]);
    const unsigned exponent = v & 0x7fU;
    if (((v & 0x80U) != 0 && exponent > 63) || ((v & 0x80U) == 0 && exponent > 19)) {
      return fail("interface " + std::to_string(interfaces_.size() - 1) +
                  ": unsupported timestamp resolution (if_tsresol " + std::to_string(v) + ")");
    }
    std::uint64_t units = 1;
    for (unsigned k = 0; k < exponent; ++k) {
      units *= (v & 0x80U) != 0 ? 2U : 10U;
    }
    reader_interfaces_.back().units_per_second = units;
  }
  return true;
}

bool capture_reader::packet_option(std::uint16_t code, std::size_t at, std::uint16_t length) {
  if (code == 2 && length >= 4) {  // epb_flags: bits 0-1 are the direction
    option_flags_ = u32(at);
  }
  return true;
}

bool capture_reader::statistics_option(std::uint16_t code, std::size_t at, std::uint16_t length) {
  if (code == 5 && length >= 8) {  // isb_ifdrop
    option_flags_ = 1;
    option_value_ = u64(at);
  }
  return true;
}

bool capture_reader::next_pcapng(capture_record& out) {
  while (offset_ != file_.size()) {
    const std::size_t left = file_.size() - offset_;
    if (left < 12) {
      return fail("truncated at byte " + std::to_string(file_.size()) +
                  " (a block header is 12 bytes)");
    }
    // A section header reads the same in both byte orders; it sets the order of what follows.
    std::uint32_t type = raw_le32(file_, offset_);
    if (type == section_header) {
      if (!read_section_header()) {
        return false;
      }
    } else {
      type = u32(offset_);
    }
    if (type != section_header && block_index_ == 0) {
      return fail("not a pcapng file: it does not start with a section header");
    }
    const std::uint32_t length = u32(offset_ + 4);
    if (length < 12 || length % 4 != 0) {
      return fail("block length " + std::to_string(length) +
                  " is invalid (at least 12 and a multiple of 4)");
    }
    if (length > left) {
      return fail("truncated at byte " + std::to_string(file_.size()) + " (the block announces " +
                  std::to_string(length) + " bytes, " + std::to_string(left) + " remain)");
    }
    if (u32(offset_ + length - 4) != length) {
      return fail("trailing block length " + std::to_string(u32(offset_ + length - 4)) +
                  " does not match the leading " + std::to_string(length));
    }
    const std::size_t body = offset_ + 8;
    const std::size_t end = offset_ + length - 4;
    bool have_frame = false;
    if (type == section_header) {
      if (length < 28) {
        return fail("section header shorter than 28 bytes");
      }
      if (u16(body + 4) != 1) {
        return fail("unsupported pcapng major version " + std::to_string(u16(body + 4)));
      }
      interfaces_.clear();
      reader_interfaces_.clear();
      // isb_ifdrop counts from the start of its interface's capture, so a section's latest value
      // is its total: fold it into the earlier sections' sum.
      for (std::size_t i = 0; i < section_drops_.size(); ++i) {
        if (drops_.size() <= i) {
          drops_.resize(i + 1);
        }
        drops_[i] += section_drops_[i];
      }
      section_drops_.clear();
    } else if (type == interface_description) {
      if (length < 20) {
        return fail("interface description shorter than 20 bytes");
      }
      interfaces_.push_back(capture_interface{"", "", u16(body), u32(body + 4)});
      reader_interfaces_.push_back(reader_interface{});
      if (!read_options(body + 8, end, &capture_reader::interface_option)) {
        return false;
      }
    } else if (type == enhanced_packet) {
      if (length < 32) {
        return fail("enhanced packet block shorter than 32 bytes");
      }
      const std::uint32_t interface = u32(body);
      if (interface >= interfaces_.size()) {
        return fail("packet on interface " + std::to_string(interface) + ", but the section has " +
                    std::to_string(interfaces_.size()) + " interface(s)");
      }
      const std::uint32_t captured = u32(body + 12);
      if (captured > end - (body + 20) || captured > max_frame) {
        return fail("captured length " + std::to_string(captured) + " exceeds the block");
      }
      const std::uint64_t ts = (std::uint64_t{u32(body + 4)} << 32U) | u32(body + 8);
      option_flags_ = 0;
      if (!read_options(body + 20 + pad4(captured), end, &capture_reader::packet_option)) {
        return false;
      }
      out.timestamp_ns = to_ns(ts, reader_interfaces_[interface].units_per_second);
      out.interface = interface;
      out.linktype = interfaces_[interface].linktype;
      out.original_length = u32(body + 16);
      const std::uint32_t d = option_flags_ & 3U;
      out.direction = d == 1 ? frame_direction::inbound
                             : (d == 2 ? frame_direction::outbound : frame_direction::unknown);
      out.data = file_.subspan(body + 20, captured);
      have_frame = true;
    } else if (type == simple_packet) {
      if (length < 16) {
        return fail("simple packet block shorter than 16 bytes");
      }
      if (interfaces_.empty()) {
        return fail("simple packet block before any interface description");
      }
      const std::uint32_t original = u32(body);
      std::size_t captured = std::min<std::size_t>(original, end - (body + 4));
      if (interfaces_[0].snaplen != 0) {
        captured = std::min<std::size_t>(captured, interfaces_[0].snaplen);
      }
      if (captured > max_frame) {
        return fail("captured length " + std::to_string(captured) + " exceeds " +
                    std::to_string(max_frame));
      }
      out = capture_record{};
      out.linktype = interfaces_[0].linktype;
      out.original_length = original;
      out.data = file_.subspan(body + 4, captured);
      have_frame = true;
    } else if (type == interface_statistics) {
      if (length < 24) {
        return fail("interface statistics block shorter than 24 bytes");
      }
      const std::uint32_t interface = u32(body);
      option_flags_ = 0;
      option_value_ = 0;
      if (!read_options(body + 12, end, &capture_reader::statistics_option)) {
        return false;
      }
      if (option_flags_ != 0 && interface < interfaces_.size()) {
        if (section_drops_.size() <= interface) {
          section_drops_.resize(std::size_t{interface} + 1);
        }
        section_drops_[interface] = option_value_;  // cumulative: the latest replaces
      }
    }  // any other block type: skipped
    offset_ += length;
    ++block_index_;
    if (have_frame) {
      return true;
    }
  }
  return false;
}

bool read_capture(const std::string& path, std::vector<std::byte>& storage,
                  std::vector<capture_record>& records, std::string& error) {
  records.clear();
  if (!read_file(path, storage, error)) {
    return false;
  }
  capture_reader reader(storage);
  capture_record r;
  while (reader.next(r)) {
    records.push_back(r);
  }
  if (!reader.ok()) {
    error = "'" + path + "': " + reader.error();
    if (!records.empty()) {
      error += " (stopped after " + std::to_string(records.size()) + " frame(s))";
    }
    return false;
  }
  return true;
}

}  // namespace dpdk_net
