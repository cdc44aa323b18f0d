#include "dpdk_net/tap/tap_device.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace dpdk_net::tap {

namespace {

constexpr std::size_t max_l2_overhead = 18;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

/// A socket for interface ioctls (closed on scope exit).
struct ioctl_socket {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ioctl_socket() = default;
  ioctl_socket(const ioctl_socket&) = delete;
  ioctl_socket& operator=(const ioctl_socket&) = delete;
  ~ioctl_socket() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

ifreq request_for(const std::string& name) {
  ifreq r{};
  std::memcpy(r.ifr_name, name.data(), std::min(name.size(), std::size_t{IFNAMSIZ - 1}));
  return r;
}

void set_address(sockaddr& sa, wire::ipv4_address a) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(a.value);
  std::memcpy(&sa, &in, sizeof in);
}

}  // namespace

std::unique_ptr<tap_device> tap_device::open(const tap_config& config, std::string& error) {
  if (config.name.empty() || config.name.size() >= IFNAMSIZ) {
    error = "TAP interface name must be 1 to " + std::to_string(IFNAMSIZ - 1) + " characters";
    return nullptr;
  }
  const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    error = errno_text("open /dev/net/tun");
    error += errno == ENOENT ? " (load the tun module: modprobe tun)"
                             : " (run as root, or with CAP_NET_ADMIN)";
    return nullptr;
  }
  ifreq r = request_for(config.name);
  r.ifr_flags = IFF_TAP | IFF_NO_PI;  // raw Ethernet frames, no packet-info header
  if (::ioctl(fd, TUNSETIFF, &r) < 0) {
    error = errno_text(("TUNSETIFF " + config.name).c_str());
    if (errno == EPERM) {
      error += " (run as root, or with CAP_NET_ADMIN)";
    }
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<tap_device> dev(new tap_device());
  dev->fd_ = fd;
  device_info& info = dev->info_;
  info.name = r.ifr_name;
  info.mtu = config.mtu;
  info.tx_multi_segment = true;  // tx_burst gathers a chain with one writev
  if (config.mac) {
    info.mac = *config.mac;
  } else {
    // Locally administered, derived from the name (FNV-1a): stable across runs.
    std::uint32_t h = 2166136261U;
    for (char c : config.name) {
      h = (h ^ static_cast<unsigned char>(c)) * 16777619U;
    }
    info.mac = mac_address{{0x02, 0x7a, static_cast<std::uint8_t>(h >> 24U),
                            static_cast<std::uint8_t>(h >> 16U), static_cast<std::uint8_t>(h >> 8U),
                            static_cast<std::uint8_t>(h)}};
  }
  packet_pool_config pc;
  pc.name = info.name;
  pc.count = config.pool_size;
  pc.buffer_size = static_cast<std::uint32_t>(128 + config.mtu + max_l2_overhead);
  dev->pool_ = std::make_unique<packet_pool>(pc);
  return dev;
}

tap_device::~tap_device() {
  if (fd_ >= 0) {
    ::close(fd_);  // a non-persistent TAP interface disappears with its last descriptor
  }
}

