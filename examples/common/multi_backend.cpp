#include "multi_backend.hpp"

#include <cstdio>

#include "http_app.hpp"

namespace dpdk_net::examples {

sim::nic_config sim_server_nic(std::uint16_t workers) noexcept {
  sim::nic_config c;
  c.queues = workers;
  return c;
}

sim_server::sim_server(sim::host& h, sim::sim_nic& nic, stack::stack_config config,
                       std::uint16_t workers) {
  if (workers <= 1) {
    one_.emplace(h, nic, std::move(config));
    return;
  }
  sim::sim_multi_options o;
  o.workers = workers;
  o.announce = false;  // as the one-worker host: no gratuitous ARP at start
  multi_.emplace(h, nic, std::move(config), o);
}

std::vector<worker_stats> sim_server::stats() const {
  std::vector<worker_stats> out(size());
  for (std::size_t i = 0; multi_ && i < out.size(); ++i) {
    out[i].steering = multi_->counters(i);
    out[i].queue = static_cast<std::uint16_t>(i);
  }
  return out;
}

std::string stacks_counters_json(std::span<stack::stack* const> stacks) {
  stack::stack_counters s{};
  stack::tcp_counters t{};
  std::uint64_t connections = 0;
  for (stack::stack* ip : stacks) {
    add_counters(s, ip->counters());
    add_counters(t, ip->tcp().counters());
    connections += ip->tcp().connections();
  }
  std::uint64_t malformed = 0;
  for (const std::uint64_t m : s.malformed) {
    malformed += m;
  }
  char buf[1024];
  std::snprintf(
      buf, sizeof buf,
      "\"stack\":{\"frames_in\":%llu,\"ip_in\":%llu,\"frames_out\":%llu,"
      "\"tx_queue_full\":%llu,\"no_buffer\":%llu,\"malformed\":%llu},"
      "\"tcp_losses\":{\"rto_expirations\":%llu,\"fast_retransmits\":%llu,"
      "\"out_of_order\":%llu,\"out_of_order_dropped\":%llu,\"no_buffer\":%llu,"
      "\"bad_segments\":%llu,\"listen_overflow\":%llu},"
      "\"tcp\":{\"segments_in\":%llu,\"segments_out\":%llu,\"retransmits\":%llu,"
      "\"passive_opens\":%llu,\"active_opens\":%llu,\"established\":%llu,"
      "\"resets_sent\":%llu,\"resets_received\":%llu,\"connections\":%llu}",
      static_cast<unsigned long long>(s.frames_in), static_cast<unsigned long long>(s.ip_in),
      static_cast<unsigned long long>(s.frames_out),
      static_cast<unsigned long long>(s.tx_queue_full),
      static_cast<unsigned long long>(s.no_buffer), static_cast<unsigned long long>(malformed),
      static_cast<unsigned long long>(t.rto_expirations),
      static_cast<unsigned long long>(t.fast_retransmits),
      static_cast<unsigned long long>(t.out_of_order),
      static_cast<unsigned long long>(t.out_of_order_dropped),
      static_cast<unsigned long long>(t.no_buffer), static_cast<unsigned long long>(t.bad_segments),
      static_cast<unsigned long long>(t.listen_overflow),
      static_cast<unsigned long long>(t.segments_in),
      static_cast<unsigned long long>(t.segments_out),
      static_cast<unsigned long long>(t.retransmits),
      static_cast<unsigned long long>(t.passive_opens),
      static_cast<unsigned long long>(t.active_opens),
      static_cast<unsigned long long>(t.established),
      static_cast<unsigned long long>(t.resets_sent),
      static_cast<unsigned long long>(t.resets_received),
      static_cast<unsigned long long>(connections));
  return buf;
}

namespace http {
namespace {

std::string workers_json(steering_mode mode, const std::vector<worker_stats>& s,
                         const std::vector<std::vector<unsigned>>& affinity) {
  std::string out = steering_json(mode, s) + ",\"workers\":[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    out += i == 0 ? "{" : ",{";
    out += worker_json(i, s[i], i < affinity.size() ? affinity[i] : std::vector<unsigned>{});
    out += ',';
    out += worker_counters_json(i);
    out += '}';
  }
  out += ']';
  return out;
}

}  // namespace

std::string tap_workers_stats_json(void* context) {
  const auto& c = *static_cast<tap_workers_stats*>(context);
  std::string out = workers_json(c.rt->steering(), c.rt->stats(), c.rt->worker_affinity());
  if (c.stopped) {
    std::vector<stack::stack*> stacks;
    for (std::size_t i = 0; i < c.rt->size(); ++i) {
      stacks.push_back(&c.rt->worker(i).ip());
    }
    out += ',' + stacks_counters_json(stacks);
  }
  return out;
}

std::string sim_workers_stats_json(void* context) {
  auto& server = *static_cast<sim_server*>(context);
  std::vector<stack::stack*> stacks;
  for (std::size_t i = 0; i < server.size(); ++i) {
    stacks.push_back(&server.worker(i).ip());
  }
  return workers_json(server.steering(), server.stats(), {}) + ',' + stacks_counters_json(stacks);
}

}  // namespace http
}  // namespace dpdk_net::examples
