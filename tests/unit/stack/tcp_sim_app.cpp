#include "tcp_sim_app.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "dpdk_net/wire/ipv4.hpp"

namespace dpdk_net::stack::test {

namespace {
namespace tcp_sim_app {

std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31U);
}

bool is(const std::error_code& e, std::errc v) noexcept {
  return e == std::make_error_code(v);
}

}  // namespace tcp_sim_app
}  // namespace

// --- stream_generator ------------------------------------------------------------------------

std::uint64_t stream_generator::word(std::uint64_t index) const noexcept {
  return tcp_sim_app::splitmix64(seed_ * 0x2545f4914f6cdd1dULL + index);
}

void stream_generator::fill(std::uint64_t offset, std::span<std::byte> out) const noexcept {
  std::size_t i = 0;
  while (i < out.size()) {
    if ((offset + i) % 8 == 0 && out.size() - i >= 8) {
      // Whole words, in the byte order below (the common case, kept cheap).
      const std::uint64_t w = word((offset + i) / 8);
      for (unsigned k = 0; k < 8; ++k) {
        out[i + k] = static_cast<std::byte>(w >> (8U * k));
      }
      i += 8;
      continue;
    }
    const std::uint64_t at = offset + i;
    const std::uint64_t w = word(at / 8);
    const auto first = static_cast<unsigned>(at % 8);
    const std::size_t take = std::min<std::size_t>(8 - first, out.size() - i);
    for (std::size_t k = 0; k < take; ++k) {
      out[i + k] = static_cast<std::byte>(w >> (8U * (first + k)));
    }
    i += take;
  }
}

std::optional<std::uint64_t> stream_generator::mismatch(
    std::uint64_t offset, std::span<const std::byte> data) const noexcept {
  std::array<std::byte, 512> expected{};
  for (std::size_t done = 0; done < data.size(); done += expected.size()) {
    const std::size_t n = std::min(expected.size(), data.size() - done);
    fill(offset + done, std::span(expected.data(), n));
    if (std::memcmp(expected.data(), data.data() + done, n) != 0) {
      for (std::size_t k = 0; k < n; ++k) {
        if (expected[k] != data[done + k]) {
          return offset + done + k;
        }
      }
    }
  }
  return std::nullopt;
}

void fnv1a64::update(std::span<const std::byte> data) noexcept {
  for (const std::byte b : data) {
    h_ = (h_ ^ static_cast<std::uint8_t>(b)) * 0x100000001b3ULL;
  }
}

std::string stream_record::describe() const {
  std::ostringstream s;
  s << "socket " << socket << ": sent " << sent;
  if (!role.echo) {
    s << "/" << role.send_bytes;
  }
  s << " received " << received;
  if (role.expect_seed) {
    s << "/" << role.expect_bytes;
  }
  s << (connected ? " connected" : " never connected") << (shutdown_sent ? " shut-down" : "")
    << (end_of_stream ? " end-of-stream" : "") << (closed_event ? " closed-event" : "")
    << (lost ? " lost-in-crash" : "");
  if (first_mismatch) {
    s << " FIRST MISMATCH AT " << *first_mismatch;
  }
  if (error) {
    s << " error " << error.message() << " at " << failed_at << " ns";
  }
  if (complete()) {
    s << " complete at " << done_at << " ns";
  }
  return s.str();
}

// --- tcp_app --------------------------------------------------------------------------------

tcp_app::tcp_app(sim::host& h, sim::sim_nic& nic, stack_config config, tcp_app_options options)
    : stack_host(h, nic, std::move(config)),
      options_(options),
      io_(options.io_chunk),
      expected_(options.io_chunk) {}

void tcp_app::problem(const std::string& what) {
  if (problems.size() < 20) {
    problems.push_back(sim_host().name() + ": " + what);
  }
}

void tcp_app::listen(std::uint16_t port, const stream_role& role, std::uint32_t backlog) {
  listen_port_ = port;
  listen_role_ = role;
  backlog_ = backlog;
  tcp_layer::socket_id id = tcp_layer::invalid_socket;
  if (const std::error_code e = tcp().open(id)) {
    problem("open a listener: " + e.message());
    return;
  }
  if (const std::error_code e = tcp().set_options(id, options_.socket)) {
    problem("set_options on the listener: " + e.message());
  }
  if (const std::error_code e = tcp().bind(id, port)) {
    problem("bind " + std::to_string(port) + ": " + e.message());
    return;
  }
  if (const std::error_code e = tcp().listen(id, backlog)) {
    problem("listen: " + e.message());
    return;
  }
  listener_ = id;
}

