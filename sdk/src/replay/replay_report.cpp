// Replay: the per-flow comparison, the divergence lines, the summary and the JSON (replay.hpp).
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string>

#include "dpdk_net/wire/ipv4.hpp"
#include "replay_state.hpp"

namespace dpdk_net::replay {

namespace {

const char* protocol_name(std::uint8_t p) {
  switch (p) {
    case wire::ip_protocol::tcp:
      return "tcp";
    case wire::ip_protocol::udp:
      return "udp";
    default:
      return "icmp";
  }
}

std::string endpoint(wire::ipv4_address a, std::uint16_t port, bool with_port) {
  return with_port ? a.to_string() + ":" + std::to_string(port) : a.to_string();
}

void json_string(std::string& out, const std::string& v) {
  out += '"';
  for (const char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

void member(std::string& out, const char* name, std::uint64_t v) {
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(v);
  out += ',';
}

void member(std::string& out, const char* name, bool v) {
  out += '"';
  out += name;
  out += "\":";
  out += v ? "true" : "false";
  out += ',';
}

void member(std::string& out, const char* name, const std::string& v) {
  out += '"';
  out += name;
  out += "\":";
  json_string(out, v);
  out += ',';
}

/// First stream offset where recorded and live differ (a byte, or one ends), if any.
std::optional<std::uint64_t> first_difference(const stream_bytes& rec, const stream_bytes& live) {
  const std::size_t common = std::min(rec.data.size(), live.data.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (rec.known[i] && live.known[i] && rec.data[i] != live.data[i]) {
      return i;
    }
  }
  if (rec.data.size() != live.data.size()) {
    return common;
  }
  return std::nullopt;
}

}  // namespace

bool stream_bytes::put(std::uint64_t offset, std::span<const std::byte> bytes,
                       std::uint64_t limit) {
  if (offset >= limit) {
    return false;
  }
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), limit - offset));
  const std::size_t end = static_cast<std::size_t>(offset) + n;
  if (data.size() < end) {
    data.resize(end);
    known.resize(end, false);
  }
  bool all_known = n != 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = static_cast<std::size_t>(offset) + i;
    all_known = all_known && known[at];
    data[at] = bytes[i];
    known[at] = true;
  }
  return all_known;
}

std::uint64_t stream_bytes::contiguous() const noexcept {
  const auto it = std::find(known.begin(), known.end(), false);
  return static_cast<std::uint64_t>(it - known.begin());
}

bool replay_flow::responses_complete() const noexcept {
  if (protocol == wire::ip_protocol::tcp) {
    return rec_end_rel == 0 || live_sent_rel >= rec_end_rel;
  }
  return frames_received >= frames_expected;
}

bool flow_report::diverged() const noexcept {
  return first_difference.has_value() || recorded_rst != live_rst ||
         (recorded_fin && !live_fin && !aborted) || missing_responses != 0 ||
         (protocol != "tcp" && frames_received != frames_expected);
}

std::string engine::state::flow_name(const replay_flow& f, bool live) const {
  const bool ports = f.protocol != wire::ip_protocol::icmp;
  std::string name;
  if (live) {
    name = endpoint(peer_address(f.peer_index), f.peer_port_live, ports) + " > " +
           endpoint(config.live_address, f.target_port_live, ports);
  } else {
    name = endpoint(f.peer_rec, f.peer_port_rec, ports) + " > " +
           endpoint(f.target_rec, f.target_port_rec, ports);
  }
  if (!ports) {
    name += " id " + std::to_string(f.peer_port_rec);
  }
  return std::string(protocol_name(f.protocol)) + " " + name;
}

