#include "cluster/messages.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testutil.hpp"

namespace phalanx::cluster {
namespace {

using test::hex;

const NullAuthenticator kNull;

// Seals with one byte, the sum of the signed bytes; verifies that byte.
class SumAuthenticator final : public Authenticator {
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

const Ipv4Addr kA(10, 0, 0, 1);
const Ipv4Addr kB(10, 0, 0, 2);
const Ipv4Addr kC(10, 0, 0, 3);

Message message(Body body) {
  return Message{cluster_id_of("test"), kA, 0x0102030405060708ull, std::move(body)};
}

std::vector<std::uint8_t> owners_table() {
  std::vector<std::uint8_t> owners(1024);
  for (std::size_t i = 0; i < owners.size(); ++i) {
    owners[i] = i % 4 == 3 ? kUnassigned : static_cast<std::uint8_t>(i % 3);
  }
  return owners;
}

// One message of every type, each with non-trivial contents.
std::vector<Message> one_of_each() {
  return {
      message(JoinRequest{0xdeadbeefcafef00dull, {1, 2, 1023}, {2, 1023}}),
      message(JoinNak{kB, NakReason::vetoed, "firewall: state table full"}),
      message(JoinAck{kB, 0}),
      message(MasterOffer{3}),
      message(OtherMasterExists{kC}),
      message(ExitCluster{kC, std::string(kMaxReasonText, 'x')}),
      message(MasterKeepalive{41, 7, 250, {kA, kB, kC}, owners_table(), 12, 2}),
      message(FollowerKeepalive{0xfffffffe, 12345, {3}, 1, true}),
      message(WorkAssign{kB, {0, 511, 1023}}),
      message(WorkAssignAck{{0, 511, 1023}}),
      message(WorkDeassign{kB, kC, {17, 18}}),
      message(WorkDeassignAck{{17}, {}}),
  };
}

// "ok", or the name of the error decode returns.
std::string result_of(const std::vector<std::byte>& datagram, const Authenticator& auth = kNull) {
  auto r = decode(test::span(datagram), auth);
  if (auto* e = std::get_if<DecodeError>(&r)) {
    return std::string(to_string(*e));
  }
  return "ok";
}

// A datagram of `type` around `body` (hex), with a correct body length and a null envelope.
std::vector<std::byte> datagram(MessageType type, std::string_view body_hex) {
  std::vector<std::byte> body = hex(body_hex);
  std::vector<std::byte> d = hex("50484c58 01 00 0000 00000001 0a000001 0000000000000001");
  wire::write_u8(d, 5, static_cast<std::uint8_t>(type));
  wire::write_u16(d, 6, static_cast<std::uint16_t>(body.size()));
  d.insert(d.end(), body.begin(), body.end());
  for (std::byte b : hex("00 0000")) {
    d.push_back(b);
  }
  return d;
}

std::string repeat(std::string_view item, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += item;
  }
  return s;
}

// --- round trips ------------------------------------------------------------------------------

TEST(Messages, EveryTypeRoundTrips) {
  for (const Authenticator* auth :
       {static_cast<const Authenticator*>(&kNull), static_cast<const Authenticator*>(&kSum)}) {
    for (const Message& m : one_of_each()) {
      SCOPED_TRACE(to_string(m.type()));
      const auto bytes = encode(m, *auth);
      auto r = decode(test::span(bytes), *auth);
      ASSERT_TRUE(std::holds_alternative<Message>(r)) << to_string(std::get<DecodeError>(r));
      EXPECT_EQ(std::get<Message>(r), m);
      EXPECT_EQ(std::get<Message>(r).type(), m.type());
    }
  }
}

TEST(Messages, OneOfEachCoversEveryType) {
  const auto all = one_of_each();
  ASSERT_EQ(all.size(), std::variant_size_v<Body>);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(all[i].type()), i + 1);
  }
}

TEST(Messages, EmptyListsAndTextRoundTrip) {
  for (const Message& m : {message(JoinRequest{}), message(JoinNak{kB, NakReason::in_progress, ""}),
                           message(MasterKeepalive{}), message(WorkAssignAck{})}) {
    const auto bytes = encode(m, kNull);
    auto r = decode(test::span(bytes), kNull);
    ASSERT_TRUE(std::holds_alternative<Message>(r)) << to_string(m.type());
    EXPECT_EQ(std::get<Message>(r), m);
  }
}

