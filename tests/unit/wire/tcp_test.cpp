#include "wire/tcp.hpp"

#include <gtest/gtest.h>

#include <string_view>
#include <tuple>
#include <vector>

#include "testutil.hpp"

namespace phalanx::wire {
namespace {

using test::hex;
using test::span;

const Ipv4Addr kClient{198, 18, 20, 1};
const Ipv4Addr kServer{198, 18, 20, 2};

// Captured from Linux 6.18 with `tcpdump -xx` on a veth between two network namespaces
// (198.18.20.1 <-> 198.18.20.2, TX checksum offload off), python3 sockets on both ends. The SACK
// segment is real too: an nftables rule on the server dropped the first 600-byte packet once.

// 198.18.20.1.40123 > 198.18.20.2.5001: Flags [S], seq 2951591387, win 64240,
// options [mss 1460,sackOK,TS val 981026150 ecr 0,nop,wscale 10]
const std::vector<std::byte> kSyn =
    hex("9cbb 1389 afed b5db 0000 0000 a002 faf0 02f7 0000"
        "0204 05b4 0402 080a 3a79 4566 0000 0000 0103 030a");
// 198.18.20.2.5001 > 198.18.20.1.40123: Flags [S.], seq 3498965533, ack 2951591388, win 65160,
// options [mss 1460,sackOK,TS val 2659520702 ecr 981026150,nop,wscale 10]
const std::vector<std::byte> kSynAck =
    hex("1389 9cbb d08d fa1d afed b5dc a012 fe88 855e 0000"
        "0204 05b4 0402 080a 9e85 10be 3a79 4566 0103 030a");
// 198.18.20.1.40123 > 198.18.20.2.5001: Flags [.], ack 1, win 63,
// options [nop,nop,TS val 981026150 ecr 2659520702]
const std::vector<std::byte> kAck =
    hex("9cbb 1389 afed b5dc d08d fa1e 8010 003f b277 0000"
        "0101 080a 3a79 4566 9e85 10be");
// 198.18.20.1.40123 > 198.18.20.2.5001: Flags [P.], seq 1:15, ack 1, win 63,
// options [nop,nop,TS val 981026151 ecr 2659520702], length 14 ("hello phalanx\n")
const std::vector<std::byte> kData =
    hex("9cbb 1389 afed b5dc d08d fa1e 8018 003f c320 0000"
        "0101 080a 3a79 4567 9e85 10be"
        "6865 6c6c 6f20 7068 616c 616e 780a");
// 198.18.20.2.5001 > 198.18.20.1.40123: Flags [.], ack 115, win 64,
// options [nop,nop,TS val 2659520773 ecr 981026201,nop,nop,sack 1 {663:863}]
const std::vector<std::byte> kSack =
    hex("1389 9cbb d08d fa1e afed b64e b010 0040 a9ea 0000"
        "0101 080a 9e85 1105 3a79 4599 0101 050a afed b872 afed b93a");
// 198.18.20.1.40123 > 198.18.20.2.5001: Flags [F.], seq 1563, ack 1, win 63,
// options [nop,nop,TS val 981026752 ecr 2659520794]
const std::vector<std::byte> kFin =
    hex("9cbb 1389 afed bbf6 d08d fa1e 8011 003f a9a6 0000"
        "0101 080a 3a79 47c0 9e85 111a");

struct Captured {
  const char* name;
  const std::vector<std::byte>* bytes;
  Ipv4Addr src;
  Ipv4Addr dst;
};
const Captured kCaptured[] = {
    {"syn", &kSyn, kClient, kServer},   {"syn-ack", &kSynAck, kServer, kClient},
    {"ack", &kAck, kClient, kServer},   {"data", &kData, kClient, kServer},
    {"sack", &kSack, kServer, kClient}, {"fin", &kFin, kClient, kServer},
};

TcpOptions mss_only(std::uint16_t mss) {
  TcpOptions o;
  o.mss = mss;
  return o;
}

std::string_view text(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A segment from a header and hand-written options, with a correct checksum.
std::vector<std::byte> segment_with_options(const std::vector<std::byte>& options) {
  std::vector<std::byte> b = hex("9cbb 1389 0000 0001 0000 0000 0000 0400 0000 0000");
  write_u8(b, TcpView::kDataOffset, static_cast<std::uint8_t>(((20 + options.size()) / 4) << 4));
  write_u8(b, TcpView::kFlags, tcpflag::kSyn);
  b.insert(b.end(), options.begin(), options.end());
  const auto len = static_cast<std::uint16_t>(b.size());
  write_u16(
      b, TcpView::kChecksum,
      checksum::compute(span(b), checksum::pseudo_header(kClient, kServer, ipproto::kTcp, len)));
  return b;
}

TEST(TcpView, ParsesLinuxSyn) {
  auto v = TcpView::parse(span(kSyn));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->src_port(), 40123);
  EXPECT_EQ(v->dst_port(), 5001);
  EXPECT_EQ(v->seq(), 2951591387u);
  EXPECT_EQ(v->ack(), 0u);
  EXPECT_EQ(v->header_size(), 40u);
  EXPECT_EQ(v->flags(), tcpflag::kSyn);
  EXPECT_TRUE(v->has(tcpflag::kSyn));
  EXPECT_FALSE(v->has(tcpflag::kAck));
  EXPECT_EQ(v->window(), 64240);
  EXPECT_EQ(v->checksum(), 0x02f7);
  EXPECT_EQ(v->urgent(), 0);
  EXPECT_EQ(v->options().size(), 20u);
  EXPECT_TRUE(v->payload().empty());
  EXPECT_TRUE(v->checksum_ok(kClient, kServer));
  EXPECT_FALSE(v->checksum_ok(kServer, Ipv4Addr(198, 18, 20, 3)));
}

TEST(TcpView, ParsesEveryFlag) {
  const std::pair<std::uint8_t, std::uint8_t> cases[] = {
      {tcpflag::kFin, 0x01}, {tcpflag::kSyn, 0x02}, {tcpflag::kRst, 0x04}, {tcpflag::kPsh, 0x08},
      {tcpflag::kAck, 0x10}, {tcpflag::kUrg, 0x20}, {tcpflag::kEce, 0x40}, {tcpflag::kCwr, 0x80},
  };
  for (auto [flag, bit] : cases) {
    auto b = kAck;
    b[TcpView::kFlags] = std::byte{bit};
    auto v = TcpView::parse(span(b));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->flags(), flag);
    EXPECT_TRUE(v->has(flag));
  }
  auto fin = TcpView::parse(span(kFin));
  EXPECT_TRUE(fin->has(tcpflag::kFin | tcpflag::kAck));
  EXPECT_FALSE(fin->has(tcpflag::kFin | tcpflag::kPsh));
}

TEST(TcpView, RejectsDataOffsetBelowFive) {
  for (std::uint8_t words = 0; words < 5; ++words) {
    auto b = kSyn;
    b[TcpView::kDataOffset] = std::byte{static_cast<std::uint8_t>(words << 4)};
    auto v = TcpView::parse(span(b));
    ASSERT_FALSE(v) << int{words};
    EXPECT_EQ(v.error(), Error::bad_header_length);
  }
}

TEST(TcpView, RejectsDataOffsetBeyondBuffer) {
  auto b = kAck;  // 32 bytes; a data offset of 9 words says 36
  b[TcpView::kDataOffset] = std::byte{0x90};
  auto v = TcpView::parse(span(b));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error(), Error::truncated);
}

