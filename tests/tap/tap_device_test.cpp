// The TAP backend against the Linux kernel. The test plays the host on our side of the wire:
// it answers the kernel's ARP request and exchanges UDP with a kernel socket, so the backend is
// proven without the stack. Unique interface names (dnt<pid>); the interface goes away with the
// device; addresses in 198.18.0.0/15 only.
#include "dpdk_net/tap/tap_device.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "../unit/counting_allocator.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::tap {
namespace {

using wire::ipv4_address;

struct udp_socket {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  udp_socket() = default;
  udp_socket(const udp_socket&) = delete;
  udp_socket& operator=(const udp_socket&) = delete;
  ~udp_socket() { ::close(fd); }
};

sockaddr_in address(ipv4_address a, std::uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_addr.s_addr = htonl(a.value);
  s.sin_port = htons(port);
  return s;
}

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "dnt" + std::to_string(::getpid());
    const auto third = static_cast<std::uint8_t>(::getpid() % 200 + 20);
    kernel_ip_ = ipv4_address::from_octets(198, 18, third, 1);
    our_ip_ = ipv4_address::from_octets(198, 18, third, 2);
    std::string error;
    tap_config config;
    config.name = name_;
    dev_ = tap_device::open(config, error);
    ASSERT_NE(dev_, nullptr) << error;
    ASSERT_TRUE(dev_->configure_kernel_side(kernel_side{kernel_ip_, 24, true}, error)) << error;
  }

  /// Polls the TAP until a frame satisfying `want` arrives (others are dropped), up to 3 s.
  std::optional<std::vector<std::byte>> wait_for(
      const std::function<bool(const wire::decoded_frame&)>& want) {
    for (int round = 0; round < 300; ++round) {
      pollfd pfd{dev_->rx_wait_handle(0).fd, POLLIN, 0};
      ::poll(&pfd, 1, 10);
      std::array<packet, 16> in;
      const std::size_t n = dev_->rx_burst(0, in);
      for (std::size_t i = 0; i < n; ++i) {
        const auto bytes = in[i].front();
        const wire::decoded_frame d = wire::decode_frame(bytes);
        if (d.accepted() && want(d)) {
          return std::vector<std::byte>(bytes.begin(), bytes.end());
        }
      }
    }
    return std::nullopt;
  }

  void send(std::span<const std::byte> frame) {
    std::array<packet, 1> one{dev_->tx_pool(0).alloc()};
    std::memcpy(one[0].append(frame.size()), frame.data(), frame.size());
    ASSERT_EQ(dev_->tx_burst(0, one), 1U);
  }

  std::string name_;
  ipv4_address kernel_ip_, our_ip_;
  std::unique_ptr<tap_device> dev_;
};

