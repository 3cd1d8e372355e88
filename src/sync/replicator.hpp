// Session replication between members (DESIGN §6): the owner streams its sessions' records to
// each workset's backup, holds back what the backup does not hold yet (output commit), and the
// backup adopts the sessions when it becomes the owner.
//
// Owner side (poll(), after the stack ran). For every connection an application holds on a
// workset this member owns, whose application can resume it (TcpHandler::snapshot()):
//   - the record is built from the connection and the snapshot; a new version when it changed;
//     versions go to the backup as deltas against the newest version it acknowledged (full
//     records to a new backup or after a loss), batched per backup, resent every `retransmit`
//     until acknowledged;
//   - the record says less than the connection knows where that is enough and changes less:
//     snd_nxt is the peer's acknowledged point (snd_una), moved in steps of send_window / 4 (a
//     new owner regenerates from there, and takes ACKs up to the send limit); the send window
//     fields follow it; ts_recent follows any other change (an older one only makes PAWS more
//     lenient); our TSval is sent ahead by ts_ahead (a new owner's TSval must never be older than
//     one the peer has seen: it continues from there, and a jump forward is harmless);
//   - what the connection may do is bounded by the oldest version the backup may hold (the
//     newest acknowledged one; before any, the handshake: the stack holds a new connection
//     there, StackLimits::hold_until_replicated, and the peer's next segment lets any member
//     rebuild it from its SYN cookie): its ACKs carry
//     no more than that version's rcv_nxt (the input the application had taken: bytes still in
//     the receive buffer are neither acknowledged nor replicated), its window edge no more than
//     that version's, and it sends nothing at or beyond that version's send limit:
//     min(snd_una + send_window, what the application's replicated state determines).
// Backup side (on_datagram()): updates go into the ReplicaStore (newest version wins; a record
// for a workset whose owner in our table is not the sender is refused and not acknowledged: the
// owner retries once our table agrees); each batch is acknowledged.
// Takeover (take_over()): the store's records of the workset are restored
// (tcp::Connection::restore, ack_slack up to the send limit) and adopted by the application
// listening on their port, which resumes from its snapshot.
//
// Pure (DESIGN §2): the node gives it `now` and takes its datagrams.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <variant>
#include <vector>

#include "cluster/messages.hpp"
#include "filter/workset.hpp"
#include "stack/stack.hpp"
#include "sync/record.hpp"
#include "sync/replica_store.hpp"
#include "wire/time.hpp"

namespace phalanx::sync {

struct ReplicatorConfig {
  std::uint32_t cluster_id = 0;
  wire::Ipv4Addr self;
  std::size_t max_sessions = 65536;  // records a backup holds; beyond, sessions go unprotected
  Duration retransmit = std::chrono::milliseconds(20);
  // A backup that acknowledges nothing for this long (cut off, paused, dead and not yet
  // declared so) leaves its sessions unprotected rather than stalled: the limits are lifted
  // until it answers again. Never break a live connection for its copy.
  Duration ack_timeout = std::chrono::milliseconds(50);
  std::uint32_t send_window = 512 * 1024;  // how far the owner may send beyond snd_una
  std::uint32_t ts_ahead_ms = 60'000;
  // A live move waits this long for the target to acknowledge the newest version of every
  // session; then it goes with the newest acknowledged one (output commit makes any of them a
  // valid point to resume from; a newer one only spares the peer a retransmission).
  Duration move_flush = std::chrono::milliseconds(100);
};

// What the replicator asks of the cluster; the node answers from cluster::Member.
struct ClusterView {
  std::function<bool(filter::WorksetId)> owns;
  std::function<std::optional<wire::Ipv4Addr>(filter::WorksetId)> owner;
  std::function<std::optional<wire::Ipv4Addr>(filter::WorksetId)> backup;  // of our worksets
  std::function<cluster::Epoch()> epoch;
  std::function<filter::WorksetId(wire::Ipv4Addr remote, std::uint16_t port)> workset_of;
};

struct ReplicatorCounters {
  // Owner side.
  std::uint64_t batches_sent = 0;
  std::uint64_t batch_bytes = 0;
  std::uint64_t updates_sent = 0;
  std::uint64_t full_updates_sent = 0;
  std::uint64_t update_bytes = 0;  // the updates alone, without headers
  std::uint64_t resent = 0;        // versions sent again: no acknowledgement in time
  std::uint64_t acks_in = 0;
  std::uint64_t need_full_in = 0;
  std::uint64_t unprotected = 0;    // polls that found a session with no backup to go to
  std::uint64_t backup_silent = 0;  // sessions left unprotected: their backup did not answer
  std::uint64_t not_resumable = 0;  // sessions whose application keeps no snapshot
  // Backup side.
  std::uint64_t batches_in = 0;
  std::uint64_t refused_not_owner = 0;  // updates from a member our table says is not the owner
  std::uint64_t decode_errors = 0;
  // Takeover.
  std::uint64_t sessions_adopted = 0;
  std::uint64_t adopt_failed = 0;  // no listener, the stack or the application refused
  // Live moves (owner side).
  std::uint64_t moves_ready = 0;    // let go: the target holds every session
  std::uint64_t moves_flushed = 0;  // ... with the newest version of each
  std::uint64_t moves_refused = 0;  // kept: a session the target holds no copy of
  std::uint64_t sessions_handed_over = 0;
};

// A live move's outcome (Replicator::take_moves()).
struct MoveResult {
  filter::WorksetId workset;
  bool ready = false;  // false: refused, the workset stays here
};

struct SyncOut {
  wire::Ipv4Addr to;
  std::vector<std::byte> bytes;
};

class Replicator {
 public:
  Replicator(stack::Stack& stack, const ReplicatorConfig& config, ClusterView view,
             const cluster::Authenticator& auth);

