#include "cluster/messages.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "filter/workset.hpp"

namespace phalanx::cluster {

namespace {

// Header field offsets (see the layout in messages.hpp).
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kVersionAt = 4;
constexpr std::size_t kTypeAt = 5;
constexpr std::size_t kBodyLengthAt = 6;
constexpr std::size_t kClusterIdAt = 8;
constexpr std::size_t kSenderAt = 12;
constexpr std::size_t kEpochAt = 16;
static_assert(kEpochAt + 8 == kHeaderSize);

constexpr std::size_t kEnvelopeHeaderSize = 3;  // auth kind u8 | auth length u16
constexpr std::size_t kMaxU16 = 0xffff;
constexpr std::size_t kBitmapBytes = filter::kWorksetCount / 8;
constexpr std::uint8_t kFirstType = 1;
constexpr std::uint8_t kLastType = 12;

// "Cannot happen" (STYLE 7): encode was handed a message no decoder would accept.
[[noreturn]] void die(const char* what, std::size_t value) {
  std::fprintf(stderr, "cluster message encode: %s (%zu)\n", what, value);
  std::abort();
}

template <class T>
constexpr MessageType kTypeOf = MessageType{0};
template <>
constexpr MessageType kTypeOf<JoinRequest> = MessageType::join_request;
template <>
constexpr MessageType kTypeOf<JoinNak> = MessageType::join_nak;
template <>
constexpr MessageType kTypeOf<JoinAck> = MessageType::join_ack;
template <>
constexpr MessageType kTypeOf<MasterOffer> = MessageType::master_offer;
template <>
constexpr MessageType kTypeOf<OtherMasterExists> = MessageType::other_master_exists;
template <>
constexpr MessageType kTypeOf<ExitCluster> = MessageType::exit_cluster;
template <>
constexpr MessageType kTypeOf<MasterKeepalive> = MessageType::master_keepalive;
template <>
constexpr MessageType kTypeOf<FollowerKeepalive> = MessageType::follower_keepalive;
template <>
constexpr MessageType kTypeOf<WorkAssign> = MessageType::work_assign;
template <>
constexpr MessageType kTypeOf<WorkAssignAck> = MessageType::work_assign_ack;
template <>
constexpr MessageType kTypeOf<WorkDeassign> = MessageType::work_deassign;
template <>
constexpr MessageType kTypeOf<WorkDeassignAck> = MessageType::work_deassign_ack;

bool known_reason(std::uint8_t r) {
  return r >= static_cast<std::uint8_t>(NakReason::in_progress) &&
         r <= static_cast<std::uint8_t>(NakReason::cluster_full);
}

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}

  void u8(std::uint8_t v) { wire::write_u8(grow(1), 0, v); }
  void u16(std::uint16_t v) { wire::write_u16(grow(2), 0, v); }
  void u32(std::uint32_t v) { wire::write_u32(grow(4), 0, v); }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void addr(Ipv4Addr a) { a.write(grow(4), 0); }
  void text(const std::string& s) {
    if (s.size() > kMaxReasonText) {
      die("text longer than kMaxReasonText", s.size());
    }
    u8(static_cast<std::uint8_t>(s.size()));
    for (char c : s) {
      u8(static_cast<std::uint8_t>(c));
    }
  }
  void count(std::size_t n) {
    if (n > kMaxU16) {
      die("list longer than 65535", n);
    }
    u16(static_cast<std::uint16_t>(n));
  }
  void bitmap(const std::vector<std::uint16_t>& ids) {
    if (ids.empty()) {
      u16(0);
      return;
    }
    u16(kBitmapBytes);
    wire::MutBytes bits = grow(kBitmapBytes);
    std::fill(bits.begin(), bits.end(), std::byte{0});
    for (std::uint16_t id : ids) {
      if (id >= filter::kWorksetCount) {
        die("workset id out of range", id);
      }
      bits[id / 8] |= std::byte{static_cast<std::uint8_t>(0x80u >> (id % 8))};
    }
  }
  void worksets(const std::vector<std::uint16_t>& ids) {
    count(ids.size());
    for (std::uint16_t id : ids) {
      if (id >= filter::kWorksetCount) {
        die("workset id out of range", id);
      }
      u16(id);
    }
  }

