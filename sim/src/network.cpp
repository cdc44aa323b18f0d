// network: topology, links and switches, partitions, delivery with faults, traces, replay.
// (sim_nic.cpp has the NIC, host.cpp the host.)
#include "dpdk_net/sim/network.hpp"

#include <algorithm>

#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::sim {

namespace {

void fnv(std::uint64_t& h, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8U * static_cast<unsigned>(i))) & 0xffU;
    h *= 0x100000001b3ULL;
  }
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// sim_link
// ---------------------------------------------------------------------------------------------

link_model& sim_link::from(const sim_nic& nic) {
  return *dirs_[ends_[0].nic == &nic ? 0 : 1];
}

// ---------------------------------------------------------------------------------------------
// network
// ---------------------------------------------------------------------------------------------

network::network(std::uint64_t seed) : seed_(seed), case_(case_run::active()) {
  if (case_ != nullptr && case_->replaying()) {
    schedule_ = &case_schedule_;  // filled in as connect() creates the directions it names
  }
}

network::~network() {
  for (auto& n : nics_) {
    end_capture(*n);  // statistics blocks at the current simulated time
  }
  sched_.clear();  // frames in flight (and their copies) go back to their pools
  for (auto& n : nics_) {
    n->flush_rx();
  }
  if (case_ != nullptr && case_run::active() == case_) {
    std::vector<std::string> names;
    names.reserve(directions_.size());
    for (const link_model* d : directions_) {
      names.push_back(d->name());
    }
    case_->network_done(names, decisions_, sched_.events_run());
  }
}

host& network::add_host(const std::string& name, const host_config& config) {
  hosts_.push_back(std::unique_ptr<host>(
      new host(*this, static_cast<std::uint32_t>(hosts_.size()), name, config)));
  return *hosts_.back();
}

sim_nic& network::add_nic(host& h, const nic_config& config) {
  const auto index = static_cast<std::uint32_t>(nics_.size());
  const mac_address mac = config.mac.value_or(mac_address{
      {0x02, 0x00, 0x00, static_cast<std::uint8_t>(h.index() >> 8U),
       static_cast<std::uint8_t>(h.index()), static_cast<std::uint8_t>(h.nic_count())}});
  const std::string name = h.name() + ".eth" + std::to_string(h.nic_count());
  nics_.push_back(std::unique_ptr<sim_nic>(new sim_nic(*this, h, index, config, name, mac)));
  h.nics_.push_back(nics_.back().get());
  return *nics_.back();
}

sim_switch& network::add_switch(const std::string& name) {
  switches_.push_back(std::unique_ptr<sim_switch>(new sim_switch(name)));
  return *switches_.back();
}

sim_link& network::connect(sim_nic& a, sim_nic& b, const link_config& ab, const link_config& ba) {
  auto l = std::make_unique<sim_link>();
  l->ends_[0].nic = &a;
  l->ends_[1].nic = &b;
  const std::string n0 = a.name() + ">" + b.name();
  const std::string n1 = b.name() + ">" + a.name();
  const auto id0 = static_cast<std::uint32_t>(directions_.size());
  l->dirs_[0] = std::make_unique<link_model>(n0, id0, ab, derive_seed(seed_, "link:" + n0));
  l->dirs_[1] = std::make_unique<link_model>(n1, id0 + 1, ba, derive_seed(seed_, "link:" + n1));
  add_directions(*l);
  a.port_ = {l.get(), 0};
  b.port_ = {l.get(), 1};
  links_.push_back(std::move(l));
  return *links_.back();
}

