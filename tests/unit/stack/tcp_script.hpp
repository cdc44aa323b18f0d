// A packetdrill-style script fixture for the TCP engine, packet by packet in virtual time:
//
//   at(0);   inject({.flags = "S", .seq = 0, .win = 65535, .mss = 1460, .ws = 7, .ts = present});
//            expect({.flags = "S.", .seq = 0, .ack = 1, .mss = 1460, .ws = 3, .tsecr = ...});
//   at(100); inject({.flags = ".", .seq = 1, .ack = 1});
//   at(300); expect({.flags = ".", .seq = 1, .ack = 1, .len = 1460});   // a retransmission
//
// The fixture owns a stack (198.18.0.1/24, MTU 1500) that knows the peer's MAC, so no ARP gets in
// the way (ARP requests the stack sends later are answered by the fixture, like a live peer).
// The peer is 198.18.0.2; its segments are built here and fed to stack::receive.
//
// Sequence numbers in a `seg` are relative, as in packetdrill: in inject(), seq is relative to the
// peer's ISN (the test picks it: peer_isn(), so it can sit just below 2^32) and ack to ours; in
// expect(), seq is relative to our ISN (captured from our SYN or SYN-ACK) and ack to the peer's.
// Arithmetic is modulo 2^32, so relative numbers work across the wrap.
//
// Flags are tcpdump's letters: S SYN, F FIN, R RST, P PSH, U URG, '.' ACK. expect() checks flags
// exactly, except PSH (checked only when the spec has 'P': when to push is the sender's choice);
// '*' in an expected spec means "ACK either way".
//
// Time: at(ms) moves the virtual clock (ms since the script's start) and runs the stack's timers.
// Output is generated lazily (the stack's egress is pull-based): inject() does not drain, so two
// injects in a row can be answered by one coalesced ACK; expect()/expect_nothing() drain at the
// current time, and at() drains at the old time before moving the clock.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <source_location>
#include <string>
#include <vector>

#include "dpdk_net/stack/stack.hpp"
#include "dpdk_net/stack/tcp.hpp"
#include "dpdk_net/wire/frame.hpp"
#include "dpdk_net/wire/ipv4_address.hpp"
#include "dpdk_net/wire/tcp.hpp"

// Scripts spell segments as designated initializers that leave most fields out on purpose (a
// field left out is "not checked" / "the default"); GCC 12 warns about each one.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace dpdk_net::stack::script {

using wire::ipv4_address;
using socket_id = tcp_layer::socket_id;
using where = std::source_location;

inline const mac_address our_mac{{0x02, 0, 0, 0, 0, 0x01}};
inline const mac_address peer_mac{{0x02, 0, 0, 0, 0, 0x02}};
inline const ipv4_address our_ip = ipv4_address::from_octets(198, 18, 0, 1);
inline const ipv4_address peer_ip = ipv4_address::from_octets(198, 18, 0, 2);

struct absent_t {};
inline constexpr absent_t absent{};
struct present_t {};
inline constexpr present_t present{};

/// An option in a segment spec: unspecified (inject: not sent; expect: not checked), absent
/// (expect: must not be there), present (inject: sent with automatic values; expect: must be
/// there, any value) or a value.
template <class T>
struct option_spec {
  enum class mode : std::uint8_t { unspecified, is_absent, is_present, equal };
  mode how = mode::unspecified;
  T value{};
  option_spec() = default;
  option_spec(absent_t) : how(mode::is_absent) {}    // NOLINT(google-explicit-constructor)
  option_spec(present_t) : how(mode::is_present) {}  // NOLINT(google-explicit-constructor)
  template <class U>
  requires std::is_arithmetic_v<U> option_spec(U v)  // NOLINT(google-explicit-constructor)
      : how(mode::equal), value(static_cast<T>(v)) {}
  option_spec(wire::tcp_timestamps v)  // NOLINT(google-explicit-constructor)
      requires std::is_same_v<T, wire::tcp_timestamps> : how(mode::equal),
                                                         value(v) {}
  [[nodiscard]] bool specified() const noexcept { return how != mode::unspecified; }
};

[[nodiscard]] inline wire::tcp_timestamps tsopt(std::uint32_t val, std::uint32_t ecr) {
  return {val, ecr};
}

