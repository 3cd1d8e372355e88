#include "wire/icmp.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "testutil.hpp"
#include "wire/ipv4.hpp"

namespace phalanx::wire {
namespace {

using test::hex;
using test::span;

// All captured from real Linux traffic on a veth pair between two network namespaces (phw1-a
// 198.18.10.1/24, phw1-b 198.18.10.2/24) with `tcpdump -xx -i phw1-a`. Only the ICMP message
// is kept (Ethernet and IPv4 headers dropped).

// `ping -c 1 198.18.10.1` from phw1-b: identifier 0x1458, sequence 1, 56 bytes of data.
const auto kEchoRequest =
    hex("0800 5340 1458 0001 e837 086b 0000 0000 "
        "d5f0 0b00 0000 0000 1011 1213 1415 1617 "
        "1819 1a1b 1c1d 1e1f 2021 2223 2425 2627 "
        "2829 2a2b 2c2d 2e2f 3031 3233 3435 3637");
// phw1-a's kernel answering it.
const auto kEchoReply =
    hex("0000 5b40 1458 0001 e837 086b 0000 0000 "
        "d5f0 0b00 0000 0000 1011 1213 1415 1617 "
        "1819 1a1b 1c1d 1e1f 2021 2223 2425 2627 "
        "2829 2a2b 2c2d 2e2f 3031 3233 3435 3637");
// `ping -c 1 -s 0 198.18.10.1`: no data at all, and its reply.
const auto kEmptyEchoRequest = hex("0800 e26a 1594 0001");
const auto kEmptyEchoReply = hex("0000 ea6a 1594 0001");
// `echo hi > /dev/udp/198.18.10.1/9` from phw1-b: phw1-a's port unreachable, quoting the whole
// 31-byte UDP datagram.
const auto kPortUnreachable =
    hex("0303 45e0 0000 0000 4500 001f 618d 4000 "
        "4011 3919 c612 0a02 c612 0a01 a45a 0009 "
        "000b a044 6869 0a");
// `ping -c 1 -t 1 198.18.12.5` from phw1-b, whose route for 198.18.12.0/24 goes through phw1-a
// (forwarding on): phw1-a's time exceeded in transit, quoting the whole echo request.
const auto kTimeExceeded =
    hex("0b00 f4ff 0000 0000 4500 0054 5cdf 4000 "
        "0101 7a9e c612 0a02 c612 0c05 0800 7ecd "
        "1542 0001 f937 086b 0000 0000 9579 0e00 "
        "0000 0000 1011 1213 1415 1617 1819 1a1b "
        "1c1d 1e1f 2021 2223 2425 2627 2829 2a2b "
        "2c2d 2e2f 3031 3233 3435 3637");

std::vector<std::byte> emit(const IcmpEchoRepr& r) {
  std::vector<std::byte> out(r.size());
  r.emit(out);
  return out;
}

std::vector<std::byte> prefix(const std::vector<std::byte>& v, std::size_t n) {
  return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)};
}

TEST(IcmpView, ParsesEchoRequest) {
  auto v = IcmpView::parse(span(kEchoRequest));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type(), icmp::kEchoRequest);
  EXPECT_EQ(v->code(), 0);
  EXPECT_EQ(v->checksum(), 0x5340);
  EXPECT_TRUE(v->checksum_ok());
  EXPECT_EQ(v->rest(), 0x14580001u);
  EXPECT_EQ(v->echo_identifier(), 0x1458);
  EXPECT_EQ(v->echo_sequence(), 1);
  EXPECT_EQ(v->payload().size(), 56u);
  EXPECT_EQ(v->bytes().size(), 64u);
  EXPECT_FALSE(icmp::is_error(v->type()));
}

TEST(IcmpView, ParsesPortUnreachable) {
  auto v = IcmpView::parse(span(kPortUnreachable));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type(), icmp::kDestUnreachable);
  EXPECT_EQ(v->code(), icmp::kPortUnreachable);
  EXPECT_TRUE(v->checksum_ok());
  EXPECT_EQ(v->rest(), 0u);
  EXPECT_TRUE(icmp::is_error(v->type()));
  // The quoted datagram is the UDP packet that provoked it.
  auto quoted = Ipv4View::parse(v->payload());
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->protocol(), ipproto::kUdp);
  EXPECT_EQ(quoted->src(), Ipv4Addr(198, 18, 10, 2));
  EXPECT_EQ(quoted->dst(), Ipv4Addr(198, 18, 10, 1));
  EXPECT_EQ(read_u16(quoted->payload(), 2), 9);  // the closed destination port
  EXPECT_EQ(IcmpEchoRepr::parse(span(kPortUnreachable)).error(), Error::unsupported);
}

TEST(IcmpView, ParsesTimeExceeded) {
  auto v = IcmpView::parse(span(kTimeExceeded));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type(), icmp::kTimeExceeded);
  EXPECT_EQ(v->code(), icmp::kTtlExceeded);
  EXPECT_TRUE(v->checksum_ok());
  EXPECT_TRUE(icmp::is_error(v->type()));
  auto quoted = Ipv4View::parse(v->payload());
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->ttl(), 1);
  EXPECT_EQ(quoted->dst(), Ipv4Addr(198, 18, 12, 5));
  EXPECT_EQ(IcmpEchoRepr::parse(span(kTimeExceeded)).error(), Error::unsupported);
}