std::size_t tcp_app::connect(tcp_endpoint remote, const stream_role& role) {
  const time_ns now = this->now();
  stream_record r;
  r.role = role;
  r.started_at = global_now();
  const std::size_t index = records_.size();
  tcp_layer::socket_id id = tcp_layer::invalid_socket;
  std::error_code e = tcp().open(id);
  if (!e) {
    r.socket = id;
    if (const std::error_code o = tcp().set_options(id, options_.socket)) {
      problem("set_options before connect: " + o.message());
    }
    e = tcp().connect(id, remote, now);
  }
  records_.push_back(r);
  if (e) {
    fail(records_.back(), e);
    if (id != tcp_layer::invalid_socket) {
      (void)tcp().close(id, now);
    }
  } else {
    live_.emplace(id, index);
  }
  pump();  // the SYN goes now
  return index;
}

void tcp_app::on_pump(time_ns now) {
  std::array<socket_event, 64> events{};
  for (int round = 0;; ++round) {
    const std::size_t n = ip().poll_events(events);
    if (n == 0) {
      break;
    }
    if (round == 100'000) {
      problem("event storm: poll_events never runs dry");
      break;
    }
    for (std::size_t i = 0; i < n; ++i) {
      ++events_seen_;
      if (events[i].protocol == wire::ip_protocol::tcp) {
        handle(events[i], now);
      }
    }
  }
}

void tcp_app::on_restart() {
  // The crash took every connection with the host's memory: the records stay, marked.
  for (const auto& [id, index] : live_) {
    records_[index].lost = true;
    ++lost_in_crash_;
  }
  live_.clear();
  echo_.clear();
  listener_ = tcp_layer::invalid_socket;
  if (listen_port_) {
    listen(*listen_port_, listen_role_, backlog_);
  }
  stack_host::on_restart();
}

void tcp_app::handle(const socket_event& e, time_ns now) {
  if (e.socket == listener_) {
    if ((e.events & socket_events::acceptable) != 0) {
      accept_all(e.socket, now);
    }
    if ((e.events & socket_events::error) != 0) {
      problem("the listener failed: " + tcp().error(e.socket).message());
    }
    return;
  }
  const auto it = live_.find(e.socket);
  if (it == live_.end()) {
    return;  // events queued before we closed the id: harmless (the id is refused now)
  }
  const std::size_t index = it->second;
  stream_record& r = records_[index];
  if ((e.events & socket_events::connected) != 0 && !r.connected) {
    r.connected = true;
    r.connected_at = global_now();
  }
  if ((e.events & socket_events::closed) != 0) {
    r.closed_event = true;
  }
  if ((e.events & socket_events::error) != 0) {
    const std::error_code why = tcp().error(e.socket);
    if (!why) {
      problem("an error event, but error(id) is empty: " + r.describe());
    }
    fail(r, why ? why : std::make_error_code(std::errc::io_error));
  }
  service(index, now);
}

void tcp_app::accept_all(tcp_layer::socket_id listener, time_ns now) {
  for (;;) {
    tcp_layer::socket_id id = tcp_layer::invalid_socket;
    const std::error_code e = tcp().accept(listener, id);
    if (tcp_sim_app::is(e, std::errc::resource_unavailable_try_again)) {
      return;
    }
    if (e) {
      problem("accept: " + e.message());
      return;
    }
    // Accepted sockets play the listener's role, with this app's options (buffers unchanged:
    // they cannot change once connected).
    tcp_socket_options o = options_.socket;
    const tcp_socket_options current = tcp().options(id);
    o.send_buffer = current.send_buffer;
    o.receive_buffer = current.receive_buffer;
    if (const std::error_code oe = tcp().set_options(id, o)) {
      problem("set_options on an accepted socket: " + oe.message());
    }
    stream_record r;
    r.socket = id;
    r.role = listen_role_;
    r.connected = true;
    r.started_at = r.connected_at = global_now();
    const std::size_t index = records_.size();
    records_.push_back(r);
    live_.emplace(id, index);
    service(index, now);  // data may have arrived with the handshake's last ACK
  }
}

