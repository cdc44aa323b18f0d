// The non-template core of our I/O objects: per-socket operation queues, the readiness-event
// dispatch (only sockets an event names are visited), and the start/complete/cancel steps every
// operation goes through. Handler types never reach this file (ops.hpp wraps them).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "dpdk_net/asio/net_context.hpp"
#include "dpdk_net/stack/tcp.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::detail {

using socket_id = std::uint32_t;
inline constexpr socket_id no_socket = UINT32_MAX;
/// Buffers of one read or write looked at (Asio's own limit for scatter/gather is 64; 16 covers
/// Beast's and ssl::stream's sequences).
inline constexpr std::size_t max_io_buffers = 16;

struct impl_base;

enum class op_kind : std::uint8_t { read, write, connect, accept, receive_from, send_to, wait };

/// What every pending operation shares (ops.hpp derives the handler-carrying types).
struct io_op : op {
  io_op(fn_type complete, op_kind k) noexcept : op(complete), kind(k), complete_fn(complete) {}
  op_kind kind;
  bool pending = false;  // in its owner's queue (cancellable)
  fn_type complete_fn;
  impl_base* owner = nullptr;
  net_context* ctx = nullptr;
  std::error_code ec;  // the stack's error; made Asio's at completion
  std::size_t bytes = 0;
  std::array<std::span<std::byte>, max_io_buffers> buffers{};
  std::size_t buffer_count = 0;
  // connect / send_to / receive_from
  wire::ipv4_address address{};
  std::uint16_t port = 0;
  socket_id accepted = no_socket;  // accept: the connection taken for the handler
  impl_base* target = nullptr;     // accept into a socket: the peer socket's state
  boost::asio::ip::udp::endpoint* sender = nullptr;  // receive_from: where the sender goes
  // An initiation from another thread, until the owning thread starts it:
  std::shared_ptr<impl_base> keep_alive;  // its I/O object's state
  std::uint32_t closes = 0;               // the state's close() count when it was initiated
  bool cancel_requested = false;          // its cancellation slot fired before it started
};

/// State shared by our TCP sockets, acceptors and UDP sockets (the I/O object holds it by
/// pointer so moving the object leaves the service's table valid).
/// Shared: an operation initiated from another thread keeps it alive until the owning thread
/// starts it (the socket may be destroyed meanwhile: the operation then completes aborted).
struct impl_base : std::enable_shared_from_this<impl_base> {
  explicit impl_base(net_context& c, bool udp) noexcept : ctx(&c), is_udp(udp) {}
  net_context* ctx;
  bool is_udp;
  bool listener = false;
  socket_id id = no_socket;
  std::uint64_t epoch = 0;  // the stack attach the id belongs to
  op_queue reads;           // reads, accepts (listener), receive_froms
  op_queue writes;
  io_op* connect = nullptr;
  stack::tcp_socket_options options{};
  bool options_set = false;
  bool shut_read = false;           // shutdown(receive): reads complete with eof
  std::uint32_t closes = 0;         // close() calls: a remote initiation from before one is aborted
  impl_base* timer_prev = nullptr;  // timers: the service's list of them (for shutdown)
  impl_base* timer_next = nullptr;
};

struct timer_impl;

class socket_service {
 public:
  explicit socket_service(net_context& ctx) noexcept : ctx_(&ctx) {}
  socket_service(const socket_service&) = delete;
  socket_service& operator=(const socket_service&) = delete;

  /// A new stack (or none): the old one's sockets are dead; their operations fail with
  /// error::backend_down.
  void attach(stack::stack* ip) noexcept;
  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  /// Takes the stack's readiness events and completes the operations they name.
  std::size_t dispatch_events();

