#include "dpdk_net/asio/multi_acceptor.hpp"

#include <deque>
#include <list>
#include <mutex>
#include <stdexcept>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include "dpdk_net/asio/error.hpp"
#include "dpdk_net/asio/steady_timer.hpp"

namespace dpdk_net {

// The lock guards the hand-out queue and the waiters: taken once per accepted connection and
// per async_accept (the control path), never per packet.
struct multi_acceptor::state : std::enable_shared_from_this<multi_acceptor::state> {
  using executor_type = multi_acceptor::executor_type;
  struct ready_socket {
    std::size_t worker;
    tcp::socket socket;
  };
  struct waiter {
    std::uint64_t id;
    accept_handler handler;
    executor_type ex;
  };

  std::vector<net_context::executor_type> workers;
  // [k]: used on worker k only. Shared so that close() can hand each to a task on its own worker:
  // a listener is destroyed there, or with its worker's context, never after that context.
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;
  tcp::endpoint local;
  std::mutex lock;
  std::deque<ready_socket> ready;
  std::list<waiter> waiters;
  std::vector<std::uint64_t> accepted;
  // [k]: worker k's listener is gone without close() (a graceful stop closed it, its stack
  // crashed); once every worker's is, waiting accepts fail.
  std::vector<bool> dead;
  std::size_t dead_count = 0;
  std::uint64_t next_id = 1;
  bool closed = false;

