#include "apps/echo.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace phalanx::apps {

EchoStream::EchoStream(std::size_t capacity) : capacity_(capacity) {
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
  const std::size_t n = std::min({max, size_, capacity_ - head_});
  if (n == 0) {
    return {};
  }
  return wire::Bytes(ring_.data() + head_, n);
}

void EchoStream::consume(std::size_t n) {
  if (n > size_ || head_ + n > capacity_) {
    std::fprintf(stderr, "EchoStream: consume(%zu) beyond the last peek\n", n);
    std::abort();
  }
  head_ = (head_ + n) % capacity_;
  size_ -= n;
  if (size_ == 0) {
    head_ = 0;
  }
}

EchoTcp::EchoTcp(Transport& transport, std::size_t buffer_per_connection)
    : transport_(transport), buffer_size_(buffer_per_connection) {}

void EchoTcp::on_open(ConnectionId id) {
  ++counters_.connections;
  streams_.try_emplace(id, buffer_size_);
}

std::size_t EchoTcp::on_data(ConnectionId id, wire::Bytes data) {
  const auto it = streams_.find(id);
  if (it == streams_.end()) {
    return data.size();  // nobody will echo them
  }
  EchoStream& stream = it->second;
  std::size_t taken = 0;
  // Nothing queued: send straight from the stack's buffer and queue only what it refuses.
  if (stream.buffered() == 0) {
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
