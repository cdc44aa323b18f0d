// Replay: reading the capture into flows and frames to replay (replay.hpp).
#include <algorithm>
#include <cstring>
#include <string>
#include <tuple>

#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"
#include "replay_state.hpp"

namespace dpdk_net::replay {

namespace {

using flow_key = std::tuple<std::uint8_t, std::uint32_t, std::uint16_t, std::uint16_t>;

/// A TCP segment T sent in the recording (its stream is built once the ISNs are known).
struct recorded_segment {
  std::size_t flow = 0;
  std::uint32_t seq = 0;
  std::uint8_t flags = 0;
  std::span<const std::byte> payload;
};

std::string where(std::size_t index) {
  return "record " + std::to_string(index + 1);
}

/// Finds the target automatically: the first SYN's destination (client role) or source (server
/// role); without a SYN, the first IPv4 frame's.
std::optional<wire::ipv4_address> auto_target(const std::vector<wire::decoded_frame>& frames,
                                              play_role play) {
  for (const auto& d : frames) {
    if (d.ipv4 && d.tcp && d.tcp->has(wire::tcp_flag::syn) && !d.tcp->has(wire::tcp_flag::ack)) {
      return play == play_role::client ? d.ipv4->dst : d.ipv4->src;
    }
  }
  for (const auto& d : frames) {
    if (d.ipv4) {
      return play == play_role::client ? d.ipv4->dst : d.ipv4->src;
    }
  }
  return std::nullopt;
}

}  // namespace

bool load_records(engine::state& s, std::span<const capture_record> records, std::string& error) {
  std::vector<wire::decoded_frame> frames(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    const capture_record& r = records[i];
    if (r.linktype != pcap_linktype_ethernet) {
      error = where(i) + ": link type " + std::to_string(r.linktype) +
              " is not Ethernet (1): only Ethernet captures can be replayed";
      return false;
    }
    frames[i] = wire::decode_frame(r.data, wire::decode_options{.verify_checksums = false});
    const wire::decoded_frame& d = frames[i];
    if (d.error == wire::wire_error::eth_llc_frame || d.error == wire::wire_error::ok) {
      continue;
    }
    if (r.data.size() < r.original_length) {
      error = where(i) + ": truncated by the capture's snap length (" +
              std::to_string(r.data.size()) + " of " + std::to_string(r.original_length) +
              " bytes kept): the frame cannot be replayed";
    } else {
      error = where(i) + ": malformed frame (" + wire::to_string(d.error) + ")";
    }
    return false;
  }
  const auto target = s.config.target ? s.config.target : auto_target(frames, s.config.play);
  if (!target) {
    error = "no IPv4 frame in the capture: nothing to replay";
    return false;
  }
  s.target = *target;
  s.report.target = *target;
  s.report.records = records.size();
  const time_ns first_time = records.empty() ? 0 : records[0].timestamp_ns;
  std::map<flow_key, std::size_t> by_key;
  std::vector<recorded_segment> from_target;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const wire::decoded_frame& d = frames[i];
    if (!d.ipv4 || d.fragment || (d.ipv4->src != s.target && d.ipv4->dst != s.target) ||
        d.ipv4->src == d.ipv4->dst) {
      ++s.report.frames_skipped;
      continue;
    }
    const bool to_target = d.ipv4->dst == s.target;
    const wire::ipv4_address peer = to_target ? d.ipv4->src : d.ipv4->dst;
    std::uint16_t peer_port = 0;
    std::uint16_t target_port = 0;
    if (d.tcp) {
      peer_port = to_target ? d.tcp->src_port : d.tcp->dst_port;
      target_port = to_target ? d.tcp->dst_port : d.tcp->src_port;
    } else if (d.udp) {
      peer_port = to_target ? d.udp->src_port : d.udp->dst_port;
      target_port = to_target ? d.udp->dst_port : d.udp->src_port;
    } else if (d.icmp && (d.icmp->type == wire::icmp_type::echo_request ||
                          d.icmp->type == wire::icmp_type::echo_reply)) {
      peer_port = d.icmp->identifier();
    } else {
      ++s.report.frames_skipped;
      continue;
    }
    const flow_key key{d.ipv4->protocol, peer.value, peer_port, target_port};
    auto it = by_key.find(key);
    const bool our_syn = to_target && d.tcp && d.tcp->has(wire::tcp_flag::syn);
    // T's own SYN (no ACK): in the server role it comes first on a reused 4-tuple.
    const bool their_syn =
        !to_target && d.tcp && d.tcp->has(wire::tcp_flag::syn) && !d.tcp->has(wire::tcp_flag::ack);
    if (it != by_key.end() && (our_syn || their_syn)) {
      const replay_flow& old = s.flows[it->second];
      const auto& old_isn = our_syn ? old.rec_isn_ours : old.rec_isn_live;
      if (old_isn && *old_isn != d.tcp->seq) {
        it = by_key.end();  // the 4-tuple reused by a new connection
      }
    }
    if (it == by_key.end()) {
      replay_flow f;
      f.protocol = d.ipv4->protocol;
      f.peer_rec = peer;
      f.target_rec = s.target;
      f.peer_port_rec = peer_port;
      f.target_port_rec = target_port;
      const auto p = std::find(s.peers.begin(), s.peers.end(), peer);
      f.peer_index = static_cast<std::size_t>(p - s.peers.begin());
      if (p == s.peers.end()) {
        s.peers.push_back(peer);
      }
      if (f.protocol == wire::ip_protocol::icmp) {
        f.peer_port_live = peer_port;
        if (s.config.play == play_role::server) {
          f.skip_reason =
              "ICMP echo is not replayed in the server role (the live client's echo identifier "
              "and sequence are its own)";
        }
      } else {
        f.peer_port_live = static_cast<std::uint16_t>(peer_port + s.config.peer_port_offset);
        f.target_port_live = s.live_port(target_port);
        // Server role: the live client's port is its own, learned from its SYN or first
        // datagram (unless --port-map pins it).
        f.target_port_known =
            s.config.play == play_role::client || s.config.port_map.contains(target_port);
      }
      f.our_isn = isn_for(s.config.seed, s.flows.size());
      s.flows.push_back(std::move(f));
      it = by_key.insert_or_assign(key, s.flows.size() - 1).first;
    }
    const std::size_t fi = it->second;
    replay_flow& f = s.flows[fi];
    if (!to_target) {
      ++f.frames_expected;
      ++s.report.frames_expected;
      if (d.tcp) {
        if (d.tcp->has(wire::tcp_flag::syn) && !f.rec_isn_live) {
          f.rec_isn_live = d.tcp->seq;
        }
        from_target.push_back({fi, d.tcp->seq, d.tcp->flags, d.payload});
      }
      continue;
    }
    if (d.tcp) {
      if (our_syn && !f.rec_isn_ours) {
        f.rec_isn_ours = d.tcp->seq;
      }
      if (d.tcp->options.timestamps && !f.rec_first_tsval) {
        f.rec_first_tsval = d.tcp->options.timestamps->value;
      }
    }
    replay_item item;
    item.index = i;
    item.recorded_at = records[i].timestamp_ns - std::min(first_time, records[i].timestamp_ns);
    const std::size_t l4_offset = d.eth.length() + d.ipv4->header_length;
    item.l4.assign(records[i].data.begin() + static_cast<std::ptrdiff_t>(l4_offset),
                   records[i].data.begin() +
                       static_cast<std::ptrdiff_t>(l4_offset + d.ipv4->payload_length()));
    item.tos = d.ipv4->tos;
    item.ttl = d.ipv4->ttl;
    item.ip_id = d.ipv4->id;
    item.dont_fragment = d.ipv4->dont_fragment;
    item.flow = fi;
    f.items.push_back(s.items.size());
    s.items.push_back(std::move(item));
    ++s.report.frames_to_replay;
  }
  // TCP: the ISNs are known now; the wait rule's bytes and T's recorded stream follow from them.
  for (replay_flow& f : s.flows) {
    if (f.protocol != wire::ip_protocol::tcp) {
      continue;
    }
    if (!f.rec_isn_ours) {
      f.skip_reason = "the capture has no SYN from the replayed side (it starts mid-flow)";
      continue;
    }
    for (const std::size_t ii : f.items) {
      replay_item& item = s.items[ii];
      const auto flags = std::to_integer<std::uint8_t>(item.l4[13]);
      if ((flags & wire::tcp_flag::ack) == 0) {
        continue;
      }
      const std::uint32_t ack = wire::load32(item.l4.data() + 8);
      if (!f.rec_isn_live) {
        f.rec_isn_live = ack - 1;  // T's SYN was not captured: assume this acknowledges it
      }
      item.waits = true;
      item.ack_rel = static_cast<std::uint32_t>(ack - *f.rec_isn_live);
    }
  }
  for (const recorded_segment& seg : from_target) {
    replay_flow& f = s.flows[seg.flow];
    if (!f.skip_reason.empty()) {
      continue;
    }
    if ((seg.flags & wire::tcp_flag::rst) != 0) {
      f.rec_rst = true;  // also a refusal (RST|ACK to our SYN), before T's ISN is known
      continue;
    }
    if (!f.rec_isn_live) {
      continue;
    }
    const std::uint32_t rel = seg.seq - *f.rec_isn_live;
    if (rel >= 0x80000000U) {
      continue;  // before T's ISN (a stale segment, or a reused 4-tuple): not part of the stream
    }
    const bool syn = (seg.flags & wire::tcp_flag::syn) != 0;
    const bool fin = (seg.flags & wire::tcp_flag::fin) != 0;
    const std::uint64_t data_at = std::uint64_t{rel} + (syn ? 1 : 0);
    if (data_at >= 1 && !seg.payload.empty()) {
      // Bounded like the live stream: a bogus sequence number must not allocate gigabytes.
      f.rec_stream.put(data_at - 1, seg.payload, s.config.max_live_bytes);
    }
    f.rec_fin = f.rec_fin || fin;
    f.rec_end_rel = std::max(f.rec_end_rel, data_at + seg.payload.size() + (fin ? 1 : 0));
  }
  if (s.items.empty()) {
    error =
        "nothing to replay: no frame in the capture is sent to the target " + s.target.to_string();
    return false;
  }
  const auto replayable = [](const replay_flow& f) {
    return f.skip_reason.empty() && !f.items.empty();
  };
  if (std::none_of(s.flows.begin(), s.flows.end(), replayable)) {
    error = "nothing to replay: every flow to " + s.target.to_string() + " is skipped";
    for (const replay_flow& f : s.flows) {
      if (!f.skip_reason.empty()) {
        error += "; " + s.flow_name(f, false) + ": " + f.skip_reason;
        break;  // one reason is enough to say why; the report lists them all
      }
    }
    return false;
  }
  return true;
}

}  // namespace dpdk_net::replay
