// The workset table (src/filter/workset_table.hpp): one table of packets and expected verdicts
// per role, truncation at every length, counters, and the state machine's legal and illegal moves.
#include "filter/workset_table.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "filter/frame_builder.hpp"

namespace phalanx::filter {
namespace {

using test::FrameBuilder;
using wire::Ipv4Addr;

constexpr Ipv4Addr kCluster{198, 18, 0, 100};
constexpr Ipv4Addr kOther{198, 18, 0, 7};  // a member's own address
constexpr Ipv4Addr kClientA{198, 51, 100, 7};
constexpr Ipv4Addr kLac{192, 0, 2, 1};
constexpr Ipv4Addr kInside{10, 0, 0, 5};
constexpr Ipv4Addr kOutside{93, 184, 216, 34};

constexpr MemberId kMe{1};
constexpr MemberId kPeer{2};

// Worksets of the packets below under the xor hash, worked out in workset_test.cpp:
constexpr WorksetId kWsTcpA{217};     // 198.51.100.7:40000
constexpr WorksetId kWsIcmpA{56};     // 198.51.100.7 -> 198.18.0.100
constexpr WorksetId kWsL2tp{744};     // 192.0.2.1:1701, tunnel 0x1234, session 0x5678
constexpr WorksetId kWsForward{536};  // 10.0.0.5:33000 <-> 93.184.216.34:443

WorksetTableConfig config(bool master, DistributionMode mode = DistributionMode::multicast) {
  WorksetTableConfig c;
  c.cluster_ip = kCluster;
  c.self = kMe;
  c.hash = HashKind::xor_fold;
  c.is_master = master;
  c.mode = mode;
  return c;
}

// How the packet's workset stands before the packet arrives.
enum class Setup { unassigned, mine, mine_unacked, peer_unacked, peer, peer_moving };

void prepare(WorksetTable& t, WorksetId ws, Setup s) {
  switch (s) {
    case Setup::unassigned:
      break;
    case Setup::mine:
      t.assign(ws, kMe);
      t.ack(ws);
      break;
    case Setup::mine_unacked:
      t.assign(ws, kMe);
      break;
    case Setup::peer_unacked:
      t.assign(ws, kPeer);
      break;
    case Setup::peer:
      t.assign(ws, kPeer);
      t.ack(ws);
      break;
    case Setup::peer_moving:
      t.assign(ws, kPeer);
      t.ack(ws);
      t.begin_move(ws);
      break;
  }
  t.check_invariants();
}

struct VerdictCase {
  std::string description;
  bool master;
  DistributionMode mode;
  Setup setup;  // applied to `workset`
  std::vector<std::byte> frame;
  bool forwarded;
  Verdict expected;
};

std::vector<VerdictCase> verdict_cases() {
  using K = VerdictKind;
  using M = DistributionMode;
  const auto tcp_a = FrameBuilder::tcp(kClientA, 40000, kCluster, 80).build();
  const auto icmp_a = FrameBuilder::icmp_echo(kClientA, kCluster).build();
  const auto l2tp = FrameBuilder::l2tp(kLac, 1701, kCluster, 1701, 0x1234, 0x5678).build();
  const auto fwd = FrameBuilder::tcp(kOutside, 443, kInside, 33000).build();
  const WorksetId none{};
  return {
      // follower
      {"follower: my workset", false, M::multicast, Setup::mine, tcp_a, false, {K::mine, kWsTcpA}},
      {"follower: peer's workset",
       false,
       M::multicast,
       Setup::peer,
       tcp_a,
       false,
       {K::not_mine, kWsTcpA}},
      {"follower: unassigned workset",
       false,
       M::multicast,
       Setup::unassigned,
       tcp_a,
       false,
       {K::not_mine, kWsTcpA}},
      {"follower: peer's, unacked",
       false,
       M::multicast,
       Setup::peer_unacked,
       tcp_a,
       false,
       {K::not_mine, kWsTcpA}},
      {"follower: icmp in my workset",
       false,
       M::unicast,
       Setup::mine,
       icmp_a,
       false,
       {K::mine, kWsIcmpA}},
      {"follower: l2tp in my workset",
       false,
       M::multicast,
       Setup::mine,
       l2tp,
       false,
       {K::mine, kWsL2tp}},
      {"follower: my workset, still unacked",
       false,
       M::multicast,
       Setup::mine_unacked,
       tcp_a,
       false,
       {K::mine, kWsTcpA}},
      {"follower: forwarded, mine",
       false,
       M::multicast,
       Setup::mine,
       fwd,
       true,
       {K::mine, kWsForward}},
      {"follower: vlan-tagged, mine",
       false,
       M::multicast,
       Setup::mine,
       FrameBuilder::tcp(kClientA, 40000, kCluster, 80).vlan(0x2064).build(),
       false,
       {K::mine, kWsTcpA}},
      {"follower: padded to 60 bytes, mine",
       false,
       M::multicast,
       Setup::mine,
       FrameBuilder::icmp_echo(kClientA, kCluster).pad_to(60).build(),
       false,
       {K::mine, kWsIcmpA}},
      // master
      {"master: unassigned -> assign and hold",
       true,
       M::multicast,
       Setup::unassigned,
       tcp_a,
       false,
       {K::master_must_assign, kWsTcpA}},
      {"master: assigned, unacked -> hold",
       true,
       M::multicast,
       Setup::peer_unacked,
       tcp_a,
       false,
       {K::master_must_assign, kWsTcpA}},
      {"master: moving -> hold",
       true,
       M::forwarding,
       Setup::peer_moving,
       tcp_a,
       false,
       {K::master_must_assign, kWsTcpA}},
      {"master: peer's, multicast -> drop",
       true,
       M::multicast,
       Setup::peer,
       tcp_a,
       false,
       {K::not_mine, kWsTcpA}},
      {"master: peer's, unicast -> drop",
       true,
       M::unicast,
       Setup::peer,
       tcp_a,
       false,
       {K::not_mine, kWsTcpA}},
      {"master: peer's, forwarding -> forward",
       true,
       M::forwarding,
       Setup::peer,
       tcp_a,
       false,
       {K::forward_to_owner, kWsTcpA}},
      {"master: its own workset",
       true,
       M::forwarding,
       Setup::mine,
       tcp_a,
       false,
       {K::mine, kWsTcpA}},
      {"master: forwarded, unassigned",
       true,
       M::forwarding,
       Setup::unassigned,
       fwd,
       true,
       {K::master_must_assign, kWsForward}},
      // not for the cluster
      {"ipv4 to a member's own address",
       false,
       M::multicast,
       Setup::mine,
       FrameBuilder::tcp(kClientA, 40000, kOther, 80).build(),
       false,
       {K::not_for_cluster, none}},
      {"arp",
       true,
       M::multicast,
       Setup::unassigned,
       FrameBuilder::raw_ethernet(wire::ethertype::kArp, 28),
       false,
       {K::not_for_cluster, none}},
      {"ipv6",
       true,
       M::multicast,
       Setup::unassigned,
       FrameBuilder::raw_ethernet(wire::ethertype::kIpv6, 40),
       false,
       {K::not_for_cluster, none}},
      // fragments
      {"tcp first fragment",
       false,
       M::multicast,
       Setup::mine,
       FrameBuilder::tcp(kClientA, 40000, kCluster, 80).fragment(true, 0).build(),
       false,
       {K::needs_reassembly, none}},
      {"udp last fragment",
       true,
       M::multicast,
       Setup::unassigned,
       FrameBuilder::udp(kClientA, 40000, kCluster, 53).fragment(false, 1480).build(),
       false,
       {K::needs_reassembly, none}},
      {"icmp fragment: keyed on addresses",
       false,
       M::multicast,
       Setup::mine,
       FrameBuilder::icmp_echo(kClientA, kCluster).fragment(true, 0).build(),
       false,
       {K::mine, kWsIcmpA}},
      {"fragment to another address",
       false,
       M::multicast,
       Setup::mine,
       FrameBuilder::tcp(kClientA, 40000, kOther, 80).fragment(true, 0).build(),
       false,
       {K::not_for_cluster, none}},
      // malformed
      {"runt frame",
       false,
       M::multicast,
       Setup::mine,
       std::vector<std::byte>(13),
       false,
       {K::malformed, none}},
      {"tcp with 3 header bytes",
       false,
       M::multicast,
       Setup::mine,
       FrameBuilder::ip(kClientA, kCluster, wire::ipproto::kTcp, 3).build(),
       false,
       {K::malformed, none}},
      {"udp 1701 that is not l2tpv2",
       false,
       M::multicast,
       Setup::mine,
       FrameBuilder::udp(kLac, 1701, kCluster, 1701, 6).build(),
       false,
       {K::malformed, none}},
  };
}

TEST(WorksetTable, VerdictTable) {
  for (const VerdictCase& c : verdict_cases()) {
    SCOPED_TRACE(c.description);
    WorksetTable t(config(c.master, c.mode));
    if (c.expected.kind != VerdictKind::not_for_cluster &&
        c.expected.kind != VerdictKind::malformed &&
        c.expected.kind != VerdictKind::needs_reassembly) {
      prepare(t, c.expected.workset, c.setup);
    }
    const Verdict got = t.classify(test::bytes(c.frame), c.forwarded);
    EXPECT_EQ(got, c.expected) << "got " << to_string(got.kind) << " " << got.workset.value();
    EXPECT_EQ(t.count(c.expected.kind), 1u);
    t.check_invariants();
  }
}

// classify() decides the common case inline; classify_reference() goes through the wire views.
// They must agree on every frame of the table and on every prefix of it.
TEST(WorksetTable, FastPathAgreesWithReference) {
  for (const VerdictCase& c : verdict_cases()) {
    SCOPED_TRACE(c.description);
    WorksetTable fast(config(c.master, c.mode));
    WorksetTable reference(config(c.master, c.mode));
    for (std::uint16_t i = 0; i < kWorksetCount; i += 2) {
      prepare(fast, WorksetId{i}, Setup::mine);
      prepare(reference, WorksetId{i}, Setup::mine);
    }
    for (std::size_t len = 0; len <= c.frame.size(); ++len) {
      const wire::Bytes b = test::bytes(c.frame).first(len);
      EXPECT_EQ(fast.classify(b, c.forwarded), reference.classify_reference(b, c.forwarded))
          << "length " << len;
    }
  }
}

TEST(WorksetTable, MalformedReasonsAreCounted) {
  WorksetTable t(config(false));
  auto bad_version = FrameBuilder::tcp(kClientA, 40000, kCluster, 80).build();
  bad_version[14] = std::byte{0x65};  // IPv6 in an IPv4 EtherType
  auto bad_ihl = FrameBuilder::tcp(kClientA, 40000, kCluster, 80).build();
  bad_ihl[14] = std::byte{0x44};  // IHL 4 words < 20 bytes
  auto stacked = FrameBuilder::tcp(kClientA, 40000, kCluster, 80).vlan(5).build();
  wire::write_u16(wire::MutBytes(stacked), 16, wire::ethertype::kVlan);  // a second tag
  const auto tcp3 = FrameBuilder::ip(kClientA, kCluster, wire::ipproto::kTcp, 3).build();

  EXPECT_EQ(t.classify(test::bytes(bad_version)).kind, VerdictKind::malformed);
  EXPECT_EQ(t.classify(test::bytes(bad_ihl)).kind, VerdictKind::malformed);
  EXPECT_EQ(t.classify(test::bytes(stacked)).kind, VerdictKind::malformed);
  EXPECT_EQ(t.classify(test::bytes(tcp3)).kind, VerdictKind::malformed);
  EXPECT_EQ(t.malformed_count(wire::Error::bad_version), 1u);
  EXPECT_EQ(t.malformed_count(wire::Error::bad_header_length), 1u);
  EXPECT_EQ(t.malformed_count(wire::Error::malformed), 1u);
  EXPECT_EQ(t.malformed_count(wire::Error::truncated), 1u);
  EXPECT_EQ(t.count(VerdictKind::malformed), 4u);
  t.check_invariants();
}

// Every prefix of a valid frame is malformed (truncated), never a crash and never a verdict
// about a workset: the IPv4 total length always reaches past the cut.
TEST(WorksetTable, TruncatedAtEveryLength) {
  const std::vector<std::vector<std::byte>> frames = {
      FrameBuilder::tcp(kClientA, 40000, kCluster, 80).build(),
      FrameBuilder::tcp(kClientA, 40000, kCluster, 80).vlan(7).build(),
      FrameBuilder::udp(kClientA, 40000, kCluster, 53).build(),
      FrameBuilder::l2tp(kLac, 1701, kCluster, 1701, 1, 2).build(),
      FrameBuilder::l2tp(kLac, 50000, kCluster, 1701, 1, 2, true).build(),
      FrameBuilder::icmp_echo(kClientA, kCluster).build(),
      FrameBuilder::tcp(kInside, 1, kOutside, 2).build(),
  };
  for (bool master : {false, true}) {
    WorksetTable t(config(master, DistributionMode::forwarding));
    for (const auto& frame : frames) {
      for (std::size_t len = 0; len < frame.size(); ++len) {
        // A copy of exactly `len` bytes, so ASan sees any read past the cut.
        const std::vector<std::byte> cut(frame.begin(),
                                         frame.begin() + static_cast<std::ptrdiff_t>(len));
        for (bool forwarded : {false, true}) {
          SCOPED_TRACE("length " + std::to_string(len));
          EXPECT_EQ(t.classify(test::bytes(cut), forwarded).kind, VerdictKind::malformed);
        }
      }
    }
    EXPECT_EQ(t.count(VerdictKind::malformed), t.malformed_count(wire::Error::truncated));
    t.check_invariants();
  }
}

TEST(WorksetTable, ReassembledDatagramIsClassified) {
  WorksetTable t(config(false));
  prepare(t, kWsTcpA, Setup::mine);
  const auto frame = FrameBuilder::tcp(kClientA, 40000, kCluster, 80).build();
  const wire::Bytes datagram = test::bytes(frame).subspan(wire::EthernetView::kHeaderSize);
  EXPECT_EQ(t.classify_ipv4(datagram), (Verdict{VerdictKind::mine, kWsTcpA}));
}

TEST(WorksetTable, MixHashTableAgreesWithWorksetFor) {
  WorksetTableConfig c = config(false);
  c.hash = HashKind::mix;
  c.mix_seed = 42;
  WorksetTable t(c);
  const auto frame = FrameBuilder::tcp(kClientA, 40000, kCluster, 80).build();
  const WorksetId ws = hash_mix(FlowKey{kClientA.value(), 40000, 0}, 42);
  EXPECT_EQ(t.workset_for(FlowKey{kClientA.value(), 40000, 0}), ws);
  EXPECT_EQ(t.classify(test::bytes(frame)), (Verdict{VerdictKind::not_mine, ws}));
  t.assign(ws, kMe);
  EXPECT_EQ(t.classify(test::bytes(frame)), (Verdict{VerdictKind::mine, ws}));
}

TEST(WorksetTable, LifeOfAWorkset) {
  WorksetTable t(config(true, DistributionMode::forwarding));
  const WorksetId ws{300};
  EXPECT_EQ(t.state(ws), WorksetState::unassigned);
  EXPECT_TRUE(t.owner(ws).is_none());
  t.assign(ws, kPeer);
  EXPECT_EQ(t.state(ws), WorksetState::assigned_unacked);
  EXPECT_EQ(t.owner(ws), kPeer);
  t.ack(ws);
  EXPECT_EQ(t.state(ws), WorksetState::assigned);
  t.begin_move(ws);
  EXPECT_EQ(t.state(ws), WorksetState::moving);
  EXPECT_EQ(t.owner(ws), kPeer);  // the old owner keeps it until the move completes
  t.assign(ws, kMe);
  EXPECT_EQ(t.state(ws), WorksetState::assigned_unacked);
  EXPECT_EQ(t.owner(ws), kMe);
  t.ack(ws);
  t.release(ws);
  EXPECT_EQ(t.state(ws), WorksetState::unassigned);
  EXPECT_TRUE(t.owner(ws).is_none());
  t.check_invariants();
}

TEST(WorksetTable, ReleaseFromEveryAssignedState) {
  WorksetTable t(config(true));
  t.assign(WorksetId{1}, kPeer);
  t.assign(WorksetId{2}, kPeer);
  t.ack(WorksetId{2});
  t.assign(WorksetId{3}, kPeer);
  t.ack(WorksetId{3});
  t.begin_move(WorksetId{3});
  EXPECT_EQ(t.worksets_of(kPeer), 3u);
  for (std::uint16_t i = 1; i <= 3; ++i) {
    t.release(WorksetId{i});
  }
  EXPECT_EQ(t.worksets_of(kPeer), 0u);
  t.check_invariants();
}

TEST(WorksetTable, WorksetsOfCountsPerMember) {
  WorksetTable t(config(true));
  for (std::uint16_t i = 0; i < kWorksetCount; ++i) {
    t.assign(WorksetId{i}, i % 3 == 0 ? kMe : kPeer);
  }
  EXPECT_EQ(t.worksets_of(kMe), 342u);  // 0, 3, ..., 1023: 1023 / 3 + 1
  EXPECT_EQ(t.worksets_of(kPeer), 682u);
  EXPECT_EQ(t.worksets_of(MemberId{9}), 0u);
  t.check_invariants();
}

TEST(WorksetTable, RoleAndModeChangesRecomputeVerdicts) {
  WorksetTable t(config(false));
  prepare(t, kWsTcpA, Setup::peer);
  const auto frame = FrameBuilder::tcp(kClientA, 40000, kCluster, 80).build();
  EXPECT_EQ(t.classify(test::bytes(frame)).kind, VerdictKind::not_mine);
  t.set_master(true);
  t.check_invariants();
  EXPECT_EQ(t.classify(test::bytes(frame)).kind, VerdictKind::not_mine);  // multicast
  t.set_mode(DistributionMode::forwarding);
  t.check_invariants();
  EXPECT_EQ(t.classify(test::bytes(frame)).kind, VerdictKind::forward_to_owner);
  t.set_master(false);
  EXPECT_EQ(t.classify(test::bytes(frame)).kind, VerdictKind::not_mine);
  EXPECT_FALSE(t.is_master());
  EXPECT_EQ(t.mode(), DistributionMode::forwarding);
}

TEST(WorksetTable, LoadAccumulates) {
  WorksetTable t(config(false));
  t.add_load(WorksetId{5}, 1, 60);
  t.add_load(WorksetId{5}, 2, 3000);
  EXPECT_EQ(t.load(WorksetId{5}).packets, 3u);
  EXPECT_EQ(t.load(WorksetId{5}).bytes, 3060u);
  EXPECT_EQ(t.load(WorksetId{6}).packets, 0u);
}

TEST(WorksetTable, NamesForStatusOutput) {
  EXPECT_EQ(to_string(WorksetState::assigned_unacked), "assigned_unacked");
  EXPECT_EQ(to_string(DistributionMode::multicast), "multicast");
  EXPECT_EQ(to_string(VerdictKind::master_must_assign), "master_must_assign");
}

// Illegal moves are bugs in the cluster logic: they abort, naming the move.
struct IllegalCase {
  std::string description;
  std::function<void(WorksetTable&)> steps;
  std::string message;
};

TEST(WorksetTableDeathTest, IllegalTransitionsAbort) {
  const WorksetId ws{17};
  const std::vector<IllegalCase> cases = {
      {"ack an unassigned workset", [&](WorksetTable& t) { t.ack(ws); }, "unassigned => assigned"},
      {"move an unassigned workset", [&](WorksetTable& t) { t.begin_move(ws); },
       "unassigned => moving"},
      {"release an unassigned workset", [&](WorksetTable& t) { t.release(ws); },
       "unassigned => unassigned"},
      {"assign twice",
       [&](WorksetTable& t) {
         t.assign(ws, kPeer);
         t.assign(ws, kMe);
       },
       "assigned_unacked => assigned_unacked"},
      {"move before the ack",
       [&](WorksetTable& t) {
         t.assign(ws, kPeer);
         t.begin_move(ws);
       },
       "assigned_unacked => moving"},
      {"ack twice",
       [&](WorksetTable& t) {
         t.assign(ws, kPeer);
         t.ack(ws);
         t.ack(ws);
       },
       "assigned => assigned"},
      {"reassign without a move",
       [&](WorksetTable& t) {
         t.assign(ws, kPeer);
         t.ack(ws);
         t.assign(ws, kMe);
       },
       "assigned => assigned_unacked"},
      {"ack a moving workset",
       [&](WorksetTable& t) {
         t.assign(ws, kPeer);
         t.ack(ws);
         t.begin_move(ws);
         t.ack(ws);
       },
       "moving => assigned"},
      {"assign to nobody", [&](WorksetTable& t) { t.assign(ws, MemberId::none()); },
       "assign to no member"},
  };
  for (const IllegalCase& c : cases) {
    SCOPED_TRACE(c.description);
    EXPECT_DEATH(
        {
          WorksetTable t(config(true));
          c.steps(t);
        },
        "workset 17.*" + c.message + "|" + c.message + ".*workset 17");
  }
}

TEST(WorksetTableDeathTest, ConfigWithoutSelfAborts) {
  WorksetTableConfig c = config(false);
  c.self = MemberId::none();
  EXPECT_DEATH({ WorksetTable t(c); }, "member id");
}

}  // namespace
}  // namespace phalanx::filter
