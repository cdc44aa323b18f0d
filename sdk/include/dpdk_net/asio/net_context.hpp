// The execution context of our Asio layer: one stack's sockets, their pending operations, our
// timers and a queue of ready handlers -- driven by a runtime (a device loop, runtime/runtime.hpp)
// or by a simulated host (sim/sim_runtime.hpp). It reads no clock and owns no thread: the driver
// gives it the time (set_now) and calls run_turn(); see docs/asio.md "The execution context".
//
// Why our own context rather than io_context: a handler posted to an io_context runs only when
// io_context::poll() runs, and in Boost 1.81 poll() calls epoll_wait(0) once any plain Asio timer
// or socket exists -- a syscall per loop iteration. Our queue is an intrusive list drained by the
// loop itself (no syscall, no lock on the owning thread). Plain Asio objects (ssl::stream's and
// Beast websocket's internal steady_timers) still work: the executor's execution context is an
// io_context owned here (its services live there), and the driver polls it at a bounded rate.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/recycling_allocator.hpp>

#include "dpdk_net/time.hpp"
#include "dpdk_net/timer_wheel.hpp"

namespace dpdk_net {

namespace stack {
class stack;
}

namespace detail {

/// Something waiting to run on the context: a completed operation or a posted function. The
/// node is the operation itself (an intrusive queue: queueing allocates nothing).
struct op {
  /// run == true: invoke (then free); false: only free (the context is being destroyed).
  using fn_type = void (*)(op* self, bool run);
  explicit op(fn_type f) noexcept : fn(f) {}
  op* next = nullptr;
  fn_type fn;
};

/// FIFO of ops, linked through op::next.
class op_queue {
 public:
  op_queue() noexcept = default;
  op_queue(const op_queue&) = delete;
  op_queue& operator=(const op_queue&) = delete;
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] op* front() const noexcept { return head_; }
  void push(op* o) noexcept {
    o->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = o;
    } else {
      head_ = o;
    }
    tail_ = o;
  }
  op* pop() noexcept {
    op* o = head_;
    if (o != nullptr) {
      head_ = o->next;
      if (head_ == nullptr) {
        tail_ = nullptr;
      }
      o->next = nullptr;
    }
    return o;
  }
  /// Removes o wherever it is (O(n): for cancellation only). False if it is not queued here.
  bool erase(op* o) noexcept;
  /// Moves every op of other to the back of this queue.
  void splice(op_queue& other) noexcept;

 private:
  op* head_ = nullptr;
  op* tail_ = nullptr;
};

class socket_service;
class context_service;
struct call_key;

}  // namespace detail

/// Counters of the context (the loop's cost gates read them).
struct net_context_counters {
  std::uint64_t turns = 0;            ///< run_turn calls
  std::uint64_t handlers_run = 0;     ///< ready ops and posted functions invoked
  std::uint64_t events = 0;           ///< stack readiness events taken
  std::uint64_t sockets_visited = 0;  ///< I/O objects whose operations an event made us look at
  std::uint64_t remote_posts = 0;     ///< functions posted from outside the owning thread
  std::uint64_t foreign_polls = 0;    ///< io_context::poll() calls (plain Asio objects)
  std::uint64_t foreign_handlers = 0;
  std::uint64_t timers_fired = 0;
};

class net_context {
 public:
  class executor_type;

  /// start: the time of the first turn (timers are measured from it).
  explicit net_context(time_ns start = 0);
  net_context(const net_context&) = delete;
  net_context& operator=(const net_context&) = delete;
  /// shutdown(), then the foreign io_context's services are destroyed.
  ~net_context();
  /// Abandons every pending operation, timer wait and ready handler: their handlers are
  /// destroyed, never invoked (as io_context's shutdown does), which frees coroutine frames
  /// suspended on them. I/O objects stay usable but fail with error::backend_down.
  void shutdown() noexcept;

  [[nodiscard]] executor_type get_executor() noexcept;

  /// The io_context whose services plain Asio objects created with our executor use (our
  /// executor's execution::context is this io_context). Polled by the driver (poll_foreign).
  [[nodiscard]] boost::asio::io_context& foreign_context() noexcept { return *foreign_; }

  /// The context of an executor that is one of ours (or an any_io_executor holding one); null
  /// if it is not (I/O objects then throw std::invalid_argument naming the fix).
  template <class Executor>
  static net_context* from(const Executor& ex) noexcept;

