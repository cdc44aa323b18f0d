#include "dpdk_net/asio/detail/socket_service.hpp"

#include <algorithm>

#include "dpdk_net/asio/error.hpp"
#include "dpdk_net/stack/stack.hpp"

namespace dpdk_net::detail {
std::error_code already_open_error() noexcept;  // error.cpp: Asio's already_open
namespace {

constexpr std::uint8_t tcp_protocol = 6;

std::error_code errc(std::errc e) noexcept {
  return std::make_error_code(e);
}
bool would_block(const std::error_code& e) noexcept {
  return e == std::errc::resource_unavailable_try_again || e == std::errc::operation_would_block;
}

op_queue& queue_of(impl_base& s, const io_op& o) noexcept {
  return o.kind == op_kind::write ? s.writes : s.reads;
}

}  // namespace

void socket_service::attach(stack::stack* ip) noexcept {
  // Every socket of the old stack is gone with it.
  for (auto* table : {&tcp_, &udp_}) {
    for (impl_base*& s : *table) {
      if (s != nullptr) {
        fail_all(*s, error::make_std_error(error::backend_down));
        s->id = no_socket;
        s->listener = false;
        s = nullptr;
      }
    }
  }
  ip_ = ip;
  ++epoch_;
  if (ip_ != nullptr) {
    tcp_.assign(ip_->config().tcp.sockets, nullptr);
    udp_.assign(ip_->config().udp_sockets, nullptr);
  }
}

bool socket_service::alive(const impl_base& s) const noexcept {
  return ip_ != nullptr && s.id != no_socket && s.epoch == epoch_;
}

void socket_service::register_impl(impl_base& s) noexcept {
  s.epoch = epoch_;
  if (s.is_udp) {
    if (s.id < udp_.size()) {
      udp_[s.id] = &s;
    }
  } else {
    const std::uint32_t slot = stack::tcp_layer::slot_of(s.id);
    if (slot < tcp_.size()) {
      tcp_[slot] = &s;
    }
  }
}

void socket_service::unregister_impl(impl_base& s) noexcept {
  if (s.id == no_socket || s.epoch != epoch_) {
    return;
  }
  if (s.is_udp) {
    if (s.id < udp_.size() && udp_[s.id] == &s) {
      udp_[s.id] = nullptr;
    }
  } else {
    const std::uint32_t slot = stack::tcp_layer::slot_of(s.id);
    if (slot < tcp_.size() && tcp_[slot] == &s) {
      tcp_[slot] = nullptr;
    }
  }
}

impl_base* socket_service::find(std::uint8_t protocol, socket_id id) const noexcept {
  if (protocol == tcp_protocol) {
    const std::uint32_t slot = stack::tcp_layer::slot_of(id);
    impl_base* s = slot < tcp_.size() ? tcp_[slot] : nullptr;
    return s != nullptr && s->id == id ? s : nullptr;
  }
  impl_base* s = id < udp_.size() ? udp_[id] : nullptr;
  return s != nullptr && s->id == id ? s : nullptr;
}

std::error_code socket_service::open_tcp(impl_base& s) {
  if (ip_ == nullptr) {
    return error::make_std_error(error::backend_down);
  }
  if (alive(s)) {
    return errc(std::errc::already_connected);
  }
  socket_id id = no_socket;
  if (auto e = ip_->tcp().open(id)) {
    return e;
  }
  s.id = id;
  s.shut_read = false;
  register_impl(s);
  if (s.options_set) {
    (void)ip_->tcp().set_options(id, s.options);
  }
  return {};
}

void socket_service::adopt_tcp(impl_base& s, socket_id id) noexcept {
  s.id = id;
  s.listener = false;
  s.shut_read = false;
  register_impl(s);
  if (s.options_set) {
    (void)ip_->tcp().set_options(id, s.options);
  }
}

std::error_code socket_service::open_udp(impl_base& s, std::uint16_t port,
                                         std::optional<wire::ipv4_address> address) {
  if (ip_ == nullptr) {
    return error::make_std_error(error::backend_down);
  }
  if (alive(s)) {
    return errc(std::errc::invalid_argument);
  }
  socket_id id = no_socket;
  if (auto e = ip_->udp_bind(port, id, address)) {
    return e;
  }
  s.id = id;
  register_impl(s);
  return {};
}

std::error_code socket_service::close(impl_base& s, bool abort) {
  ++s.closes;
  fail_all(s, errc(std::errc::operation_canceled));
  std::error_code e;
  if (alive(s)) {
    unregister_impl(s);
    if (s.is_udp) {
      ip_->udp_close(s.id);
    } else if (abort) {
      e = ip_->tcp().abort(s.id, ctx_->now());
    } else {
      e = ip_->tcp().close(s.id, ctx_->now());
    }
    ctx_->request_turn();  // a FIN or RST to send
  }
  s.id = no_socket;
  s.listener = false;
  return e;
}

void socket_service::shutdown_all() noexcept {
  if (ip_ == nullptr) {
    return;
  }
  for (impl_base* s : tcp_) {
    if (s == nullptr) {
      continue;
    }
    if (s->listener) {
      close(*s);
    } else {
      (void)ip_->tcp().shutdown(s->id, stack::shutdown_type::send, ctx_->now());
    }
  }
}

void socket_service::abandon_all() noexcept {
  attach(nullptr);
  for (impl_base* t = timers_; t != nullptr; t = t->timer_next) {
    static_cast<timer_impl*>(t)->alarm.cancel();
    fail_all(*t, error::make_std_error(error::backend_down));
  }
}

void socket_service::abort_all() noexcept {
  if (ip_ == nullptr) {
    return;
  }
  for (impl_base* s : tcp_) {
    if (s != nullptr) {
      fail_all(*s, errc(std::errc::connection_aborted));
      unregister_impl(*s);
      (void)ip_->tcp().abort(s->id, ctx_->now());
      s->id = no_socket;
    }
  }
}

std::size_t socket_service::cancel(impl_base& s) noexcept {
  std::size_t n = 0;
  for (op_queue* q : {&s.reads, &s.writes}) {
    while (!q->empty()) {
      complete(static_cast<io_op*>(q->front()), errc(std::errc::operation_canceled));
      ++n;
    }
  }
  if (s.connect != nullptr) {
    cancel_op(s.connect);
    ++n;
  }
  return n;
}

void socket_service::fail_all(impl_base& s, std::error_code ec) noexcept {
  for (op_queue* q : {&s.reads, &s.writes}) {
    while (!q->empty()) {
      complete(static_cast<io_op*>(q->front()), ec);
    }
  }
  if (s.connect != nullptr) {
    complete(s.connect, ec);
  }
}

void socket_service::complete(io_op* o, std::error_code ec, std::size_t bytes) noexcept {
  if (o->pending) {
    if (o->kind == op_kind::connect) {
      o->owner->connect = nullptr;
    } else {
      queue_of(*o->owner, *o).erase(o);
    }
    o->pending = false;
  }
  o->ec = ec;
  o->bytes = bytes;
  o->fn = o->complete_fn;
  ctx_->post_local(o);
}

void socket_service::cancel_op(io_op* o) noexcept {
  if (!o->pending) {
    if (o->fn == &remote_start) {
      o->cancel_requested = true;  // not started yet: remote_start completes it aborted
    }
    return;  // else already completing
  }
  const bool connecting = o->kind == op_kind::connect;
  impl_base* s = o->owner;
  complete(o, errc(std::errc::operation_canceled));
  if (connecting && alive(*s)) {
    // Terminal cancellation of a connect: the attempt is abandoned (the socket is closed).
    unregister_impl(*s);
    (void)ip_->tcp().abort(s->id, ctx_->now());
    s->id = no_socket;
  }
}

void socket_service::start_anywhere(impl_base& s, io_op* o) {
  if (ctx_->running_in_this_thread() || ctx_->owner_is_this_thread()) {
    start(s, o);
    ctx_->request_turn();
    return;
  }
  o->owner = &s;
  o->keep_alive = s.shared_from_this();
  o->closes = s.closes;
  o->fn = &remote_start;
  ctx_->post_remote(o);
}

void socket_service::remote_start(op* base, bool run) {
  auto* o = static_cast<io_op*>(base);
  o->fn = o->complete_fn;
  if (!run) {
    o->complete_fn(o, false);
    return;
  }
  const std::shared_ptr<impl_base> keep = std::move(o->keep_alive);
  if (o->cancel_requested || keep->closes != o->closes) {
    // Cancelled, or its I/O object was closed (or destroyed) before the loop got to it.
    o->ctx->sockets().complete(o, std::make_error_code(std::errc::operation_canceled));
    return;
  }
  o->ctx->sockets().start(*keep, o);
}

void socket_service::start(impl_base& s, io_op* o) {
  o->owner = &s;
  if (o->ec) {  // refused by the initiation (an IPv6 endpoint, say)
    complete(o, o->ec);
    return;
  }
  if (o->kind == op_kind::wait) {
    start_wait(s, o);
    return;
  }
  if (ip_ == nullptr) {
    complete(o, error::make_std_error(error::backend_down));
    return;
  }
  auto queue = [&](op_queue& q) {
    o->pending = true;
    q.push(o);
  };
  switch (o->kind) {
    case op_kind::connect: {
      if (s.connect != nullptr) {
        complete(o, errc(std::errc::connection_already_in_progress));
        return;
      }
      if (!alive(s)) {
        if (auto e = open_tcp(s)) {
          complete(o, e);
          return;
        }
      }
      if (auto e = ip_->tcp().connect(s.id, {o->address, o->port}, ctx_->now())) {
        complete(o, e);
        return;
      }
      o->pending = true;
      s.connect = o;
      return;
    }
    case op_kind::accept:
      if (!alive(s)) {
        complete(o, errc(std::errc::bad_file_descriptor));
        return;
      }
      if (!s.listener) {
        complete(o, errc(std::errc::invalid_argument));
        return;
      }
      if (o->target != nullptr && alive(*o->target)) {
        complete(o, already_open_error());
        return;
      }
      if (!s.reads.empty() || !try_accept(s, o)) {
        queue(s.reads);
      }
      return;
    case op_kind::read:
    case op_kind::receive_from:
      if (!alive(s)) {
        complete(o, errc(std::errc::bad_file_descriptor));
        return;
      }
      if (o->buffer_count == 0 && o->kind == op_kind::read) {
        complete(o, {}, 0);
        return;
      }
      if (s.shut_read) {
        complete(o, stack::tcp_errc::end_of_stream);
        return;
      }
      if (!s.reads.empty() ||
          !(o->kind == op_kind::read ? try_transfer(s, o, false) : try_receive_from(s, o))) {
        queue(s.reads);
      }
      return;
    case op_kind::write:
      if (!alive(s)) {
        complete(o, errc(std::errc::bad_file_descriptor));
        return;
      }
      if (o->buffer_count == 0) {
        complete(o, {}, 0);
        return;
      }
      if (!s.writes.empty() || !try_transfer(s, o, true)) {
        queue(s.writes);
      }
      return;
    case op_kind::send_to: {
      if (!alive(s)) {
        complete(o, errc(std::errc::bad_file_descriptor));
        return;
      }
      // One datagram: the buffers are joined (the stack takes one span).
      std::size_t total = 0;
      for (std::size_t i = 0; i < o->buffer_count; ++i) {
        total += o->buffers[i].size();
      }
      std::error_code e;
      if (o->buffer_count <= 1) {
        e = ip_->udp_send_to(s.id, o->address, o->port,
                             o->buffer_count == 0 ? std::span<const std::byte>() : o->buffers[0],
                             ctx_->now());
      } else {
        scratch_.resize(total);
        std::size_t at = 0;
        for (std::size_t i = 0; i < o->buffer_count; ++i) {
          std::copy(o->buffers[i].begin(), o->buffers[i].end(),
                    scratch_.begin() + static_cast<std::ptrdiff_t>(at));
          at += o->buffers[i].size();
        }
        e = ip_->udp_send_to(s.id, o->address, o->port, scratch_, ctx_->now());
      }
      complete(o, e, e ? 0 : total);
      return;
    }
    case op_kind::wait:
      return;
  }
}

std::size_t socket_service::dispatch_events() {
  if (ip_ == nullptr) {
    return 0;
  }
  std::array<stack::socket_event, 64> events;
  std::size_t total = 0;
  for (std::size_t n = 0; (n = ip_->poll_events(events)) != 0;) {
    total += n;
    for (std::size_t i = 0; i < n; ++i) {
      impl_base* s = find(events[i].protocol, events[i].socket);
      if (s != nullptr) {
        ++visited_;
        on_event(*s, events[i].events);
      }
    }
  }
  return total;
}

void socket_service::on_event(impl_base& s, std::uint8_t events) {
  namespace ev = stack::socket_events;
  if (s.connect != nullptr && (events & (ev::connected | ev::error | ev::closed)) != 0) {
    std::error_code e;
    if ((events & ev::connected) == 0 || (events & ev::error) != 0) {
      e = ip_->tcp().error(s.id);
      if (!e) {
        e = errc(std::errc::connection_refused);
      }
    }
    complete(s.connect, e);
  }
  if ((events & (ev::readable | ev::acceptable | ev::closed | ev::error)) != 0) {
    run_queue(s, s.reads);
  }
  if ((events & (ev::writable | ev::closed | ev::error)) != 0) {
    run_queue(s, s.writes);
  }
}

void socket_service::run_queue(impl_base& s, op_queue& q) {
  while (!q.empty()) {
    auto* o = static_cast<io_op*>(q.front());
    bool done = false;
    switch (o->kind) {
      case op_kind::read:
        done = try_transfer(s, o, false);
        break;
      case op_kind::write:
        done = try_transfer(s, o, true);
        break;
      case op_kind::accept:
        done = try_accept(s, o);
        break;
      case op_kind::receive_from:
        done = try_receive_from(s, o);
        break;
      default:
        done = true;
        complete(o, errc(std::errc::invalid_argument));
        break;
    }
    if (!done) {
      return;
    }
  }
}

stack::io_result socket_service::transfer(const impl_base& s, const io_op& o, bool write) {
  stack::io_result out;
  for (std::size_t i = 0; i < o.buffer_count; ++i) {
    const stack::io_result r =
        write ? ip_->tcp().send(s.id, o.buffers[i]) : ip_->tcp().receive(s.id, o.buffers[i]);
    out.bytes += r.bytes;
    if (r.error) {
      out.error = r.error;
      break;
    }
    if (r.bytes < o.buffers[i].size()) {
      break;
    }
  }
  return out;
}

bool socket_service::try_transfer(impl_base& s, io_op* o, bool write) {
  const stack::io_result r = transfer(s, *o, write);
  if (r.bytes != 0) {
    complete(o, {}, r.bytes);
    return true;
  }
  if (would_block(r.error)) {
    return false;
  }
  complete(o, r.error ? r.error : errc(std::errc::not_connected));
  return true;
}

bool socket_service::try_accept(impl_base& s, io_op* o) {
  if (o->target != nullptr && alive(*o->target)) {
    complete(o, already_open_error());  // opened while the accept waited: not overwritten
    return true;
  }
  socket_id id = no_socket;
  const std::error_code e = ip_->tcp().accept(s.id, id);
  if (would_block(e)) {
    return false;
  }
  if (e) {
    complete(o, e);
    return true;
  }
  if (o->target != nullptr) {
    adopt_tcp(*o->target, id);
  } else {
    o->accepted = id;
  }
  complete(o, {});
  return true;
}

bool socket_service::try_receive_from(impl_base& s, io_op* o) {
  std::optional<stack::udp_datagram> d = ip_->udp_receive(s.id);
  if (!d) {
    return false;
  }
  std::size_t copied = 0;
  for (std::size_t i = 0; i < o->buffer_count && copied < d->length; ++i) {
    const std::size_t n = std::min(o->buffers[i].size(), d->length - copied);
    d->frame.copy_out(d->offset + copied, o->buffers[i].first(n));
    copied += n;
  }
  if (o->sender != nullptr) {
    *o->sender = boost::asio::ip::udp::endpoint(boost::asio::ip::address_v4(d->source.value),
                                                d->source_port);
  }
  complete(o, {}, copied);
  return true;
}

}  // namespace dpdk_net::detail
