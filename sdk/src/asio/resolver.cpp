#include "dpdk_net/asio/resolver.hpp"

#include <charconv>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace dpdk_net {
namespace {

bool service_port(const std::string& service, std::uint16_t& port) {
  if (service.empty()) {
    port = 0;
    return true;
  }
  const char* first = service.data();
  const char* last = first + service.size();
  unsigned value = 0;
  auto [ptr, err] = std::from_chars(first, last, value);
  if (err == std::errc() && ptr == last && value <= 65535) {
    port = static_cast<std::uint16_t>(value);
    return true;
  }
  static constexpr std::pair<std::string_view, std::uint16_t> known[] = {
      {"http", 80}, {"https", 443}, {"ws", 80}, {"wss", 443}, {"echo", 7}};
  for (const auto& [name, p] : known) {
    if (service == name) {
      port = p;
      return true;
    }
  }
  return false;
}

}  // namespace

host_resolver::results_type host_resolver::resolve(const std::string& host,
                                                   const std::string& service,
                                                   boost::system::error_code& ec) const {
  ec = {};
  std::uint16_t port = 0;
  if (!service_port(service, port)) {
    ec = boost::asio::error::service_not_found;
    return {};
  }
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
  boost::system::error_code parse_ec;
  const boost::asio::ip::address numeric = boost::asio::ip::make_address(host, parse_ec);
  if (!parse_ec) {
    endpoints.emplace_back(numeric, port);
  } else if (auto it = table_.find(host); it != table_.end()) {
    for (const auto& a : it->second) {
      endpoints.emplace_back(a, port);
    }
  }
  if (endpoints.empty()) {
    ec = error::host_not_in_table;
    return {};
  }
  return results_type::create(endpoints.begin(), endpoints.end(), host, service);
}

}  // namespace dpdk_net