  // --- the driver's side --------------------------------------------------------------------
  /// The stack the I/O objects use (nullptr: none -- a crashed simulated host; operations then
  /// fail with error::backend_down). Pending operations on the old stack fail with it too.
  void attach(stack::stack* ip) noexcept;
  [[nodiscard]] stack::stack* ip() const noexcept { return ip_; }
  /// The time the next turn runs at (never earlier than the last).
  void set_now(time_ns now) noexcept;
  /// The current time: inside a turn, the turn's; outside one, the driver's clock (set_clock)
  /// read now -- so a timer armed or a connection opened between turns (before run(), after a
  /// quiet second in the simulator) counts from the present, not from the last turn.
  [[nodiscard]] time_ns now() const noexcept;
  /// How to read the driver's clock outside a turn (the monotonic clock, a simulated host's).
  void set_clock(time_ns (*clock)(const void* context), const void* context) noexcept {
    clock_ = clock;
    clock_context_ = context;
  }
  /// One turn: the stack's readiness events complete the operations they name, due timers fire,
  /// then ready handlers run (at most handler_limit, so one turn is bounded; what is left runs at
  /// the next turn). Returns how many events, timers and handlers it processed. Call after
  /// stack::receive/advance, before stack::drain_tx.
  std::size_t run_turn(std::size_t handler_limit = 1024);
  /// Runs the foreign io_context's ready handlers (io_context::poll()). Returns how many ran.
  std::size_t poll_foreign();
  /// True if io_context work (a plain Asio timer, say) was outstanding at the last poll_foreign.
  [[nodiscard]] bool foreign_busy() const noexcept { return foreign_busy_; }
  /// The earliest timer deadline (UINT64_MAX: none).
  [[nodiscard]] time_ns next_deadline() const noexcept;
  /// Ready handlers are waiting (or functions posted from other threads).
  [[nodiscard]] bool has_ready() const noexcept {
    return !ready_.empty() || remote_pending_.load();  // seq_cst: see runtime::sleep
  }
  /// Work that keeps a runtime running: pending operations, tracked executors, ready handlers.
  [[nodiscard]] std::size_t outstanding_work() const noexcept {
    return work_.load(std::memory_order_relaxed);
  }
  /// Called (from any thread) when something is posted while no turn runs on the owning thread:
  /// the driver wakes (an eventfd write, a simulator event). Set by the driver.
  void set_wakeup(void (*fn)(void* context), void* context) noexcept {
    wakeup_ = fn;
    wakeup_context_ = context;
  }
  /// True inside a turn of this context on the calling thread.
  [[nodiscard]] bool running_in_this_thread() const noexcept;
  [[nodiscard]] const net_context_counters& counters() const noexcept { return counters_; }

  // --- for I/O objects and the executor (not the application) ------------------------------
  /// Queues o to run at this turn or the next (the owning thread, inside or outside a turn).
  void post_local(detail::op* o) noexcept;
  /// Queues o from any thread (locks; wakes the driver).
  void post_remote(detail::op* o) noexcept;
  /// The same as post_local on the owning thread, else post_remote.
  void post(detail::op* o) noexcept {
    if (running_in_this_thread() || !threaded_) {
      post_local(o);
    } else {
      post_remote(o);
    }
  }
  /// Outside a turn: asks the driver for one (the wakeup), so what an initiation queued (a
  /// SYN, a posted completion) is handled now rather than at the next packet or timer.
  void request_turn() noexcept {
    if (!running_in_this_thread() && wakeup_ != nullptr) {
      wakeup_(wakeup_context_);
    }
  }
  void work_started() noexcept { work_.fetch_add(1, std::memory_order_relaxed); }
  void work_finished() noexcept { work_.fetch_sub(1, std::memory_order_relaxed); }
  [[nodiscard]] timer_wheel& timers() noexcept { return timers_; }
  [[nodiscard]] detail::socket_service& sockets() noexcept { return *sockets_; }
  /// A thread other than the owner may post (use_future from a std::thread): then posts check
  /// the thread. Set by a driver that runs on its own thread (the runtime); the simulator
  /// leaves it off (one thread).
  void set_threaded(bool on) noexcept { threaded_ = on; }
  /// The thread that runs turns (set at the first turn).
  [[nodiscard]] bool owner_is_this_thread() const noexcept;
  /// A turn has run (on some thread): the context has an owner. False for a runtime that was
  /// built but has not run yet, whose objects the constructing thread may still set up.
  [[nodiscard]] bool has_owner() const noexcept {
    return owner_.load(std::memory_order_relaxed) != nullptr;
  }

 private:
  friend class turn_scope;
  void take_remote() noexcept;

