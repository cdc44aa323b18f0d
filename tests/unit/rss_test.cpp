#include "dpdk_net/rss.hpp"

#include <gtest/gtest.h>

namespace dpdk_net {
namespace {
namespace rss_test {

using wire::ipv4_address;

// The RSS verification suite of the Intel 82599 datasheet (section 7.1.2.8.3), the same values
// as Microsoft's "Verifying the RSS Hash Calculation", with the default key.
struct vector {
  ipv4_address dst, src;
  std::uint16_t dst_port, src_port;
  std::uint32_t hash_ip, hash_ip_l4;
};
const vector vectors[] = {
    {ipv4_address::from_octets(161, 142, 100, 80), ipv4_address::from_octets(66, 9, 149, 187), 1766,
     2794, 0x323e8fc2, 0x51ccc178},
    {ipv4_address::from_octets(65, 69, 140, 83), ipv4_address::from_octets(199, 92, 111, 2), 4739,
     14230, 0xd718262a, 0xc626b0ea},
    {ipv4_address::from_octets(12, 22, 207, 184), ipv4_address::from_octets(24, 19, 198, 95), 38024,
     12898, 0xd2d0a5de, 0x5c2b394a},
    {ipv4_address::from_octets(209, 142, 163, 6), ipv4_address::from_octets(38, 27, 205, 30), 2217,
     48228, 0x82989176, 0xafc7327f},
    {ipv4_address::from_octets(202, 188, 127, 2), ipv4_address::from_octets(153, 39, 163, 191),
     1303, 44251, 0x5d1809c5, 0x10e828a2},
};

TEST(Rss, PublishedToeplitzVectors) {
  for (const vector& v : vectors) {
    EXPECT_EQ(rss_hash_ipv4(default_rss_key, v.src, v.dst), v.hash_ip) << v.src.to_string();
    EXPECT_EQ(rss_hash_ipv4_l4(default_rss_key, v.src, v.dst, v.src_port, v.dst_port), v.hash_ip_l4)
        << v.src.to_string();
  }
}

TEST(Rss, ShortKeyGivesZeroInsteadOfReadingPastIt) {
  const std::array<std::uint8_t, 12> input{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_EQ(toeplitz_hash(std::span(default_rss_key).first(15), input), 0U);
  EXPECT_NE(toeplitz_hash(std::span(default_rss_key).first(16), input), 0U);
}

}  // namespace rss_test
}  // namespace
}  // namespace dpdk_net