void tcp_app::fail(stream_record& r, std::error_code e) {
  if (!r.error) {
    r.error = e;
    r.failed_at = global_now();
  }
}

void tcp_app::service(std::size_t index, time_ns now) {
  stream_record& r = records_[index];
  while (!r.error) {
    const bool read = r.connected && read_some(r, now);
    const bool wrote = r.connected && write_some(r, now);
    if (!read && !wrote) {
      break;
    }
  }
  if (r.complete() && r.done_at == 0) {
    r.done_at = global_now();
  }
  if (r.finished()) {
    // Done (or failed): release the id. A graceful close finishes in the background.
    if (const std::error_code e = tcp().close(r.socket, now)) {
      problem("close: " + e.message());
    }
    live_.erase(r.socket);
    echo_.erase(index);
  }
}

bool tcp_app::read_some(stream_record& r, time_ns /*now*/) {
  bool progress = false;
  const std::size_t index = static_cast<std::size_t>(&r - records_.data());
  while (!r.end_of_stream && !r.error) {
    std::span<std::byte> into(io_);
    echo_queue* echo = nullptr;
    if (r.role.echo) {
      echo = &echo_[index];
      const std::size_t room =
          options_.echo_buffer > echo->size() ? options_.echo_buffer - echo->size() : 0;
      if (room == 0) {
        break;  // wait until the peer takes some of what we owe it (`writable`)
      }
      into = into.first(std::min(room, into.size()));
    }
    const io_result got = tcp().receive(r.socket, into);
    if (got.bytes > into.size()) {
      problem("receive returned more bytes than asked for");
      fail(r, std::make_error_code(std::errc::io_error));
      return false;
    }
    if (got.bytes > 0) {
      const auto data = std::span<const std::byte>(into.data(), got.bytes);
      r.received_hash.update(data);
      if (r.role.expect_seed && !r.first_mismatch) {
        const stream_generator expected(*r.role.expect_seed);
        if (r.received + got.bytes > r.role.expect_bytes) {
          r.first_mismatch = std::max(r.received, r.role.expect_bytes);  // more than was sent
        }
        const std::uint64_t in_range =
            r.received >= r.role.expect_bytes
                ? 0
                : std::min<std::uint64_t>(got.bytes, r.role.expect_bytes - r.received);
        if (const auto at = expected.mismatch(r.received, data.first(in_range))) {
          r.first_mismatch = *at;
        }
      }
      r.received += got.bytes;
      if (echo != nullptr) {
        if (echo->head > options_.echo_buffer) {
          echo->bytes.erase(echo->bytes.begin(),
                            echo->bytes.begin() + static_cast<std::ptrdiff_t>(echo->head));
          echo->head = 0;
        }
        echo->bytes.insert(echo->bytes.end(), data.begin(), data.end());
      }
      progress = true;
      continue;
    }
    if (tcp_sim_app::is(got.error, std::errc::resource_unavailable_try_again)) {
      break;
    }
    if (got.error == make_error_code(tcp_errc::end_of_stream)) {
      r.end_of_stream = true;
      progress = true;
      break;
    }
    if (!got.error) {
      problem("receive returned 0 bytes and no reason");
    }
    fail(r, got.error ? got.error : std::make_error_code(std::errc::io_error));
    break;
  }
  return progress;
}