TEST(TcpView, RejectsEveryTruncationOfTheHeader) {
  for (const auto& c : kCaptured) {
    const std::size_t hs = TcpView::parse(span(*c.bytes))->header_size();
    for (std::size_t n = 0; n < hs; ++n) {
      auto v = TcpView::parse(span(*c.bytes).first(n));
      ASSERT_FALSE(v) << c.name << " " << n;
      EXPECT_EQ(v.error(), Error::truncated) << c.name << " " << n;
    }
  }
}

TEST(TcpRepr, RejectsEveryTruncation) {
  // TCP has no length field: a cut in the payload passes the view, and the checksum (whose
  // pseudo-header carries the length) catches it.
  for (const auto& c : kCaptured) {
    for (std::size_t n = 0; n < c.bytes->size(); ++n) {
      auto r = TcpRepr::parse(span(*c.bytes).first(n), c.src, c.dst);
      ASSERT_FALSE(r) << c.name << " " << n;
    }
  }
}

TEST(TcpRepr, ParsesLinuxSyn) {
  auto r = TcpRepr::parse(span(kSyn), kClient, kServer);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src_port, 40123);
  EXPECT_EQ(r->dst_port, 5001);
  EXPECT_EQ(r->seq, 2951591387u);
  EXPECT_EQ(r->flags, tcpflag::kSyn);
  EXPECT_EQ(r->window, 64240);
  EXPECT_EQ(r->options.mss, 1460);
  EXPECT_TRUE(r->options.sack_permitted);
  EXPECT_EQ(r->options.timestamps, (TcpTimestamps{981026150, 0}));
  EXPECT_EQ(r->options.window_scale, 10);
  EXPECT_TRUE(r->options.sacks().empty());
  EXPECT_TRUE(r->payload.empty());
  EXPECT_EQ(r->size(), kSyn.size());
}

