// Third review of the TCP engine (issue 10: the memory budget, zero-copy send, offloads): each
// finding a regression test that fails until the defect it names is fixed (one defect per test;
// the rule it breaks in the comment above it). Two stacks back to back (tcp_duo.hpp), a the
// sender under test, b its peer; every run is bounded by simulated time.
#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <vector>

#include "dpdk_net/wire/error.hpp"
#include "tcp_duo.hpp"

namespace dpdk_net::stack {
namespace {
namespace tcp_review3_test {

using testing::duo;
using testing::duo_a_ip;
using testing::duo_b_ip;
using testing::duo_byte;
using testing::duo_config;
using socket_id = tcp_layer::socket_id;

const std::error_code would_block = std::make_error_code(std::errc::resource_unavailable_try_again);

/// n connections a -> b, established and accepted (servers[i] is b's end of clients[i]).
struct fleet {
  socket_id listener = 0;
  std::vector<socket_id> clients, servers;

  fleet(duo& d, std::size_t n, const tcp_socket_options* client_options = nullptr,
        const std::vector<tcp_socket_options>* per_client = nullptr)
      : clients(n), servers(n, tcp_layer::invalid_socket) {
    EXPECT_FALSE(d.b().tcp().open(listener));
    EXPECT_FALSE(d.b().tcp().bind(listener, 80));
    EXPECT_FALSE(d.b().tcp().listen(listener, 64));
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_FALSE(d.a().tcp().open(clients[i]));
      if (per_client != nullptr) {
        EXPECT_FALSE(d.a().tcp().set_options(clients[i], (*per_client)[i]));
      } else if (client_options != nullptr) {
        EXPECT_FALSE(d.a().tcp().set_options(clients[i], *client_options));
      }
      EXPECT_FALSE(d.a().tcp().connect(clients[i], tcp_endpoint{duo_b_ip, 80}, d.now()));
      // One at a time: accepted in connect order.
      d.run(d.now() + second,
            [&] { return d.b().tcp().accept(listener, servers[i]) == std::error_code{}; });
      EXPECT_NE(servers[i], tcp_layer::invalid_socket) << "connection " << i;
    }
    drain_events(d);
  }
  static void drain_events(duo& d) {
    std::array<socket_event, 64> ev{};
    while (d.a().poll_events(ev) == ev.size()) {
    }
    while (d.b().poll_events(ev) == ev.size()) {
    }
  }
};

/// The events a reports until `limit` (the application only polls).
std::vector<socket_event> events_of_a(duo& d, time_ns limit) {
  std::vector<socket_event> all;
  std::array<socket_event, 64> ev{};
  d.app = [&] {
    std::size_t n = 0;
    while ((n = d.a().poll_events(ev)) != 0) {
      all.insert(all.end(), ev.begin(), ev.begin() + static_cast<std::ptrdiff_t>(n));
    }
  };
  d.run(limit);
  d.app = nullptr;
  return all;
}

bool writable_reported(const std::vector<socket_event>& ev, socket_id s) {
  for (const socket_event& e : ev) {
    if (e.socket == s && (e.events & socket_events::writable) != 0) {
      return true;
    }
  }
  return false;
}

/// An application buffer whose release hook counts.
struct app_buffer {
  std::vector<std::byte> bytes;
  external_buffer ext;
  int released = 0;
  /// Bytes [first, first + size) of stream 9.
  explicit app_buffer(std::size_t size, std::size_t first = 0) : bytes(size) {
    for (std::size_t i = 0; i < size; ++i) {
      bytes[i] = duo_byte(9, first + i);
    }
    ext.data = bytes.data();
    ext.size = bytes.size();
    ext.on_release = [](external_buffer&, void* self) noexcept {
      ++static_cast<app_buffer*>(self)->released;
    };
    ext.context = this;
  }
  app_buffer(const app_buffer&) = delete;
  app_buffer& operator=(const app_buffer&) = delete;
};

stack_config budget(stack_config c, std::size_t memory, std::size_t reserve) {
  c.tcp.send_buffer = 4096;  // one 4 KiB ring per sender
  c.tcp.receive_buffer = 4096;
  c.tcp.memory_budget = memory;
  c.tcp.receive_reserve = reserve;
  return c;
}

// --- the budget's send waiters --------------------------------------------------------------

// tcp_buffers.cpp, give_ring: a ring coming back wakes exactly one budget waiter, the first in
// line, whatever that waiter is. A waiter the application has since closed (orphaned: notify()
// tells no one) or one that is already closed by a RST still stands in budget_wait_ (only
// free_connection takes it out), so it swallows the wake-up, and the next waiter - whose send()
// would now succeed - is never told: an event-driven application waits for `writable` forever
// (the contract of send(): "0 with resource_unavailable_try_again when full: wait for
// writable"). Suggested fix: take a waiter out of budget_wait_ in become_closed()/close() (not
// only in free_connection), and in give_ring wake every waiter (or keep waking until one that
// is attached and sendable was told).
TEST(TcpReview3, ARingComingBackWakesTheNextBudgetWaiterWhenTheFirstWasClosed) {
  // Room for one 4 KiB send ring: c0 holds it, c1 and c2 wait (c1 first).
  duo d(budget(duo_config(duo_a_ip, 1), 4096, 0), duo_config(duo_b_ip, 2));
  fleet f(d, 3);
  tcp_layer& t = d.a().tcp();
  const std::vector<std::byte> data(1000, std::byte{7});
  ASSERT_EQ(t.send(f.clients[0], data).bytes, data.size());
  ASSERT_EQ(t.send(f.clients[1], data).error, would_block);
  ASSERT_EQ(t.send(f.clients[2], data).error, would_block);
  ASSERT_FALSE(t.close(f.clients[1], d.now()));  // the application gives up on c1
  const auto ev = events_of_a(d, d.now() + 2 * second);
  ASSERT_EQ(d.a().counters().tcp.buffer_bytes, 0U) << "premise: c0's ring came back";
  EXPECT_TRUE(writable_reported(ev, f.clients[2]))
      << "c2 waits for `writable` while the whole budget is free (the wake-up went to closed c1)";
  EXPECT_EQ(t.send(f.clients[2], data).bytes, data.size()) << "it would have succeeded";
}

// The same lost wake-up with nobody closing anything: one ring coming back makes room for two
// waiters' rings, but only the first is told. The second waits until the first's own ring comes
// back - or forever, if the first has nothing to send after all (it was told `writable`, which
// obliges it to nothing).
TEST(TcpReview3, ARingThatMakesRoomForTwoWaitersWakesBoth) {
  duo d(budget(duo_config(duo_a_ip, 1), 8192, 0), duo_config(duo_b_ip, 2));
  tcp_socket_options big;
  big.send_buffer = 8192;  // c0's ring is 8 KiB: the whole budget
  const std::vector<tcp_socket_options> opts{big, {}, {}};
  fleet f(d, 3, nullptr, &opts);
  tcp_layer& t = d.a().tcp();
  const std::vector<std::byte> data(1000, std::byte{7});
  ASSERT_EQ(t.send(f.clients[0], data).bytes, data.size());
  ASSERT_EQ(t.send(f.clients[1], data).error, would_block);
  ASSERT_EQ(t.send(f.clients[2], data).error, would_block);
  const auto ev = events_of_a(d, d.now() + 2 * second);
  ASSERT_EQ(d.a().counters().tcp.buffer_bytes, 0U) << "premise: c0's 8 KiB ring came back";
  EXPECT_TRUE(writable_reported(ev, f.clients[1]));
  EXPECT_TRUE(writable_reported(ev, f.clients[2]))
      << "8 KiB came back, each waiter needs 4 KiB, but only the first was told";
}

// free_connection removes the slot from events_ first, then release_buffers -> give_ring wakes
// the first budget waiter - which can be the connection being freed (it holds a receive ring
// and waits for a send ring), still `attached` when close() frees a connection a RST already
// closed. notify() then puts the freed slot back on events_ with `writable`, and poll_events
// reports it under the id the slot's next socket will have (the generation was bumped): an
// event for a socket that does not exist (and, once the slot is reused, for a stranger). The
// wake-up is lost for the real waiter too. Suggested fix: in release_buffers leave
// budget_wait_ before giving the rings back (and/or in free_connection clear attached/events
// before release_buffers).
TEST(TcpReview3, FreeingABudgetWaiterReportsNoEventForItsDeadId) {
  // Budget 8 KiB, reserve 4 KiB: one send ring; a receive ring may use the reserve.
  duo d(budget(duo_config(duo_a_ip, 1), 8192, 4096), duo_config(duo_b_ip, 2));
  fleet f(d, 3);
  tcp_layer& t = d.a().tcp();
  d.drop_a = [](std::uint64_t, const packet&) { return true; };  // a's data is never acknowledged
  const std::vector<std::byte> data(1000, std::byte{7});
  ASSERT_EQ(t.send(f.clients[0], data).bytes, data.size());  // c0 holds the send ring
  ASSERT_EQ(d.b().tcp().send(f.servers[1], data).bytes, data.size());
  d.run(d.now() + 10 * millisecond);
  ASSERT_EQ(t.readable_bytes(f.clients[1]), data.size()) << "premise: c1 holds a receive ring";
  ASSERT_EQ(t.send(f.clients[1], data).error, would_block) << "premise: c1 waits for the budget";
  ASSERT_EQ(t.send(f.clients[2], data).error, would_block) << "premise: c2 waits behind it";
  ASSERT_FALSE(d.b().tcp().abort(f.servers[1], d.now()));  // b resets c1
  d.run(d.now() + 10 * millisecond);
  ASSERT_EQ(t.info(f.clients[1])->state, tcp_state::closed) << "premise: the RST closed c1";
  fleet::drain_events(d);
  ASSERT_FALSE(t.close(f.clients[1], d.now()));  // frees c1 (and its receive ring)
  std::array<socket_event, 16> ev{};
  const std::size_t n = d.a().poll_events(ev);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(t.info(ev[i].socket).has_value())
        << "event " << int{ev[i].events} << " for id " << ev[i].socket << " that names no socket";
  }
  // (c2 is rightly not woken: c1's receive ring came back, but c0's send ring still fills the
  // send share, so c2 would find no room.)
  bool c2_told = false;
  for (std::size_t i = 0; i < n; ++i) {
    c2_told = c2_told || (ev[i].socket == f.clients[2] && (ev[i].events & socket_events::writable));
  }
  EXPECT_FALSE(c2_told) << "no send room yet: a wake-up would only make it wait again";
}

// --- zero-copy --------------------------------------------------------------------------------

// send_external returns resource_unavailable_try_again when no extent table is free
// (zero_copy_connections) and tells the caller to "wait for `writable`". But `writable` is only
// ever raised by an ACK of this connection's own data (process_ack) or a budget ring
// (give_ring): a connection with nothing queued never gets it when another connection's table
// is freed (free_extent_table wakes no one), so the application waits forever. Suggested fix: a
// wait list for extent tables, like budget_wait_, woken by free_extent_table.
TEST(TcpReview3, AFreedExtentTableWakesAConnectionThatWaitedForOne) {
  stack_config ca = duo_config(duo_a_ip, 1);
  ca.tx_chaining = true;
  ca.tcp.zero_copy_connections = 1;
  duo d(ca, duo_config(duo_b_ip, 2));
  fleet f(d, 2);
  tcp_layer& t = d.a().tcp();
  app_buffer buf(10000);
  ASSERT_EQ(t.send_external(f.clients[0], buf.ext, 0, 10000).bytes, 10000U);
  const io_result r = t.send_external(f.clients[1], buf.ext, 0, 10000);
  ASSERT_EQ(r.error, would_block) << "premise: the only extent table is c0's";
  const auto ev = events_of_a(d, d.now() + 2 * second);
  ASSERT_EQ(d.a().counters().tcp.external_buffers, 0U) << "premise: c0's data was acknowledged";
  EXPECT_TRUE(writable_reported(ev, f.clients[1]))
      << "c1 was told to wait for `writable`; the table is free but no one said so";
  EXPECT_EQ(t.send_external(f.clients[1], buf.ext, 0, 10000).bytes, 10000U);
}

// send_external of more than the send buffer (send_limit) on an empty queue returns
// resource_unavailable_try_again ("wait for `writable`"), but nothing will ever make room for
// it: all or nothing can never be all. The application waits for ever (or spins). The
// contract should say so with an error that is not "try again" (invalid_argument or
// message_size), or accept it when the queue is empty. (TcpZeroCopy.RefusesBadRanges... asserts
// the try-again today; it would change with the fix.)
TEST(TcpReview3, SendExternalLargerThanTheSendBufferIsNotTryAgain) {
  stack_config ca = duo_config(duo_a_ip, 1);
  ca.tx_chaining = true;
  duo d(ca, duo_config(duo_b_ip, 2));
  fleet f(d, 1);
  tcp_layer& t = d.a().tcp();
  app_buffer buf(ca.tcp.send_buffer + 1);
  const io_result first = t.send_external(f.clients[0], buf.ext, 0, buf.bytes.size());
  ASSERT_EQ(first.bytes, 0U);
  const auto ev = events_of_a(d, d.now() + 5 * second);
  const io_result again = t.send_external(f.clients[0], buf.ext, 0, buf.bytes.size());
  const bool told_to_wait = first.error == would_block;
  EXPECT_FALSE(told_to_wait && !(writable_reported(ev, f.clients[0]) && again.bytes != 0))
      << "told to wait for `writable` on an empty queue; writable "
      << (writable_reported(ev, f.clients[0]) ? "came" : "never came") << ", the retry got "
      << again.bytes << " bytes (" << again.error.message() << ")";
}

// A connection reset by the peer (or timed out) while the application still holds its id keeps
// its send ring and every external reference until the application calls close():
// become_closed() releases nothing, only free_connection() does. The bytes can never be sent
// again, yet the budget counts the ring (starving other connections' sends) and the external
// buffers' release hooks do not run although "the connection is gone" (send_external's
// contract). Suggested fix: in become_closed() (or fail()) drop the send side: the send ring,
// the extent table's references and budget_wait_ (the receive ring stays for unread data).
TEST(TcpReview3, AResetConnectionReleasesItsSendBuffersBeforeClose) {
  stack_config ca = duo_config(duo_a_ip, 1);
  ca.tx_chaining = true;
  stack_config cb = duo_config(duo_b_ip, 2);
  cb.tcp.receive_buffer = 4096;  // b takes little and does not read: a's data stays queued
  duo d(ca, cb);
  fleet f(d, 1);
  tcp_layer& t = d.a().tcp();
  app_buffer buf(64 * 1024);
  ASSERT_EQ(t.send_external(f.clients[0], buf.ext, 0, buf.bytes.size()).bytes, buf.bytes.size());
  buf.ext.drop_reference();  // the creator's reference: the stack's remains
  const std::vector<std::byte> copied(5000, std::byte{3});
  ASSERT_EQ(t.send(f.clients[0], copied).bytes, copied.size());
  d.run(d.now() + 100 * millisecond);
  ASSERT_EQ(buf.released, 0) << "premise: the peer has not taken it all";
  ASSERT_FALSE(d.b().tcp().abort(f.servers[0], d.now()));
  d.run(d.now() + 100 * millisecond);
  ASSERT_EQ(t.error(f.clients[0]), std::make_error_code(std::errc::connection_reset));
  EXPECT_EQ(buf.released, 1) << "reset: the bytes will never be sent, the buffer is still held";
  EXPECT_EQ(d.a().counters().tcp.external_buffers, 0U);
  EXPECT_EQ(d.a().counters().tcp.buffer_bytes, 0U) << "a dead connection's send ring in the budget";
  EXPECT_FALSE(t.close(f.clients[0], d.now()));
  EXPECT_EQ(buf.released, 1) << "once";
}

// --- the budget and the configuration ---------------------------------------------------------

// take_receive_ring takes a ring of the whole receive buffer (what was promised) or nothing. A
// receive buffer the budget cannot hold - valid for set_options and validate() (up to 2^30),
// e.g. 1 GiB with the default 512 MiB budget - makes every data segment a receive_budget_drop:
// the connection establishes, advertises its window, and never receives a byte (the peer
// retransmits until it gives up). Suggested fix: refuse (set_options / validate_tcp) a receive
// buffer whose ring exceeds memory_budget (and say it in tcp.hpp), or clamp rcv_buffer (and
// hence the advertised window) to what the budget can back when the connection starts.
TEST(TcpReview3, AReceiveBufferTheBudgetCannotHoldStillReceivesOrIsRefused) {
  duo d(duo_config(duo_a_ip, 1), duo_config(duo_b_ip, 2));  // default budget: 512 MiB
  tcp_socket_options o;
  o.receive_buffer = 1U << 30U;
  socket_id listener = 0, client = 0, server = tcp_layer::invalid_socket;
  ASSERT_FALSE(d.b().tcp().open(listener));
  ASSERT_FALSE(d.b().tcp().bind(listener, 80));
  ASSERT_FALSE(d.b().tcp().listen(listener, 4));
  ASSERT_FALSE(d.a().tcp().open(client));
  const std::error_code set = d.a().tcp().set_options(client, o);
  if (set) {
    SUCCEED() << "refused: " << set.message();  // the fix may be to refuse it
    return;
  }
  ASSERT_FALSE(d.a().tcp().connect(client, tcp_endpoint{duo_b_ip, 80}, d.now()));
  d.run(d.now() + second,
        [&] { return d.b().tcp().accept(listener, server) == std::error_code{}; });
  ASSERT_NE(server, tcp_layer::invalid_socket);
  const std::vector<std::byte> data(1000, std::byte{1});
  ASSERT_EQ(d.b().tcp().send(server, data).bytes, data.size());
  d.run(d.now() + 10 * second, [&] { return d.a().tcp().readable_bytes(client) != 0; });
  EXPECT_EQ(d.a().tcp().readable_bytes(client), data.size())
      << "receive_budget_drops " << d.a().counters().tcp.receive_budget_drops;
}

// --- offloads -----------------------------------------------------------------------------------

// emit_connection builds TSO super-frames whenever the device chains and offers
// tcp_segmentation; build_frame writes DPDK's TSO seed (pseudo-header sum without length) only
// when tcp_checksum is offloaded too, else the full software checksum of the super-frame. A
// device (or a stack_config) with TSO but without TCP checksum offload then gets super-frames
// whose checksum field is not the seed: every piece leaves with a wrong checksum (the memory
// device counts tx_seed_mismatch; DPDK: RTE_MBUF_F_TX_TCP_SEG implies TCP_CKSUM, and IPv4 TSO
// wants IP_CKSUM with a zero field). The peer drops them all and only RTO retransmissions (one
// MSS, no TSO) get through. Suggested fix: TSO only with tcp_checksum (and ipv4_checksum)
// offloaded - or, under TSO, always write the seeds and request both checksums.
TEST(TcpReview3, TsoWithoutChecksumOffloadPutsRightChecksumsOnTheWire) {
  memory_link_config link;
  link.offloads = {offload::tcp_segmentation};
  link.pool_size = 8192;
  link.ring_size = 1024;
  stack_config ca = duo_config(duo_a_ip, 1);
  stack_config cb = duo_config(duo_b_ip, 2);
  {
    memory_link_config small = link;
    small.pool_size = 16;
    memory_link probe(small);
    use_device(ca, probe.a().info());
    use_device(cb, probe.b().info());
  }
  ASSERT_TRUE(ca.tx_chaining) << "premise: the memory device chains";
  duo d(ca, cb, &link);
  fleet f(d, 1);
  constexpr std::size_t total = 256 * 1024;
  std::vector<std::byte> source(total);
  for (std::size_t i = 0; i < total; ++i) {
    source[i] = duo_byte(3, i);
  }
  std::size_t sent = 0, got = 0;
  bool wrong = false;
  std::vector<std::byte> in(65536);
  d.app = [&] {
    while (sent < total) {
      const auto r = d.a().tcp().send(f.clients[0], std::span(source).subspan(sent));
      sent += r.bytes;
      if (r.bytes == 0) {
        break;
      }
    }
    while (true) {
      const auto r = d.b().tcp().receive(f.servers[0], in);
      for (std::size_t i = 0; i < r.bytes && !wrong; ++i) {
        wrong = in[i] != source[got + i];
      }
      got += r.bytes;
      if (r.bytes == 0) {
        break;
      }
    }
    fleet::drain_events(d);
  };
  d.run(d.now() + 120 * second, [&] { return got == total; });
  EXPECT_EQ(got, total);
  EXPECT_FALSE(wrong);
  // TSO is used only with both checksum offloads (DPDK wants the TSO seeds and the IPv4
  // checksum offloaded): here the stack segments and checksums in software.
  EXPECT_EQ(d.a().counters().tcp.tso_frames, 0U) << "no TSO without checksum offload";
  EXPECT_EQ(
      d.b().counters().malformed[static_cast<std::size_t>(wire::wire_error::tcp_bad_checksum)], 0U)
      << "TSO pieces with wrong checksums";
  EXPECT_EQ(d.a().counters().tcp.retransmits, 0U) << "a clean link: nothing to retransmit";
}

// --- receive
// --------------------------------------------------------------------------------------

// stack::receive linearizes a chained frame only if it fits one pool buffer; otherwise it goes on
// with the chain and the parsers read its first segment alone - an IPv4 total length beyond that
// segment, dropped as malformed (nothing says why: frames_linearized and no_buffer stay 0). With a
// jumbo MTU every full-sized segment is such a frame (the memory device chains a piece larger than
// one buffer, as a scattering NIC does): the connection establishes and never moves data. A send
// path that chains pool buffers for one frame (append_copy) is received by nobody, ourselves
// included. Suggested fix: parse from a linearized copy into a chain-aware path (or a large
// scratch buffer), or refuse at validate() an MTU whose frame exceeds one pool buffer, and count
// the drop (today: malformed[ip_length_exceeds_frame], as if the frame were bad).
TEST(TcpReview3, AJumboFrameInSeveralBuffersIsReceived) {
  memory_link_config link;
  link.mtu = 9000;  // frames of 9014 bytes in buffers of 2048: chains both ways
  stack_config ca = duo_config(duo_a_ip, 1);
  stack_config cb = duo_config(duo_b_ip, 2);
  {
    memory_link_config small = link;
    small.pool_size = 16;
    memory_link probe(small);
    use_device(ca, probe.a().info());
    use_device(cb, probe.b().info());
  }
  ASSERT_EQ(ca.mtu, 9000);
  duo d(ca, cb, &link);
  fleet f(d, 1);
  ASSERT_NE(f.servers[0], tcp_layer::invalid_socket) << "premise: small frames pass";
  const std::vector<std::byte> data(100 * 1024, std::byte{0x42});
  std::size_t sent = 0, got = 0;
  std::vector<std::byte> in(65536);
  d.app = [&] {
    while (sent < data.size()) {
      const auto r = d.a().tcp().send(f.clients[0], std::span(data).subspan(sent));
      sent += r.bytes;
      if (r.bytes == 0) {
        break;
      }
    }
    while (true) {
      const auto r = d.b().tcp().receive(f.servers[0], in);
      got += r.bytes;
      if (r.bytes == 0) {
        break;
      }
    }
    fleet::drain_events(d);
  };
  d.run(d.now() + 10 * second, [&] { return got == data.size(); });
  const stack_counters k = d.b().counters();
  EXPECT_EQ(got, data.size())
      << "frames linearized " << k.frames_linearized << ", dropped as ip_length_exceeds_frame "
      << k.malformed[static_cast<std::size_t>(wire::wire_error::ip_length_exceeds_frame)];
}

// writable_bytes() says "bytes send() would take now", and answers the whole send buffer for a
// connection that holds no ring - also when the budget has no ring for it, so send() takes 0
// (resource_unavailable_try_again) right after writable_bytes() promised 4096. An application
// that sizes its writes (or its decision to wait) by writable_bytes() spins. Suggested fix:
// without a ring, answer what take_send_ring could get now (ring_cache::send_room, unused so far,
// was made for this), else 0.
TEST(TcpReview3, WritableBytesIsWhatSendTakesWhenTheBudgetIsExhausted) {
  duo d(budget(duo_config(duo_a_ip, 1), 4096, 0), duo_config(duo_b_ip, 2));
  fleet f(d, 2);
  tcp_layer& t = d.a().tcp();
  const std::vector<std::byte> data(1000, std::byte{7});
  ASSERT_EQ(t.send(f.clients[0], data).bytes, data.size());  // the only ring
  const std::size_t promised = t.writable_bytes(f.clients[1]);
  const io_result r = t.send(f.clients[1], data);
  EXPECT_EQ(r.bytes, std::min(promised, data.size()))
      << "writable_bytes " << promised << ", send took " << r.bytes << " (" << r.error.message()
      << ")";
}

// --- controls and a wrap run (pass today) -----------------------------------------------------

// The control for AFreedExtentTableWakesAConnectionThatWaitedForOne: with a table each, both
// connections queue at once (so the failure there is the missing wake-up alone).
TEST(TcpReview3, ControlTwoExtentTablesServeTwoConnections) {
  stack_config ca = duo_config(duo_a_ip, 1);
  ca.tx_chaining = true;
  ca.tcp.zero_copy_connections = 2;
  duo d(ca, duo_config(duo_b_ip, 2));
  fleet f(d, 2);
  app_buffer buf(10000);
  EXPECT_EQ(d.a().tcp().send_external(f.clients[0], buf.ext, 0, 10000).bytes, 10000U);
  EXPECT_EQ(d.a().tcp().send_external(f.clients[1], buf.ext, 0, 10000).bytes, 10000U);
  d.run(d.now() + second);
  EXPECT_EQ(d.a().counters().tcp.external_buffers, 0U);
  EXPECT_EQ(buf.ext.references, 1U);
}

// Sequence numbers wrap (2^32) in the middle of a zero-copy transfer mixed with copied runs,
// under loss: extents, ring_lag and the ACK path compare modulo 2^32 (RFC 9293 3.4). The ISS is
// placed 100 KB before the wrap (RFC 6528: ISS = now / 4 us + F, F learned from a first run).
TEST(TcpReview3, ControlZeroCopyAcrossTheSequenceWrap) {
  stack_config ca = duo_config(duo_a_ip, 1);
  ca.tx_chaining = true;
  std::uint32_t f0 = 0;
  {
    duo probe(ca, duo_config(duo_b_ip, 2));
    std::uint32_t seq = 0;
    probe.seen_by_b = [&](const packet& p) {
      std::array<std::byte, 64> h{};
      (void)p.copy_out(0, h);
      if ((static_cast<std::uint8_t>(h[14 + 20 + 13]) & 0x02U) != 0 && seq == 0) {
        for (int i = 0; i < 4; ++i) {
          seq = (seq << 8U) | static_cast<std::uint8_t>(h[38 + i]);
        }
      }
    };
    socket_id c = 0;
    ASSERT_FALSE(probe.a().tcp().open(c));
    ASSERT_FALSE(probe.a().tcp().bind(c, 40000));
    ASSERT_FALSE(probe.a().tcp().connect(c, tcp_endpoint{duo_b_ip, 80}, probe.now()));
    probe.run(probe.now() + second, [&] { return seq != 0; });
    ASSERT_NE(seq, 0U);
    f0 = seq - static_cast<std::uint32_t>(probe.now() / (4 * microsecond));
  }
  duo d(ca, duo_config(duo_b_ip, 2));
  const std::uint32_t ticks = (0U - 100000U) - f0;  // ISS = ticks + f0 = 2^32 - 100000
  d.run(time_ns{ticks} * 4 * microsecond - 1);      // idle: the clock jumps
  ASSERT_EQ(d.now(), time_ns{ticks} * 4 * microsecond);
  socket_id listener = 0, client = 0, server = tcp_layer::invalid_socket;
  ASSERT_FALSE(d.b().tcp().open(listener));
  ASSERT_FALSE(d.b().tcp().bind(listener, 80));
  ASSERT_FALSE(d.b().tcp().listen(listener, 4));
  ASSERT_FALSE(d.a().tcp().open(client));
  ASSERT_FALSE(d.a().tcp().bind(client, 40000));
  std::uint32_t iss = 0;
  d.seen_by_b = [&](const packet& p) {
    std::array<std::byte, 64> h{};
    (void)p.copy_out(0, h);
    if ((static_cast<std::uint8_t>(h[14 + 20 + 13]) & 0x02U) != 0 && iss == 0) {
      for (int i = 0; i < 4; ++i) {
        iss = (iss << 8U) | static_cast<std::uint8_t>(h[38 + i]);
      }
    }
  };
  ASSERT_FALSE(d.a().tcp().connect(client, tcp_endpoint{duo_b_ip, 80}, d.now()));
  d.drop_a = [](std::uint64_t n, const packet&) { return n % 17 == 6 || n % 53 == 20; };
  constexpr std::size_t total = 600 * 1024, chunk = 24 * 1024 + 3, copied = 777;
  std::deque<app_buffer> buffers;
  std::size_t queued = 0, got = 0;
  bool copy_turn = false, wrong = false, shut = false, eof = false;
  std::vector<std::byte> in(65536);
  d.app = [&] {
    fleet::drain_events(d);
    if (server == tcp_layer::invalid_socket) {
      (void)d.b().tcp().accept(listener, server);
    }
    while (queued < total) {
      const std::size_t n = std::min(copy_turn ? copied : chunk, total - queued);
      if (copy_turn) {
        std::vector<std::byte> tmp(n);
        for (std::size_t i = 0; i < n; ++i) {
          tmp[i] = duo_byte(9, queued + i);
        }
        const auto r = d.a().tcp().send(client, tmp);
        queued += r.bytes;
        if (r.bytes < n) {
          break;
        }
      } else {
        buffers.emplace_back(n + 5, queued - 5);  // the run sits at offset 5 of its buffer
        const auto r = d.a().tcp().send_external(client, buffers.back().ext, 5, n);
        if (r.bytes == 0) {
          buffers.pop_back();
          break;
        }
        buffers.back().ext.drop_reference();
        queued += n;
      }
      copy_turn = !copy_turn;
    }
    if (queued == total && !shut) {
      shut = true;
      EXPECT_FALSE(d.a().tcp().shutdown(client, shutdown_type::send, d.now()));
    }
    while (server != tcp_layer::invalid_socket) {
      const auto r = d.b().tcp().receive(server, in);
      if (r.bytes == 0) {
        eof = eof || r.error == make_error_code(tcp_errc::end_of_stream);
        break;
      }
      for (std::size_t i = 0; i < r.bytes && !wrong; ++i) {
        wrong = in[i] != duo_byte(9, got + i);
      }
      got += r.bytes;
    }
  };
  d.run(d.now() + 300 * second, [&] { return eof; });
  ASSERT_EQ(iss, 0U - 100000U) << "premise: the ISS sits before the wrap";
  EXPECT_TRUE(eof);
  EXPECT_FALSE(wrong);
  EXPECT_EQ(got, total);
  EXPECT_GT(d.a().counters().tcp.retransmits, 5U) << "the loss was real";
  d.run(d.now() + second);
  for (const app_buffer& b : buffers) {
    EXPECT_EQ(b.released, 1);
  }
  EXPECT_EQ(d.a().counters().tcp.external_buffers, 0U);
  EXPECT_EQ(d.a().counters().tcp.external_bytes, 0U);
  EXPECT_EQ(d.a().counters().tcp.buffer_bytes, 0U);
}

}  // namespace tcp_review3_test
}  // namespace
}  // namespace dpdk_net::stack
