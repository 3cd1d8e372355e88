// ClusterNode without a kernel: a Config and an environment in, frames and control datagrams fed
// with explicit time, what it sends collected. A fake master (control messages encoded here) or
// the node alone as master stands for the rest of the cluster.
//
// What is checked (issue 9):
//   - tables fed from the network are bounded, and count what they refuse (part 4);
//   - the master answers a conflicting ARP for the cluster IP at once, rate-limited (part 7);
//   - a member never sends on a connection of a workset it does not own (part 5);
//   - a stall of the loop is noticed and counted (part 5).
#include "node/cluster_node.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "cluster/messages.hpp"
#include "stack/harness.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::node {
namespace {

using stack::test::bytes;
using stack::test::ethernet;
using stack::test::Frame;
using std::chrono::milliseconds;
using std::chrono::seconds;
using wire::Ipv4Addr;
using wire::MacAddr;

constexpr Ipv4Addr kClusterIp{198, 18, 0, 1};
constexpr Ipv4Addr kSelf{198, 18, 0, 11};
constexpr Ipv4Addr kMaster{198, 18, 0, 12};  // the fake master, when the node follows one
constexpr Ipv4Addr kClient{198, 18, 0, 101};
constexpr Ipv4Addr kGroup{239, 255, 80, 72};
constexpr MacAddr kSelfMac{{0x02, 0x50, 198, 18, 0, 11}};
constexpr MacAddr kMasterMac{{0x02, 0x50, 198, 18, 0, 12}};
constexpr MacAddr kClientMac{{0x02, 0x50, 198, 18, 0, 101}};
constexpr MacAddr kAttackerMac{{0x02, 0x66, 0x66, 0x66, 0x66, 0x66}};
constexpr MacAddr kGroupMac{{0x01, 0x00, 0x5e, 0x7f, 0x50, 0x48}};
constexpr std::uint16_t kControlPort = 8472;
constexpr std::uint16_t kEchoPort = 7;

NodeConfig make_config() {
  NodeConfig c;
  c.member.interface = "eth0";
  c.member.address = kSelf;
  c.member.prefix = 24;
  c.echo.enabled = true;
  c.echo.ports = {kEchoPort};
  ClusterSection s;
  s.name = "unit";
  s.ip = kClusterIp;
  s.mode = filter::DistributionMode::multicast;
  s.mac = default_cluster_mac(kClusterIp, s.mode);
  s.control_port = kControlPort;
  c.cluster = s;
  return c;
}

// A UDP datagram as the packet ring sees it (the kernel gets its own copy).
Frame udp_frame(MacAddr src_mac, MacAddr dst_mac, Ipv4Addr src, Ipv4Addr dst, std::uint16_t dport,
                wire::Bytes payload) {
  const Frame u = stack::test::udp(src, kControlPort, dst, dport, payload);
  stack::test::Ip h;
  h.src = src;
  h.dst = dst;
  h.protocol = wire::ipproto::kUdp;
  const Frame d = stack::test::ipv4(h, bytes(u));
  return ethernet(dst_mac, src_mac, wire::ethertype::kIpv4, bytes(d));
}

Frame tcp_frame(Ipv4Addr src, std::uint16_t sport, const wire::TcpRepr& r, MacAddr src_mac) {
  wire::TcpRepr seg = r;
  seg.src_port = sport;
  seg.dst_port = kEchoPort;
  const Frame t = stack::test::tcp(src, kClusterIp, seg);
  stack::test::Ip h;
  h.src = src;
  h.dst = kClusterIp;
  h.protocol = wire::ipproto::kTcp;
  const Frame d = stack::test::ipv4(h, bytes(t));
  return ethernet(default_cluster_mac(kClusterIp, filter::DistributionMode::multicast), src_mac,
                  wire::ethertype::kIpv4, bytes(d));
}

bool is_tcp(const Frame& f) {
  return f.size() > 34 && wire::read_u16(bytes(f), 12) == wire::ethertype::kIpv4 &&
         wire::read_u8(bytes(f), 14 + 9) == wire::ipproto::kTcp;
}

std::optional<wire::ArpRepr> as_arp(const Frame& f) {
  if (f.size() < 14 || wire::read_u16(bytes(f), 12) != wire::ethertype::kArp) {
    return std::nullopt;
  }
  auto a = wire::ArpRepr::parse(bytes(f).subspan(14));
  return a ? std::optional<wire::ArpRepr>(*a) : std::nullopt;
}

class ClusterNodeTest : public testing::Test {
 protected:
  void SetUp() override { make(make_config()); }

