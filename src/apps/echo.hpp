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
//
// Session replication (DESIGN §6). The output stream is the input stream, so what a new owner
// needs to resume is the input taken and not yet acknowledged by the peer. A resumable EchoTcp
// keeps sent bytes in its ring until the peer acknowledges them (snapshot() says how far), and
// its snapshot is: stream offset of the oldest held byte u64 | peer closed u8 (0/1) | the held
// bytes. The ring is then the whole of what the connection holds in flight, so the node sizes it
// to fit a sync record (sync::kMaxAppState): the price of an echo that survives its member is a
// window of that size, one backup round trip per window when the backup lags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "apps/transport.hpp"
#include "stack/stack.hpp"
#include "wire/bytes.hpp"

namespace phalanx::apps {

inline constexpr std::uint16_t kEchoPort = 7;

inline constexpr std::size_t kEchoSnapshotHead = 9;  // stream offset u64 | peer closed u8

// A byte ring of fixed capacity: what was received and not yet sent back, and when `retain`, also
// what was sent and not yet acknowledged. Offsets count the stream's bytes from its first.
class EchoStream {
 public:
  explicit EchoStream(std::size_t capacity, bool retain = false);

  // Takes as many bytes of `in` as fit; returns how many. After the peer's FIN, takes none.
  std::size_t on_input(wire::Bytes in);
  void on_peer_closed() { peer_closed_ = true; }

  // The oldest bytes not sent yet, at most `max` (contiguous, so possibly fewer than buffered).
  wire::Bytes peek(std::size_t max) const;
  // The first n bytes of the last peek() were sent (and, when retaining, are kept).
  void consume(std::size_t n);
  // The peer acknowledged the stream up to `offset`: retained bytes before it are dropped (sent
  // ones only; an offset at or before start() changes nothing).
  void acknowledge(std::uint64_t offset);
  // Rebuilt on a new owner: `held` from offset `start`, none of it sent yet. False when it does
  // not fit.
  bool restore(std::uint64_t start, wire::Bytes held, bool peer_closed);
  // The held bytes, oldest first.
  void copy_held(std::byte* out) const;

  std::size_t buffered() const { return size_ - sent_; }  // not sent yet
  std::size_t held() const { return size_; }
  std::uint64_t start() const { return start_; }        // offset of the oldest held byte
  std::uint64_t end() const { return start_ + size_; }  // offset of the next byte taken
  std::size_t space() const { return capacity_ - size_; }
  std::size_t capacity() const { return capacity_; }
  bool peer_closed() const { return peer_closed_; }
  // The peer closed and everything it sent was echoed: shut the connection down.
  bool finished() const { return peer_closed_ && buffered() == 0; }
  bool shut_down = false;     // the adapter sent FIN
  bool input_paused = false;  // on_data() left bytes with the stack: resume once space opens

 private:
  std::size_t capacity_;
  bool retain_;
  std::vector<std::byte> ring_;  // allocated on first use: most echo connections never queue
  std::size_t head_ = 0;         // index of the oldest held byte
  std::size_t size_ = 0;         // held
  std::size_t sent_ = 0;         // of the held bytes, how many were sent (retain only)
  std::uint64_t start_ = 0;
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
  std::uint64_t adopted = 0;            // sessions resumed from a snapshot after a takeover
  std::uint64_t adopt_refused = 0;      // a snapshot that did not decode or did not fit
};

class EchoTcp final : public stack::TcpHandler {
 public:
  // `buffer_per_connection` bounds what one connection may hold unsent (`resumable`: unsent and
  // unacknowledged, which the snapshot carries).
  EchoTcp(Transport& transport, std::size_t buffer_per_connection = 256 * 1024,
          bool resumable = false);

  void on_open(ConnectionId id) override;
  std::size_t on_data(ConnectionId id, wire::Bytes data) override;
  void on_writable(ConnectionId id) override;
  void on_peer_closed(ConnectionId id) override;
  void on_closed(ConnectionId id, stack::CloseReason reason) override;
  // Session replication (see above); nullopt unless resumable.
  std::optional<stack::AppSnapshot> snapshot(ConnectionId id, std::uint64_t acked) override;
  bool on_adopted(ConnectionId id, wire::Bytes state, std::uint64_t resume_at) override;
  void on_acknowledged(ConnectionId id, std::uint64_t acked) override;

  const EchoCounters& counters() const { return counters_; }
  std::size_t connections() const { return streams_.size(); }

 private:
  // Sends what the stack takes; resumes receiving when space opened; shuts down when finished.
  void flush(ConnectionId id, EchoStream& stream);
  // The peer acknowledged up to `acked` (modulo 2^32): held bytes before it go, and input
  // resumes once a quarter of the buffer is free.
  void acknowledge(ConnectionId id, EchoStream& stream, std::uint64_t acked);

  Transport& transport_;
  std::size_t buffer_size_;
  bool resumable_;
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
