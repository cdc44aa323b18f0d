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
#include <atomic>
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

/// A counter written by one thread (the queue's) and read by any: relaxed, and a load plus a store
/// rather than a locked read-modify-write (there is only one writer).
class queue_counter {
 public:
  void add(std::uint64_t n) noexcept {
    if (n != 0) {
      value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
  }
  [[nodiscard]] std::uint64_t get() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};
};

}  // namespace

/// One queue: everything in it is touched only by the queue's thread (the counters are also read,
/// relaxed, by stats()). Cache-line aligned so two queues' counters never share a line.
struct alignas(64) tap_device::queue_state {
  int fd = -1;
  std::unique_ptr<packet_pool> pool;
  packet spare;  // rx buffer kept across calls (declared after pool: freed before it)
  queue_counter rx_packets, rx_bytes, rx_dropped, tx_packets, tx_bytes, tx_dropped, tx_busy;
  queue_counter rx_truncated, tx_errors, rx_no_buffer;

  queue_state() = default;
  queue_state(const queue_state&) = delete;
  queue_state& operator=(const queue_state&) = delete;
  ~queue_state() {
    spare.reset();
    if (fd >= 0) {
      ::close(fd);  // a non-persistent TAP interface disappears with its last descriptor
    }
  }
};

tap_device::tap_device() = default;
tap_device::~tap_device() = default;

std::unique_ptr<tap_device> tap_device::open(const tap_config& config, std::string& error) {
  if (config.name.empty() || config.name.size() >= IFNAMSIZ) {
    error = "TAP interface name must be 1 to " + std::to_string(IFNAMSIZ - 1) + " characters";
    return nullptr;
  }
  if (config.queues == 0 || config.queues > max_queues) {
    error = "TAP queues must be 1 to " + std::to_string(max_queues) + " (got " +
            std::to_string(config.queues) + ")";
    return nullptr;
  }
  const bool multi = config.queues > 1;
  std::unique_ptr<tap_device> dev(new tap_device());
  dev->queues_ = std::make_unique<queue_state[]>(config.queues);
  std::string name = config.name;
  for (std::uint16_t q = 0; q < config.queues; ++q) {
    const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      error = errno_text("open /dev/net/tun");
      error += errno == ENOENT ? " (load the tun module: modprobe tun)"
                               : " (run as root, or with CAP_NET_ADMIN)";
      return nullptr;  // the queues opened so far close with dev
    }
    dev->queues_[q].fd = fd;
    ifreq r = request_for(name);
    // Raw Ethernet frames, no packet-info header; every queue attaches to the same interface.
    r.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (multi ? IFF_MULTI_QUEUE : 0));
    if (::ioctl(fd, TUNSETIFF, &r) < 0) {
      const int err = errno;
      error =
          errno_text(("TUNSETIFF " + name + (multi ? " queue " + std::to_string(q) : "")).c_str());
      if (err == EPERM) {
        error += " (run as root, or with CAP_NET_ADMIN)";
      } else if (multi && err == EINVAL) {
        error += " (an interface of this name exists without multi-queue: delete it, ip link del " +
                 name + ")";
      }
      return nullptr;
    }
    name = r.ifr_name;  // the kernel's name for it (a "%d" in the name is filled in)
  }
  device_info& info = dev->info_;
  info.name = name;
  info.mtu = config.mtu;
  info.rx_queues = config.queues;
  info.tx_queues = config.queues;
  info.tx_multi_segment = true;    // tx_burst gathers a chain with one writev
  info.thread_safe_queues = true;  // nothing is shared between queues but relaxed counters
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
  for (std::uint16_t q = 0; q < config.queues; ++q) {
    packet_pool_config pc;
    pc.name = multi ? info.name + "/q" + std::to_string(q) : info.name;
    pc.count = config.pool_size;
    pc.buffer_size = static_cast<std::uint32_t>(128 + config.mtu + max_l2_overhead);
    dev->queues_[q].pool = std::make_unique<packet_pool>(pc);
  }
  return dev;
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
  if (queue >= info_.rx_queues) {
    bad_queue_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  queue_state& qs = queues_[queue];
  std::size_t n = 0;
  std::uint64_t bytes = 0;
  std::uint64_t truncated = 0;
  std::uint64_t no_buffer = 0;
  while (n < out.size()) {
    // The buffer to read into is kept between calls: a read that finds nothing (EAGAIN, the
    // common case of a polling loop) costs one syscall, no allocation and no free.
    if (!qs.spare) {
      qs.spare = qs.pool->alloc();
      if (!qs.spare) {
        ++no_buffer;  // stays in the kernel's queue until buffers come back
        break;
      }
    }
    const std::size_t room = qs.spare.tailroom();
    // A frame that fills the buffer exactly (MTU + 18 with a VLAN tag) is whole; only one that
    // reaches the extra byte is truncated. (The kernel reports a truncated frame's full length;
    // the extra byte makes the test hold whichever way it counts.)
    std::byte overflow{};
    std::array<iovec, 2> iov{{{qs.spare.head()->data(), room}, {&overflow, 1}}};
    const ssize_t got = ::readv(qs.fd, iov.data(), static_cast<int>(iov.size()));
    if (got < 0) {
      break;  // EAGAIN: nothing more (any other error also ends this burst)
    }
    if (static_cast<std::size_t>(got) > room) {
      ++truncated;
      continue;  // the spare is still empty: reused for the next frame
    }
    qs.spare.append(static_cast<std::size_t>(got));
    qs.spare.meta().queue = queue;
    bytes += static_cast<std::uint64_t>(got);
    out[n++] = std::move(qs.spare);
  }
  qs.rx_packets.add(n);
  qs.rx_bytes.add(bytes);
  qs.rx_truncated.add(truncated);
  qs.rx_dropped.add(truncated);
  qs.rx_no_buffer.add(no_buffer);
  return n;
}

