#include "sync/record.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "filter/workset.hpp"

namespace phalanx::sync {

namespace {

using cluster::DecodeError;

// Header field offsets (see the layout in record.hpp).
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kVersionAt = 4;
constexpr std::size_t kTypeAt = 5;
constexpr std::size_t kBodyLengthAt = 6;
constexpr std::size_t kClusterIdAt = 8;
constexpr std::size_t kSenderAt = 12;
constexpr std::size_t kEpochAt = 16;
static_assert(kEpochAt + 8 == kSyncHeaderSize);
static_assert(kSyncHeaderSize == cluster::kHeaderSize);

constexpr std::uint8_t kTypeBatch = 1;
constexpr std::uint8_t kTypeAck = 2;

constexpr std::size_t kEnvelopeHeaderSize = 3;  // auth kind u8 | auth length u16
constexpr std::size_t kMaxU16 = 0xffff;
static_assert(kMaxSyncDatagram <= kSyncHeaderSize + kMaxU16);

constexpr std::size_t kKeySize = 12;
// key | workset | owner epoch | version | base version | mask
constexpr std::size_t kUpdateFixedSize = kKeySize + 2 + 8 + 8 + 8 + 2;
constexpr std::size_t kInitialSize = 8;
constexpr std::size_t kFlagsSize = 3;
constexpr std::size_t kSendSize = 16;
constexpr std::size_t kReceiveSize = 8;
constexpr std::size_t kTimestampsSize = 8;
constexpr std::size_t kFinSize = 6;
constexpr std::size_t kSendLimitSize = 4;
constexpr std::size_t kAppLengthSize = 2;

// The flag byte, bit 0 first in the order of the layout; bit 7 is unused and must be 0.
constexpr std::uint8_t kFlagNodelay = 1u << 0;
constexpr std::uint8_t kFlagNoOptions = 1u << 1;
constexpr std::uint8_t kFlagWsRequested = 1u << 2;
constexpr std::uint8_t kFlagWsReceived = 1u << 3;
constexpr std::uint8_t kFlagTsRequested = 1u << 4;
constexpr std::uint8_t kFlagTsReceived = 1u << 5;
constexpr std::uint8_t kFlagSackPermitted = 1u << 6;
constexpr std::uint8_t kUsedFlags = 0x7f;

// The state byte is tcp::State's value: a reordered enum would change the wire, so pin it.
static_assert(static_cast<std::uint8_t>(tcp::State::established) == 4);
static_assert(static_cast<std::uint8_t>(tcp::State::time_wait) == 10);

// The states a replicated session can be in (EssentialState::state): ESTABLISHED and after.
bool replicable_state(std::uint8_t s) {
  return s >= static_cast<std::uint8_t>(tcp::State::established) &&
         s <= static_cast<std::uint8_t>(tcp::State::time_wait);
}

// A delta needs a base below its version and some field to carry; a full record, base 0 and
// every field. Anything else has no meaning, so neither side accepts it.
bool valid_shape(std::uint64_t base, std::uint64_t version, std::uint16_t mask) {
  if (version == 0 || (mask & ~kAllFields) != 0) {
    return false;
  }
  if (base == 0) {
    return mask == kAllFields;
  }
  return mask != 0 && base < version;
}

// "Cannot happen" (STYLE 7): encode was handed a message no decoder would accept.
[[noreturn]] void die(const char* what, std::size_t value) {
  std::fprintf(stderr, "sync message encode: %s (%zu)\n", what, value);
  std::abort();
}

void copy_fields(std::uint16_t mask, const SessionRecord& from, SessionRecord& to) {
  const tcp::EssentialState& f = from.essential;
  tcp::EssentialState& t = to.essential;
  if ((mask & kFieldInitial) != 0) {
    to.initial.mss = from.initial.mss;
    to.initial.options_size = from.initial.options_size;
    to.initial.iss = from.initial.iss;
  }
  if ((mask & kFieldFlags) != 0) {
    t.nodelay = f.nodelay;
    t.no_options = f.no_options;
    t.ws_requested = f.ws_requested;
    t.ws_received = f.ws_received;
    t.ts_requested = f.ts_requested;
    t.ts_received = f.ts_received;
    t.sack_permitted = f.sack_permitted;
    t.snd_scale = f.snd_scale;
    t.rcv_scale = f.rcv_scale;
  }
  if ((mask & kFieldSend) != 0) {
    t.snd_nxt = f.snd_nxt;
    t.snd_wl1 = f.snd_wl1;
    t.snd_wl2 = f.snd_wl2;
    t.snd_wnd = f.snd_wnd;
  }
  if ((mask & kFieldReceive) != 0) {
    t.rcv_nxt = f.rcv_nxt;
    t.rcv_adv = f.rcv_adv;
  }
  if ((mask & kFieldTimestamps) != 0) {
    t.ts_recent = f.ts_recent;
    t.ts_val_last = f.ts_val_last;
  }
  if ((mask & kFieldFin) != 0) {
    t.state = f.state;
    t.fin_seq = f.fin_seq;
    t.fin_sent = f.fin_sent;
  }
  if ((mask & kFieldSendLimit) != 0) {
    to.send_limit = from.send_limit;
  }
  if ((mask & kFieldApp) != 0) {
    to.app = from.app;
  }
}

// What identifies the record and its place in the order of versions: always carried.
void copy_identity(const SessionRecord& from, SessionRecord& to) {
  to.initial.tuple = from.initial.tuple;
  to.workset = from.workset;
  to.owner_epoch = from.owner_epoch;
  to.version = from.version;
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
  void seq(tcp::SeqNum s) { u32(s.raw()); }
  void count(std::size_t n) {
    if (n > kMaxU16) {
      die("list longer than 65535", n);
    }
    u16(static_cast<std::uint16_t>(n));
  }
  void key(const SessionKey& k) {
    u32(k.local_addr.value());
    u16(k.local_port);
    u32(k.remote_addr.value());
    u16(k.remote_port);
  }
  void bytes(const std::vector<std::byte>& b) { out_.insert(out_.end(), b.begin(), b.end()); }

 private:
  wire::MutBytes grow(std::size_t n) {
    const std::size_t at = out_.size();
    out_.resize(at + n);
    return wire::MutBytes(out_).subspan(at, n);
  }

  std::vector<std::byte>& out_;
};

std::uint8_t flag_byte(const tcp::EssentialState& e) {
  std::uint8_t b = 0;
  b |= e.nodelay ? kFlagNodelay : 0;
  b |= e.no_options ? kFlagNoOptions : 0;
  b |= e.ws_requested ? kFlagWsRequested : 0;
  b |= e.ws_received ? kFlagWsReceived : 0;
  b |= e.ts_requested ? kFlagTsRequested : 0;
  b |= e.ts_received ? kFlagTsReceived : 0;
  b |= e.sack_permitted ? kFlagSackPermitted : 0;
  return b;
}

void put(Writer& w, const Update& u) {
  const SessionRecord& r = u.record;
  const tcp::EssentialState& e = r.essential;
  if (!valid_shape(u.base_version, r.version, u.mask)) {
    die("update neither a full record nor a delta (base, version, mask)", u.mask);
  }
  if (r.workset >= filter::kWorksetCount) {
    die("workset id out of range", r.workset);
  }
  w.key(r.initial.tuple);
  w.u16(r.workset);
  w.u64(r.owner_epoch);
  w.u64(r.version);
  w.u64(u.base_version);
  w.u16(u.mask);
  if ((u.mask & kFieldInitial) != 0) {
    w.u16(r.initial.mss);
    w.u16(r.initial.options_size);
    w.seq(r.initial.iss);
  }
  if ((u.mask & kFieldFlags) != 0) {
    w.u8(flag_byte(e));
    w.u8(e.snd_scale);
    w.u8(e.rcv_scale);
  }
  if ((u.mask & kFieldSend) != 0) {
    w.seq(e.snd_nxt);
    w.seq(e.snd_wl1);
    w.seq(e.snd_wl2);
    w.u32(e.snd_wnd);
  }
  if ((u.mask & kFieldReceive) != 0) {
    w.seq(e.rcv_nxt);
    w.seq(e.rcv_adv);
  }
  if ((u.mask & kFieldTimestamps) != 0) {
    w.u32(e.ts_recent);
    w.u32(e.ts_val_last);
  }
  if ((u.mask & kFieldFin) != 0) {
    const auto state = static_cast<std::uint8_t>(e.state);
    if (!replicable_state(state)) {
      die("state not ESTABLISHED or after", state);
    }
    w.u8(state);
    w.seq(e.fin_seq);
    w.u8(e.fin_sent ? 1 : 0);
  }
  if ((u.mask & kFieldSendLimit) != 0) {
    w.seq(r.send_limit);
  }
  if ((u.mask & kFieldApp) != 0) {
    if (r.app.size() > kMaxAppState) {
      die("app state longer than kMaxAppState", r.app.size());
    }
    w.u16(static_cast<std::uint16_t>(r.app.size()));
    w.bytes(r.app);
  }
}

void put(Writer& w, const SyncBatch& b) {
  w.u32(b.sequence);
  w.count(b.updates.size());
  for (const Update& u : b.updates) {
    put(w, u);
  }
  w.count(b.closed.size());
  for (const SessionKey& k : b.closed) {
    w.key(k);
  }
}

void put(Writer& w, const SyncAck& a) {
  w.u32(a.sequence);
  w.count(a.need_full.size());
  for (const SessionKey& k : a.need_full) {
    w.key(k);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

// Reads a body front to back (as cluster::messages' reader). The first failure sticks: a read
// past the end is bad_length, a value out of range bad_field, and every later read returns
// zeros without looking at the bytes, so the error reported is the first thing wrong.
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
  tcp::SeqNum seq() { return tcp::SeqNum{u32()}; }
  SessionKey key() {
    SessionKey k;
    k.local_addr = wire::Ipv4Addr{u32()};
    k.local_port = u16();
    k.remote_addr = wire::Ipv4Addr{u32()};
    k.remote_port = u16();
    return k;
  }
  // A list count, checked against what remains (at `min_item_size` bytes an item) before
  // anything is allocated for it.
  std::size_t count(std::size_t min_item_size) {
    const std::size_t n = u16();
    if (!error_ && n * min_item_size > body_.size() - off_) {
      error_ = DecodeError::bad_length;
    }
    return error_ ? 0 : n;
  }
  std::vector<std::byte> bytes(std::size_t n) {
    if (!take(n)) {
      return {};
    }
    const wire::Bytes b = body_.subspan(off_ - n, n);
    return {b.begin(), b.end()};
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

// Fields outside the mask stay default: that keeps one encoding per update.
void get(Reader& r, Update& u) {
  SessionRecord& rec = u.record;
  tcp::EssentialState& e = rec.essential;
  rec.initial.tuple = r.key();
  rec.workset = r.u16();
  r.check(rec.workset < filter::kWorksetCount);
  rec.owner_epoch = r.u64();
  rec.version = r.u64();
  u.base_version = r.u64();
  u.mask = r.u16();
  r.check(valid_shape(u.base_version, rec.version, u.mask));
  if (r.failed()) {
    return;
  }
  if ((u.mask & kFieldInitial) != 0) {
    rec.initial.mss = r.u16();
    rec.initial.options_size = r.u16();
    rec.initial.iss = r.seq();
  }
  if ((u.mask & kFieldFlags) != 0) {
    const std::uint8_t flags = r.u8();
    r.check((flags & ~kUsedFlags) == 0);
    e.nodelay = (flags & kFlagNodelay) != 0;
    e.no_options = (flags & kFlagNoOptions) != 0;
    e.ws_requested = (flags & kFlagWsRequested) != 0;
    e.ws_received = (flags & kFlagWsReceived) != 0;
    e.ts_requested = (flags & kFlagTsRequested) != 0;
    e.ts_received = (flags & kFlagTsReceived) != 0;
    e.sack_permitted = (flags & kFlagSackPermitted) != 0;
    e.snd_scale = r.u8();
    e.rcv_scale = r.u8();
  }
  if ((u.mask & kFieldSend) != 0) {
    e.snd_nxt = r.seq();
    e.snd_wl1 = r.seq();
    e.snd_wl2 = r.seq();
    e.snd_wnd = r.u32();
  }
  if ((u.mask & kFieldReceive) != 0) {
    e.rcv_nxt = r.seq();
    e.rcv_adv = r.seq();
  }
  if ((u.mask & kFieldTimestamps) != 0) {
    e.ts_recent = r.u32();
    e.ts_val_last = r.u32();
  }
  if ((u.mask & kFieldFin) != 0) {
    const std::uint8_t state = r.u8();
    r.check(replicable_state(state));
    e.state = replicable_state(state) ? static_cast<tcp::State>(state) : tcp::State::established;
    e.fin_seq = r.seq();
    const std::uint8_t fin_sent = r.u8();
    r.check(fin_sent <= 1);
    e.fin_sent = fin_sent == 1;
  }
  if ((u.mask & kFieldSendLimit) != 0) {
    rec.send_limit = r.seq();
  }
  if ((u.mask & kFieldApp) != 0) {
    const std::size_t n = r.u16();
    r.check(n <= kMaxAppState);
    if (!r.failed()) {
      rec.app = r.bytes(n);
    }
  }
}

void get(Reader& r, SyncBatch& b) {
  b.sequence = r.u32();
  const std::size_t updates = r.count(kUpdateFixedSize);
  b.updates.reserve(updates);
  for (std::size_t i = 0; i < updates && !r.failed(); ++i) {
    get(r, b.updates.emplace_back());
  }
  const std::size_t closed = r.count(kKeySize);
  b.closed.reserve(closed);
  for (std::size_t i = 0; i < closed && !r.failed(); ++i) {
    b.closed.push_back(r.key());
  }
}

void get(Reader& r, SyncAck& a) {
  a.sequence = r.u32();
  const std::size_t n = r.count(kKeySize);
  a.need_full.reserve(n);
  for (std::size_t i = 0; i < n && !r.failed(); ++i) {
    a.need_full.push_back(r.key());
  }
}

}  // namespace

std::uint16_t diff(const SessionRecord& a, const SessionRecord& b) {
  const tcp::EssentialState& x = a.essential;
  const tcp::EssentialState& y = b.essential;
  std::uint16_t mask = 0;
  if (a.initial.mss != b.initial.mss || a.initial.options_size != b.initial.options_size ||
      a.initial.iss != b.initial.iss) {
    mask |= kFieldInitial;
  }
  if (flag_byte(x) != flag_byte(y) || x.snd_scale != y.snd_scale || x.rcv_scale != y.rcv_scale) {
    mask |= kFieldFlags;
  }
  if (x.snd_nxt != y.snd_nxt || x.snd_wl1 != y.snd_wl1 || x.snd_wl2 != y.snd_wl2 ||
      x.snd_wnd != y.snd_wnd) {
    mask |= kFieldSend;
  }
  if (x.rcv_nxt != y.rcv_nxt || x.rcv_adv != y.rcv_adv) {
    mask |= kFieldReceive;
  }
  if (x.ts_recent != y.ts_recent || x.ts_val_last != y.ts_val_last) {
    mask |= kFieldTimestamps;
  }
  if (x.state != y.state || x.fin_seq != y.fin_seq || x.fin_sent != y.fin_sent) {
    mask |= kFieldFin;
  }
  if (a.send_limit != b.send_limit) {
    mask |= kFieldSendLimit;
  }
  // As memcmp: std::byte's operator== leaves vector comparison a byte-by-byte loop, and the app
  // blob (echo's held bytes) is compared on every poll of every session.
  if (a.app.size() != b.app.size() ||
      (!a.app.empty() && std::memcmp(a.app.data(), b.app.data(), a.app.size()) != 0)) {
    mask |= kFieldApp;
  }
  return mask;
}

Update make_update(const SessionRecord& current, std::uint64_t base_version, std::uint16_t mask) {
  Update u;
  u.base_version = base_version;
  u.mask = mask;
  copy_identity(current, u.record);
  copy_fields(mask, current, u.record);
  return u;
}

ApplyResult apply(const Update& u, SessionRecord& held, bool have) {
  // Replication moves forward only (STYLE 8): what is not newer than the held version is stale.
  if (have && u.record.version <= held.version) {
    return ApplyResult::stale;
  }
  if (u.base_version == 0) {
    held = u.record;
    return ApplyResult::applied;
  }
  // A field that changed after the base is in the update; one that did not has the base's value
  // only in a record at least as new as the base.
  if (!have || held.version < u.base_version) {
    return ApplyResult::need_full;
  }
  copy_identity(u.record, held);
  copy_fields(u.mask, u.record, held);
  return ApplyResult::applied;
}

std::size_t encoded_size(const Update& u) {
  std::size_t n = kUpdateFixedSize;
  n += (u.mask & kFieldInitial) != 0 ? kInitialSize : 0;
  n += (u.mask & kFieldFlags) != 0 ? kFlagsSize : 0;
  n += (u.mask & kFieldSend) != 0 ? kSendSize : 0;
  n += (u.mask & kFieldReceive) != 0 ? kReceiveSize : 0;
  n += (u.mask & kFieldTimestamps) != 0 ? kTimestampsSize : 0;
  n += (u.mask & kFieldFin) != 0 ? kFinSize : 0;
  n += (u.mask & kFieldSendLimit) != 0 ? kSendLimitSize : 0;
  n += (u.mask & kFieldApp) != 0 ? kAppLengthSize + u.record.app.size() : 0;
  return n;
}

std::vector<std::byte> encode(const SyncMessage& m, const cluster::Authenticator& auth) {
  std::vector<std::byte> out;
  out.reserve(kSyncHeaderSize + 64);
  Writer w(out);
  w.u32(kSyncMagic);
  w.u8(kSyncVersion);
  w.u8(std::holds_alternative<SyncBatch>(m.body) ? kTypeBatch : kTypeAck);
  w.u16(0);  // body length, filled in below
  w.u32(m.cluster_id);
  w.u32(m.sender.value());
  w.u64(m.epoch);
  std::visit([&w](const auto& b) { put(w, b); }, m.body);
  const std::size_t body_length = out.size() - kSyncHeaderSize;
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
  if (out.size() > kMaxSyncDatagram) {
    die("datagram longer than kMaxSyncDatagram", out.size());
  }
  return out;
}

std::variant<SyncMessage, DecodeError> decode(wire::Bytes datagram,
                                              const cluster::Authenticator& auth) {
  // First, the fixed header must be all there.
  if (datagram.size() < kSyncHeaderSize) {
    return DecodeError::truncated;
  }
  // Second, it must be ours, in a version we speak, of a type we know.
  if (wire::read_u32(datagram, kMagicAt) != kSyncMagic) {
    return DecodeError::bad_magic;
  }
  if (wire::read_u8(datagram, kVersionAt) != kSyncVersion) {
    return DecodeError::bad_version;
  }
  const std::uint8_t type = wire::read_u8(datagram, kTypeAt);
  if (type != kTypeBatch && type != kTypeAck) {
    return DecodeError::unknown_type;
  }
  // Third, no sender makes a datagram this large (encode would refuse to re-encode it), and the
  // body must fit in the datagram.
  if (datagram.size() > kMaxSyncDatagram) {
    return DecodeError::bad_length;
  }
  const std::size_t body_length = wire::read_u16(datagram, kBodyLengthAt);
  if (body_length > datagram.size() - kSyncHeaderSize) {
    return DecodeError::bad_length;
  }
  // Fourth, the envelope: its header, its bytes, and nothing after them.
  const std::size_t signed_length = kSyncHeaderSize + body_length;
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
  SyncMessage m;
  m.cluster_id = wire::read_u32(datagram, kClusterIdAt);
  m.sender = wire::Ipv4Addr::read(datagram, kSenderAt);
  m.epoch = (std::uint64_t{wire::read_u32(datagram, kEpochAt)} << 32) |
            wire::read_u32(datagram, kEpochAt + 4);
  if (type == kTypeBatch) {
    m.body = SyncBatch{};
  } else {
    m.body = SyncAck{};
  }
  Reader r(datagram.subspan(kSyncHeaderSize, body_length));
  std::visit([&r](auto& b) { get(r, b); }, m.body);
  if (auto error = r.finish()) {
    return *error;
  }
  return m;
}

}  // namespace phalanx::sync