TEST_F(TapTest, ExchangesArpAndUdpWithTheKernel) {
  EXPECT_EQ(dev_->rx_wait_handle(0).mode, wait_handle::kind::fd);
  udp_socket sock;
  const sockaddr_in local = address(kernel_ip_, 40000);
  ASSERT_EQ(::bind(sock.fd, reinterpret_cast<const sockaddr*>(&local), sizeof local), 0);

  // 1. The kernel sends to our address: it must ask who we are first.
  const sockaddr_in us = address(our_ip_, 9999);
  ASSERT_EQ(::sendto(sock.fd, "hello", 5, 0, reinterpret_cast<const sockaddr*>(&us), sizeof us), 5);
  const auto request = wait_for([&](const wire::decoded_frame& d) {
    return d.arp && d.arp->operation == wire::arp_op::request && d.arp->target_ip == our_ip_;
  });
  ASSERT_TRUE(request) << "no ARP request from the kernel on " << name_;
  const wire::decoded_frame req = wire::decode_frame(*request);
  EXPECT_EQ(req.arp->sender_ip, kernel_ip_);
  const mac_address kernel_mac = req.arp->sender_mac;

  // 2. We answer; the datagram the kernel queued behind the resolution comes out.
  std::array<std::byte, 42> reply{};
  wire::write_ethernet(
      reply, wire::ethernet_header{kernel_mac, dev_->info().mac, wire::ethertype::arp, false, 0});
  wire::write_arp(
      std::span(reply).subspan(14),
      wire::arp_packet{wire::arp_op::reply, dev_->info().mac, our_ip_, kernel_mac, kernel_ip_});
  send(reply);
  const auto datagram = wait_for([](const wire::decoded_frame& d) { return d.udp.has_value(); });
  ASSERT_TRUE(datagram);
  const wire::decoded_frame dg = wire::decode_frame(*datagram);
  EXPECT_EQ(dg.eth.dst, dev_->info().mac);
  EXPECT_EQ(dg.ipv4->src, kernel_ip_);
  EXPECT_EQ(dg.ipv4->dst, our_ip_);
  EXPECT_EQ(dg.udp->src_port, 40000);
  EXPECT_EQ(dg.udp->dst_port, 9999);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(dg.payload.data()), dg.payload.size()),
            "hello");

  // 3. We send a datagram; the kernel's socket receives it (so our checksums are right).
  std::array<std::byte, 42 + 5> out{};
  wire::write_ethernet(
      out, wire::ethernet_header{kernel_mac, dev_->info().mac, wire::ethertype::ipv4, false, 0});
  wire::ipv4_header ip;
  ip.total_length = 20 + 8 + 5;
  ip.protocol = wire::ip_protocol::udp;
  ip.src = our_ip_;
  ip.dst = kernel_ip_;
  wire::write_ipv4(std::span(out).subspan(14), ip);
  std::memcpy(out.data() + 42, "world", 5);
  wire::write_udp(std::span(out).subspan(34), wire::udp_header{9999, 40000, 0, 0},
                  std::span(out).subspan(42), wire::pseudo_header{our_ip_, kernel_ip_});
  send(out);
  pollfd pfd{sock.fd, POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 3000), 1) << "the kernel did not deliver our datagram";
  char buf[16] = {};
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  ASSERT_EQ(::recvfrom(sock.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len),
            5);
  EXPECT_EQ(std::string(buf, 5), "world");
  EXPECT_EQ(ntohl(from.sin_addr.s_addr), our_ip_.value);
  EXPECT_EQ(ntohs(from.sin_port), 9999);

  const device_stats s = dev_->stats();
  EXPECT_GE(s.rx_packets, 2U);
  EXPECT_EQ(s.tx_packets, 2U);
}

TEST_F(TapTest, InterfaceGoesAwayWithTheDevice) {
  EXPECT_NE(::if_nametoindex(name_.c_str()), 0U);
  dev_.reset();
  EXPECT_EQ(::if_nametoindex(name_.c_str()), 0U);
}

TEST_F(TapTest, MisuseIsCountedOrRefused) {
  std::array<packet, 1> one{dev_->tx_pool(0).alloc()};
  one[0].append(64);
  EXPECT_EQ(dev_->tx_burst(1, one), 0U);
  EXPECT_TRUE(one[0]);
  EXPECT_EQ(dev_->stats().bad_queue, 1U);
  // Buffers hold at most the largest legal frame: an oversize one is a chain of two.
  std::array<packet, 1> too_big{dev_->tx_pool(0).alloc()};
  ASSERT_NE(too_big[0].append(1000), nullptr);
  packet rest = dev_->tx_pool(0).alloc();
  ASSERT_NE(rest.append(1500 + 19 - 1000), nullptr);
  ASSERT_TRUE(too_big[0].chain(std::move(rest)));
  EXPECT_EQ(dev_->tx_burst(0, too_big), 1U);  // taken, dropped, counted
  EXPECT_EQ(dev_->stats().tx_dropped, 1U);
  std::string error;
  tap_config bad;
  bad.name = "a-name-far-too-long-for-linux";
  EXPECT_EQ(tap_device::open(bad, error), nullptr);
  EXPECT_NE(error.find("1 to 15 characters"), std::string::npos) << error;
}

