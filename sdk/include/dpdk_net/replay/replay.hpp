// Capture replay, sans-I/O: a recorded conversation (pcap / pcapng records, Ethernet only) is
// played against a LIVE stack that takes the role of one recorded address, the target T.
// Frames the capture shows sent TO T are replayed (we play the other side: addresses, ports,
// MACs, sequence numbers, timestamps and checksums rewritten); frames sent FROM T are the
// recorded responses, compared with what the live stack sends.
//
// Like the stack (stack/stack.hpp) it has no clock, thread, syscall or RNG: time and frames go in
// (on_frame), frames come out (poll), next_wakeup() says when to call poll again, and the ISNs
// come from the seed given in the configuration (a hash of seed and flow index).
//
// Addresses: T -> live_address; the i-th distinct recorded peer of T (in order of appearance)
// -> address + i. Ports: T's ports through port_map (recorded -> live), the peers' ports plus
// peer_port_offset. MACs: ours is config.mac; the live stack's is learned by ARP (we ask for it
// before sending anything and answer requests for our addresses). Capture ARP frames are not
// replayed; frames neither to nor from T are skipped (counted).
//
// TCP, per flow (the recorded 4-tuple):
//   seq  = rec_seq - rec_isn_ours + our_isn
//   ack  = rec_ack - rec_isn_live + live_isn (live_isn from the live SYN / SYN-ACK); SACK likewise
//   TSval = (our clock in ms when the flow started) + (rec TSval - the flow's first rec TSval)
//   TSecr = the latest TSval the live stack sent on the flow (0 before it sent any)
//   window and the other options as recorded (options patched in place: layout kept).
// The wait rule: a replayed segment acknowledging relative live byte R (SYN and FIN count 1) is
// held until the live stack has sent at least R. Held longer than response_timeout past both its
// planned time and the flow's last progress (a frame sent, or new live bytes), it is reported
// ("missing response: flow F waited for byte R, live sent S") and the flow is aborted with a RST
// (its remaining frames are dropped). Pacing, per flow: a frame is planned at start + (its
// recorded time - the first recorded time) + the delay its flow accumulated by waiting; fast: as
// soon as the wait rule allows. Flows are independent: one flow's wait does not hold another.
// Live segments beyond the recording (retransmissions, extra data) are stored and counted; the
// replayer never acknowledges anything on its own.
// play_role::server: the live stack is the client. Each live SYN (to address + i, at the
// recorded server port + peer_port_offset) takes the next recorded connection of that peer and
// port; its port is learned from the SYN (UDP: the first datagram), its recorded pacing starts
// there, and that first wait has no response timeout (the client connects when it will; a
// connection that never comes is reported). ARP is asked until answered; ICMP is skipped.
//
// UDP and ICMP (echo) are replayed as recorded (paced, rewritten); live responses are counted
// per flow and compared with the recorded count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dpdk_net/capture_file.hpp"
#include "dpdk_net/mac_address.hpp"
#include "dpdk_net/time.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"

