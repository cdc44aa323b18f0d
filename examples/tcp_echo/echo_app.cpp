#include "echo_app.hpp"

#include <algorithm>
#include <cstring>

namespace tcp_echo {
namespace {

namespace ev = dpdk_net::stack::socket_events;
using dpdk_net::stack::tcp_errc;

bool try_again(const std::error_code& e) noexcept {
  return e == std::errc::resource_unavailable_try_again;
}

std::uint64_t mix(std::uint64_t z) noexcept {  // splitmix64's finaliser
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}

}  // namespace

void stream_generator::fill(std::uint64_t offset, std::span<std::byte> out) const noexcept {
  std::size_t i = 0;
  while (i < out.size()) {
    const std::uint64_t pos = offset + i;
    const std::uint64_t word = mix(seed_ * 0x9e3779b97f4a7c15ULL + (pos >> 3U));
    for (unsigned b = static_cast<unsigned>(pos & 7U); b < 8 && i < out.size(); ++b, ++i) {
      out[i] = static_cast<std::byte>(word >> (8U * b));
    }
  }
}

// --- server ------------------------------------------------------------------------------

std::error_code echo_server::start() {
  if (auto e = tcp_.open(listener_)) {
    return e;
  }
  if (auto e = tcp_.bind(listener_, port_)) {
    return e;
  }
  return tcp_.listen(listener_, 1024);
}

void echo_server::on_event(const socket_event& e, time_ns now) {
  if (e.socket == listener_) {
    if ((e.events & ev::acceptable) != 0) {
      accept_all(now);
    }
    return;
  }
  const auto it = sessions_.find(e.socket);
  if (it == sessions_.end()) {
    return;  // an id we already closed
  }
  if (!pump(e.socket, it->second, now)) {
    return;
  }
  if ((e.events & (ev::error | ev::closed)) != 0) {
    end(e.socket, true, now);  // ended before the peer finished and we echoed everything
  }
}

void echo_server::accept_all(time_ns now) {
  for (;;) {
    socket_id id = tcp_layer::invalid_socket;
    if (tcp_.accept(listener_, id)) {
      return;  // none left (try again), or the listener is gone
    }
    ++counters_.accepted;
    if (no_delay_) {
      auto o = tcp_.options(id);
      o.no_delay = true;
      (void)tcp_.set_options(id, o);
    }
    auto [it, inserted] = sessions_.try_emplace(id);
    it->second = session{};
    it->second.buffer = std::make_unique<std::byte[]>(chunk_bytes);
    pump(id, it->second, now);  // data may have arrived with the handshake's last ACK
  }
}

bool echo_server::pump(socket_id id, session& s, time_ns now) {
  for (bool progress = true; progress;) {
    progress = false;
    if (s.length != 0) {
      const auto r = tcp_.send(id, std::span(s.buffer.get() + s.offset, s.length));
      if (r.error && !try_again(r.error)) {
        end(id, true, now);
        return false;
      }
      s.offset += r.bytes;
      s.length -= r.bytes;
      counters_.bytes_echoed += r.bytes;
      progress = r.bytes != 0;
    }
    if (s.length == 0 && !s.peer_done) {
      s.offset = 0;
      const auto r = tcp_.receive(id, std::span(s.buffer.get(), chunk_bytes));
      if (r.error == tcp_errc::end_of_stream) {
        s.peer_done = true;
      } else if (r.error && !try_again(r.error)) {
        end(id, true, now);
        return false;
      }
      s.length = r.bytes;
      progress = progress || r.bytes != 0;
    }
  }
  if (s.peer_done && s.length == 0) {
    end(id, false, now);  // graceful close: what send() took is still delivered, then FIN
    return false;
  }
  return true;
}

void echo_server::end(socket_id id, bool failed, time_ns now) {
  ++(failed ? counters_.failed : counters_.completed);
  (void)tcp_.close(id, now);
  sessions_.erase(id);
}

// --- client ------------------------------------------------------------------------------

std::error_code echo_client::start(time_ns now) {
  streams_.resize(config_.connections);
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    stream& s = streams_[i];
    s.generator = stream_generator(config_.seed + i);
    s.tx = std::make_unique<std::byte[]>(chunk_bytes);
    s.rx = std::make_unique<std::byte[]>(chunk_bytes);
    s.expected = std::make_unique<std::byte[]>(chunk_bytes);
    if (auto e = tcp_.open(s.id)) {
      return e;
    }
    by_id_[s.id] = i;
    if (config_.no_delay) {
      auto o = tcp_.options(s.id);
      o.no_delay = true;
      (void)tcp_.set_options(s.id, o);
    }
    if (config_.local_port != 0 && config_.connections == 1) {
      if (auto e = tcp_.bind(s.id, config_.local_port)) {
        return e;
      }
    }
    if (auto e = tcp_.connect(s.id, config_.remote, now)) {
      return e;
    }
  }
  return {};
}