/// A raw (AF_PACKET) socket on the kernel's side of the TAP: whatever it sends comes out of our
/// file descriptor as is. Protocol 0: it only sends, so it never queues what we write back.
struct raw_sender {
  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  sockaddr_ll to{};
  explicit raw_sender(const std::string& interface) {
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(::if_nametoindex(interface.c_str()));
    to.sll_halen = 6;
  }
  raw_sender(const raw_sender&) = delete;
  raw_sender& operator=(const raw_sender&) = delete;
  ~raw_sender() { ::close(fd); }
  ssize_t send(std::span<const std::byte> frame) const {
    return ::sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                    sizeof to);
  }
};

/// A frame of n bytes to `dst`: VLAN-tagged (so the kernel lets it be 4 bytes past MTU + 14),
/// then an experimental ethertype and a byte pattern starting at `tag`.
std::vector<std::byte> tagged_frame(const mac_address& dst, std::size_t n, std::uint8_t tag) {
  std::vector<std::byte> f(n);
  std::memcpy(f.data(), dst.bytes.data(), 6);
  const std::array<std::uint8_t, 12> rest{0x02, 0x00, 0x00, 0x00, 0x00, 0x01,  // source
                                          0x81, 0x00, 0x00, 0x05,              // VLAN 5
                                          0x88, 0xb5};                         // experimental
  std::memcpy(f.data() + 6, rest.data(), rest.size());
  for (std::size_t i = 18; i < n; ++i) {
    f[i] = static_cast<std::byte>(tag + i);
  }
  return f;
}

void set_kernel_mtu(const std::string& interface, int mtu) {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq r{};
  std::memcpy(r.ifr_name, interface.data(), interface.size());
  r.ifr_mtu = mtu;
  EXPECT_EQ(::ioctl(s, SIOCSIFMTU, &r), 0) << std::strerror(errno);
  ::close(s);
}

// Issue 8, item 14: the largest legal frame (MTU + 14 + a 4-byte VLAN tag) fills a buffer exactly
// and is received whole, not counted as truncated; one byte more is truncated (the control).
TEST_F(TapTest, FrameOfExactlyMtuPlus18IsReceivedWhole) {
  raw_sender kernel(name_);
  ASSERT_GE(kernel.fd, 0) << std::strerror(errno);
  const std::size_t largest = std::size_t{dev_->info().mtu} + 18;
  const std::vector<std::byte> full = tagged_frame(dev_->info().mac, largest, 7);
  ASSERT_EQ(kernel.send(full), static_cast<ssize_t>(largest)) << std::strerror(errno);
  std::array<packet, 16> in;
  bool seen = false;
  for (int round = 0; round < 300 && !seen && dev_->counters().rx_truncated == 0; ++round) {
    pollfd pfd{dev_->rx_wait_handle(0).fd, POLLIN, 0};
    ::poll(&pfd, 1, 10);
    const std::size_t n = dev_->rx_burst(0, in);
    for (std::size_t i = 0; i < n; ++i) {
      if (in[i].length() == largest) {
        seen = std::equal(full.begin(), full.end(), in[i].front().begin());
      }
      in[i].reset();
    }
  }
  EXPECT_TRUE(seen) << "the " << largest << "-byte frame did not arrive intact";
  EXPECT_EQ(dev_->counters().rx_truncated, 0U);

  // Control: with the kernel's MTU raised, a frame one byte longer than our buffers reaches us
  // and is counted as truncated (so the check above could fail).
  set_kernel_mtu(name_, dev_->info().mtu + 100);
  ASSERT_EQ(kernel.send(tagged_frame(dev_->info().mac, largest + 1, 9)),
            static_cast<ssize_t>(largest + 1));
  for (int round = 0; round < 300 && dev_->counters().rx_truncated == 0; ++round) {
    pollfd pfd{dev_->rx_wait_handle(0).fd, POLLIN, 0};
    ::poll(&pfd, 1, 10);
    free_burst(std::span<packet>(in.data(), dev_->rx_burst(0, in)));
  }
  EXPECT_EQ(dev_->counters().rx_truncated, 1U);
}

