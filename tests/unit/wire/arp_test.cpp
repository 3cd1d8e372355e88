#include "wire/arp.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "testutil.hpp"

namespace phalanx::wire {
namespace {

using test::hex;
using test::span;

// All captured from real Linux traffic on a veth pair between two network namespaces (phw1-a
// 198.18.10.1/24 02:00:00:0a:00:01, phw1-b 198.18.10.2/24 02:00:00:0a:00:02) with `tcpdump -xx
// -i phw1-a`. Only the 28-byte ARP packet is kept (the Ethernet header is dropped).

// The kernel resolving 198.18.10.1 for `ping` on phw1-b: target MAC zero.
const auto kKernelRequest =
    hex("0001 0800 0604 0001 0200 000a 0002 c612 "
        "0a02 0000 0000 0000 c612 0a01");
// phw1-a's kernel answering it.
const auto kKernelReply =
    hex("0001 0800 0604 0002 0200 000a 0001 c612 "
        "0a01 0200 000a 0002 c612 0a02");
// `arping -c 1 -I phw1-b 198.18.10.1`: arping puts the broadcast address in the target MAC.
const auto kArpingRequest =
    hex("0001 0800 0604 0001 0200 000a 0002 c612 "
        "0a02 ffff ffff ffff c612 0a01");
// `arping -U -c 1 -I phw1-b 198.18.10.2`: unsolicited (gratuitous) request for its own address.
const auto kArpingGratuitousRequest =
    hex("0001 0800 0604 0001 0200 000a 0002 c612 "
        "0a02 ffff ffff ffff c612 0a02");
// `arping -A -c 1 -I phw1-b 198.18.10.2`: the gratuitous reply form.
const auto kArpingGratuitousReply =
    hex("0001 0800 0604 0002 0200 000a 0002 c612 "
        "0a02 0200 000a 0002 c612 0a02");

const MacAddr kMacA{{0x02, 0x00, 0x00, 0x0a, 0x00, 0x01}};
const MacAddr kMacB{{0x02, 0x00, 0x00, 0x0a, 0x00, 0x02}};
const Ipv4Addr kIpA(198, 18, 10, 1);
const Ipv4Addr kIpB(198, 18, 10, 2);

std::vector<std::byte> emit(const ArpRepr& r) {
  std::vector<std::byte> out(r.size());
  r.emit(out);
  return out;
}

std::vector<std::byte> prefix(const std::vector<std::byte>& v, std::size_t n) {
  return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)};
}

TEST(ArpView, ParsesKernelRequest) {
  auto v = ArpView::parse(span(kKernelRequest));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->operation(), ArpOperation::request);
  EXPECT_EQ(v->sender_mac(), kMacB);
  EXPECT_EQ(v->sender_ip(), kIpB);
  EXPECT_TRUE(v->target_mac().is_zero());
  EXPECT_EQ(v->target_ip(), kIpA);
  EXPECT_EQ(v->bytes().size(), 28u);
}

TEST(ArpView, ParsesKernelReply) {
  auto v = ArpView::parse(span(kKernelReply));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->operation(), ArpOperation::reply);
  EXPECT_EQ(v->sender_mac(), kMacA);
  EXPECT_EQ(v->sender_ip(), kIpA);
  EXPECT_EQ(v->target_mac(), kMacB);
  EXPECT_EQ(v->target_ip(), kIpB);
}

TEST(ArpView, IgnoresEthernetPadding) {
  // A real NIC pads the 42-byte frame to 60 bytes: 18 more bytes after the ARP packet (added
  // here; veth does not pad).
  auto padded = kKernelRequest;
  padded.resize(46, std::byte{0xaa});
  auto v = ArpView::parse(span(padded));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->bytes().size(), 28u);
  EXPECT_EQ(ArpRepr::parse(span(padded)).value(), ArpRepr::parse(span(kKernelRequest)).value());
}

