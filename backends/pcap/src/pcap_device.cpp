#include "dpdk_net/pcap/pcap_device.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "dpdk_net/os.hpp"

namespace dpdk_net::pcap {

namespace {

constexpr std::size_t max_l2_overhead = 18;  // Ethernet header, a VLAN tag, no FCS

/// A counter written by one thread and read by any (relaxed load + store: one writer).
class queue_counter {
 public:
  void add(std::uint64_t n) noexcept {
    if (n != 0) {
      value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
  }
  void set(std::uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};
};

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

/// The interface's flags and MTU; false (errno set) if it has none (no such interface).
bool interface_query(const std::string& name, short& flags, int& mtu) noexcept {
  ioctl_socket s;
  if (s.fd < 0) {
    return false;
  }
  ifreq r{};
  std::memcpy(r.ifr_name, name.data(), std::min(name.size(), std::size_t{IFNAMSIZ - 1}));
  if (::ioctl(s.fd, SIOCGIFFLAGS, &r) < 0) {
    return false;
  }
  flags = r.ifr_flags;
  if (::ioctl(s.fd, SIOCGIFMTU, &r) < 0) {
    return false;
  }
  mtu = r.ifr_mtu;
  return true;
}

}  // namespace

struct pcap_device::state {
  pcap_t* handle = nullptr;
  int fd = -1;
  std::unique_ptr<packet_pool> pool;
  std::vector<std::byte> scratch;  // a chained packet's frame, linearised (allocated once)
  std::uint32_t calls = 0;
  queue_counter rx_packets, rx_bytes, rx_dropped, tx_packets, tx_bytes, tx_dropped, tx_busy;
  queue_counter rx_truncated, rx_no_buffer, tx_errors, tx_linearised, rx_errors;
  queue_counter ps_recv, ps_drop, ps_ifdrop;
  std::atomic<std::uint64_t> bad_queue{0};

  state() = default;
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  ~state() {
    if (handle != nullptr) {
      pcap_close(handle);
    }
  }

