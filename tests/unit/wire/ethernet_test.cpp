#include "wire/ethernet.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "testutil.hpp"

namespace phalanx::wire {
namespace {

using test::hex;
using test::span;

// Captured from real Linux traffic: a veth pair between two network namespaces (phw1-a
// 198.18.10.1/24 02:00:00:0a:00:01, phw1-b 198.18.10.2/24 02:00:00:0a:00:02), `tcpdump -xx -i
// phw1-a` while phw1-b ran `ping -c 1 198.18.10.1`. First the kernel's ARP request, broadcast.
const auto kArpRequestFrame =
    hex("ffff ffff ffff 0200 000a 0002 0806 0001 "
        "0800 0604 0001 0200 000a 0002 c612 0a02 "
        "0000 0000 0000 c612 0a01");

// Same ping, the echo request (98 bytes).
const auto kEchoRequestFrame =
    hex("0200 000a 0001 0200 000a 0002 0800 4500 "
        "0054 f2ad 4000 4001 a7d3 c612 0a02 c612 "
        "0a01 0800 5340 1458 0001 e837 086b 0000 "
        "0000 d5f0 0b00 0000 0000 1011 1213 1415 "
        "1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 "
        "2627 2829 2a2b 2c2d 2e2f 3031 3233 3435 "
        "3637");

// An 802.1Q-tagged echo request, VID 10, PCP 0. The capture kernel has no 8021q module, so the
// tag was pushed by the kernel itself on phw1-b's egress (a tc clsact BPF program calling
// bpf_skb_vlan_push(0x8100, 10)) and captured on phw1-a, the parent device.
const auto kVlanFrame =
    hex("0200 000a 0001 0200 000a 0002 8100 000a "
        "0800 4500 0054 f81c 4000 4001 a264 c612 "
        "0a02 c612 0a01 0800 4995 15ee 0001 fe37 "
        "086b 0000 0000 d305 0000 0000 0000 1011 "
        "1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 "
        "2223 2425 2627 2829 2a2b 2c2d 2e2f 3031 "
        "3233 3435 3637");

const MacAddr kMacA{{0x02, 0x00, 0x00, 0x0a, 0x00, 0x01}};
const MacAddr kMacB{{0x02, 0x00, 0x00, 0x0a, 0x00, 0x02}};

std::vector<std::byte> emit(const EthernetRepr& r) {
  std::vector<std::byte> out(r.size());
  r.emit(out);
  return out;
}

std::vector<std::byte> prefix(const std::vector<std::byte>& v, std::size_t n) {
  return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)};
}

TEST(EthernetView, ParsesBroadcastArp) {
  auto v = EthernetView::parse(span(kArpRequestFrame));
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->dst().is_broadcast());
  EXPECT_EQ(v->src(), kMacB);
  EXPECT_FALSE(v->has_vlan());
  EXPECT_FALSE(v->vlan_tci());
  EXPECT_EQ(v->ethertype(), ethertype::kArp);
  EXPECT_EQ(v->header_size(), 14u);
  EXPECT_EQ(v->payload().size(), 28u);
  EXPECT_EQ(v->bytes().size(), kArpRequestFrame.size());
}

TEST(EthernetView, ParsesUnicastIpv4) {
  auto v = EthernetView::parse(span(kEchoRequestFrame));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->dst(), kMacA);
  EXPECT_EQ(v->src(), kMacB);
  EXPECT_EQ(v->ethertype(), ethertype::kIpv4);
  ASSERT_EQ(v->payload().size(), 84u);
  EXPECT_EQ(v->payload()[0], std::byte{0x45});
}

TEST(EthernetView, Parses8021QTag) {
  auto v = EthernetView::parse(span(kVlanFrame));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->dst(), kMacA);
  EXPECT_EQ(v->src(), kMacB);
  EXPECT_TRUE(v->has_vlan());
  ASSERT_TRUE(v->vlan_tci());
  EXPECT_EQ(*v->vlan_tci() & 0x0fff, 10);  // VID
  EXPECT_EQ(*v->vlan_tci() >> 13, 0);      // PCP
  EXPECT_EQ(v->ethertype(), ethertype::kIpv4);
  EXPECT_EQ(v->header_size(), 18u);
  ASSERT_EQ(v->payload().size(), 84u);
  EXPECT_EQ(v->payload()[0], std::byte{0x45});
}

TEST(EthernetView, RejectsStackedTag) {
  // The captured tagged frame with a second 802.1Q tag (VID 20) inserted after the first:
  // Q-in-Q is not supported.
  auto stacked = kVlanFrame;
  const auto inner = hex("8100 0014");
  stacked.insert(stacked.begin() + 16, inner.begin(), inner.end());
  auto v = EthernetView::parse(span(stacked));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error(), Error::malformed);
  EXPECT_EQ(EthernetRepr::parse(span(stacked)).error(), Error::malformed);
}

TEST(EthernetView, RejectsEveryTruncatedHeader) {
  for (const auto* frame : {&kArpRequestFrame, &kVlanFrame}) {
    const std::size_t header = EthernetView::parse(span(*frame))->header_size();
    for (std::size_t n = 0; n < header; ++n) {
      const auto cut = prefix(*frame, n);
      auto v = EthernetView::parse(span(cut));
      ASSERT_FALSE(v) << n;
      EXPECT_EQ(v.error(), Error::truncated) << n;
      EXPECT_FALSE(EthernetRepr::parse(span(cut))) << n;
    }
    // A frame cut anywhere after the header still parses; its payload is the next layer's
    // problem.
    for (std::size_t n = header; n < frame->size(); ++n) {
      const auto cut = prefix(*frame, n);
      auto v = EthernetView::parse(span(cut));
      ASSERT_TRUE(v) << n;
      EXPECT_EQ(v->payload().size(), n - header) << n;
    }
  }
}

TEST(EthernetRepr, ParsesFields) {
  auto r = EthernetRepr::parse(span(kVlanFrame));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (EthernetRepr{kMacA, kMacB, std::uint16_t{10}, ethertype::kIpv4}));
  auto u = EthernetRepr::parse(span(kArpRequestFrame));
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, (EthernetRepr{MacAddr::broadcast(), kMacB, std::nullopt, ethertype::kArp}));
}

TEST(EthernetRepr, EmitsCapturedHeaders) {
  EXPECT_EQ(emit(EthernetRepr{MacAddr::broadcast(), kMacB, std::nullopt, ethertype::kArp}),
            prefix(kArpRequestFrame, 14));
  EXPECT_EQ(emit(EthernetRepr{kMacA, kMacB, std::uint16_t{10}, ethertype::kIpv4}),
            prefix(kVlanFrame, 18));
}

TEST(EthernetRepr, RoundTripsByteForByte) {
  for (const auto* frame : {&kArpRequestFrame, &kEchoRequestFrame, &kVlanFrame}) {
    auto r = EthernetRepr::parse(span(*frame));
    ASSERT_TRUE(r);
    const auto out = emit(*r);
    EXPECT_EQ(out, prefix(*frame, r->size()));
    EXPECT_EQ(EthernetRepr::parse(span(out)).value(), *r);
  }
}

}  // namespace
}  // namespace phalanx::wire
