#include "wire/l2tp.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "testutil.hpp"

namespace phalanx::wire {
namespace {

using test::hex;
using test::span;

// There is no L2TP peer on the build machines, so these messages are built by hand from the
// header layout of RFC 2661 §3.1 (T L x x S x O P x x x x Ver | Length | Tunnel | Session | Ns |
// Nr | Offset Size | pad) and the AVP layout of §4.1.

// SCCRQ: control (T L S, Ver 2), Length 20, tunnel 0, session 0, Ns 0, Nr 0, then one AVP:
// Message Type (M bit, length 8, vendor 0, attribute 0) = 1 (SCCRQ).
const std::vector<std::byte> kSccrq =
    hex("c802 0014 0000 0000 0000 0000"
        "8008 0000 0000 0001");
// ZLB acknowledgement: control, Length 12, tunnel 0x1234, session 0, Ns 1, Nr 2, no AVPs.
const std::vector<std::byte> kZlb = hex("c802 000c 1234 0000 0001 0002");
// Data message, no optional fields: tunnel 0x1234, session 0x0042, then a PPP LCP
// Configure-Request (ff03 c021, code 1, id 1, length 4).
const std::vector<std::byte> kDataBare =
    hex("0002 1234 0042"
        "ff03 c021 0101 0004");
// Data message with L, S and O: Length 24, tunnel 0x1234, session 0x0042, Ns 7, Nr 9, Offset
// Size 2 with two bytes of zero padding, then the same PPP frame.
const std::vector<std::byte> kDataFull =
    hex("4a02 0018 1234 0042 0007 0009 0002 0000"
        "ff03 c021 0101 0004");
// Data message with the priority bit and sequence numbers but no length.
const std::vector<std::byte> kDataPriority =
    hex("0902 1234 0042 0003 0004"
        "ff03 c021 0101 0004");

const std::vector<std::byte> kPpp = hex("ff03 c021 0101 0004");

bool same(Bytes a, Bytes b) {
  return std::ranges::equal(a, b);
}

TEST(L2tpView, ParsesControlMessage) {
  auto v = L2tpView::parse(span(kSccrq));
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->is_control());
  EXPECT_TRUE(v->has_length());
  EXPECT_TRUE(v->has_sequence());
  EXPECT_FALSE(v->has_offset());
  EXPECT_EQ(v->length(), 20);
  EXPECT_EQ(v->tunnel_id(), 0);
  EXPECT_EQ(v->session_id(), 0);
  EXPECT_EQ(v->ns(), 0);
  EXPECT_EQ(v->nr(), 0);
  EXPECT_EQ(v->header_size(), 12u);
  EXPECT_TRUE(same(v->payload(), span(hex("8008 0000 0000 0001"))));
}

TEST(L2tpView, ParsesZeroLengthBodyAck) {
  auto v = L2tpView::parse(span(kZlb));
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->is_control());
  EXPECT_EQ(v->tunnel_id(), 0x1234);
  EXPECT_EQ(v->ns(), 1);
  EXPECT_EQ(v->nr(), 2);
  EXPECT_TRUE(v->payload().empty());
}

TEST(L2tpView, ParsesBareDataMessage) {
  auto v = L2tpView::parse(span(kDataBare));
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->is_control());
  EXPECT_FALSE(v->has_length());
  EXPECT_FALSE(v->has_sequence());
  EXPECT_FALSE(v->priority());
  EXPECT_EQ(v->length(), std::nullopt);
  EXPECT_EQ(v->tunnel_id(), 0x1234);
  EXPECT_EQ(v->session_id(), 0x0042);
  EXPECT_EQ(v->ns(), std::nullopt);
  EXPECT_EQ(v->nr(), std::nullopt);
  EXPECT_EQ(v->offset_size(), std::nullopt);
  EXPECT_TRUE(same(v->payload(), span(kPpp)));
}

TEST(L2tpView, SkipsOffsetPadding) {
  auto v = L2tpView::parse(span(kDataFull));
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->is_control());
  EXPECT_TRUE(v->has_length());
  EXPECT_TRUE(v->has_sequence());
  EXPECT_EQ(v->ns(), 7);
  EXPECT_EQ(v->nr(), 9);
  EXPECT_EQ(v->offset_size(), 2);
  EXPECT_EQ(v->header_size(), 16u);
  EXPECT_TRUE(same(v->payload(), span(kPpp)));
}

TEST(L2tpView, ParsesPriorityBit) {
  auto v = L2tpView::parse(span(kDataPriority));
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->priority());
  EXPECT_EQ(v->ns(), 3);
  EXPECT_EQ(v->nr(), 4);
  EXPECT_TRUE(same(v->payload(), span(kPpp)));
}

TEST(L2tpView, PayloadStopsAtLengthField) {
  auto b = kSccrq;
  b.insert(b.end(), 6, std::byte{0xee});
  auto v = L2tpView::parse(span(b));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->bytes().size(), kSccrq.size());
  EXPECT_TRUE(same(v->payload(), span(hex("8008 0000 0000 0001"))));
}

TEST(L2tpView, IgnoresReservedBits) {
  auto b = kDataBare;
  b[0] |= std::byte{0x34};  // the x bits of the first octet
  b[1] |= std::byte{0xf0};  // the x bits before Ver
  auto v = L2tpView::parse(span(b));
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->is_control());
  EXPECT_FALSE(v->has_length());
  EXPECT_TRUE(same(v->payload(), span(kPpp)));
}

TEST(L2tpView, RejectsEveryTruncationWhenLengthPresent) {
  for (const auto* msg : {&kSccrq, &kZlb, &kDataFull}) {
    for (std::size_t n = 0; n < msg->size(); ++n) {
      auto v = L2tpView::parse(span(*msg).first(n));
      ASSERT_FALSE(v) << n;
      EXPECT_EQ(v.error(), Error::truncated) << n;
      EXPECT_FALSE(L2tpRepr::parse(span(*msg).first(n))) << n;
    }
  }
}

