// The echo service (RFC 862) on TCP and UDP port 7 (DESIGN §8).
//
// RFC 862: "TCP Based Echo Service ... Once a connection is established any data received is
// sent back. This continues until the calling user terminates the connection." "UDP Based Echo
// Service ... When a datagram is received, the data from it is sent back in an answering
// datagram."
//
// EchoStream is the protocol, pure: bytes in, the same bytes out, through a bounded buffer that
// absorbs the difference between what the peer sends and what the send side takes. EchoTcp
// adapts it to stack::TcpHandler: it sends what the stack accepts and keeps the rest, resumes on
// on_writable(), and after the peer's FIN shuts down once everything is echoed. A peer that
// sends faster than it reads fills the buffer; on_data() then takes only what fits, the stack
// keeps the rest in its receive window (which closes, so the peer stops sending), and the
// adapter resumes receiving once the send side drained some of the buffer. Nothing is dropped
// and nothing is aborted. EchoUdp answers each datagram with the same payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "apps/transport.hpp"
#include "stack/stack.hpp"
#include "wire/bytes.hpp"

namespace phalanx::apps {

inline constexpr std::uint16_t kEchoPort = 7;

// A byte ring of fixed capacity: what was received and not yet sent back.
class EchoStream {
 public:
  explicit EchoStream(std::size_t capacity);

  // Takes as many bytes of `in` as fit; returns how many. After the peer's FIN, takes none.
  std::size_t on_input(wire::Bytes in);
  void on_peer_closed() { peer_closed_ = true; }

  // The oldest buffered bytes, at most `max` (contiguous, so possibly fewer than buffered).
  wire::Bytes peek(std::size_t max) const;
  // The first n bytes of the last peek() were sent.
  void consume(std::size_t n);

  std::size_t buffered() const { return size_; }
  std::size_t space() const { return capacity_ - size_; }
  std::size_t capacity() const { return capacity_; }
  bool peer_closed() const { return peer_closed_; }
  // The peer closed and everything it sent was echoed: shut the connection down.
  bool finished() const { return peer_closed_ && size_ == 0; }
  bool shut_down = false;     // the adapter sent FIN
  bool input_paused = false;  // on_data() left bytes with the stack: resume once space opens

 private:
  std::size_t capacity_;
  std::vector<std::byte> ring_;  // allocated on first use: most echo connections never queue
  std::size_t head_ = 0;         // index of the oldest byte
  std::size_t size_ = 0;
  bool peer_closed_ = false;
};

struct EchoCounters {
  std::uint64_t connections = 0;
  std::uint64_t bytes_echoed = 0;    // TCP bytes accepted by the stack
  std::uint64_t receive_pauses = 0;  // buffer full: input left in the stack's window
  // Always 0 since the stack can pause receiving; kept until the status report drops it.
  std::uint64_t overflow_aborts = 0;
  std::uint64_t datagrams_echoed = 0;
  std::uint64_t datagrams_dropped = 0;  // udp_send refused the answer (queue full, no route)
  std::uint64_t datagrams_refused = 0;  // from a port below 1024: see EchoUdp
};

class EchoTcp final : public stack::TcpHandler {
 public:
  // `buffer_per_connection` bounds what one connection may hold unsent.
  EchoTcp(Transport& transport, std::size_t buffer_per_connection = 256 * 1024);

  void on_open(ConnectionId id) override;
  std::size_t on_data(ConnectionId id, wire::Bytes data) override;
  void on_writable(ConnectionId id) override;
  void on_peer_closed(ConnectionId id) override;
  void on_closed(ConnectionId id, stack::CloseReason reason) override;

  const EchoCounters& counters() const { return counters_; }
  std::size_t connections() const { return streams_.size(); }

 private:
  // Sends what the stack takes; resumes receiving when space opened; shuts down when finished.
  void flush(ConnectionId id, EchoStream& stream);

  Transport& transport_;
  std::size_t buffer_size_;
  std::unordered_map<ConnectionId, EchoStream> streams_;
  EchoCounters counters_;
};

// Datagrams from ports below 1024 are not answered (counted): a forged datagram "from" another
// host's echo or chargen port would otherwise start a loop between the two services, and no
// legitimate echo client sends from a privileged port.
class EchoUdp final : public stack::UdpHandler {
 public:
  explicit EchoUdp(Transport& transport) : transport_(transport) {}
  void on_datagram(stack::Endpoint from, std::uint16_t to_port, wire::Bytes payload) override;
  const EchoCounters& counters() const { return counters_; }

 private:
  Transport& transport_;
  EchoCounters counters_;
};

}  // namespace phalanx::apps