  // sockets
  std::error_code open_tcp(impl_base& s);
  /// Adopts a connection taken from a listener.
  void adopt_tcp(impl_base& s, socket_id id) noexcept;
  std::error_code open_udp(impl_base& s, std::uint16_t port,
                           std::optional<wire::ipv4_address> address);
  /// Completes s's operations with operation_aborted (posted) and releases the stack socket.
  std::error_code close(impl_base& s, bool abort = false);
  /// Completes s's operations with operation_aborted (posted); returns how many.
  std::size_t cancel(impl_base& s) noexcept;
  [[nodiscard]] bool alive(const impl_base& s) const noexcept;
  /// Graceful stop, first step: listeners close (their accepts: operation_aborted), every open
  /// connection shuts down its sending side (FIN after the queued data).
  void shutdown_all() noexcept;
  /// The context is going away: the stack is detached and every pending operation (timer
  /// waits included) fails with backend_down (queued, for the caller to destroy).
  void abandon_all() noexcept;
  void link_timer(impl_base& t) noexcept;
  void unlink_timer(impl_base& t) noexcept;
  /// Last step: every connection still open is aborted (RST), its operations failed.
  void abort_all() noexcept;
  [[nodiscard]] stack::stack* ip() const noexcept { return ip_; }

  // operations: each either completes o at once (posted) or queues it until an event
  void start(impl_base& s, io_op* o);
  /// Starts o on the owning thread: at once if called there, else posted across.
  void start_anywhere(impl_base& s, io_op* o);
  /// Cancels o if it is still pending (completes it with operation_aborted).
  void cancel_op(io_op* o) noexcept;
  /// Finishes o: its result set, it is queued to run (the handler is invoked from the ready
  /// queue, never inline).
  void complete(io_op* o, std::error_code ec, std::size_t bytes = 0) noexcept;

  // timers (steady_timer): waits queue on the timer's reads
  static void timer_fired(timer& alarm, time_ns now) noexcept;
  /// Completes t's waits with operation_aborted; returns how many.
  std::size_t cancel_timer(timer_impl& t) noexcept;

  /// Moves bytes between the stack and o's buffers (send when write, else receive), buffer by
  /// buffer, stopping at the first short or failed step: the bytes moved and that step's error.
  stack::io_result transfer(const impl_base& s, const io_op& o, bool write);

  /// Sockets whose operations an event made us look at (the cost gate: == events taken).
  [[nodiscard]] std::uint64_t visited() const noexcept { return visited_; }

 private:
  void register_impl(impl_base& s) noexcept;
  void unregister_impl(impl_base& s) noexcept;
  impl_base* find(std::uint8_t protocol, socket_id id) const noexcept;
  void on_event(impl_base& s, std::uint8_t events);
  /// One attempt; false if it would block.
  bool try_transfer(impl_base& s, io_op* o, bool write);
  bool try_accept(impl_base& s, io_op* o);
  bool try_receive_from(impl_base& s, io_op* o);
  void run_queue(impl_base& s, op_queue& q);
  void start_wait(impl_base& s, io_op* o);
  void fail_all(impl_base& s, std::error_code ec) noexcept;
  static void remote_start(op* base, bool run);

  net_context* ctx_;
  stack::stack* ip_ = nullptr;
  std::uint64_t epoch_ = 0;
  std::vector<impl_base*> tcp_;  // by slot (id & slot mask)
  std::vector<impl_base*> udp_;  // by id
  std::uint64_t visited_ = 0;
  std::vector<std::byte> scratch_;
  impl_base* timers_ = nullptr;  // every timer_impl (linked through timer_prev/next)  // a datagram
                                 // sent from several buffers
};

/// A steady_timer's state: its waits queue on `reads`.
struct timer_impl : impl_base {
  explicit timer_impl(net_context& c) noexcept : impl_base(c, false) {
    alarm.set_callback(&socket_service::timer_fired, this);
    c.sockets().link_timer(*this);
  }
  ~timer_impl() { ctx->sockets().unlink_timer(*this); }
  timer_impl(const timer_impl&) = delete;
  timer_impl& operator=(const timer_impl&) = delete;
  timer alarm;
  time_ns expiry = 0;
};

}  // namespace dpdk_net::detail
