#include "dpdk_net/sim/link_model.hpp"

#include <algorithm>

namespace dpdk_net::sim {

void flip_bit(packet& p, std::uint32_t bit) noexcept {
  std::size_t byte = bit / 8;
  for (segment& s : p.segments()) {
    if (byte < s.data_len) {
      s.data()[byte] ^= static_cast<std::byte>(0x80U >> (bit % 8));
      return;
    }
    byte -= s.data_len;
  }
}

const char* to_string(fault f) noexcept {
  switch (f) {
    case fault::loss:
      return "loss";
    case fault::burst_loss:
      return "burst_loss";
    case fault::duplicate:
      return "duplicate";
    case fault::reorder:
      return "reorder";
    case fault::corrupt:
      return "corrupt";
    case fault::queue_full:
      return "queue_full";
    case fault::oversize:
      return "oversize";
    case fault::partition:
      return "partition";
    case fault::host_down:
      return "host_down";
    case fault::rule_drop:
      return "rule_drop";
    case fault::rule_delay:
      return "rule_delay";
    case fault::rx_full:
      return "rx_full";
    case fault::rx_no_buffer:
      return "rx_no_buffer";
  }
  return "unknown";
}

link_config link_config::swarm(std::uint64_t seed) {
  rng r(derive_seed(seed, "swarm-link"));
  // Each fault is off half the time, else up to a few percent: small enough that protocols
  // make progress, large enough to matter. Delays from microseconds to a few milliseconds.
  auto rate = [&r](double max) { return r.chance(0.5) ? 0.0 : r.uniform() * max; };
  link_config c;
  c.delay = microsecond * (1 + r.below(5000));
  c.jitter = r.chance(0.5) ? 0 : microsecond * r.below(1000);
  c.loss = rate(0.05);
  if (r.chance(0.25)) {
    c.burst_loss.p_good_to_bad = r.uniform() * 0.02;
    c.burst_loss.p_bad_to_good = 0.2 + r.uniform() * 0.6;
  }
  c.duplicate = rate(0.03);
  c.reorder = rate(0.05);
  c.reorder_delay = microsecond * (10 + r.below(2000));
  c.corrupt = rate(0.01);
  return c;
}

fault_schedule::fault_schedule(std::vector<fault_decision> decisions) : d_(std::move(decisions)) {
  std::sort(d_.begin(), d_.end());
  d_.erase(std::unique(d_.begin(), d_.end()), d_.end());
}

bool fault_schedule::contains(std::uint32_t direction, std::uint64_t ordinal,
                              fault kind) const noexcept {
  return std::binary_search(d_.begin(), d_.end(), fault_decision{direction, ordinal, kind});
}

namespace match {
std::function<bool(const wire::decoded_frame&)> tcp(std::uint8_t all, std::uint8_t none) {
  return [all, none](const wire::decoded_frame& f) {
    return f.tcp && (f.tcp->flags & all) == all && (f.tcp->flags & none) == 0;
  };
}
std::function<bool(const wire::decoded_frame&)> udp_port(std::uint16_t port) {
  return [port](const wire::decoded_frame& f) {
    return f.udp && (f.udp->src_port == port || f.udp->dst_port == port);
  };
}
std::function<bool(const wire::decoded_frame&)> any() {
  return [](const wire::decoded_frame&) { return true; };
}
}  // namespace match

link_model::link_model(std::string name, std::uint32_t id, const link_config& config,
                       std::uint64_t seed)
    : name_(std::move(name)), id_(id), config_(config), rng_(seed) {}

frame_fate link_model::decide(time_ns now, std::size_t length, std::span<const std::byte> headers,
                              std::vector<fault_decision>& applied) {
  const std::uint64_t ordinal = ordinal_++;
  ++counters_.offered;
  // The fixed set of draws for this frame (see the header: never conditional).
  const double u_loss = rng_.uniform();
  const double u_burst_transition = rng_.uniform();
  const double u_burst_loss = rng_.uniform();
  const double u_duplicate = rng_.uniform();
  const double u_reorder = rng_.uniform();
  const double u_corrupt = rng_.uniform();
  const std::uint64_t jitter_draw = rng_.next();
  const std::uint64_t duplicate_gap_draw = rng_.next();
  const std::uint64_t corrupt_bit_draw = rng_.next();

  frame_fate fate;
  // Scripted rules first: they are the test's intent, not chance.
  time_ns rule_delay = 0;
  if (!rules_.empty()) {
    rule_matches_.resize(rules_.size(), 0);
    const wire::decoded_frame decoded = wire::decode_frame(headers, wire::decode_options{false});
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      const link_rule& r = rules_[i];
      if (now < r.from || now >= r.until || !r.match(decoded)) {
        continue;
      }
      const std::uint64_t n = ++rule_matches_[i];
      if (r.nth != 0 && n != r.nth) {
        continue;
      }
      if (r.what == link_rule::action::drop) {
        ++counters_.dropped_rule;
        fate.dropped = true;
        fate.reason = fault::rule_drop;
        return fate;
      }
      rule_delay += r.extra_delay;
      fate.rule_delayed = true;
    }
  }
  if (config_.max_frame != 0 && length > config_.max_frame) {
    ++counters_.dropped_oversize;
    fate.dropped = true;
    fate.reason = fault::oversize;
    return fate;
  }

