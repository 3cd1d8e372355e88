// The cluster control protocol (DESIGN §4): message types, their fields, and the codec.
//
// Every message is one UDP datagram on the control channel:
//
//   header   magic "PHLX" u32 | version u8 | type u8 | body length u16 | cluster id u32 |
//            sender u32 (the sender's member address) | epoch u64
//   body     type-specific, big-endian, `body length` bytes
//   envelope auth kind u8 | auth length u16 | auth bytes
//
// Bodies, fields in declaration order (text = u8 length + bytes, at most kMaxReasonText;
// list = u16 count + items; address = 4 bytes; workset = u16 < 1024):
//   JoinRequest        incarnation u64 | worksets list
//   JoinNak            member | reason u8 (a NakReason) | text
//   JoinAck            member | keepalive_sequence u32
//   MasterOffer        member_count u16
//   OtherMasterExists  member
//   ExitCluster        member | text
//   MasterKeepalive    sequence u32 | keepalive_n u8 | failure_interval_ms u16 |
//                      members list (at most kMaxMembers) |
//                      owners list of u8 (count 0 or 1024; each < members count or kUnassigned) |
//                      active u16 | unheard u16 | handshake generation u32 | handshake key 2 x u64
//   FollowerKeepalive  sequence u32 | load u32 | busy bitmap
//   WorkAssign         member | worksets list
//   WorkAssignAck      worksets list
//   WorkDeassign       member | target | worksets list
//   WorkDeassignAck    worksets list | refused list
// (bitmap = u16 byte count, 0 or 128, + bytes: bit i (byte i / 8, most significant bit first)
// set when workset i is in the set; an all-zero bitmap is sent as count 0, and a count of 128
// with no bit set is rejected, so that every set has one encoding.)
// The body length must equal exactly what the fields consume.
//
// The envelope authenticates header + body. Kind 0 is the null authenticator (no bytes) used
// until the security issue fills it in; a decoder configured to require another kind rejects
// kind 0. Decoding never trusts a length field: every count is checked against what remains.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/result.hpp"

namespace phalanx::cluster {

using wire::Ipv4Addr;

inline constexpr std::uint32_t kMagic = 0x50484c58;  // "PHLX"
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 24;      // 4 + 1 + 1 + 2 + 4 + 4 + 8
inline constexpr std::size_t kMaxMembers = 255;     // owner indexes in keepalives are one byte
inline constexpr std::size_t kMaxReasonText = 200;  // JoinNak / ExitCluster free text

// The master's term. Every member that becomes master takes max(epoch seen) + 1; messages of an
// older epoch than the one a member follows are stale (counted, ignored).
using Epoch = std::uint64_t;

enum class MessageType : std::uint8_t {
  join_request = 1,
  join_nak = 2,
  join_ack = 3,
  master_offer = 4,
  other_master_exists = 5,
  exit_cluster = 6,
  master_keepalive = 7,
  follower_keepalive = 8,
  work_assign = 9,
  work_assign_ack = 10,
  work_deassign = 11,
  work_deassign_ack = 12,
};
std::string_view to_string(MessageType t);

enum class NakReason : std::uint8_t {
  in_progress = 1,   // the master is asking its applications; wait for the verdict
  vetoed = 2,        // an application refused; text says which and why
  not_master = 3,    // sent to a member that is not (or no longer) master
  cluster_full = 4,  // kMaxMembers reached
};

struct JoinRequest {
  std::uint64_t incarnation = 0;  // a fresh number per process start: tells restarts apart
  std::vector<std::uint16_t> worksets = {};  // those the joining member still serves, if any
  // Of those, the ones with live TCP sessions: they beat an owner without (reconcile_claims).
  std::vector<std::uint16_t> busy = {};
  bool operator==(const JoinRequest&) const = default;
};
struct JoinNak {
  Ipv4Addr member;  // who is refused
  NakReason reason = NakReason::in_progress;
  std::string text;
  bool operator==(const JoinNak&) const = default;
};
struct JoinAck {
  Ipv4Addr member;  // who is admitted
  // The sequence of the first MasterKeepalive that lists it: the new follower ignores older
  // ones, which may still be on their way (a keepalive sent before the admission, overtaken by
  // the JoinAck, would otherwise tell it that it is not a member and send it back to joining).
  std::uint32_t keepalive_sequence = 0;
  bool operator==(const JoinAck&) const = default;
};
struct MasterOffer {
  std::uint16_t member_count = 1;
  bool operator==(const MasterOffer&) const = default;
};
struct OtherMasterExists {
  Ipv4Addr member;  // the member told to step down and rejoin
  bool operator==(const OtherMasterExists&) const = default;
};
struct ExitCluster {
  Ipv4Addr member;  // the member that must leave (a member leaving on its own names itself)
  std::string text;
  bool operator==(const ExitCluster&) const = default;
};

// Per workset in a MasterKeepalive: index into `members`, or kUnassigned.
inline constexpr std::uint8_t kUnassigned = 0xff;

// The cluster's SYN-cookie key (stack::CookieKey): every member answers handshakes with the
// newest one its master announced, so that whichever member serves a workset next can complete
// a handshake its previous owner answered (DESIGN §6). The master draws a new one every
// kHandshakeKeyLife; members keep the last kHandshakeKeysKept. In clear until the security issue
// protects the envelope.
struct HandshakeKey {
  std::uint32_t generation = 0;
  std::array<std::uint64_t, 2> secret{};
  bool operator==(const HandshakeKey&) const = default;
};

struct MasterKeepalive {
  std::uint32_t sequence = 0;
  std::uint8_t keepalive_n = 2;  // keepalives per failure interval (DESIGN §4)
  std::uint16_t failure_interval_ms = 200;
  std::vector<Ipv4Addr> members;     // the master first, then followers
  std::vector<std::uint8_t> owners;  // 1024 entries (or empty: no table this time)
  // Worksets that carried client traffic within the last T in this master's view (its own and
  // its followers' FollowerKeepalive::active): the tie-break keeps the master that serves more.
  std::uint16_t active = 0;
  // How many members of the list (the master never) this master has not heard within T and
  // keeps in doubt instead of removing (cluster::Member: a master cut off from its clients and
  // from half its view or more waits before giving their worksets away). A follower counts them
  // out of its view: its side is a minority, and answers nothing it does not know.
  std::uint16_t unheard = 0;
  HandshakeKey handshake{};
  bool operator==(const MasterKeepalive&) const = default;
};
struct FollowerKeepalive {
  std::uint32_t sequence = 0;  // strictly increasing per incarnation
  std::uint32_t load = 0;
  // Worksets this follower owns that carry live TCP sessions (ascending): the master does not
  // move them while the sessions cannot move with them (issue 10).
  std::vector<std::uint16_t> busy;
  std::uint16_t active = 0;  // its worksets that carried client traffic within the last T
  // Member::drain(): move every workset of this follower away (with its sessions), then it
  // leaves. One flags byte on the wire (bit 0; the others zero).
  bool draining = false;
  bool operator==(const FollowerKeepalive&) const = default;
};
struct WorkAssign {
  Ipv4Addr member;
  std::vector<std::uint16_t> worksets;
  bool operator==(const WorkAssign&) const = default;
};
struct WorkAssignAck {
  std::vector<std::uint16_t> worksets;
  bool operator==(const WorkAssignAck&) const = default;
};
struct WorkDeassign {
  Ipv4Addr member;  // who gives the worksets up
  Ipv4Addr target;  // who will receive them (for the state flush of later issues)
  std::vector<std::uint16_t> worksets;
  bool operator==(const WorkDeassign&) const = default;
};
struct WorkDeassignAck {
  std::vector<std::uint16_t> worksets;  // released
  // Kept: they carry live sessions (ascending). The master cancels their moves.
  std::vector<std::uint16_t> refused;
  bool operator==(const WorkDeassignAck&) const = default;
};

using Body = std::variant<JoinRequest, JoinNak, JoinAck, MasterOffer, OtherMasterExists,
                          ExitCluster, MasterKeepalive, FollowerKeepalive, WorkAssign,
                          WorkAssignAck, WorkDeassign, WorkDeassignAck>;

struct Message {
  std::uint32_t cluster_id = 0;
  Ipv4Addr sender;
  Epoch epoch = 0;
  Body body;

