#include "dpdk_net/mac_address.hpp"

#include <gtest/gtest.h>

namespace dpdk_net {
namespace {
namespace mac_address_test {

TEST(MacAddress, ParsesAndFormats) {
  auto mac = mac_address::parse("02:1A:bc:00:ff:09");
  ASSERT_TRUE(mac);
  EXPECT_EQ(mac->bytes, (std::array<std::uint8_t, 6>{0x02, 0x1a, 0xbc, 0x00, 0xff, 0x09}));
  EXPECT_EQ(mac->to_string(), "02:1a:bc:00:ff:09");
  EXPECT_EQ(mac_address::parse("02-1a-bc-00-ff-09"), mac);
}

TEST(MacAddress, RejectsMalformedText) {
  for (const char* bad : {"", "02:1a:bc:00:ff", "02:1a:bc:00:ff:0g", "02:1a-bc:00:ff:09",
                          "02:1a:bc:00:ff:091", "021a:bc:00:ff:09:", "02.1a.bc.00.ff.09"}) {
    EXPECT_FALSE(mac_address::parse(bad)) << bad;
  }
}

TEST(MacAddress, Classifies) {
  EXPECT_TRUE(mac_address::broadcast().is_broadcast());
  EXPECT_TRUE(mac_address::broadcast().is_multicast());
  EXPECT_TRUE(mac_address::parse("01:00:5e:00:00:01")->is_multicast());
  EXPECT_FALSE(mac_address::parse("02:00:5e:00:00:01")->is_multicast());
  EXPECT_TRUE(mac_address{}.is_zero());
}

}  // namespace mac_address_test
}  // namespace
}  // namespace dpdk_net
