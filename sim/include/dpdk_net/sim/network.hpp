// The simulated network: hosts with NICs (dpdk_net::device implementations), point-to-point
// links and L2 learning switches, per-direction link models, partitions, host pause / crash /
// restart, per-host clock skew and drift, pcap traces and a hashed event log. Single-threaded and
// deterministic: the same seed gives the same bytes at the same simulated times.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dpdk_net/buffer_pool.hpp"
#include "dpdk_net/device.hpp"
#include "dpdk_net/frame_capture.hpp"
#include "dpdk_net/pcap_file.hpp"
#include "dpdk_net/sim/harness.hpp"
#include "dpdk_net/sim/link_model.hpp"
#include "dpdk_net/sim/scheduler.hpp"

namespace dpdk_net::sim {

class network;
class host;
class sim_switch;
class sim_link;

struct nic_config {
  std::uint16_t queues = 1;
  std::size_t rx_ring = 1024;    ///< frames per rx queue; more are dropped (rx_full)
  std::size_t pool_size = 2048;  ///< tx buffers (frames in flight and in peers' rings count)
  std::uint16_t mtu = 1500;
  std::optional<mac_address> mac;  ///< default: 02:00:00:00:<host>:<nic>
  /// Receive into this NIC's own pool (a copy, as a real NIC DMAs into its rx mempool) and free
  /// the sender's buffer at once, so frames a receiver holds never pin the sender's pool. Off:
  /// the sender's buffer itself is handed over (zero copy, faster). A frame that finds the pool
  /// empty is dropped (rx_dropped, logged as rx_no_buffer).
  bool rx_copy = false;
  /// Transmit line rate: each frame occupies a tx ring slot until it is serialized at this rate
  /// (then it goes onto the link). 0: frames go onto the link at once.
  std::uint64_t line_rate_bps = 0;
  /// Tx ring slots (with line_rate_bps): when every slot holds a frame still being serialized,
  /// tx_burst accepts no more (returns fewer than offered, counts tx_busy), as a real NIC does.
  /// 0: unbounded.
  std::size_t tx_ring = 0;
};

/// A simulated NIC: receives into per-queue rings, spreading frames by Toeplitz RSS when it has
/// several queues; transmits into the link it is attached to, at the current simulated time
/// (or, with a line rate, when the frame has been serialized).
class sim_nic final : public device {
 public:
  [[nodiscard]] const device_info& info() const noexcept override { return info_; }
  std::size_t rx_burst(std::uint16_t queue, std::span<packet> out) noexcept override;
  std::size_t tx_burst(std::uint16_t queue, std::span<packet> pkts) noexcept override;
  [[nodiscard]] buffer_pool& tx_pool(std::uint16_t queue) noexcept override;
  [[nodiscard]] link_status link() const noexcept override;
  [[nodiscard]] device_stats stats() const noexcept override { return stats_; }
  [[nodiscard]] rss_config rss() const override { return rss_; }
  std::error_code configure_rss(const rss_config& config) override;

  [[nodiscard]] host& owner() const noexcept { return *host_; }
  [[nodiscard]] const std::string& name() const noexcept { return info_.name; }
  [[nodiscard]] std::size_t rx_pending(std::uint16_t queue) const noexcept;
  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  /// Frames accepted by tx_burst still being serialized (with a line rate).
  [[nodiscard]] std::size_t tx_in_ring() const noexcept { return tx_in_ring_; }
  ~sim_nic() override;

 private:
  friend class network;
  friend class host;
  sim_nic(network& net, host& owner, std::uint32_t index, const nic_config& config,
          std::string name, mac_address mac);
  void receive(packet p);  // called by the network at delivery time
  void flush_rx() noexcept;
  void put_on_link(packet p);  // what tx_burst accepted, now on the wire

  network* net_;
  host* host_;
  std::uint32_t index_;  // network-wide
  device_info info_;
  std::unique_ptr<packet_pool> pool_;
  struct ring {
    std::vector<segment*> slots;  // power-of-two capacity >= the configured limit, fixed
    std::size_t head = 0;         // next to read
    std::size_t tail = 0;         // next to write
    [[nodiscard]] std::size_t size() const noexcept { return tail - head; }
  };
  std::vector<ring> rings_;  // per queue
  std::size_t ring_limit_;
  bool rx_copy_;
  std::uint64_t line_rate_bps_;
  std::size_t tx_ring_limit_;
  std::size_t tx_in_ring_ = 0;
  time_ns tx_busy_until_ = 0;
  rss_config rss_;
  device_stats stats_{};
  struct port_ref {
    sim_link* attached = nullptr;  // the link this NIC transmits into
    int side = 0;
  } port_;
};

struct host_config {
  time_ns clock_offset = 0;  ///< local clock = offset + global time * (1 + drift_ppm / 1e6)
  double drift_ppm = 0;
};

/// A host: a name, NICs, a local clock, timers, and the application's hooks.
class host {
 public:
  enum class state : std::uint8_t { running, paused, crashed };

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  [[nodiscard]] state status() const noexcept { return state_; }
  [[nodiscard]] network& net() const noexcept { return *net_; }
  [[nodiscard]] sim_nic& nic(std::size_t i = 0) const { return *nics_.at(i); }
  [[nodiscard]] std::size_t nic_count() const noexcept { return nics_.size(); }

