// The DPDK backend's port features on software ethdevs (net_ring under the binary's private EAL,
// see dpdk_device_test.cpp): the typed EAL configuration, a mempool per queue, mbuf accounting,
// zero-copy send of external segments as attached DPDK external buffers, RSS on a port without
// it, xstats, thread registration, and two stacks talking TCP over two ethdevs wired back to back.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "dpdk_net/dpdk/dpdk_device.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::dpdk {
namespace {

std::unique_ptr<dpdk_device> open_port(const std::string& name, std::uint16_t queues = 1) {
  port_config config;
  config.name = name;
  config.rx_queues = queues;
  config.tx_queues = queues;
  config.mbufs = 2047;
  config.mbuf_cache = 32;
  std::string error;
  auto dev = dpdk_device::open(config, error);
  EXPECT_NE(dev, nullptr) << error;
  return dev;
}

std::size_t drain(dpdk_device& dev, std::uint16_t queue) {
  std::array<packet, max_burst> in;
  std::size_t total = 0;
  std::size_t n = 0;
  while ((n = dev.rx_burst(queue, in)) != 0) {
    total += n;
    free_burst(std::span(in).first(n));
  }
  return total;
}

TEST(DpdkEal, TypedConfigGivesTheDocumentedArguments) {
  eal_config c;
  c.program = "demo";
  c.lcores = "1";
  c.vdevs = {"net_memif0,role=server", "net_ring1"};
  c.pci = false;
  c.telemetry = false;
  c.hugepages = false;
  c.file_prefix = "p1";
  c.log_level = "lib.eal:error";
  c.extra = {"--iova-mode=va"};
  std::string error;
  const std::vector<std::string> a = eal_arguments(c, error);
  EXPECT_EQ(error, "");
  const std::vector<std::string> want = {"demo",
                                         "-l",
                                         "1",
                                         "--vdev=net_memif0,role=server",
                                         "--vdev=net_ring1",
                                         "--no-pci",
                                         "--no-telemetry",
                                         "--no-huge",
                                         "-m",
                                         "256",
                                         "--file-prefix=p1",
                                         "--log-level=lib.eal:error",
                                         "--iova-mode=va"};
  EXPECT_EQ(a, want);
}

TEST(DpdkEal, DefaultsGiveAPerProcessPrefixAndOneLcore) {
  std::string error;
  const std::vector<std::string> a = eal_arguments(eal_config{}, error);
  ASSERT_EQ(error, "");
  EXPECT_NE(std::find(a.begin(), a.end(), "--file-prefix=dpdk_net_" + std::to_string(::getpid())),
            a.end());
  const auto l = std::find(a.begin(), a.end(), "-l");
  ASSERT_NE(l, a.end());
  ASSERT_NE(l + 1, a.end());
  EXPECT_EQ((l + 1)->find_first_not_of("0123456789"), std::string::npos) << *(l + 1);
  EXPECT_EQ(std::find(a.begin(), a.end(), "--no-huge"), a.end());
}

TEST(DpdkEal, NoHugeWithInMemoryIsRefusedNamingTheFix) {
  eal_config c;
  c.hugepages = false;
  c.in_memory = true;
  std::string error;
  EXPECT_TRUE(eal_arguments(c, error).empty());
  EXPECT_NE(error.find("--no-huge and --in-memory"), std::string::npos) << error;
  EXPECT_NE(error.find("fix"), std::string::npos) << error;
  EXPECT_NE(eal::init(c).find("--no-huge and --in-memory"), std::string::npos);
}

TEST(DpdkEal, EalStringSplitsAtWhitespace) {
  EXPECT_EQ(split_eal_string("  -l 0\t--vdev=net_ring0,x=1 \n--no-pci "),
            (std::vector<std::string>{"-l", "0", "--vdev=net_ring0,x=1", "--no-pci"}));
  EXPECT_TRUE(split_eal_string("   ").empty());
}

TEST(DpdkEal, AThreadRegistersAsAnLcoreAndGivesItBack) {
  int before = 0;
  int during = -1;
  int after = 0;
  std::string error = "not run";
  std::thread t([&] {
    before = eal::lcore_id();
    error = eal::register_thread();
    during = eal::lcore_id();
    EXPECT_EQ(eal::register_thread(), "") << "idempotent";
    eal::unregister_thread();
    after = eal::lcore_id();
  });
  t.join();
  EXPECT_EQ(before, -1);
  EXPECT_EQ(error, "");
  EXPECT_GE(during, 0);
  EXPECT_EQ(after, -1);
  EXPECT_GE(eal::lcore_id(), 0) << "the main thread is the EAL's main lcore";
}

TEST(DpdkPort, MbufBudgetIsTheSumRoundedToAPowerOfTwoLessOne) {
  mbuf_budget b;
  b.rx_descriptors = 512;
  b.tx_descriptors = 512;
  b.held_by_stack = 1000;
  b.handover = 0;
  b.cache = 64;
  b.lcores = 2;
  // 512 + 512 + 1000 + 128 + 2 x 64 (bursts in hand) = 2280 -> 4095
  EXPECT_EQ(mbufs_needed(b), 4095U);
  stack::stack_config sc;
  EXPECT_EQ(stack::frames_held(sc),
            sc.tx_queue + sc.udp_sockets * sc.udp_queue + sc.reassembly.max_buffers);
  sc.tcp.sockets = 100000;  // connections hold no device buffers: TCP copies
  EXPECT_EQ(stack::frames_held(sc),
            sc.tx_queue + sc.udp_sockets * sc.udp_queue + sc.reassembly.max_buffers);
}

TEST(DpdkPort, ADataRoomTooSmallForTheMtuNamesTheFix) {
  port_config config;
  config.name = "net_ring0";
  config.data_room = 1024;
  std::string error;
  EXPECT_EQ(dpdk_device::open(config, error), nullptr);
  EXPECT_NE(error.find("data_room"), std::string::npos) << error;
  EXPECT_NE(error.find("MTU 1500"), std::string::npos) << error;
}

TEST(DpdkPort, EachQueueReceivesIntoItsOwnMempool) {
  auto dev = open_port("net_ring0", 2);
  ASSERT_TRUE(dev);
  for (std::uint16_t q = 0; q < 2; ++q) {
    std::array<packet, 1> out{dev->tx_pool(q).alloc()};
    ASSERT_TRUE(out[0]);
    out[0].append(64);
    EXPECT_EQ(out[0].head()->pool, &dev->tx_pool(q));
    ASSERT_EQ(dev->tx_burst(q, out), 1U);
    std::array<packet, 1> in;
    ASSERT_EQ(dev->rx_burst(q, in), 1U);
    // net_ring hands the sent mbuf itself over; it came from (and goes back to) queue q's pool.
    EXPECT_EQ(in[0].head()->pool, &dev->tx_pool(q));
  }
  EXPECT_EQ(dev->mbufs_in_use(), 0U);
  EXPECT_EQ(dev->counters().tx_copied, 0U);
}

TEST(DpdkPort, MbufsInUseCountsWhatIsHeldAndReturnsToZero) {
  auto dev = open_port("net_ring0");
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->mbufs_in_use(), 0U);
  std::vector<packet> held;
  for (int i = 0; i < 40; ++i) {
    held.push_back(dev->tx_pool(0).alloc());
  }
  EXPECT_EQ(dev->mbufs_in_use(), 40U);
  std::array<packet, 8> out;
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = std::move(held[i]);
    out[i].append(100);
  }
  ASSERT_EQ(dev->tx_burst(0, out), out.size());
  EXPECT_EQ(dev->mbufs_in_use(), 40U) << "in the ring now";
  EXPECT_EQ(drain(*dev, 0), out.size());
  held.clear();
  EXPECT_EQ(dev->mbufs_in_use(), 0U);
}

