// Session replication records and the sync datagram codec (DESIGN §6, spec FIG. 7).
//
// A session's record is FIG. 7's initial state (sent once), its essential state (sent whenever it
// changes) and what the guarantee needs beyond FIG. 7: the send limit, a per-session version,
// the workset's ownership epoch (records of a stale owner are fenced off) and the application's
// state blob. Calculable state is never sent: tcp::Connection::restore() rebuilds it.
//
// Updates are deltas. The owner keeps, per session, the mask of every field that changed since
// the newest version its backup acknowledged, and sends those fields with their current values
// and that acknowledged version as the base. A backup holding any version from the base on gets
// the same record by applying it: a field that changed after the base is in the update; a field
// that did not still has the base's value in what the backup holds. A backup holding less than
// the base (it lost a datagram, it is new) asks for the full record.
//
// Replication moves forward only (STYLE 8): an update whose version is not newer than the one
// held is stale, counted and ignored (and acknowledged: the backup holds something newer).
//
// One sync datagram (UDP, on the sync port):
//
//   header   magic "PHSY" u32 | version u8 | type u8 (1 SyncBatch, 2 SyncAck) |
//            body length u16 | cluster id u32 | sender u32 (the sender's member address) |
//            epoch u64
//   body     SyncBatch:  sequence u32 | update count u16 | updates | closed count u16 |
//                        closed session keys
//            SyncAck:    sequence u32 (the batch acknowledged) | need-full count u16 |
//                        session keys
//   envelope auth kind u8 | auth length u16 | auth bytes (as cluster::messages; kind 0 null)
//
//   session key  local addr u32 | local port u16 | remote addr u32 | remote port u16
//   update       key | workset u16 | owner epoch u64 | version u64 | base version u64
//                (0: a full record) | field mask u16 | the fields in the mask, in bit order:
//     bit 0  initial      mss u16 | options size u16 | iss u32 (the stream's origin)
//     bit 1  flags        u8: nodelay, no_options, ws_requested, ws_received, ts_requested,
//                         ts_received, sack_permitted (bit 0 first) | snd_scale u8 |
//                         rcv_scale u8
//     bit 2  send         snd_nxt u32 | snd_wl1 u32 | snd_wl2 u32 | snd_wnd u32
//     bit 3  receive      rcv_nxt u32 | rcv_adv u32
//     bit 4  timestamps   ts_recent u32 | ts_val_last u32
//     bit 5  fin          state u8 (a tcp::State: established .. time_wait) | fin_seq u32 |
//                         fin_sent u8 (0 or 1)
//     bit 6  send limit   u32
//     bit 7  app          length u16 (at most kMaxAppState) | bytes
//   A full record carries every bit. Any other bit set, a mask of 0, a full record without
//   every bit, a base not below the version, a version of 0, a workset of 1024 or more, a state
//   outside the list, a flag byte with unused bits set, a fin_sent other than 0 or 1, an app
//   length over kMaxAppState, or a length that runs past the body is malformed. A datagram over
//   kMaxSyncDatagram is too (no sender makes one), so that every message has one encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <variant>
#include <vector>

#include "cluster/messages.hpp"
#include "tcp/connection.hpp"
#include "wire/bytes.hpp"