  std::unique_ptr<boost::asio::io_context> foreign_;
  detail::context_service* service_;
  std::unique_ptr<detail::socket_service> sockets_;
  stack::stack* ip_ = nullptr;
  time_ns now_;
  timer_wheel timers_;
  detail::op_queue ready_;
  std::mutex remote_mutex_;
  detail::op_queue remote_;
  std::atomic<bool> remote_pending_{false};
  std::atomic<std::size_t> work_{0};
  time_ns (*clock_)(const void*) = nullptr;
  const void* clock_context_ = nullptr;
  void (*wakeup_)(void*) = nullptr;
  void* wakeup_context_ = nullptr;
  bool threaded_ = false;
  bool foreign_busy_ = false;
  std::atomic<const void*> owner_{nullptr};  // the owning thread's marker
  std::unique_ptr<detail::call_key> call_key_;
  net_context_counters counters_{};
};

/// Marks the calling thread as running a turn of ctx for its lifetime: running_in_this_thread()
/// is true, and Asio's recycling allocator (coroutine frames, operation memory) has a per-thread
/// cache -- without it every allocation outside io_context::run() would reach malloc.
class turn_scope {
 public:
  explicit turn_scope(net_context& ctx) noexcept;
  ~turn_scope();
  turn_scope(const turn_scope&) = delete;
  turn_scope& operator=(const turn_scope&) = delete;

 private:
  struct state;
  net_context* ctx_;
  net_context* previous_;
  alignas(void*) unsigned char storage_[64];
};

namespace detail {

/// Registered in the foreign io_context: how an executor's execution::context leads to us.
class context_service : public boost::asio::execution_context::service {
 public:
  using key_type = context_service;
  static boost::asio::execution_context::id id;
  context_service(boost::asio::execution_context& owner, net_context& ctx)
      : boost::asio::execution_context::service(owner), ctx_(&ctx) {}
  /// Asio's use_service needs it; a context_service is only ever made with its net_context.
  explicit context_service(boost::asio::execution_context& owner)
      : boost::asio::execution_context::service(owner), ctx_(nullptr) {}
  [[nodiscard]] net_context* context() const noexcept { return ctx_; }

 private:
  void shutdown() override {}
  net_context* ctx_;
};

/// A posted function as an op (memory from Asio's recycling allocator, or the function's own).
template <class Function, class Allocator>
struct function_op : op {
  using alloc_type = typename std::allocator_traits<Allocator>::template rebind_alloc<function_op>;
  function_op(Function&& f, const Allocator& a) : op(&do_run), function(std::move(f)), alloc(a) {}
  static void do_run(op* base, bool run) {
    auto* self = static_cast<function_op*>(base);
    Function f(std::move(self->function));
    alloc_type a(self->alloc);
    self->~function_op();
    std::allocator_traits<alloc_type>::deallocate(a, self, 1);
    if (run) {
      std::move(f)();
    }
  }
  Function function;
  Allocator alloc;
};

}  // namespace detail

/// The executor of a net_context: a standard (P0443-style) executor, so any_io_executor,
/// co_spawn, use_awaitable, strands and Asio's handler tracking take it. execute() runs the
/// function at once when possibly-blocking and called inside a turn of its context on the
/// owning thread (dispatch semantics); otherwise it is queued (post).
class net_context::executor_type {
 public:
  executor_type() noexcept = default;
  explicit executor_type(net_context& ctx, bool never = false, bool tracked = false,
                         bool continuation = false) noexcept
      : ctx_(&ctx), never_(never), tracked_(tracked), continuation_(continuation) {
    if (tracked_) {
      ctx_->work_started();
    }
  }
  executor_type(const executor_type& o) noexcept
      : ctx_(o.ctx_), never_(o.never_), tracked_(o.tracked_), continuation_(o.continuation_) {
    if (tracked_ && ctx_ != nullptr) {
      ctx_->work_started();
    }
  }
  executor_type(executor_type&& o) noexcept
      : ctx_(o.ctx_), never_(o.never_), tracked_(o.tracked_), continuation_(o.continuation_) {
    o.tracked_ = false;
  }
  executor_type& operator=(const executor_type& o) noexcept {
    executor_type copy(o);
    swap(copy);
    return *this;
  }
  executor_type& operator=(executor_type&& o) noexcept {
    executor_type moved(std::move(o));
    swap(moved);
    return *this;
  }
  ~executor_type() {
    if (tracked_ && ctx_ != nullptr) {
      ctx_->work_finished();
    }
  }

  [[nodiscard]] net_context& context() const noexcept { return *ctx_; }
  [[nodiscard]] bool running_in_this_thread() const noexcept {
    return ctx_->running_in_this_thread();
  }