  // Random faults: from the draws, or from the replay schedule.
  auto decided = [&](fault kind, bool by_draw) {
    const bool yes = schedule_ != nullptr ? schedule_->contains(id_, ordinal, kind) : by_draw;
    if (yes) {
      applied.push_back(fault_decision{id_, ordinal, kind});
    }
    return yes;
  };
  const gilbert_elliott& ge = config_.burst_loss;
  if (ge.p_good_to_bad > 0) {
    bad_state_ = bad_state_ ? !(u_burst_transition < ge.p_bad_to_good)
                            : u_burst_transition < ge.p_good_to_bad;
  }
  const double burst_p = ge.p_good_to_bad > 0 ? (bad_state_ ? ge.loss_in_bad : ge.loss_in_good) : 0;
  if (decided(fault::loss, u_loss < config_.loss) ||
      decided(fault::burst_loss, u_burst_loss < burst_p)) {
    ++counters_.dropped_loss;
    fate.dropped = true;
    fate.reason = applied.back().kind;
    return fate;
  }

  // Serialization: frames wait for the wire in a bounded FIFO (drop-tail).
  time_ns start = now;
  if (config_.bandwidth_bps != 0) {
    if (waiting_.size() != config_.queue_limit) {
      waiting_.assign(config_.queue_limit, 0);  // (re)sized on first use or a config change
      waiting_head_ = waiting_count_ = 0;
    }
    while (waiting_count_ != 0 && waiting_[waiting_head_] <= now) {
      waiting_head_ = (waiting_head_ + 1) % waiting_.size();
      --waiting_count_;
    }
    if (waiting_count_ >= config_.queue_limit) {
      ++counters_.dropped_queue;
      fate.dropped = true;
      fate.reason = fault::queue_full;
      return fate;
    }
    start = std::max(now, busy_until_);
    const time_ns tx = (length * 8ULL * second + config_.bandwidth_bps - 1) / config_.bandwidth_bps;
    busy_until_ = start + tx;
    if (start > now && !waiting_.empty()) {
      waiting_[(waiting_head_ + waiting_count_) % waiting_.size()] = start;
      ++waiting_count_;
    }
    start = busy_until_;
  }
  time_ns arrive = start + config_.delay + rule_delay;
  if (config_.jitter != 0) {
    arrive += jitter_draw % (config_.jitter + 1);
  }
  if (decided(fault::reorder, u_reorder < config_.reorder)) {
    arrive += config_.reorder_delay;
    fate.reordered = true;
    ++counters_.reordered;
  }
  fate.deliver_at = arrive;
  if (decided(fault::duplicate, u_duplicate < config_.duplicate)) {
    fate.duplicated = true;
    fate.duplicate_at = arrive + 1 + duplicate_gap_draw % (config_.delay + 1);
    ++counters_.duplicated;
  }
  if (length != 0 && decided(fault::corrupt, u_corrupt < config_.corrupt)) {
    fate.corrupted = true;
    fate.corrupt_bit = static_cast<std::uint32_t>(corrupt_bit_draw % (length * 8));
    ++counters_.corrupted;
  }
  ++counters_.delivered;
  return fate;
}

}  // namespace dpdk_net::sim