bool tap_device::configure_kernel_side(const kernel_side& side, std::string& error) {
  if (side.disable_ipv6) {
    const std::string path = "/proc/sys/net/ipv6/conf/" + info_.name + "/disable_ipv6";
    const int f = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (f >= 0) {
      const bool ok = ::write(f, "1", 1) == 1;
      ::close(f);
      if (!ok) {
        error = errno_text(("write " + path).c_str());
        return false;
      }
    }  // no IPv6 in this kernel: nothing to turn off
  }
  ioctl_socket s;
  if (s.fd < 0) {
    error = errno_text("socket");
    return false;
  }
  ifreq r = request_for(info_.name);
  set_address(r.ifr_addr, side.address);
  if (::ioctl(s.fd, SIOCSIFADDR, &r) < 0) {
    error = errno_text("SIOCSIFADDR");
    return false;
  }
  r = request_for(info_.name);
  const std::uint32_t mask = side.prefix_length == 0
                                 ? 0
                                 : ~std::uint32_t{0}
                                       << (32U - std::min<unsigned>(side.prefix_length, 32));
  set_address(r.ifr_netmask, wire::ipv4_address{mask});
  if (::ioctl(s.fd, SIOCSIFNETMASK, &r) < 0) {
    error = errno_text("SIOCSIFNETMASK");
    return false;
  }
  r = request_for(info_.name);
  r.ifr_mtu = info_.mtu;
  if (::ioctl(s.fd, SIOCSIFMTU, &r) < 0) {
    error = errno_text("SIOCSIFMTU");
    return false;
  }
  r = request_for(info_.name);
  if (::ioctl(s.fd, SIOCGIFFLAGS, &r) < 0) {
    error = errno_text("SIOCGIFFLAGS");
    return false;
  }
  r.ifr_flags = static_cast<short>(r.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.fd, SIOCSIFFLAGS, &r) < 0) {
    error = errno_text("SIOCSIFFLAGS");
    return false;
  }
  return true;
}

std::size_t tap_device::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  if (queue != 0) {
    ++stats_.bad_queue;
    return 0;
  }
  std::size_t n = 0;
  while (n < out.size()) {
    // The buffer to read into is kept between calls: a read that finds nothing (EAGAIN, the
    // common case of a polling loop) costs one syscall, no allocation and no free.
    if (!spare_) {
      spare_ = pool_->alloc();
      if (!spare_) {
        ++counters_.rx_no_buffer;  // stays in the kernel's queue until buffers come back
        break;
      }
    }
    const std::size_t room = spare_.tailroom();
    // A frame that fills the buffer exactly (MTU + 18 with a VLAN tag) is whole; only one that
    // reaches the extra byte is truncated. (The kernel reports a truncated frame's full length;
    // the extra byte makes the test hold whichever way it counts.)
    std::byte overflow{};
    std::array<iovec, 2> iov{{{spare_.head()->data(), room}, {&overflow, 1}}};
    const ssize_t got = ::readv(fd_, iov.data(), static_cast<int>(iov.size()));
    if (got < 0) {
      break;  // EAGAIN: nothing more (any other error also ends this burst)
    }
    if (static_cast<std::size_t>(got) > room) {
      ++counters_.rx_truncated;
      ++stats_.rx_dropped;
      continue;  // the spare is still empty: reused for the next frame
    }
    spare_.append(static_cast<std::size_t>(got));
    spare_.meta().queue = 0;
    ++stats_.rx_packets;
    stats_.rx_bytes += static_cast<std::uint64_t>(got);
    out[n++] = std::move(spare_);
  }
  return n;
}

std::size_t tap_device::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (queue != 0) {
    ++stats_.bad_queue;
    return 0;
  }
  const std::size_t max_frame = std::size_t{info_.mtu} + max_l2_overhead;
  std::size_t i = 0;
  for (; i < pkts.size(); ++i) {
    packet& p = pkts[i];
    if (!p) {
      continue;
    }
    if (p.length() > max_frame) {
      ++stats_.tx_dropped;
      p.reset();
      continue;
    }
    // Only [0, count) is read: not zeroed per packet (2 KiB for 128 entries).
    std::array<iovec, packet::max_segments> iov;
    int count = 0;
    for (segment& s : p.segments()) {
      iov[static_cast<std::size_t>(count++)] = iovec{s.data(), s.data_len};
    }
    const ssize_t wrote = ::writev(fd_, iov.data(), count);
    if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      stats_.tx_busy += pkts.size() - i;
      break;  // the rest stays with the caller
    }
    if (wrote < 0) {
      ++counters_.tx_errors;
      ++stats_.tx_dropped;
    } else {
      ++stats_.tx_packets;
      stats_.tx_bytes += p.length();
    }
    p.reset();
  }
  return i;
}

wait_handle tap_device::rx_wait_handle(std::uint16_t queue) const noexcept {
  (void)queue;
  return wait_handle::readable(fd_);
}

}  // namespace dpdk_net::tap