/// One segment, to inject or to expect. Designated initializers must follow this order.
struct seg {
  const char* flags = ".";
  std::optional<std::uint32_t> seq;  ///< relative (see above); inject default: the peer's next
  std::optional<std::uint32_t> ack;  ///< relative; inject default: our highest seen (if '.')
  std::optional<std::uint16_t> win;  ///< the raw field; inject default: 65535
  option_spec<std::uint16_t> mss;
  option_spec<std::uint8_t> ws;
  /// inject: default on a connection that negotiated timestamps: {peer clock, our last TSval}.
  option_spec<wire::tcp_timestamps> ts;
  std::optional<std::uint32_t> tsecr;  ///< expect: the TSecr (our TSval is ours to choose)
  std::string data;                    ///< payload bytes
  /// inject: that many bytes of the peer's stream pattern (used when data is empty);
  /// expect: the payload length (default 0 unless data is given).
  std::optional<std::size_t> len;
  std::uint16_t urp = 0;   ///< inject: the urgent pointer
  std::uint16_t port = 0;  ///< the peer's port; 0: the current flow's (peer_port())
};

/// A segment we sent, parsed (checksums verified) and placed in its flow.
struct observed {
  bool valid = false;
  time_ns at = 0;  ///< script time (ns since the start)
  wire::ipv4_header ip{};
  wire::tcp_header tcp{};
  std::vector<std::byte> payload;
  std::uint32_t rel_seq = 0;  ///< relative to our ISN
  std::uint32_t rel_ack = 0;  ///< relative to the peer's ISN
  [[nodiscard]] bool has(std::uint8_t f) const noexcept { return tcp.has(f); }
  [[nodiscard]] std::size_t len() const noexcept { return payload.size(); }
  [[nodiscard]] std::string text() const {
    return {reinterpret_cast<const char*>(payload.data()), payload.size()};
  }
  [[nodiscard]] std::uint32_t tsval() const noexcept {
    return tcp.options.timestamps ? tcp.options.timestamps->value : 0;
  }
  [[nodiscard]] std::string str() const;
};

/// The byte at `offset` of a test stream (so receivers can verify what they got).
[[nodiscard]] inline char stream_byte(std::uint64_t offset) noexcept {
  return static_cast<char>('a' + static_cast<int>(offset % 26U));
}
[[nodiscard]] std::string stream_bytes(std::uint64_t offset, std::size_t n);

/// What the peer offers in its SYN (or SYN-ACK) in the handshake helpers.
struct peer_syn {
  std::optional<std::uint16_t> mss = 1460;
  std::optional<std::uint8_t> ws = 7;
  bool ts = true;
  std::uint16_t win = 65535;
};

class TcpScript : public ::testing::Test {
 protected:
  TcpScript();
  ~TcpScript() override;

  // --- setup (before the first use of st()) ---------------------------------------------
  stack_config cfg_;  ///< tweak cfg_.tcp here; the stack is made on first use
  stack& st();
  tcp_layer& tcp() { return st().tcp(); }

  // --- time -------------------------------------------------------------------------------
  /// Moves the clock to `ms` after the start (never backwards) like an event loop would: every
  /// deadline on the way runs at its own time and its output is drained then (so segments carry
  /// the time they were really sent); then the clock stops at `ms`.
  void at(std::uint64_t ms, where w = where::current());
  void at_ns(time_ns t, where w = where::current());
  [[nodiscard]] std::uint64_t now_ms() const noexcept { return now_ / millisecond; }
  [[nodiscard]] time_ns now() const noexcept { return base_ + now_; }
  /// Steps the clock to each of the stack's deadlines until a segment comes out or `limit_ms`
  /// (script time) passes; returns it (valid=false if none).
  observed run_until_segment(std::uint64_t limit_ms, where w = where::current());

  // --- the peer ---------------------------------------------------------------------------
  void inject(const seg& s, where w = where::current());
  /// The same segment, sent as two IPv4 fragments (the first carrying `first` bytes of the TCP
  /// segment, a multiple of 8), second fragment first when `reversed`.
  void inject_fragmented(const seg& s, std::size_t first, bool reversed = false,
                         where w = where::current());
  /// An ICMP error from the peer (or from `from`) quoting a segment of ours on the current flow
  /// with relative sequence number `quoted_rel_seq`.
  void inject_icmp(std::uint8_t type, std::uint8_t code, std::uint32_t quoted_rel_seq,
                   std::uint16_t mtu = 0, std::optional<ipv4_address> from = std::nullopt,
                   std::uint16_t port = 0);
  /// The peer's ISN for flows created from now on (and the current flow if it saw no SYN yet).
  void peer_isn(std::uint32_t isn);
  [[nodiscard]] std::uint32_t peer_isn_of(std::uint16_t port = 0);
  /// The peer's timestamp clock: TSval = base + script ms.
  void peer_ts_base(std::uint32_t base) { peer_ts_base_ = base; }
  [[nodiscard]] std::uint32_t peer_tsval() const noexcept {
    return peer_ts_base_ + static_cast<std::uint32_t>(now_ms());
  }
  /// Forgets a flow (a new incarnation of the same ports: new ISNs on both sides).
  void new_flow(std::uint16_t port, std::uint32_t peer_isn);
  /// The current flow (peer port) used when a seg says port 0.
  void use_port(std::uint16_t p) { peer_port_ = p; }
  [[nodiscard]] std::uint16_t peer_port() const noexcept { return peer_port_; }
  [[nodiscard]] std::uint16_t our_port(std::uint16_t port = 0);
  [[nodiscard]] std::uint32_t our_isn(std::uint16_t port = 0);
  /// Our last TSval seen on a flow (what the peer echoes).
  [[nodiscard]] std::uint32_t our_tsval(std::uint16_t port = 0);