 private:
  wire::MutBytes grow(std::size_t n) {
    const std::size_t at = out_.size();
    out_.resize(at + n);
    return wire::MutBytes(out_).subspan(at, n);
  }

  std::vector<std::byte>& out_;
};

void put(Writer& w, const JoinRequest& b) {
  w.u64(b.incarnation);
  w.worksets(b.worksets);
  w.bitmap(b.busy);
}
void put(Writer& w, const JoinNak& b) {
  const auto reason = static_cast<std::uint8_t>(b.reason);
  if (!known_reason(reason)) {
    die("unknown NakReason", reason);
  }
  w.addr(b.member);
  w.u8(reason);
  w.text(b.text);
}
void put(Writer& w, const JoinAck& b) {
  w.addr(b.member);
  w.u32(b.keepalive_sequence);
}
void put(Writer& w, const MasterOffer& b) {
  w.u16(b.member_count);
}
void put(Writer& w, const OtherMasterExists& b) {
  w.addr(b.member);
}
void put(Writer& w, const ExitCluster& b) {
  w.addr(b.member);
  w.text(b.text);
}
void put(Writer& w, const MasterKeepalive& b) {
  if (b.members.size() > kMaxMembers) {
    die("more members than kMaxMembers", b.members.size());
  }
  if (!b.owners.empty() && b.owners.size() != filter::kWorksetCount) {
    die("owners neither empty nor one per workset", b.owners.size());
  }
  w.u32(b.sequence);
  w.u8(b.keepalive_n);
  w.u16(b.failure_interval_ms);
  w.count(b.members.size());
  for (Ipv4Addr a : b.members) {
    w.addr(a);
  }
  w.count(b.owners.size());
  for (std::uint8_t o : b.owners) {
    if (o != kUnassigned && o >= b.members.size()) {
      die("owner index names no member", o);
    }
    w.u8(o);
  }
  w.u16(b.active);
  if (b.unheard != 0 && b.unheard >= b.members.size()) {
    die("more members unheard than followers", b.unheard);
  }
  w.u16(b.unheard);
  w.u32(b.handshake.generation);
  w.u64(b.handshake.secret[0]);
  w.u64(b.handshake.secret[1]);
}
void put(Writer& w, const FollowerKeepalive& b) {
  w.u32(b.sequence);
  w.u32(b.load);
  w.bitmap(b.busy);
  w.u16(b.active);
  w.u8(b.draining ? 1 : 0);
}
void put(Writer& w, const WorkAssign& b) {
  w.addr(b.member);
  w.worksets(b.worksets);
}
void put(Writer& w, const WorkAssignAck& b) {
  w.worksets(b.worksets);
}
void put(Writer& w, const WorkDeassign& b) {
  w.addr(b.member);
  w.addr(b.target);
  w.worksets(b.worksets);
}
void put(Writer& w, const WorkDeassignAck& b) {
  w.worksets(b.worksets);
  w.worksets(b.refused);
}

// ---------------------------------------------------------------------------------------------
// Decoding

// Reads a body front to back. The first failure sticks: a read past the end is bad_length, a
// value out of range bad_field, and every later read returns zeros without looking at the bytes,
// so the error reported is always the first thing wrong.
class Reader {
 public:
  explicit Reader(wire::Bytes body) : body_(body) {}

