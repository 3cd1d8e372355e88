// Checkers of the whole-member world (issue 10): observers that see every frame a member sends
// and every stream byte a peer receives, and judge the run at its end. Beside checkers.hpp (the
// checkers of the cluster-only world).
//
//   bytes      every stream byte a peer receives (a download's body, an echo) is the right byte
//              at the right offset: offsets follow each other with no gap or overlap, and each
//              byte equals content_byte(key, offset) (no loss, duplication or corruption);
//   ownership  no TCP segment from the cluster IP leaves a member whose own table does not give
//              it the workset of the segment's client (address, port) at that instant;
//   resets     no member resets a connection whose server (the member that sent its SYN-ACK)
//              is another member, still up, and not faulted since the SYN-ACK (crashed,
//              restarted, left, paused for longer than the failure interval, cut off:
//              NodeWorld::faulted) — such a server's connections may be reset by the new owner
//              of their worksets until sessions are replicated —, while the peer's connection
//              is running (one the peer has completed loses nothing); and no server, not
//              faulted since, resets its own connection while the peer still runs it (an idle
//              connection answered with an RST for a keepalive probe, a short one reset in its
//              handshake...);
//   outcome    at the end every connection has ended: completed with every byte, or reset or
//              timed out (losses, counted) with its cause recorded; truncated and bad_response
//              are violations, and so is a burst's request that never got its connection;
//   servers    which member answered each connection's SYN (its SYN-ACK): the scenario uses it
//              to tell expected losses (the crashed member's connections) from the others.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sim/node_world.hpp"
#include "sim/tcp_peer.hpp"

namespace phalanx::sim {

// Connections of one kind at the end of a run (a burst's short downloads are their own kind).
struct KindTally {
  std::size_t opened = 0;
  std::size_t completed = 0;
  std::size_t lost = 0;  // reset or timed out
};
enum class LoadKind : std::uint8_t { download, echo, idle, short_download };
inline constexpr std::size_t kLoadKinds = 4;
std::string_view to_string(LoadKind k);
LoadKind load_kind(const PeerConnection& c);

class NodeCheckers final : public NodeObserver, public PeerObserver {
 public:
  static constexpr std::size_t kMaxReported = 20;  // violations kept as text (all are counted)

  void on_stream_bytes(const PeerConnection& c, std::uint64_t offset, wire::Bytes bytes) override;
  void on_open(const PeerConnection& c) override;
  void on_outcome(const PeerConnection& c) override;
  void on_member_frame(const NodeWorld& w, std::size_t slot, wire::Bytes frame) override;
  // The outcome rule over every connection of every peer; call once, at the end.
  void finish(const NodeWorld& w);

  // The member that sent the SYN-ACK of connection `c`, if any.
  std::optional<std::size_t> server(const PeerConnection& c) const;
  // The same for the latest connection of `peer` from `port` (a port is used again once the
  // peer wraps its ephemeral range: prefer the overload above).
  std::optional<std::size_t> server(wire::Ipv4Addr peer, std::uint16_t port) const;

  void violation(std::string what);
  const std::vector<std::string>& violations() const { return violations_; }
  std::uint64_t violation_count() const { return violation_count_; }
  // Violations by the rule that found them: bytes, ownership, reset, outcome, lost (the
  // scenario's judgement of a lost connection), scenario (anything else a scenario reports).
  const std::map<std::string, std::uint64_t>& violations_by_kind() const { return by_rule_; }
  std::uint64_t bytes_checked() const { return bytes_checked_; }
  std::uint64_t segments_checked() const { return segments_checked_; }
  // By LoadKind, as finish() found them.
  const std::array<KindTally, kLoadKinds>& by_kind() const { return by_kind_; }

 private:
  std::map<std::pair<std::size_t, std::size_t>, std::uint64_t> next_offset_;  // (peer, id)
  struct Server {
    std::size_t slot;
    Time since;  // its first SYN-ACK
  };
  std::unordered_map<std::uint64_t, Server> server_;    // peer address << 16 | port
  std::unordered_set<std::uint64_t> reset_reported_;    // one reset violation per connection
  std::unordered_map<std::uint64_t, bool> running_;     // same key: the peer still runs it
  using ConnKey = std::pair<std::size_t, std::size_t>;  // (peer, id)
  std::unordered_map<std::uint64_t, ConnKey> current_;  // same key: its latest connection
  std::map<ConnKey, std::size_t> conn_server_;
  std::array<KindTally, kLoadKinds> by_kind_{};
  std::vector<std::string> violations_;
  std::map<std::string, std::uint64_t> by_rule_;
  std::uint64_t violation_count_ = 0;
  std::uint64_t bytes_checked_ = 0;
  std::uint64_t segments_checked_ = 0;
};

}  // namespace phalanx::sim