/// An application buffer whose release hook counts.
struct app_buffer {
  std::vector<std::byte> bytes;
  external_buffer ext;
  int released = 0;
  explicit app_buffer(std::size_t n) : bytes(n) {
    for (std::size_t i = 0; i < n; ++i) {
      bytes[i] = static_cast<std::byte>(i * 7 + 3);
    }
    ext.data = bytes.data();
    ext.size = n;
    ext.on_release = [](external_buffer&, void* self) noexcept {
      ++static_cast<app_buffer*>(self)->released;
    };
    ext.context = this;
  }
};

/// A 54-byte header in an mbuf, then `n` bytes of b by reference.
packet header_and_external(dpdk_device& dev, app_buffer& b, std::size_t offset, std::size_t n) {
  packet p = dev.tx_pool(0).alloc();
  std::byte* h = p.append(54);
  std::memset(h, 0xab, 54);
  packet ref = dev.tx_pool(0).attach_external(b.ext, offset, n);
  EXPECT_TRUE(ref);
  EXPECT_TRUE(p.chain(std::move(ref)));
  return p;
}

TEST(DpdkPort, ExternalSegmentsGoOutAttachedNotCopied) {
  auto dev = open_port("net_ring0");
  ASSERT_TRUE(dev);
  ASSERT_TRUE(dev->info().tx_multi_segment) << "net_ring passes chains through";
  app_buffer b(3000);
  std::array<packet, 2> out{header_and_external(*dev, b, 100, 1400),
                            header_and_external(*dev, b, 1500, 1400)};
  EXPECT_EQ(b.ext.references, 3U);  // the creator's + one per attached segment
  ASSERT_EQ(dev->tx_burst(0, out), 2U);
  EXPECT_EQ(dev->counters().tx_copied, 0U);
  EXPECT_EQ(dev->counters().tx_too_big, 0U);
  EXPECT_EQ(dev->counters().tx_external, 2U);
  std::array<packet, 2> in;
  ASSERT_EQ(dev->rx_burst(0, in), 2U);
  for (std::size_t k = 0; k < 2; ++k) {
    ASSERT_EQ(in[k].length(), 54U + 1400U);
    std::vector<std::byte> got(in[k].length());
    in[k].copy_out(0, got);
    EXPECT_EQ(got[0], std::byte{0xab});
    EXPECT_EQ(std::memcmp(got.data() + 54, b.bytes.data() + 100 + k * 1400, 1400), 0);
    EXPECT_EQ(in[k].head()->next->data(), b.bytes.data() + 100 + k * 1400) << "by reference";
  }
  EXPECT_EQ(b.ext.references, 3U) << "held until the frames are freed";
  in[0].reset();
  in[1].reset();
  EXPECT_EQ(b.ext.references, 1U);
  EXPECT_EQ(b.released, 0);
  b.ext.drop_reference();
  EXPECT_EQ(b.released, 1);
  EXPECT_EQ(dev->mbufs_in_use(), 0U);
  EXPECT_EQ(dev->counters().double_frees + dev->counters().foreign_frees, 0U);
}

