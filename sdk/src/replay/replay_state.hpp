// The replay engine's private state (replay.hpp), shared by its translation units.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "dpdk_net/replay/replay.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::replay {

/// One recorded frame to T, to be replayed.
struct replay_item {
  std::uint64_t index = 0;    // order in the capture (ties across flows go by it)
  time_ns recorded_at = 0;    // since the first record
  std::vector<std::byte> l4;  // the recorded L4 header + payload (patched on send)
  std::uint8_t tos = 0, ttl = 64;
  std::uint16_t ip_id = 0;
  bool dont_fragment = false;
  std::size_t flow = 0;
  bool waits = false;         // TCP with ACK: held until the live side sent ack_rel
  std::uint64_t ack_rel = 0;  // relative live byte acknowledged (SYN = 1)
};

/// A byte stream by relative offset, with a mask of the bytes known.
struct stream_bytes {
  std::vector<std::byte> data;
  std::vector<bool> known;
  /// Stores [offset, offset + bytes.size()) up to limit; true if every byte was known already.
  bool put(std::uint64_t offset, std::span<const std::byte> bytes, std::uint64_t limit);
  /// Bytes known contiguously from offset 0.
  [[nodiscard]] std::uint64_t contiguous() const noexcept;
};

struct replay_flow {
  std::uint8_t protocol = 0;  // wire::ip_protocol
  wire::ipv4_address peer_rec{}, target_rec{};
  std::uint16_t peer_port_rec = 0, target_port_rec = 0;  // ICMP: identifier, 0
  std::size_t peer_index = 0;
  std::uint16_t peer_port_live = 0, target_port_live = 0;
  bool target_port_known = true;  // server role: learned from the live SYN
  std::vector<std::size_t> items;
  std::size_t next = 0;
  bool started = false;  // its first frame went out
  time_ns shift = 0;     // accumulated wait delay (recorded pacing)
  // Recorded pacing: the flow's recorded time `anchor_rec` happens at live time `anchor` (the
  // replay's start, or in the server role the live client's SYN).
  time_ns anchor_rec = 0;
  std::optional<time_ns> anchor;
  // TCP, recorded
  std::optional<std::uint32_t> rec_isn_ours, rec_isn_live;
  std::optional<std::uint32_t> rec_first_tsval;
  stream_bytes rec_stream;
  std::uint64_t rec_end_rel = 0;  // highest relative end T sent (SYN, FIN count 1)
  bool rec_fin = false, rec_rst = false;
  // TCP, live
  std::uint32_t our_isn = 0;
  std::optional<std::uint32_t> live_isn;
  std::uint32_t ts_base = 0;
  bool ts_base_set = false;
  std::optional<std::uint32_t> live_tsval;
  std::uint64_t live_sent_rel = 0;  // highest relative end the live side sent
  std::uint64_t our_sent_rel = 0;   // highest relative end we sent
  stream_bytes live_stream;
  bool live_fin = false, live_rst = false;
  std::uint64_t retransmissions = 0;
  std::uint64_t missing_responses = 0;
  bool aborted = false;
  std::string skip_reason;  // non-empty: not replayed
  std::uint64_t frames_sent = 0, frames_received = 0, frames_expected = 0;
  time_ns last_activity = 0;  // any frame of the flow, either way (the settle rule)
  time_ns last_progress = 0;  // we sent, or the live side sent bytes beyond what it had (waits)

  [[nodiscard]] bool pending() const noexcept {
    return skip_reason.empty() && !aborted && !live_rst && next < items.size();
  }
  [[nodiscard]] bool responses_complete() const noexcept;
};

struct engine::state {
  replay_config config;
  std::vector<replay_item> items;
  std::vector<replay_flow> flows;
  std::vector<wire::ipv4_address> peers;  // recorded peer addresses (index: peer_index)
  wire::ipv4_address target{};
  // live side
  std::optional<mac_address> live_mac;
  bool started = false;
  time_ns first_poll = 0;
  time_ns replay_start = 0;  // when the live MAC was learned
  time_ns arp_next = 0;
  time_ns last_now = 0;
  bool arp_failed = false;
  struct arp_reply {
    mac_address to_mac{};
    wire::ipv4_address our_ip{}, to_ip{};
  };
  std::vector<arp_reply> arp_replies;    // requests for our addresses, answered at the next poll
  std::vector<std::string> divergences;  // found during the run (missing responses)
  mutable replay_report report;
  std::vector<std::byte> scratch;

  [[nodiscard]] wire::ipv4_address peer_address(std::size_t i) const noexcept {
    return wire::ipv4_address{config.address.value + static_cast<std::uint32_t>(i)};
  }
  [[nodiscard]] std::uint16_t live_port(std::uint16_t recorded) const noexcept {
    const auto it = config.port_map.find(recorded);
    return it == config.port_map.end() ? recorded : it->second;
  }
  [[nodiscard]] std::string flow_name(const replay_flow& f, bool live) const;
};

/// Loads records into s (replay_load.cpp).
bool load_records(engine::state& s, std::span<const capture_record> records, std::string& error);
/// Builds the report from the state (replay_report.cpp).
void build_report(const engine::state& s, replay_report& out);

}  // namespace dpdk_net::replay
