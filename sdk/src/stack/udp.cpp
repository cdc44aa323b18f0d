// UDP (RFC 768): sockets with O(1) port demultiplexing, zero-copy delivery in the frames the
// datagrams arrived in, and sending through the stack's IP output (fragmented when needed).
#include <algorithm>

#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/checksum.hpp"
#include "dpdk_net/wire/icmp.hpp"
#include "dpdk_net/wire/ipv4.hpp"
#include "dpdk_net/wire/udp.hpp"

namespace dpdk_net::stack {

// --- input ----------------------------------------------------------------------------------

void stack::receive_udp(packet frame, std::size_t l4_offset, std::span<const std::byte> datagram,
                        wire::ipv4_address src, wire::ipv4_address dst, bool link_broadcast,
                        time_ns now, std::span<const std::byte> ip_and_payload) {
  const bool vouched = frame.meta().l4_checksum == checksum_status::good;
  const wire::pseudo_header ph{src, dst};
  const auto udp = wire::parse_udp(datagram, vouched ? nullptr : &ph);
  if (!udp) {
    malformed(udp.error);
    return;
  }
  ++counters_.udp_in;
  // No socket: the frame stays ours, so the port unreachable can quote it.
  (void)dst;  // a broadcast destination is refused by send_icmp_error, from the quote
  if (!enqueue_datagram(udp.header.dst_port, frame, l4_offset + wire::udp_header_length,
                        udp.payload.size(), src, udp.header.src_port)) {
    send_icmp_error(wire::icmp_type::destination_unreachable, wire::icmp_unreachable::port,
                    ip_and_payload, link_broadcast, now);
  }
}

bool stack::enqueue_datagram(std::uint16_t port, packet& frame, std::size_t offset,
                             std::size_t length, wire::ipv4_address src,
                             std::uint16_t src_port) noexcept {
  const std::int32_t s = port_to_socket_[port];
  if (s < 0) {
    ++counters_.udp_no_port;
    return false;
  }
  udp_socket& sock = sockets_[static_cast<std::size_t>(s)];
  if (sock.count == sock.queue.size()) {
    ++counters_.udp_queue_full;
    return true;
  }
  udp_datagram& slot = sock.queue[(sock.head + sock.count) % sock.queue.size()];
  slot.offset = offset;
  slot.length = length;
  slot.source = src;
  slot.source_port = src_port;
  slot.frame = std::move(frame);
  ++sock.count;
  ++counters_.udp_delivered;
  sock.events |= socket_events::readable;
  if (!udp_events_.contains(static_cast<std::uint32_t>(s))) {
    udp_events_.push_back(static_cast<std::uint32_t>(s));
  }
  return true;
}

void stack::deliver_udp_chain(packet d, time_ns now) {
  (void)now;
  const std::byte* ip = d.front().data();
  const wire::ipv4_address src{wire::load32(ip + 12)};
  const wire::ipv4_address dst{wire::load32(ip + 16)};
  const std::size_t l4_len = d.length() - 20;
  std::array<std::byte, 8> hdr{};
  if (l4_len < 8 || d.copy_out(20, hdr) != 8) {
    malformed(wire::wire_error::truncated);
    return;
  }
  const std::uint16_t ulen = wire::load16(hdr.data() + 4);
  if (ulen < 8 || ulen > l4_len) {
    malformed(ulen < 8 ? wire::wire_error::udp_bad_length
                       : wire::wire_error::udp_length_exceeds_ip);
    return;
  }
  if (wire::load16(hdr.data() + 6) != 0) {
    wire::checksum_accumulator acc;
    wire::add_pseudo_header(acc, src, dst, wire::ip_protocol::udp, ulen);
    wire::add_packet(acc, d, 20, ulen);
    if (acc.finish() != 0) {
      malformed(wire::wire_error::udp_bad_checksum);
      return;
    }
  }
  ++counters_.udp_in;
  // (A closed port gets no ICMP error here: it would have to quote a reassembled datagram.)
  enqueue_datagram(wire::load16(hdr.data() + 2), d, 28, ulen - 8U, src, wire::load16(hdr.data()));
}

// --- UDP sockets ----------------------------------------------------------------------------

std::error_code stack::udp_bind(std::uint16_t port, socket_id& id,
                                std::optional<wire::ipv4_address> address) {
  if (address && *address != config_.address && !address->is_unspecified()) {
    return std::make_error_code(std::errc::address_not_available);
  }
  auto free_slot =
      std::find_if(sockets_.begin(), sockets_.end(), [](const udp_socket& s) { return !s.open; });
  if (free_slot == sockets_.end()) {
    return std::make_error_code(std::errc::too_many_files_open);
  }
  if (port == 0) {
    // RFC 6056 algorithm 1: a keyed-random start in the ephemeral range, then the next free.
    const std::uint32_t range = config_.ephemeral_last - config_.ephemeral_first + 1U;
    const auto start = static_cast<std::uint32_t>(siphash24(port_key_, ++port_counter_) % range);
    for (std::uint32_t i = 0; i < range && port == 0; ++i) {
      const auto candidate =
          static_cast<std::uint16_t>(config_.ephemeral_first + (start + i) % range);
      // The coordinator (several workers on one address) claims it for this one, or says no.
      if (port_to_socket_[candidate] < 0 &&
          (coordinator_ == nullptr ||
           coordinator_->acquire(port_claim::ephemeral, 17, candidate, {}, 0))) {
        port = candidate;
      }
    }
    if (port == 0) {
      return std::make_error_code(std::errc::resource_unavailable_try_again);
    }
  } else if (port_to_socket_[port] >= 0) {
    return std::make_error_code(std::errc::address_in_use);
  } else if (coordinator_ != nullptr &&
             !coordinator_->acquire(port_claim::bind, 17, port, wire::ipv4_address{}, 0)) {
    return std::make_error_code(std::errc::address_in_use);  // another worker's alone
  }
  free_slot->open = true;
  free_slot->port = port;
  free_slot->queue.resize(std::max<std::size_t>(config_.udp_queue, 1));  // at bind, not per packet
  free_slot->head = free_slot->count = 0;
  id = static_cast<socket_id>(free_slot - sockets_.begin());
  port_to_socket_[port] = static_cast<std::int32_t>(id);
  return {};
}

void stack::udp_close(socket_id id) {
  if (id >= sockets_.size() || !sockets_[id].open) {
    return;
  }
  udp_socket& s = sockets_[id];
  port_to_socket_[s.port] = -1;
  if (coordinator_ != nullptr) {
    coordinator_->release(port_claim::bind, 17, s.port);
  }
  s.open = false;
  s.events = 0;
  udp_events_.remove(static_cast<std::uint32_t>(id));
  for (udp_datagram& d : s.queue) {
    d.frame.reset();
  }
  s.count = 0;
}

std::uint16_t stack::udp_port(socket_id id) const noexcept {
  return id < sockets_.size() && sockets_[id].open ? sockets_[id].port : 0;
}

std::optional<udp_datagram> stack::udp_receive(socket_id id) {
  if (id >= sockets_.size() || !sockets_[id].open || sockets_[id].count == 0) {
    return std::nullopt;
  }
  udp_socket& s = sockets_[id];
  udp_datagram d = std::move(s.queue[s.head]);
  s.head = (s.head + 1) % s.queue.size();
  --s.count;
  return d;
}

std::error_code stack::udp_send_to(socket_id id, wire::ipv4_address dst, std::uint16_t dst_port,
                                   std::span<const std::byte> payload, time_ns now) {
  if (id >= sockets_.size() || !sockets_[id].open) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (payload.size() + wire::udp_header_length > 65535 - wire::ipv4_min_header_length) {
    ++counters_.udp_too_big;
    return std::make_error_code(std::errc::message_size);
  }
  std::array<std::byte, wire::udp_header_length> hdr{};
  wire::write_udp(hdr, wire::udp_header{sockets_[id].port, dst_port, 0, 0}, payload,
                  wire::pseudo_header{config_.address, dst});
  if (!output(wire::ip_protocol::udp, dst,
              l4_source{hdr, nullptr, 0, payload, hdr.size() + payload.size()}, now)) {
    return std::make_error_code(std::errc::network_unreachable);
  }
  ++counters_.udp_sent;
  return {};
}

}  // namespace dpdk_net::stack
