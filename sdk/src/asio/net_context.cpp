#include "dpdk_net/asio/net_context.hpp"

#include <algorithm>
#include <new>
#include <stdexcept>

#include <boost/asio/detail/call_stack.hpp>
#include <boost/asio/detail/thread_context.hpp>
#include <boost/asio/detail/thread_info_base.hpp>

#include "dpdk_net/asio/detail/socket_service.hpp"

namespace dpdk_net {

namespace detail {
// The key our turns push on Asio's per-thread call stack (see turn_scope).
struct call_key : boost::asio::detail::thread_context {};

bool op_queue::erase(op* o) noexcept {
  op* prev = nullptr;
  for (op* p = head_; p != nullptr; prev = p, p = p->next) {
    if (p == o) {
      (prev != nullptr ? prev->next : head_) = p->next;
      if (tail_ == p) {
        tail_ = prev;
      }
      p->next = nullptr;
      return true;
    }
  }
  return false;
}

void op_queue::splice(op_queue& other) noexcept {
  if (other.head_ == nullptr) {
    return;
  }
  if (tail_ != nullptr) {
    tail_->next = other.head_;
  } else {
    head_ = other.head_;
  }
  tail_ = other.tail_;
  other.head_ = other.tail_ = nullptr;
}

boost::asio::execution_context::id context_service::id;

[[noreturn]] void throw_not_our_executor() {
  throw std::invalid_argument(
      "dpdk_net: this executor is not a dpdk_net context's: create the I/O object with a "
      "runtime's (or sim_runtime's) executor, e.g. co_await asio::this_coro::executor inside a "
      "coroutine spawned on it");
}
}  // namespace detail

namespace {
thread_local net_context* current_context = nullptr;
thread_local char thread_marker = 0;
// One per thread: Asio's recycling caches live in it (as in an io_context::run() thread).
thread_local boost::asio::detail::thread_info_base thread_info;
thread_local detail::call_key thread_key;
using asio_call_stack = boost::asio::detail::call_stack<boost::asio::detail::thread_context,
                                                        boost::asio::detail::thread_info_base>;
}  // namespace

struct turn_scope::state {
  std::optional<asio_call_stack::context> frame;
};

turn_scope::turn_scope(net_context& ctx) noexcept : ctx_(&ctx), previous_(current_context) {
  static_assert(sizeof(state) <= sizeof(storage_));
  auto* s = new (storage_) state();
  if (boost::asio::detail::thread_context::top_of_thread_call_stack() == nullptr) {
    s->frame.emplace(&thread_key, thread_info);
  }
  current_context = &ctx;
  ctx.owner_.store(&thread_marker, std::memory_order_relaxed);
}

turn_scope::~turn_scope() {
  current_context = previous_;
  std::launder(reinterpret_cast<state*>(storage_))->~state();
}

net_context::net_context(time_ns start)
    : foreign_(std::make_unique<boost::asio::io_context>(1)),
      service_(&boost::asio::make_service<detail::context_service>(*foreign_, *this)),
      sockets_(std::make_unique<detail::socket_service>(*this)),
      now_(start),
      timers_(10 * microsecond, start) {}

net_context::~net_context() {
  shutdown();
  foreign_.reset();  // its pending operations hold work on our executor: gone before we are
  shutdown();        // what destroying them posted
}

void net_context::shutdown() noexcept {
  turn_scope turn(*this);
  // Destroying a handler can destroy a coroutine frame, whose sockets' destructors cancel their
  // own operations (posted here): repeat until nothing is left.
  for (int round = 0; round < 1000; ++round) {
    sockets_->abandon_all();
    ip_ = nullptr;
    take_remote();
    if (ready_.empty()) {
      break;
    }
    while (detail::op* o = ready_.pop()) {
      o->fn(o, false);
    }
  }
}

void net_context::executor_type::throw_no_context() {
  throw std::logic_error("dpdk_net: execute() on a default-constructed net_context executor");
}

bool net_context::running_in_this_thread() const noexcept {
  return current_context == this;
}

namespace detail {
net_context* current_turn_context() noexcept {
  return current_context;
}
}  // namespace detail

bool net_context::owner_is_this_thread() const noexcept {
  const void* owner = owner_.load(std::memory_order_relaxed);
  return owner == nullptr ? !threaded_ : owner == &thread_marker;
}

void net_context::attach(stack::stack* ip) noexcept {
  // Not a claim of ownership: a driver may attach on one thread and run its turns on another.
  const void* owner = owner_.load(std::memory_order_relaxed);
  {
    turn_scope turn(*this);
    ip_ = ip;
    sockets_->attach(ip);
  }
  owner_.store(owner, std::memory_order_relaxed);
}

void net_context::set_now(time_ns now) noexcept {
  now_ = std::max(now_, now);
}

time_ns net_context::now() const noexcept {
  if (clock_ == nullptr || running_in_this_thread()) {
    return now_;
  }
  return std::max(now_, clock_(clock_context_));
}

time_ns net_context::next_deadline() const noexcept {
  return timers_.next_deadline();
}

void net_context::post_local(detail::op* o) noexcept {
  ready_.push(o);
  request_turn();
}

void net_context::post_remote(detail::op* o) noexcept {
  {
    std::lock_guard lock(remote_mutex_);
    remote_.push(o);
    remote_pending_.store(true);
    ++counters_.remote_posts;
  }
  if (wakeup_ != nullptr) {
    wakeup_(wakeup_context_);
  }
}

void net_context::take_remote() noexcept {
  if (!remote_pending_.load(std::memory_order_acquire)) {
    return;
  }
  std::lock_guard lock(remote_mutex_);
  ready_.splice(remote_);
  remote_pending_.store(false, std::memory_order_relaxed);
}

std::size_t net_context::run_turn(std::size_t handler_limit) {
  turn_scope turn(*this);
  ++counters_.turns;
  take_remote();
  std::size_t done = 0;
  const std::size_t events = sockets_->dispatch_events();
  counters_.events += events;
  counters_.sockets_visited = sockets_->visited();
  const std::size_t fired = timers_.advance(now_);
  counters_.timers_fired += fired;
  done += events + fired;
  for (std::size_t i = 0; i < handler_limit; ++i) {
    detail::op* o = ready_.pop();
    if (o == nullptr) {
      break;
    }
    ++counters_.handlers_run;
    ++done;
    o->fn(o, true);
  }
  return done;
}

std::size_t net_context::poll_foreign() {
  turn_scope turn(*this);
  ++counters_.foreign_polls;
  if (foreign_->stopped()) {
    foreign_->restart();
  }
  const std::size_t n = foreign_->poll();
  counters_.foreign_handlers += n;
  foreign_busy_ = !foreign_->stopped();
  return n;
}

}  // namespace dpdk_net