namespace phalanx::sync {

inline constexpr std::uint32_t kSyncMagic = 0x50485359;  // "PHSY"
inline constexpr std::uint8_t kSyncVersion = 1;
inline constexpr std::size_t kSyncHeaderSize = 24;  // as cluster::kHeaderSize
// The application's state blob: http's request and offset, echo's unacknowledged bytes.
inline constexpr std::size_t kMaxAppState = 16 * 1024;
// What one datagram may carry: the sender cuts batches to stay below it.
inline constexpr std::size_t kMaxSyncDatagram = 60 * 1024;

using SessionKey = tcp::FourTuple;  // as the owner sees it: local = the cluster IP

// Field groups of a record, one bit each (see the layout above).
enum Field : std::uint16_t {
  kFieldInitial = 1u << 0,
  kFieldFlags = 1u << 1,
  kFieldSend = 1u << 2,
  kFieldReceive = 1u << 3,
  kFieldTimestamps = 1u << 4,
  kFieldFin = 1u << 5,
  kFieldSendLimit = 1u << 6,
  kFieldApp = 1u << 7,
};
inline constexpr std::uint16_t kAllFields = 0xff;

struct SessionRecord {
  std::uint16_t workset = 0;
  cluster::Epoch owner_epoch = 0;  // the master's epoch when the owner got the workset
  std::uint64_t version = 0;       // 1 for the first record of a session, +1 per change
  tcp::InitialState initial;       // initial.tuple is the session key
  tcp::EssentialState essential;
  // The owner never sends beyond this: after a takeover, ACKs up to it are taken (restore()'s
  // ack_slack = send_limit - essential.snd_nxt).
  tcp::SeqNum send_limit;
  std::vector<std::byte> app;
  bool operator==(const SessionRecord&) const = default;
};

// The field groups in which a and b differ (version, workset and epoch aside).
std::uint16_t diff(const SessionRecord& a, const SessionRecord& b);

// One record on the wire: a full one (base_version 0, mask kAllFields) or a delta.
struct Update {
  std::uint64_t base_version = 0;
  std::uint16_t mask = kAllFields;
  // Key, workset, epoch and version always; the other fields only where `mask` says (the rest
  // is left default by the decoder and ignored by the encoder).
  SessionRecord record;
  bool operator==(const Update&) const = default;
};

// What the owner sends: the fields in `mask` of `current`, against `base_version` (0 and
// kAllFields for a full record).
Update make_update(const SessionRecord& current, std::uint64_t base_version, std::uint16_t mask);

enum class ApplyResult : std::uint8_t {
  applied,    // `held` is now the update's version
  stale,      // `held` is already this version or newer: ignored (STYLE 8)
  need_full,  // a delta whose base is newer than `held` (or nothing held): ask for the full one
};
// Applies `u` to `held` (`have` false: nothing held for this session yet). Does not fence
// epochs: the store does (it knows the workset's current epoch).
ApplyResult apply(const Update& u, SessionRecord& held, bool have);

struct SyncBatch {
  std::uint32_t sequence = 0;  // per sender, +1 per batch
  std::vector<Update> updates;
  std::vector<SessionKey> closed;  // sessions that ended: the backup forgets them
  bool operator==(const SyncBatch&) const = default;
};
struct SyncAck {
  std::uint32_t sequence = 0;         // the batch this acknowledges
  std::vector<SessionKey> need_full;  // deltas the backup could not apply
  bool operator==(const SyncAck&) const = default;
};

struct SyncMessage {
  std::uint32_t cluster_id = 0;
  wire::Ipv4Addr sender;
  cluster::Epoch epoch = 0;
  std::variant<SyncBatch, SyncAck> body;
  bool operator==(const SyncMessage&) const = default;
};

// Aborts on a message it cannot encode (an app blob over kMaxAppState, a list over u16, a
// datagram over kMaxSyncDatagram, an update the decoder would call malformed): the sender's
// batching keeps within them.
std::vector<std::byte> encode(const SyncMessage& m, const cluster::Authenticator& auth);
// Rejects anything malformed with the reason (as cluster::decode: header, then envelope, then
// body; bad_field for a value out of range or a malformed update) without trusting a length
// field; never aborts on any input. Call it qualified (sync::decode): cluster::decode takes the
// same arguments and argument-dependent lookup finds it too.
std::variant<SyncMessage, cluster::DecodeError> decode(wire::Bytes datagram,
                                                       const cluster::Authenticator& auth);
// The encoded size of one update (for batching).
std::size_t encoded_size(const Update& u);

}  // namespace phalanx::sync
