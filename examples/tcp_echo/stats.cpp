#include "stats.hpp"

#include <cstdio>

namespace tcp_echo {
namespace {

class json_object {
 public:
  json_object& field(const char* name, std::uint64_t v) { return raw(name, std::to_string(v)); }
  json_object& raw(const char* name, const std::string& value) {
    text_ += (text_.empty() ? "{" : ", ") + std::string("\"") + name + "\": " + value;
    return *this;
  }
  [[nodiscard]] std::string str() const { return text_.empty() ? "{}" : text_ + "}"; }

 private:
  std::string text_;
};

std::string tcp_json(const dpdk_net::stack::tcp_counters& t) {
  json_object o;
  o.field("segments_in", t.segments_in)
      .field("segments_out", t.segments_out)
      .field("retransmits", t.retransmits)
      .field("demux_lookups", t.demux_lookups)
      .field("active_opens", t.active_opens)
      .field("passive_opens", t.passive_opens)
      .field("established", t.established)
      .field("connect_failed", t.connect_failed)
      .field("resets_sent", t.resets_sent)
      .field("resets_received", t.resets_received)
      .field("no_socket", t.no_socket)
      .field("listen_overflow", t.listen_overflow)
      .field("sockets_exhausted", t.sockets_exhausted)
      .field("bad_segments", t.bad_segments)
      .field("not_acceptable", t.not_acceptable)
      .field("paws_rejected", t.paws_rejected)
      .field("ack_too_new", t.ack_too_new)
      .field("duplicate_acks", t.duplicate_acks)
      .field("fast_retransmits", t.fast_retransmits)
      .field("rto_expirations", t.rto_expirations)
      .field("recovery_partial_acks", t.recovery_partial_acks)
      .field("spurious_rtx_data", t.spurious_rtx_data)
      .field("out_of_order", t.out_of_order)
      .field("out_of_order_dropped", t.out_of_order_dropped)
      .field("window_probes", t.window_probes)
      .field("keepalives_sent", t.keepalives_sent)
      .field("delayed_acks", t.delayed_acks)
      .field("window_updates", t.window_updates)
      .field("timeouts", t.timeouts)
      .field("keepalive_timeouts", t.keepalive_timeouts)
      .field("time_wait_entered", t.time_wait_entered)
      .field("time_wait_reused", t.time_wait_reused)
      .field("time_wait_evicted", t.time_wait_evicted)
      .field("icmp_accepted", t.icmp_accepted)
      .field("icmp_ignored", t.icmp_ignored)
      .field("waiting_for_arp", t.waiting_for_arp)
      .field("no_buffer", t.no_buffer)
      .field("urgent_ignored", t.urgent_ignored)
      .field("bytes_in", t.bytes_in)
      .field("bytes_out", t.bytes_out)
      .field("syn_queue_overflow", t.syn_queue_overflow)
      .field("accept_queue_overflow", t.accept_queue_overflow)
      .field("syn_cookies_sent", t.syn_cookies_sent)
      .field("syn_cookies_accepted", t.syn_cookies_accepted)
      .field("syn_cookies_rejected", t.syn_cookies_rejected)
      .field("challenge_acks_sent", t.challenge_acks_sent)
      .field("challenge_acks_limited", t.challenge_acks_limited);
  return o.str();
}

std::string link_json(const dpdk_net::sim::link_counters& l) {
  json_object o;
  o.field("offered", l.offered)
      .field("delivered", l.delivered)
      .field("duplicated", l.duplicated)
      .field("reordered", l.reordered)
      .field("dropped_loss", l.dropped_loss);
  return o.str();
}

}  // namespace

std::string stats_json(const run_stats& s) {
  const auto& c = s.stack;
  json_object o;
  o.field("frames_in", c.frames_in)
      .field("frames_out", c.frames_out)
      .field("icmp_echo_replies", c.icmp_echo_replies)
      .field("icmp_errors_sent", c.icmp_errors_sent)
      .field("ip_not_for_us", c.ip_not_for_us)
      .field("ip_martian_source", c.ip_martian_source)
      .field("ip_fragments_dropped", c.ip_fragments_dropped)
      .field("reassembled", c.reassembly.reassembled)
      .field("fragments_sent", c.ip_fragments_sent)
      .field("arp_replies_sent", c.arp.replies_sent)
      .raw("arp", json_object()
                      .field("requests_sent", c.arp.requests_sent)
                      .field("replies_received", c.arp.replies_received)
                      .field("resolution_failed", c.arp.resolution_failed)
                      .field("pending_dropped", c.arp.pending_dropped)
                      .field("table_full", c.arp.table_full)
                      .field("rate_limited", c.arp.rate_limited)
                      .field("evicted", c.arp.evicted)
                      .str())
      .field("tx_queue_full", c.tx_queue_full)
      .field("no_buffer", c.no_buffer);
  std::uint64_t malformed = 0;
  json_object by_reason;
  for (std::size_t i = 1; i < c.malformed.size(); ++i) {
    if (c.malformed[i] != 0) {
      malformed += c.malformed[i];
      by_reason.field(dpdk_net::wire::to_string(static_cast<dpdk_net::wire::wire_error>(i)),
                      c.malformed[i]);
    }
  }
  o.field("malformed", malformed).raw("malformed_by_reason", by_reason.str());
  o.raw("tcp", tcp_json(s.tcp));
  o.field("tcp_connections", s.connections)
      .field("tcp_connections_peak", s.connections_peak)
      .field("tcp_time_wait", s.time_wait);
  json_object app;
  app.field("accepted", s.app.accepted)
      .field("completed", s.app.completed)
      .field("failed", s.app.failed)
      .field("bytes_echoed", s.app.bytes_echoed)
      .field("streams_intact", s.app.streams_intact)
      .field("bytes_verified", s.app.bytes_verified);
  o.raw("app", app.str());
  json_object dev;
  dev.field("rx_packets", s.device.rx_packets)
      .field("rx_dropped", s.device.rx_dropped)
      .field("tx_packets", s.device.tx_packets)
      .field("tx_dropped", s.device.tx_dropped)
      .field("tx_busy", s.device.tx_busy);
  o.raw("device", dev.str());
  if (!s.workers.empty()) {
    o.raw("workers", s.workers);
  }
  if (s.fault_rx != nullptr && s.fault_tx != nullptr) {
    o.raw("faults",
          "{\"rx\": " + link_json(*s.fault_rx) + ", \"tx\": " + link_json(*s.fault_tx) + "}");
  }
  return o.str();
}

bool write_stats(const run_stats& s, const std::string& path) {
  const std::string line = stats_json(s) + "\n";
  if (path.empty()) {
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
    return true;
  }
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    return false;
  }
  const bool ok = std::fputs(line.c_str(), f) >= 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace tcp_echo