sim_link& network::connect(sim_nic& nic, sim_switch& sw, const link_config& to_switch,
                           const link_config& from_switch) {
  auto l = std::make_unique<sim_link>();
  l->ends_[0].nic = &nic;
  l->ends_[1].sw = &sw;
  l->ends_[1].port = sw.ports_.size();
  const std::string n0 = nic.name() + ">" + sw.name();
  const std::string n1 = sw.name() + ">" + nic.name();
  const auto id0 = static_cast<std::uint32_t>(directions_.size());
  l->dirs_[0] = std::make_unique<link_model>(n0, id0, to_switch, derive_seed(seed_, "link:" + n0));
  l->dirs_[1] =
      std::make_unique<link_model>(n1, id0 + 1, from_switch, derive_seed(seed_, "link:" + n1));
  add_directions(*l);
  nic.port_ = {l.get(), 0};
  sw.ports_.emplace_back(l.get(), 1);
  links_.push_back(std::move(l));
  return *links_.back();
}

void network::add_directions(sim_link& l) {
  directions_.push_back(l.dirs_[0].get());
  directions_.push_back(l.dirs_[1].get());
  for (link_model* d : {l.dirs_[0].get(), l.dirs_[1].get()}) {
    d->set_schedule(schedule_);
  }
  if (case_ == nullptr || !case_->replaying() || case_run::active() != case_) {
    return;
  }
  // The harness replays a schedule by direction names: the entries naming these directions
  // become decisions (schedule_ points at case_schedule_ unless the test replays its own).
  std::vector<fault_decision> decisions = case_schedule_.decisions();
  const std::vector<named_fault>& wanted = case_->replay();
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    for (const link_model* d : {l.dirs_[0].get(), l.dirs_[1].get()}) {
      if (d->name() == wanted[i].direction) {
        decisions.push_back(fault_decision{d->id(), wanted[i].ordinal, wanted[i].kind});
        case_->matched(i);
      }
    }
  }
  case_schedule_ = fault_schedule(std::move(decisions));
}

void network::replay(const fault_schedule* schedule) {
  schedule_ = schedule;
  for (link_model* d : directions_) {
    d->set_schedule(schedule);
  }
}

std::size_t network::partition(std::vector<const host*> side_a, std::vector<const host*> side_b,
                               const partition_options& options) {
  partitions_.push_back(partition_state{std::move(side_a), std::move(side_b), options, false});
  return partitions_.size() - 1;
}

void network::heal(std::size_t id) {
  if (id < partitions_.size()) {
    partitions_[id].healed = true;
  }
}

bool network::blocked(const host& from, const host& to) const noexcept {
  const time_ns t = now();
  auto in = [](const std::vector<const host*>& side, const host& h) {
    return std::find(side.begin(), side.end(), &h) != side.end();
  };
  for (const partition_state& p : partitions_) {
    const partition_options& o = p.options;
    if (p.healed || t < o.start || t >= o.end) {
      continue;
    }
    if (o.flap_down != 0 && (t - o.start) % (o.flap_down + o.flap_up) >= o.flap_down) {
      continue;  // in the "up" phase of a flapping partition
    }
    if ((in(p.a, from) && in(p.b, to)) || (!o.one_way && in(p.b, from) && in(p.a, to))) {
      return true;
    }
  }
  return false;
}

bool network::run_until(const std::function<bool()>& pred, time_ns deadline) {
  while (!pred()) {
    if (sched_.next_event_time() > deadline || !sched_.step()) {
      if (deadline != UINT64_MAX) {
        sched_.run_until(deadline);
      }
      return pred();  // nothing more will happen before the deadline
    }
  }
  return true;
}

packet_pool& network::wire_pool() {
  if (!wire_pool_) {
    // Made on first use: most scenarios never duplicate or flood, and a pool costs memory.
    packet_pool_config c;
    c.name = "sim.wire";
    c.count = 4096;
    wire_pool_ = std::make_unique<packet_pool>(c);
  }
  return *wire_pool_;
}

packet network::copy(const packet& p, packet_pool& into) {
  packet out = into.alloc();
  std::size_t done = 0;
  packet* tail = &out;
  packet extra;
  while (out && done < p.length()) {
    std::size_t room = tail == &out ? out.tailroom() : extra.tailroom();
    if (room == 0) {
      if (extra) {
        out.chain(std::move(extra));
      }
      extra = into.alloc();
      if (!extra) {
        return {};
      }
      tail = &extra;
      room = extra.tailroom();
    }
    const std::size_t n = std::min(room, p.length() - done);
    std::byte* d = tail->append(n);
    p.copy_out(done, std::span<std::byte>(d, n));
    done += n;
  }
  if (extra) {
    out.chain(std::move(extra));
  }
  return out;
}

