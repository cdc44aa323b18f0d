// dpdk_net::host_resolver: name resolution for our stack, which has no DNS client. Names come
// from a static host table (add_host); numeric IPv4 addresses are parsed. Services: a port
// number, or one of a few well-known names (http, https, ws, wss, echo).
//   async_resolve(host, service)  void(error_code, boost::asio::ip::tcp::resolver::results_type)
// A name not in the table: dpdk_net::error::host_not_in_table; an unknown service:
// boost::asio::error::service_not_found. Completion is posted (never inside the call).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "dpdk_net/asio/error.hpp"
#include "dpdk_net/asio/net_context.hpp"

namespace dpdk_net {

class host_resolver {
 public:
  using executor_type = boost::asio::any_io_executor;
  using results_type = boost::asio::ip::tcp::resolver::results_type;

  explicit host_resolver(const executor_type& ex) : ex_(ex) {}
  explicit host_resolver(net_context& ctx) : ex_(ctx.get_executor()) {}

  [[nodiscard]] const executor_type& get_executor() const noexcept { return ex_; }

  /// Adds an address for name (a name may have several; they are tried in insertion order).
  void add_host(const std::string& name, const boost::asio::ip::address& address) {
    table_[name].push_back(address);
  }
  void add_host(const std::string& name, std::string_view address) {
    add_host(name, boost::asio::ip::make_address(address));
  }

  /// Synchronous resolution (the table is local: nothing blocks).
  results_type resolve(const std::string& host, const std::string& service,
                       boost::system::error_code& ec) const;

  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_resolve(const std::string& host, const std::string& service, Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, results_type)>(
        initiate{this}, token, host, service);
  }

 private:
  struct initiate {
    const host_resolver* r;
    using executor_type = host_resolver::executor_type;
    [[nodiscard]] const executor_type& get_executor() const noexcept { return r->ex_; }
    template <class Handler>
    void operator()(Handler&& h, const std::string& host, const std::string& service) const {
      boost::system::error_code ec;
      results_type results = r->resolve(host, service, ec);
      auto ex = boost::asio::get_associated_executor(h, r->ex_);
      boost::asio::post(
          r->ex_, boost::asio::bind_executor(
                      ex, boost::asio::append(std::forward<Handler>(h), ec, std::move(results))));
    }
  };

  executor_type ex_;
  std::map<std::string, std::vector<boost::asio::ip::address>, std::less<>> table_;
};

}  // namespace dpdk_net