// --- literal wire layout ----------------------------------------------------------------------

TEST(Messages, MasterKeepaliveLayout) {
  const Message m{0x01020304, kA, 7,
                  MasterKeepalive{9, 3, 200, {kA, kB}, {}, 5, 1, {0x0a0b0c0d, {1, 0xff00}}}};
  const auto expected =
      hex("50484c58 01 07 002b 01020304 0a000001 0000000000000007"  // header
          "00000009 03 00c8"                                        // sequence, n, interval
          "0002 0a000001 0a000002"                                  // members
          "0000"                                                    // owners: none this time
          "0005"                                                    // active worksets
          "0001"                                                    // members in doubt
          "0a0b0c0d"                                                // handshake key generation
          "0000000000000001 000000000000ff00"                       // handshake key
          "00 0000");                                               // null envelope
  EXPECT_EQ(encode(m, kNull), expected);
  auto r = decode(test::span(expected), kNull);
  ASSERT_TRUE(std::holds_alternative<Message>(r));
  EXPECT_EQ(std::get<Message>(r), m);
}

TEST(Messages, FollowerKeepaliveLayout) {
  const Message m{0xa1b2c3d4, kB, 0x100000002ull, FollowerKeepalive{5, 100, {}, 3}};
  const auto expected =
      hex("50484c58 01 08 000d a1b2c3d4 0a000002 0000000100000002"
          "00000005 00000064 0000 0003"  // sequence, load, busy: none, active worksets
          "00"                           // flags: not draining
          "00 0000");
  EXPECT_EQ(encode(m, kNull), expected);
  auto r = decode(test::span(expected), kNull);
  ASSERT_TRUE(std::holds_alternative<Message>(r));
  EXPECT_EQ(std::get<Message>(r), m);
}

// The draining flag: bit 0 of the byte after `active`; any other bit is refused.
TEST(Messages, FollowerKeepaliveDrainingFlag) {
  const Message m{0xa1b2c3d4, kB, 2, FollowerKeepalive{5, 100, {}, 3, true}};
  auto bytes = encode(m, kNull);
  ASSERT_EQ(bytes.size(), kHeaderSize + 13 + 3);
  EXPECT_EQ(wire::read_u8(test::span(bytes), kHeaderSize + 12), 1u);
  auto r = decode(test::span(bytes), kNull);
  ASSERT_TRUE(std::holds_alternative<Message>(r));
  EXPECT_EQ(std::get<Message>(r), m);
  bytes[kHeaderSize + 12] = std::byte{2};
  EXPECT_TRUE(std::holds_alternative<DecodeError>(decode(test::span(bytes), kNull)));
}

// The busy set is a 128-byte bitmap, most significant bit first; empty is count 0.
TEST(Messages, FollowerKeepaliveBusyBitmap) {
  const Message m{0xa1b2c3d4, kB, 2, FollowerKeepalive{5, 100, {0, 9, 1023}}};
  const auto bytes = encode(m, kNull);
  ASSERT_EQ(bytes.size(), kHeaderSize + 10 + 128 + 2 + 1 + 3);
  EXPECT_EQ(wire::read_u16(test::span(bytes), kHeaderSize + 8), 128u);
  EXPECT_EQ(wire::read_u8(test::span(bytes), kHeaderSize + 10), 0x80u);
  EXPECT_EQ(wire::read_u8(test::span(bytes), kHeaderSize + 11), 0x40u);
  EXPECT_EQ(wire::read_u8(test::span(bytes), kHeaderSize + 10 + 127), 0x01u);
  auto r = decode(test::span(bytes), kNull);
  ASSERT_TRUE(std::holds_alternative<Message>(r));
  EXPECT_EQ(std::get<Message>(r), m);

  // A bitmap with no bit set (one set, one encoding) and any other size are refused.
  auto empty = bytes;
  std::fill(empty.begin() + kHeaderSize + 10, empty.begin() + kHeaderSize + 138, std::byte{0});
  auto e = decode(test::span(empty), kNull);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(e));
  EXPECT_EQ(std::get<DecodeError>(e), DecodeError::bad_field);
  const Message small{0xa1b2c3d4, kB, 2, FollowerKeepalive{5, 100, {}}};
  auto wrong = encode(small, kNull);
  // count 1 with one byte: body length 14 (with the active count and the flags)
  wrong.insert(wrong.begin() + kHeaderSize + 10, std::byte{0x80});
  wire::write_u16(wire::MutBytes(wrong), kHeaderSize + 8, 1);
  wire::write_u16(wire::MutBytes(wrong), 6, 14);
  auto w = decode(test::span(wrong), kNull);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(w));
  EXPECT_EQ(std::get<DecodeError>(w), DecodeError::bad_field);
}

