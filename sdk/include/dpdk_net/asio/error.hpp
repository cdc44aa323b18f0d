// Errors of our Asio layer. Operations complete with Asio's own values wherever one exists
// (boost::asio::error::connection_reset, connection_refused, timed_out, eof, operation_aborted,
// host_unreachable, no_buffer_space, ...), so application code that compares against them works
// unchanged; dpdk_net::error holds only what Asio has no value for.
#pragma once

#include <system_error>

#include <boost/system/error_code.hpp>

namespace dpdk_net {

namespace error {
enum net_errors {
  /// The stack under the socket is gone (a crashed simulated host, a stopped runtime).
  backend_down = 1,
  /// An I/O object was given an executor that is not a dpdk_net context's.
  not_our_executor,
  /// Name resolution: the host table has no such name.
  host_not_in_table,
};
[[nodiscard]] const boost::system::error_category& get_net_category() noexcept;
[[nodiscard]] inline boost::system::error_code make_error_code(net_errors e) noexcept {
  return {static_cast<int>(e), get_net_category()};
}
/// The same values as a std::error_code (what the non-template core carries; to_asio_error
/// turns it back into the Boost one).
[[nodiscard]] std::error_code make_std_error(net_errors e) noexcept;
}  // namespace error

/// A stack error (std::errc values, tcp_errc::end_of_stream) as the value Asio uses for it:
/// errno values become Asio's system-category codes, end of stream becomes error::eof.
[[nodiscard]] boost::system::error_code to_asio_error(const std::error_code& e) noexcept;

}  // namespace dpdk_net

template <>
struct boost::system::is_error_code_enum<dpdk_net::error::net_errors> : std::true_type {};
