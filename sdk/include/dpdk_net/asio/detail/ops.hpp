// Operations carrying a completion handler: allocated with the handler's associated allocator
// (Asio's recycling allocator by default: no malloc in steady state), holding outstanding work on
// the handler's associated executor, hooked to its cancellation slot. On completion the handler
// is moved out, the operation freed, then the handler invoked through its executor (inline when
// that is our context's and we are in its turn: the op was already queued, never run at its
// initiation).
#pragma once

#include <memory>
#include <utility>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/recycling_allocator.hpp>

#include "dpdk_net/asio/detail/socket_service.hpp"
#include "dpdk_net/asio/error.hpp"

namespace dpdk_net::detail {

/// Invokes the handler with what the op produced; the signature decides the arguments.
enum class result_shape : std::uint8_t { error, error_bytes, error_socket };

/// Result: for error_socket, the socket type handed to the handler (Result::accepted(executor,
/// context, id) builds it).
template <class Handler, class IoExecutor, result_shape Shape, class Result = void>
struct handler_op : io_op {
  using handler_executor = std::decay_t<decltype(boost::asio::prefer(
      boost::asio::get_associated_executor(std::declval<Handler&>(),
                                           std::declval<const IoExecutor&>()),
      boost::asio::execution::outstanding_work.tracked))>;
  using allocator_type =
      boost::asio::associated_allocator_t<Handler, boost::asio::recycling_allocator<void>>;
  using op_allocator =
      typename std::allocator_traits<allocator_type>::template rebind_alloc<handler_op>;

  handler_op(Handler&& h, const IoExecutor& io_ex, op_kind k)
      : io_op(&do_complete, k),
        handler(std::move(h)),
        io_executor(io_ex),
        work(boost::asio::prefer(boost::asio::get_associated_executor(handler, io_ex),
                                 boost::asio::execution::outstanding_work.tracked)) {}

  /// Allocates and constructs an op for h (its allocator), connecting its cancellation slot.
  /// H: Handler or a (const) lvalue of it -- an lvalue handler is copied, as Asio's ops do.
  template <class H>
  static handler_op* create(H&& h, const IoExecutor& io_ex, op_kind k, net_context& ctx,
                            boost::asio::cancellation_type_t cancellable) {
    allocator_type alloc =
        boost::asio::get_associated_allocator(h, boost::asio::recycling_allocator<void>());
    op_allocator a(alloc);
    handler_op* o = std::allocator_traits<op_allocator>::allocate(a, 1);
    try {
      new (o) handler_op(Handler(std::forward<H>(h)), io_ex, k);
    } catch (...) {
      std::allocator_traits<op_allocator>::deallocate(a, o, 1);
      throw;
    }
    o->ctx = &ctx;
    ctx.work_started();
    auto slot = boost::asio::get_associated_cancellation_slot(o->handler);
    if (slot.is_connected()) {
      slot.template emplace<cancel_handler>(o, cancellable);
    }
    return o;
  }

  struct cancel_handler {
    cancel_handler(handler_op* o, boost::asio::cancellation_type_t types) noexcept
        : op(o), allowed(types) {}
    void operator()(boost::asio::cancellation_type_t type) const noexcept {
      if ((type & allowed) != boost::asio::cancellation_type::none) {
        op->ctx->sockets().cancel_op(op);
      }
    }
    handler_op* op;
    boost::asio::cancellation_type_t allowed;
  };

  static void do_complete(op* base, bool run) {
    auto* self = static_cast<handler_op*>(base);
    auto slot = boost::asio::get_associated_cancellation_slot(self->handler);
    if (slot.is_connected()) {
      slot.clear();
    }
    Handler h(std::move(self->handler));
    handler_executor ex(std::move(self->work));
    const boost::system::error_code ec = self->result_error();
    const std::size_t bytes = self->bytes;
    net_context* ctx = self->ctx;
    [[maybe_unused]] const socket_id accepted = self->accepted;
    [[maybe_unused]] IoExecutor io_ex(std::move(self->io_executor));
    op_allocator a(
        boost::asio::get_associated_allocator(h, boost::asio::recycling_allocator<void>()));
    self->~handler_op();
    std::allocator_traits<op_allocator>::deallocate(a, self, 1);
    ctx->work_finished();
    if (!run) {
      return;
    }
    auto ex2 = boost::asio::prefer(ex, boost::asio::execution::blocking.possibly);
    if constexpr (Shape == result_shape::error) {
      ex2.execute(bound0{std::move(h), ec});
    } else if constexpr (Shape == result_shape::error_socket) {
      ex2.execute(
          bound_socket{std::move(h), ec, Result::accepted(io_ex, *ctx, ec ? no_socket : accepted)});
    } else {
      ex2.execute(bound1{std::move(h), ec, bytes});
    }
  }

  [[nodiscard]] boost::system::error_code result_error() const noexcept {
    return to_asio_error(ec);
  }

  struct bound0 {
    Handler h;
    boost::system::error_code ec;
    void operator()() { std::move(h)(ec); }
  };
  struct bound1 {
    Handler h;
    boost::system::error_code ec;
    std::size_t n;
    void operator()() { std::move(h)(ec, n); }
  };

  struct bound_socket {
    Handler h;
    boost::system::error_code ec;
    std::conditional_t<std::is_void_v<Result>, int, Result> s;
    void operator()() { std::move(h)(ec, std::move(s)); }
  };

  Handler handler;
  IoExecutor io_executor;
  handler_executor work;
};

/// Records a buffer sequence's first max_io_buffers non-empty buffers in o; returns their bytes.
/// A write's (const) buffers are only ever read through these spans.
template <class Buffers>
std::size_t gather_buffers(io_op& o, const Buffers& buffers) noexcept {
  std::size_t total = 0;
  o.buffer_count = 0;
  for (auto it = boost::asio::buffer_sequence_begin(buffers);
       it != boost::asio::buffer_sequence_end(buffers) && o.buffer_count < max_io_buffers; ++it) {
    const boost::asio::const_buffer b(*it);
    if (b.size() != 0) {
      o.buffers[o.buffer_count++] = std::span<std::byte>(
          const_cast<std::byte*>(static_cast<const std::byte*>(b.data())), b.size());
      total += b.size();
    }
  }
  return total;
}

/// The executor an I/O object hands out, checked to be one of ours.
[[noreturn]] void throw_not_our_executor();
template <class Executor>
net_context& context_of(const Executor& ex) {
  net_context* c = net_context::from(ex);
  if (c == nullptr) {
    throw_not_our_executor();
  }
  return *c;
}

}  // namespace dpdk_net::detail