// Issue 8, items 12 and 15: TAP rx and tx in steady state allocate nothing from the heap, and an
// empty read (EAGAIN) takes nothing from the pool either: pool allocations equal frames received.
TEST_F(TapTest, SteadyStateRxTxAndEmptyReadsAllocateNothing) {
  raw_sender kernel(name_);
  ASSERT_GE(kernel.fd, 0) << std::strerror(errno);
  const std::vector<std::byte> frame = tagged_frame(dev_->info().mac, 200, 3);
  auto& pool = static_cast<packet_pool&>(dev_->tx_pool(0));
  std::array<packet, max_burst> in;
  constexpr std::size_t per_round = 8;

  std::uint64_t received = 0;
  std::uint64_t empty_reads = 0;
  auto round = [&]() {
    for (std::size_t i = 0; i < per_round; ++i) {
      if (kernel.send(frame) != static_cast<ssize_t>(frame.size())) {
        return false;
      }
    }
    std::size_t got = 0;
    for (int tries = 0; tries < 1000 && got < per_round; ++tries) {
      pollfd pfd{dev_->rx_wait_handle(0).fd, POLLIN, 0};
      ::poll(&pfd, 1, 10);
      const std::size_t n = dev_->rx_burst(0, in);
      got += n;
      // Echo them back out (the kernel drops them: not addressed to it), then read until EAGAIN.
      const std::size_t sent = dev_->tx_burst(0, std::span<packet>(in.data(), n));
      free_burst(std::span<packet>(in.data() + sent, n - sent));
    }
    received += got;
    for (int i = 0; i < 16; ++i) {
      empty_reads += dev_->rx_burst(0, in) == 0 ? 1 : 0;
    }
    return got >= per_round;
  };
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(round());  // warm-up
  }
  received = 0;
  empty_reads = 0;
  const std::uint64_t heap_before = test::allocation_count();
  const std::uint64_t pool_before = pool.stats().allocations;
  const std::uint64_t tx_before = dev_->stats().tx_packets;
  bool ok = true;
  for (int i = 0; i < 50 && ok; ++i) {
    ok = round();
  }
  const std::uint64_t heap = test::allocation_count() - heap_before;
  const std::uint64_t pool_allocations = pool.stats().allocations - pool_before;
  ASSERT_TRUE(ok) << "frames stopped arriving";
  EXPECT_EQ(heap, 0U) << test::allocation_counting_mode();
  EXPECT_GE(received, 50U * per_round);  // the loop really moved frames
  EXPECT_GE(empty_reads, 50U * 16 / 2);  // ...and really read an empty queue
  EXPECT_EQ(dev_->stats().tx_packets - tx_before, received);
  // One buffer per frame received; none for the empty reads (the old path took and returned one
  // per call).
  EXPECT_EQ(pool_allocations, received);
}

/// Deletes a leftover interface of this name (an earlier run that died, with the same pid).
void remove_stale_interface(const std::string& name) {
  if (::if_nametoindex(name.c_str()) != 0) {
    const std::string command = "ip link del " + name + " 2>/dev/null";
    EXPECT_EQ(std::system(command.c_str()), 0) << "could not delete a stale " << name;
  }
}

/// A permanent ARP entry on the kernel's side: `ip` is at `mac` on `interface` (so the kernel sends
/// to it without asking).
std::string add_static_arp(const std::string& interface, ipv4_address ip, const mac_address& mac) {
  udp_socket s;
  arpreq a{};
  const sockaddr_in pa = address(ip, 0);
  std::memcpy(&a.arp_pa, &pa, sizeof pa);
  a.arp_ha.sa_family = ARPHRD_ETHER;
  std::memcpy(a.arp_ha.sa_data, mac.bytes.data(), mac.bytes.size());
  a.arp_flags = ATF_PERM | ATF_COM;
  std::memcpy(a.arp_dev, interface.data(), std::min(interface.size(), sizeof a.arp_dev - 1));
  return ::ioctl(s.fd, SIOCSARP, &a) == 0 ? std::string() : std::strerror(errno);
}

