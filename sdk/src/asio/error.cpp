#include "dpdk_net/asio/error.hpp"

#include <boost/asio/error.hpp>

#include "dpdk_net/stack/tcp.hpp"

namespace dpdk_net {
namespace detail {
std::error_code already_open_error() noexcept;
}
namespace {

// Boost's error_category has a protected non-virtual destructor by design (categories are
// never deleted through a base pointer).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"

class net_category final : public boost::system::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "dpdk_net"; }
  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<error::net_errors>(value)) {
      case error::backend_down:
        return "the network stack under this socket is gone (host crashed or runtime stopped)";
      case error::not_our_executor:
        return "not a dpdk_net executor: create the I/O object with a dpdk_net runtime's "
               "executor";
      case error::host_not_in_table:
        return "host name not in the resolver's host table";
    }
    return "dpdk_net error " + std::to_string(value);
  }
};

#pragma GCC diagnostic pop

class std_net_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "dpdk_net"; }
  [[nodiscard]] std::string message(int value) const override {
    return error::get_net_category().message(value);
  }
};

const std_net_category& std_category() noexcept {
  static const std_net_category category;
  return category;
}

}  // namespace

// Asio's already_open (a misc error, no errno) carried by the core as a std::error_code.
constexpr int already_open_value = 1000;

std::error_code detail::already_open_error() noexcept {
  return {already_open_value, std_category()};
}

std::error_code error::make_std_error(net_errors e) noexcept {
  return {static_cast<int>(e), std_category()};
}

const boost::system::error_category& error::get_net_category() noexcept {
  static const net_category category;
  return category;
}

boost::system::error_code to_asio_error(const std::error_code& e) noexcept {
  if (!e) {
    return {};
  }
  if (e == stack::tcp_errc::end_of_stream) {
    return boost::asio::error::eof;
  }
  if (e.category() == std_category()) {
    if (e.value() == already_open_value) {
      return boost::asio::error::already_open;
    }
    return error::make_error_code(static_cast<error::net_errors>(e.value()));
  }
  if (e.category() == std::generic_category() || e.category() == std::system_category()) {
    return {e.value(), boost::asio::error::get_system_category()};
  }
  // Another category of ours: keep its value and message, in a generic wrapper.
  return {e.value(), boost::system::generic_category()};
}

}  // namespace dpdk_net