TEST(Messages, WorkDeassignAckCarriesRefusedWorksets) {
  const Message m{0x01020304, kB, 7, WorkDeassignAck{{17}, {18, 900}}};
  const auto expected =
      hex("50484c58 01 0c 000a 01020304 0a000002 0000000000000007"
          "0001 0011 0002 0012 0384"
          "00 0000");
  EXPECT_EQ(encode(m, kNull), expected);
  auto r = decode(test::span(expected), kNull);
  ASSERT_TRUE(std::holds_alternative<Message>(r));
  EXPECT_EQ(std::get<Message>(r), m);
}

TEST(Messages, WorkAssignLayout) {
  const Message m{0x01020304, kA, 7, WorkAssign{kB, {0, 1, 1023}}};
  const auto expected =
      hex("50484c58 01 09 000c 01020304 0a000001 0000000000000007"
          "0a000002 0003 0000 0001 03ff"
          "00 0000");
  EXPECT_EQ(encode(m, kNull), expected);
  auto r = decode(test::span(expected), kNull);
  ASSERT_TRUE(std::holds_alternative<Message>(r));
  EXPECT_EQ(std::get<Message>(r), m);
}

TEST(Messages, EnvelopeCarriesTheAuthenticatorsBytes) {
  const Message m{0, Ipv4Addr{}, 0, MasterOffer{1}};
  // The signed part sums to 0x50+0x48+0x4c+0x58+0x01+0x04+0x02+0x01 = 0x144: seal 0x44.
  EXPECT_EQ(encode(m, kSum), hex("50484c58 01 04 0002 00000000 00000000 0000000000000000"
                                 "0001"
                                 "07 0001 44"));
}

TEST(Messages, ClusterIdIsFnv1a) {
  EXPECT_EQ(cluster_id_of(""), 0x811c9dc5u);
  EXPECT_EQ(cluster_id_of("a"), 0xe40c292cu);
  EXPECT_EQ(cluster_id_of("foobar"), 0xbf9cf968u);
}

// --- rejection --------------------------------------------------------------------------------

TEST(Messages, EveryTruncationIsRejected) {
  for (const Authenticator* auth :
       {static_cast<const Authenticator*>(&kNull), static_cast<const Authenticator*>(&kSum)}) {
    for (const Message& m : one_of_each()) {
      const auto bytes = encode(m, *auth);
      for (std::size_t len = 0; len < bytes.size(); ++len) {
        const std::vector<std::byte> cut(bytes.begin(), bytes.begin() + len);
        EXPECT_NE(result_of(cut, *auth), "ok") << to_string(m.type()) << " cut to " << len;
      }
    }
  }
}

TEST(Messages, RejectsShortHeader) {
  const auto bytes = encode(message(JoinAck{kB, 0}), kNull);
  EXPECT_EQ(result_of({bytes.begin(), bytes.begin() + kHeaderSize - 1}), "truncated");
  EXPECT_EQ(result_of({}), "truncated");
}

TEST(Messages, RejectsBadMagic) {
  auto bytes = encode(message(JoinAck{kB, 0}), kNull);
  bytes[3] = std::byte{'Y'};
  EXPECT_EQ(result_of(bytes), "bad magic");
}