  void arm(std::size_t k);
  void on_accepted(std::size_t k, boost::system::error_code ec, tcp::socket s);
  void complete(accept_handler h, const executor_type& ex, boost::system::error_code ec,
                tcp::socket s);
  void cancel(std::uint64_t id);
};

namespace {

using state_ptr = std::shared_ptr<multi_acceptor::state>;

// Named function objects (g++ 12 and capturing lambdas in coroutines: see DEVELOPERS.md).
struct accepted_handler {
  state_ptr st;
  std::size_t worker;
  void operator()(boost::system::error_code ec, tcp::socket s) const {
    st->on_accepted(worker, ec, std::move(s));
  }
};

// After an accept error other than abort (no socket slot left, ...), the worker tries again a
// millisecond later, not at once (a busy loop until a slot frees). The timer lives in its own
// wait handler, on that worker.
struct retry_wait {
  state_ptr st;
  std::size_t worker;
  std::shared_ptr<steady_timer> timer;
  void operator()(boost::system::error_code ec) const {
    if (!ec) {
      st->arm(worker);
    }
  }
};

struct arm_task {
  state_ptr st;
  std::size_t worker;
  void operator()() const { st->arm(worker); }
};

struct close_task {
  std::shared_ptr<tcp::acceptor> acceptor;
  void operator()() {
    // On the worker's own thread: the listener closes (its pending accept aborts) and goes.
    acceptor.reset();
  }
};

// Destroys a socket nobody took on its own worker.
struct drop_socket_task {
  std::shared_ptr<tcp::socket> socket;
  void operator()() { socket.reset(); }
};

// An accepted socket on its way to the handler. If the handler's executor never runs the task
// (its io_context is destroyed first), the socket still must close on its own worker: the box
// sends it back there instead of closing it on the destroying thread.
struct socket_box {
  explicit socket_box(tcp::socket s) : socket(std::move(s)) {}
  socket_box(const socket_box&) = delete;
  socket_box& operator=(const socket_box&) = delete;
  ~socket_box();
  tcp::socket socket;
  bool taken = false;
};

struct deliver_task {
  multi_acceptor::accept_handler handler;
  boost::system::error_code ec;
  std::shared_ptr<socket_box> box;  // shared: a posted function must be copyable in Asio 1.26
  void operator()() {
    handler.get_cancellation_slot().clear();
    box->taken = true;
    std::move(handler)(ec, std::move(box->socket));
  }
};

socket_box::~socket_box() {
  if (!taken) {
    const auto ex = socket.get_executor();
    boost::asio::post(ex, drop_socket_task{std::make_shared<tcp::socket>(std::move(socket))});
  }
}

struct cancel_handler {
  std::weak_ptr<multi_acceptor::state> st;
  std::uint64_t id;
  void operator()(boost::asio::cancellation_type type) const {
    if ((type & boost::asio::cancellation_type::total) == boost::asio::cancellation_type::none) {
      return;
    }
    if (state_ptr s = st.lock()) {
      s->cancel(id);
    }
  }
};

}  // namespace

void multi_acceptor::state::arm(std::size_t k) {
  std::shared_ptr<tcp::acceptor> a;
  {
    const std::lock_guard<std::mutex> g(lock);
    if (closed || dead[k] || !acceptors[k]) {
      return;
    }
    a = acceptors[k];
  }
  a->async_accept(accepted_handler{shared_from_this(), k});
}

void multi_acceptor::state::on_accepted(std::size_t k, boost::system::error_code ec,
                                        tcp::socket s) {
  if (ec) {
    // Closed (aborted), or the listener is gone for good (its stack crashed or was replaced:
    // backend_down, then bad_descriptor): a retry could only fail again, every millisecond.
    if (ec != boost::asio::error::operation_aborted && ec != boost::asio::error::bad_descriptor &&
        ec != error::backend_down) {
      auto timer = std::make_shared<steady_timer>(workers[k], std::chrono::milliseconds(1));
      timer->async_wait(retry_wait{shared_from_this(), k, timer});
      return;
    }
    // The listener is gone. Once every worker's is, nothing will be accepted: the waiting
    // accepts complete with the error (operation_aborted after a graceful stop), as a plain
    // acceptor's pending accept does.
    std::list<waiter> failed;
    {
      const std::lock_guard<std::mutex> g(lock);
      if (closed || dead[k]) {
        return;
      }
      dead[k] = true;
      if (++dead_count < workers.size()) {
        return;
      }
      failed.swap(waiters);
    }
    for (waiter& w : failed) {
      complete(std::move(w.handler), w.ex, ec, tcp::socket(workers[0]));
    }
    return;
  }
  std::unique_lock<std::mutex> g(lock);
  if (closed) {
    return;  // s closes here, on its own worker
  }
  ++accepted[k];
  if (waiters.empty()) {
    ready.push_back(ready_socket{k, std::move(s)});  // re-armed when someone takes it
    return;
  }
  waiter w = std::move(waiters.front());
  waiters.pop_front();
  g.unlock();
  complete(std::move(w.handler), w.ex, {}, std::move(s));
  arm(k);
}

void multi_acceptor::state::complete(accept_handler h, const executor_type& ex,
                                     boost::system::error_code ec, tcp::socket s) {
  boost::asio::post(ex, deliver_task{std::move(h), ec, std::make_shared<socket_box>(std::move(s))});
}

void multi_acceptor::state::cancel(std::uint64_t id) {
  std::unique_lock<std::mutex> g(lock);
  for (auto it = waiters.begin(); it != waiters.end(); ++it) {
    if (it->id == id) {
      waiter w = std::move(*it);
      waiters.erase(it);
      g.unlock();
      complete(std::move(w.handler), w.ex, boost::asio::error::operation_aborted,
               tcp::socket(workers[0]));
      return;
    }
  }
}

multi_acceptor::multi_acceptor(std::span<const net_context::executor_type> workers,
                               const tcp::endpoint& local, int backlog)
    : state_(std::make_shared<state>()) {
  if (workers.empty()) {
    throw std::invalid_argument("multi_acceptor: no workers");
  }
  for (const auto& ex : workers) {
    const net_context& ctx = detail::context_of(boost::asio::any_io_executor(ex));
    // A real runtime's context has no owner until its worker runs a turn (the constructing
    // thread never owns it: net_context::attach), and owner_is_this_thread() is false then.
    if (ctx.has_owner() && !ctx.owner_is_this_thread()) {
      throw std::logic_error(
          "multi_acceptor: construct it before the workers run (it listens on each worker's "
          "stack from this thread)");
    }
  }
  state_->workers.assign(workers.begin(), workers.end());
  state_->accepted.assign(workers.size(), 0);
  state_->dead.assign(workers.size(), false);
  for (const auto& ex : workers) {
    auto a = std::make_shared<tcp::acceptor>(boost::asio::any_io_executor(ex));
    a->open(local.protocol() == boost::asio::ip::tcp::v4() ? tcp::v4() : tcp::v4());
    a->bind(state_->local.port() == 0 ? local : state_->local);  // port 0: the first one's
    a->listen(backlog);
    if (state_->local.port() == 0) {
      state_->local = a->local_endpoint();
    }
    state_->acceptors.push_back(std::move(a));
  }
  for (std::size_t k = 0; k < workers.size(); ++k) {
    boost::asio::post(state_->workers[k], arm_task{state_, k});
  }
}

multi_acceptor::~multi_acceptor() {
  close();
}

multi_acceptor::executor_type multi_acceptor::fallback() const {
  return state_->workers[0];
}

void multi_acceptor::start(accept_handler h, boost::asio::cancellation_slot slot,
                           executor_type ex) {
  std::unique_lock<std::mutex> g(state_->lock);
  if (state_->closed || (state_->ready.empty() && state_->dead_count == state_->workers.size())) {
    g.unlock();
    state_->complete(std::move(h), ex, boost::asio::error::bad_descriptor,
                     tcp::socket(state_->workers[0]));
    return;
  }
  if (!state_->ready.empty()) {
    state::ready_socket r = std::move(state_->ready.front());
    state_->ready.pop_front();
    g.unlock();
    state_->complete(std::move(h), ex, {}, std::move(r.socket));
    boost::asio::post(state_->workers[r.worker], arm_task{state_, r.worker});
    return;
  }
  const std::uint64_t id = state_->next_id++;
  if (slot.is_connected()) {
    slot.emplace<cancel_handler>(cancel_handler{state_, id});
  }
  state_->waiters.push_back(state::waiter{id, std::move(h), std::move(ex)});
}

void multi_acceptor::close() {
  std::deque<state::ready_socket> ready;
  std::list<state::waiter> waiters;
  std::vector<std::shared_ptr<tcp::acceptor>> listeners;
  {
    const std::lock_guard<std::mutex> g(state_->lock);
    if (state_->closed) {
      return;
    }
    state_->closed = true;
    ready.swap(state_->ready);
    waiters.swap(state_->waiters);
    listeners.swap(state_->acceptors);
  }
  for (state::waiter& w : waiters) {
    state_->complete(std::move(w.handler), w.ex, boost::asio::error::operation_aborted,
                     tcp::socket(state_->workers[0]));
  }
  for (state::ready_socket& r : ready) {
    boost::asio::post(state_->workers[r.worker],
                      drop_socket_task{std::make_shared<tcp::socket>(std::move(r.socket))});
  }
  for (std::size_t k = 0; k < listeners.size(); ++k) {
    boost::asio::post(state_->workers[k], close_task{std::move(listeners[k])});
  }
}

tcp::endpoint multi_acceptor::local_endpoint() const {
  return state_->local;
}

std::size_t multi_acceptor::workers() const noexcept {
  return state_->workers.size();
}

std::vector<std::uint64_t> multi_acceptor::accepted() const {
  const std::lock_guard<std::mutex> g(state_->lock);
  return state_->accepted;
}

}  // namespace dpdk_net
