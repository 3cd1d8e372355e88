#include "apps/echo.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace phalanx::apps {

EchoStream::EchoStream(std::size_t capacity, bool retain) : capacity_(capacity), retain_(retain) {
  if (capacity == 0) {
    std::fprintf(stderr, "EchoStream: capacity 0\n");
    std::abort();
  }
}

std::size_t EchoStream::on_input(wire::Bytes in) {
  if (peer_closed_) {
    return 0;
  }
  const std::size_t n = std::min(in.size(), space());
  if (n == 0) {
    return 0;
  }
  if (ring_.empty()) {
    ring_.resize(capacity_);
  }
  // Copy into the free part of the ring, in at most two pieces.
  const std::size_t tail = (head_ + size_) % capacity_;
  const std::size_t first = std::min(n, capacity_ - tail);
  std::memcpy(ring_.data() + tail, in.data(), first);
  std::memcpy(ring_.data(), in.data() + first, n - first);
  size_ += n;
  return n;
}

wire::Bytes EchoStream::peek(std::size_t max) const {
  const std::size_t at = (head_ + sent_) % capacity_;
  const std::size_t n = std::min({max, buffered(), capacity_ - at});
  if (n == 0) {
    return {};
  }
  return wire::Bytes(ring_.data() + at, n);
}

void EchoStream::consume(std::size_t n) {
  const std::size_t at = (head_ + sent_) % capacity_;
  if (n > buffered() || at + n > capacity_) {
    std::fprintf(stderr, "EchoStream: consume(%zu) beyond the last peek\n", n);
    std::abort();
  }
  sent_ += n;
  if (!retain_) {
    acknowledge(start_ + n);
  }
}

void EchoStream::acknowledge(std::uint64_t offset) {
  if (offset <= start_) {
    return;
  }
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(offset - start_, sent_));
  head_ = (head_ + n) % capacity_;
  size_ -= n;
  sent_ -= n;
  start_ += n;
  if (size_ == 0) {
    head_ = 0;
  }
}

bool EchoStream::restore(std::uint64_t start, wire::Bytes held, bool peer_closed) {
  if (held.size() > capacity_) {
    return false;
  }
  head_ = 0;
  size_ = 0;
  sent_ = 0;
  start_ = start;
  peer_closed_ = false;
  on_input(held);
  peer_closed_ = peer_closed;
  return true;
}

void EchoStream::copy_held(std::byte* out) const {
  const std::size_t first = std::min(size_, capacity_ - head_);
  if (first > 0) {
    std::memcpy(out, ring_.data() + head_, first);
  }
  if (size_ > first) {
    std::memcpy(out + first, ring_.data(), size_ - first);
  }
}

EchoTcp::EchoTcp(Transport& transport, std::size_t buffer_per_connection, bool resumable)
    : transport_(transport), buffer_size_(buffer_per_connection), resumable_(resumable) {}

void EchoTcp::on_open(ConnectionId id) {
  ++counters_.connections;
  streams_.try_emplace(id, buffer_size_, resumable_);
}

std::optional<stack::AppSnapshot> EchoTcp::snapshot(ConnectionId id, std::uint64_t acked) {
  const auto it = streams_.find(id);
  if (!resumable_ || it == streams_.end()) {
    return std::nullopt;
  }
  EchoStream& stream = it->second;
  acknowledge(id, stream, acked);
  stack::AppSnapshot out;
  out.determined = stream.end();
  out.state.resize(kEchoSnapshotHead + stream.held());
  wire::write_u64(out.state, 0, stream.start());
  out.state[8] = static_cast<std::byte>(stream.peer_closed() ? 1 : 0);
  stream.copy_held(out.state.data() + kEchoSnapshotHead);
  return out;
}

void EchoTcp::on_acknowledged(ConnectionId id, std::uint64_t acked) {
  const auto it = streams_.find(id);
  if (resumable_ && it != streams_.end()) {
    acknowledge(id, it->second, acked);
  }
}

void EchoTcp::acknowledge(ConnectionId id, EchoStream& stream, std::uint64_t acked) {
  stream.acknowledge(unwrap_offset(acked, stream.start()));
  // Room again: the stack delivers what it kept at its next timer (tcp_resume_receive never
  // calls back, so it may be called from the replicator's calls).
  if (stream.input_paused && stream.space() >= std::max<std::size_t>(1, stream.capacity() / 4)) {
    stream.input_paused = false;
    transport_.tcp_resume_receive(id);
  }
}