  // --- what we sent -----------------------------------------------------------------------
  /// The next segment we sent must match s (fields left unset are not checked).
  observed expect(const seg& s, where w = where::current());
  /// Nothing (TCP) was sent.
  void expect_nothing(where w = where::current());
  /// Takes every segment sent so far (no checks).
  std::vector<observed> drain();
  /// Non-TCP frames we sent (ICMP, ...), decoded; ARP is answered and not listed.
  std::vector<wire::decoded_frame> others();

  // --- the API ----------------------------------------------------------------------------
  socket_id listen(std::uint16_t port = 8080, std::uint32_t backlog = 16,
                   where w = where::current());
  socket_id accept_one(socket_id listener, where w = where::current());
  socket_id connect(std::uint16_t remote_port = 80, where w = where::current());
  std::size_t send(socket_id id, const std::string& data, where w = where::current());
  /// Sends n bytes of the stream pattern (continuing from what this socket sent before).
  std::size_t send_stream(socket_id id, std::size_t n, where w = where::current());
  /// Reads everything readable now.
  std::string read(socket_id id);
  /// Events handed out for id since the last call (poll_events, coalesced here).
  std::uint8_t events(socket_id id);
  [[nodiscard]] tcp_info info(socket_id id, where w = where::current());
  [[nodiscard]] tcp_state state(socket_id id);

  // --- whole handshakes -------------------------------------------------------------------
  /// listen (once) on 8080, SYN from the current port, SYN-ACK, `rtt_ms` later the ACK; accepts.
  socket_id passive_open(peer_syn p = {}, std::uint64_t rtt_ms = 100, where w = where::current());
  /// connect to port 80, SYN, `rtt_ms` later SYN-ACK, our ACK. Sets the current port to 80.
  socket_id active_open(peer_syn p = {}, std::uint64_t rtt_ms = 100, where w = where::current());

 private:
  struct flow {
    std::uint16_t our_port = 8080;
    std::uint32_t peer_isn = 0;
    std::uint32_t our_isn = 0;
    bool our_isn_known = false;
    std::uint32_t peer_next = 0;  // relative: the peer's next sequence number
    std::uint32_t our_next = 0;   // relative: the highest end of our segments seen
    bool peer_offered_ts = false, we_offered_ts = false;
    std::uint32_t our_tsval = 0;
    std::uint64_t sent_stream = 0;  // peer stream bytes injected (for .len)
  };
  flow& flow_for(std::uint16_t port);
  void pull(where w);
  void note(observed& o);
  void answer_arp(const wire::decoded_frame& d);
  std::vector<std::byte> build_segment(const seg& s, flow& f, std::uint16_t port);
  void deliver_ip(std::uint8_t protocol, std::span<const std::byte> l4, ipv4_address src);

  packet_pool pool_;
  std::optional<stack> st_;
  time_ns base_ = second;  // the stack's clock at script time 0
  time_ns now_ = 0;        // script time
  std::uint32_t default_peer_isn_ = 1000000;
  std::uint32_t peer_ts_base_ = 5000;
  std::uint16_t peer_port_ = 40000;
  std::uint16_t listen_port_ = 0;
  socket_id listener_ = tcp_layer::invalid_socket;
  std::map<std::uint16_t, flow> flows_;
  std::deque<observed> out_;
  std::vector<wire::decoded_frame> others_;
  std::vector<std::vector<std::byte>> other_frames_;  // storage behind others_' spans
  std::map<socket_id, std::uint8_t> events_;
  std::map<socket_id, std::uint64_t> sent_stream_;
};

namespace detail {
/// parse_flags' marker for '*' (ACK either way): a bit we never send (CWR).
inline constexpr std::uint8_t ack_dont_care = 0x80;
/// Drains the stack's output (egress is generated at drain time, so it takes the time).
inline std::size_t drain_stack(stack& s, std::span<packet> out, time_ns now) {
  return s.drain_tx(out, now);
}
[[nodiscard]] inline bool seq_after(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) > 0;
}
}  // namespace detail

/// A flags spec ("S.", "R", "F.") as tcp_flag bits (plus detail::ack_dont_care for '*').
[[nodiscard]] std::uint8_t parse_flags(const char* spec);
[[nodiscard]] std::string flags_string(std::uint8_t flags);

}  // namespace dpdk_net::stack::script