void build_report(const engine::state& s, replay_report& out) {
  out.divergences = s.divergences;
  out.flows.clear();
  for (const replay_flow& f : s.flows) {
    flow_report r;
    r.name = s.flow_name(f, true);
    r.recorded_name = s.flow_name(f, false);
    r.protocol = protocol_name(f.protocol);
    r.frames_sent = f.frames_sent;
    r.frames_received = f.frames_received;
    r.frames_expected = f.frames_expected;
    r.skipped = !f.skip_reason.empty();
    r.skip_reason = f.skip_reason;
    r.aborted = f.aborted;
    r.missing_responses = f.missing_responses;
    if (f.protocol == wire::ip_protocol::tcp && !r.skipped) {
      r.recorded_bytes = f.rec_stream.data.size();
      r.live_bytes = f.live_stream.data.size();
      r.first_difference = first_difference(f.rec_stream, f.live_stream);
      r.recorded_fin = f.rec_fin;
      r.live_fin = f.live_fin;
      r.recorded_rst = f.rec_rst;
      r.live_rst = f.live_rst;
      r.retransmissions = f.retransmissions;
      r.our_isn = f.our_isn;
      r.live_isn = f.live_isn.value_or(0);
      const std::string& n = r.name;
      if (!f.target_port_known) {
        // Server role, never connected: one line says it (the stream comparisons would only
        // repeat it).
        out.divergences.push_back("flow " + r.recorded_name +
                                  ": no live client connected for it (server role)");
      } else {
        if (r.first_difference) {
          out.divergences.push_back("flow " + n +
                                    ": the live stream differs from the recording at offset " +
                                    std::to_string(*r.first_difference) + " (recorded " +
                                    std::to_string(r.recorded_bytes) + " bytes, live " +
                                    std::to_string(r.live_bytes) + ")");
        }
        if (r.live_rst && !r.recorded_rst) {
          out.divergences.push_back("flow " + n + ": the live stack reset the connection");
        } else if (r.recorded_rst && !r.live_rst) {
          out.divergences.push_back("flow " + n + ": the recorded reset was not sent");
        }
        if (r.recorded_fin && !r.live_fin && !r.aborted && !r.live_rst) {
          out.divergences.push_back("flow " + n + ": no FIN from the live stack");
        }
      }
    } else if (!r.skipped && r.frames_received != r.frames_expected) {
      out.divergences.push_back("flow " + r.name + ": " + std::to_string(r.frames_received) +
                                " responses, recorded " + std::to_string(r.frames_expected));
    }
    out.flows.push_back(std::move(r));
  }
}

std::string replay_report::summary() const {
  const auto skipped =
      std::count_if(flows.begin(), flows.end(), [](const flow_report& f) { return f.skipped; });
  return "replay: target " + target.to_string() + ", " + std::to_string(flows.size()) + " flows (" +
         std::to_string(skipped) + " skipped), " + std::to_string(frames_sent) + " frames sent, " +
         std::to_string(frames_received) + " received, " + std::to_string(divergences.size()) +
         " divergences";
}

std::string replay_report::json() const {
  std::string out = "{";
  member(out, "target", target.to_string());
  member(out, "records", records);
  member(out, "frames_to_replay", frames_to_replay);
  member(out, "frames_expected", frames_expected);
  member(out, "frames_skipped", frames_skipped);
  member(out, "frames_sent", frames_sent);
  member(out, "frames_received", frames_received);
  member(out, "frames_unexpected", frames_unexpected);
  member(out, "arp_requests_answered", arp_requests_answered);
  member(out, "live_mac_learned", live_mac_learned);
  member(out, "started_at_ns", started_at);
  member(out, "finished_at_ns", finished_at);
  out += "\"divergences\":[";
  for (std::size_t i = 0; i < divergences.size(); ++i) {
    if (i != 0) {
      out += ',';
    }
    json_string(out, divergences[i]);
  }
  out += "],\"flows\":[";
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const flow_report& f = flows[i];
    out += i != 0 ? ",{" : "{";
    member(out, "name", f.name);
    member(out, "recorded", f.recorded_name);
    member(out, "protocol", f.protocol);
    member(out, "frames_sent", f.frames_sent);
    member(out, "frames_received", f.frames_received);
    member(out, "frames_expected", f.frames_expected);
    member(out, "recorded_bytes", f.recorded_bytes);
    member(out, "live_bytes", f.live_bytes);
    out += "\"first_difference\":";
    out += f.first_difference ? std::to_string(*f.first_difference) : "null";
    out += ',';
    member(out, "recorded_fin", f.recorded_fin);
    member(out, "live_fin", f.live_fin);
    member(out, "recorded_rst", f.recorded_rst);
    member(out, "live_rst", f.live_rst);
    member(out, "retransmissions", f.retransmissions);
    member(out, "missing_responses", f.missing_responses);
    member(out, "aborted", f.aborted);
    member(out, "skipped", f.skipped);
    member(out, "skip_reason", f.skip_reason);
    member(out, "our_isn", std::uint64_t{f.our_isn});
    member(out, "live_isn", std::uint64_t{f.live_isn});
    member(out, "diverged", f.diverged());
    out.back() = '}';
  }
  out += "],";
  member(out, "diverged", diverged());
  out.back() = '}';
  return out;
}

bool parse_port_map(const std::string& text, std::uint16_t& from, std::uint16_t& to) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    return false;
  }
  const auto number = [](std::string_view t, std::uint16_t& v) {
    unsigned long n = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (ec != std::errc{} || p != t.data() + t.size() || n == 0 || n > 65535) {
      return false;
    }
    v = static_cast<std::uint16_t>(n);
    return true;
  };
  const std::string_view t(text);
  return number(t.substr(0, colon), from) && number(t.substr(colon + 1), to);
}

}  // namespace dpdk_net::replay
