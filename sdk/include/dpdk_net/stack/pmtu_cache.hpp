// Path MTUs learned from ICMP frag-needed (RFC 1191), per destination, bounded and O(1).
//
// Looked up once per datagram we send, so it must not scan; filled by whoever can forge an ICMP
// error, so its index is keyed (SipHash) and a full table evicts the entry that expires first
// (all live the same time, so that is the oldest, at the front of a list) instead of refusing.
// Entries past their lifetime read as absent: the interface MTU is tried again (RFC 1191 5).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "dpdk_net/stack/detail/slot_index.hpp"
#include "dpdk_net/stack/secret.hpp"
#include "dpdk_net/time.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::stack {

class pmtu_cache {
 public:
  struct path {
    std::uint16_t mtu = 0;
    /// Clamped up to the floor: the real path is smaller than we will go, so datagrams towards
    /// it are sent without DF and routers fragment them (Linux's "locked" PMTU).
    bool locked = false;
  };

  pmtu_cache(std::size_t entries, time_ns lifetime, sip_key key);

  /// The learned path towards dst, if any and not expired.
  [[nodiscard]] std::optional<path> find(wire::ipv4_address dst, time_ns now) const noexcept;
  /// Records a smaller path MTU towards dst for `lifetime` from now.
  void learn(wire::ipv4_address dst, path p, time_ns now) noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return by_expiry_.size(); }
  [[nodiscard]] std::uint64_t evictions() const noexcept { return evictions_; }

 private:
  struct entry {
    wire::ipv4_address dst{};
    path p{};
    time_ns expires = 0;
    std::uint64_t hash = 0;
  };
  [[nodiscard]] std::uint32_t find_slot(wire::ipv4_address dst, std::uint64_t h) const noexcept;
  void remove(std::uint32_t n) noexcept;

  time_ns lifetime_;
  sip_key key_;
  std::vector<entry> entries_;
  std::vector<std::uint32_t> free_;
  detail::slot_index index_;
  detail::id_list by_expiry_;  // the same lifetime for all: insertion order is expiry order
  std::uint64_t evictions_ = 0;
};

}  // namespace dpdk_net::stack
