// capture_reader against pcapng files from other sources: bytes scapy 2.5's PcapNgWriter wrote,
// and files assembled field by field from the format (draft-ietf-opsawg-pcapng: 3.1 general
// block structure, 4.1 section header, 4.2 interface description, 4.3 enhanced packet, 4.4 simple
// packet, 4.6 interface statistics), in both byte orders; then malformed files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "dpdk_net/capture_file.hpp"

namespace dpdk_net {
namespace {
namespace capture_reader_test {

std::vector<std::byte> hex(std::string_view h) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<std::byte>(std::stoul(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// scapy 2.5: PcapNgWriter, two UDP frames (198.18.0.1:1000 -> 198.18.0.2:2000 "hello", and back
// "world!!") at 1700000000.123456 and 1700000001.000001 (microsecond default resolution, no
// options).
constexpr std::string_view scapy_pcapng =
    "0a0d0d0a1c0000004d3c2b1a0100000000000000000000001c0000000100000014000000010000000000040014"
    "000000060000005000000000000000240a0600402220182f0000002f000000020000000002020000000001080045"
    "000021000100004011eea3c6120001c612000203e807d0000d242268656c6c6f0050000000060000005400000000"
    "000000240a060041822d183100000031000000020000000001020000000002080045000023000100004011eea1c6"
    "120002c612000107d003e8000ff8f2776f726c64212100000054000000";

/// Blocks written by hand in either byte order (the general block structure, section 3.1).
class spec_file {
 public:
  explicit spec_file(bool big_endian) : be_(big_endian) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<std::byte>(v)); }
  void u16(std::uint16_t v) {
    for (int i = 0; i < 2; ++i) {
      const unsigned shift = be_ ? 8U - 8U * unsigned(i) : 8U * unsigned(i);
      u8(static_cast<std::uint8_t>((v >> shift) & 0xffU));
    }
  }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      const unsigned shift = be_ ? 24U - 8U * unsigned(i) : 8U * unsigned(i);
      u8(static_cast<std::uint8_t>((v >> shift) & 0xffU));
    }
  }
  void u64(std::uint64_t v) {
    if (be_) {
      u32(std::uint32_t(v >> 32U));
      u32(std::uint32_t(v));
    } else {
      u32(std::uint32_t(v));
      u32(std::uint32_t(v >> 32U));
    }
  }
  void raw(std::string_view s) {
    for (char c : s) {
      u8(static_cast<std::uint8_t>(c));
    }
    while (out_.size() % 4 != 0) {
      u8(0);
    }
  }
  /// Opens a block: type and a length patched by end().
  void begin(std::uint32_t type) {
    start_ = out_.size();
    u32(type);
    u32(0);
  }
  void end() {
    const auto total = static_cast<std::uint32_t>(out_.size() - start_ + 4);
    u32(total);
    spec_file patch(be_);
    patch.u32(total);
    std::copy(patch.out_.begin(), patch.out_.end(), out_.begin() + std::ptrdiff_t(start_ + 4));
  }
  void section() {  // 4.1: byte-order magic, version 1.0, section length -1
    begin(0x0a0d0d0a);
    u32(0x1a2b3c4d);
    u16(1);
    u16(0);
    u64(~std::uint64_t{0});
    end();
  }
  void interface(std::uint16_t linktype, std::string_view name, int tsresol) {  // 4.2
    begin(1);
    u16(linktype);
    u16(0);
    u32(65535);
    u16(2);  // if_name
    u16(std::uint16_t(name.size()));
    raw(name);
    if (tsresol >= 0) {
      u16(9);  // if_tsresol
      u16(1);
      u8(std::uint8_t(tsresol));
      raw("");
    }
    u32(0);  // opt_endofopt
    end();
  }
  void enhanced(std::uint32_t interface, std::uint64_t ts, std::string_view data,
                std::uint32_t flags) {  // 4.3
    begin(6);
    u32(interface);
    u32(std::uint32_t(ts >> 32U));
    u32(std::uint32_t(ts));
    u32(std::uint32_t(data.size()));
    u32(std::uint32_t(data.size()) + 100);
    raw(data);
    u16(2);  // epb_flags
    u16(4);
    u32(flags);
    u32(0);
    end();
  }
  void simple(std::string_view data) {  // 4.4
    begin(3);
    u32(std::uint32_t(data.size()));
    raw(data);
    end();
  }
  void statistics(std::uint32_t interface, std::uint64_t ifdrop) {  // 4.6
    begin(5);
    u32(interface);
    u32(0);
    u32(0);
    u16(5);  // isb_ifdrop
    u16(8);
    u64(ifdrop);
    u32(0);
    end();
  }
  void unknown() {  // a custom block (0x00000BAD, 4.7): skipped
    begin(0x00000bad);
    u32(0x12345678);
    u32(0);
    end();
  }
  [[nodiscard]] const std::vector<std::byte>& bytes() const { return out_; }
  std::vector<std::byte>& mutable_bytes() { return out_; }