mac_address kernel_mac_of(const std::string& interface) {
  udp_socket s;
  ifreq r{};
  std::memcpy(r.ifr_name, interface.data(), interface.size());
  mac_address m{};
  EXPECT_EQ(::ioctl(s.fd, SIOCGIFHWADDR, &r), 0) << std::strerror(errno);
  std::memcpy(m.bytes.data(), r.ifr_hwaddr.sa_data, m.bytes.size());
  return m;
}

constexpr std::array<char, 4> flow_magic{'d', 'n', 'm', 'q'};

/// Drives one queue from its own thread: reads until told to stop, records the index of every
/// test datagram it sees, and sends one datagram of its own to the kernel through its queue.
struct queue_reader {
  tap_device* dev = nullptr;
  std::uint16_t queue = 0;
  ipv4_address peer, kernel;
  mac_address kernel_mac{};
  std::uint16_t kernel_port = 0;
  const std::atomic<bool>* stop = nullptr;
  std::atomic<std::size_t>* total = nullptr;
  std::vector<std::uint32_t> seen;
  std::uint64_t other = 0;
  bool sent = false;

  void send_hello() {
    std::array<packet, 1> one{dev->tx_pool(queue).alloc()};
    std::byte* f = one[0].append(42 + 1);
    if (f == nullptr) {
      return;
    }
    const std::span<std::byte> frame(f, 43);
    wire::write_ethernet(
        frame, wire::ethernet_header{kernel_mac, dev->info().mac, wire::ethertype::ipv4, false, 0});
    wire::ipv4_header ip;
    ip.total_length = 20 + 8 + 1;
    ip.protocol = wire::ip_protocol::udp;
    ip.src = peer;
    ip.dst = kernel;
    wire::write_ipv4(frame.subspan(14), ip);
    frame[42] = static_cast<std::byte>('0' + queue);
    wire::write_udp(frame.subspan(34),
                    wire::udp_header{static_cast<std::uint16_t>(7000 + queue), kernel_port, 0, 0},
                    frame.subspan(42), wire::pseudo_header{peer, kernel});
    sent = dev->tx_burst(queue, one) == 1;
  }

  void operator()() {
    send_hello();
    std::array<packet, max_burst> in;
    while (!stop->load(std::memory_order_acquire)) {
      pollfd pfd{dev->rx_wait_handle(queue).fd, POLLIN, 0};
      ::poll(&pfd, 1, 5);
      const std::size_t n = dev->rx_burst(queue, in);
      for (std::size_t i = 0; i < n; ++i) {
        const wire::decoded_frame d = wire::decode_frame(in[i].front());
        std::uint32_t index = 0;
        if (d.accepted() && d.udp && d.ipv4->dst == peer && d.payload.size() == 8 &&
            std::memcmp(d.payload.data(), flow_magic.data(), 4) == 0) {
          std::memcpy(&index, d.payload.data() + 4, 4);
          seen.push_back(index);
          total->fetch_add(1, std::memory_order_release);
        } else {
          ++other;
        }
      }
      free_burst(std::span<packet>(in.data(), n));
    }
  }
};

