#include "dpdk_net/runtime/flow_steering.hpp"

#include <bit>
#include <stdexcept>
#include <string>

#include "dpdk_net/device.hpp"
#include "dpdk_net/rss.hpp"
#include "dpdk_net/wire/bytes.hpp"

namespace dpdk_net {
namespace {

constexpr std::uint8_t proto_icmp = 1;
constexpr std::uint8_t proto_tcp = 6;
constexpr std::uint8_t proto_udp = 17;

}  // namespace

flow_steering::flow_steering(steering_config config)
    : config_(std::move(config)),
      tcp_ports_(std::make_unique<port_entry[]>(65536)),
      udp_ports_(std::make_unique<port_entry[]>(65536)) {
  if (config_.workers == 0 || config_.workers > max_workers) {
    throw std::invalid_argument("steering_config.workers: must be 1.." +
                                std::to_string(max_workers) + ", is " +
                                std::to_string(config_.workers));
  }
  if (config_.key.size() < 16) {
    throw std::invalid_argument(
        "steering_config.key: must be at least 16 bytes (a Toeplitz key "
        "covering the IPv4 4-tuple), is " +
        std::to_string(config_.key.size()));
  }
  if (config_.reta.empty()) {
    throw std::invalid_argument("steering_config.reta: must not be empty");
  }
  for (const std::uint16_t w : config_.reta) {
    if (w >= config_.workers) {
      throw std::invalid_argument("steering_config.reta: names worker " + std::to_string(w) +
                                  " of " + std::to_string(config_.workers));
    }
  }
}

flow_steering::port_entry* flow_steering::table(std::uint8_t protocol) const noexcept {
  return protocol == proto_tcp   ? tcp_ports_.get()
         : protocol == proto_udp ? udp_ports_.get()
                                 : nullptr;
}

std::uint16_t flow_steering::hash_owner(wire::ipv4_address remote, std::uint16_t remote_port,
                                        std::uint16_t local_port) const noexcept {
  // As the NIC hashes an incoming packet: source (remote) first; or in canonical order.
  const bool swap =
      config_.symmetric && (config_.address.value < remote.value ||
                            (config_.address.value == remote.value && local_port < remote_port));
  const std::uint32_t h =
      swap ? rss_hash_ipv4_l4(config_.key, config_.address, remote, local_port, remote_port)
           : rss_hash_ipv4_l4(config_.key, remote, config_.address, remote_port, local_port);
  return config_.reta[h % config_.reta.size()];
}

std::uint16_t flow_steering::next_bound(std::uint32_t bound, std::uint16_t from) noexcept {
  const std::uint32_t at_or_after = from < 32 ? bound & (~std::uint32_t{0} << from) : 0;
  return static_cast<std::uint16_t>(std::countr_zero(at_or_after != 0 ? at_or_after : bound));
}

std::uint16_t flow_steering::flow_owner(std::uint8_t protocol, wire::ipv4_address remote,
                                        std::uint16_t remote_port,
                                        std::uint16_t local_port) const noexcept {
  const std::uint32_t bound = port_mask(protocol, local_port);
  if (bound != 0 && std::has_single_bit(bound)) {
    return static_cast<std::uint16_t>(std::countr_zero(bound));  // no hash needed
  }
  const std::uint16_t h = hash_owner(remote, remote_port, local_port);
  return bound == 0 ? h : next_bound(bound, h);
}

std::uint32_t flow_steering::port_mask(std::uint8_t protocol, std::uint16_t port) const noexcept {
  const port_entry* t = table(protocol);
  return t == nullptr ? 0
                      : static_cast<std::uint32_t>(t[port].users.load(std::memory_order_relaxed));
}

std::uint32_t flow_steering::connect_mask(std::uint8_t protocol,
                                          std::uint16_t port) const noexcept {
  const port_entry* t = table(protocol);
  return t == nullptr
             ? 0
             : static_cast<std::uint32_t>(t[port].users.load(std::memory_order_relaxed) >> 32U);
}

bool flow_steering::acquire(std::uint16_t worker, stack::port_claim kind, std::uint8_t protocol,
                            std::uint16_t port, wire::ipv4_address remote,
                            std::uint16_t remote_port) noexcept {
  port_entry* t = table(protocol);
  if (t == nullptr || worker >= config_.workers) {
    return false;
  }
  port_entry& e = t[port];
  const std::uint32_t self = std::uint32_t{1} << worker;
  using stack::port_claim;
  if (kind == port_claim::child) {
    // Accepted here: held as "off hash" only if the hash would put the flow elsewhere (a lone
    // listener's flows), so that no other worker's bind takes it (below).
    if (hash_owner(remote, remote_port, port) == worker) {
      return false;
    }
    e.off_hash.fetch_or(self, std::memory_order_seq_cst);  // before a joining bind's re-check
    return true;
  }
  if (kind == port_claim::bound_connect) {
    return flow_owner(protocol, remote, remote_port, port) == worker;  // a question: no claim
  }
  if (kind == port_claim::connect && hash_owner(remote, remote_port, port) != worker) {
    return false;  // the replies would not come here
  }
  // One word for binds and connects, so that a bind and a connect on two workers cannot both
  // take a port (a CAS decides).
  std::uint64_t seen = e.users.load(std::memory_order_relaxed);
  for (;;) {
    const auto bound = static_cast<std::uint32_t>(seen);
    const auto connecting = static_cast<std::uint32_t>(seen >> 32U);
    std::uint64_t want = seen;
    switch (kind) {
      case port_claim::bind: {
        if ((connecting & ~self) != 0) {
          return false;  // another worker's outgoing connection uses it
        }
        if (bound != 0 && (bound & self) == 0) {
          // Joining: the flows whose hash lies between the previous bound worker and us move
          // from the next bound worker after us to us. Those are off-hash flows of that worker;
          // refuse if it has any (they would be reset).
          const std::uint16_t loser = next_bound(bound, worker);
          if ((e.off_hash.load(std::memory_order_relaxed) & (std::uint32_t{1} << loser)) != 0) {
            return false;
          }
        }
        want |= self;
        break;
      }
      case port_claim::ephemeral:
        if ((bound & ~self) != 0 || (connecting & ~self) != 0) {
          return false;
        }
        want |= self;
        if (protocol == proto_udp) {
          // A UDP socket's replies come from anywhere: its port stays its worker's alone (also
          // marked connecting, so other workers' binds are refused; cleared by its release).
          want |= std::uint64_t{self} << 32U;
        }
        break;
      case port_claim::connect:
        if ((bound & ~self) != 0) {
          return false;  // bound elsewhere: its packets would go there
        }
        want |= std::uint64_t{self} << 32U;
        break;
      default:
        return false;
    }
    if (want == seen) {
      return true;
    }
    if (e.users.compare_exchange_weak(seen, want, std::memory_order_relaxed)) {
      const auto was_bound = static_cast<std::uint32_t>(seen);
      if (kind == port_claim::bind && was_bound != 0 && (was_bound & self) == 0) {
        // Joined: an off-hash child the loser made meanwhile (its check above saw none) must
        // not be taken. The fence pairs with the child's seq_cst claim: one of the two sees the
        // other (a child made after this re-check, while its SYN was in flight, remains a window).
        std::atomic_thread_fence(std::memory_order_seq_cst);
        const std::uint16_t loser = next_bound(was_bound, worker);
        if ((e.off_hash.load(std::memory_order_relaxed) & (std::uint32_t{1} << loser)) != 0) {
          e.users.fetch_and(~std::uint64_t{self}, std::memory_order_relaxed);
          return false;
        }
      }
      return true;
    }
  }
}

void flow_steering::release(std::uint16_t worker, stack::port_claim kind, std::uint8_t protocol,
                            std::uint16_t port) noexcept {
  port_entry* t = table(protocol);
  if (t == nullptr || worker >= config_.workers) {
    return;
  }
  const std::uint32_t self = std::uint32_t{1} << worker;
  switch (kind) {
    case stack::port_claim::child:
      t[port].off_hash.fetch_and(~self, std::memory_order_relaxed);
      break;
    case stack::port_claim::connect:
      t[port].users.fetch_and(~(std::uint64_t{self} << 32U), std::memory_order_relaxed);
      break;
    default:
      // UDP: one socket per port and stack, so its ephemeral claim's connecting bit goes too.
      t[port].users.fetch_and(
          ~(std::uint64_t{self} | (protocol == proto_udp ? std::uint64_t{self} << 32U : 0)),
          std::memory_order_relaxed);
      break;
  }
}

void flow_steering::clear_ports() noexcept {
  for (std::size_t p = 0; p < 65536; ++p) {
    for (port_entry* t : {tcp_ports_.get(), udp_ports_.get()}) {
      t[p].users.store(0, std::memory_order_relaxed);
      t[p].off_hash.store(0, std::memory_order_relaxed);
    }
  }
}

frame_verdict flow_steering::classify(const packet& frame, std::uint16_t self) const noexcept {
  frame_verdict v;
  if (config_.workers == 1) {
    return v;
  }
  const std::span<const std::byte> f = frame.front();
  if (f.size() < 14) {
    return v;  // malformed: the receiving stack counts it
  }
  const std::uint16_t type = wire::load16(f.data() + 12);
  if (type == 0x0806) {
    v.to = frame_verdict::kind::all;
    return v;
  }
  if (type != 0x0800 || f.size() < 14 + 20) {
    return v;
  }
  const std::byte* ip = f.data() + 14;
  const std::size_t ihl = (wire::load8(ip) & 0x0fU) * 4U;
  const std::uint16_t frag = wire::load16(ip + 6);
  if (ihl < 20 || (frag & 0x3fffU) != 0 || f.size() < 14 + ihl + 8) {
    return v;  // fragments are reassembled where they land (datagram_owner then decides)
  }
  const std::uint8_t protocol = wire::load8(ip + 9);
  const wire::ipv4_address src{wire::load32(ip + 12)};
  const std::byte* l4 = ip + ihl;
  std::uint16_t owner = self;
  if (protocol == proto_tcp || protocol == proto_udp) {
    const std::uint16_t sport = wire::load16(l4);
    const std::uint16_t dport = wire::load16(l4 + 2);
    const std::uint32_t bound = port_mask(protocol, dport);
    if (bound != 0 && std::has_single_bit(bound)) {
      owner = static_cast<std::uint16_t>(std::countr_zero(bound));  // a lone binder: no hash
    } else if (config_.mode == steering_mode::software) {
      owner = hash_owner(src, sport, dport);
      v.hashed = true;
      owner = bound == 0 ? owner : next_bound(bound, owner);
    } else if (bound != 0 && (bound & (std::uint32_t{1} << self)) == 0) {
      owner = next_bound(bound, self);  // the NIC's hash picked us (self), unbound here
    }
  } else if (protocol == proto_icmp) {
    const std::uint8_t icmp = wire::load8(l4);
    if (icmp == 0) {  // echo reply: the id's worker
      owner = static_cast<std::uint16_t>(wire::load16(l4 + 4) % config_.workers);
    } else if (icmp == 3 || icmp == 11 || icmp == 12 || icmp == 4) {
      // An error quoting one of our datagrams (IP header + 8 bytes): we sent it, so its source
      // port is ours and its destination the remote's.
      const std::byte* inner = l4 + 8;
      if (f.size() >= static_cast<std::size_t>(inner - f.data()) + 20) {
        const std::size_t inner_ihl = (wire::load8(inner) & 0x0fU) * 4U;
        const std::uint8_t inner_proto = wire::load8(inner + 9);
        if (inner_ihl >= 20 &&
            f.size() >= static_cast<std::size_t>(inner - f.data()) + inner_ihl + 4 &&
            (inner_proto == proto_tcp || inner_proto == proto_udp)) {
          const wire::ipv4_address remote{wire::load32(inner + 16)};
          const std::uint16_t local_port = wire::load16(inner + inner_ihl);
          const std::uint16_t remote_port = wire::load16(inner + inner_ihl + 2);
          owner = flow_owner(inner_proto, remote, remote_port, local_port);
          v.hashed = true;
        }
      }
    }
  }
  if (owner != self) {
    v.to = frame_verdict::kind::owner;
    v.worker = owner;
  }
  return v;
}

std::uint16_t flow_steering::datagram_owner(const packet& d, std::uint16_t self) const noexcept {
  if (config_.workers == 1) {
    return self;
  }
  std::array<std::byte, 64> head{};
  const std::size_t n = d.copy_out(0, head);
  if (n < 20) {
    return self;
  }
  const std::size_t ihl = (wire::load8(head.data()) & 0x0fU) * 4U;
  const std::uint8_t protocol = wire::load8(head.data() + 9);
  if (ihl < 20 || n < ihl + 4 || (protocol != proto_tcp && protocol != proto_udp)) {
    return self;
  }
  const wire::ipv4_address src{wire::load32(head.data() + 12)};
  return flow_owner(protocol, src, wire::load16(head.data() + ihl),
                    wire::load16(head.data() + ihl + 2));
}

// Hardware steering when the device hashes TCP and UDP 4-tuples and takes our key and table;
// else software steering with the same (symmetric) key.
steering_config steering_for(device& dev, std::uint16_t n, bool force_software,
                             wire::ipv4_address address) {
  steering_config sc;
  sc.workers = n;
  sc.address = address;
  const rss_capabilities caps = dev.info().rss;
  constexpr std::uint32_t need = rss_hash::tcp_ipv4 | rss_hash::udp_ipv4;
  if (n > 1 && !force_software && (caps.hash_types & need) == need && caps.key_size >= 16 &&
      caps.reta_size != 0) {
    rss_config rc;
    rc.hash_types = caps.hash_types & (need | rss_hash::ipv4);
    rc.key.resize(caps.key_size);
    for (std::size_t i = 0; i < rc.key.size(); ++i) {
      rc.key[i] = default_rss_key[i % default_rss_key.size()];
    }
    rc.reta.resize(caps.reta_size);
    for (std::size_t i = 0; i < rc.reta.size(); ++i) {
      rc.reta[i] = static_cast<std::uint16_t>(i % n);
    }
    if (!dev.configure_rss(rc)) {
      const rss_config now = dev.rss();
      sc.mode = steering_mode::hardware;
      sc.key = now.key;
      sc.reta = now.reta;  // queue k is worker k
      return sc;
    }
  }
  sc.mode = steering_mode::software;
  sc.symmetric = true;
  sc.key.assign(default_rss_key.begin(), default_rss_key.end());
  sc.reta.resize(128);
  for (std::size_t i = 0; i < sc.reta.size(); ++i) {
    sc.reta[i] = static_cast<std::uint16_t>(i % n);
  }
  return sc;
}

}  // namespace dpdk_net