namespace dpdk_net::replay {

/// Which recorded side the replayer plays (the live stack plays the other).
enum class play_role : std::uint8_t {
  client,  ///< T = the server (default target: the first SYN's destination)
  server,  ///< T = the client (default target: the first SYN's source)
};

struct replay_config {
  mac_address mac{};                         ///< the replayer's MAC
  wire::ipv4_address address{};              ///< the replayer's first address (peer i: + i)
  wire::ipv4_address live_address{};         ///< the live stack's address (T's role)
  std::optional<wire::ipv4_address> target;  ///< recorded T; nullopt: automatic (see play_role)
  play_role play = play_role::client;
  std::map<std::uint16_t, std::uint16_t> port_map;  ///< T's recorded port -> live port
  std::uint16_t peer_port_offset = 0;               ///< added to the peers' ports (mod 65536)
  bool fast = false;                                ///< no recorded gaps, only the wait rule
  time_ns response_timeout = 2 * second;
  std::uint16_t mtu = 1500;  ///< larger recorded TCP segments (TSO / GRO captures) are cut
  time_ns arp_retry = 500 * millisecond;
  /// A flow whose recorded responses all came is finished after this long without traffic (so
  /// a live side sending more than recorded is seen).
  time_ns settle_time = 100 * millisecond;
  std::uint64_t seed = 1;                       ///< our ISNs: a hash of (seed, flow index)
  std::uint64_t max_live_bytes = 64ULL << 20U;  ///< bytes kept per flow and side for comparison
};

/// One TCP flow's comparison (the live side's stream against the recording's).
struct flow_report {
  std::string name;               ///< "198.18.0.10:40000 > 198.18.0.2:8080" (rewritten addresses)
  std::string recorded_name;      ///< the recorded 4-tuple
  std::string protocol;           ///< "tcp", "udp", "icmp"
  std::uint64_t frames_sent = 0;  ///< replayed frames
  std::uint64_t frames_received = 0;  ///< live frames on the flow
  std::uint64_t frames_expected = 0;  ///< recorded frames from T
  // TCP only:
  std::uint64_t recorded_bytes = 0;  ///< payload bytes T sent in the recording (stream length)
  std::uint64_t live_bytes = 0;      ///< payload bytes the live stack sent (contiguous from 0)
  std::optional<std::uint64_t> first_difference;  ///< first differing stream offset
  bool recorded_fin = false, live_fin = false;
  bool recorded_rst = false, live_rst = false;
  std::uint64_t retransmissions = 0;  ///< live segments with bytes already received
  std::uint64_t missing_responses = 0;
  bool aborted = false;  ///< we sent a RST after a missing response
  bool skipped = false;  ///< not replayable (no handshake in the capture); see skip_reason
  std::string skip_reason;
  std::uint32_t our_isn = 0, live_isn = 0;
  [[nodiscard]] bool diverged() const noexcept;
};

struct replay_report {
  std::uint64_t records = 0;            ///< capture records read
  std::uint64_t frames_to_replay = 0;   ///< frames to T in the capture
  std::uint64_t frames_expected = 0;    ///< frames from T in the capture
  std::uint64_t frames_skipped = 0;     ///< ARP, non-IPv4, not involving T
  std::uint64_t frames_sent = 0;        ///< replayed (incl. ARP and RSTs we generated)
  std::uint64_t frames_received = 0;    ///< every frame the live side sent us
  std::uint64_t frames_unexpected = 0;  ///< live frames on no known flow
  std::uint64_t arp_requests_answered = 0;
  bool live_mac_learned = false;
  wire::ipv4_address target{};
  std::vector<std::string> divergences;  ///< one line each, in the order found
  std::vector<flow_report> flows;
  time_ns started_at = 0, finished_at = 0;
  [[nodiscard]] bool diverged() const noexcept { return !divergences.empty(); }
  /// "replay: N flows, M frames sent, K received, D divergences"
  [[nodiscard]] std::string summary() const;
  /// The whole report as one JSON object.
  [[nodiscard]] std::string json() const;
};

class engine {
 public:
  using emit_function = std::function<void(std::span<const std::byte> frame)>;

  explicit engine(replay_config config);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;
  engine(engine&&) noexcept;
  engine& operator=(engine&&) noexcept;

  /// Reads the records (frames are copied). False with a plain-words error if a record is not
  /// Ethernet, a frame is truncated (snaplen) or damaged, or nothing involves the target.
  bool load(std::span<const capture_record> records, std::string& error);

  /// A frame the live side sent (any frame: ARP, IPv4, ...).
  void on_frame(time_ns now, std::span<const std::byte> frame);
  /// Emits what is due at `now` (the first call also starts the replay clock).
  void poll(time_ns now, const emit_function& emit);
  /// When poll has work next (UINT64_MAX: nothing until a frame arrives).
  [[nodiscard]] time_ns next_wakeup() const noexcept;
  /// Every recorded frame was sent (or its flow ended) and the responses are in or timed out.
  [[nodiscard]] bool done() const noexcept;
  /// The comparison so far; final once done().
  [[nodiscard]] const replay_report& report() const;

  [[nodiscard]] const replay_config& config() const noexcept;
  /// After load: the live stack's TCP ports the replay connects to (client role; sorted), so
  /// the live application can listen on them.
  [[nodiscard]] std::vector<std::uint16_t> live_ports() const;
  /// After load: how many distinct recorded peers of T there are (replayed from address + i).
  [[nodiscard]] std::size_t peer_count() const noexcept;

  struct state;  // replay_engine.cpp

 private:
  std::unique_ptr<state> s_;
};

/// Our ISN for flow `index` under `seed` (splitmix64): what engine uses, for tests.
[[nodiscard]] std::uint32_t isn_for(std::uint64_t seed, std::uint64_t index) noexcept;

/// Parses "A:B" (a recorded port and the live one).
bool parse_port_map(const std::string& text, std::uint16_t& from, std::uint16_t& to);

}  // namespace dpdk_net::replay