// Two queues (IFF_MULTI_QUEUE), each driven from its own thread at once: the kernel sends
// datagrams of 50 flows into the TAP; every one is received exactly once over the two queues, each
// queue's count matches what its thread saw, both queues transmit, and the pools end clean. Where
// the kernel puts each flow is its business: printed, not asserted.
TEST(TapMultiQueue, TwoQueuesDrivenFromTwoThreadsReceiveEveryFrameOnce) {
  const std::string name = "dnq" + std::to_string(::getpid());
  remove_stale_interface(name);
  const auto third = static_cast<std::uint8_t>(::getpid() % 200 + 20);
  const ipv4_address kernel_ip = ipv4_address::from_octets(198, 18, third, 1);
  const ipv4_address peer_ip = ipv4_address::from_octets(198, 18, third, 2);
  std::string error;
  tap_config config;
  config.name = name;
  config.queues = 2;
  config.pool_size = 512;
  std::unique_ptr<tap_device> dev = tap_device::open(config, error);
  ASSERT_NE(dev, nullptr) << error;
  EXPECT_EQ(dev->info().rx_queues, 2);
  EXPECT_EQ(dev->info().tx_queues, 2);
  EXPECT_TRUE(dev->info().thread_safe_queues);
  EXPECT_EQ(dev->info().rss.hash_types, 0U);
  EXPECT_NE(dev->fd(0), dev->fd(1));
  EXPECT_EQ(dev->rx_wait_handle(1).fd, dev->fd(1));
  EXPECT_NE(&dev->tx_pool(0), &dev->tx_pool(1));
  ASSERT_TRUE(dev->configure_kernel_side(kernel_side{kernel_ip, 24, true}, error)) << error;
  const std::string arp_error = add_static_arp(name, peer_ip, dev->info().mac);
  ASSERT_TRUE(arp_error.empty()) << "SIOCSARP on " << name << ": " << arp_error;

  udp_socket sock;
  const sockaddr_in local = address(kernel_ip, 0);
  ASSERT_EQ(::bind(sock.fd, reinterpret_cast<const sockaddr*>(&local), sizeof local), 0);
  sockaddr_in bound{};
  socklen_t bound_len = sizeof bound;
  ASSERT_EQ(::getsockname(sock.fd, reinterpret_cast<sockaddr*>(&bound), &bound_len), 0);

  constexpr std::uint32_t flows = 50;
  constexpr std::uint32_t per_flow = 4;
  constexpr std::size_t expected = std::size_t{flows} * per_flow;
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> total{0};
  std::array<queue_reader, 2> readers;
  for (std::uint16_t q = 0; q < 2; ++q) {
    queue_reader& r = readers[q];
    r.dev = dev.get();
    r.queue = q;
    r.peer = peer_ip;
    r.kernel = kernel_ip;
    r.kernel_mac = kernel_mac_of(name);
    r.kernel_port = ntohs(bound.sin_port);
    r.stop = &stop;
    r.total = &total;
    r.seen.reserve(expected);
  }
  std::array<std::thread, 2> threads{std::thread(std::ref(readers[0])),
                                     std::thread(std::ref(readers[1]))};
  std::uint32_t sent = 0;
  for (std::uint32_t round = 0; round < per_flow; ++round) {
    for (std::uint32_t flow = 0; flow < flows; ++flow) {
      std::array<char, 8> payload{};
      const std::uint32_t index = round * flows + flow;
      std::memcpy(payload.data(), flow_magic.data(), 4);
      std::memcpy(payload.data() + 4, &index, 4);
      const sockaddr_in to = address(peer_ip, static_cast<std::uint16_t>(20000 + flow));
      sent += ::sendto(sock.fd, payload.data(), payload.size(), 0,
                       reinterpret_cast<const sockaddr*>(&to), sizeof to) == 8
                  ? 1
                  : 0;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (total.load(std::memory_order_acquire) < expected &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // A little longer: a frame delivered twice would show up now.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop.store(true, std::memory_order_release);
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(sent, expected);

  std::vector<std::uint32_t> all(readers[0].seen);
  all.insert(all.end(), readers[1].seen.begin(), readers[1].seen.end());
  std::sort(all.begin(), all.end());
  std::vector<std::uint32_t> want(expected);
  for (std::uint32_t i = 0; i < expected; ++i) {
    want[i] = i;
  }
  EXPECT_EQ(all, want) << "every datagram exactly once over the two queues";
  for (std::uint16_t q = 0; q < 2; ++q) {
    EXPECT_EQ(dev->queue_rx_packets(q), readers[q].seen.size() + readers[q].other) << "queue " << q;
    EXPECT_TRUE(readers[q].sent) << "queue " << q << " did not transmit";
    EXPECT_EQ(dev->queue_stats(q).tx_packets, 1U) << "queue " << q;
  }
  EXPECT_EQ(dev->stats().rx_packets, dev->queue_rx_packets(0) + dev->queue_rx_packets(1));
  EXPECT_EQ(dev->stats().tx_packets, 2U);
  // Flows a queue saw (a flow whose datagrams went to both queues counts in both).
  std::array<std::vector<bool>, 2> flows_on{std::vector<bool>(flows), std::vector<bool>(flows)};
  for (std::size_t q = 0; q < 2; ++q) {
    for (std::uint32_t index : readers[q].seen) {
      flows_on[q][index % flows] = true;
    }
  }
  std::cout << "[ kernel   ] " << expected << " datagrams of " << flows << " flows: queue 0 got "
            << readers[0].seen.size() << " ("
            << std::count(flows_on[0].begin(), flows_on[0].end(), true) << " flows), queue 1 got "
            << readers[1].seen.size() << " ("
            << std::count(flows_on[1].begin(), flows_on[1].end(), true)
            << " flows); other frames: " << readers[0].other << " + " << readers[1].other << "\n";

  // The kernel's socket got the datagram each queue sent.
  std::array<bool, 2> hello{};
  for (int i = 0; i < 2; ++i) {
    pollfd pfd{sock.fd, POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 1000), 1) << "the kernel did not deliver datagram " << i;
    char c = 0;
    ASSERT_EQ(::recv(sock.fd, &c, 1, 0), 1);
    if (c == '0' || c == '1') {
      hello[static_cast<std::size_t>(c - '0')] = true;
    }
  }
  EXPECT_TRUE(hello[0] && hello[1]);

  // Pools clean: each holds back only its queue's spare rx buffer; nothing failed or was misused.
  for (std::uint16_t q = 0; q < 2; ++q) {
    const packet_pool_stats ps = static_cast<packet_pool&>(dev->tx_pool(q)).stats();
    EXPECT_EQ(ps.available, ps.capacity - 1) << "queue " << q;
    EXPECT_EQ(ps.allocations, dev->queue_rx_packets(q) + 1 + 1) << "queue " << q;  // + spare + tx
    EXPECT_EQ(ps.alloc_failures, 0U);
    EXPECT_EQ(ps.double_frees, 0U);
    EXPECT_EQ(ps.foreign_frees, 0U);
  }
  const tap_counters c = dev->counters();
  EXPECT_EQ(c.rx_truncated + c.tx_errors + c.rx_no_buffer, 0U);

  // A queue it does not have: refused and counted.
  std::array<packet, 1> none;
  EXPECT_EQ(dev->rx_burst(2, none), 0U);
  EXPECT_EQ(dev->rx_wait_handle(2).mode, wait_handle::kind::poll);
  EXPECT_EQ(dev->fd(2), -1);
  EXPECT_EQ(dev->stats().bad_queue, 1U);
  EXPECT_EQ(dev->queue_stats(2).rx_packets, 0U);

  dev.reset();
  EXPECT_EQ(::if_nametoindex(name.c_str()), 0U) << "the interface outlived its queues";
}

TEST(TapMultiQueue, QueueCountOutOfRangeIsRefused) {
  std::string error;
  tap_config config;
  config.name = "dnq" + std::to_string(::getpid());
  config.queues = 0;
  EXPECT_EQ(tap_device::open(config, error), nullptr);
  EXPECT_NE(error.find("queues must be 1 to 256"), std::string::npos) << error;
  config.queues = 257;
  EXPECT_EQ(tap_device::open(config, error), nullptr);
  EXPECT_EQ(::if_nametoindex(config.name.c_str()), 0U);
}

}  // namespace
}  // namespace dpdk_net::tap