void echo_client::on_event(const socket_event& e, time_ns now) {
  const auto it = by_id_.find(e.socket);
  if (it == by_id_.end()) {
    return;
  }
  stream& s = streams_[it->second];
  if (s.finished) {
    return;
  }
  if ((e.events & ev::connected) != 0) {
    s.connected = true;
  }
  if ((e.events & ev::error) != 0) {
    fail(s,
         std::string(s.connected ? "connection failed: " : "connect failed: ") +
             tcp_.error(s.id).message(),
         now);
    return;
  }
  pump(s, now);
  if (!s.finished && (e.events & ev::closed) != 0) {
    fail(s, "closed before the echo was complete", now);
  }
}

void echo_client::pump(stream& s, time_ns now) {
  if (!s.connected) {
    return;
  }
  for (bool progress = true; progress && !s.finished;) {
    progress = false;
    if (s.tx_length == 0 && s.generated < config_.bytes) {
      s.tx_offset = 0;
      s.tx_length = static_cast<std::size_t>(
          std::min<std::uint64_t>(chunk_bytes, config_.bytes - s.generated));
      s.generator.fill(s.generated, std::span(s.tx.get(), s.tx_length));
      s.generated += s.tx_length;
    }
    if (s.tx_length != 0) {
      const auto r = tcp_.send(s.id, std::span(s.tx.get() + s.tx_offset, s.tx_length));
      if (r.error && !try_again(r.error)) {
        fail(s, "send: " + r.error.message(), now);
        return;
      }
      s.tx_offset += r.bytes;
      s.tx_length -= r.bytes;
      progress = r.bytes != 0;
    }
    if (s.tx_length == 0 && s.generated == config_.bytes && !s.shut) {
      s.shut = true;  // everything handed over: FIN after it (half-close, the echo goes on)
      if (auto e = tcp_.shutdown(s.id, dpdk_net::stack::shutdown_type::send, now)) {
        fail(s, "shutdown: " + e.message(), now);
        return;
      }
    }
    const auto r = tcp_.receive(s.id, std::span(s.rx.get(), chunk_bytes));
    if (r.bytes != 0) {
      progress = true;
      if (s.received + r.bytes > config_.bytes) {
        fail(s, "more bytes echoed than sent", now);
        return;
      }
      s.generator.fill(s.received, std::span(s.expected.get(), r.bytes));
      if (std::memcmp(s.rx.get(), s.expected.get(), r.bytes) != 0) {
        std::size_t at = 0;
        while (s.rx[at] == s.expected[at]) {
          ++at;
        }
        fail(s, "echo differs at byte " + std::to_string(s.received + at), now);
        return;
      }
      s.received += r.bytes;
      counters_.bytes_verified += r.bytes;
    } else if (r.error == tcp_errc::end_of_stream) {
      if (s.received == config_.bytes) {
        finish(s, now);
      } else {
        fail(s,
             "end of stream after " + std::to_string(s.received) + " of " +
                 std::to_string(config_.bytes) + " bytes",
             now);
      }
      return;
    } else if (r.error && !try_again(r.error)) {
      fail(s, "receive: " + r.error.message(), now);
      return;
    }
  }
}

void echo_client::fail(stream& s, std::string why, time_ns now) {
  s.failure = std::move(why);
  (void)tcp_.abort(s.id, now);
  s.finished = true;
  ++finished_;
}

void echo_client::finish(stream& s, time_ns now) {
  (void)tcp_.close(s.id, now);
  s.finished = true;
  ++finished_;
  ++counters_.streams_intact;
}

std::vector<std::string> echo_client::failures() const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    if (!streams_[i].failure.empty()) {
      out.push_back("connection " + std::to_string(i) + ": " + streams_[i].failure);
    }
  }
  return out;
}

}  // namespace tcp_echo
