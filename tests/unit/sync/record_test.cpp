// Session records and the sync datagram: the wire layout byte by byte, round trips, every
// rejection, and delta application from any version the backup may hold.
#include "sync/record.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "testutil.hpp"

namespace phalanx::sync {
namespace {

using cluster::DecodeError;
using test::hex;
using wire::Ipv4Addr;

const cluster::NullAuthenticator kNull;

// Seals with one byte, the sum of the signed bytes; verifies that byte.
class SumAuthenticator final : public cluster::Authenticator {
 public:
  static constexpr std::uint8_t kKind = 7;
  std::uint8_t kind() const override { return kKind; }
  void seal(wire::Bytes signed_part, std::vector<std::byte>& out) const override {
    out.push_back(std::byte{sum(signed_part)});
  }
  bool verify(wire::Bytes signed_part, wire::Bytes auth) const override {
    return auth.size() == 1 && std::to_integer<std::uint8_t>(auth[0]) == sum(signed_part);
  }

 private:
  static std::uint8_t sum(wire::Bytes b) {
    std::uint8_t s = 0;
    for (std::byte x : b) {
      s = static_cast<std::uint8_t>(s + std::to_integer<std::uint8_t>(x));
    }
    return s;
  }
};
const SumAuthenticator kSum;

const Ipv4Addr kSender(10, 0, 0, 1);
// 198.18.0.10:80 <- 203.0.113.7:40000 and 203.0.113.8:40001
const SessionKey kKey{Ipv4Addr(198, 18, 0, 10), 80, Ipv4Addr(203, 0, 113, 7), 40000};
const SessionKey kOtherKey{Ipv4Addr(198, 18, 0, 10), 80, Ipv4Addr(203, 0, 113, 8), 40001};
const std::string kKeyHex = "c612000a 0050 cb007107 9c40 ";
const std::string kOtherKeyHex = "c612000a 0050 cb007108 9c41 ";

// A session in FIN-WAIT-1 with every field set to something recognisable in a hex dump.
SessionRecord sample_record() {
  SessionRecord r;
  r.workset = 0x0123;
  r.owner_epoch = 5;
  r.version = 3;
  r.initial = tcp::InitialState{kKey, 1448, 12, tcp::SeqNum{0x11220000}};
  tcp::EssentialState& e = r.essential;
  e.ws_requested = e.ws_received = e.ts_requested = e.ts_received = e.sack_permitted = true;
  e.snd_nxt = tcp::SeqNum{0x11223344};
  e.snd_wl1 = tcp::SeqNum{0x55667788};
  e.snd_wl2 = tcp::SeqNum{0x11223300};
  e.snd_wnd = 64000;
  e.rcv_nxt = tcp::SeqNum{0xa0b0c0d0};
  e.rcv_adv = tcp::SeqNum{0xa0b1c0d0};
  e.snd_scale = 7;
  e.rcv_scale = 9;
  e.ts_recent = 0x01020304;
  e.ts_val_last = 0x0a0b0c0d;
  e.state = tcp::State::fin_wait_1;
  e.fin_seq = tcp::SeqNum{0x11223343};
  e.fin_sent = true;
  r.send_limit = tcp::SeqNum{0x11233344};
  r.app = {std::byte{'a'}, std::byte{'b'}, std::byte{'c'}};
  return r;
}

SyncMessage message(std::variant<SyncBatch, SyncAck> body) {
  return SyncMessage{0x01020304, kSender, 9, std::move(body)};
}

Update full_of(const SessionRecord& r) {
  return make_update(r, 0, kAllFields);
}

// "ok", or the name of the error decode returns.
std::string result_of(const std::vector<std::byte>& datagram,
                      const cluster::Authenticator& auth = kNull) {
  auto r = sync::decode(test::span(datagram), auth);
  if (auto* e = std::get_if<DecodeError>(&r)) {
    return std::string(cluster::to_string(*e));
  }
  return "ok";
}

// A datagram of `type` (1 batch, 2 ack) around `body` (hex), with a correct body length and a
// null envelope.
std::vector<std::byte> datagram(std::uint8_t type, std::string_view body_hex) {
  std::vector<std::byte> body = hex(body_hex);
  std::vector<std::byte> d = hex("50485359 01 00 0000 01020304 0a000001 0000000000000009");
  wire::write_u8(d, 5, type);
  wire::write_u16(d, 6, static_cast<std::uint16_t>(body.size()));
  d.insert(d.end(), body.begin(), body.end());
  for (std::byte b : hex("00 0000")) {
    d.push_back(b);
  }
  return d;
}

// A batch of one update of kKey, workset 1, owner epoch 5, from its version on (hex).
std::vector<std::byte> batch_of_one(const std::string& version_base_mask_fields) {
  return datagram(1, "00000001 0001 " + kKeyHex + "0001 0000000000000005 " +
                         version_base_mask_fields + " 0000");
}
// ... a delta of version 3 on base 2 with `mask` and `fields`.
std::vector<std::byte> delta_of(const std::string& mask, const std::string& fields) {
  return batch_of_one("0000000000000003 0000000000000002 " + mask + " " + fields);
}

std::string repeat(std::string_view item, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += item;
  }
  return s;
}

// Every message kind, with full records, deltas, closes and empty lists.
std::vector<SyncMessage> samples() {
  const SessionRecord r = sample_record();
  SessionRecord later = r;
  later.version = 9;
  later.essential.snd_nxt += 1000;
  later.essential.rcv_nxt += 20;
  SessionRecord other = r;
  other.initial.tuple = kOtherKey;
  other.app.clear();
  return {
      message(SyncBatch{7, {full_of(r)}, {kOtherKey}}),
      message(
          SyncBatch{8, {make_update(later, 4, kFieldSend | kFieldReceive), full_of(other)}, {}}),
      message(SyncBatch{0xffffffff, {make_update(later, 8, kAllFields)}, {kKey, kOtherKey}}),
      message(SyncBatch{}),
      message(SyncAck{7, {kKey, kOtherKey}}),
      message(SyncAck{}),
  };
}

// --- literal wire layout ----------------------------------------------------------------------

TEST(SyncRecord, FullRecordBatchLayout) {
  const SyncMessage m = message(SyncBatch{7, {full_of(sample_record())}, {kOtherKey}});
  const auto expected =
      hex("50485359 01 01 0076 01020304 0a000001 0000000000000009"  // header: batch, 118 bytes
          "00000007 0001"                                           // sequence, one update
          "c612000a 0050 cb007107 9c40"                             // key
          "0123 0000000000000005"                                   // workset, owner epoch
          "0000000000000003 0000000000000000 00ff"                  // version, base 0: full, mask
          "05a8 000c 11220000"                                      // mss, options size, iss
          "7c 07 09"                                                // flags 2-6, snd/rcv scale
          "11223344 55667788 11223300 0000fa00"                     // send: nxt, wl1, wl2, wnd
          "a0b0c0d0 a0b1c0d0"                                       // receive: nxt, adv
          "01020304 0a0b0c0d"                                       // ts_recent, ts_val_last
          "05 11223343 01"                                          // FIN-WAIT-1, fin_seq, sent
          "11233344"                                                // send limit
          "0003 616263"                                             // app: "abc"
          "0001 c612000a 0050 cb007108 9c41"                        // one closed session
          "00 0000");                                               // null envelope
  EXPECT_EQ(encode(m, kNull), expected);
  auto r = sync::decode(test::span(expected), kNull);
  ASSERT_TRUE(std::holds_alternative<SyncMessage>(r));
  EXPECT_EQ(std::get<SyncMessage>(r), m);
}

TEST(SyncRecord, AckLayout) {
  const SyncMessage m = message(SyncAck{7, {kKey, kOtherKey}});
  const auto expected =
      hex("50485359 01 02 001e 01020304 0a000001 0000000000000009"  // header: ack, 30 bytes
          "00000007 0002"                                           // sequence, two keys
          "c612000a 0050 cb007107 9c40"
          "c612000a 0050 cb007108 9c41"
          "00 0000");
  EXPECT_EQ(encode(m, kNull), expected);
  auto r = sync::decode(test::span(expected), kNull);
  ASSERT_TRUE(std::holds_alternative<SyncMessage>(r));
  EXPECT_EQ(std::get<SyncMessage>(r), m);
}

TEST(SyncRecord, EnvelopeCarriesTheAuthenticatorsBytes) {
  // The signed part sums to 0x50+0x48+0x53+0x59+0x01+0x02+0x06 = 0x14d: seal 0x4d.
  EXPECT_EQ(encode(SyncMessage{0, Ipv4Addr{}, 0, SyncAck{}}, kSum),
            hex("50485359 01 02 0006 00000000 00000000 0000000000000000"
                "00000000 0000"
                "07 0001 4d"));
}

TEST(SyncRecord, EncodedSizeIsWhatEncodeWrites) {
  for (const SyncMessage& m : samples()) {
    if (const auto* b = std::get_if<SyncBatch>(&m.body)) {
      std::size_t body = 4 + 2 + 2 + 12 * b->closed.size();
      for (const Update& u : b->updates) {
        body += encoded_size(u);
      }
      EXPECT_EQ(encode(m, kNull).size(), kSyncHeaderSize + body + 3);
    }
  }
}

// What one record costs on the wire. The fixed part (key 12, workset 2, owner epoch 8, version 8,
// base 8, mask 2) is 40 bytes, so a full record with no app state is 95 bytes.
TEST(SyncRecord, FullRecordSize) {
  SessionRecord r = sample_record();
  r.app.clear();
  const std::size_t size = encoded_size(full_of(r));
  std::printf("full record, empty app state: %zu bytes\n", size);
  EXPECT_EQ(size, 95u);
}

// A segment of data each way moves the send and receive sequence numbers and the timestamps: the
// delta carries 32 bytes of those fields after the 40-byte fixed part.
TEST(SyncRecord, TypicalDataTransferDeltaIsSmall) {
  SessionRecord before = sample_record();
  before.essential.state = tcp::State::established;
  before.essential.fin_seq = tcp::SeqNum{};
  before.essential.fin_sent = false;
  SessionRecord after = before;
  after.version = before.version + 1;
  after.essential.snd_nxt += 1448;
  after.essential.snd_wl1 += 100;
  after.essential.snd_wl2 += 1448;
  after.essential.rcv_nxt += 100;
  after.essential.rcv_adv += 100;
  after.essential.ts_recent += 3;
  after.essential.ts_val_last += 3;
  const std::uint16_t mask = diff(before, after);
  ASSERT_EQ(mask, kFieldSend | kFieldReceive | kFieldTimestamps);
  const Update u = make_update(after, before.version, mask);
  const std::size_t size = encoded_size(u);
  std::printf("typical data-transfer delta: %zu bytes (full record: %zu)\n", size,
              encoded_size(full_of(after)));
  EXPECT_EQ(size, 40u + 16 + 8 + 8);
  EXPECT_LT(size, encoded_size(full_of(after)));
  const auto bytes = encode(message(SyncBatch{1, {u}, {}}), kNull);
  EXPECT_EQ(bytes.size(), kSyncHeaderSize + 4 + 2 + size + 2 + 3);
}

// --- round trips ------------------------------------------------------------------------------

TEST(SyncRecord, EverySampleRoundTrips) {
  for (const cluster::Authenticator* auth : {static_cast<const cluster::Authenticator*>(&kNull),
                                             static_cast<const cluster::Authenticator*>(&kSum)}) {
    for (const SyncMessage& m : samples()) {
      const auto bytes = encode(m, *auth);
      auto r = sync::decode(test::span(bytes), *auth);
      ASSERT_TRUE(std::holds_alternative<SyncMessage>(r))
          << cluster::to_string(std::get<DecodeError>(r));
      EXPECT_EQ(std::get<SyncMessage>(r), m);
      EXPECT_EQ(encode(std::get<SyncMessage>(r), *auth), bytes);
    }
  }
}

// Fields outside the mask are neither sent nor decoded: a delta arrives as make_update made it,
// with the rest default.
TEST(SyncRecord, DeltaCarriesOnlyItsMask) {
  const SessionRecord r = sample_record();
  const Update u = make_update(r, 2, kFieldReceive | kFieldApp);
  EXPECT_EQ(u.record.initial.tuple, kKey);
  EXPECT_EQ(u.record.workset, r.workset);
  EXPECT_EQ(u.record.owner_epoch, r.owner_epoch);
  EXPECT_EQ(u.record.version, r.version);
  EXPECT_EQ(u.record.essential.rcv_nxt, r.essential.rcv_nxt);
  EXPECT_EQ(u.record.app, r.app);
  EXPECT_EQ(u.record.essential.snd_nxt, tcp::SeqNum{});
  EXPECT_EQ(u.record.initial.mss, 0);
  EXPECT_EQ(u.record.essential.state, tcp::State::established);

  const auto bytes = encode(message(SyncBatch{1, {u}, {}}), kNull);
  auto d = sync::decode(test::span(bytes), kNull);
  ASSERT_TRUE(std::holds_alternative<SyncMessage>(d));
  const auto& batch = std::get<SyncBatch>(std::get<SyncMessage>(d).body);
  ASSERT_EQ(batch.updates.size(), 1u);
  EXPECT_EQ(batch.updates[0], u);
}

TEST(SyncRecord, EveryReplicableStateRoundTrips) {
  for (tcp::State s :
       {tcp::State::established, tcp::State::fin_wait_1, tcp::State::fin_wait_2,
        tcp::State::close_wait, tcp::State::closing, tcp::State::last_ack, tcp::State::time_wait}) {
    SessionRecord r = sample_record();
    r.essential.state = s;
    const SyncMessage m = message(SyncBatch{1, {make_update(r, 1, kFieldFin)}, {}});
    auto d = sync::decode(test::span(encode(m, kNull)), kNull);
    ASSERT_TRUE(std::holds_alternative<SyncMessage>(d)) << tcp::to_string(s);
    EXPECT_EQ(std::get<SyncMessage>(d), m);
  }
}

TEST(SyncRecord, LargestAppStateRoundTrips) {
  SessionRecord r = sample_record();
  r.app.assign(kMaxAppState, std::byte{0x5a});
  const SyncMessage m = message(SyncBatch{1, {full_of(r)}, {}});
  auto d = sync::decode(test::span(encode(m, kNull)), kNull);
  ASSERT_TRUE(std::holds_alternative<SyncMessage>(d));
  EXPECT_EQ(std::get<SyncMessage>(d), m);
}

// --- rejection: header and envelope -----------------------------------------------------------

TEST(SyncRecord, EveryTruncationIsRejected) {
  for (const cluster::Authenticator* auth : {static_cast<const cluster::Authenticator*>(&kNull),
                                             static_cast<const cluster::Authenticator*>(&kSum)}) {
    for (const SyncMessage& m : samples()) {
      const auto bytes = encode(m, *auth);
      for (std::size_t len = 0; len < bytes.size(); ++len) {
        const std::vector<std::byte> cut(bytes.begin(), bytes.begin() + len);
        EXPECT_NE(result_of(cut, *auth), "ok") << "cut to " << len;
      }
    }
  }
}

TEST(SyncRecord, RejectsBadHeaders) {
  const auto good = encode(message(SyncAck{7, {kKey}}), kNull);
  ASSERT_EQ(result_of(good), "ok");
  EXPECT_EQ(result_of({}), "truncated");
  EXPECT_EQ(result_of({good.begin(), good.begin() + kSyncHeaderSize - 1}), "truncated");

  auto magic = good;
  magic[0] = std::byte{'X'};
  EXPECT_EQ(result_of(magic), "bad magic");
  // The control channel's magic is not ours.
  magic = good;
  magic[2] = std::byte{'L'};
  magic[3] = std::byte{'X'};
  EXPECT_EQ(result_of(magic), "bad magic");

  for (std::uint8_t v : {0, 2, 255}) {
    auto version = good;
    version[4] = std::byte{v};
    EXPECT_EQ(result_of(version), "bad version") << int{v};
  }
  for (std::uint8_t t : {0, 3, 255}) {
    auto type = good;
    type[5] = std::byte{t};
    EXPECT_EQ(result_of(type), "unknown type") << int{t};
  }
}

TEST(SyncRecord, RejectsBodyLengthsThatDisagree) {
  // An ack of no keys is 6 bytes; the body length says 7, then 5.
  EXPECT_EQ(result_of(datagram(2, "00000007 0000 00")), "bad length");
  EXPECT_EQ(result_of(datagram(2, "00000007 00")), "bad length");
  // Past the datagram; or into the envelope, which is then too short.
  auto past = datagram(2, "00000007 0000");
  wire::write_u16(wire::MutBytes(past), 6, 10);
  EXPECT_EQ(result_of(past), "bad length");
  wire::write_u16(wire::MutBytes(past), 6, 9);
  EXPECT_EQ(result_of(past), "truncated");
}

TEST(SyncRecord, NeverTrustsACount) {
  EXPECT_EQ(result_of(datagram(2, "00000007 ffff " + kKeyHex)), "bad length");
  EXPECT_EQ(result_of(datagram(2, "00000007 0002 " + kKeyHex)), "bad length");
  EXPECT_EQ(result_of(datagram(1, "00000007 ffff 0000")), "bad length");
  EXPECT_EQ(result_of(datagram(1, "00000007 0000 0002 " + kKeyHex)), "bad length");
  // An app length past the body.
  EXPECT_EQ(result_of(delta_of("0080", "0010 616263")), "bad length");
}

// No sender makes a datagram over kMaxSyncDatagram (encode refuses): one that is, is not a
// message, even if its fields are fine, so that whatever decodes re-encodes.
TEST(SyncRecord, RejectsDatagramsOverTheLimit) {
  // header 24 + sequence 4 + count 2 + 12 per key + envelope 3
  const std::size_t fit = (kMaxSyncDatagram - kSyncHeaderSize - 6 - 3) / 12;
  const auto ack_of = [](std::size_t keys) {
    char count[5];
    std::snprintf(count, sizeof count, "%04zx", keys);
    return datagram(2, "00000001 " + std::string(count) + repeat(kKeyHex, keys));
  };
  const auto largest = ack_of(fit);
  ASSERT_LE(largest.size(), kMaxSyncDatagram);
  EXPECT_EQ(result_of(largest), "ok");
  EXPECT_EQ(encode(message(SyncAck{1, std::vector<SessionKey>(fit, kKey)}), kNull), largest);
  const auto over = ack_of(fit + 1);
  ASSERT_GT(over.size(), kMaxSyncDatagram);
  EXPECT_EQ(result_of(over), "bad length");
}

TEST(SyncRecord, RejectsAnEnvelopeOfAnotherKindOrAFailedSeal) {
  const SyncMessage m = message(SyncBatch{7, {full_of(sample_record())}, {}});
  const auto null_sealed = encode(m, kNull);
  const auto sum_sealed = encode(m, kSum);
  EXPECT_EQ(result_of(null_sealed, kSum), "bad auth kind");
  EXPECT_EQ(result_of(sum_sealed, kNull), "bad auth kind");

  auto body_changed = sum_sealed;
  body_changed[kSyncHeaderSize + 10] ^= std::byte{0x01};
  EXPECT_EQ(result_of(body_changed, kSum), "bad auth");
  auto header_changed = sum_sealed;
  header_changed[15] ^= std::byte{0x01};  // sender
  EXPECT_EQ(result_of(header_changed, kSum), "bad auth");

  // Nothing in the body is read before the seal: a malformed body under a bad seal is bad auth.
  auto malformed = delta_of("0000", "");
  ASSERT_EQ(result_of(malformed), "bad field");
  malformed.back() = std::byte{0x01};
  malformed.push_back(std::byte{0x00});
  EXPECT_EQ(result_of(malformed), "bad auth");
}

TEST(SyncRecord, RejectsAShortEnvelopeAndTrailingBytes) {
  const auto good = encode(message(SyncAck{1, {}}), kSum);
  EXPECT_EQ(result_of({good.begin(), good.end() - 1}, kSum), "truncated");
  EXPECT_EQ(result_of({good.begin(), good.end() - 2}, kSum), "truncated");
  auto longer = good;
  longer.push_back(std::byte{0});
  EXPECT_EQ(result_of(longer, kSum), "trailing bytes");
}

// --- rejection: malformed updates -------------------------------------------------------------

TEST(SyncRecord, AcceptsTheSmallestDelta) {
  EXPECT_EQ(result_of(delta_of("0040", "11233344")), "ok");
}

TEST(SyncRecord, RejectsWorksetsOutOfRange) {
  const std::string rest = " 0000000000000005 0000000000000003 0000000000000002 0040 11233344";
  EXPECT_EQ(result_of(datagram(1, "00000001 0001 " + kKeyHex + "03ff" + rest + " 0000")), "ok");
  EXPECT_EQ(result_of(datagram(1, "00000001 0001 " + kKeyHex + "0400" + rest + " 0000")),
            "bad field");
  EXPECT_EQ(result_of(datagram(1, "00000001 0001 " + kKeyHex + "ffff" + rest + " 0000")),
            "bad field");
}

TEST(SyncRecord, RejectsVersionZero) {
  EXPECT_EQ(result_of(batch_of_one("0000000000000000 0000000000000000 0040 11233344")),
            "bad field");
  EXPECT_EQ(result_of(batch_of_one("0000000000000001 0000000000000000 0040 11233344")),
            "bad field");
}

TEST(SyncRecord, RejectsMasksThatAreNeitherFullNorDelta) {
  EXPECT_EQ(result_of(delta_of("0000", "")), "bad field");          // a delta of nothing
  EXPECT_EQ(result_of(delta_of("0140", "11233344")), "bad field");  // bit 8
  EXPECT_EQ(result_of(delta_of("8040", "11233344")), "bad field");  // bit 15
  // A full record (base 0) must carry every field.
  EXPECT_EQ(result_of(batch_of_one("0000000000000003 0000000000000000 0040 11233344")),
            "bad field");
  // A delta may carry every field.
  const SessionRecord r = sample_record();
  EXPECT_EQ(result_of(encode(message(SyncBatch{1, {make_update(r, 2, kAllFields)}, {}}), kNull)),
            "ok");
}

TEST(SyncRecord, RejectsABaseNotBelowTheVersion) {
  EXPECT_EQ(result_of(batch_of_one("0000000000000003 0000000000000002 0040 11233344")), "ok");
  EXPECT_EQ(result_of(batch_of_one("0000000000000003 0000000000000003 0040 11233344")),
            "bad field");
  EXPECT_EQ(result_of(batch_of_one("0000000000000003 0000000000000004 0040 11233344")),
            "bad field");
  EXPECT_EQ(result_of(batch_of_one("0000000000000003 ffffffffffffffff 0040 11233344")),
            "bad field");
}

TEST(SyncRecord, RejectsStatesBeforeEstablished) {
  for (unsigned s = 4; s <= 10; ++s) {
    char state[3];
    std::snprintf(state, sizeof state, "%02x", s);
    EXPECT_EQ(result_of(delta_of("0020", std::string(state) + " 11223343 01")), "ok") << s;
  }
  for (std::string_view state : {"00", "01", "02", "03", "0b", "ff"}) {
    EXPECT_EQ(result_of(delta_of("0020", std::string(state) + " 11223343 01")), "bad field")
        << state;
  }
}

TEST(SyncRecord, RejectsFinSentOtherThanZeroOrOne) {
  EXPECT_EQ(result_of(delta_of("0020", "05 11223343 00")), "ok");
  EXPECT_EQ(result_of(delta_of("0020", "05 11223343 02")), "bad field");
  EXPECT_EQ(result_of(delta_of("0020", "05 11223343 ff")), "bad field");
}

TEST(SyncRecord, RejectsUnusedFlagBits) {
  EXPECT_EQ(result_of(delta_of("0002", "7f 0e 0e")), "ok");
  EXPECT_EQ(result_of(delta_of("0002", "80 0e 0e")), "bad field");
  EXPECT_EQ(result_of(delta_of("0002", "ff 0e 0e")), "bad field");
}

TEST(SyncRecord, RejectsAppStateOverTheLimit) {
  EXPECT_EQ(result_of(delta_of("0080", "4000" + repeat("00", kMaxAppState))), "ok");
  EXPECT_EQ(result_of(delta_of("0080", "4001" + repeat("00", kMaxAppState + 1))), "bad field");
}

// --- diff and apply ---------------------------------------------------------------------------

TEST(SyncRecord, DiffNamesTheGroupsThatDiffer) {
  const SessionRecord a = sample_record();
  EXPECT_EQ(diff(a, a), 0);
  SessionRecord b = a;
  b.version = 99;
  b.workset = 3;
  b.owner_epoch = 77;
  b.initial.tuple = kOtherKey;
  EXPECT_EQ(diff(a, b), 0);  // identity and version are not field groups

  const auto one = [&a](auto change) {
    SessionRecord c = a;
    change(c);
    return diff(a, c);
  };
  using R = SessionRecord&;
  EXPECT_EQ(one([](R c) { c.initial.mss = 536; }), kFieldInitial);
  EXPECT_EQ(one([](R c) { c.initial.options_size = 0; }), kFieldInitial);
  EXPECT_EQ(one([](R c) { c.initial.iss += 1; }), kFieldInitial);
  EXPECT_EQ(one([](R c) { c.essential.nodelay = true; }), kFieldFlags);
  EXPECT_EQ(one([](R c) { c.essential.sack_permitted = false; }), kFieldFlags);
  EXPECT_EQ(one([](R c) { c.essential.rcv_scale = 0; }), kFieldFlags);
  EXPECT_EQ(one([](R c) { c.essential.snd_wl2 += 1; }), kFieldSend);
  EXPECT_EQ(one([](R c) { c.essential.snd_wnd = 0; }), kFieldSend);
  EXPECT_EQ(one([](R c) { c.essential.rcv_adv += 1; }), kFieldReceive);
  EXPECT_EQ(one([](R c) { c.essential.ts_val_last += 1; }), kFieldTimestamps);
  EXPECT_EQ(one([](R c) { c.essential.state = tcp::State::closing; }), kFieldFin);
  EXPECT_EQ(one([](R c) { c.essential.fin_sent = false; }), kFieldFin);
  EXPECT_EQ(one([](R c) { c.send_limit += 1; }), kFieldSendLimit);
  EXPECT_EQ(one([](R c) { c.app.pop_back(); }), kFieldApp);
  EXPECT_EQ(one([](R c) {
              c.essential.rcv_nxt += 1;
              c.app.clear();
            }),
            kFieldReceive | kFieldApp);
}

TEST(SyncRecord, ApplyIgnoresWhatIsNotNewer) {
  const SessionRecord held = sample_record();  // version 3
  for (std::uint64_t version : {1, 2, 3}) {
    SessionRecord older = sample_record();
    older.version = version;
    older.essential.snd_nxt += 5;
    SessionRecord h = held;
    EXPECT_EQ(apply(full_of(older), h, true), ApplyResult::stale) << version;
    EXPECT_EQ(h, held);
    if (version > 1) {
      EXPECT_EQ(apply(make_update(older, version - 1, kFieldSend), h, true), ApplyResult::stale);
      EXPECT_EQ(h, held);
    }
  }
}

TEST(SyncRecord, ApplyTakesAFullRecordWhole) {
  SessionRecord r = sample_record();
  SessionRecord h;
  EXPECT_EQ(apply(full_of(r), h, false), ApplyResult::applied);
  EXPECT_EQ(h, r);
  // Over an older version: every field, even those nothing says changed.
  SessionRecord newer = r;
  newer.version = 10;
  newer.owner_epoch = 6;
  newer.app.clear();
  newer.essential.state = tcp::State::time_wait;
  EXPECT_EQ(apply(full_of(newer), h, true), ApplyResult::applied);
  EXPECT_EQ(h, newer);
}

TEST(SyncRecord, ApplyAsksForTheFullRecordWithoutTheBase) {
  SessionRecord r = sample_record();
  r.version = 6;
  const Update delta = make_update(r, 4, kFieldSend);
  SessionRecord h;
  EXPECT_EQ(apply(delta, h, false), ApplyResult::need_full);
  EXPECT_EQ(h, SessionRecord{});
  SessionRecord before_base = sample_record();  // version 3 < base 4
  h = before_base;
  EXPECT_EQ(apply(delta, h, true), ApplyResult::need_full);
  EXPECT_EQ(h, before_base);
}

// The owner sends, against the version its backup acknowledged, every field that changed since:
// the union of the changes, not diff(base, current). A backup holding any version from the base
// on then gets the current record, even where a field changed and changed back.
TEST(SyncRecord, DeltaFromAnyVersionFromTheBaseOnGivesTheSameRecord) {
  std::vector<SessionRecord> versions;  // versions[i] has version i + 1
  SessionRecord r = sample_record();
  r.version = 1;
  versions.push_back(r);
  const auto step = [&versions](auto change) {
    SessionRecord next = versions.back();
    next.version += 1;
    change(next);
    versions.push_back(next);
  };
  using R = SessionRecord&;
  step([](R c) { c.essential.snd_nxt += 100; });                  // v2: the acknowledged base
  step([](R c) { c.initial.mss = 536; });                         // v3: mss changes...
  step([](R c) { c.essential.rcv_nxt += 7; });                    // v4
  step([](R c) { c.initial.mss = 1448; });                        // v5: ...and changes back
  step([](R c) { c.app.push_back(std::byte{'d'}); });             // v6
  step([](R c) { c.essential.state = tcp::State::fin_wait_2; });  // v7
  const std::uint64_t base = 2;
  const SessionRecord& current = versions.back();

  std::uint16_t changed = 0;
  for (std::size_t i = base; i < versions.size(); ++i) {
    changed |= diff(versions[i - 1], versions[i]);
  }
  EXPECT_EQ(changed, kFieldInitial | kFieldReceive | kFieldApp | kFieldFin);
  // The mss went back: comparing the ends alone would miss it, and a backup holding v3 or v4
  // would keep 536.
  EXPECT_EQ(diff(versions[base - 1], current) & kFieldInitial, 0);

  const Update u = make_update(current, base, changed);
  const auto bytes = encode(message(SyncBatch{1, {u}, {}}), kNull);
  auto d = sync::decode(test::span(bytes), kNull);
  ASSERT_TRUE(std::holds_alternative<SyncMessage>(d));
  const Update received = std::get<SyncBatch>(std::get<SyncMessage>(d).body).updates.at(0);
  ASSERT_EQ(received, u);

  for (std::uint64_t held_version = base; held_version < current.version; ++held_version) {
    SessionRecord held = versions[held_version - 1];
    EXPECT_EQ(apply(received, held, true), ApplyResult::applied) << held_version;
    EXPECT_EQ(held, current) << "held version " << held_version;
  }
  SessionRecord too_old = versions[base - 2];
  EXPECT_EQ(apply(received, too_old, true), ApplyResult::need_full);
}

// --- encoding a message that cannot be encoded is a caller bug ---------------------------------

TEST(SyncRecordDeathTest, EncodeAbortsOnWhatNoDecoderAccepts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto batch = [](Update u) { return message(SyncBatch{1, {std::move(u)}, {}}); };
  SessionRecord r = sample_record();

  SessionRecord big_app = r;
  big_app.app.assign(kMaxAppState + 1, std::byte{0});
  EXPECT_DEATH(encode(batch(full_of(big_app)), kNull), "app state longer");

  SessionRecord bad_workset = r;
  bad_workset.workset = 1024;
  EXPECT_DEATH(encode(batch(full_of(bad_workset)), kNull), "workset id out of range");

  SessionRecord version_zero = r;
  version_zero.version = 0;
  EXPECT_DEATH(encode(batch(full_of(version_zero)), kNull), "neither a full record nor a delta");
  EXPECT_DEATH(encode(batch(make_update(r, 0, kFieldSend)), kNull), "neither");
  EXPECT_DEATH(encode(batch(make_update(r, 3, kFieldSend)), kNull), "neither");
  EXPECT_DEATH(encode(batch(make_update(r, 1, 0)), kNull), "neither");
  EXPECT_DEATH(encode(batch(make_update(r, 1, 0x100)), kNull), "neither");

  SessionRecord syn_received = r;
  syn_received.essential.state = tcp::State::syn_received;
  EXPECT_DEATH(encode(batch(full_of(syn_received)), kNull), "state not ESTABLISHED");

  EXPECT_DEATH(encode(message(SyncAck{1, std::vector<SessionKey>(0x10000, kKey)}), kNull),
               "list longer");

  // Under 65535 bytes of body, over kMaxSyncDatagram of datagram.
  SessionRecord large = r;
  large.app.assign(kMaxAppState, std::byte{1});
  SessionRecord medium = r;
  medium.app.assign(12000, std::byte{2});
  EXPECT_DEATH(
      encode(message(SyncBatch{
                 1, {full_of(large), full_of(large), full_of(large), full_of(medium)}, {}}),
             kNull),
      "longer than kMaxSyncDatagram");
}

}  // namespace
}  // namespace phalanx::sync
