#include "apps/http_server.hpp"

#include <cstring>

namespace phalanx::apps::http {

namespace {

void add(SessionCounters& total, const SessionCounters& c) {
  total.responses += c.responses;
  total.status_2xx += c.status_2xx;
  total.status_4xx += c.status_4xx;
  total.status_5xx += c.status_5xx;
  total.parse_errors += c.parse_errors;
  total.input_overflow += c.input_overflow;
  total.short_read += c.short_read;
  total.body_bytes += c.body_bytes;
}

}  // namespace

HttpServer::HttpServer(Transport& transport, FileSource& files, SessionLimits limits)
    : transport_(transport), files_(files), limits_(limits) {}

void HttpServer::on_open(ConnectionId id) {
  ++counters_.connections;
  sessions_.try_emplace(id, Connection{HttpSession(files_, limits_)});
}

std::size_t HttpServer::on_data(ConnectionId id, wire::Bytes data) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    return data.size();  // nobody will read them
  }
  Connection& c = it->second;
  const std::size_t taken = c.session.take_input(data);
  if (taken < data.size()) {
    c.input_paused = true;
    ++counters_.input_paused;
  }
  pump(id, c);  // may forget c
  return taken;
}

void HttpServer::on_writable(ConnectionId id) {
  const auto it = sessions_.find(id);
  if (it != sessions_.end()) {
    pump(id, it->second);
  }
}

void HttpServer::on_peer_closed(ConnectionId id) {
  const auto it = sessions_.find(id);
  if (it != sessions_.end()) {
    it->second.session.on_peer_closed();
    pump(id, it->second);
  }
}

void HttpServer::on_closed(ConnectionId id, stack::CloseReason /*reason*/) {
  forget(id);
}

namespace {

constexpr std::size_t kSnapshotHead = 9;  // stream offset u64 | peer closed u8

}  // namespace

std::optional<stack::AppSnapshot> HttpServer::snapshot(ConnectionId id, std::uint64_t acked) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end() || !limits_.retain_until_acked) {
    return std::nullopt;
  }
  HttpSession& session = it->second.session;
  const std::uint64_t produced = session.stream_offset();
  const std::uint64_t peer_acked = unwrap_offset(acked, produced);
  if (peer_acked <= produced) {
    session.acknowledge(peer_acked);
  }
  const SessionSnapshot snap = session.snapshot();
  stack::AppSnapshot out;
  out.determined = session.output_determined();
  out.state.resize(kSnapshotHead + snap.input.size());
  wire::write_u64(out.state, 0, snap.stream_offset);
  out.state[8] = static_cast<std::byte>(snap.peer_closed ? 1 : 0);
  std::memcpy(out.state.data() + kSnapshotHead, snap.input.data(), snap.input.size());
  return out;
}

void HttpServer::on_acknowledged(ConnectionId id, std::uint64_t acked) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end() || !limits_.retain_until_acked) {
    return;
  }
  HttpSession& session = it->second.session;
  const std::uint64_t produced = session.stream_offset();
  const std::uint64_t peer_acked = unwrap_offset(acked, produced);
  if (peer_acked <= produced) {
    session.acknowledge(peer_acked);
  }
}

bool HttpServer::on_adopted(ConnectionId id, wire::Bytes state, std::uint64_t resume_at) {
  if (state.size() < kSnapshotHead || std::to_integer<std::uint8_t>(state[8]) > 1) {
    ++counters_.adopt_refused;
    return false;
  }
  SessionSnapshot snap;
  snap.stream_offset = wire::read_u64(state, 0);
  snap.peer_closed = std::to_integer<std::uint8_t>(state[8]) == 1;
  snap.input.assign(reinterpret_cast<const char*>(state.data()) + kSnapshotHead,
                    state.size() - kSnapshotHead);
  auto [it, fresh] = sessions_.try_emplace(id, Connection{HttpSession(files_, limits_)});
  if (!fresh || !it->second.session.restore(snap, unwrap_offset(resume_at, snap.stream_offset))) {
    ++counters_.adopt_refused;
    sessions_.erase(id);
    return false;
  }
  ++counters_.connections;
  ++counters_.adopted;
  pump(id, it->second);
  return true;
}

HttpSession* HttpServer::session(ConnectionId id) {
  const auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second.session;
}

void HttpServer::pump(ConnectionId id, Connection& c) {
  HttpSession& s = c.session;
  for (;;) {
    const std::size_t space = transport_.tcp_send_space(id);
    if (space == 0) {
      break;  // on_writable() follows
    }
    const wire::Bytes chunk = s.peek(space);
    if (chunk.empty()) {
      break;
    }
    const std::size_t sent = transport_.tcp_send(id, chunk);
    s.consume(sent);
    if (sent < chunk.size()) {
      break;
    }
  }
  if (c.input_paused && s.input_room()) {
    c.input_paused = false;  // answers went out and the parser took held requests
    transport_.tcp_resume_receive(id);
  }
  switch (s.state()) {
    case SessionState::active:
      return;
    case SessionState::finished:
      if (!c.shut_down) {
        c.shut_down = true;
        transport_.tcp_shutdown(id);  // FIN after the queued data; on_closed() ends it
      }
      return;
    case SessionState::failed:
      ++counters_.aborted;
      transport_.tcp_abort(id);  // no on_closed() follows
      forget(id);
      return;
  }
}

void HttpServer::forget(ConnectionId id) {
  const auto it = sessions_.find(id);
  if (it != sessions_.end()) {
    add(counters_.sessions, it->second.session.counters());
    sessions_.erase(it);
  }
}

ServerCounters HttpServer::counters() const {
  ServerCounters out = counters_;
  for (const auto& [id, c] : sessions_) {
    add(out.sessions, c.session.counters());
  }
  return out;
}

}  // namespace phalanx::apps::http