  std::uint8_t u8() { return take(1) ? wire::read_u8(body_, off_ - 1) : 0; }
  std::uint16_t u16() { return take(2) ? wire::read_u16(body_, off_ - 2) : 0; }
  std::uint32_t u32() { return take(4) ? wire::read_u32(body_, off_ - 4) : 0; }
  std::uint64_t u64() {
    const std::uint64_t high = u32();
    return (high << 32) | u32();
  }
  Ipv4Addr addr() { return take(4) ? Ipv4Addr::read(body_, off_ - 4) : Ipv4Addr{}; }
  std::string text() {
    const std::size_t n = u8();
    check(n <= kMaxReasonText);
    if (!take(n)) {
      return {};
    }
    const auto bytes = body_.subspan(off_ - n, n);
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
      s[i] = static_cast<char>(bytes[i]);
    }
    return s;
  }
  // A list count, checked against what remains before anything is allocated for it.
  std::size_t count(std::size_t item_size) {
    const std::size_t n = u16();
    if (!error_ && n * item_size > body_.size() - off_) {
      error_ = DecodeError::bad_length;
    }
    return error_ ? 0 : n;
  }
  std::vector<std::uint16_t> worksets() {
    const std::size_t n = count(2);
    std::vector<std::uint16_t> ids;
    ids.reserve(n);
    for (std::size_t i = 0; i < n && !failed(); ++i) {
      ids.push_back(u16());
      check(ids.back() < filter::kWorksetCount);
    }
    return ids;
  }

  // Ascending; empty for count 0.
  std::vector<std::uint16_t> bitmap() {
    const std::size_t n = count(1);
    check(n == 0 || n == kBitmapBytes);
    std::vector<std::uint16_t> ids;
    if (failed() || n == 0 || !take(n)) {
      return ids;
    }
    const wire::Bytes bits = body_.subspan(off_ - n, n);
    for (std::size_t i = 0; i < filter::kWorksetCount; ++i) {
      if ((std::to_integer<unsigned>(bits[i / 8]) & (0x80u >> (i % 8))) != 0) {
        ids.push_back(static_cast<std::uint16_t>(i));
      }
    }
    check(!ids.empty());  // an empty set has one encoding: count 0
    return ids;
  }

  bool failed() const { return error_.has_value(); }

  // A range check: a false `ok` is bad_field (unless something failed before).
  void check(bool ok) {
    if (!ok && !error_) {
      error_ = DecodeError::bad_field;
    }
  }

  // The first error, or bad_length when the fields did not use the whole body.
  std::optional<DecodeError> finish() const {
    if (error_) {
      return error_;
    }
    if (off_ != body_.size()) {
      return DecodeError::bad_length;
    }
    return std::nullopt;
  }

 private:
  bool take(std::size_t n) {
    if (error_) {
      return false;
    }
    if (body_.size() - off_ < n) {
      error_ = DecodeError::bad_length;
      return false;
    }
    off_ += n;
    return true;
  }

  wire::Bytes body_;
  std::size_t off_ = 0;
  std::optional<DecodeError> error_;
};

void get(Reader& r, JoinRequest& b) {
  b.incarnation = r.u64();
  b.worksets = r.worksets();
  b.busy = r.bitmap();
}
void get(Reader& r, JoinNak& b) {
  b.member = r.addr();
  const std::uint8_t reason = r.u8();
  r.check(known_reason(reason));
  b.reason = static_cast<NakReason>(reason);
  b.text = r.text();
}
void get(Reader& r, JoinAck& b) {
  b.member = r.addr();
  b.keepalive_sequence = r.u32();
}
void get(Reader& r, MasterOffer& b) {
  b.member_count = r.u16();
}
void get(Reader& r, OtherMasterExists& b) {
  b.member = r.addr();
}
void get(Reader& r, ExitCluster& b) {
  b.member = r.addr();
  b.text = r.text();
}
void get(Reader& r, MasterKeepalive& b) {
  b.sequence = r.u32();
  b.keepalive_n = r.u8();
  b.failure_interval_ms = r.u16();
  const std::size_t members = r.count(4);
  r.check(members <= kMaxMembers);
  for (std::size_t i = 0; i < members && !r.failed(); ++i) {
    b.members.push_back(r.addr());
  }
  const std::size_t owners = r.count(1);
  r.check(owners == 0 || owners == filter::kWorksetCount);
  if (!r.failed()) {
    b.owners.reserve(owners);
    for (std::size_t i = 0; i < owners && !r.failed(); ++i) {
      const std::uint8_t o = r.u8();
      r.check(o == kUnassigned || o < b.members.size());
      b.owners.push_back(o);
    }
  }
  b.active = r.u16();
  r.check(b.active <= filter::kWorksetCount);
  b.unheard = r.u16();
  r.check(b.unheard == 0 || b.unheard < b.members.size());
  b.handshake.generation = r.u32();
  b.handshake.secret[0] = r.u64();
  b.handshake.secret[1] = r.u64();
}
void get(Reader& r, FollowerKeepalive& b) {
  b.sequence = r.u32();
  b.load = r.u32();
  b.busy = r.bitmap();
  b.active = r.u16();
  r.check(b.active <= filter::kWorksetCount);
  const std::uint8_t flags = r.u8();
  r.check(flags <= 1);
  b.draining = flags == 1;
}
void get(Reader& r, WorkAssign& b) {
  b.member = r.addr();
  b.worksets = r.worksets();
}
void get(Reader& r, WorkAssignAck& b) {
  b.worksets = r.worksets();
}
void get(Reader& r, WorkDeassign& b) {
  b.member = r.addr();
  b.target = r.addr();
  b.worksets = r.worksets();
}
void get(Reader& r, WorkDeassignAck& b) {
  b.worksets = r.worksets();
  b.refused = r.worksets();
}