TEST(ArpView, RejectsOtherHardwareAndProtocols) {
  struct Case {
    const char* name;
    std::size_t offset;
    std::vector<std::byte> value;
  };
  const Case cases[] = {
      {"IEEE 802 hardware", ArpView::kHardwareType, hex("0006")},
      {"IPv6 protocol", ArpView::kProtocolType, hex("86dd")},
      {"EUI-64 hardware length", ArpView::kHardwareLength, hex("08")},
      {"16-byte protocol length", ArpView::kProtocolLength, hex("10")},
      {"RARP request", ArpView::kOperation, hex("0003")},
      {"InARP request", ArpView::kOperation, hex("0008")},
      {"operation zero", ArpView::kOperation, hex("0000")},
  };
  for (const Case& c : cases) {
    auto b = kKernelRequest;
    std::copy(c.value.begin(), c.value.end(), b.begin() + static_cast<std::ptrdiff_t>(c.offset));
    auto v = ArpView::parse(span(b));
    ASSERT_FALSE(v) << c.name;
    EXPECT_EQ(v.error(), Error::unsupported) << c.name;
    EXPECT_EQ(ArpRepr::parse(span(b)).error(), Error::unsupported) << c.name;
    // Cut short after the fixed part, a foreign ARP is still "unsupported", not "truncated".
    EXPECT_EQ(ArpView::parse(span(b).first(ArpView::kFixedSize)).error(), Error::unsupported)
        << c.name;
  }
}

TEST(ArpView, RejectsEveryTruncation) {
  for (std::size_t n = 0; n < kKernelRequest.size(); ++n) {
    const auto cut = prefix(kKernelRequest, n);
    auto v = ArpView::parse(span(cut));
    ASSERT_FALSE(v) << n;
    EXPECT_EQ(v.error(), Error::truncated) << n;
    EXPECT_EQ(ArpRepr::parse(span(cut)).error(), Error::truncated) << n;
  }
}

TEST(ArpRepr, RequestHelperEmitsKernelRequest) {
  const auto r = ArpRepr::request(kMacB, kIpB, kIpA);
  EXPECT_FALSE(r.is_gratuitous());
  EXPECT_EQ(emit(r), kKernelRequest);
  EXPECT_EQ(ArpRepr::parse(span(kKernelRequest)).value(), r);
}

TEST(ArpRepr, ReplyHelpersEmitKernelReply) {
  const auto req = ArpRepr::parse(span(kKernelRequest)).value();
  EXPECT_EQ(emit(ArpRepr::reply_to(req, kMacA)), kKernelReply);
  EXPECT_EQ(emit(ArpRepr::reply(kMacA, kIpA, kMacB, kIpB)), kKernelReply);
  // arping's broadcast target MAC changes nothing in the answer.
  const auto arping = ArpRepr::parse(span(kArpingRequest)).value();
  EXPECT_EQ(emit(ArpRepr::reply_to(arping, kMacA)), kKernelReply);
}

TEST(ArpRepr, RecognisesGratuitousArp) {
  const auto request = ArpRepr::parse(span(kArpingGratuitousRequest)).value();
  EXPECT_TRUE(request.is_gratuitous());
  EXPECT_EQ(request.operation, ArpOperation::request);
  const auto reply = ArpRepr::parse(span(kArpingGratuitousReply)).value();
  EXPECT_TRUE(reply.is_gratuitous());
  EXPECT_EQ(reply.operation, ArpOperation::reply);
  EXPECT_EQ(reply.sender_ip, kIpB);
}

TEST(ArpRepr, GratuitousHelperIsAnRfc5227Announcement) {
  // Like arping -U's packet, except the target MAC: RFC 5227 §2.3 says zero, arping sends
  // broadcast.
  const auto g = ArpRepr::gratuitous(kMacB, kIpB);
  EXPECT_TRUE(g.is_gratuitous());
  auto expected = kArpingGratuitousRequest;
  MacAddr{}.write(expected, ArpView::kTargetMac);
  EXPECT_EQ(emit(g), expected);
  auto arping = ArpRepr::parse(span(kArpingGratuitousRequest)).value();
  arping.target_mac = MacAddr{};
  EXPECT_EQ(arping, g);
}

TEST(ArpRepr, RoundTripsByteForByte) {
  for (const auto* packet : {&kKernelRequest, &kKernelReply, &kArpingRequest,
                             &kArpingGratuitousRequest, &kArpingGratuitousReply}) {
    auto r = ArpRepr::parse(span(*packet));
    ASSERT_TRUE(r);
    const auto out = emit(*r);
    EXPECT_EQ(out, *packet);
    EXPECT_EQ(ArpRepr::parse(span(out)).value(), *r);
  }
}

}  // namespace
}  // namespace phalanx::wire