void network::transmit(sim_link* l, int side, packet p, std::uint32_t origin_host) {
  link_model& dir = *l->dirs_[side];
  const std::uint64_t ordinal = dir.counters().offered;
  const std::size_t before = decisions_.size();
  frame_fate fate = dir.decide(now(), p.length(), p.front(), decisions_);
  for (std::size_t i = before; i < decisions_.size(); ++i) {
    log(decisions_[i].kind, dir.id(), ordinal, UINT32_MAX);
  }
  if (fate.dropped) {
    if (!is_random_fault(fate.reason)) {
      log(fate.reason, dir.id(), ordinal, UINT32_MAX);
    }
    return;
  }
  if (fate.rule_delayed) {
    log(fault::rule_delay, dir.id(), ordinal, UINT32_MAX);
  }
  // The delivery events carry (side, origin host) in one word to fit the scheduler's inline
  // callback; the direction id is the link's.
  const std::uint64_t route = (std::uint64_t{origin_host} << 1U) | static_cast<unsigned>(side);
  if (fate.duplicated) {
    packet dup = copy(p, wire_pool());
    if (dup) {
      sched_.at(fate.duplicate_at, [this, l, route, dup = std::move(dup), ordinal]() mutable {
        deliver(l, route, std::move(dup), ordinal);
      });
    }
  }
  if (fate.corrupted) {
    flip_bit(p, fate.corrupt_bit);
  }
  sched_.at(fate.deliver_at, [this, l, route, p = std::move(p), ordinal]() mutable {
    deliver(l, route, std::move(p), ordinal);
  });
}

void network::deliver(sim_link* l, std::uint64_t route, packet p, std::uint64_t ordinal) {
  const int from_side = static_cast<int>(route & 1U);
  arrive(l, 1 - from_side, std::move(p), static_cast<std::uint32_t>(route >> 1U),
         l->dirs_[from_side]->id(), ordinal);
}

void network::arrive(sim_link* l, int to_side, packet p, std::uint32_t origin_host,
                     std::uint32_t direction, std::uint64_t ordinal) {
  const sim_link::endpoint& end = l->ends_[to_side];
  if (end.nic != nullptr) {
    sim_nic& nic = *end.nic;
    if (nic.owner().status() == host::state::crashed) {
      log(fault::host_down, direction, ordinal, nic.index());
      return;
    }
    if (blocked(*hosts_[origin_host], nic.owner())) {
      log(fault::partition, direction, ordinal, nic.index());
      return;
    }
    nic.receive(std::move(p));
    return;
  }
  // A switch: learn the source, forward to the known port or flood.
  sim_switch& sw = *end.sw;
  const auto eth = wire::parse_ethernet(p.front());
  if (!eth) {
    return;
  }
  sw.table_[eth.header.src.bytes] = end.port;
  const auto known =
      eth.header.dst.is_multicast() ? sw.table_.end() : sw.table_.find(eth.header.dst.bytes);
  if (known != sw.table_.end()) {
    if (known->second != end.port) {
      const auto [out_link, out_side] = sw.ports_[known->second];
      transmit(out_link, out_side, std::move(p), origin_host);
    }
    return;
  }
  ++sw.flooded_;
  const std::size_t last = end.port + 1 == sw.ports_.size() ? end.port - 1 : sw.ports_.size() - 1;
  for (std::size_t i = 0; i < sw.ports_.size(); ++i) {
    if (i == end.port) {
      continue;
    }
    const auto [out_link, out_side] = sw.ports_[i];
    packet one = i == last ? std::move(p) : copy(p, wire_pool());
    if (!one) {
      log(fault::queue_full, direction, ordinal, UINT32_MAX);  // the switch ran out of buffers
      continue;
    }
    transmit(out_link, out_side, std::move(one), origin_host);
  }
}