TEST(L2tpView, TruncationWithoutLengthCutsThePayload) {
  // Without the L bit nothing says where the message ends: a cut inside the header is rejected, a
  // cut in the payload just shortens it (the PPP layer sees the damage).
  for (const auto* msg : {&kDataBare, &kDataPriority}) {
    const std::size_t hs = L2tpView::parse(span(*msg))->header_size();
    for (std::size_t n = 0; n < msg->size(); ++n) {
      auto v = L2tpView::parse(span(*msg).first(n));
      if (n < hs) {
        ASSERT_FALSE(v) << n;
        EXPECT_EQ(v.error(), Error::truncated) << n;
      } else {
        ASSERT_TRUE(v) << n;
        EXPECT_EQ(v->payload().size(), n - hs) << n;
      }
    }
  }
}

TEST(L2tpView, RejectsOtherVersions) {
  for (std::uint8_t ver : {0, 1, 3, 15}) {
    auto b = kSccrq;
    b[1] = std::byte{static_cast<std::uint8_t>(0x00 | ver)};
    auto v = L2tpView::parse(span(b));
    ASSERT_FALSE(v) << int{ver};
    EXPECT_EQ(v.error(), Error::bad_version) << int{ver};
  }
}

TEST(L2tpView, RejectsControlWithoutLengthOrSequenceOrWithOffset) {
  // RFC 2661 §3.1: L and S MUST be set and O MUST be clear on control messages.
  for (const char* text : {
           "8802 0000 0000 0000 0000",            // T S, no L
           "c002 0008 0000 0000",                 // T L, no S
           "8002 0000 0000",                      // T alone
           "ca02 000e 0000 0000 0000 0000 0000",  // T L S O
       }) {
    auto v = L2tpView::parse(span(hex(text)));
    ASSERT_FALSE(v) << text;
    EXPECT_EQ(v.error(), Error::malformed) << text;
  }
}

TEST(L2tpView, RejectsLengthBelowHeader) {
  for (std::uint16_t len = 0; len < 12; ++len) {
    auto b = kZlb;
    write_u16(b, 2, len);
    auto v = L2tpView::parse(span(b));
    ASSERT_FALSE(v) << len;
    EXPECT_EQ(v.error(), Error::bad_total_length) << len;
  }
}

TEST(L2tpView, RejectsOffsetPastTheEnd) {
  auto with_length = kDataFull;
  write_u16(with_length, 12, 11);  // 16 + 11 > Length 24 (though inside the buffer when padded)
  with_length.insert(with_length.end(), 8, std::byte{0});
  auto v = L2tpView::parse(span(with_length));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error(), Error::malformed);

  auto bare = hex("0202 1234 0042 ffff 0000");  // O only: offset 65535, buffer far shorter
  auto w = L2tpView::parse(span(bare));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), Error::malformed);

  auto exact = hex("0202 1234 0042 0002 0000");  // offset to exactly the end: empty payload
  auto x = L2tpView::parse(span(exact));
  ASSERT_TRUE(x);
  EXPECT_TRUE(x->payload().empty());
}

TEST(L2tpRepr, RoundTripsEveryMessage) {
  for (const auto* msg : {&kSccrq, &kZlb, &kDataBare, &kDataFull, &kDataPriority}) {
    auto r = L2tpRepr::parse(span(*msg));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->size(), msg->size());
    std::vector<std::byte> out(r->size());
    r->emit(out);
    EXPECT_EQ(out, *msg);
    auto again = L2tpRepr::parse(span(out));
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *r);
  }
}

TEST(L2tpRepr, ParsesFields) {
  auto r = L2tpRepr::parse(span(kDataFull));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->control);
  EXPECT_TRUE(r->with_length);
  EXPECT_FALSE(r->priority);
  EXPECT_EQ(r->tunnel_id, 0x1234);
  EXPECT_EQ(r->session_id, 0x0042);
  EXPECT_EQ(r->sequence, (L2tpRepr::Sequence{7, 9}));
  EXPECT_EQ(r->offset_size, 2);
  EXPECT_TRUE(same(r->payload, span(kPpp)));
}

TEST(L2tpRepr, EmitsFromScratch) {
  const auto avp = hex("8008 0000 0000 0001");
  L2tpRepr sccrq;
  sccrq.control = true;
  sccrq.with_length = true;
  sccrq.sequence = L2tpRepr::Sequence{0, 0};
  sccrq.payload = span(avp);
  std::vector<std::byte> out(sccrq.size());
  sccrq.emit(out);
  EXPECT_EQ(out, kSccrq);

  L2tpRepr data;
  data.tunnel_id = 0x1234;
  data.session_id = 0x0042;
  data.payload = span(kPpp);
  out.assign(data.size(), std::byte{0xaa});
  data.emit(out);
  EXPECT_EQ(out, kDataBare);
}

TEST(L2tpRepr, EmitsInPlacePayload) {
  // The payload already sits where a longer header was: it moves before the header is written.
  auto buf = kDataFull;
  L2tpRepr r = *L2tpRepr::parse(span(buf));
  r.with_length = false;
  r.sequence.reset();
  r.offset_size.reset();
  r.emit(buf);
  buf.resize(r.size());
  EXPECT_EQ(buf, kDataBare);
}

TEST(L2tpReprDeathTest, ControlWithoutSequenceIsACallerBug) {
  L2tpRepr r;
  r.control = true;
  r.with_length = true;
  std::vector<std::byte> out(64);
  EXPECT_DEATH(r.emit(out), "");
}

}  // namespace
}  // namespace phalanx::wire