TEST(TcpRepr, ParsesLinuxSynAck) {
  auto r = TcpRepr::parse(span(kSynAck), kServer, kClient);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->seq, 3498965533u);
  EXPECT_EQ(r->ack, 2951591388u);
  EXPECT_EQ(r->flags, tcpflag::kSyn | tcpflag::kAck);
  EXPECT_EQ(r->window, 65160);
  EXPECT_EQ(r->options.mss, 1460);
  EXPECT_TRUE(r->options.sack_permitted);
  EXPECT_EQ(r->options.timestamps, (TcpTimestamps{2659520702, 981026150}));
  EXPECT_EQ(r->options.window_scale, 10);
}

TEST(TcpRepr, ParsesDataWithTimestamps) {
  auto r = TcpRepr::parse(span(kData), kClient, kServer);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->seq, 2951591388u);
  EXPECT_EQ(r->ack, 3498965534u);
  EXPECT_EQ(r->flags, tcpflag::kPsh | tcpflag::kAck);
  EXPECT_EQ(r->window, 63);
  EXPECT_EQ(r->options.mss, std::nullopt);
  EXPECT_EQ(r->options.window_scale, std::nullopt);
  EXPECT_FALSE(r->options.sack_permitted);
  EXPECT_EQ(r->options.timestamps, (TcpTimestamps{981026151, 2659520702}));
  EXPECT_EQ(text(r->payload), "hello phalanx\n");
}

TEST(TcpRepr, ParsesSackBlocks) {
  auto r = TcpRepr::parse(span(kSack), kServer, kClient);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ack, 0xafedb64eu);  // relative 115: the 548 bytes from 115 were dropped
  EXPECT_EQ(r->options.timestamps, (TcpTimestamps{2659520773, 981026201}));
  ASSERT_EQ(r->options.sacks().size(), 1u);
  EXPECT_EQ(r->options.sacks()[0], (TcpSackBlock{0xafedb872, 0xafedb93a}));  // 663:863
}

TEST(TcpRepr, ParsesFin) {
  auto r = TcpRepr::parse(span(kFin), kClient, kServer);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->flags, tcpflag::kFin | tcpflag::kAck);
  EXPECT_TRUE(r->payload.empty());
}

TEST(TcpRepr, RejectsBadChecksum) {
  for (const auto& c : kCaptured) {
    auto b = *c.bytes;
    b[4] ^= std::byte{0x80};
    auto r = TcpRepr::parse(span(b), c.src, c.dst);
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error(), Error::bad_checksum) << c.name;
    auto swapped = TcpRepr::parse(span(*c.bytes), c.src, Ipv4Addr(198, 18, 20, 7));
    ASSERT_FALSE(swapped) << c.name;
    EXPECT_EQ(swapped.error(), Error::bad_checksum) << c.name;
  }
}