  template <class Function>
  void execute(Function&& f) const {
    using fn_type = std::decay_t<Function>;
    if (ctx_ == nullptr) {
      throw_no_context();  // a default-constructed executor: API misuse, reported
    }
    if (!never_ && ctx_->running_in_this_thread()) {
      fn_type local(std::forward<Function>(f));
      std::move(local)();
      return;
    }
    using alloc_type = boost::asio::recycling_allocator<void>;
    using op_type = detail::function_op<fn_type, alloc_type>;
    typename op_type::alloc_type a{alloc_type()};
    op_type* o = std::allocator_traits<typename op_type::alloc_type>::allocate(a, 1);
    new (o) op_type(fn_type(std::forward<Function>(f)), alloc_type());
    ctx_->post(o);
  }

  // queries
  static constexpr boost::asio::execution::mapping_t query(
      boost::asio::execution::mapping_t) noexcept {
    return boost::asio::execution::mapping.thread;
  }
  [[nodiscard]] boost::asio::execution_context& query(
      boost::asio::execution::context_t) const noexcept {
    return *ctx_->foreign_;
  }
  [[nodiscard]] constexpr boost::asio::execution::blocking_t query(
      boost::asio::execution::blocking_t) const noexcept {
    return never_ ? boost::asio::execution::blocking_t(boost::asio::execution::blocking.never)
                  : boost::asio::execution::blocking_t(boost::asio::execution::blocking.possibly);
  }
  [[nodiscard]] constexpr boost::asio::execution::relationship_t query(
      boost::asio::execution::relationship_t) const noexcept {
    return continuation_
               ? boost::asio::execution::relationship_t(
                     boost::asio::execution::relationship.continuation)
               : boost::asio::execution::relationship_t(boost::asio::execution::relationship.fork);
  }
  [[nodiscard]] constexpr boost::asio::execution::outstanding_work_t query(
      boost::asio::execution::outstanding_work_t) const noexcept {
    return tracked_ ? boost::asio::execution::outstanding_work_t(
                          boost::asio::execution::outstanding_work.tracked)
                    : boost::asio::execution::outstanding_work_t(
                          boost::asio::execution::outstanding_work.untracked);
  }
  template <class ProtoAllocator>
  [[nodiscard]] constexpr std::allocator<void> query(
      boost::asio::execution::allocator_t<ProtoAllocator>) const noexcept {
    return {};
  }

  // requirements
  [[nodiscard]] executor_type require(boost::asio::execution::blocking_t::possibly_t) const {
    return executor_type(*ctx_, false, tracked_, continuation_);
  }
  [[nodiscard]] executor_type require(boost::asio::execution::blocking_t::never_t) const {
    return executor_type(*ctx_, true, tracked_, continuation_);
  }
  [[nodiscard]] executor_type require(boost::asio::execution::relationship_t::fork_t) const {
    return executor_type(*ctx_, never_, tracked_, false);
  }
  [[nodiscard]] executor_type require(
      boost::asio::execution::relationship_t::continuation_t) const {
    return executor_type(*ctx_, never_, tracked_, true);
  }
  [[nodiscard]] executor_type require(boost::asio::execution::outstanding_work_t::tracked_t) const {
    return executor_type(*ctx_, never_, true, continuation_);
  }
  [[nodiscard]] executor_type require(
      boost::asio::execution::outstanding_work_t::untracked_t) const {
    return executor_type(*ctx_, never_, false, continuation_);
  }
  template <class ProtoAllocator>
  [[nodiscard]] executor_type require(boost::asio::execution::allocator_t<ProtoAllocator>) const {
    return *this;
  }

  friend bool operator==(const executor_type& a, const executor_type& b) noexcept {
    return a.ctx_ == b.ctx_ && a.never_ == b.never_ && a.tracked_ == b.tracked_ &&
           a.continuation_ == b.continuation_;
  }
  friend bool operator!=(const executor_type& a, const executor_type& b) noexcept {
    return !(a == b);
  }

 private:
  void swap(executor_type& o) noexcept {
    std::swap(ctx_, o.ctx_);
    std::swap(never_, o.never_);
    std::swap(tracked_, o.tracked_);
    std::swap(continuation_, o.continuation_);
  }
  [[noreturn]] static void throw_no_context();
  net_context* ctx_ = nullptr;
  bool never_ = false;
  bool tracked_ = false;
  bool continuation_ = false;
};

inline net_context::executor_type net_context::get_executor() noexcept {
  return executor_type(*this);
}

template <class Executor>
net_context* net_context::from(const Executor& ex) noexcept {
  boost::asio::execution_context& ctx = boost::asio::query(ex, boost::asio::execution::context);
  if (!boost::asio::has_service<detail::context_service>(ctx)) {
    return nullptr;
  }
  return boost::asio::use_service<detail::context_service>(ctx).context();
}

}  // namespace dpdk_net