TEST(Messages, RejectsOtherVersions) {
  auto bytes = encode(message(JoinAck{kB, 0}), kNull);
  for (std::uint8_t v : {0, 2, 255}) {
    bytes[4] = std::byte{v};
    EXPECT_EQ(result_of(bytes), "bad version") << int{v};
  }
}

TEST(Messages, RejectsUnknownTypes) {
  auto bytes = encode(message(JoinAck{kB, 0}), kNull);
  for (std::uint8_t t : {0, 13, 255}) {
    bytes[5] = std::byte{t};
    EXPECT_EQ(result_of(bytes), "unknown type") << int{t};
  }
}

TEST(Messages, RejectsBodyLengthPastTheDatagram) {
  // 8 body bytes and a 3-byte envelope follow the header; the body length says 12.
  EXPECT_EQ(result_of(hex("50484c58 01 08 000c 00000001 0a000001 0000000000000001"
                          "00000005 00000064"
                          "00 0000")),
            "bad length");
}

TEST(Messages, RejectsBodyLongerThanItsFields) {
  // FollowerKeepalive uses 8 bytes; the body says 9 and holds 9.
  EXPECT_EQ(result_of(hex("50484c58 01 08 0009 00000001 0a000001 0000000000000001"
                          "00000005 00000064 00"
                          "00 0000")),
            "bad length");
}

TEST(Messages, RejectsBodyShorterThanItsFields) {
  // FollowerKeepalive needs 8 bytes; the body says 7.
  EXPECT_EQ(result_of(hex("50484c58 01 08 0007 00000001 0a000001 0000000000000001"
                          "00000005 000000"
                          "00 0000")),
            "bad length");
  // A list whose count runs past the body.
  EXPECT_EQ(result_of(datagram(MessageType::work_assign_ack, "0002 0001")), "bad length");
  // A text whose length runs past the body.
  EXPECT_EQ(result_of(datagram(MessageType::exit_cluster, "0a000003 05 41424344")), "bad length");
}

TEST(Messages, NeverTrustsACount) {
  using T = MessageType;
  EXPECT_EQ(result_of(datagram(T::work_assign_ack, "ffff 0001")), "bad length");
  EXPECT_EQ(result_of(datagram(T::join_request, "0000000000000001 ffff 0001 0002")), "bad length");
  EXPECT_EQ(result_of(datagram(T::work_deassign, "0a000002 0a000003 ffff")), "bad length");
  EXPECT_EQ(result_of(datagram(T::master_keepalive, "00000001 02 00c8 ffff 0a000001")),
            "bad length");
  EXPECT_EQ(result_of(datagram(T::master_keepalive, "00000001 02 00c8 0001 0a000001 ffff 00")),
            "bad length");
  EXPECT_EQ(result_of(datagram(T::join_nak, "0a000002 01 c8 41")), "bad length");
}

TEST(Messages, RejectsUnknownNakReasons) {
  EXPECT_EQ(result_of(datagram(MessageType::join_nak, "0a000002 04 00")), "ok");
  EXPECT_EQ(result_of(datagram(MessageType::join_nak, "0a000002 00 00")), "bad field");
  EXPECT_EQ(result_of(datagram(MessageType::join_nak, "0a000002 05 00")), "bad field");
}

TEST(Messages, RejectsTextLongerThanTheLimit) {
  EXPECT_EQ(result_of(datagram(MessageType::exit_cluster, "0a000003 c8" + repeat("41", 200))),
            "ok");
  EXPECT_EQ(result_of(datagram(MessageType::exit_cluster, "0a000003 c9" + repeat("41", 201))),
            "bad field");
  EXPECT_EQ(result_of(datagram(MessageType::join_nak, "0a000002 02 c9" + repeat("41", 201))),
            "bad field");
}

TEST(Messages, RejectsWorksetIdsOutOfRange) {
  using T = MessageType;
  EXPECT_EQ(result_of(datagram(T::work_assign_ack, "0002 0001 03ff")), "ok");
  EXPECT_EQ(result_of(datagram(T::work_assign_ack, "0002 0001 0400")), "bad field");
  EXPECT_EQ(result_of(datagram(T::work_deassign_ack, "0001 ffff")), "bad field");
  EXPECT_EQ(result_of(datagram(T::work_assign, "0a000002 0001 0400")), "bad field");
  EXPECT_EQ(result_of(datagram(T::work_deassign, "0a000002 0a000003 0001 0400")), "bad field");
  EXPECT_EQ(result_of(datagram(T::join_request, "0000000000000001 0001 8000")), "bad field");
}

