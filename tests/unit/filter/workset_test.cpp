// The workset hash (src/filter/workset.hpp): the fold, the key per protocol, and the symmetry
// of the forward key. Expected xor worksets are worked out by hand in the comments, never by
// calling the function under test.
#include "filter/workset.hpp"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>
#include <vector>

#include "filter/frame_builder.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"

namespace phalanx::filter {
namespace {

using test::FrameBuilder;
using wire::Ipv4Addr;

constexpr Ipv4Addr kCluster{198, 18, 0, 100};   // 0xc6120064
constexpr Ipv4Addr kClientA{198, 51, 100, 7};   // 0xc6336407
constexpr Ipv4Addr kClientB{203, 0, 113, 9};    // 0xcb007109
constexpr Ipv4Addr kLac{192, 0, 2, 1};          // 0xc0000201
constexpr Ipv4Addr kInside{10, 0, 0, 5};        // 0x0a000005
constexpr Ipv4Addr kOutside{93, 184, 216, 34};  // 0x5db8d822

// The key of a built frame, through the Ethernet and IPv4 views.
KeyExtraction key_of(const std::vector<std::byte>& frame, bool forwarded) {
  auto eth = wire::EthernetView::parse(test::bytes(frame));
  auto ip = wire::Ipv4View::parse(eth->payload());
  return flow_key(*ip, forwarded);
}

TEST(Fold10, XorsTheTenBitSlices) {
  EXPECT_EQ(fold10(0), 0);
  EXPECT_EQ(fold10(0x3ff), 0x3ff);                        // slice 0 only
  EXPECT_EQ(fold10(0x3ffu << 10), 0x3ff);                 // slice 1 only
  EXPECT_EQ(fold10(0x3ffu << 20), 0x3ff);                 // slice 2 only
  EXPECT_EQ(fold10(0xc0000000u), 0x3);                    // the two top bits land in bits 0-1
  EXPECT_EQ(fold10(0x00100401u), 0x001 ^ 0x001 ^ 0x001);  // bit 0, bit 10, bit 20
  EXPECT_EQ(fold10(0xffffffffu), 0x3fc);                  // 0x3ff ^ 0x3ff ^ 0x3ff ^ 0x3 = 0x3fc
}

struct XorCase {
  std::string description;
  std::vector<std::byte> frame;
  bool forwarded;
  FlowKey key;
  std::uint16_t workset;  // by hand: key's slices 0-9, 10-19, 20-29, 30-31 XORed
};

std::vector<XorCase> xor_cases() {
  return {
      // 0xc6336407 ^ 40000 (0x9c40) = 0xc633f847; slices 0x047 0x0fe 0x063 0x3
      // 0x047 ^ 0x0fe = 0x0b9; ^ 0x063 = 0x0da; ^ 0x3 = 0x0d9 = 217
      {"tcp: source ip and port", FrameBuilder::tcp(kClientA, 40000, kCluster, 80).build(), false,
       FlowKey{0xc6336407u, 40000, 0}, 217},
      // the destination port does not count: same key as above
      {"tcp: destination port ignored", FrameBuilder::tcp(kClientA, 40000, kCluster, 443).build(),
       false, FlowKey{0xc6336407u, 40000, 0}, 217},
      // UDP hashes like TCP: same source, same workset
      {"udp: source ip and port", FrameBuilder::udp(kClientA, 40000, kCluster, 53).build(), false,
       FlowKey{0xc6336407u, 40000, 0}, 217},
      // 0xcb007109 ^ 5353 (0x14e9) = 0xcb0065e0; slices 0x1e0 0x019 0x0b0 0x3
      // 0x1e0 ^ 0x019 = 0x1f9; ^ 0x0b0 = 0x149; ^ 0x3 = 0x14a = 330
      {"udp: another client", FrameBuilder::udp(kClientB, 5353, kCluster, 5353).build(), false,
       FlowKey{0xcb007109u, 5353, 0}, 330},
      // 0xc0000201 ^ 1701 (0x06a5) ^ 0x12345678 = 0xd23452dc; slices 0x2dc 0x114 0x123 0x3
      // 0x2dc ^ 0x114 = 0x3c8; ^ 0x123 = 0x2eb; ^ 0x3 = 0x2e8 = 744
      {"l2tp data: + tunnel and session",
       FrameBuilder::l2tp(kLac, 1701, kCluster, 1701, 0x1234, 0x5678).build(), false,
       FlowKey{0xc0000201u, 1701, 0x12345678u}, 744},
      // 0xc0000201 ^ 0x06a5 = 0xc00004a4; slices 0x0a4 0x001 0x000 0x3
      // 0x0a4 ^ 0x001 = 0x0a5; ^ 0x3 = 0x0a6 = 166
      {"l2tp control SCCRQ: tunnel 0 session 0",
       FrameBuilder::l2tp(kLac, 1701, kCluster, 1701, 0, 0, true).build(), false,
       FlowKey{0xc0000201u, 1701, 0}, 166},
      // to port 1701 from an ephemeral port: 0xc0000201 ^ 50000 (0xc350) ^ 0x00aa0001 = 0xc0aac150
      // slices 0x150 0x2b0 0x00a 0x3: 0x150 ^ 0x2b0 = 0x3e0; ^ 0x00a = 0x3ea; ^ 0x3 = 0x3e9 = 1001
      {"l2tp: client port ephemeral, server 1701",
       FrameBuilder::l2tp(kLac, 50000, kCluster, 1701, 0x00aa, 0x0001).build(), false,
       FlowKey{0xc0000201u, 50000, 0x00aa0001u}, 1001},
      // 0xc6336407 ^ 0xc6120064 = 0x00216463; slices 0x063 0x059 0x002 0x0
      // 0x063 ^ 0x059 = 0x03a; ^ 0x002 = 0x038 = 56
      {"icmp: source and destination ip", FrameBuilder::icmp_echo(kClientA, kCluster).build(),
       false, FlowKey{0x00216463u, 0, 0}, 56},
      {"gre (47): same as any other protocol", FrameBuilder::ip(kClientA, kCluster, 47).build(),
       false, FlowKey{0x00216463u, 0, 0}, 56},
      {"icmp non-first fragment: addresses suffice",
       FrameBuilder::icmp_echo(kClientA, kCluster).fragment(false, 1480).build(), false,
       FlowKey{0x00216463u, 0, 0}, 56},
      {"vlan-tagged tcp: the tag changes nothing",
       FrameBuilder::tcp(kClientA, 40000, kCluster, 80).vlan(0x0064).build(), false,
       FlowKey{0xc6336407u, 40000, 0}, 217},
      // forwarded: (0x0a000005 ^ 0x5db8d822) ^ (33000 ^ 443 = 0x80e8 ^ 0x01bb = 0x8153)
      // = 0x57b8d827 ^ 0x8153 = 0x57b85974; slices 0x174 0x216 0x17b 0x1
      // 0x174 ^ 0x216 = 0x362; ^ 0x17b = 0x219; ^ 0x1 = 0x218 = 536
      {"forwarded tcp", FrameBuilder::tcp(kInside, 33000, kOutside, 443).build(), true,
       FlowKey{0x57b8d827u, 0x8153, 0}, 536},
      {"forwarded tcp, reply direction", FrameBuilder::tcp(kOutside, 443, kInside, 33000).build(),
       true, FlowKey{0x57b8d827u, 0x8153, 0}, 536},
      // 0x57b8d827; slices 0x027 0x236 0x17b 0x1: 0x027 ^ 0x236 = 0x211; ^ 0x17b = 0x36a;
      // ^ 0x1 = 0x36b = 875
      {"forwarded icmp", FrameBuilder::icmp_echo(kInside, kOutside).build(), true,
       FlowKey{0x57b8d827u, 0, 0}, 875},
      // forwarded L2TP is plain UDP: 1701 ^ 1701 = 0, the IDs are left out -> same as icmp
      {"forwarded l2tp: ids left out",
       FrameBuilder::l2tp(kInside, 1701, kOutside, 1701, 7, 9).build(), true,
       FlowKey{0x57b8d827u, 0, 0}, 875},
  };
}

TEST(WorksetHash, XorTable) {
  for (const XorCase& c : xor_cases()) {
    SCOPED_TRACE(c.description);
    const KeyExtraction k = key_of(c.frame, c.forwarded);
    ASSERT_EQ(k.status, KeyStatus::ok);
    EXPECT_EQ(k.key, c.key);
    EXPECT_EQ(hash_xor(k.key).value(), c.workset);
    EXPECT_EQ(workset_of(k.key, HashKind::xor_fold, 0).value(), c.workset);
  }
}

TEST(WorksetHash, TcpAndUdpFragmentsNeedReassembly) {
  const auto first = FrameBuilder::tcp(kClientA, 40000, kCluster, 80).fragment(true, 0).build();
  const auto middle = FrameBuilder::udp(kClientA, 40000, kCluster, 53).fragment(true, 8).build();
  const auto last = FrameBuilder::udp(kClientA, 40000, kCluster, 53).fragment(false, 16).build();
  EXPECT_EQ(key_of(first, false).status, KeyStatus::fragment);
  EXPECT_EQ(key_of(middle, false).status, KeyStatus::fragment);
  EXPECT_EQ(key_of(last, true).status, KeyStatus::fragment);
}

TEST(WorksetHash, BadL4IsMalformed) {
  // TCP with only 3 bytes of header: no room for both ports.
  auto tcp3 = FrameBuilder::ip(kClientA, kCluster, wire::ipproto::kTcp, 3).build();
  EXPECT_EQ(key_of(tcp3, false).status, KeyStatus::malformed);
  EXPECT_EQ(key_of(tcp3, false).error, wire::Error::truncated);
  // UDP to 1701 with 2 bytes of L2TP header.
  auto l2tp2 = FrameBuilder::udp(kLac, 1701, kCluster, 1701, 2).build();
  EXPECT_EQ(key_of(l2tp2, false).status, KeyStatus::malformed);
  EXPECT_EQ(key_of(l2tp2, false).error, wire::Error::bad_version);  // 0x5a5a: version 10
  // ...but forwarded, UDP 1701 is only UDP: no L2TP parse.
  EXPECT_EQ(key_of(l2tp2, true).status, KeyStatus::ok);
}

TEST(WorksetHash, MixIsSeededAndInRange) {
  test::SplitMix64 rng(7);
  std::set<std::uint16_t> seen;
  int moved = 0;
  for (int i = 0; i < 4096; ++i) {
    const FlowKey k{rng.u32(), rng.u16(), 0};
    const WorksetId a = hash_mix(k, 1);
    EXPECT_EQ(a, hash_mix(k, 1));  // a pure function
    EXPECT_LT(a.value(), kWorksetCount);
    seen.insert(a.value());
    moved += a != hash_mix(k, 2) ? 1 : 0;
  }
  EXPECT_GT(seen.size(), 950u);  // 4096 keys into 1024 bins leave ~19 empty
  EXPECT_GT(moved, 4000);        // another seed, another assignment
}

TEST(WorksetHash, MixSeesTheL2tpIds) {
  const FlowKey a{0xc0000201u, 1701, 0x00010001u};
  const FlowKey b{0xc0000201u, 1701, 0x00010002u};
  EXPECT_NE(hash_mix(a, kDefaultMixSeed), hash_mix(b, kDefaultMixSeed));
  EXPECT_NE(hash_xor(a), hash_xor(b));
}

// Both directions of a forwarded flow land in the same workset, for every protocol and both
// hashes. L2TP peers put each other's tunnel and session IDs in their headers, so the two
// directions carry different IDs here, as they do on the wire.
TEST(WorksetHash, ForwardKeyIsSymmetric) {
  test::SplitMix64 rng(0x5eed);
  for (HashKind kind : {HashKind::xor_fold, HashKind::mix}) {
    for (int i = 0; i < 2000; ++i) {
      const Ipv4Addr a{rng.u32()};
      const Ipv4Addr b{rng.u32()};
      const std::uint16_t pa = rng.u16();
      const std::uint16_t pb = rng.u16();
      const std::uint64_t seed = rng.next();
      const std::array<std::pair<std::vector<std::byte>, std::vector<std::byte>>, 6> pairs = {{
          {FrameBuilder::tcp(a, pa, b, pb).build(), FrameBuilder::tcp(b, pb, a, pa).build()},
          {FrameBuilder::udp(a, pa, b, pb).build(), FrameBuilder::udp(b, pb, a, pa).build()},
          {FrameBuilder::l2tp(a, 1701, b, 1701, rng.u16(), rng.u16()).build(),
           FrameBuilder::l2tp(b, 1701, a, 1701, rng.u16(), rng.u16()).build()},
          {FrameBuilder::l2tp(a, pa, b, 1701, rng.u16(), rng.u16(), true).build(),
           FrameBuilder::l2tp(b, 1701, a, pa, rng.u16(), rng.u16(), true).build()},
          {FrameBuilder::icmp_echo(a, b).build(), FrameBuilder::icmp_echo(b, a).build()},
          {FrameBuilder::ip(a, b, 50).build(), FrameBuilder::ip(b, a, 50).build()},
      }};
      for (const auto& [there, back] : pairs) {
        const KeyExtraction k1 = key_of(there, true);
        const KeyExtraction k2 = key_of(back, true);
        ASSERT_EQ(k1.status, KeyStatus::ok);
        ASSERT_EQ(k2.status, KeyStatus::ok);
        ASSERT_EQ(workset_of(k1.key, kind, seed), workset_of(k2.key, kind, seed))
            << "hash " << to_string(kind) << " iteration " << i << " seed 0x5eed";
      }
    }
  }
}

TEST(WorksetId, FromWireRejectsOutOfRange) {
  EXPECT_EQ(WorksetId::from_wire(0)->value(), 0);
  EXPECT_EQ(WorksetId::from_wire(1023)->value(), 1023);
  EXPECT_FALSE(WorksetId::from_wire(1024));
  EXPECT_FALSE(WorksetId::from_wire(0xffff));
}

TEST(WorksetIdDeathTest, ConstructingOutOfRangeAborts) {
  EXPECT_DEATH({ [[maybe_unused]] WorksetId w{static_cast<std::uint16_t>(1024)}; }, "");
}

TEST(MemberId, NoneIsDistinct) {
  EXPECT_TRUE(MemberId::none().is_none());
  EXPECT_TRUE(MemberId{}.is_none());
  EXPECT_FALSE(MemberId{0}.is_none());
  EXPECT_NE(MemberId{1}, MemberId::none());
}

TEST(HashKind, ConfigNames) {
  EXPECT_EQ(hash_kind_from_string("xor"), HashKind::xor_fold);
  EXPECT_EQ(hash_kind_from_string("mix"), HashKind::mix);
  EXPECT_FALSE(hash_kind_from_string("XOR"));
  EXPECT_EQ(to_string(HashKind::xor_fold), "xor");
  EXPECT_EQ(to_string(HashKind::mix), "mix");
}

}  // namespace
}  // namespace phalanx::filter