TEST(DpdkPort, ADeclinedExternalFrameFreedByItsOwnerDropsOneReference) {
  auto dev = open_port("net_ring0");
  ASSERT_TRUE(dev);
  // Fill the ring so the next burst is declined.
  std::size_t queued = 0;
  for (;;) {
    std::array<packet, 1> f{dev->tx_pool(0).alloc()};
    ASSERT_TRUE(f[0]);
    f[0].append(60);
    if (dev->tx_burst(0, f) == 0) {
      break;
    }
    ASSERT_LT(++queued, 100000U);
  }
  app_buffer b(2000);
  std::array<packet, 1> out{header_and_external(*dev, b, 0, 1000)};
  EXPECT_EQ(dev->tx_burst(0, out), 0U);
  ASSERT_TRUE(out[0]) << "declined: still the caller's";
  EXPECT_EQ(b.ext.references, 2U);
  out[0].reset();
  EXPECT_EQ(b.ext.references, 1U) << "exactly one drop, not two";
  // Declined again after a retry that then succeeds: the driver's free drops it.
  std::array<packet, 1> again{header_and_external(*dev, b, 0, 1000)};
  EXPECT_EQ(dev->tx_burst(0, again), 0U);
  EXPECT_EQ(drain(*dev, 0), queued);
  ASSERT_EQ(dev->tx_burst(0, again), 1U);
  EXPECT_EQ(b.ext.references, 2U);
  EXPECT_EQ(drain(*dev, 0), 1U);
  EXPECT_EQ(b.ext.references, 1U);
  EXPECT_EQ(dev->mbufs_in_use(), 0U);
  EXPECT_EQ(b.released, 0);
  b.ext.drop_reference();
  EXPECT_EQ(b.released, 1);
}

TEST(DpdkPort, APortWithoutRssSaysSoAndRefusesATable) {
  auto dev = open_port("net_ring0", 2);
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->info().rss.hash_types, 0U) << "net_ring does not hash";
  EXPECT_EQ(dev->rss().hash_types, 0U);
  rss_config rc;
  rc.hash_types = rss_hash::tcp_ipv4;
  rc.key.assign(40, 1);
  rc.reta.assign(128, 0);
  EXPECT_EQ(dev->configure_rss(rc), std::make_error_code(std::errc::not_supported));
}