  void make(const NodeConfig& config) {
    ClusterEnvironment env;
    env.interface_mac = kSelfMac;
    env.incarnation = 7;
    auto n = ClusterNode::create(
        config, env,
        [this](std::optional<Ipv4Addr> to, wire::Bytes b) {
          control_out.push_back({to, {b.begin(), b.end()}});
        },
        nullptr);
    ASSERT_TRUE(n.ok()) << n.error().message;
    node = std::move(*n);
  }

  void drain() {
    node->drain([this](wire::Bytes f, stack::TxMeta) { out.emplace_back(f.begin(), f.end()); });
  }

  // Moves time forward in 1 ms steps, running the node's timer whenever it is due.
  void advance(Time d) {
    const Time end = now + d;
    while (now < end) {
      now += milliseconds(1);
      if (node->next_deadline() <= now) {
        node->on_timer(now);
      }
      drain();
    }
  }

  void frame(const Frame& f) {
    node->on_frame(now, bytes(f), FrameMeta{});
    drain();
  }

  // A control message from `sender`, as both the packet ring and the control socket see it
  // (the ring first: the order in which the kernel hands them over is not fixed).
  void control(Ipv4Addr sender, MacAddr mac, cluster::Body body, cluster::Epoch epoch = 1) {
    cluster::Message m;
    m.cluster_id = cluster::cluster_id_of("unit");
    m.sender = sender;
    m.epoch = epoch;
    m.body = std::move(body);
    const auto datagram = cluster::encode(m, cluster::NullAuthenticator{});
    frame(udp_frame(mac, kGroupMac, sender, kGroup, kControlPort, datagram));
    node->on_control(now, datagram);
    drain();
  }

  void become_master() {
    node->start(now);
    advance(milliseconds(500));
    ASSERT_EQ(node->member().role(), cluster::Role::master);
  }

  // The node follows kMaster, which lists both and assigns `worksets` to the node.
  void follow(const std::vector<std::uint16_t>& worksets) {
    node->start(now);
    advance(milliseconds(2));
    control(kMaster, kMasterMac, cluster::JoinAck{kSelf, 0});
    ASSERT_EQ(node->member().role(), cluster::Role::follower);
    keepalive({});
    control(kMaster, kMasterMac, cluster::WorkAssign{kSelf, worksets});
  }

  // A MasterKeepalive from kMaster listing `members` ({kMaster, kSelf} by default); `owners`:
  // workset -> index.
  void keepalive(const std::vector<std::pair<std::uint16_t, std::uint8_t>>& owners,
                 std::vector<Ipv4Addr> members = {kMaster, kSelf}) {
    cluster::MasterKeepalive ka;
    ka.sequence = ++keepalive_seq_;
    ka.members = std::move(members);
    ka.owners.assign(filter::kWorksetCount, cluster::kUnassigned);
    for (auto [ws, owner] : owners) {
      ka.owners[ws] = owner;
    }
    control(kMaster, kMasterMac, ka);
  }

  std::optional<std::uint64_t> counter(std::string_view name) const {
    for (const auto& c : node->counter_list()) {
      if (c.name == name) {
        return c.value;
      }
    }
    return std::nullopt;
  }

  std::size_t count_out(const std::function<bool(const Frame&)>& pred) const {
    std::size_t n = 0;
    for (const auto& f : out) {
      n += pred(f) ? 1 : 0;
    }
    return n;
  }

  std::unique_ptr<ClusterNode> node;
  Time now = seconds(1);
  std::vector<Frame> out;
  std::vector<std::pair<std::optional<Ipv4Addr>, Frame>> control_out;