bool tcp_app::write_some(stream_record& r, time_ns now) {
  if (r.shutdown_sent || r.error) {
    return false;
  }
  bool progress = false;
  const std::size_t index = static_cast<std::size_t>(&r - records_.data());
  auto sent = [&](std::span<const std::byte> data) {
    r.sent_hash.update(data);
    r.sent += data.size();
    progress = true;
  };
  auto refused = [&](const io_result& res) {
    if (tcp_sim_app::is(res.error, std::errc::resource_unavailable_try_again)) {
      return true;  // full: wait for `writable`
    }
    if (!res.error) {
      problem("send took 0 bytes and gave no reason");
    }
    fail(r, res.error ? res.error : std::make_error_code(std::errc::io_error));
    return true;
  };
  bool all_handed_over = false;
  if (r.role.echo) {
    echo_queue& echo = echo_[index];
    while (echo.size() != 0) {
      const auto pending = std::span<const std::byte>(echo.bytes).subspan(echo.head);
      const io_result res = tcp().send(r.socket, pending);
      if (res.bytes == 0 && refused(res)) {
        break;
      }
      sent(pending.first(std::min(res.bytes, pending.size())));
      echo.head += std::min(res.bytes, pending.size());
    }
    all_handed_over = r.end_of_stream && echo.size() == 0;
  } else {
    const stream_generator source(r.role.send_seed);
    while (r.sent < r.role.send_bytes && !r.error) {
      // No more than the stack takes now (at least one byte, to hear try_again): generating a
      // whole chunk for a send that takes a few bytes would cost more than the stack does.
      const std::size_t room = std::max<std::size_t>(tcp().writable_bytes(r.socket), 1);
      const auto n = static_cast<std::size_t>(
          std::min<std::uint64_t>(std::min(io_.size(), room), r.role.send_bytes - r.sent));
      const auto chunk = std::span(io_).first(n);
      source.fill(r.sent, chunk);
      const io_result res = tcp().send(r.socket, chunk);
      if (res.bytes == 0 && refused(res)) {
        break;
      }
      if (res.bytes > n) {
        problem("send took more bytes than offered");
      }
      sent(std::span<const std::byte>(chunk).first(std::min(res.bytes, n)));
    }
    // A side with nothing to send (a sink) closes its half when the peer has finished, not at
    // once: it stays ESTABLISHED while it receives, as a request/response server would.
    all_handed_over = r.sent == r.role.send_bytes && (r.role.send_bytes != 0 || r.end_of_stream);
  }
  if (all_handed_over && !r.error) {
    if (const std::error_code e = tcp().shutdown(r.socket, shutdown_type::send, now)) {
      fail(r, e);
    } else {
      r.shutdown_sent = true;
      progress = true;
    }
  }
  return progress;
}

// --- run_transfer ---------------------------------------------------------------------------

std::string transfer_outcome::describe() const {
  std::ostringstream s;
  s << (finished ? "finished" : "NOT FINISHED (hung)") << " at " << finished_at << " ns, "
    << (settled ? "settled" : "NOT SETTLED") << " (connections left: client " << client_connections
    << ", server " << server_connections << "), midway at " << midway_at << " ns, " << events
    << " events\n";
  for (const stream_record& r : client) {
    s << "  client " << r.describe() << "\n";
  }
  for (const stream_record& r : server) {
    s << "  server " << r.describe() << "\n";
  }
  auto counters = [&s](const char* who, const tcp_counters& k) {
    s << "  " << who << " tcp: out " << k.segments_out << " in " << k.segments_in << " rtx "
      << k.retransmits << " rto " << k.rto_expirations << " fast " << k.fast_retransmits
      << " dupacks " << k.duplicate_acks << " resets in/out " << k.resets_received << "/"
      << k.resets_sent << " timeouts " << k.timeouts << " keepalives " << k.keepalives_sent
      << " probes " << k.window_probes << " not-acceptable " << k.not_acceptable << " ack-too-new "
      << k.ack_too_new << " ooo " << k.out_of_order << "/" << k.out_of_order_dropped
      << " arp-waits " << k.waiting_for_arp << "\n";
  };
  counters("client", client_tcp);
  counters("server", server_tcp);
  for (const std::string& p : problems) {
    s << "  PROBLEM " << p << "\n";
  }
  return s.str();
}

namespace {
namespace tcp_sim_app {

bool all_finished(const tcp_app& client, const tcp_app& server) {
  if (client.records().empty()) {
    return false;
  }
  for (const tcp_app* app : {&client, &server}) {
    if (app->sim_host().status() == sim::host::state::crashed) {
      continue;  // down for good (or until the test restarts it): its connections are gone
    }
    for (const stream_record& r : app->records()) {
      if (!r.lost && !r.finished()) {
        return false;
      }
    }
  }
  // The server must have seen the connection, unless the client's failed or it crashed.
  return !server.records().empty() || static_cast<bool>(client.records().front().error) ||
         server.lost_in_crash() != 0;
}

}  // namespace tcp_sim_app
}  // namespace