// The body of type `t`, default-constructed, so that get() can fill the right alternative.
Body empty_body(MessageType t) {
  switch (t) {
    case MessageType::join_request:
      return JoinRequest{};
    case MessageType::join_nak:
      return JoinNak{};
    case MessageType::join_ack:
      return JoinAck{};
    case MessageType::master_offer:
      return MasterOffer{};
    case MessageType::other_master_exists:
      return OtherMasterExists{};
    case MessageType::exit_cluster:
      return ExitCluster{};
    case MessageType::master_keepalive:
      return MasterKeepalive{};
    case MessageType::follower_keepalive:
      return FollowerKeepalive{};
    case MessageType::work_assign:
      return WorkAssign{};
    case MessageType::work_assign_ack:
      return WorkAssignAck{};
    case MessageType::work_deassign:
      return WorkDeassign{};
    case MessageType::work_deassign_ack:
      return WorkDeassignAck{};
  }
  die("unknown message type", static_cast<std::size_t>(t));
}

}  // namespace

MessageType Message::type() const {
  return std::visit([](const auto& b) { return kTypeOf<std::decay_t<decltype(b)>>; }, body);
}

std::string_view to_string(MessageType t) {
  switch (t) {
    case MessageType::join_request:
      return "join_request";
    case MessageType::join_nak:
      return "join_nak";
    case MessageType::join_ack:
      return "join_ack";
    case MessageType::master_offer:
      return "master_offer";
    case MessageType::other_master_exists:
      return "other_master_exists";
    case MessageType::exit_cluster:
      return "exit_cluster";
    case MessageType::master_keepalive:
      return "master_keepalive";
    case MessageType::follower_keepalive:
      return "follower_keepalive";
    case MessageType::work_assign:
      return "work_assign";
    case MessageType::work_assign_ack:
      return "work_assign_ack";
    case MessageType::work_deassign:
      return "work_deassign";
    case MessageType::work_deassign_ack:
      return "work_deassign_ack";
  }
  return "unknown";
}

std::string_view to_string(DecodeError e) {
  switch (e) {
    case DecodeError::truncated:
      return "truncated";
    case DecodeError::bad_magic:
      return "bad magic";
    case DecodeError::bad_version:
      return "bad version";
    case DecodeError::unknown_type:
      return "unknown type";
    case DecodeError::bad_length:
      return "bad length";
    case DecodeError::bad_field:
      return "bad field";
    case DecodeError::bad_auth_kind:
      return "bad auth kind";
    case DecodeError::bad_auth:
      return "bad auth";
    case DecodeError::trailing_bytes:
      return "trailing bytes";
  }
  return "unknown";
}

std::string bounded_text(std::string_view text) {
  return std::string(text.substr(0, kMaxReasonText));
}

