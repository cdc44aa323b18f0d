#include "dpdk_net/sim/network.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "dpdk_net/rss.hpp"
#include "dpdk_net/wire/bytes.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::sim {

namespace {

constexpr std::size_t max_l2_overhead = 18;  // Ethernet + one VLAN tag on top of the MTU

void fnv(std::uint64_t& h, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8U * static_cast<unsigned>(i))) & 0xffU;
    h *= 0x100000001b3ULL;
  }
}

/// The RSS hash of an IPv4 frame (4-tuple for unfragmented TCP/UDP), if it is one.
std::optional<std::uint32_t> frame_rss_hash(const packet& p, std::span<const std::uint8_t> key) {
  const auto eth = wire::parse_ethernet(p.front());
  if (!eth || eth.header.ethertype != wire::ethertype::ipv4) {
    return std::nullopt;
  }
  const auto ip = wire::parse_ipv4(eth.payload, wire::ipv4_parse_options{.verify_checksum = false});
  if (!ip) {
    return std::nullopt;
  }
  const auto& h = ip.header;
  if (!h.is_fragment() &&
      (h.protocol == wire::ip_protocol::tcp || h.protocol == wire::ip_protocol::udp) &&
      ip.payload.size() >= 4) {
    const std::uint16_t sport = wire::load16(ip.payload.data());
    const std::uint16_t dport = wire::load16(ip.payload.data() + 2);
    return rss_hash_ipv4_l4(key, h.src, h.dst, sport, dport);
  }
  return rss_hash_ipv4(key, h.src, h.dst);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// sim_nic
// ---------------------------------------------------------------------------------------------

sim_nic::sim_nic(network& net, host& owner, std::uint32_t index, const nic_config& config,
                 std::string name, mac_address mac)
    : net_(&net),
      host_(&owner),
      index_(index),
      ring_limit_(config.rx_ring),
      rx_copy_(config.rx_copy),
      line_rate_bps_(config.line_rate_bps),
      tx_ring_limit_(config.tx_ring) {
  info_.name = std::move(name);
  info_.mac = mac;
  info_.mtu = config.mtu;
  info_.rx_queues = config.queues;
  info_.tx_queues = config.queues;
  info_.rss = rss_capabilities{rss_hash::ipv4 | rss_hash::tcp_ipv4 | rss_hash::udp_ipv4, 40, 128};
  packet_pool_config pc;
  pc.name = info_.name;
  pc.count = config.pool_size;
  pool_ = std::make_unique<packet_pool>(pc);
  rings_.resize(config.queues);
  for (ring& r : rings_) {
    r.slots.resize(std::bit_ceil(std::max<std::size_t>(config.rx_ring, 1)));
  }
  rss_.hash_types = info_.rss.hash_types;
  rss_.key.assign(default_rss_key.begin(), default_rss_key.end());
  rss_.reta.resize(128);
  for (std::size_t i = 0; i < rss_.reta.size(); ++i) {
    rss_.reta[i] = static_cast<std::uint16_t>(i % config.queues);
  }
}

sim_nic::~sim_nic() {
  flush_rx();
}

void sim_nic::flush_rx() noexcept {
  for (ring& r : rings_) {
    for (; r.head != r.tail; ++r.head) {
      packet::free_chain(r.slots[r.head & (r.slots.size() - 1)]);
    }
  }
}

std::error_code sim_nic::configure_rss(const rss_config& config) {
  if (config.key.size() != info_.rss.key_size || config.reta.empty() ||
      (config.hash_types & ~info_.rss.hash_types) != 0) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  for (std::uint16_t q : config.reta) {
    if (q >= info_.rx_queues) {
      return std::make_error_code(std::errc::invalid_argument);
    }
  }
  rss_ = config;
  return {};
}

std::size_t sim_nic::rx_pending(std::uint16_t queue) const noexcept {
  return queue < rings_.size() ? rings_[queue].size() : 0;
}

std::size_t sim_nic::rx_burst(std::uint16_t queue, std::span<packet> out) noexcept {
  if (queue >= rings_.size()) {
    ++stats_.bad_queue;
    return 0;
  }
  ring& r = rings_[queue];
  const std::size_t n = std::min(out.size(), r.size());
  const std::size_t mask = r.slots.size() - 1;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = packet::adopt(r.slots[(r.head + i) & mask]);
  }
  r.head += n;
  return n;
}