 private:
  bool be_;
  std::size_t start_ = 0;
  std::vector<std::byte> out_;
};

std::vector<capture_record> read_all(const std::vector<std::byte>& file, std::string& error) {
  capture_reader r(file);
  std::vector<capture_record> out;
  capture_record rec;
  while (r.next(rec)) {
    out.push_back(rec);
  }
  error = r.error();
  return out;
}

std::string text(std::span<const std::byte> d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

TEST(CaptureReader, ReadsScapysPcapng) {
  const auto file = hex(scapy_pcapng);
  std::string error;
  const auto recs = read_all(file, error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(recs.size(), 2U);
  EXPECT_EQ(recs[0].timestamp_ns, 1'700'000'000'123'456'000ULL);
  EXPECT_EQ(recs[1].timestamp_ns, 1'700'000'001'000'001'000ULL);
  EXPECT_EQ(recs[0].data.size(), 47U);
  EXPECT_EQ(recs[1].data.size(), 49U);
  EXPECT_EQ(recs[0].original_length, 47U);
  EXPECT_EQ(recs[0].linktype, pcap_linktype_ethernet);
  EXPECT_EQ(recs[0].direction, frame_direction::unknown);
  EXPECT_EQ(text(recs[0].data.last(5)), "hello");
  EXPECT_EQ(text(recs[1].data.last(7)), "world!!");
}

/// Section 1: a tsresol of 2^-10, an unknown block, EPB (inbound), SPB, ISB; section 2 (other
/// byte order is not allowed inside one file by us? it is: each section has its own) with two
/// interfaces, the second at the default microseconds.
spec_file two_sections(bool big_endian) {
  spec_file f(big_endian);
  f.section();
  f.interface(1, "eth0", 0x80 | 10);
  f.unknown();
  f.enhanced(0, 3 * 1024 + 512, "inbound-frame", 1);  // 3.5 s
  f.simple("simple-frame");
  f.statistics(0, 4);  // isb_ifdrop is a running count: the later 12 replaces it
  f.statistics(0, 12);
  f.section();
  f.interface(1, "q0", 3);     // milliseconds
  f.interface(147, "q1", -1);  // a non-Ethernet link type, microseconds
  f.enhanced(1, 2'000'001, "outbound", 2);
  f.enhanced(0, 1'500, "x", 0);
  f.statistics(1, 5);
  return f;
}

TEST(CaptureReader, ReadsSpecFilesInBothByteOrders) {
  for (bool be : {false, true}) {
    SCOPED_TRACE(be ? "big-endian" : "little-endian");
    const spec_file f = two_sections(be);
    capture_reader r(f.bytes());
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_TRUE(r.is_pcapng());
    capture_record rec;
    ASSERT_TRUE(r.next(rec)) << r.error();
    EXPECT_EQ(text(rec.data), "inbound-frame");
    EXPECT_EQ(rec.original_length, 113U);
    EXPECT_EQ(rec.timestamp_ns, 3'500'000'000ULL);
    EXPECT_EQ(rec.direction, frame_direction::inbound);
    ASSERT_EQ(r.interfaces().size(), 1U);
    EXPECT_EQ(r.interfaces()[0].name, "eth0");
    ASSERT_TRUE(r.next(rec)) << r.error();
    EXPECT_EQ(text(rec.data), "simple-frame");
    EXPECT_EQ(rec.timestamp_ns, 0U);
    EXPECT_EQ(rec.interface, 0U);
    ASSERT_TRUE(r.next(rec)) << r.error();
    EXPECT_EQ(r.interfaces().size(), 2U);  // the second section's own interfaces
    EXPECT_EQ(rec.interface, 1U);
    EXPECT_EQ(rec.linktype, 147U);  // reported, not refused
    EXPECT_EQ(rec.timestamp_ns, 2'000'001'000ULL);
    EXPECT_EQ(rec.direction, frame_direction::outbound);
    EXPECT_EQ(text(rec.data), "outbound");
    ASSERT_TRUE(r.next(rec)) << r.error();
    EXPECT_EQ(rec.timestamp_ns, 1'500'000'000ULL);
    EXPECT_EQ(rec.direction, frame_direction::unknown);
    EXPECT_FALSE(r.next(rec));
    EXPECT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.interface_drops(0), 12U);
    EXPECT_EQ(r.interface_drops(1), 5U);
  }
}

TEST(CaptureReader, ReadsClassicPcapToo) {
  // pcap-savefile(5): microseconds, little-endian, one 4-byte record at 2.000003 s.
  const auto file =
      hex("d4c3b2a1020004000000000000000000ffff000001000000"
          "0200000003000000040000000400000061626364");
  std::string error;
  const auto recs = read_all(file, error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(recs.size(), 1U);
  EXPECT_EQ(recs[0].timestamp_ns, 2'000'003'000ULL);
  EXPECT_EQ(text(recs[0].data), "abcd");
  capture_reader r(file);
  EXPECT_FALSE(r.is_pcapng());
  ASSERT_EQ(r.interfaces().size(), 1U);
  EXPECT_EQ(r.interfaces()[0].snaplen, 65535U);
}

TEST(CaptureReader, RefusesWhatIsNotACapture) {
  std::string error;
  EXPECT_TRUE(read_all({}, error).empty());
  EXPECT_NE(error.find("not a pcap or pcapng file"), std::string::npos) << error;
  const auto junk = hex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
  EXPECT_TRUE(read_all(junk, error).empty());
  EXPECT_NE(error.find("not a pcap or pcapng file"), std::string::npos) << error;
  spec_file f(false);
  f.section();
  f.mutable_bytes()[8] = std::byte{0x99};  // byte-order magic damaged
  EXPECT_TRUE(read_all(f.bytes(), error).empty());
  EXPECT_NE(error.find("byte-order magic"), std::string::npos) << error;
}

TEST(CaptureReader, TruncationKeepsTheFramesBeforeAndSaysWhere) {
  const spec_file f = two_sections(false);
  const std::vector<std::byte> whole = f.bytes();
  std::string error;
  const std::size_t all = read_all(whole, error).size();
  ASSERT_EQ(all, 4U);
  std::vector<std::size_t> boundaries;  // where whole blocks end (little-endian lengths)
  for (std::size_t at = 0; at < whole.size();) {
    at += std::to_integer<std::size_t>(whole[at + 4]) |
          (std::to_integer<std::size_t>(whole[at + 5]) << 8U);
    boundaries.push_back(at);
  }
  std::size_t previous = all;
  for (std::size_t cut = 1; cut < whole.size(); ++cut) {
    const std::vector<std::byte> part(whole.begin(), whole.end() - std::ptrdiff_t(cut));
    const auto recs = read_all(part, error);
    EXPECT_LE(recs.size(), previous) << cut;  // the shorter the file, the fewer frames
    previous = recs.size();
    if (std::find(boundaries.begin(), boundaries.end(), part.size()) != boundaries.end()) {
      EXPECT_EQ(error, "") << cut;  // cut between blocks: a shorter, valid file
    } else if (part.size() < 4) {
      EXPECT_NE(error.find("not a pcap or pcapng file"), std::string::npos) << cut << error;
    } else {
      EXPECT_NE(error.find("truncated at byte " + std::to_string(part.size())), std::string::npos)
          << cut << ": " << error;
    }
  }
  EXPECT_EQ(previous, 0U);
  // read_capture: the same through a file.
  const auto path = std::filesystem::temp_directory_path() /
                    ("capture_reader_cut_" + std::to_string(::getpid()) + ".pcapng");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(whole.data()),
              std::streamsize(whole.size() - 60));  // into the last frame
  }
  std::vector<std::byte> storage;
  std::vector<capture_record> records;
  EXPECT_FALSE(read_capture(path.string(), storage, records, error));
  EXPECT_EQ(records.size(), 3U);
  EXPECT_NE(error.find("truncated at byte"), std::string::npos) << error;
  EXPECT_NE(error.find(path.string()), std::string::npos) << error;
  EXPECT_NE(error.find("after 3 frame"), std::string::npos) << error;
  EXPECT_FALSE(read_capture("/nonexistent/x.pcapng", storage, records, error));
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
}

/// The byte offset of the first enhanced packet block of a little-endian file.
std::size_t first_epb(const std::vector<std::byte>& b) {
  std::size_t at = 0;
  while (at + 8 <= b.size() && std::to_integer<int>(b[at]) != 6) {
    at += std::to_integer<std::size_t>(b[at + 4]) | (std::to_integer<std::size_t>(b[at + 5]) << 8U);
  }
  return at;
}

void put_le32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
  for (unsigned i = 0; i < 4; ++i) {
    b[at + i] = static_cast<std::byte>((v >> (8U * i)) & 0xffU);
  }
}

TEST(CaptureReader, RefusesDamagedBlocksWithTheirPlace) {
  spec_file f(false);
  f.section();
  f.interface(1, "eth0", 9);
  f.enhanced(0, 1, "abcdefgh", 1);
  const std::vector<std::byte> good = f.bytes();
  const std::size_t epb = first_epb(good);
  std::string error;
  ASSERT_EQ(read_all(good, error).size(), 1U) << error;
  const std::string where = "at byte " + std::to_string(epb);
  struct damage {
    std::size_t offset;
    std::uint32_t value;
    const char* message;
  };
  for (const damage& d :
       {damage{4, 10, "block length 10 is invalid"}, damage{4, 50, "block length 50 is invalid"},
        damage{4, 0x100000, "truncated at byte"}, damage{8, 1, "on interface 1"},
        damage{20, 500, "captured length 500 exceeds the block"}}) {
    std::vector<std::byte> bad = good;
    put_le32(bad, epb + d.offset, d.value);
    const auto recs = read_all(bad, error);
    EXPECT_TRUE(recs.empty()) << d.message;
    EXPECT_NE(error.find(d.message), std::string::npos) << error;
    EXPECT_NE(error.find(where), std::string::npos) << error;
  }
  std::vector<std::byte> bad = good;
  put_le32(bad, bad.size() - 4, 44);  // trailing length differs from the leading one
  EXPECT_TRUE(read_all(bad, error).empty());
  EXPECT_NE(error.find("trailing block length 44"), std::string::npos) << error;
}

}  // namespace capture_reader_test
}  // namespace
}  // namespace dpdk_net
