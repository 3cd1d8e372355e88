#include "wire/udp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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
// (198.18.20.1 <-> 198.18.20.2, TX checksum offload off), python3 sockets on both ends.
// 198.18.20.1.40124 > 198.18.20.2.5002: UDP, length 17 ("ping phalanx udp\n")
const std::vector<std::byte> kPing =
    hex("9cbc 138a 0019 c9eb"
        "7069 6e67 2070 6861 6c61 6e78 2075 6470 0a");
// 198.18.20.2.5002 > 198.18.20.1.40124: UDP, length 22 ("pong:ping phalanx udp\n")
const std::vector<std::byte> kPong =
    hex("138a 9cbc 001e 209b"
        "706f 6e67 3a70 696e 6720 7068 616c 616e 7820 7564 700a");

std::string_view text(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

TEST(UdpView, ParsesCapturedDatagram) {
  auto v = UdpView::parse(span(kPing));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->src_port(), 40124);
  EXPECT_EQ(v->dst_port(), 5002);
  EXPECT_EQ(v->length(), 25);
  EXPECT_EQ(v->checksum(), 0xc9eb);
  EXPECT_TRUE(v->has_checksum());
  EXPECT_TRUE(v->checksum_ok(kClient, kServer));
  EXPECT_FALSE(v->checksum_ok(kServer, Ipv4Addr(198, 18, 20, 3)));
  EXPECT_EQ(text(v->payload()), "ping phalanx udp\n");
}

TEST(UdpView, PayloadStopsAtLengthField) {
  auto padded = kPing;
  padded.insert(padded.end(), 5, std::byte{0});  // e.g. Ethernet padding left in the buffer
  auto v = UdpView::parse(span(padded));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->bytes().size(), kPing.size());
  EXPECT_EQ(text(v->payload()), "ping phalanx udp\n");
  EXPECT_TRUE(v->checksum_ok(kClient, kServer));
}

TEST(UdpView, RejectsEveryTruncation) {
  for (const auto* pkt : {&kPing, &kPong}) {
    for (std::size_t n = 0; n < pkt->size(); ++n) {
      auto v = UdpView::parse(span(*pkt).first(n));
      ASSERT_FALSE(v) << n;
      EXPECT_EQ(v.error(), Error::truncated) << n;
      EXPECT_FALSE(UdpRepr::parse(span(*pkt).first(n), kClient, kServer)) << n;
    }
  }
}

TEST(UdpView, RejectsLengthBelowHeader) {
  for (std::uint16_t len = 0; len < UdpView::kHeaderSize; ++len) {
    auto b = kPing;
    write_u16(b, UdpView::kLength, len);
    auto v = UdpView::parse(span(b));
    ASSERT_FALSE(v) << len;
    EXPECT_EQ(v.error(), Error::bad_total_length) << len;
  }
}

TEST(UdpView, EmptyPayload) {
  // A header alone is a valid datagram (checksum 0: none).
  auto b = hex("0035 0035 0008 0000");
  auto v = UdpView::parse(span(b));
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->payload().empty());
  EXPECT_FALSE(v->has_checksum());
  EXPECT_TRUE(v->checksum_ok(kClient, kServer));
}

TEST(UdpRepr, ParsesCapturedDatagrams) {
  auto ping = UdpRepr::parse(span(kPing), kClient, kServer);
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->src_port, 40124);
  EXPECT_EQ(ping->dst_port, 5002);
  EXPECT_EQ(text(ping->payload), "ping phalanx udp\n");
  EXPECT_EQ(ping->size(), kPing.size());

  auto pong = UdpRepr::parse(span(kPong), kServer, kClient);
  ASSERT_TRUE(pong);
  EXPECT_EQ(text(pong->payload), "pong:ping phalanx udp\n");
}

TEST(UdpRepr, RejectsBadChecksum) {
  auto b = kPing;
  b.back() ^= std::byte{0x01};
  auto r = UdpRepr::parse(span(b), kClient, kServer);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::bad_checksum);
  // Right bytes, wrong pseudo-header: delivered to the wrong address.
  auto wrong = UdpRepr::parse(span(kPing), kClient, Ipv4Addr(198, 18, 20, 9));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), Error::bad_checksum);
}

TEST(UdpRepr, AcceptsZeroChecksumAsNone) {
  auto b = kPing;
  write_u16(b, UdpView::kChecksum, 0);
  auto r = UdpRepr::parse(span(b), kClient, kServer);
  ASSERT_TRUE(r);
  EXPECT_EQ(text(r->payload), "ping phalanx udp\n");
}

TEST(UdpRepr, EmitRoundTripsCapturedBytes) {
  for (const auto& [pkt, src, dst] :
       {std::tuple{&kPing, kClient, kServer}, std::tuple{&kPong, kServer, kClient}}) {
    auto r = UdpRepr::parse(span(*pkt), src, dst);
    ASSERT_TRUE(r);
    std::vector<std::byte> out(r->size());
    r->emit(out, src, dst);
    EXPECT_EQ(out, *pkt);
    auto again = UdpRepr::parse(span(out), src, dst);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *r);
  }
}

TEST(UdpRepr, EmitsFromScratch) {
  const auto payload = hex("7069 6e67 2070 6861 6c61 6e78 2075 6470 0a");
  UdpRepr r{40124, 5002, span(payload)};
  std::vector<std::byte> out(r.size());
  r.emit(out, kClient, kServer);
  EXPECT_EQ(out, kPing);
}

TEST(UdpRepr, EmitsInPlacePayload) {
  std::vector<std::byte> out = kPing;
  std::fill_n(out.begin(), UdpView::kHeaderSize, std::byte{0xaa});
  UdpRepr r{40124, 5002, Bytes(out).subspan(UdpView::kHeaderSize)};
  r.emit(out, kClient, kServer);
  EXPECT_EQ(out, kPing);
}

TEST(UdpRepr, ComputedZeroChecksumIsSentAsAllOnes) {
  // Find a two-byte payload whose datagram sums to 0xffff: with payload 0000 the checksum field is
  // ~S, and a payload word of ~S brings the sum to 0xffff, so the computed checksum is 0 (RFC 768).
  std::vector<std::byte> payload(2);
  UdpRepr r{1701, 1701, span(payload)};
  std::vector<std::byte> out(r.size());
  r.emit(out, kClient, kServer);
  const std::uint16_t c = read_u16(out, UdpView::kChecksum);
  write_u16(payload, 0, c);
  r.emit(out, kClient, kServer);
  EXPECT_EQ(read_u16(out, UdpView::kChecksum), 0xffff);
  auto back = UdpRepr::parse(span(out), kClient, kServer);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
}

}  // namespace
}  // namespace phalanx::wire
