#include "dpdk_net/pcap_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "dpdk_net/buffer_pool.hpp"
#include "wire/golden.hpp"

namespace dpdk_net {
namespace {
namespace pcap_file_test {

// A 2-record pcap written field by field from the format (pcap-savefile(5)): either timestamp
// resolution, either byte order; times 1.5 s and 2.000001 s, captured 17 of 27 bytes.
// (Files written by scapy and tcpdump are read in pytests/test_decode.py.)
std::vector<std::byte> tiny_pcap(bool nanosecond, bool big_endian) {
  std::vector<std::byte> out;
  auto put32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      const unsigned shift =
          big_endian ? 24U - 8U * static_cast<unsigned>(i) : 8U * static_cast<unsigned>(i);
      out.push_back(static_cast<std::byte>((v >> shift) & 0xffU));
    }
  };
  auto put16 = [&](std::uint16_t v) {
    if (big_endian) {
      out.push_back(static_cast<std::byte>(v >> 8U));
      out.push_back(static_cast<std::byte>(v & 0xffU));
    } else {
      out.push_back(static_cast<std::byte>(v & 0xffU));
      out.push_back(static_cast<std::byte>(v >> 8U));
    }
  };
  put32(nanosecond ? 0xa1b23c4d : 0xa1b2c3d4);
  put16(2);
  put16(4);
  put32(0);
  put32(0);
  put32(65535);
  put32(1);
  const auto frame = test::from_hex("0200000000010200000000020088b56162");
  const std::uint32_t fracs[2] = {nanosecond ? 500000000U : 500000U, nanosecond ? 1000U : 1U};
  const std::uint32_t secs[2] = {1, 2};
  for (int r = 0; r < 2; ++r) {
    put32(secs[r]);
    put32(fracs[r]);
    put32(static_cast<std::uint32_t>(frame.size()));
    put32(static_cast<std::uint32_t>(frame.size()) + 10);  // original was longer (snaplen)
    out.insert(out.end(), frame.begin(), frame.end());
  }
  return out;
}

TEST(PcapReader, ReadsAllFourVariants) {
  for (bool ns : {false, true}) {
    for (bool be : {false, true}) {
      const auto file = tiny_pcap(ns, be);
      pcap_reader r(file);
      ASSERT_TRUE(r.ok()) << r.error();
      EXPECT_EQ(r.linktype(), pcap_linktype_ethernet);
      EXPECT_EQ(r.snaplen(), 65535U);
      EXPECT_EQ(r.nanosecond(), ns);
      pcap_record rec;
      ASSERT_TRUE(r.next(rec));
      EXPECT_EQ(rec.timestamp_ns, 1'500'000'000U);
      EXPECT_EQ(rec.data.size(), 17U);
      EXPECT_EQ(rec.original_length, 27U);
      ASSERT_TRUE(r.next(rec));
      EXPECT_EQ(rec.timestamp_ns, 2'000'001'000U);
      EXPECT_FALSE(r.next(rec));
      EXPECT_TRUE(r.ok());
    }
  }
}

TEST(PcapReader, RefusesWhatIsNotAPcapAndStopsAtCorruptRecords) {
  EXPECT_FALSE(pcap_reader(std::span<const std::byte>()).ok());
  auto file = tiny_pcap(false, false);
  auto ng = file;
  ng[0] = std::byte{0x0a};
  ng[1] = std::byte{0x0d};
  ng[2] = std::byte{0x0d};
  ng[3] = std::byte{0x0a};
  pcap_reader png(ng);
  EXPECT_NE(png.error().find("pcapng"), std::string::npos);
  auto junk = file;
  junk[0] = std::byte{0x42};
  EXPECT_NE(pcap_reader(junk).error().find("unknown magic"), std::string::npos);

  for (std::size_t cut = 25; cut < file.size(); ++cut) {
    const std::vector<std::byte> partial(file.begin(),
                                         file.begin() + static_cast<std::ptrdiff_t>(cut));
    pcap_reader r(partial);
    pcap_record rec;
    std::size_t n = 0;
    while (r.next(rec)) {
      ++n;
    }
    const std::size_t one = 24 + 16 + 17;
    EXPECT_EQ(n, cut >= one ? 1U : 0U) << cut;
    EXPECT_EQ(r.ok(), cut == 24 || cut == one) << cut;  // clean only at record boundaries
  }
  auto huge = file;
  huge[24 + 8 + 3] = std::byte{0x7f};  // captured length ~2 GiB
  pcap_reader h(huge);
  pcap_record rec;
  EXPECT_FALSE(h.next(rec));
  EXPECT_NE(h.error().find("exceeds"), std::string::npos);
}

TEST(PcapWriter, WritesWhatTheReaderReadsBackIncludingChainedPackets) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("dpdk_net_pcap_test_" + std::to_string(::getpid()) + ".pcap");
  packet_pool_config c;
  c.count = 4;
  packet_pool pool(c);
  packet p = pool.alloc();
  std::memset(p.append(14), 0xab, 14);
  packet tail = pool.alloc();
  std::memset(tail.append(50), 0xcd, 50);
  ASSERT_TRUE(p.chain(std::move(tail)));
  {
    pcap_writer w;
    ASSERT_TRUE(w.open(path.string())) << w.error();
    const auto f = test::from_hex(test::golden::udp);
    ASSERT_TRUE(w.write(123'456'789'012U, f));
    ASSERT_TRUE(w.write(123'456'789'013U, p));
  }
  std::vector<std::byte> bytes;
  std::string error;
  ASSERT_TRUE(read_file(path.string(), bytes, error)) << error;
  std::filesystem::remove(path);
  pcap_reader r(bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.nanosecond());
  pcap_record rec;
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(rec.timestamp_ns, 123'456'789'012U);
  EXPECT_EQ(rec.data.size(), 54U);
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(rec.timestamp_ns, 123'456'789'013U);
  ASSERT_EQ(rec.data.size(), 64U);
  EXPECT_EQ(rec.data[13], std::byte{0xab});
  EXPECT_EQ(rec.data[14], std::byte{0xcd});
  EXPECT_FALSE(r.next(rec));
  pcap_writer bad;
  EXPECT_FALSE(bad.open("/nonexistent-dir/x.pcap"));
  EXPECT_NE(bad.error().find("cannot create"), std::string::npos);
}

}  // namespace pcap_file_test
}  // namespace
}  // namespace dpdk_net
