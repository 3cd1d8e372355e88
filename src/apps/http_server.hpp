// The http application (DESIGN §8): one HttpSession per TCP connection, fed by the stack's
// TcpHandler callbacks and sending through a Transport. All the HTTP is in http_session.hpp;
// this file only moves bytes and ends connections:
//   on_data        -> session input, as much as it holds; the rest stays in the stack's window
//                     (receive paused) until answers go out and make room: tcp_resume_receive
//   on_writable    -> send as much output as the stack's send space takes, in chunks
//   on_peer_closed -> the session answers what it has, then finishes
//   session finished -> tcp_shutdown (FIN after the queued data); failed -> tcp_abort
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "apps/file_source.hpp"
#include "apps/http_session.hpp"
#include "apps/transport.hpp"
#include "stack/stack.hpp"

namespace phalanx::apps::http {

inline constexpr std::uint16_t kHttpPort = 80;

struct ServerCounters {
  std::uint64_t connections = 0;
  std::uint64_t aborted = 0;        // sessions that failed (short file read)
  std::uint64_t input_paused = 0;   // on_data() left bytes in the window (pipelined backlog full)
  std::uint64_t adopted = 0;        // sessions resumed from a snapshot after a takeover
  std::uint64_t adopt_refused = 0;  // a snapshot that did not decode or did not restore
  SessionCounters sessions;         // summed over closed sessions
};

class HttpServer final : public stack::TcpHandler {
 public:
  HttpServer(Transport& transport, FileSource& files, SessionLimits limits = {});

  void on_open(ConnectionId id) override;
  std::size_t on_data(ConnectionId id, wire::Bytes data) override;
  void on_writable(ConnectionId id) override;
  void on_peer_closed(ConnectionId id) override;
  void on_closed(ConnectionId id, stack::CloseReason reason) override;
  // Session replication (DESIGN §6), with SessionLimits::retain_until_acked: the snapshot is
  // stream offset u64 | peer closed u8 (0/1) | the retained input (HttpSession::snapshot()).
  std::optional<stack::AppSnapshot> snapshot(ConnectionId id, std::uint64_t acked) override;
  bool on_adopted(ConnectionId id, wire::Bytes state, std::uint64_t resume_at) override;
  void on_acknowledged(ConnectionId id, std::uint64_t acked) override;

  // Counters of closed sessions plus the open ones.
  ServerCounters counters() const;
  std::size_t connections() const { return sessions_.size(); }
  // For replication (DESIGN §6) until the stack grows snapshot/resume hooks: the session of a
  // connection, or nullptr.
  HttpSession* session(ConnectionId id);

 private:
  struct Connection {
    HttpSession session;
    bool shut_down = false;
    bool input_paused = false;  // on_data() took less than offered: resume when room opens
  };
  void pump(ConnectionId id, Connection& c);
  void forget(ConnectionId id);

  Transport& transport_;
  FileSource& files_;
  SessionLimits limits_;
  std::unordered_map<ConnectionId, Connection> sessions_;
  ServerCounters counters_;
};

}  // namespace phalanx::apps::http