std::uint32_t cluster_id_of(std::string_view cluster_name) {
  // FNV-1a, 32 bit: offset basis 2166136261, prime 16777619.
  std::uint32_t h = 2166136261u;
  for (char c : cluster_name) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

std::vector<std::byte> encode(const Message& m, const Authenticator& auth) {
  std::vector<std::byte> out;
  out.reserve(kHeaderSize + 64);
  Writer w(out);
  w.u32(kMagic);
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(m.type()));
  w.u16(0);  // body length, filled in below
  w.u32(m.cluster_id);
  w.addr(m.sender);
  w.u64(m.epoch);
  std::visit([&w](const auto& b) { put(w, b); }, m.body);
  const std::size_t body_length = out.size() - kHeaderSize;
  if (body_length > kMaxU16) {
    die("body longer than 65535 bytes", body_length);
  }
  wire::write_u16(out, kBodyLengthAt, static_cast<std::uint16_t>(body_length));

  // Sealed into its own buffer: appending to `out` could move the bytes being signed.
  std::vector<std::byte> seal;
  auth.seal(wire::Bytes(out), seal);
  if (seal.size() > kMaxU16) {
    die("auth bytes longer than 65535", seal.size());
  }
  w.u8(auth.kind());
  w.u16(static_cast<std::uint16_t>(seal.size()));
  out.insert(out.end(), seal.begin(), seal.end());
  return out;
}

std::variant<Message, DecodeError> decode(wire::Bytes datagram, const Authenticator& auth) {
  // First, the fixed header must be all there.
  if (datagram.size() < kHeaderSize) {
    return DecodeError::truncated;
  }
  // Second, it must be ours, in a version we speak, of a type we know.
  if (wire::read_u32(datagram, kMagicAt) != kMagic) {
    return DecodeError::bad_magic;
  }
  if (wire::read_u8(datagram, kVersionAt) != kVersion) {
    return DecodeError::bad_version;
  }
  const std::uint8_t type = wire::read_u8(datagram, kTypeAt);
  if (type < kFirstType || type > kLastType) {
    return DecodeError::unknown_type;
  }
  // Third, the body must fit in the datagram.
  const std::size_t body_length = wire::read_u16(datagram, kBodyLengthAt);
  if (body_length > datagram.size() - kHeaderSize) {
    return DecodeError::bad_length;
  }
  // Fourth, the envelope: its header, its bytes, and nothing after them.
  const std::size_t signed_length = kHeaderSize + body_length;
  if (datagram.size() - signed_length < kEnvelopeHeaderSize) {
    return DecodeError::truncated;
  }
  const std::uint8_t auth_kind = wire::read_u8(datagram, signed_length);
  const std::size_t auth_length = wire::read_u16(datagram, signed_length + 1);
  const std::size_t auth_at = signed_length + kEnvelopeHeaderSize;
  if (auth_length > datagram.size() - auth_at) {
    return DecodeError::truncated;
  }
  if (auth_length < datagram.size() - auth_at) {
    return DecodeError::trailing_bytes;
  }
  // Fifth, authenticate header + body before reading a single body field.
  if (auth_kind != auth.kind()) {
    return DecodeError::bad_auth_kind;
  }
  if (!auth.verify(datagram.first(signed_length), datagram.subspan(auth_at, auth_length))) {
    return DecodeError::bad_auth;
  }
  // Last, the body's fields, which must use the body exactly.
  Message m;
  m.cluster_id = wire::read_u32(datagram, kClusterIdAt);
  m.sender = Ipv4Addr::read(datagram, kSenderAt);
  m.epoch = (std::uint64_t{wire::read_u32(datagram, kEpochAt)} << 32) |
            wire::read_u32(datagram, kEpochAt + 4);
  m.body = empty_body(static_cast<MessageType>(type));
  Reader r(datagram.subspan(kHeaderSize, body_length));
  std::visit([&r](auto& b) { get(r, b); }, m.body);
  if (auto error = r.finish()) {
    return *error;
  }
  return m;
}

}  // namespace phalanx::cluster