  MessageType type() const;
  bool operator==(const Message&) const = default;
};

// `text` cut to what a message can carry (kMaxReasonText bytes). Text that came from the network
// (a reason received, quoted in a reply or a goodbye) goes through this before it is sent again:
// received text may already use the whole limit, so any prefix would push it past (issue 9).
std::string bounded_text(std::string_view text);

// The cluster id carried in every header: a stable 32-bit hash (FNV-1a) of the cluster name.
std::uint32_t cluster_id_of(std::string_view cluster_name);

// Authenticates messages. The null authenticator signs nothing and accepts only kind 0.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual std::uint8_t kind() const = 0;
  // Appends the auth bytes for `signed_part` (header + body) to `out`.
  virtual void seal(wire::Bytes signed_part, std::vector<std::byte>& out) const = 0;
  // True when `auth` (of this kind) authenticates `signed_part`.
  virtual bool verify(wire::Bytes signed_part, wire::Bytes auth) const = 0;
};

class NullAuthenticator final : public Authenticator {
 public:
  std::uint8_t kind() const override { return 0; }
  void seal(wire::Bytes, std::vector<std::byte>&) const override {}
  bool verify(wire::Bytes, wire::Bytes auth) const override { return auth.empty(); }
};

// Why a datagram was rejected; each has a counter in the member.
enum class DecodeError : std::uint8_t {
  truncated,  // shorter than the header, or than the envelope says
  bad_magic,
  bad_version,
  unknown_type,
  bad_length,      // body length runs past the datagram or disagrees with what the fields use
  bad_field,       // a value out of range (reason code, owner index, workset id > 1023...)
  bad_auth_kind,   // envelope of another kind than the authenticator's
  bad_auth,        // the authenticator refused it
  trailing_bytes,  // bytes after the envelope
};
inline constexpr std::size_t kDecodeErrorCount = 9;
std::string_view to_string(DecodeError e);

// Encodes and seals one datagram. A message that cannot be encoded (more than kMaxMembers
// members, owners neither empty nor 1024 entries or naming no member, a text longer than
// kMaxReasonText, a workset id >= 1024, an unknown NakReason, a body or auth over 65535 bytes) is
// a caller bug: encode aborts with a message. decode with the same authenticator accepts whatever
// encode returns, and gives back an equal Message.
std::vector<std::byte> encode(const Message& m, const Authenticator& auth);

// Decodes and authenticates one datagram. Never trusts a length; never crashes on any input.
// Checks, in order: the header (truncated, bad_magic, bad_version, unknown_type, bad_length), the
// envelope (truncated, trailing_bytes, bad_auth_kind, bad_auth), and only then the body's fields
// (bad_length, bad_field): nothing is read from a body before it is authenticated.
std::variant<Message, DecodeError> decode(wire::Bytes datagram, const Authenticator& auth);

}  // namespace phalanx::cluster