TEST(DpdkPort, XstatsNameTheDriversCounters) {
  auto dev = open_port("net_ring0");
  ASSERT_TRUE(dev);
  const auto before = dev->extended_stats();
  auto value = [](const std::vector<named_counter>& v, const std::string& name) {
    for (const named_counter& c : v) {
      if (c.name == name) {
        return static_cast<std::int64_t>(c.value);
      }
    }
    return std::int64_t{-1};
  };
  ASSERT_GE(value(before, "tx_good_packets"), 0) << "ethdev's generic xstats";
  std::array<packet, 5> out;
  for (packet& p : out) {
    p = dev->tx_pool(0).alloc();
    p.append(100);
  }
  ASSERT_EQ(dev->tx_burst(0, out), 5U);
  EXPECT_EQ(drain(*dev, 0), 5U);
  const auto after = dev->extended_stats();
  EXPECT_EQ(value(after, "tx_good_packets") - value(before, "tx_good_packets"), 5);
  EXPECT_EQ(value(after, "rx_good_packets") - value(before, "rx_good_packets"), 5);
}

TEST(DpdkPort, ExternalMemoryRegistrationWantsWholePages) {
  auto dev = open_port("net_ring0");
  ASSERT_TRUE(dev);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* mem = std::aligned_alloc(page, 4 * page);
  ASSERT_NE(mem, nullptr);
  EXPECT_NE(dev->register_external_memory(static_cast<std::byte*>(mem) + 8, page), "");
  EXPECT_EQ(dev->register_external_memory(mem, 4 * page), "") << "a virtual device needs no map";
  dev.reset();  // unregisters
  std::free(mem);
}

// ---------------------------------------------------------------------------------------------
// Two stacks over two ethdevs wired back to back (create_ring_pair): real DPDK mbufs through
// the whole stack, TCP both ways, zero-copy send included.
// ---------------------------------------------------------------------------------------------

const wire::ipv4_address a_ip = wire::ipv4_address::from_octets(198, 18, 60, 1);
const wire::ipv4_address b_ip = wire::ipv4_address::from_octets(198, 18, 60, 2);

std::byte stream_byte(std::uint64_t i) {
  return static_cast<std::byte>((i * 2654435761U) >> 13U);
}

class DpdkRingPair : public ::testing::Test {
 protected:
  void SetUp() override {
    static const std::string created = create_ring_pair("dn_rp_a", "dn_rp_b", 1);
    ASSERT_EQ(created, "");
    da_ = open_port("net_ring_dn_rp_a");
    db_ = open_port("net_ring_dn_rp_b");
    ASSERT_TRUE(da_ && db_);
    a_ = std::make_unique<stack::stack>(config(*da_, a_ip), da_->tx_pool(0),
                                        stack::stack_secret{1, 2});
    b_ = std::make_unique<stack::stack>(config(*db_, b_ip), db_->tx_pool(0),
                                        stack::stack_secret{3, 4});
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    if (da_ && db_) {
      EXPECT_EQ(drain(*da_, 0) + drain(*db_, 0), 0U);
      EXPECT_EQ(da_->mbufs_in_use(), 0U) << "every mbuf back in its pool";
      EXPECT_EQ(db_->mbufs_in_use(), 0U);
      const auto ca = da_->counters();
      const auto cb = db_->counters();
      EXPECT_EQ(ca.double_frees + ca.foreign_frees + cb.double_frees + cb.foreign_frees, 0U);
    }
  }
  static stack::stack_config config(const dpdk_device& dev, wire::ipv4_address ip) {
    stack::stack_config c;
    c.mac = dev.info().mac;
    c.address = ip;
    stack::use_device(c, dev.info());
    return c;
  }
  /// Moves frames both ways through the ports; steps a virtual clock by 1 ms when idle.
  void pump() {
    std::array<packet, max_burst> burst{};
    bool moved = false;
    for (int dir = 0; dir < 2; ++dir) {
      stack::stack& from = dir == 0 ? *a_ : *b_;
      dpdk_device& tx = dir == 0 ? *da_ : *db_;
      std::size_t n = 0;
      while ((n = from.drain_tx(burst, now_)) != 0) {
        moved = true;
        std::size_t sent = 0;
        while (sent < n) {
          sent += tx.tx_burst(0, std::span(burst).subspan(sent, n - sent));
          receive_all();
        }
      }
    }
    moved = receive_all() || moved;
    if (!moved) {
      now_ += 1'000'000;
      a_->advance(now_);
      b_->advance(now_);
    }
  }
  bool receive_all() {
    std::array<packet, max_burst> in{};
    bool any = false;
    for (int dir = 0; dir < 2; ++dir) {
      dpdk_device& rx = dir == 0 ? *db_ : *da_;
      stack::stack& to = dir == 0 ? *b_ : *a_;
      std::size_t n = 0;
      while ((n = rx.rx_burst(0, in)) != 0) {
        any = true;
        for (std::size_t i = 0; i < n; ++i) {
          to.receive(std::move(in[i]), now_);
        }
      }
    }
    return any;
  }

