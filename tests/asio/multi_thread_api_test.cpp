// The multi-core runtime with real threads, its API around the packet path: pinning, ordinary
// threads reaching sockets through their worker's executor, one multi_acceptor whose accept loop
// runs on a plain io_context thread, graceful stop under each steering.
// g++ 12 warns (wrongly) that use_future's async_completion is used uninitialized; Boost's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <mutex>
#include <utility>

#include "multi_thread_common.hpp"

namespace dpdk_net {
namespace {
namespace multi_thread_api_test {

using namespace multi_testing;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// --- 2. pinning ---------------------------------------------------------------------------

TEST(MultiThreadPinning, EachWorkerRunsOnItsCore) {
  const std::vector<unsigned> allowed = allowed_cores();
  ASSERT_FALSE(allowed.empty());
  multi_runtime_options o;
  o.cores.assign(allowed.begin(), allowed.begin() + (allowed.size() >= 2 ? 2 : 1));
  o.pin = true;
  // The registration hook runs on each worker's own thread, pinned already, with its index.
  std::mutex hook_lock;
  std::vector<std::pair<std::size_t, std::vector<unsigned>>> hooked;
  o.on_thread_start = [&](std::size_t worker) {
    const std::lock_guard<std::mutex> g(hook_lock);
    hooked.emplace_back(worker, current_thread_affinity());
  };
  ring_link link(small_link(2, ring_steering::rss));
  std::optional<multi_runtime> rt;
  rt.emplace(link.a(), node_config(1), o);
  ASSERT_EQ(rt->size(), o.cores.size());
  rt->start();
  EXPECT_TRUE(rt->running());
  const bool filled = wait_until(
      [&] {
        for (const auto& a : rt->worker_affinity()) {
          if (a.empty()) {
            return false;
          }
        }
        return true;
      },
      milliseconds(5000));
  const std::vector<std::vector<unsigned>> affinity = rt->worker_affinity();
  rt->stop();
  rt->join();
  const std::vector<worker_stats> stats = rt->stats();  // the loop counters: after the join
  EXPECT_FALSE(rt->running());
  ASSERT_TRUE(filled);
  ASSERT_EQ(affinity.size(), o.cores.size());
  for (std::size_t k = 0; k < o.cores.size(); ++k) {
    EXPECT_EQ(affinity[k], std::vector<unsigned>{o.cores[k]}) << "worker " << k;
    EXPECT_EQ(stats[k].core, static_cast<int>(o.cores[k]));
  }
  // The main thread was not pinned by starting the workers.
  EXPECT_EQ(current_thread_affinity(), allowed);
  ASSERT_EQ(hooked.size(), o.cores.size());
  for (const auto& [worker, cpus] : hooked) {
    ASSERT_LT(worker, o.cores.size());
    EXPECT_EQ(cpus, std::vector<unsigned>{o.cores[worker]}) << "worker " << worker;
  }
}

TEST(MultiThreadPinning, CoreOutsideTheAllowedSetIsRefusedNamingTheFix) {
  const std::vector<unsigned> allowed = allowed_cores();
  unsigned outside = 0;
  while (outside <= max_core &&
         std::find(allowed.begin(), allowed.end(), outside) != allowed.end()) {
    ++outside;
  }
  ASSERT_LE(outside, max_core) << "all 1024 cores allowed: no core outside the set to refuse";
  ring_link link(small_link(2, ring_steering::rss));
  multi_runtime_options o;
  o.cores = {outside};
  try {
    multi_runtime rt(link.a(), node_config(1), o);
    FAIL() << "core " << outside << " accepted; allowed " << format_core_list(allowed);
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--cores"), std::string::npos) << what;
    EXPECT_NE(what.find(std::to_string(outside)), std::string::npos) << what;
  }
  // Not pinning: the core list only numbers the workers, any core goes.
  o.pin = false;
  multi_runtime floating_rt(link.a(), node_config(1), o);
  EXPECT_EQ(floating_rt.size(), 1U);
  EXPECT_EQ(floating_rt.stats()[0].core, -1);
}

// --- 4. ordinary threads reach a worker's socket through its executor ----------------------

net::awaitable<void> connect_on(net::any_io_executor ex, tcp::endpoint peer,
                                std::unique_ptr<tcp::socket>* out, std::promise<error_code>* done) {
  auto s = std::make_unique<tcp::socket>(ex);
  auto [ec] = co_await s->async_connect(peer, net::as_tuple(net::use_awaitable));
  *out = std::move(s);
  done->set_value(ec);
}

struct exchange_result {
  std::string echo;
  std::thread::id thread;
  bool on_worker = false;
};

net::awaitable<exchange_result> write_then_read(tcp::socket* s, std::string msg,
                                                net_context::executor_type worker) {
  exchange_result r;
  r.thread = std::this_thread::get_id();
  r.on_worker = worker.running_in_this_thread();
  co_await net::async_write(*s, net::buffer(msg), net::use_awaitable);
  r.echo.assign(msg.size(), '\0');
  co_await net::async_read(*s, net::buffer(r.echo), net::use_awaitable);
  co_return r;
}

struct thread_and_flag {
  std::thread::id thread;
  bool on_worker;
};

struct where_am_i {
  net_context::executor_type worker;
  thread_and_flag operator()() const {
    return thread_and_flag{std::this_thread::get_id(), worker.running_in_this_thread()};
  }
};

TEST(MultiThreadBridge, OrdinaryThreadUsesAWorkersSocketThroughItsExecutor) {
  thread_pair p(small_link(2, ring_steering::rss), 2, 2);
  tally tb;
  p.listen_everywhere(*p.b, tb);
  std::unique_ptr<tcp::socket> sock;  // made and connected on worker 1 of end a
  std::promise<error_code> connected;
  std::future<error_code> connected_f = connected.get_future();
  const stop_on_exit guard{&p};
  net::co_spawn(p.a->get_executor(1),
                connect_on(p.a->get_executor(1), tcp::endpoint(node_ip(2), 7), &sock, &connected),
                net::detached);
  p.start();
  ASSERT_EQ(connected_f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_FALSE(connected_f.get());
  ASSERT_TRUE(sock);

  std::string msg;
  for (std::size_t i = 0; i < 20000; ++i) {
    msg.push_back(pattern(7, i));
  }
  for (int round = 0; round < 3; ++round) {
    std::future<exchange_result> f =
        net::co_spawn(p.a->get_executor(1), write_then_read(sock.get(), msg, p.a->get_executor(1)),
                      net::use_future);
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready) << round;
    const exchange_result r = f.get();
    EXPECT_TRUE(r.echo == msg) << "round " << round << ": the echo differs";
    EXPECT_NE(r.thread, std::this_thread::get_id());
    EXPECT_TRUE(r.on_worker);
  }

  // A function posted from this thread runs on worker 0 and its value comes back.
  std::future<thread_and_flag> w0 =
      net::post(p.a->get_executor(0), net::use_future(where_am_i{p.a->get_executor(0)}));
  ASSERT_EQ(w0.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  const thread_and_flag t0 = w0.get();
  EXPECT_NE(t0.thread, std::this_thread::get_id());
  EXPECT_TRUE(t0.on_worker);
  // ... and one posted to worker 1 on another thread than worker 0's.
  std::future<thread_and_flag> w1 =
      net::post(p.a->get_executor(1), net::use_future(where_am_i{p.a->get_executor(1)}));
  ASSERT_EQ(w1.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  const thread_and_flag t1 = w1.get();
  EXPECT_NE(t1.thread, t0.thread);
  EXPECT_TRUE(t1.on_worker);

  // The connection is on worker 1, which owns it.
  p.stop();
  EXPECT_GT(p.a->worker(0).context().counters().remote_posts, 0U);
  EXPECT_EQ(p.a->flows().flow_owner(6, wire::ipv4_address{node_ip(2).to_uint()}, 7,
                                    sock->local_endpoint().port()),
            1U);
  EXPECT_TRUE(first_error(tb).empty()) << first_error(tb);
  p.sockets.push_back(std::move(sock));  // destroyed after the join, with the rest
  p.finish();
  p.expect_clean_pools("bridge");
}

// --- 5. one multi_acceptor, its accept loop on an ordinary thread ---------------------------

/// On the socket's own worker: records the flow, then echoes.
net::awaitable<void> serve_on_worker(tcp::socket s, std::size_t worker,
                                     net_context::executor_type expected, tally* t,
                                     std::atomic<std::size_t>* wrong_thread) {
  if (!expected.running_in_this_thread()) {
    ++*wrong_thread;
  }
  const auto r = s.remote_endpoint();
  t->add(tally::flow{worker, r.address().to_v4().to_uint(), r.port(), s.local_endpoint().port(),
                     true});
  co_await echo_session(std::move(s), t);
}

/// The application's one accept loop, on a plain io_context: touches the sockets only to hand
/// them to their workers.
net::awaitable<void> accept_on_io(multi_acceptor* acc, multi_runtime* rt, tally* t,
                                  std::atomic<std::size_t>* unknown_executor,
                                  std::atomic<std::size_t>* wrong_thread) {
  for (;;) {
    auto [ec, s] = co_await acc->async_accept(net::as_tuple(net::use_awaitable));
    if (ec) {
      co_return;
    }
    std::size_t worker = rt->size();
    for (std::size_t k = 0; k < rt->size(); ++k) {
      if (s.get_executor() == net::any_io_executor(rt->get_executor(k))) {
        worker = k;
      }
    }
    if (worker == rt->size()) {
      ++*unknown_executor;
      continue;
    }
    net::any_io_executor ex = s.get_executor();
    net::co_spawn(ex,
                  serve_on_worker(std::move(s), worker, rt->get_executor(worker), t, wrong_thread),
                  net::detached);
  }
}

TEST(MultiThreadAccept, OneAcceptorOnAnOrdinaryThreadHandsOutSocketsBoundToTheirOwners) {
  thread_pair p(small_link(2, ring_steering::rss), 2, 2);
  tally ta;
  tally tb;
  std::atomic<std::size_t> unknown_executor{0};
  std::atomic<std::size_t> wrong_thread{0};
  net::io_context io;
  std::optional<multi_acceptor> acc;
  acc.emplace(*p.b, tcp::endpoint(net::ip::address_v4::any(), 7));
  EXPECT_EQ(acc->workers(), 2U);
  EXPECT_EQ(acc->local_endpoint().port(), 7);
  EXPECT_EQ(p.b->flows().port_mask(6, 7), 3U);  // listening on both workers

  net::co_spawn(io, accept_on_io(&*acc, &*p.b, &tb, &unknown_executor, &wrong_thread),
                net::detached);
  std::promise<void> io_done;
  std::future<void> io_done_f = io_done.get_future();
  std::thread io_thread([&io, &io_done] {
    io.run();
    io_done.set_value();
  });
  struct io_stopper {  // on any failure: the io thread ends before what it uses
    net::io_context* io;
    std::thread* t;
    ~io_stopper() {
      io->stop();
      if (t->joinable()) {
        t->join();
      }
    }
  } stopper{&io, &io_thread};
  const stop_on_exit guard{&p};  // first out: the workers stop, then the io thread

  constexpr std::size_t n = 20;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = i % 2;
    net::co_spawn(p.a->get_executor(k),
                  echo_client(p.a->get_executor(k), k, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(i), 3000, &ta),
                  net::detached);
  }
  p.start();
  const bool done = wait_until([&] { return ta.clients_done == n; }, milliseconds(8000));
  EXPECT_TRUE(done) << ta.clients_done << " of " << n << " clients done";
  EXPECT_EQ(ta.clients_ok, n) << first_error(ta);
  EXPECT_EQ(tb.bytes_echoed, n * 3000);
  const std::vector<std::uint64_t> per = acc->accepted();
  ASSERT_EQ(per.size(), 2U);
  std::cout << "accepted per worker: " << per[0] << " " << per[1] << "\n";
  EXPECT_EQ(per[0] + per[1], n);
  EXPECT_GT(per[0], 0U);
  EXPECT_GT(per[1], 0U);
  EXPECT_EQ(unknown_executor.load(), 0U);
  EXPECT_EQ(wrong_thread.load(), 0U);

  // Closing ends the io thread's loop (operation_aborted) and closes the listeners on their
  // workers (the port is released once the sessions ended too).
  acc->close();
  EXPECT_EQ(io_done_f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(wait_until([&] { return p.b->flows().port_mask(6, 7) == 0; }, milliseconds(5000)))
      << "port 7 still listed on workers " << p.b->flows().port_mask(6, 7);
  p.stop();
  expect_owned(p.b->flows(), tb, "multi_acceptor");
  expect_owned(p.a->flows(), ta, "clients");
  {
    const std::lock_guard<std::mutex> g(tb.lock);
    EXPECT_EQ(tb.flows.size(), n);
  }
  acc.reset();
  p.finish();
  p.expect_clean_pools("multi_acceptor");
}

// --- 6. graceful stop -----------------------------------------------------------------------

struct idle_client_state {
  std::atomic<std::size_t> ready{0};
  std::atomic<std::size_t> eof{0};
  std::atomic<std::size_t> other{0};
  tally t;
};

/// Connects, checks one echo, then waits idle for the server's end of the stream.
net::awaitable<void> idle_client(net::any_io_executor ex, std::size_t worker, tcp::endpoint peer,
                                 std::uint32_t id, idle_client_state* st) {
  tcp::socket s(ex);
  auto [cec] = co_await s.async_connect(peer, net::as_tuple(net::use_awaitable));
  if (cec) {
    st->t.error("connect: " + cec.message());
    ++st->other;
    co_return;
  }
  st->t.add(tally::flow{worker, peer.address().to_v4().to_uint(), peer.port(),
                        s.local_endpoint().port(), false});
  std::array<char, 64> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = pattern(id, i);
  }
  std::array<char, 64> in{};
  auto [wec, w] = co_await net::async_write(s, net::buffer(out), net::as_tuple(net::use_awaitable));
  auto [rec, r] = co_await net::async_read(s, net::buffer(in), net::as_tuple(net::use_awaitable));
  if (wec || rec || in != out) {
    st->t.error("echo: " + wec.message() + " / " + rec.message());
    ++st->other;
    co_return;
  }
  ++st->ready;
  std::array<char, 16> more{};
  auto [ec, m] = co_await s.async_read_some(net::buffer(more), net::as_tuple(net::use_awaitable));
  if (ec == net::error::eof && m == 0) {
    ++st->eof;
  } else {
    st->t.error("after graceful stop: " + ec.message() + ", " + std::to_string(m) + " bytes");
    ++st->other;
  }
}

/// End b (an echo server on every worker) stops gracefully while end a's clients sit idle on
/// their connections: each client reads eof, closes, and the drain ends as soon as every
/// connection of b is closed -- well before the `drain` limit.
void graceful_stop_case(ring_steering steering, std::uint16_t workers, const char* name) {
  thread_pair p(small_link(workers, steering), workers, workers);
  tally tb;
  idle_client_state st;
  const stop_on_exit guard{&p};
  p.listen_everywhere(*p.b, tb);
  const std::size_t n = 6U * workers;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = i % workers;
    net::co_spawn(p.a->get_executor(k),
                  idle_client(p.a->get_executor(k), k, tcp::endpoint(node_ip(2), 7),
                              static_cast<std::uint32_t>(i), &st),
                  net::detached);
  }
  p.start();
  ASSERT_TRUE(wait_until([&] { return st.ready + st.other == n; }, milliseconds(5000)))
      << name << ": " << st.ready << " of " << n << " connected";
  ASSERT_EQ(st.ready, n) << name << ": " << first_error(st.t);
  const auto before = steady::now();
  p.b->graceful_stop(2 * second);
  const double took = seconds_since(before);
  EXPECT_FALSE(p.b->running());
  std::cout << name << ": graceful_stop took " << took << " s\n";
  // Every connection closes in a few round trips (milliseconds); the 2 s limit is not reached.
  EXPECT_LT(took, 1.5) << name << ": the drain waited for its limit";
  EXPECT_TRUE(wait_until([&] { return st.eof + st.other == n; }, milliseconds(5000)))
      << name << ": " << st.eof << " of " << n << " saw eof";
  EXPECT_EQ(st.eof, n) << name << ": " << first_error(st.t);
  p.stop();
  expect_owned(p.a->flows(), st.t, name);
  p.finish();
  p.expect_clean_pools(name);
}

TEST(MultiThreadGracefulStop, IdleClientsSeeEndOfStream) {
  graceful_stop_case(ring_steering::rss, 2, "rss2");
}

TEST(MultiThreadGracefulStop, SoftwareSteeringSameQueue) {
  graceful_stop_case(ring_steering::same_queue, 2, "same_queue2");
}

TEST(MultiThreadGracefulStop, SoftwareSteeringEverythingOnQueueZero) {
  // Frames of every worker's connections land on queue 0: worker 0 must keep taking them (and
  // handing them over) until the others have drained.
  graceful_stop_case(ring_steering::queue0, 3, "queue0_3");
}

}  // namespace multi_thread_api_test
}  // namespace
}  // namespace dpdk_net