std::size_t sim_nic::tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept {
  if (queue >= info_.tx_queues) {
    ++stats_.bad_queue;
    return 0;
  }
  const std::size_t max_frame = std::size_t{info_.mtu} + max_l2_overhead;
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    packet& p = pkts[i];
    if (!p) {
      continue;
    }
    if (tx_ring_limit_ != 0 && tx_in_ring_ >= tx_ring_limit_) {
      stats_.tx_busy += pkts.size() - i;  // the ring is full: the rest stays with the caller
      return i;
    }
    if (host_->status() == host::state::crashed || port_.attached == nullptr ||
        p.length() > max_frame) {
      ++stats_.tx_dropped;
      net_->log(p.length() > max_frame ? fault::oversize : fault::host_down, UINT32_MAX, 0, index_);
      p.reset();
      continue;
    }
    ++stats_.tx_packets;
    stats_.tx_bytes += p.length();
    if (line_rate_bps_ == 0) {
      put_on_link(std::move(p));
      continue;
    }
    // The frame holds a ring slot until the NIC has serialized it at line rate.
    const time_ns bits = p.length() * 8ULL * second;
    tx_busy_until_ =
        std::max(net_->now(), tx_busy_until_) + (bits + line_rate_bps_ - 1) / line_rate_bps_;
    ++tx_in_ring_;
    net_->events().at(tx_busy_until_, [this, epoch = host_->epoch_, p = std::move(p)]() mutable {
      --tx_in_ring_;
      if (epoch != host_->epoch_ || host_->status() == host::state::crashed ||
          port_.attached == nullptr) {
        ++stats_.tx_dropped;  // the host crashed while the frame waited in its ring
        net_->log(fault::host_down, UINT32_MAX, 0, index_);
        return;
      }
      put_on_link(std::move(p));
    });
  }
  return pkts.size();
}

void sim_nic::put_on_link(packet p) {
  net_->record_frame(*this, true, p);
  net_->transmit(port_.attached, port_.side, std::move(p), host_->index());
}

buffer_pool& sim_nic::tx_pool(std::uint16_t queue) noexcept {
  (void)queue;  // one pool per NIC: the simulation is single-threaded
  return *pool_;
}

link_status sim_nic::link() const noexcept {
  return link_status{port_.attached != nullptr && host_->status() != host::state::crashed, 0};
}

void sim_nic::receive(packet p) {
  // Receive metadata is this NIC's to set: nothing of the sender's travels with the frame.
  p.meta() = packet_meta{};
  std::uint16_t queue = 0;
  if (rings_.size() > 1 && rss_.hash_types != 0) {
    if (const auto hash = frame_rss_hash(p, rss_.key)) {
      p.meta().rss_hash = *hash;
      p.meta().rss_hash_valid = true;
      queue = rss_.reta[*hash % rss_.reta.size()];
    }
  }
  ring& r = rings_[queue];
  if (r.size() >= ring_limit_) {
    ++stats_.rx_dropped;
    net_->log(fault::rx_full, UINT32_MAX, 0, index_);
    return;  // p is freed here
  }
  if (rx_copy_) {
    packet own = net_->copy(p, *pool_);
    if (!own) {
      ++stats_.rx_dropped;
      net_->log(fault::rx_no_buffer, UINT32_MAX, 0, index_);
      return;
    }
    own.meta() = p.meta();
    p = std::move(own);  // the sender's buffer goes back to its pool here
  }
  p.meta().queue = queue;
  p.meta().rx_timestamp_ns = net_->now();
  ++stats_.rx_packets;
  stats_.rx_bytes += p.length();
  net_->record_frame(*this, false, p);
  r.slots[r.tail++ & (r.slots.size() - 1)] = p.release();
  host_->wake();
}