 private:
  std::uint32_t keepalive_seq_ = 0;
};

Ipv4Addr spoofed(std::uint32_t i) {
  return Ipv4Addr{0x0a000000u + i};  // 10.0.0.0/8: a million senders that never existed
}

MacAddr spoofed_mac(std::uint32_t i) {
  return MacAddr{{0x02, 0x77, static_cast<std::uint8_t>(i >> 24),
                  static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                  static_cast<std::uint8_t>(i)}};
}

// --- part 4: tables fed from the network ------------------------------------------------------

TEST_F(ClusterNodeTest, ControlDatagramsFromStrangersTeachNoMemberMac) {
  become_master();
  const std::vector<std::byte> junk(40, std::byte{0x42});
  constexpr std::uint32_t kSources = 100'000;
  for (std::uint32_t i = 0; i < kSources; ++i) {
    node->on_frame(
        now, bytes(udp_frame(spoofed_mac(i), kGroupMac, spoofed(i), kGroup, kControlPort, junk)),
        FrameMeta{});
  }
  EXPECT_TRUE(node->member_macs().empty())
      << node->member_macs().size() << " MACs learned from senders that are not members";
  EXPECT_EQ(counter("drop.learn.member_mac_not_listed"), kSources);
}

TEST_F(ClusterNodeTest, ListedMembersAreLearnedEvenWhenTheRingSeesThemBeforeTheList) {
  follow({});
  // The master's datagrams reached the ring before the node had a member list: learned once
  // the master is listed.
  auto it = node->member_macs().find(kMaster);
  ASSERT_NE(it, node->member_macs().end());
  EXPECT_EQ(it->second, kMasterMac);
  // A member that leaves the list is forgotten.
  cluster::MasterKeepalive ka;
  ka.sequence = 1000;
  ka.members = {kMaster, kSelf};
  control(kMaster, kMasterMac, ka);
  EXPECT_EQ(node->member_macs().size(), 1u);
}

TEST_F(ClusterNodeTest, NeighbourTableIsBoundedAndKeepsActiveClients) {
  become_master();
  const std::vector<std::byte> junk(16, std::byte{0x42});
  constexpr std::uint32_t kSources = 200'000;
  for (std::uint32_t i = 0; i < kSources; ++i) {
    if (i % 1000 == 0) {
      now += milliseconds(1);  // 1,000 sources per millisecond; the client talks every 100 ms
      if (i % 100'000 == 0) {
        node->on_frame(now, bytes(udp_frame(kClientMac, kGroupMac, kClient, kClusterIp, 9, junk)),
                       FrameMeta{});
      }
    }
    node->on_frame(now,
                   bytes(udp_frame(spoofed_mac(i), kGroupMac, spoofed(i), kClusterIp, 9, junk)),
                   FrameMeta{});
    if (i % 256 == 0) {
      drain();
      out.clear();
    }
  }
  EXPECT_LE(node->neighbour_count(), ClusterNode::kNeighbourSlots);
  const auto refused = counter("drop.learn.neighbour_slot_busy");
  const auto replaced = counter("neighbour_replaced");
  ASSERT_TRUE(refused && replaced);
  EXPECT_EQ(*refused + *replaced + node->neighbour_count(), kSources + 1);
  EXPECT_EQ(node->neighbour(kClient), kClientMac) << "an active client lost its entry";
}

// --- part 7: one gratuitous ARP must not take the cluster IP ----------------------------------

Frame gratuitous(MacAddr mac, Ipv4Addr ip) {
  return stack::test::arp_frame(wire::ArpRepr::gratuitous(mac, ip));
}

bool is_our_announcement(const Frame& f) {
  auto a = as_arp(f);
  return a && a->sender_ip == kClusterIp && a->target_ip == kClusterIp &&
         a->sender_mac == default_cluster_mac(kClusterIp, filter::DistributionMode::multicast);
}

TEST_F(ClusterNodeTest, MasterAnswersAConflictingArpAtOnce) {
  become_master();
  out.clear();
  frame(gratuitous(kAttackerMac, kClusterIp));
  EXPECT_EQ(count_out(is_our_announcement), 1u) << "no gratuitous ARP in answer to the conflict";
  EXPECT_EQ(counter("arp_conflicts"), 1u);
  EXPECT_EQ(counter("arp_defences"), 1u);
}

TEST_F(ClusterNodeTest, ArpDefenceIsRateLimitedButHasTheLastWord) {
  become_master();
  out.clear();
  for (int i = 0; i < 50; ++i) {
    frame(gratuitous(kAttackerMac, kClusterIp));  // a burst within one millisecond
  }
  EXPECT_EQ(count_out(is_our_announcement), 1u);
  EXPECT_EQ(counter("arp_conflicts"), 50u);
  EXPECT_EQ(counter("arp_defences_deferred"), 49u);
  // The burst is answered once more when the rate limit allows: the last word is ours.
  advance(ClusterNode::kArpDefenceInterval + milliseconds(1));
  EXPECT_EQ(count_out(is_our_announcement), 2u);
  advance(seconds(1));
  EXPECT_EQ(count_out(is_our_announcement), 2u) << "nothing more to answer";
}

TEST_F(ClusterNodeTest, OurOwnAnnouncementAndAFollowerAreNoConflict) {
  become_master();
  out.clear();
  frame(
      gratuitous(default_cluster_mac(kClusterIp, filter::DistributionMode::multicast), kClusterIp));
  EXPECT_EQ(count_out(is_our_announcement), 0u);
  EXPECT_EQ(counter("arp_conflicts"), 0u);

  make(make_config());
  follow({});
  out.clear();
  frame(gratuitous(kAttackerMac, kClusterIp));
  EXPECT_EQ(count_out(is_our_announcement), 0u) << "only the master answers for the cluster IP";
  EXPECT_EQ(counter("arp_conflicts"), 1u);
}

// --- part 5: never send on a workset we do not own --------------------------------------------

TEST_F(ClusterNodeTest, NoSegmentLeavesForAWorksetNoLongerOwned) {
  constexpr std::uint16_t kPort = 40000;
  const std::uint16_t ws = filter::workset_of(filter::FlowKey{kClient.value(), kPort, 0},
                                              filter::HashKind::xor_fold, filter::kDefaultMixSeed)
                               .value();
  follow({ws});
  out.clear();
  // The handshake and 100 bytes to echo; the client acknowledges nothing after the SYN-ACK.
  wire::TcpRepr syn;
  syn.seq = 1000;
  syn.flags = wire::tcpflag::kSyn;
  syn.window = 65535;
  frame(tcp_frame(kClient, kPort, syn, kClientMac));
  ASSERT_EQ(count_out(is_tcp), 1u) << "no SYN-ACK: the workset is not ours?";
  const wire::TcpRepr synack = stack::test::parse_tcp(out.back());
  wire::TcpRepr ack;
  ack.seq = 1001;
  ack.ack = synack.seq + 1;
  ack.flags = wire::tcpflag::kAck;
  ack.window = 65535;
  frame(tcp_frame(kClient, kPort, ack, kClientMac));
  const std::vector<std::byte> data(100, std::byte{'x'});
  wire::TcpRepr push = ack;
  push.flags = wire::tcpflag::kAck | wire::tcpflag::kPsh;
  push.payload = bytes(data);
  frame(tcp_frame(kClient, kPort, push, kClientMac));
  // The session's backup (the master here) never answers: its output is held until the
  // replicator's ack_timeout (50 ms) leaves it unprotected.
  advance(milliseconds(100));
  ASSERT_GE(count_out(is_tcp), 2u) << "echo sent nothing";
  // The master gives the workset to itself (index 0): the echoed bytes are never acknowledged,
  // and the stack would retransmit them, then give up with a RST.
  keepalive({{ws, 0}});
  out.clear();
  for (int i = 0; i < 1200; ++i) {  // two minutes, the master alive all along
    advance(milliseconds(100));
    keepalive({{ws, 0}});
  }
  EXPECT_EQ(count_out(is_tcp), 0u) << "segments sent on a connection of another member";
  const auto dropped = counter("drop.tx_not_owned");
  ASSERT_TRUE(dropped);
  EXPECT_GT(*dropped, 0u);
}

// A frame the master held while the workset moved reaches the new owner relayed (from the
// master's MAC). One for no connection here is the previous owner's business (a FIN it has
// handled already): no RST for it shortly after the workset is gained; the same segment
// straight from the client, or relayed later, gets one.
TEST_F(ClusterNodeTest, ARelayedSegmentForNoConnectionGoesUnansweredRightAfterAGain) {
  constexpr std::uint16_t kPort = 40001;
  const std::uint16_t ws = filter::workset_of(filter::FlowKey{kClient.value(), kPort, 0},
                                              filter::HashKind::xor_fold, filter::kDefaultMixSeed)
                               .value();
  follow({ws});
  // The master's MAC is known from its control datagrams; the client's from its own frames.
  wire::TcpRepr fin;
  fin.seq = 5000;
  fin.ack = 7000;
  fin.flags = wire::tcpflag::kAck | wire::tcpflag::kFin;
  fin.window = 65535;
  const auto rsts = [this] {
    return count_out([](const Frame& f) {
      return is_tcp(f) && (stack::test::parse_tcp(f).flags & wire::tcpflag::kRst) != 0;
    });
  };
  frame(tcp_frame(kClient, 40002, fin, kClientMac));  // teaches the client's MAC
  out.clear();
  frame(tcp_frame(kClient, kPort, fin, kMasterMac));  // relayed by the master, just gained
  EXPECT_EQ(rsts(), 0u);
  EXPECT_EQ(counter("replay_no_reset"), 1u);
  frame(tcp_frame(kClient, kPort, fin, kClientMac));  // the client's own retransmission
  EXPECT_EQ(rsts(), 1u);
  for (Duration waited{}; waited <= ClusterNode::kReplayQuiet; waited += milliseconds(50)) {
    advance(milliseconds(50));
    keepalive({{ws, 1}});  // the master stays alive meanwhile
  }
  ASSERT_EQ(node->member().role(), cluster::Role::follower);
  out.clear();
  frame(tcp_frame(kClient, kPort, fin, kMasterMac));  // relayed, long after the gain
  EXPECT_EQ(rsts(), 1u);
  EXPECT_EQ(counter("replay_no_reset"), 1u);
}

// Quorum (issue 10, partition heal). A follower whose master's list shrank to half of the
// largest it was part of is in a minority: it answers no segment of an unknown connection with an
// RST (the connection may be the other side's). Having heard no client for longer than T, once
// clients are heard again it opens no connection for 2T (the other side served them meanwhile
// and takes its worksets back at the tie-break). Back in a majority, both end.
TEST_F(ClusterNodeTest, AMinorityResetsNothingUnknownAndOpensNothingRightAfterASilence) {
  constexpr std::uint16_t kPort = 40001;
  const std::uint16_t ws = filter::workset_of(filter::FlowKey{kClient.value(), kPort, 0},
                                              filter::HashKind::xor_fold, filter::kDefaultMixSeed)
                               .value();
  follow({ws});
  const Ipv4Addr x(198, 18, 0, 7);
  const Ipv4Addr y(198, 18, 0, 8);
  const auto view = [&](std::vector<Ipv4Addr> members) {
    keepalive({{ws, 1}}, std::move(members));  // 1: kSelf
  };
  const auto rsts = [this] {
    return count_out([](const Frame& f) {
      return is_tcp(f) && (stack::test::parse_tcp(f).flags & wire::tcpflag::kRst) != 0;
    });
  };
  const auto syn_acks = [this] {
    return count_out([](const Frame& f) {
      return is_tcp(f) && (stack::test::parse_tcp(f).flags & wire::tcpflag::kSyn) != 0;
    });
  };
  wire::TcpRepr fin;
  fin.seq = 5000;
  fin.ack = 7000;
  fin.flags = wire::tcpflag::kAck | wire::tcpflag::kFin;
  fin.window = 65535;
  wire::TcpRepr syn;
  syn.seq = 9000;
  syn.flags = wire::tcpflag::kSyn;
  syn.window = 65535;
  syn.options.mss = 1460;

  view({kMaster, kSelf, x, y});
  view({kMaster, kSelf});  // 2 of 4
  ASSERT_FALSE(node->member().in_majority(now));
  out.clear();
  frame(tcp_frame(kClient, kPort, fin, kClientMac));
  EXPECT_EQ(rsts(), 0u);
  EXPECT_EQ(counter("minority_no_reset"), 1u);

  // No client for 2T (the master keeps talking), then a SYN: not answered, for 2T.
  for (int i = 0; i < 8; ++i) {
    advance(milliseconds(50));
    view({kMaster, kSelf});
  }
  out.clear();
  frame(tcp_frame(kClient, kPort, syn, kClientMac));
  EXPECT_EQ(syn_acks(), 0u);
  EXPECT_EQ(counter("minority_no_open"), 1u);
  EXPECT_EQ(counter("drop.tcp_open_refused"), std::nullopt);  // a stack counter, not the node's
  for (int i = 0; i < 9; ++i) {
    advance(milliseconds(50));
    frame(tcp_frame(kClient, 40002, fin, kClientMac));  // clients are heard all along
    view({kMaster, kSelf});
  }
  out.clear();
  frame(tcp_frame(kClient, kPort, syn, kClientMac));
  EXPECT_EQ(syn_acks(), 1u);

  // In a majority again: an unknown connection gets its RST.
  view({kMaster, kSelf, x});
  ASSERT_TRUE(node->member().in_majority(now));
  out.clear();
  constexpr std::uint16_t kSameWorkset = kPort ^ 0x401;  // xor-fold: the same workset
  frame(tcp_frame(kClient, kSameWorkset, fin, kClientMac));
  EXPECT_EQ(rsts(), 1u);
}

// --- part 5: the loop tells the node it was away ----------------------------------------------

TEST_F(ClusterNodeTest, AStallBeyondTheFailureIntervalIsCounted) {
  become_master();
  node->on_stall(now, milliseconds(30));
  EXPECT_EQ(counter("stalls"), 1u);
  EXPECT_EQ(counter("stalls_beyond_failure_interval"), 0u);
  node->on_stall(now, seconds(1));
  EXPECT_EQ(counter("stalls"), 2u);
  EXPECT_EQ(counter("stalls_beyond_failure_interval"), 1u);
  EXPECT_EQ(counter("stall_max_ms"), 1000u);
}

// The traffic a member reports for the tie-break (FollowerKeepalive::active) counts worksets
// whose clients it serves: frames in the last T on a workset with a live connection. Frames alone
// are what a side that took over a workset while cut off hears of the other side's clients as
// soon as the cut heals (whole partition_heal seed 1862: both sides counted them, and the side
// cut off won on its newer term).
TEST_F(ClusterNodeTest, TheTrafficReportedIsOfWorksetsWithLiveConnections) {
  constexpr std::uint16_t kPort = 40001;
  const std::uint16_t ws = filter::workset_of(filter::FlowKey{kClient.value(), kPort, 0},
                                              filter::HashKind::xor_fold, filter::kDefaultMixSeed)
                               .value();
  follow({ws});
  keepalive({{ws, 1}});
  const auto reported = [this] {
    std::optional<std::uint16_t> active;
    for (const auto& c : control_out) {
      auto r = cluster::decode(wire::Bytes(c.second.data(), c.second.size()),
                               cluster::NullAuthenticator{});
      if (const auto* m = std::get_if<cluster::Message>(&r)) {
        if (const auto* fk = std::get_if<cluster::FollowerKeepalive>(&m->body)) {
          active = fk->active;
        }
      }
    }
    control_out.clear();
    return active;
  };
  wire::TcpRepr ack;
  ack.seq = 5000;
  ack.ack = 7000;
  ack.flags = wire::tcpflag::kAck;
  ack.window = 65535;
  constexpr std::uint16_t kSameWorkset = kPort ^ 0x401;  // xor-fold: the same workset
  control_out.clear();
  for (int i = 0; i < 4; ++i) {
    frame(tcp_frame(kClient, kSameWorkset, ack, kClientMac));  // no connection of ours
    advance(milliseconds(50));
    keepalive({{ws, 1}});
  }
  EXPECT_EQ(reported(), std::optional<std::uint16_t>(0));
  wire::TcpRepr syn;
  syn.seq = 9000;
  syn.flags = wire::tcpflag::kSyn;
  syn.window = 65535;
  syn.options.mss = 1460;
  frame(tcp_frame(kClient, kPort, syn, kClientMac));  // a live (half-open) connection on ws
  control_out.clear();
  for (int i = 0; i < 4; ++i) {
    frame(tcp_frame(kClient, kSameWorkset, ack, kClientMac));
    advance(milliseconds(50));
    keepalive({{ws, 1}});
  }
  EXPECT_EQ(reported(), std::optional<std::uint16_t>(1));
}

// Back from a stall longer than T/2, a member reads a queue of segments the others may have
// answered meanwhile (its followers follow a newer term after T/2 of silence): for T it opens
// nothing and resets nothing it does not know (whole partition_heal seed 1154: it answered a SYN
// another member had answered, and reset the client). A shorter stall changes nothing.
TEST_F(ClusterNodeTest, AfterAStallOfMoreThanHalfTNothingUnknownIsAnsweredForT) {
  constexpr std::uint16_t kPort = 40001;
  const std::uint16_t ws = filter::workset_of(filter::FlowKey{kClient.value(), kPort, 0},
                                              filter::HashKind::xor_fold, filter::kDefaultMixSeed)
                               .value();
  follow({ws});
  keepalive({{ws, 1}});
  const auto answers = [this] {
    return count_out([](const Frame& f) {
      return is_tcp(f) &&
             (stack::test::parse_tcp(f).flags & (wire::tcpflag::kRst | wire::tcpflag::kSyn)) != 0;
    });
  };
  wire::TcpRepr syn;
  syn.seq = 9000;
  syn.flags = wire::tcpflag::kSyn;
  syn.window = 65535;
  syn.options.mss = 1460;
  wire::TcpRepr ack;
  ack.seq = 5000;
  ack.ack = 7000;
  ack.flags = wire::tcpflag::kAck;
  ack.window = 65535;
  constexpr std::uint16_t kSameWorkset = kPort ^ 0x401;  // xor-fold: the same workset

  node->on_stall(now, milliseconds(90));  // under T/2: nothing changes
  out.clear();
  frame(tcp_frame(kClient, kSameWorkset, ack, kClientMac));
  EXPECT_EQ(answers(), 1u);  // the RST

  now += milliseconds(150);
  node->on_stall(now, milliseconds(150));
  keepalive({{ws, 1}});
  out.clear();
  frame(tcp_frame(kClient, kPort, syn, kClientMac));
  frame(tcp_frame(kClient, kSameWorkset, ack, kClientMac));
  EXPECT_EQ(answers(), 0u);
  EXPECT_EQ(counter("stall_no_open"), 1u);
  EXPECT_EQ(counter("stall_no_reset"), 1u);
  for (int i = 0; i < 5; ++i) {
    advance(milliseconds(50));
    keepalive({{ws, 1}});
  }
  out.clear();
  frame(tcp_frame(kClient, kPort, syn, kClientMac));
  EXPECT_EQ(answers(), 1u);  // the SYN-ACK
}

// A follower stopped for a second wakes to its timer: it must not judge its master on its own
// absence (the watchdog would find a second of silence that was ours, not the master's).
TEST_F(ClusterNodeTest, AFollowerWakingFromAStallDoesNotSucceedItsMaster) {
  follow({5});
  keepalive({{5, 1}});
  advance(milliseconds(50));
  now += seconds(1);  // stopped: nothing ran
  node->on_stall(now, seconds(1));
  node->on_timer(now);  // nothing queued yet: the master's next keepalive is still on its way
  advance(milliseconds(20));
  keepalive({{5, 1}});
  advance(milliseconds(100));
  keepalive({{5, 1}});
  advance(milliseconds(100));
  EXPECT_EQ(node->member().role(), cluster::Role::follower);
  EXPECT_EQ(node->member().counters().successions, 0u);
  EXPECT_EQ(node->member().counters().master_lost, 0u);
}

}  // namespace
}  // namespace phalanx::node