  /// The host's own clock (skewed and drifting against simulated time).
  [[nodiscard]] time_ns local_now() const noexcept;
  /// Runs cb after `local_delay` of this host's clock. Deferred while paused; discarded by crash.
  void after(time_ns local_delay, std::function<void()> cb);

  /// Called (as an event) whenever frames arrive on one of its NICs while it runs.
  std::function<void(host&)> on_receive;
  /// Called when restart() brings it back (re-create the application state here).
  std::function<void(host&)> on_restart;

  void pause();    ///< stops running callbacks; NICs keep receiving into their rings
  void resume();   ///< runs what was deferred, in order
  void crash();    ///< NICs go down, rings and timers are discarded
  void restart();  ///< NICs up; on_restart runs

 private:
  friend class network;
  friend class sim_nic;
  host(network& net, std::uint32_t index, std::string name, const host_config& config);
  void wake();  // frames arrived
  void run_or_defer(std::function<void()> fn);

  network* net_;
  std::uint32_t index_;
  std::string name_;
  host_config config_;
  state state_ = state::running;
  std::uint64_t epoch_ = 0;  // bumped by crash: stale timers see it and do nothing
  bool wake_pending_ = false;
  std::vector<sim_nic*> nics_;
  std::vector<std::function<void()>> deferred_;
  std::map<std::uint64_t, std::function<void()>> timers_;
  std::uint64_t next_timer_ = 0;
};

/// An L2 learning switch: floods unknown and broadcast destinations, learns source MACs.
class sim_switch {
 public:
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::size_t ports() const noexcept { return ports_.size(); }
  [[nodiscard]] std::uint64_t flooded() const noexcept { return flooded_; }

 private:
  friend class network;
  explicit sim_switch(std::string name) : name_(std::move(name)) {}
  std::string name_;
  std::vector<std::pair<sim_link*, int>> ports_;  // (link, side of the switch on it)
  std::map<std::array<std::uint8_t, 6>, std::size_t> table_;
  std::uint64_t flooded_ = 0;
};

/// A link between two endpoints: a link_model per direction.
class sim_link {
 public:
  [[nodiscard]] link_model& direction(int from_side) noexcept { return *dirs_[from_side]; }
  /// The direction leaving endpoint `from` (a NIC on this link).
  [[nodiscard]] link_model& from(const sim_nic& nic);

 private:
  friend class network;
  friend class sim_nic;
  struct endpoint {
    sim_nic* nic = nullptr;
    sim_switch* sw = nullptr;
    std::size_t port = 0;
  };
  endpoint ends_[2];
  std::unique_ptr<link_model> dirs_[2];
};

struct partition_options {
  bool one_way = false;      ///< only side_a -> side_b is cut
  time_ns start = 0;         ///< from (absolute simulated time)
  time_ns end = UINT64_MAX;  ///< until
  time_ns flap_down = 0;     ///< flapping: cut for flap_down, then whole for flap_up, repeated
  time_ns flap_up = 0;
};

/// One line of the event log: a fault that happened to a frame.
struct event_record {
  time_ns time = 0;
  fault what = fault::loss;
  std::uint32_t direction = UINT32_MAX;  ///< link direction id, or UINT32_MAX (at a NIC)
  std::uint64_t ordinal = 0;
  std::uint32_t nic = UINT32_MAX;  ///< receiving NIC when relevant
};

class network {
 public:
  explicit network(std::uint64_t seed);
  network(const network&) = delete;
  network& operator=(const network&) = delete;
  /// Frees every frame in flight or in a ring. Packets the application still holds must be freed
  /// before the network is destroyed (their pools die with it).
  ~network();

  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  [[nodiscard]] scheduler& events() noexcept { return sched_; }
  [[nodiscard]] time_ns now() const noexcept { return sched_.now(); }

  host& add_host(const std::string& name, const host_config& config = {});
  sim_nic& add_nic(host& h, const nic_config& config = {});
  sim_switch& add_switch(const std::string& name);
  /// A point-to-point link; ab applies to a -> b, ba to b -> a.
  sim_link& connect(sim_nic& a, sim_nic& b, const link_config& ab, const link_config& ba);
  sim_link& connect(sim_nic& a, sim_nic& b, const link_config& both = {}) {
    return connect(a, b, both, both);
  }
  /// A NIC to a new switch port; to_switch applies to nic -> switch, from_switch the reverse.
  sim_link& connect(sim_nic& nic, sim_switch& sw, const link_config& to_switch,
                    const link_config& from_switch);
  sim_link& connect(sim_nic& nic, sim_switch& sw, const link_config& both = {}) {
    return connect(nic, sw, both, both);
  }