  std::unique_ptr<dpdk_device> da_, db_;
  std::unique_ptr<stack::stack> a_, b_;
  time_ns now_ = 1;
};

TEST_F(DpdkRingPair, TcpMovesAMegabyteEachWayByteExactZeroCopyFromTheSender) {
  using stack::tcp_layer;
  tcp_layer::socket_id listener = 0;
  tcp_layer::socket_id client = 0;
  tcp_layer::socket_id server = tcp_layer::invalid_socket;
  ASSERT_FALSE(b_->tcp().open(listener));
  ASSERT_FALSE(b_->tcp().bind(listener, 80));
  ASSERT_FALSE(b_->tcp().listen(listener, 4));
  ASSERT_FALSE(a_->tcp().open(client));
  ASSERT_FALSE(a_->tcp().connect(client, stack::tcp_endpoint{b_ip, 80}, now_));

  constexpr std::size_t total = 1 << 20;
  // a -> b from one external buffer (zero copy), b -> a by send() (copied into b's buffers).
  app_buffer big(total);
  for (std::size_t i = 0; i < total; ++i) {
    big.bytes[i] = stream_byte(i);
  }
  std::size_t ext_queued = 0;
  std::size_t b_sent = 0;
  std::size_t at_b = 0;
  std::size_t at_a = 0;
  bool wrong = false;
  std::vector<std::byte> buf(64 * 1024);
  for (int round = 0; round < 200000 && (at_b < total || at_a < total); ++round) {
    pump();
    std::array<stack::socket_event, 8> ev{};
    (void)a_->poll_events(ev);
    (void)b_->poll_events(ev);
    if (server == tcp_layer::invalid_socket) {
      (void)b_->tcp().accept(listener, server);
      continue;
    }
    while (ext_queued < total) {
      const std::size_t n = std::min<std::size_t>(64 * 1024, total - ext_queued);
      const auto r = a_->tcp().send_external(client, big.ext, ext_queued, n);
      if (r.bytes == 0) {
        break;
      }
      ext_queued += r.bytes;
    }
    while (b_sent < total) {
      std::array<std::byte, 8192> chunk;
      const std::size_t n = std::min(chunk.size(), total - b_sent);
      for (std::size_t i = 0; i < n; ++i) {
        chunk[i] = stream_byte(b_sent + i + 7);
      }
      const auto r = b_->tcp().send(server, std::span(chunk).first(n));
      b_sent += r.bytes;
      if (r.bytes < n) {
        break;
      }
    }
    for (auto [st, id, got] :
         {std::tuple{b_.get(), server, &at_b}, std::tuple{a_.get(), client, &at_a}}) {
      for (;;) {
        const auto r = st->tcp().receive(id, buf);
        if (r.bytes == 0) {
          break;
        }
        const std::uint64_t shift = st == b_.get() ? 0 : 7;
        for (std::size_t i = 0; i < r.bytes && !wrong; ++i) {
          wrong = buf[i] != stream_byte(*got + i + shift);
        }
        *got += r.bytes;
      }
    }
  }
  EXPECT_EQ(at_b, total);
  EXPECT_EQ(at_a, total);
  EXPECT_FALSE(wrong);
  EXPECT_EQ(da_->counters().tx_copied, 0U) << "the external data went out by reference";
  EXPECT_GT(da_->counters().tx_external, total / 1500) << "every data segment attached";
  EXPECT_EQ(db_->counters().tx_external, 0U) << "send() data is copied into mbufs";
  EXPECT_FALSE(a_->tcp().close(client, now_));
  EXPECT_FALSE(b_->tcp().close(server, now_));
  for (int i = 0; i < 100; ++i) {
    pump();
  }
  a_.reset();  // the stack drops its references: the buffer is released exactly once
  EXPECT_EQ(big.released, 0);
  big.ext.drop_reference();
  EXPECT_EQ(big.released, 1);
}

}  // namespace
}  // namespace dpdk_net::dpdk