// A MasterKeepalive's last fields: the handshake key (generation, two halves).
const std::string kKey = " 00000001 0000000000000002 0000000000000003";

TEST(Messages, RejectsTooManyMembers) {
  const std::string head = "00000001 02 00c8 ";
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive,
                               head + "00ff" + repeat("0a000001", 255) + "0000 0000 0000" + kKey)),
            "ok");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive,
                               head + "0100" + repeat("0a000001", 256) + "0000 0000 0000" + kKey)),
            "bad field");
}

TEST(Messages, RejectsOwnerTablesOfTheWrongSize) {
  const std::string head = "00000001 02 00c8 0001 0a000001 ";
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive,
                               head + "0400" + repeat("00", 1024) + "0000 0000" + kKey)),
            "ok");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, head + "03ff" + repeat("00", 1023))),
            "bad field");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, head + "0001 00")), "bad field");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, head + "0401" + repeat("00", 1025))),
            "bad field");
}

TEST(Messages, RejectsOwnersNamingNoMember) {
  const std::string head = "00000001 02 00c8 0002 0a000001 0a000002 0400";
  const std::string rest = repeat("ff", 1023) + "0000 0000" + kKey;
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, head + "01" + rest)), "ok");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, head + "ff" + rest)), "ok");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, head + "02" + rest)), "bad field");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, head + "fe" + rest)), "bad field");
}

// Members in doubt are followers the list names: fewer than the members (the master is heard).
TEST(Messages, RejectsMoreUnheardMembersThanFollowers) {
  const std::string three = "00000001 02 00c8 0003 0a000001 0a000002 0a000003 0000 0005 ";
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, three + "0002" + kKey)), "ok");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, three + "0003" + kKey)), "bad field");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, three + "ffff" + kKey)), "bad field");
  const std::string none = "00000001 02 00c8 0000 0000 0000 ";
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, none + "0000" + kKey)), "ok");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, none + "0001" + kKey)), "bad field");
}

// Active worksets (the tie-break's traffic) count worksets: at most 1024.
TEST(Messages, RejectsActiveCountsAboveTheWorksetCount) {
  const std::string master = "00000001 02 00c8 0001 0a000001 0000 ";
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, master + "0400 0000" + kKey)), "ok");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, master + "0401 0000" + kKey)),
            "bad field");
  EXPECT_EQ(result_of(datagram(MessageType::master_keepalive, master + "ffff 0000" + kKey)),
            "bad field");
  const std::string follower = "00000005 00000064 0000 ";
  EXPECT_EQ(result_of(datagram(MessageType::follower_keepalive, follower + "0400 00")), "ok");
  EXPECT_EQ(result_of(datagram(MessageType::follower_keepalive, follower + "0401 00")),
            "bad field");
}

TEST(Messages, RejectsAnEnvelopeOfAnotherKind) {
  const auto null_sealed = encode(message(JoinAck{kB, 0}), kNull);
  const auto sum_sealed = encode(message(JoinAck{kB, 0}), kSum);
  EXPECT_EQ(result_of(null_sealed, kSum), "bad auth kind");
  EXPECT_EQ(result_of(sum_sealed, kNull), "bad auth kind");
}