TEST(IcmpView, ReadsNextHopMtu) {
  // RFC 1191 fragmentation needed with MTU 1400 (built here: no router in the capture setup).
  auto b = kPortUnreachable;
  b[IcmpView::kCode] = std::byte{icmp::kFragmentationNeeded};
  write_u16(b, IcmpView::kRest + 2, 1400);
  auto v = IcmpView::parse(span(b));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->next_hop_mtu(), 1400);
  EXPECT_FALSE(v->checksum_ok());  // fields changed without fixing the checksum
}

TEST(IcmpView, RejectsEveryTruncatedHeader) {
  for (std::size_t n = 0; n < IcmpView::kHeaderSize; ++n) {
    const auto cut = prefix(kEchoRequest, n);
    auto v = IcmpView::parse(span(cut));
    ASSERT_FALSE(v) << n;
    EXPECT_EQ(v.error(), Error::truncated) << n;
  }
}

TEST(IcmpEchoRepr, ParsesRequestAndReply) {
  auto req = IcmpEchoRepr::parse(span(kEchoRequest));
  ASSERT_TRUE(req);
  EXPECT_EQ(req->kind, IcmpEchoRepr::Kind::request);
  EXPECT_EQ(req->identifier, 0x1458);
  EXPECT_EQ(req->sequence, 1);
  EXPECT_EQ(req->payload.size(), 56u);
  EXPECT_EQ(req->payload.data(), span(kEchoRequest).subspan(8).data());  // a view, not a copy
  auto rep = IcmpEchoRepr::parse(span(kEchoReply));
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->kind, IcmpEchoRepr::Kind::reply);
  EXPECT_EQ(*rep, req->reply());
}

TEST(IcmpEchoRepr, ReplyEmitsWhatLinuxAnswered) {
  EXPECT_EQ(emit(IcmpEchoRepr::parse(span(kEchoRequest))->reply()), kEchoReply);
  EXPECT_EQ(emit(IcmpEchoRepr::parse(span(kEmptyEchoRequest))->reply()), kEmptyEchoReply);
}

TEST(IcmpEchoRepr, EmitsReplyInPlace) {
  // The stack answers in the request's own buffer: the payload span points into it.
  auto buf = kEchoRequest;
  const auto req = IcmpEchoRepr::parse(span(buf)).value();
  req.reply().emit(buf);
  EXPECT_EQ(buf, kEchoReply);
}

TEST(IcmpEchoRepr, EmitsFromFields) {
  const IcmpEchoRepr r{IcmpEchoRepr::Kind::request, 0x1594, 1, {}};
  EXPECT_EQ(emit(r), kEmptyEchoRequest);
}

TEST(IcmpEchoRepr, RejectsBadChecksum) {
  auto b = kEchoRequest;
  b[20] = std::byte{0xff};  // one byte of data changed in flight
  auto v = IcmpView::parse(span(b));
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->checksum_ok());
  EXPECT_EQ(IcmpEchoRepr::parse(span(b)).error(), Error::bad_checksum);
}

TEST(IcmpEchoRepr, RejectsNonZeroCode) {
  auto b = kEchoRequest;
  b[IcmpView::kCode] = std::byte{1};
  write_u16(b, IcmpView::kChecksum, 0);
  write_u16(b, IcmpView::kChecksum, checksum::compute(span(b)));
  EXPECT_EQ(IcmpEchoRepr::parse(span(b)).error(), Error::malformed);
}

TEST(IcmpEchoRepr, RejectsEveryTruncation) {
  // ICMP has no length field: a message cut after its header is caught by the checksum.
  for (std::size_t n = 0; n < kEchoRequest.size(); ++n) {
    const auto cut = prefix(kEchoRequest, n);
    auto r = IcmpEchoRepr::parse(span(cut));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error(), n < IcmpView::kHeaderSize ? Error::truncated : Error::bad_checksum) << n;
  }
}

TEST(IcmpEchoRepr, RoundTripsByteForByte) {
  for (const auto* message : {&kEchoRequest, &kEchoReply, &kEmptyEchoRequest, &kEmptyEchoReply}) {
    auto r = IcmpEchoRepr::parse(span(*message));
    ASSERT_TRUE(r);
    const auto out = emit(*r);
    EXPECT_EQ(out, *message);
    EXPECT_EQ(IcmpEchoRepr::parse(span(out)).value(), *r);
  }
}

TEST(IcmpEchoRepr, EmptyReplyWithZeroFieldsGetsChecksumFfff) {
  // All-zero message: the only one whose checksum is 0xffff (see checksum_test).
  const IcmpEchoRepr r{IcmpEchoRepr::Kind::reply, 0, 0, {}};
  const auto out = emit(r);
  EXPECT_EQ(out, hex("0000 ffff 0000 0000"));
  EXPECT_EQ(IcmpEchoRepr::parse(span(out)).value(), r);
}

}  // namespace
}  // namespace phalanx::wire
