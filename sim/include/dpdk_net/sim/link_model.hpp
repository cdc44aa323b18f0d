// One direction of a link: what happens to each frame offered to it. Used by the simulated
// network's links and by fault_device (the same model applied to a real device).
//
// Per frame the model always draws the same amount of randomness, in the same order, from its
// own stream, whatever the configuration or replay schedule: a schedule that removes one fault
// changes nothing else about the run (delays, jitter, other directions), which is what makes
// shrinking work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dpdk_net/packet.hpp"
#include "dpdk_net/sim/random.hpp"
#include "dpdk_net/sim/time.hpp"
#include "dpdk_net/wire/frame.hpp"

namespace dpdk_net::sim {

/// Bursty loss: a two-state Markov chain (good/bad), evaluated once per frame.
struct gilbert_elliott {
  double p_good_to_bad = 0;  ///< 0 = off
  double p_bad_to_good = 0.5;
  double loss_in_good = 0;
  double loss_in_bad = 1;
};

struct link_config {
  time_ns delay = 10 * microsecond;  ///< propagation delay
  time_ns jitter = 0;                ///< + uniform [0, jitter] per frame (may reorder)
  std::uint64_t bandwidth_bps = 0;   ///< serialization rate; 0 = no serialization delay
  std::size_t queue_limit = 512;     ///< frames waiting for the wire beyond which drop-tail
  double loss = 0;                   ///< Bernoulli loss probability
  gilbert_elliott burst_loss{};
  double duplicate = 0;  ///< probability of a second copy (delivered 1..delay later)
  double reorder = 0;    ///< probability a frame is held back by reorder_delay
  time_ns reorder_delay = 200 * microsecond;
  double corrupt = 0;           ///< probability one random bit of the frame is flipped
  std::uint32_t max_frame = 0;  ///< larger frames are dropped; 0 = no limit

  /// Swarm testing: fault rates drawn from a seed (each up to a few percent, sometimes zero).
  static link_config swarm(std::uint64_t seed);
};

/// What a fault did (also the reason a frame was dropped).
enum class fault : std::uint8_t {
  loss,        ///< random loss (Bernoulli)
  burst_loss,  ///< random loss in a Gilbert-Elliott bad state
  duplicate,
  reorder,
  corrupt,
  queue_full,    ///< drop-tail at the serialization queue
  oversize,      ///< frame larger than max_frame
  partition,     ///< dropped by a network partition
  host_down,     ///< the receiving or sending host is crashed
  rule_drop,     ///< a scripted rule dropped it
  rule_delay,    ///< a scripted rule delayed it
  rx_full,       ///< the receiving NIC's rx ring was full
  rx_no_buffer,  ///< the receiving NIC (copying into its own pool) found the pool empty
};
[[nodiscard]] const char* to_string(fault f) noexcept;
/// True for the faults a seed decides at random (the ones a replay schedule controls).
[[nodiscard]] constexpr bool is_random_fault(fault f) noexcept {
  return f == fault::loss || f == fault::burst_loss || f == fault::duplicate ||
         f == fault::reorder || f == fault::corrupt;
}

/// One fault applied to one frame: the ordinal-th frame offered to a direction.
struct fault_decision {
  std::uint32_t direction = 0;
  std::uint64_t ordinal = 0;
  fault kind = fault::loss;
  friend auto operator<=>(const fault_decision&, const fault_decision&) = default;
};

/// A set of random-fault decisions to replay instead of drawing them (see shrink.hpp).
class fault_schedule {
 public:
  fault_schedule() = default;
  explicit fault_schedule(std::vector<fault_decision> decisions);
  [[nodiscard]] bool contains(std::uint32_t direction, std::uint64_t ordinal,
                              fault kind) const noexcept;
  [[nodiscard]] const std::vector<fault_decision>& decisions() const noexcept { return d_; }
  [[nodiscard]] std::size_t size() const noexcept { return d_.size(); }

 private:
  std::vector<fault_decision> d_;  // sorted
};

/// A scripted rule: frames matching `match` (optionally only the nth match, only within
/// [from, until)) are dropped or delayed. Deterministic; not part of shrinking.
struct link_rule {
  enum class action : std::uint8_t { drop, delay };
  std::string description;
  std::function<bool(const wire::decoded_frame&)> match;
  std::uint64_t nth = 0;  ///< 1 = the first match only, 3 = the third; 0 = every match
  time_ns from = 0;
  time_ns until = UINT64_MAX;
  action what = action::drop;
  time_ns extra_delay = 0;  ///< for delay
};

/// Ready-made matchers for link_rule::match.
namespace match {
/// TCP segments with all of `all` set and none of `none` set (tcp_flag bits).
std::function<bool(const wire::decoded_frame&)> tcp(std::uint8_t all, std::uint8_t none = 0);
std::function<bool(const wire::decoded_frame&)> udp_port(std::uint16_t port);
std::function<bool(const wire::decoded_frame&)> any();
}  // namespace match

struct frame_fate {
  bool dropped = false;
  fault reason = fault::loss;  ///< when dropped
  time_ns deliver_at = 0;
  bool duplicated = false;
  time_ns duplicate_at = 0;
  bool corrupted = false;
  std::uint32_t corrupt_bit = 0;  ///< bit index into the frame to flip
  bool reordered = false;
  bool rule_delayed = false;
};

struct link_counters {
  std::uint64_t offered = 0, delivered = 0, duplicated = 0, reordered = 0, corrupted = 0;
  std::uint64_t dropped_loss = 0, dropped_queue = 0, dropped_oversize = 0, dropped_rule = 0;
};

/// Flips bit `bit` (0 = the most significant bit of byte 0) of a possibly chained packet: how
/// a frame_fate's corruption is applied.
void flip_bit(packet& p, std::uint32_t bit) noexcept;

class link_model {
 public:
  link_model(std::string name, std::uint32_t id, const link_config& config, std::uint64_t seed);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::uint32_t id() const noexcept { return id_; }
  [[nodiscard]] const link_config& config() const noexcept { return config_; }
  void set_config(const link_config& c) noexcept { config_ = c; }
  void add_rule(link_rule rule) { rules_.push_back(std::move(rule)); }
  /// Replay: random faults come from the schedule instead of the draws (nullptr: from draws).
  void set_schedule(const fault_schedule* schedule) noexcept { schedule_ = schedule; }

  /// Decides the fate of a frame of `length` bytes offered at `now`; `headers` (its first
  /// segment) is what scripted rules look at. Random faults applied are appended to `applied`
  /// (for the event log and shrinking).
  frame_fate decide(time_ns now, std::size_t length, std::span<const std::byte> headers,
                    std::vector<fault_decision>& applied);

  [[nodiscard]] const link_counters& counters() const noexcept { return counters_; }

 private:
  std::string name_;
  std::uint32_t id_;
  link_config config_;
  rng rng_;
  const fault_schedule* schedule_ = nullptr;
  std::vector<link_rule> rules_;
  std::vector<std::uint64_t> rule_matches_;
  // Start times of frames queued for serialization: a ring of queue_limit entries (no
  // allocation per frame once sized).
  std::vector<time_ns> waiting_;
  std::size_t waiting_head_ = 0;
  std::size_t waiting_count_ = 0;
  time_ns busy_until_ = 0;
  bool bad_state_ = false;
  std::uint64_t ordinal_ = 0;
  link_counters counters_{};
};

}  // namespace dpdk_net::sim