void network::record_frame(const sim_nic& nic, bool outgoing, const packet& p) {
  fnv(trace_hash_, now());
  fnv(trace_hash_, (std::uint64_t{nic.index()} << 1U) | (outgoing ? 1U : 0U));
  fnv(trace_hash_, p.length());
  for (const segment& s : p.segments()) {
    for (std::uint32_t i = 0; i < s.data_len; ++i) {
      trace_hash_ ^= std::to_integer<std::uint64_t>(s.data()[i]);
      trace_hash_ *= 0x100000001b3ULL;
    }
  }
  if (auto it = captures_.find(nic.index()); it != captures_.end()) {
    // rx: the queue the NIC steered it to; tx: the queue it was sent on (set by tx_burst).
    it->second->record(p.meta().queue, now(),
                       outgoing ? frame_direction::outbound : frame_direction::inbound, p);
  }
}

void network::log(fault what, std::uint32_t direction, std::uint64_t ordinal, std::uint32_t nic) {
  log_.push_back(event_record{now(), what, direction, ordinal, nic});
}

std::uint64_t network::event_log_hash() const noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const event_record& e : log_) {
    fnv(h, e.time);
    fnv(h, static_cast<std::uint64_t>(e.what));
    fnv(h, e.direction);
    fnv(h, e.ordinal);
    fnv(h, e.nic);
  }
  return h;
}

bool network::capture(sim_nic& nic, const std::string& path, std::string& error) {
  capture_options options;
  options.path = path;
  return capture(nic, options, error);
}

bool network::capture(sim_nic& nic, const capture_options& options, std::string& error) {
  end_capture(nic);
  auto c = std::make_unique<frame_capture>();
  if (!c->open(options, capture_device::interfaces_for(nic.info(), options.snaplen), error)) {
    return false;
  }
  captures_[nic.index()] = std::move(c);
  return true;
}

frame_capture* network::capture_of(const sim_nic& nic) noexcept {
  const auto it = captures_.find(nic.index());
  return it == captures_.end() ? nullptr : it->second.get();
}

void network::end_capture(sim_nic& nic) {
  const auto it = captures_.find(nic.index());
  if (it == captures_.end()) {
    return;
  }
  const device_stats s = nic.stats();
  const capture_file_stats c = it->second->stats();
  it->second->set_drops(0, s.rx_dropped + s.tx_dropped, c.frames_over_cap + c.write_errors);
  it->second->close(now());
  captures_.erase(it);
}

link_model* network::direction(std::uint32_t id) const noexcept {
  return id < directions_.size() ? directions_[id] : nullptr;
}

link_model* network::direction(std::string_view name) const noexcept {
  for (link_model* d : directions_) {
    if (d->name() == name) {
      return d;
    }
  }
  return nullptr;
}

std::string network::describe(const fault_schedule& schedule) const {
  std::vector<named_fault> named;
  for (const fault_decision& d : schedule.decisions()) {
    const link_model* dir = direction(d.direction);
    named.push_back(named_fault{dir != nullptr ? dir->name() : "?", d.ordinal, d.kind});
  }
  return format_faults(named);
}

std::optional<fault_schedule> network::parse_schedule(std::string_view text,
                                                      std::string& error) const {
  const auto named = parse_faults(text, error);
  if (!named) {
    return std::nullopt;
  }
  std::vector<fault_decision> out;
  for (const named_fault& f : *named) {
    const link_model* dir = direction(f.direction);
    if (dir == nullptr) {
      error = "bad schedule entry '" + format_faults({f}) + "': unknown direction";
      return std::nullopt;
    }
    out.push_back(fault_decision{dir->id(), f.ordinal, f.kind});
  }
  return fault_schedule(std::move(out));
}

}  // namespace dpdk_net::sim
