#include "tcp_rr_app.hpp"

#include <algorithm>
#include <cstring>
#include <system_error>

namespace dpdk_net::stack::test {

namespace {
namespace tcp_rr_app {

const auto client_ip = wire::ipv4_address::from_octets(198, 18, 0, 1);
const auto server_ip = wire::ipv4_address::from_octets(198, 18, 0, 2);

bool is(std::error_code e, std::errc c) {
  return e == std::make_error_code(c);
}

std::array<std::byte, 8> tag_bytes(std::uint64_t tag) {
  std::array<std::byte, 8> b{};
  for (std::size_t i = 0; i < b.size(); ++i) {
    b[i] = static_cast<std::byte>(tag >> (8 * i));
  }
  return b;
}

// Copies the part of [offset, offset + data.size()) that falls in the first 8 bytes.
void capture_tag(std::array<std::byte, 8>& tag, std::uint32_t offset,
                 std::span<const std::byte> data) {
  for (std::size_t i = 0; offset + i < tag.size() && i < data.size(); ++i) {
    tag[offset + i] = data[i];
  }
}

}  // namespace tcp_rr_app
}  // namespace

stack_config rr_stack_config(wire::ipv4_address address, const rr_setup& setup) {
  stack_config c;
  c.address = address;
  c.tcp = setup.tcp;
  c.tcp.sockets = setup.connections + 16;
  c.tcp.max_backlog = static_cast<std::uint32_t>(setup.connections + 16);
  // No ARP re-verification in the middle of a run: a cost comparison between two runs of
  // different lengths must not catch it in one and not the other.
  c.arp.reachable_time = 3600 * second;
  return c;
}

// --- server ---------------------------------------------------------------------------------

rr_server::rr_server(sim::host& h, sim::sim_nic& nic, stack_config config, const rr_setup& setup)
    : stack_host(h, nic, std::move(config)),
      setup_(setup),
      in_(std::max<std::size_t>(setup.request_bytes, 2048)),
      out_(setup.response_bytes) {
  conns_.reserve(setup.connections);
  index_.reserve(setup.connections);
  if (const std::error_code e = tcp().open(listener_)) {
    problems.add("server: open: " + e.message());
    return;
  }
  if (const std::error_code e = tcp().bind(listener_, rr_port)) {
    problems.add("server: bind: " + e.message());
  }
  if (const std::error_code e =
          tcp().listen(listener_, static_cast<std::uint32_t>(setup.connections + 16))) {
    problems.add("server: listen: " + e.message());
  }
  for (std::size_t i = 8; i < out_.size(); ++i) {
    out_[i] = static_cast<std::byte>(i);
  }
}

void rr_server::on_pump(time_ns /*now*/) {
  std::array<socket_event, 64> events{};
  std::size_t n = 0;
  while ((n = ip().poll_events(events)) != 0) {
    for (std::size_t i = 0; i < n; ++i) {
      const socket_event& e = events[i];
      if (e.protocol != wire::ip_protocol::tcp) {
        continue;
      }
      if (e.socket == listener_) {
        tcp_layer::socket_id id = tcp_layer::invalid_socket;
        std::error_code err;
        while (!(err = tcp().accept(listener_, id))) {
          index_.emplace(id, static_cast<std::uint32_t>(conns_.size()));
          conns_.push_back(conn{id});
          serve(conns_.back());  // a request may have come with the handshake's last ACK
        }
        if (!tcp_rr_app::is(err, std::errc::resource_unavailable_try_again)) {
          problems.add("server: accept: " + err.message());
        }
        continue;
      }
      const auto it = index_.find(e.socket);
      if (it == index_.end()) {
        problems.add("server: an event for a socket it never accepted");
        continue;
      }
      if ((e.events & (socket_events::error | socket_events::closed)) != 0) {
        problems.add("server: connection failed: " + tcp().error(e.socket).message());
        continue;
      }
      if ((e.events & socket_events::readable) != 0) {
        serve(conns_[it->second]);
      }
    }
  }
}

void rr_server::serve(conn& c) {
  for (;;) {
    const std::size_t want = setup_.request_bytes - c.got;
    const io_result r = tcp().receive(c.id, std::span(in_).first(want));
    if (r.bytes == 0) {
      if (r.error && !tcp_rr_app::is(r.error, std::errc::resource_unavailable_try_again)) {
        problems.add("server: receive: " + r.error.message());
      }
      return;
    }
    tcp_rr_app::capture_tag(c.tag, c.got, std::span(in_).first(r.bytes));
    c.got += static_cast<std::uint32_t>(r.bytes);
    if (c.got < setup_.request_bytes) {
      continue;
    }
    c.got = 0;
    std::memcpy(out_.data(), c.tag.data(), std::min<std::size_t>(8, out_.size()));
    const io_result s = tcp().send(c.id, out_);
    if (s.bytes != out_.size()) {
      problems.add("server: send took " + std::to_string(s.bytes) + " of " +
                   std::to_string(out_.size()) + ": " + s.error.message());
    }
    ++served_;
  }
}

// --- client ---------------------------------------------------------------------------------

rr_client::rr_client(sim::host& h, sim::sim_nic& nic, stack_config config, const rr_setup& setup,
                     tcp_endpoint server)
    : stack_host(h, nic, std::move(config)),
      setup_(setup),
      server_(server),
      in_(std::max<std::size_t>(setup.response_bytes, 2048)),
      out_(setup.request_bytes) {
  conns_.reserve(setup.connections);
  index_.reserve(setup.connections);
  for (std::size_t i = 8; i < out_.size(); ++i) {
    out_[i] = static_cast<std::byte>(0xa0 ^ i);
  }
}

void rr_client::open(std::size_t n, std::size_t window) {
  open_target_ += n;
  connect_window_ = std::max<std::size_t>(window, 1);
  pump();  // the application's turn starts the connects (and the SYNs go out in this pump)
}

void rr_client::exchange(std::uint64_t requests, std::size_t window) {
  request_target_ += requests;
  request_window_ = std::max<std::size_t>(window, 1);
  pump();
}

void rr_client::on_pump(time_ns now) {
  std::array<socket_event, 64> events{};
  std::size_t n = 0;
  while ((n = ip().poll_events(events)) != 0) {
    for (std::size_t i = 0; i < n; ++i) {
      const socket_event& e = events[i];
      if (e.protocol != wire::ip_protocol::tcp) {
        continue;
      }
      const auto it = index_.find(e.socket);
      if (it == index_.end()) {
        problems.add("client: an event for a socket it never opened");
        continue;
      }
      conn& c = conns_[it->second];
      if (c.state == phase::failed) {
        continue;
      }
      if ((e.events & (socket_events::error | socket_events::closed)) != 0) {
        problems.add("client: connection failed: " + tcp().error(e.socket).message());
        if (c.state == phase::connecting) {
          --connecting_;
        } else if (c.state == phase::waiting) {
          --outstanding_;
        }
        c.state = phase::failed;
        ++failed_;
        continue;
      }
      if ((e.events & socket_events::connected) != 0 && c.state == phase::connecting) {
        c.state = phase::idle;
        --connecting_;
        ++connected_;
      }
      if ((e.events & socket_events::readable) != 0) {
        receive_response(c);
      }
    }
  }
  start_work(now);
}

void rr_client::receive_response(conn& c) {
  for (;;) {
    const io_result r = tcp().receive(c.id, in_);
    if (r.bytes == 0) {
      if (r.error && !tcp_rr_app::is(r.error, std::errc::resource_unavailable_try_again)) {
        problems.add("client: receive: " + r.error.message());
      }
      return;
    }
    if (c.state != phase::waiting || c.got + r.bytes > setup_.response_bytes) {
      problems.add("client: " + std::to_string(r.bytes) + " bytes nobody asked for");
      return;
    }
    tcp_rr_app::capture_tag(c.echoed, c.got, std::span(in_).first(r.bytes));
    c.got += static_cast<std::uint32_t>(r.bytes);
    if (c.got == setup_.response_bytes) {
      if (setup_.response_bytes >= 8 && c.echoed != tcp_rr_app::tag_bytes(c.tag)) {
        problems.add("client: a response echoed the wrong request tag");
      }
      c.state = phase::idle;
      --outstanding_;
      ++completed_;
    }
  }
}

void rr_client::start_work(time_ns now) {
  while (opened_ < open_target_ && connecting_ < connect_window_) {
    ++opened_;
    tcp_layer::socket_id id = tcp_layer::invalid_socket;
    std::error_code e = tcp().open(id);
    if (!e) {
      e = tcp().connect(id, server_, now);
    }
    if (e) {
      problems.add("client: open/connect: " + e.message());
      ++failed_;
      continue;
    }
    index_.emplace(id, static_cast<std::uint32_t>(conns_.size()));
    conns_.push_back(conn{id});
    ++connecting_;
  }
  while (issued_ < request_target_ && outstanding_ < request_window_ && !conns_.empty()) {
    conn& c = conns_[next_];
    if (c.state == phase::connecting || c.state == phase::waiting) {
      return;  // its turn again before it finished: wait for it (keeps the order round-robin)
    }
    next_ = next_ + 1 == conns_.size() ? 0 : next_ + 1;
    if (c.state == phase::failed) {
      continue;
    }
    c.tag = issued_ + 1;
    c.got = 0;
    const std::array<std::byte, 8> tag = tcp_rr_app::tag_bytes(c.tag);
    std::memcpy(out_.data(), tag.data(), std::min<std::size_t>(8, out_.size()));
    const io_result s = tcp().send(c.id, out_);
    if (s.bytes != out_.size()) {
      problems.add("client: send took " + std::to_string(s.bytes) + " of " +
                   std::to_string(out_.size()) + ": " + s.error.message());
    }
    c.state = phase::waiting;
    ++issued_;
    ++outstanding_;
  }
}

// --- world ----------------------------------------------------------------------------------

rr_world::rr_world(const rr_setup& setup)
    : net(setup.seed),
      client_host_(net.add_host("client")),
      server_host_(net.add_host("server")),
      client_nic_(net.add_nic(client_host_, setup.nic)),
      server_nic_(net.add_nic(server_host_, setup.nic)),
      server(server_host_, server_nic_, rr_stack_config(tcp_rr_app::server_ip, setup), setup),
      client(client_host_, client_nic_, rr_stack_config(tcp_rr_app::client_ip, setup), setup,
             tcp_endpoint{tcp_rr_app::server_ip, rr_port}) {
  net.connect(client_nic_, server_nic_, setup.link, setup.link);
}

bool rr_world::run(time_ns limit) {
  return net.run_until([this] { return client.done(); }, net.now() + limit);
}

std::string rr_world::problems() const {
  std::string s;
  for (const rr_problems* p : {&client.problems, &server.problems}) {
    for (const std::string& line : p->list) {
      s += line + "\n";
    }
  }
  return s;
}

}  // namespace dpdk_net::stack::test
