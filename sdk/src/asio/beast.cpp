#include "dpdk_net/asio/beast.hpp"

#include <array>

namespace dpdk_net {

void teardown(boost::beast::role_type role, tcp::socket& s, boost::system::error_code& ec) {
  ec = {};
  if (role == boost::beast::role_type::server) {
    s.shutdown(boost::asio::socket_base::shutdown_send, ec);
    if (ec) {
      return;
    }
  }
  std::array<char, 2048> buf{};
  for (;;) {
    const std::size_t n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec || n == 0) {
      break;
    }
  }
  if (ec && ec != boost::asio::error::eof && ec != boost::asio::error::would_block) {
    return;
  }
  ec = {};
  if (role == boost::beast::role_type::client) {
    s.shutdown(boost::asio::socket_base::shutdown_send, ec);
    if (ec) {
      return;
    }
  }
  s.close(ec);
}

}  // namespace dpdk_net