TEST(TcpRepr, EmitRoundTripsCapturedBytes) {
  // Linux lays out its options exactly as emit() does, so every capture comes back byte for byte.
  for (const auto& c : kCaptured) {
    auto r = TcpRepr::parse(span(*c.bytes), c.src, c.dst);
    ASSERT_TRUE(r) << c.name;
    EXPECT_EQ(r->size(), c.bytes->size()) << c.name;
    std::vector<std::byte> out(r->size(), std::byte{0xaa});
    r->emit(out, c.src, c.dst);
    EXPECT_EQ(out, *c.bytes) << c.name;
    auto again = TcpRepr::parse(span(out), c.src, c.dst);
    ASSERT_TRUE(again) << c.name;
    EXPECT_EQ(*again, *r) << c.name;
  }
}

TEST(TcpRepr, EmitsSynFromScratch) {
  TcpRepr r;
  r.src_port = 40123;
  r.dst_port = 5001;
  r.seq = 2951591387u;
  r.flags = tcpflag::kSyn;
  r.window = 64240;
  r.options.mss = 1460;
  r.options.sack_permitted = true;
  r.options.timestamps = TcpTimestamps{981026150, 0};
  r.options.window_scale = 10;
  std::vector<std::byte> out(r.size());
  r.emit(out, kClient, kServer);
  EXPECT_EQ(out, kSyn);
}

TEST(TcpRepr, EmitsInPlacePayload) {
  auto buf = kData;
  auto r = *TcpRepr::parse(span(buf), kClient, kServer);
  std::fill_n(buf.begin(), 32, std::byte{0});
  r.emit(buf, kClient, kServer);
  EXPECT_EQ(buf, kData);
}

TEST(TcpRepr, SkipsUnknownOption) {
  // MSS, then kind 254 (experimental, RFC 6994) of length 6, then EOL padding.
  auto b = segment_with_options(hex("0204 05b4 fe06 f989 0102 0000"));
  auto r = TcpRepr::parse(span(b), kClient, kServer);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->options.mss, 1460);
  EXPECT_EQ(r->options, mss_only(1460));
}

TEST(TcpRepr, RejectsMalformedOptionInSegment) {
  auto b = segment_with_options(hex("0204 05b4 0201 0000"));
  auto r = TcpRepr::parse(span(b), kClient, kServer);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::bad_option);
}

TEST(TcpRepr, ChecksumFieldMayComputeToZero) {
  // TCP has no "no checksum" value: a computed 0x0000 is sent as is and verifies.
  std::vector<std::byte> payload(2);
  TcpRepr r;
  r.src_port = 1;
  r.dst_port = 2;
  r.flags = tcpflag::kAck;
  r.payload = span(payload);
  std::vector<std::byte> out(r.size());
  r.emit(out, kClient, kServer);
  write_u16(payload, 0, read_u16(out, TcpView::kChecksum));
  r.emit(out, kClient, kServer);
  EXPECT_EQ(read_u16(out, TcpView::kChecksum), 0);
  auto back = TcpRepr::parse(span(out), kClient, kServer);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
}

TEST(TcpReprDeathTest, OptionsBeyondFortyBytesAreACallerBug) {
  TcpRepr r;
  r.options.mss = 1460;
  r.options.timestamps = TcpTimestamps{1, 2};
  r.options.sack_count = 3;  // 4 + 12 + 28 = 44 > 40
  std::vector<std::byte> out(r.size());
  EXPECT_DEATH(r.emit(out, kClient, kServer), "");
}

TEST(TcpOptions, ParsesEolAndStops) {
  auto o = TcpOptions::parse(span(hex("0204 05b4 00ff ffff")));
  ASSERT_TRUE(o);
  EXPECT_EQ(*o, mss_only(1460));
}

TEST(TcpOptions, ParsesEmptyAndNopOnly) {
  EXPECT_EQ(*TcpOptions::parse({}), TcpOptions{});
  EXPECT_EQ(*TcpOptions::parse(span(hex("0101 0101"))), TcpOptions{});
}