bool EchoTcp::on_adopted(ConnectionId id, wire::Bytes state, std::uint64_t resume_at) {
  if (!resumable_ || state.size() < kEchoSnapshotHead ||
      std::to_integer<std::uint8_t>(state[8]) > 1) {
    ++counters_.adopt_refused;
    return false;
  }
  const std::uint64_t start = wire::read_u64(state, 0);
  const wire::Bytes held = state.subspan(kEchoSnapshotHead);
  // The new owner's output goes on at resume_at: the peer acknowledged everything before it,
  // and the snapshot holds every byte from there to the end of the input taken.
  const std::uint64_t at = unwrap_offset(resume_at, start);
  auto [it, fresh] = streams_.try_emplace(id, buffer_size_, true);
  if (!fresh || at < start || at - start > held.size() ||
      !it->second.restore(at, held.subspan(static_cast<std::size_t>(at - start)),
                          std::to_integer<std::uint8_t>(state[8]) == 1)) {
    ++counters_.adopt_refused;
    if (fresh) {
      streams_.erase(it);
    }
    return false;
  }
  ++counters_.connections;
  ++counters_.adopted;
  flush(id, it->second);
  return true;
}

std::size_t EchoTcp::on_data(ConnectionId id, wire::Bytes data) {
  const auto it = streams_.find(id);
  if (it == streams_.end()) {
    return data.size();  // nobody will echo them
  }
  EchoStream& stream = it->second;
  std::size_t taken = 0;
  // Nothing queued: send straight from the stack's buffer and queue only what it refuses (not
  // when resumable: every byte is held until the peer acknowledges it).
  if (stream.buffered() == 0 && !resumable_) {
    taken = transport_.tcp_send(id, data);
    counters_.bytes_echoed += taken;
  }
  taken += stream.on_input(data.subspan(taken));
  if (taken < data.size()) {
    // Full: the rest waits in the stack (its window closes) until flush() makes room.
    stream.input_paused = true;
    ++counters_.receive_pauses;
  }
  flush(id, stream);
  return taken;
}

void EchoTcp::on_writable(ConnectionId id) {
  const auto it = streams_.find(id);
  if (it != streams_.end()) {
    flush(id, it->second);
  }
}

void EchoTcp::on_peer_closed(ConnectionId id) {
  const auto it = streams_.find(id);
  if (it != streams_.end()) {
    it->second.on_peer_closed();
    flush(id, it->second);
  }
}

void EchoTcp::on_closed(ConnectionId id, stack::CloseReason /*reason*/) {
  streams_.erase(id);
}

void EchoTcp::flush(ConnectionId id, EchoStream& stream) {
  while (stream.buffered() > 0) {
    const wire::Bytes chunk = stream.peek(stream.buffered());
    const std::size_t sent = transport_.tcp_send(id, chunk);
    stream.consume(sent);
    counters_.bytes_echoed += sent;
    if (sent < chunk.size()) {
      break;  // on_writable() will call again
    }
  }
  // Resume once a quarter of the buffer is free, not at every byte: fewer, larger deliveries.
  if (stream.input_paused && stream.space() >= std::max<std::size_t>(1, stream.capacity() / 4)) {
    stream.input_paused = false;
    transport_.tcp_resume_receive(id);
  }
  if (stream.buffered() > 0) {
    return;
  }
  // RFC 862 ends when the caller terminates: after its FIN and our last byte, close our side.
  if (stream.finished() && !stream.shut_down) {
    stream.shut_down = true;
    transport_.tcp_shutdown(id);
  }
}

void EchoUdp::on_datagram(stack::Endpoint from, std::uint16_t to_port, wire::Bytes payload) {
  if (from.port < 1024) {
    ++counters_.datagrams_refused;  // echo/chargen loops (see echo.hpp)
    return;
  }
  if (transport_.udp_send(to_port, from, payload)) {
    ++counters_.datagrams_dropped;
    return;
  }
  ++counters_.datagrams_echoed;
}

}  // namespace phalanx::apps