std::size_t tap_device::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (queue >= info_.tx_queues) {
    bad_queue_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  queue_state& qs = queues_[queue];
  const std::size_t max_frame = std::size_t{info_.mtu} + max_l2_overhead;
  std::uint64_t sent = 0;
  std::uint64_t bytes = 0;
  std::uint64_t dropped = 0;
  std::uint64_t errors = 0;
  std::size_t i = 0;
  for (; i < pkts.size(); ++i) {
    packet& p = pkts[i];
    if (!p) {
      continue;
    }
    if (p.length() > max_frame) {
      ++dropped;
      p.reset();
      continue;
    }
    // Only [0, count) is read: not zeroed per packet (2 KiB for 128 entries).
    std::array<iovec, packet::max_segments> iov;
    int count = 0;
    for (segment& s : p.segments()) {
      iov[static_cast<std::size_t>(count++)] = iovec{s.data(), s.data_len};
    }
    const ssize_t wrote = ::writev(qs.fd, iov.data(), count);
    if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      qs.tx_busy.add(pkts.size() - i);
      break;  // the rest stays with the caller
    }
    if (wrote < 0) {
      ++errors;
      ++dropped;
    } else {
      ++sent;
      bytes += p.length();
    }
    p.reset();
  }
  qs.tx_packets.add(sent);
  qs.tx_bytes.add(bytes);
  qs.tx_dropped.add(dropped);
  qs.tx_errors.add(errors);
  return i;
}

buffer_pool& tap_device::tx_pool(std::uint16_t queue) noexcept {
  if (queue >= info_.tx_queues) {
    bad_queue_.fetch_add(1, std::memory_order_relaxed);
    return *queues_[0].pool;
  }
  return *queues_[queue].pool;
}

device_stats tap_device::queue_stats(std::uint16_t queue) const noexcept {
  device_stats s{};
  if (queue >= info_.rx_queues) {
    return s;
  }
  const queue_state& qs = queues_[queue];
  s.rx_packets = qs.rx_packets.get();
  s.rx_bytes = qs.rx_bytes.get();
  s.rx_dropped = qs.rx_dropped.get();
  s.tx_packets = qs.tx_packets.get();
  s.tx_bytes = qs.tx_bytes.get();
  s.tx_dropped = qs.tx_dropped.get();
  s.tx_busy = qs.tx_busy.get();
  return s;
}

device_stats tap_device::stats() const noexcept {
  device_stats total{};
  for (std::uint16_t q = 0; q < info_.rx_queues; ++q) {
    const device_stats s = queue_stats(q);
    total.rx_packets += s.rx_packets;
    total.rx_bytes += s.rx_bytes;
    total.rx_dropped += s.rx_dropped;
    total.tx_packets += s.tx_packets;
    total.tx_bytes += s.tx_bytes;
    total.tx_dropped += s.tx_dropped;
    total.tx_busy += s.tx_busy;
  }
  total.bad_queue = bad_queue_.load(std::memory_order_relaxed);
  return total;
}

tap_counters tap_device::counters() const noexcept {
  tap_counters total{};
  for (std::uint16_t q = 0; q < info_.rx_queues; ++q) {
    const queue_state& qs = queues_[q];
    total.rx_truncated += qs.rx_truncated.get();
    total.tx_errors += qs.tx_errors.get();
    total.rx_no_buffer += qs.rx_no_buffer.get();
  }
  return total;
}

int tap_device::fd(std::uint16_t queue) const noexcept {
  return queue < info_.rx_queues ? queues_[queue].fd : -1;
}

wait_handle tap_device::rx_wait_handle(std::uint16_t queue) const noexcept {
  return queue < info_.rx_queues ? wait_handle::readable(queues_[queue].fd) : wait_handle::poll();
}

}  // namespace dpdk_net::tap