TEST(Messages, RejectsWhatTheAuthenticatorRefuses) {
  const auto good = encode(message(WorkAssign{kB, {5, 6}}), kSum);
  ASSERT_EQ(result_of(good, kSum), "ok");

  auto body_changed = good;
  body_changed[kHeaderSize + 3] ^= std::byte{0x01};  // member 10.0.0.2 -> 10.0.0.3
  EXPECT_EQ(result_of(body_changed, kSum), "bad auth");

  auto header_changed = good;
  header_changed[15] ^= std::byte{0x01};  // sender
  EXPECT_EQ(result_of(header_changed, kSum), "bad auth");

  auto seal_changed = good;
  seal_changed.back() ^= std::byte{0x80};
  EXPECT_EQ(result_of(seal_changed, kSum), "bad auth");

  // The null authenticator accepts only an empty seal.
  auto null_with_bytes = encode(message(JoinAck{kB, 0}), kNull);
  null_with_bytes.back() = std::byte{0x01};  // auth length 1
  null_with_bytes.push_back(std::byte{0x00});
  EXPECT_EQ(result_of(null_with_bytes, kNull), "bad auth");
}

TEST(Messages, RejectsAShortEnvelope) {
  const auto good = encode(message(JoinAck{kB, 0}), kSum);
  EXPECT_EQ(result_of({good.begin(), good.end() - 1}, kSum), "truncated");  // no auth byte
  EXPECT_EQ(result_of({good.begin(), good.end() - 2}, kSum), "truncated");  // half a length
}

TEST(Messages, RejectsTrailingBytes) {
  for (const Authenticator* auth :
       {static_cast<const Authenticator*>(&kNull), static_cast<const Authenticator*>(&kSum)}) {
    auto bytes = encode(message(FollowerKeepalive{1, 2, {}}), *auth);
    bytes.push_back(std::byte{0});
    EXPECT_EQ(result_of(bytes, *auth), "trailing bytes");
  }
}

TEST(Messages, EveryDecodeErrorHasAName) {
  std::vector<std::string_view> names;
  for (std::size_t i = 0; i < kDecodeErrorCount; ++i) {
    names.push_back(to_string(static_cast<DecodeError>(i)));
    EXPECT_NE(names.back(), "unknown");
    for (std::size_t j = 0; j < i; ++j) {
      EXPECT_NE(names[j], names[i]);
    }
  }
}

// Text received at the limit and quoted with a prefix (a goodbye quoting the reason it was told to
// exit for) went past kMaxReasonText and aborted the encoder (issue 9 part 3). bounded_text cuts
// any text to what a message carries.
TEST(Messages, BoundedTextAlwaysEncodes) {
  const std::string received(kMaxReasonText, 'r');
  const std::string quoted = "told to exit by 198.18.0.9: " + received;
  ASSERT_GT(quoted.size(), kMaxReasonText);
  const std::string text = bounded_text(quoted);
  EXPECT_EQ(text.size(), kMaxReasonText);
  EXPECT_EQ(text, quoted.substr(0, kMaxReasonText));
  EXPECT_EQ(bounded_text("short"), "short");
  EXPECT_EQ(bounded_text(""), "");
  const Message m = message(ExitCluster{kB, text});
  const auto bytes = encode(m, kNull);
  EXPECT_EQ(std::get<Message>(decode(wire::Bytes(bytes), kNull)), m);
}

// --- encoding a message that cannot be encoded is a caller bug ---------------------------------

TEST(MessagesDeathTest, EncodeAbortsOnWhatNoDecoderAccepts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(encode(message(WorkAssign{kB, {1024}}), kNull), "workset id out of range");
  EXPECT_DEATH(encode(message(ExitCluster{kB, std::string(kMaxReasonText + 1, 'x')}), kNull),
               "text longer");
  EXPECT_DEATH(
      encode(message(MasterKeepalive{1, 2, 200, std::vector<Ipv4Addr>(kMaxMembers + 1), {}}),
             kNull),
      "more members");
  EXPECT_DEATH(encode(message(MasterKeepalive{1, 2, 200, {kA}, {0, 0}}), kNull), "owners");
  EXPECT_DEATH(
      encode(message(MasterKeepalive{1, 2, 200, {kA}, std::vector<std::uint8_t>(1024, 1)}), kNull),
      "owner index");
  EXPECT_DEATH(encode(message(MasterKeepalive{1, 2, 200, {kA, kB}, {}, 0, 2}), kNull),
               "more members unheard");
  EXPECT_DEATH(encode(message(JoinNak{kB, NakReason{9}, ""}), kNull), "NakReason");
}

}  // namespace
}  // namespace phalanx::cluster