  // Whether a control-channel datagram is a sync datagram (magic "PHSY").
  static bool is_sync(wire::Bytes datagram);

  void poll(Time now);
  void on_datagram(Time now, wire::Bytes datagram);
  // This member now owns `ws`: adopt the sessions held for it.
  void take_over(Time now, filter::WorksetId ws);

  // Live moves (issue 11). The master asks this owner to let `ws` go to `target`. A workset
  // without connections goes at once (settled ready). With connections, the move is on when
  // the target is the workset's backup and every session of `ws` is replicated there
  // (resumable, its backup answering, a version acknowledged) with no handshake in progress;
  // poll() then settles it: ready once the target acknowledged the newest version of every
  // session, or after move_flush with the newest acknowledged ones; refused if a session loses
  // its copy meanwhile. False: refused at once.
  bool begin_move(Time now, filter::WorksetId ws, wire::Ipv4Addr target);
  std::vector<MoveResult> take_moves();
  // The member let `ws` go: its sessions are forgotten here without a segment (the target adopts
  // them from its copy) and without a word to the backup, which holds that copy.
  void hand_over(filter::WorksetId ws);

  std::vector<SyncOut> take_output();
  Time next_deadline() const;
  const ReplicatorCounters& counters() const { return counters_; }
  const ReplicaStore& store() const { return store_; }
  std::size_t tracked() const { return tracked_.size(); }

 private:
  // What a version lets the connection do (see the header).
  struct Limits {
    std::uint64_t version = 0;
    tcp::AckLimit ack;
    tcp::SeqNum send_limit;
  };
  struct Tracked {
    SessionRecord current;    // the newest version built
    std::uint16_t dirty = 0;  // field groups changed since `acked`
    std::uint64_t acked = 0;  // newest version the backup acknowledged (0: none)
    std::uint64_t sent = 0;   // newest version sent
    std::uint64_t first = 0;  // the first version of this tracking
    Time sent_at{};
    Time unacked_since = kNever;  // when the oldest version not acknowledged was first sent
    bool lifted = false;          // unprotected: the backup is silent (ack_timeout)
    bool full = true;             // the next update is a full record
    wire::Ipv4Addr backup;
    std::deque<Limits> versions;  // front: the version in force; then those in flight
    bool seen = false;            // found open by this poll
  };
  struct Batch {
    std::vector<std::pair<stack::ConnectionId, std::uint64_t>> versions;
  };

  SessionRecord build(const tcp::Connection& c, const stack::AppSnapshot& snap, const Tracked* t,
                      filter::WorksetId ws) const;
  static Limits limits_of(const SessionRecord& r);
  void apply_limits(Time now, stack::ConnectionId id, Tracked& t);
  void send_batches(Time now);
  void on_batch(Time now, wire::Ipv4Addr from, const SyncBatch& b);
  void on_ack(Time now, wire::Ipv4Addr from, const SyncAck& a);
  // Encodes `body` with our header (cluster id, self, epoch) and queues it for `to`.
  void emit(wire::Ipv4Addr to, std::variant<SyncBatch, SyncAck> body);
  // Whether every session of `ws` has a copy at `target` (newest: the newest version), and no
  // connection of `ws` is outside what we replicate (a handshake, an application without
  // snapshots).
  bool movable(filter::WorksetId ws, wire::Ipv4Addr target, bool newest) const;
  // Whether the stack holds a connection of `ws` in a state `in_state` accepts.
  bool any_connection(filter::WorksetId ws, const std::function<bool(tcp::State)>& in_state) const;
  void settle_moves(Time now);

  stack::Stack& stack_;
  ReplicatorConfig config_;
  ClusterView view_;
  const cluster::Authenticator& auth_;
  ReplicaStore store_;
  std::map<stack::ConnectionId, Tracked> tracked_;
  // Per backup: the sessions that ended, to tell it; the batches in flight by sequence.
  std::map<wire::Ipv4Addr, std::vector<SessionKey>> closed_;
  std::map<wire::Ipv4Addr, std::uint32_t> next_sequence_;
  std::map<std::pair<wire::Ipv4Addr, std::uint32_t>, Batch> in_flight_;
  std::vector<SyncOut> out_;
  struct Move {
    wire::Ipv4Addr target;
    Time deadline;
  };
  std::map<std::uint16_t, Move> moves_;
  std::vector<MoveResult> settled_;
  Time next_resend_ = kNever;
  std::uint64_t version_clock_ = 0;  // every version made here (see poll())
  ReplicatorCounters counters_;
};

}  // namespace phalanx::sync