  void refresh_pcap_stats() noexcept {
    struct pcap_stat ps {};
    if (pcap_stats(handle, &ps) == 0) {
      ps_recv.set(ps.ps_recv);
      ps_drop.set(ps.ps_drop);
      ps_ifdrop.set(ps.ps_ifdrop);
    }
  }
};

pcap_device::pcap_device() = default;
pcap_device::~pcap_device() = default;

std::unique_ptr<pcap_device> pcap_device::open(const pcap_config& config, std::string& error) {
  const std::string& name = config.iface;
  if (name.empty() || name.size() >= IFNAMSIZ) {
    error = "pcap: interface name must be 1 to " + std::to_string(IFNAMSIZ - 1) + " characters";
    return nullptr;
  }
  short flags = 0;
  int if_mtu = 0;
  if (!interface_query(name, flags, if_mtu)) {
    error = "pcap: no interface named " + name + " (" + std::strerror(errno) +
            "; list them with: ip link)";
    return nullptr;
  }
  if ((flags & IFF_UP) == 0) {
    error = "pcap: interface " + name + " is down (fix: ip link set " + name + " up)";
    return nullptr;
  }
  const int mtu = config.mtu ? *config.mtu : if_mtu;
  if (mtu < 576 || mtu > 9000) {
    error = "pcap: MTU " + std::to_string(mtu) + " of " + name +
            " is outside 576..9000 (fix: set pcap_config::mtu, or ip link set " + name + " mtu N)";
    return nullptr;
  }
  std::unique_ptr<pcap_device> dev(new pcap_device());
  dev->s_ = std::make_unique<state>();
  state& s = *dev->s_;
  std::array<char, PCAP_ERRBUF_SIZE> errbuf{};
  s.handle = pcap_create(name.c_str(), errbuf.data());
  if (s.handle == nullptr) {
    error = "pcap: pcap_create " + name + ": " + errbuf.data();
    return nullptr;
  }
  const int snaplen = mtu + static_cast<int>(max_l2_overhead);
  pcap_set_snaplen(s.handle, snaplen);
  pcap_set_promisc(s.handle, 1);  // our MAC is not the kernel's
  pcap_set_immediate_mode(s.handle, 1);
  pcap_set_buffer_size(s.handle, static_cast<int>(config.kernel_buffer));
  if (const int rc = pcap_activate(s.handle); rc < 0) {
    error = "pcap: pcap_activate " + name + ": " + pcap_geterr(s.handle);
    if (rc == PCAP_ERROR_PERM_DENIED) {
      error += " (run as root, or give the program CAP_NET_RAW: setcap cap_net_raw+ep PROGRAM)";
    } else if (rc == PCAP_ERROR_NO_SUCH_DEVICE) {
      error += " (no interface named " + name + ": list them with: ip link)";
    } else if (rc == PCAP_ERROR_IFACE_NOT_UP) {
      error += " (fix: ip link set " + name + " up)";
    }
    return nullptr;
  }
  if (pcap_datalink(s.handle) != DLT_EN10MB) {
    error = "pcap: " + name + " is not an Ethernet interface (link type " +
            std::to_string(pcap_datalink(s.handle)) + ")";
    return nullptr;
  }
  if (pcap_setnonblock(s.handle, 1, errbuf.data()) < 0) {
    error = "pcap: pcap_setnonblock " + name + ": " + errbuf.data();
    return nullptr;
  }
  if (pcap_setdirection(s.handle, PCAP_D_IN) < 0) {
    error = "pcap: pcap_setdirection " + name + ": " + pcap_geterr(s.handle);
    return nullptr;
  }
  s.fd = pcap_get_selectable_fd(s.handle);
  if (s.fd < 0) {
    error = "pcap: " + name + " has no selectable descriptor";
    return nullptr;
  }
  // pcap_inject must not block when the socket's send buffer is full: then tx_burst declines.
  if (const int fl = ::fcntl(s.fd, F_GETFL);
      fl < 0 || ::fcntl(s.fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    error = std::string("pcap: fcntl O_NONBLOCK: ") + std::strerror(errno);
    return nullptr;
  }
  device_info& info = dev->info_;
  info.name = name;
  info.mtu = static_cast<std::uint16_t>(mtu);
  info.tx_multi_segment = true;  // linearised into the scratch buffer
  if (config.mac) {
    info.mac = *config.mac;
  } else {
    std::array<std::byte, 6> r{};
    if (const std::error_code ec = fill_random(r); ec) {
      error = "pcap: no random MAC: " + ec.message() + " (set pcap_config::mac)";
      return nullptr;
    }
    mac_address m{};
    for (std::size_t i = 0; i < 6; ++i) {
      m.bytes[i] = static_cast<std::uint8_t>(r[i]);
    }
    m.bytes[0] = static_cast<std::uint8_t>((m.bytes[0] & 0xfcU) | 0x02U);  // unicast, local
    info.mac = m;
  }
  packet_pool_config pc;
  pc.name = "pcap:" + name;
  pc.count = config.pool_size;
  pc.buffer_size = static_cast<std::uint32_t>(128 + mtu + max_l2_overhead);
  s.pool = std::make_unique<packet_pool>(pc);
  s.scratch.resize(static_cast<std::size_t>(mtu) + max_l2_overhead);
  return dev;
}

std::size_t pcap_device::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  state& s = *s_;
  if (queue != 0) {
    s.bad_queue.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  if ((++s.calls & 1023U) == 0) {
    s.refresh_pcap_stats();
  }
  std::size_t n = 0;
  std::uint64_t bytes = 0;
  std::uint64_t truncated = 0;
  std::uint64_t no_buffer = 0;
  const std::size_t max_frame = std::size_t{info_.mtu} + max_l2_overhead;
  while (n < out.size()) {
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    const int got = pcap_next_ex(s.handle, &hdr, &data);
    if (got != 1) {
      if (got < 0) {
        s.rx_errors.add(1);  // counted, not silent (extended_stats, /stats)
      }
      break;  // 0: nothing more now; an error also ends the burst
    }
    if (hdr->len > hdr->caplen || hdr->caplen > max_frame) {
      ++truncated;
      continue;
    }
    packet p = s.pool->alloc();
    if (!p) {
      ++no_buffer;  // the frame is gone (as a NIC with no free buffer drops it)
      continue;
    }
    std::byte* dst = p.append(hdr->caplen);
    if (dst == nullptr) {
      ++truncated;
      continue;
    }
    std::memcpy(dst, data, hdr->caplen);
    p.meta().queue = 0;
    bytes += hdr->caplen;
    out[n++] = std::move(p);
  }
  s.rx_packets.add(n);
  s.rx_bytes.add(bytes);
  s.rx_truncated.add(truncated);
  s.rx_no_buffer.add(no_buffer);
  s.rx_dropped.add(truncated + no_buffer);
  return n;
}

std::size_t pcap_device::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  state& s = *s_;
  if (queue != 0) {
    s.bad_queue.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  const std::size_t max_frame = std::size_t{info_.mtu} + max_l2_overhead;
  std::uint64_t sent = 0;
  std::uint64_t bytes = 0;
  std::uint64_t dropped = 0;
  std::uint64_t errors = 0;
  std::uint64_t linearised = 0;
  std::size_t i = 0;
  for (; i < pkts.size(); ++i) {
    packet& p = pkts[i];
    if (!p) {
      continue;
    }
    const std::size_t len = p.length();
    if (len > max_frame || len == 0) {
      ++dropped;
      p.reset();
      continue;
    }
    const void* frame = p.head()->data();
    if (p.head()->next != nullptr) {
      std::size_t off = 0;
      for (segment& seg : p.segments()) {
        std::memcpy(s.scratch.data() + off, seg.data(), seg.data_len);
        off += seg.data_len;
      }
      frame = s.scratch.data();
      ++linearised;
    }
    const int wrote = pcap_inject(s.handle, frame, len);
    const int err = errno;
    if (wrote < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)) {
      s.tx_busy.add(pkts.size() - i);
      break;  // the rest stays with the caller
    }
    if (wrote < 0) {
      ++errors;
      ++dropped;
    } else {
      ++sent;
      bytes += len;
    }
    p.reset();
  }
  s.tx_packets.add(sent);
  s.tx_bytes.add(bytes);
  s.tx_dropped.add(dropped);
  s.tx_errors.add(errors);
  s.tx_linearised.add(linearised);
  return i;
}

buffer_pool& pcap_device::tx_pool(std::uint16_t queue) noexcept {
  if (queue != 0) {
    s_->bad_queue.fetch_add(1, std::memory_order_relaxed);
  }
  return *s_->pool;
}

link_status pcap_device::link() const noexcept {
  short flags = 0;
  int mtu = 0;
  if (!interface_query(info_.name, flags, mtu)) {
    return {false, 0};
  }
  return {(flags & IFF_UP) != 0 && (flags & IFF_RUNNING) != 0, 0};
}

device_stats pcap_device::stats() const noexcept {
  const state& s = *s_;
  device_stats d{};
  d.rx_packets = s.rx_packets.get();
  d.rx_bytes = s.rx_bytes.get();
  d.rx_dropped = s.rx_dropped.get();
  d.tx_packets = s.tx_packets.get();
  d.tx_bytes = s.tx_bytes.get();
  d.tx_dropped = s.tx_dropped.get();
  d.tx_busy = s.tx_busy.get();
  d.bad_queue = s.bad_queue.load(std::memory_order_relaxed);
  return d;
}

pcap_counters pcap_device::counters() const noexcept {
  const state& s = *s_;
  return {s.rx_truncated.get(), s.rx_no_buffer.get(), s.tx_errors.get(), s.tx_linearised.get(),
          s.rx_errors.get()};
}

std::vector<named_counter> pcap_device::extended_stats() const {
  const pcap_counters c = counters();
  return {{"pcap_ps_recv", s_->ps_recv.get()},     {"pcap_ps_drop", s_->ps_drop.get()},
          {"pcap_ps_ifdrop", s_->ps_ifdrop.get()}, {"rx_truncated", c.rx_truncated},
          {"rx_no_buffer", c.rx_no_buffer},        {"tx_errors", c.tx_errors},
          {"tx_linearised", c.tx_linearised},      {"rx_errors", c.rx_errors}};
}

int pcap_device::fd() const noexcept {
  return s_->fd;
}

wait_handle pcap_device::rx_wait_handle(std::uint16_t queue) const noexcept {
  return queue == 0 ? wait_handle::readable(s_->fd) : wait_handle::poll();
}

}  // namespace dpdk_net::pcap