transfer_outcome run_transfer(std::uint64_t seed, const transfer_spec& spec) {
  transfer_outcome out;
  sim::network net(seed);
  sim::host& ch = net.add_host("client");
  sim::host& sh = net.add_host("server");
  sim::sim_nic& cn = net.add_nic(ch, spec.nic);
  sim::sim_nic& sn = net.add_nic(sh, spec.nic);
  net.connect(cn, sn, spec.to_server, spec.to_client);
  // DPDK_NET_TCP_SIM_PCAP_DIR=dir: every run writes its pcaps there (rerun a failing seed with it
  // set to look at the traffic; the last run of the process wins).
  const char* debug_dir = std::getenv("DPDK_NET_TCP_SIM_PCAP_DIR");
  const std::string pcap_dir =
      !spec.pcap_dir.empty() ? spec.pcap_dir : (debug_dir != nullptr ? debug_dir : "");
  if (!pcap_dir.empty()) {
    std::string error;
    if (!net.capture(cn, pcap_dir + "/client.pcap", error) ||
        !net.capture(sn, pcap_dir + "/server.pcap", error)) {
      out.problems.push_back("capture: " + error);
    }
  }
  const auto client_ip = wire::ipv4_address::from_octets(198, 18, 0, 1);
  const auto server_ip = wire::ipv4_address::from_octets(198, 18, 0, 2);
  auto config = [&spec](wire::ipv4_address a) {
    stack_config c;
    c.address = a;
    c.tcp = spec.tcp;
    return c;
  };
  tcp_app client(ch, cn, config(client_ip), spec.client);
  tcp_app server(sh, sn, config(server_ip), spec.server);

  stream_role client_role;
  stream_role server_role;
  client_role.send_bytes = spec.bytes;
  client_role.send_seed = client_stream_seed;
  server_role.expect_seed = client_stream_seed;
  server_role.expect_bytes = spec.bytes;
  switch (spec.what) {
    case transfer_spec::pattern::upload:
      break;
    case transfer_spec::pattern::echo:
      server_role.echo = true;
      client_role.expect_seed = client_stream_seed;
      client_role.expect_bytes = spec.bytes;
      break;
    case transfer_spec::pattern::both:
      server_role.send_bytes = spec.bytes;
      server_role.send_seed = server_stream_seed;
      client_role.expect_seed = server_stream_seed;
      client_role.expect_bytes = spec.bytes;
      break;
  }
  server.listen(transfer_port, server_role);
  client.connect(tcp_endpoint{server_ip, transfer_port}, client_role);

  const time_ns give_up = net.now() + spec.give_up;
  if (spec.midway) {
    const std::uint64_t half = spec.bytes / 2;
    net.run_until(
        [&] {
          return tcp_sim_app::all_finished(client, server) ||
                 (!server.records().empty() && server.records().front().received >= half);
        },
        give_up);
    if (!tcp_sim_app::all_finished(client, server) && net.now() < give_up) {
      out.midway_at = net.now();
      spec.midway(net, client, server);
    }
  }
  out.finished = net.run_until([&] { return tcp_sim_app::all_finished(client, server); }, give_up);
  out.finished_at = net.now();
  if (out.finished) {
    out.settled = net.run_until(
        [&] {
          auto released = [](tcp_app& app) {
            return app.sim_host().status() == sim::host::state::crashed ||
                   app.tcp().connections() == 0;
          };
          return released(client) && released(server);
        },
        net.now() + spec.settle);
  }
  if (spec.at_end) {
    spec.at_end(net, client, server);
  }
  out.client = client.records();
  out.server = server.records();
  out.client_lost_in_crash = client.lost_in_crash();
  out.server_lost_in_crash = server.lost_in_crash();
  out.problems.insert(out.problems.end(), client.problems.begin(), client.problems.end());
  out.problems.insert(out.problems.end(), server.problems.begin(), server.problems.end());
  out.client_tcp = client.tcp().counters();
  out.server_tcp = server.tcp().counters();
  out.client_connections = client.tcp().connections();
  out.server_connections = server.tcp().connections();
  out.trace_hash = net.trace_hash();
  out.event_log_hash = net.event_log_hash();
  out.events = net.events().events_run();
  return out;
}

}  // namespace dpdk_net::stack::test
