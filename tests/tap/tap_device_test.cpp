// The TAP backend against the Linux kernel. The test plays the host on our side of the wire:
// it answers the kernel's ARP request and exchanges UDP with a kernel socket, so the backend is
// proven without the stack. Unique interface names (dnt<pid>); the interface goes away with the
// device; addresses in 198.18.0.0/15 only.
#include "dpdk_net/tap/tap_device.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <functional>
#include <string>

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

}  // namespace
}  // namespace dpdk_net::tap
