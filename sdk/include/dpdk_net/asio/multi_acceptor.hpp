// One acceptor for every worker of a multi-worker runtime (the "single acceptor" model of
// docs/asio.md "Accepting across workers"): it listens on the port on each worker (like
// SO_REUSEPORT: a SYN is accepted by the worker that owns its flow) and hands out the accepted
// sockets, each bound to its owning worker's executor. The application's one accept loop may run
// anywhere (a worker or an ordinary thread); it serves each socket on the socket's executor:
//
//   for (;;) {
//     tcp::socket s = co_await acceptor.async_accept(use_awaitable);
//     co_spawn(s.get_executor(), session(std::move(s)), detached);
//   }
//
// The other model (an accept loop per worker, each on a plain tcp::acceptor of that worker) has
// no hand-over at all and is the default in the examples.
//
//   async_accept()   void(error_code, tcp::socket)   total cancellation
//
// Each worker keeps one accept pending; a socket accepted while nobody waits is held (one per
// worker; the rest stay in the stack's accept queue, its backlog). Completions are posted to the
// handler's executor. close() (or the destructor) aborts a pending accept (operation_aborted),
// and closes each worker's listener on that worker's thread.
//
// Construct it before the workers run (it listens on each worker's stack from the calling
// thread); std::logic_error otherwise.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>

#include "dpdk_net/asio/tcp.hpp"

namespace dpdk_net {

class multi_acceptor {
 public:
  using executor_type = boost::asio::any_io_executor;
  using accept_handler =
      boost::asio::any_completion_handler<void(boost::system::error_code, tcp::socket)>;

  /// Listens on `local` on each worker (their executors, worker i at index i). Throws
  /// boost::system::system_error (address in use, ...) or std::logic_error (a worker is running).
  multi_acceptor(std::span<const net_context::executor_type> workers, const tcp::endpoint& local,
                 int backlog = boost::asio::socket_base::max_listen_connections);
  /// Every worker of `rt` (a multi_runtime or sim_multi_runtime).
  template <class MultiRuntime>
  multi_acceptor(MultiRuntime& rt, const tcp::endpoint& local)
      : multi_acceptor(executors_of(rt), local) {}
  multi_acceptor(const multi_acceptor&) = delete;
  multi_acceptor& operator=(const multi_acceptor&) = delete;
  ~multi_acceptor();

  /// Completes with a socket bound to the worker that owns the connection.
  template <class Token>
  auto async_accept(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, tcp::socket)>(
        initiation{this}, token);
  }
  /// Aborts pending accepts, closes every worker's listener (each on its own thread).
  void close();
  [[nodiscard]] tcp::endpoint local_endpoint() const;
  [[nodiscard]] std::size_t workers() const noexcept;
  /// Sockets handed out, per worker.
  [[nodiscard]] std::vector<std::uint64_t> accepted() const;

  struct state;  // shared with the workers' pending accepts

 private:
  template <class MultiRuntime>
  static std::vector<net_context::executor_type> executors_of(MultiRuntime& rt) {
    std::vector<net_context::executor_type> out;
    for (std::size_t i = 0; i < rt.size(); ++i) {
      out.push_back(rt.get_executor(i));
    }
    return out;
  }
  multi_acceptor(std::vector<net_context::executor_type> workers, const tcp::endpoint& local)
      : multi_acceptor(std::span<const net_context::executor_type>(workers), local) {}

  struct initiation {
    multi_acceptor* self;
    template <class Handler>
    void operator()(Handler&& h) const {
      auto slot = boost::asio::get_associated_cancellation_slot(h);
      // The handler's executor, kept busy (outstanding work) while it waits: completions are
      // posted there.
      executor_type ex = boost::asio::prefer(
          executor_type(boost::asio::get_associated_executor(h, self->fallback())),
          boost::asio::execution::outstanding_work.tracked);
      self->start(accept_handler(std::forward<Handler>(h)), slot, std::move(ex));
    }
  };
  [[nodiscard]] executor_type fallback() const;
  void start(accept_handler h, boost::asio::cancellation_slot slot, executor_type ex);

  std::shared_ptr<state> state_;
};

}  // namespace dpdk_net