  /// Cuts traffic between two groups of hosts; returns an id for heal().
  std::size_t partition(std::vector<const host*> side_a, std::vector<const host*> side_b,
                        const partition_options& options = {});
  void heal(std::size_t id);
  [[nodiscard]] bool blocked(const host& from, const host& to) const noexcept;

  void run_for(time_ns duration) { sched_.run_until(sched_.now() + duration); }
  /// Runs until pred() holds (checked after each event) or simulated time passes deadline;
  /// returns whether pred() held.
  bool run_until(const std::function<bool()>& pred, time_ns deadline);

  /// Writes every frame the NIC sends or receives to a pcapng through a frame_capture: one
  /// interface per queue ("h1.eth0/q0"), the direction of each frame, simulated time as the
  /// (nanosecond) timestamps. The same seed gives the same bytes. The file is complete (interface
  /// statistics written) when the network is destroyed or end_capture() is called.
  bool capture(sim_nic& nic, const std::string& path, std::string& error);
  /// The same with limits (size cap, ring of files, snaplen, start disabled); path from options.
  bool capture(sim_nic& nic, const capture_options& options, std::string& error);
  /// The NIC's capture (to switch it on and off, read its stats); nullptr if none.
  [[nodiscard]] frame_capture* capture_of(const sim_nic& nic) noexcept;
  /// Writes the statistics blocks (with the NIC's drop counts) and closes the NIC's capture.
  void end_capture(sim_nic& nic);
  /// Replays a schedule of random faults instead of drawing them (must outlive the run).
  void replay(const fault_schedule* schedule);
  /// Random faults applied so far, in the order they happened.
  [[nodiscard]] const std::vector<fault_decision>& decisions() const noexcept { return decisions_; }
  [[nodiscard]] const std::vector<event_record>& event_log() const noexcept { return log_; }
  /// Hash of every frame sent and received (time, NIC, direction, bytes): equal hashes mean
  /// identical traffic.
  [[nodiscard]] std::uint64_t trace_hash() const noexcept { return trace_hash_; }
  [[nodiscard]] std::uint64_t event_log_hash() const noexcept;
  /// Link direction by id or by name ("h1.eth0>h2.eth0"); nullptr if unknown.
  [[nodiscard]] link_model* direction(std::uint32_t id) const noexcept;
  [[nodiscard]] link_model* direction(std::string_view name) const noexcept;
  /// "loss@h1.eth0>sw#17 corrupt@..." and back (for printing and replaying schedules).
  [[nodiscard]] std::string describe(const fault_schedule& schedule) const;
  [[nodiscard]] std::optional<fault_schedule> parse_schedule(std::string_view text,
                                                             std::string& error) const;
  [[nodiscard]] const std::vector<std::unique_ptr<host>>& hosts() const noexcept { return hosts_; }

 private:
  friend class sim_nic;
  friend class host;
  void transmit(sim_link* l, int side, packet p, std::uint32_t origin_host);
  void deliver(sim_link* l, std::uint64_t route, packet p, std::uint64_t ordinal);
  void arrive(sim_link* l, int to_side, packet p, std::uint32_t origin_host,
              std::uint32_t direction, std::uint64_t ordinal);
  void record_frame(const sim_nic& nic, bool outgoing, const packet& p);
  void log(fault what, std::uint32_t direction, std::uint64_t ordinal, std::uint32_t nic);
  packet copy(const packet& p, packet_pool& into);
  packet_pool& wire_pool();
  void add_directions(sim_link& l);

  std::uint64_t seed_;
  scheduler sched_;
  std::unique_ptr<packet_pool> wire_pool_;  // copies for duplicates and floods (see wire_pool())
  std::vector<std::unique_ptr<host>> hosts_;
  std::vector<std::unique_ptr<sim_nic>> nics_;
  std::vector<std::unique_ptr<sim_switch>> switches_;
  std::vector<std::unique_ptr<sim_link>> links_;
  std::vector<link_model*> directions_;
  struct partition_state {
    std::vector<const host*> a, b;
    partition_options options;
    bool healed = false;
  };
  std::vector<partition_state> partitions_;
  std::map<std::uint32_t, std::unique_ptr<frame_capture>> captures_;
  std::vector<fault_decision> decisions_;
  std::vector<event_record> log_;
  std::uint64_t trace_hash_ = 0xcbf29ce484222325ULL;
  const fault_schedule* schedule_ = nullptr;
  // The harness's run this network belongs to (replay schedule in, faults and cost out).
  case_run* case_ = nullptr;
  fault_schedule case_schedule_;
};

}  // namespace dpdk_net::sim
