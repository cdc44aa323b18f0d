#include "dpdk_net/mac_address.hpp"

#include <cstdio>

namespace dpdk_net {

namespace {
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}
}  // namespace

std::optional<mac_address> mac_address::parse(std::string_view text) noexcept {
  // Exactly six two-digit groups with one consistent separator: 17 characters.
  if (text.size() != 17) {
    return std::nullopt;
  }
  const char sep = text[2];
  if (sep != ':' && sep != '-') {
    return std::nullopt;
  }
  mac_address mac;
  for (std::size_t i = 0; i < 6; ++i) {
    const std::size_t at = i * 3;
    const int hi = hex_value(text[at]);
    const int lo = hex_value(text[at + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[at + 2] != sep)) {
      return std::nullopt;
    }
    mac.bytes[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return mac;
}

std::string mac_address::to_string() const {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return text;
}

}  // namespace dpdk_net