// ---------------------------------------------------------------------------------------------
// host
// ---------------------------------------------------------------------------------------------

host::host(network& net, std::uint32_t index, std::string name, const host_config& config)
    : net_(&net), index_(index), name_(std::move(name)), config_(config) {}

time_ns host::local_now() const noexcept {
  const time_ns global = net_->now();
  const double drift = static_cast<double>(global) * config_.drift_ppm / 1e6;
  return config_.clock_offset + global + static_cast<time_ns>(std::llround(drift));
}

void host::after(time_ns local_delay, std::function<void()> cb) {
  if (state_ == state::crashed) {
    return;
  }
  // local = global * (1 + drift): a local delay is shorter in global time on a fast clock.
  const double global = static_cast<double>(local_delay) / (1.0 + config_.drift_ppm / 1e6);
  const std::uint64_t id = next_timer_++;
  timers_.emplace(id, std::move(cb));
  const std::uint64_t epoch = epoch_;
  net_->events().after(static_cast<time_ns>(std::llround(global)), [this, id, epoch] {
    if (epoch != epoch_) {
      return;  // crashed since
    }
    auto it = timers_.find(id);
    if (it == timers_.end()) {
      return;
    }
    std::function<void()> fn = std::move(it->second);
    timers_.erase(it);
    run_or_defer(std::move(fn));
  });
}

void host::run_or_defer(std::function<void()> fn) {
  if (state_ == state::paused) {
    deferred_.push_back(std::move(fn));
  } else if (state_ == state::running) {
    fn();
  }
}

void host::wake() {
  if (state_ != state::running || wake_pending_) {
    return;  // a paused host is woken by resume()
  }
  wake_pending_ = true;
  const std::uint64_t epoch = epoch_;
  net_->events().after(0, [this, epoch] {
    if (epoch != epoch_) {
      return;
    }
    wake_pending_ = false;
    if (state_ == state::running && on_receive) {
      on_receive(*this);
    }
  });
}

void host::pause() {
  if (state_ == state::running) {
    state_ = state::paused;
  }
}

void host::resume() {
  if (state_ != state::paused) {
    return;
  }
  state_ = state::running;
  std::vector<std::function<void()>> due = std::move(deferred_);
  deferred_.clear();
  for (std::size_t i = 0; i < due.size(); ++i) {
    if (state_ == state::crashed) {
      return;  // a callback crashed the host: the rest is discarded, as a crash does
    }
    if (state_ == state::paused) {
      // A callback paused the host again: the rest waits for the next resume, in order.
      deferred_.insert(deferred_.begin(),
                       std::make_move_iterator(due.begin() + static_cast<std::ptrdiff_t>(i)),
                       std::make_move_iterator(due.end()));
      return;
    }
    due[i]();
  }
  for (sim_nic* n : nics_) {
    for (std::uint16_t q = 0; q < n->info().rx_queues; ++q) {
      if (n->rx_pending(q) != 0) {
        wake();
      }
    }
  }
}

void host::crash() {
  state_ = state::crashed;
  ++epoch_;
  timers_.clear();
  deferred_.clear();
  wake_pending_ = false;
  for (sim_nic* n : nics_) {
    n->flush_rx();
  }
}

void host::restart() {
  if (state_ != state::crashed) {
    return;
  }
  state_ = state::running;
  if (on_restart) {
    on_restart(*this);
  }
}

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
    it->second->write(now(), p);
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
  auto w = std::make_unique<pcap_writer>();
  if (!w->open(path)) {
    error = w->error();
    return false;
  }
  captures_[nic.index()] = std::move(w);
  return true;
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