TEST(TcpOptions, ParsesFourSackBlocks) {
  auto o =
      TcpOptions::parse(span(hex("0101 0522 0000 0010 0000 0020 0000 0030 0000 0040"
                                 "0000 0050 0000 0060 0000 0070 0000 0080")));
  ASSERT_TRUE(o);
  ASSERT_EQ(o->sacks().size(), 4u);
  EXPECT_EQ(o->sacks()[0], (TcpSackBlock{0x10, 0x20}));
  EXPECT_EQ(o->sacks()[3], (TcpSackBlock{0x70, 0x80}));
  EXPECT_EQ(o->size(), 36u);
}

TEST(TcpOptions, EmitsInLinuxOrder) {
  struct Case {
    const char* name;
    TcpOptions options;
    const char* bytes;
  };
  TcpOptions mss = mss_only(536);
  TcpOptions sackok;
  sackok.sack_permitted = true;
  TcpOptions ts;
  ts.timestamps = TcpTimestamps{1, 2};
  TcpOptions sackok_ts = ts;
  sackok_ts.sack_permitted = true;
  TcpOptions ws;
  ws.window_scale = 7;
  TcpOptions no_ts = mss_only(1460);
  no_ts.sack_permitted = true;
  no_ts.window_scale = 7;
  const Case cases[] = {
      {"none", {}, ""},
      {"mss", mss, "0204 0218"},
      {"sackok alone", sackok, "0101 0402"},
      {"ts alone", ts, "0101 080a 0000 0001 0000 0002"},
      {"sackok with ts", sackok_ts, "0402 080a 0000 0001 0000 0002"},
      {"ws", ws, "0103 0307"},
      {"mss sackok ws (no ts)", no_ts, "0204 05b4 0101 0402 0103 0307"},
  };
  for (const auto& c : cases) {
    std::vector<std::byte> out(c.options.size());
    c.options.emit(out);
    EXPECT_EQ(out, hex(c.bytes)) << c.name;
    EXPECT_EQ(*TcpOptions::parse(span(out)), c.options) << c.name;
  }
  TcpOptions sack;
  sack.sack_count = 2;
  sack.sack_blocks[0] = {1, 2};
  sack.sack_blocks[1] = {3, 4};
  std::vector<std::byte> out(sack.size());
  sack.emit(out);
  EXPECT_EQ(out, hex("0101 0512 0000 0001 0000 0002 0000 0003 0000 0004"));
}

TEST(TcpOptions, ComparesOnlyTheSackBlocksInUse) {
  TcpOptions a;
  TcpOptions b;
  b.sack_blocks[2] = {9, 9};  // not in use: sack_count is 0
  EXPECT_EQ(a, b);
}

TEST(TcpOptions, RejectsMalformedOptions) {
  const std::pair<const char*, const char*> cases[] = {
      {"length byte missing", "0101 0102"},
      {"length byte missing after nop", "0101 01fe"},
      {"mss length 0", "0200"},
      {"mss length 1", "0201 0000"},
      {"unknown kind length 0", "fe00 0000"},
      {"unknown kind length 1", "fe01 0000"},
      {"mss running past the end", "0204 05"},
      {"unknown running past the end", "fe08 0000 0000"},
      {"ts running past the end", "0101 080a 0000 0001 0000"},
      {"mss length 3", "0203 0501"},
      {"mss length 5", "0205 05b4 00"},
      {"ws length 2", "0302"},
      {"ws length 4", "0304 0700"},
      {"sackok length 3", "0403 00"},
      {"sackok length 4", "0404 0000"},
      {"ts length 8", "0808 0000 0001 0000"},
      {"ts length 12", "080c 0000 0001 0000 0002 0000"},
      {"sack with no block", "0502"},
      {"sack length 9", "0509 0000 0001 0000 0002 00"},
      {"sack length 11", "050b 0000 0001 0000 0002 0000 00"},
      {"sack with five blocks",
       "052a 0000 0001 0000 0002 0000 0003 0000 0004 0000 0005 0000 0006 0000 0007 0000 0008"
       "0000 0009 0000 000a"},
      {"good then bad", "0204 05b4 0103 0400 00"},
  };
  for (auto [name, bytes] : cases) {
    auto o = TcpOptions::parse(span(hex(bytes)));
    ASSERT_FALSE(o) << name;
    EXPECT_EQ(o.error(), Error::bad_option) << name;
  }
}

}  // namespace
}  // namespace phalanx::wire
