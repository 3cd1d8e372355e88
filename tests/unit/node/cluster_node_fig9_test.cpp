// FIG. 9 as tables: what a ClusterNode does with one frame, per distribution mode (DESIGN §3).
// Each row: the node's role, who owns the workset of the frame's flow, the frame (built below),
// and the verdict: the counter that must count it and the frame that must leave (or nothing).
//
// The rest of the cluster is faked with control datagrams built by the cluster codec: as a
// follower the node follows kMaster, which assigns it kMine; as master (alone first, then with
// kFollower, which joins claiming kTheirs) it assigns kMine to itself on the first packet, and
// a workset nobody owns to kFollower (the least loaded then: a tie, and the lower address).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/messages.hpp"
#include "node/cluster_node.hpp"
#include "stack/harness.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::node {
namespace {

using filter::DistributionMode;
using stack::test::bytes;
using stack::test::Frame;
using std::chrono::milliseconds;
using wire::EthernetView;
using wire::Ipv4Addr;
using wire::MacAddr;

constexpr Ipv4Addr kClusterIp{198, 18, 0, 1};
constexpr Ipv4Addr kFollower{198, 18, 0, 5};  // below kSelf: it wins ties
constexpr Ipv4Addr kSelf{198, 18, 0, 11};
constexpr Ipv4Addr kMaster{198, 18, 0, 12};
constexpr Ipv4Addr kClient{198, 18, 0, 101};
constexpr Ipv4Addr kPrimer{198, 18, 0, 102};  // another client, to give kMine to the master
constexpr Ipv4Addr kElsewhere{198, 18, 0, 200};
constexpr Ipv4Addr kGroup{239, 255, 80, 72};
constexpr MacAddr kSelfMac{{0x02, 0x50, 198, 18, 0, 11}};
constexpr MacAddr kMasterMac{{0x02, 0x50, 198, 18, 0, 12}};
constexpr MacAddr kFollowerMac{{0x02, 0x50, 198, 18, 0, 5}};
constexpr MacAddr kClientMac{{0x02, 0x50, 198, 18, 0, 101}};
constexpr MacAddr kGroupMac{{0x01, 0x00, 0x5e, 0x7f, 0x50, 0x48}};
constexpr std::uint16_t kControlPort = 8472;
constexpr std::uint16_t kEchoPort = 7;

// Client ports whose worksets are owned as the names say (xor fold: a port's low bits move the
// workset, so these three land in three different ones).
constexpr std::uint16_t kMinePort = 40001;
constexpr std::uint16_t kTheirsPort = 40002;
constexpr std::uint16_t kUnassignedPort = 40004;

filter::WorksetId workset(Ipv4Addr client, std::uint16_t port) {
  return filter::workset_of(filter::FlowKey{client.value(), port, 0}, filter::HashKind::xor_fold,
                            filter::kDefaultMixSeed);
}

// --- the frame builder -------------------------------------------------------------------------

// Where a frame to the cluster IP is addressed on the LAN: the cluster MAC, or (forwarding) the
// master's own MAC.
MacAddr lan_dst(DistributionMode mode, MacAddr master_mac) {
  return mode == DistributionMode::forwarding ? master_mac : default_cluster_mac(kClusterIp, mode);
}

Frame tcp_syn(MacAddr dst_mac, MacAddr src_mac, Ipv4Addr src, std::uint16_t sport, Ipv4Addr dst) {
  wire::TcpRepr syn;
  syn.src_port = sport;
  syn.dst_port = kEchoPort;
  syn.seq = 1000;
  syn.flags = wire::tcpflag::kSyn;
  syn.window = 65535;
  const Frame t = stack::test::tcp(src, dst, syn);
  stack::test::Ip h;
  h.src = src;
  h.dst = dst;
  h.protocol = wire::ipproto::kTcp;
  return stack::test::ethernet(dst_mac, src_mac, wire::ethertype::kIpv4,
                               bytes(stack::test::ipv4(h, bytes(t))));
}

Frame udp_to(MacAddr dst_mac, MacAddr src_mac, Ipv4Addr src, std::uint16_t sport, Ipv4Addr dst,
             std::uint16_t dport, wire::Bytes payload) {
  const Frame u = stack::test::udp(src, sport, dst, dport, payload);
  stack::test::Ip h;
  h.src = src;
  h.dst = dst;
  h.protocol = wire::ipproto::kUdp;
  return stack::test::ethernet(dst_mac, src_mac, wire::ethertype::kIpv4,
                               bytes(stack::test::ipv4(h, bytes(u))));
}

Frame who_has_cluster_ip() {
  return stack::test::arp_frame(wire::ArpRepr::request(kClientMac, kClient, kClusterIp));
}

// --- the fixture -------------------------------------------------------------------------------

enum class Role : std::uint8_t { master, follower };

// What arrives.
enum class Input : std::uint8_t {
  syn_mine,             // a SYN from kClient to the cluster IP, workset owned by the node
  syn_theirs,           // ... owned by another member
  syn_unassigned,       // ... owned by nobody yet
  syn_relayed_known,    // a SYN of a workset of ours, relayed by the master (forwarding mode),
                        // from a client whose MAC the node learned from its ARP broadcast
  syn_relayed_unknown,  // ... from a client the node never saw
  syn_to_member,        // a SYN to the node's own address (the kernel's)
  syn_elsewhere,        // a SYN to an address nobody here serves
  arp_who_has_cluster,  // an ARP request for the cluster IP
};

// What must leave (frames only; control datagrams are not looked at).
enum class Output : std::uint8_t {
  nothing,
  syn_ack,           // to the client's MAC, from our own MAC and the cluster IP
  arp_reply,         // the cluster IP is at the served MAC, from our own MAC
  relayed_to_owner,  // the frame as it came, to kFollower's MAC, from our own MAC
  who_has_client,    // an ARP request for the client, from the member's own address
};

struct Case {
  std::string_view what;
  Role role;
  Input input;
  std::string_view counter;  // grows by exactly one
  Output output;
};

class NodeFixture : public testing::Test {
 protected:
  DistributionMode mode() const { return mode_; }

  void make(DistributionMode mode) {
    mode_ = mode;
    NodeConfig c;
    c.member.interface = "eth0";
    c.member.address = kSelf;
    c.member.prefix = 24;
    c.echo.enabled = true;
    c.echo.ports = {kEchoPort};
    ClusterSection s;
    s.name = "unit";
    s.ip = kClusterIp;
    s.mode = mode;
    s.mac = default_cluster_mac(kClusterIp, s.mode);
    s.control_port = kControlPort;
    c.cluster = s;
    ClusterEnvironment env;
    env.interface_mac = kSelfMac;
    env.incarnation = 7;
    auto n = ClusterNode::create(
        c, env, [](std::optional<Ipv4Addr>, wire::Bytes) {}, nullptr);
    ASSERT_TRUE(n.ok()) << n.error().message;
    node_ = std::move(*n);
  }

  // Moves time forward, running the node's timers when due.
  void advance(Time d) {
    const Time end = now_ + d;
    while (now_ < end) {
      now_ = std::clamp(node_->next_deadline(), now_ + milliseconds(1), end);
      node_->on_timer(now_);
      drain();
    }
  }

  void drain() {
    node_->drain([this](wire::Bytes f, stack::TxMeta) { out_.emplace_back(f.begin(), f.end()); });
  }

  void frame(const Frame& f) {
    node_->on_frame(now_, bytes(f), FrameMeta{});
    drain();
  }

  // A control message, seen by the packet ring (where member MACs are learned) and then by the
  // control socket.
  void control(Ipv4Addr sender, MacAddr mac, cluster::Body body, cluster::Epoch epoch) {
    cluster::Message m;
    m.cluster_id = cluster::cluster_id_of("unit");
    m.sender = sender;
    m.epoch = epoch;
    m.body = std::move(body);
    const auto datagram = cluster::encode(m, cluster::NullAuthenticator{});
    frame(udp_to(kGroupMac, mac, sender, kControlPort, kGroup, kControlPort, datagram));
    node_->on_control(now_, datagram);
    drain();
  }

  // Master alone first (a lone member offers, then takes over), then kFollower joins claiming
  // the workset of kTheirsPort; the first packet of kMine's workset (from another client, same
  // workset) makes the master assign it to the least loaded member: itself.
  void become_master() {
    role_ = Role::master;
    node_->start(now_);
    advance(milliseconds(300));
    ASSERT_EQ(node_->member().role(), cluster::Role::master);
    cluster::JoinRequest join;
    join.incarnation = 99;
    join.worksets = {workset(kClient, kTheirsPort).value()};
    control(kFollower, kFollowerMac, join, 0);
    ASSERT_EQ(node_->member().members().size(), 2u);
    ASSERT_EQ(node_->member().owner_address(workset(kClient, kTheirsPort)), kFollower);
    const std::vector<std::byte> hello(4, std::byte{'h'});
    frame(udp_to(lan_dst(mode(), kSelfMac), kClientMac, kPrimer, primer_port(), kClusterIp,
                 kEchoPort, hello));
    ASSERT_EQ(node_->member().owner_address(workset(kClient, kMinePort)), kSelf);
  }

  // A port of kPrimer whose workset is kMine's.
  static std::uint16_t primer_port() {
    for (std::uint32_t p = 1024; p < 65536; ++p) {
      if (workset(kPrimer, static_cast<std::uint16_t>(p)) == workset(kClient, kMinePort)) {
        return static_cast<std::uint16_t>(p);
      }
    }
    std::abort();
  }

  // Follower of kMaster, which owns kTheirs and assigns kMine to the node.
  void follow() {
    role_ = Role::follower;
    node_->start(now_);
    advance(milliseconds(2));
    control(kMaster, kMasterMac, cluster::JoinAck{kSelf, 0}, 1);
    ASSERT_EQ(node_->member().role(), cluster::Role::follower);
    cluster::MasterKeepalive ka;
    ka.sequence = 1;
    ka.members = {kMaster, kSelf};
    ka.owners.assign(filter::kWorksetCount, cluster::kUnassigned);
    ka.owners[workset(kClient, kTheirsPort).value()] = 0;
    control(kMaster, kMasterMac, ka, 1);
    control(kMaster, kMasterMac, cluster::WorkAssign{kSelf, {workset(kClient, kMinePort).value()}},
            1);
    ASSERT_EQ(node_->member().owner_address(workset(kClient, kMinePort)), kSelf);
    ASSERT_EQ(node_->member().owner_address(workset(kClient, kTheirsPort)), kMaster);
  }

  Frame input_frame(Input in) const {
    const MacAddr master_mac = role_ == Role::master ? kSelfMac : kMasterMac;
    const MacAddr dst = lan_dst(mode(), master_mac);
    switch (in) {
      case Input::syn_mine:
        return tcp_syn(dst, kClientMac, kClient, kMinePort, kClusterIp);
      case Input::syn_theirs:
        return tcp_syn(dst, kClientMac, kClient, kTheirsPort, kClusterIp);
      case Input::syn_unassigned:
        return tcp_syn(dst, kClientMac, kClient, kUnassignedPort, kClusterIp);
      case Input::syn_relayed_known:
      case Input::syn_relayed_unknown:
        return tcp_syn(kSelfMac, kMasterMac, kClient, kMinePort, kClusterIp);
      case Input::syn_to_member:
        return tcp_syn(kSelfMac, kClientMac, kClient, kMinePort, kSelf);
      case Input::syn_elsewhere:
        return tcp_syn(dst, kClientMac, kClient, kMinePort, kElsewhere);
      case Input::arp_who_has_cluster:
        return who_has_cluster_ip();
    }
    std::abort();
  }

  std::uint64_t counter(std::string_view name) const {
    for (const auto& c : node_->counter_list()) {
      if (c.name == name) {
        return c.value;
      }
    }
    ADD_FAILURE() << "no counter " << name;
    return 0;
  }

  void expect_output(Output want, const Frame& in) const {
    if (want == Output::nothing) {
      EXPECT_TRUE(out_.empty()) << out_.size() << " frames out";
      return;
    }
    ASSERT_EQ(out_.size(), 1u);
    const Frame& f = out_.front();
    const wire::Bytes b = bytes(f);
    EXPECT_EQ(MacAddr::read(b, EthernetView::kSrc), kSelfMac)
        << "a member sends from its own MAC, never the cluster's or the client's";
    switch (want) {
      case Output::nothing:
        break;
      case Output::syn_ack: {
        EXPECT_EQ(MacAddr::read(b, EthernetView::kDst), kClientMac);
        const auto p = stack::test::parse(f);
        ASSERT_TRUE(p.ip);
        EXPECT_EQ(p.ip->src, kClusterIp);
        EXPECT_EQ(p.ip->dst, kClient);
        const wire::TcpRepr t = stack::test::parse_tcp(f);
        EXPECT_EQ(t.flags, wire::tcpflag::kSyn | wire::tcpflag::kAck);
        EXPECT_EQ(t.ack, 1001u);
        break;
      }
      case Output::arp_reply: {
        EXPECT_EQ(MacAddr::read(b, EthernetView::kDst), kClientMac);
        auto a = wire::ArpRepr::parse(b.subspan(EthernetView::kHeaderSize));
        ASSERT_TRUE(a);
        EXPECT_EQ(a->operation, wire::ArpOperation::reply);
        EXPECT_EQ(a->sender_ip, kClusterIp);
        // Unicast/multicast: the shared cluster MAC; forwarding: the master's own.
        EXPECT_EQ(a->sender_mac, mode() == DistributionMode::forwarding
                                     ? kSelfMac
                                     : default_cluster_mac(kClusterIp, mode()));
        break;
      }
      case Output::who_has_client: {
        EXPECT_TRUE(MacAddr::read(b, EthernetView::kDst).is_broadcast());
        auto a = wire::ArpRepr::parse(b.subspan(EthernetView::kHeaderSize));
        ASSERT_TRUE(a);
        EXPECT_EQ(a->operation, wire::ArpOperation::request);
        EXPECT_EQ(a->sender_ip, kSelf) << "never from the cluster IP: peers would rebind it";
        EXPECT_EQ(a->target_ip, kClient);
        break;
      }
      case Output::relayed_to_owner:
        EXPECT_EQ(MacAddr::read(b, EthernetView::kDst), kFollowerMac);
        ASSERT_EQ(f.size(), in.size());
        EXPECT_TRUE(std::equal(f.begin() + EthernetView::kHeaderSize, f.end(),
                               in.begin() + EthernetView::kHeaderSize))
            << "the relayed frame changed beyond its Ethernet addresses";
        break;
    }
  }

  DistributionMode mode_ = DistributionMode::multicast;
  Role role_ = Role::follower;
  std::unique_ptr<ClusterNode> node_;
  Time now_ = std::chrono::seconds(1);
  std::vector<Frame> out_;
};

class Fig9 : public NodeFixture,
             public testing::WithParamInterface<std::tuple<DistributionMode, Case>> {
 protected:
  void SetUp() override { make(std::get<0>(GetParam())); }
  const Case& row() const { return std::get<1>(GetParam()); }
};

TEST_P(Fig9, Verdict) {
  const Case& c = row();
  SCOPED_TRACE(std::string(c.what));
  if (c.role == Role::master) {
    ASSERT_NO_FATAL_FAILURE(become_master());
  } else {
    ASSERT_NO_FATAL_FAILURE(follow());
  }
  if (c.input == Input::syn_relayed_known) {
    frame(who_has_cluster_ip());  // broadcast: every member learns the client's MAC from it
  }
  const Frame in = input_frame(c.input);
  const std::uint64_t before = counter(c.counter);
  out_.clear();
  frame(in);
  EXPECT_EQ(counter(c.counter), before + 1) << c.counter;
  expect_output(c.output, in);
}

// FIG. 9 940-943, in every mode: a frame the master held for a workset it assigned to another
// member leaves for that member once it acknowledges, to its MAC and from ours.
class Fig9Held : public NodeFixture, public testing::WithParamInterface<DistributionMode> {
 protected:
  void SetUp() override { make(GetParam()); }
};

TEST_P(Fig9Held, HeldFrameIsRelayedToItsOwnerOnceAcknowledged) {
  ASSERT_NO_FATAL_FAILURE(become_master());
  const Frame in = input_frame(Input::syn_unassigned);
  out_.clear();
  frame(in);
  const filter::WorksetId ws = workset(kClient, kUnassignedPort);
  ASSERT_EQ(node_->member().owner_address(ws), kFollower);
  EXPECT_TRUE(out_.empty()) << "held until kFollower acknowledges";
  control(kFollower, kFollowerMac, cluster::WorkAssignAck{{ws.value()}}, node_->member().epoch());
  EXPECT_EQ(counter("forwarded"), 1u);
  expect_output(Output::relayed_to_owner, in);
}

INSTANTIATE_TEST_SUITE_P(AllModes, Fig9Held,
                         testing::Values(DistributionMode::multicast, DistributionMode::unicast,
                                         DistributionMode::forwarding));

// Unicast and multicast: every member sees every frame to the cluster IP; the owner answers,
// the others drop; the master assigns what nobody owns.
const Case kSharedMacCases[] = {
    {"master: ARP for the cluster IP is answered", Role::master, Input::arp_who_has_cluster,
     "arp_frames", Output::arp_reply},
    {"follower: ARP for the cluster IP is left to the master", Role::follower,
     Input::arp_who_has_cluster, "arp_frames", Output::nothing},
    {"master: a workset of mine is answered", Role::master, Input::syn_mine, "mine",
     Output::syn_ack},
    {"follower: a workset of mine is answered", Role::follower, Input::syn_mine, "mine",
     Output::syn_ack},
    {"master: a workset of another member is dropped", Role::master, Input::syn_theirs,
     "drop.not_mine", Output::nothing},
    {"follower: a workset of another member is dropped", Role::follower, Input::syn_theirs,
     "drop.not_mine", Output::nothing},
    {"follower: an unassigned workset is the master's business", Role::follower,
     Input::syn_unassigned, "drop.not_mine", Output::nothing},
    {"master: an unassigned workset is assigned to the least loaded member and held", Role::master,
     Input::syn_unassigned, "assign_requests", Output::nothing},
    {"master: the member's own address is the kernel's", Role::master, Input::syn_to_member,
     "kernel_frames", Output::nothing},
    {"follower: another address is the kernel's", Role::follower, Input::syn_elsewhere,
     "kernel_frames", Output::nothing},
};

// Forwarding: ARP binds the cluster IP to the master's MAC; the master relays each frame to its
// owner, with our MAC as source; the owner puts the client's MAC back before its stack sees it.
const Case kForwardingCases[] = {
    {"master: ARP for the cluster IP is answered with its own MAC", Role::master,
     Input::arp_who_has_cluster, "arp_frames", Output::arp_reply},
    {"follower: ARP for the cluster IP is left to the master", Role::follower,
     Input::arp_who_has_cluster, "arp_frames", Output::nothing},
    {"master: a workset of mine is answered", Role::master, Input::syn_mine, "mine",
     Output::syn_ack},
    {"master: a workset of another member is relayed to it", Role::master, Input::syn_theirs,
     "forwarded", Output::relayed_to_owner},
    {"master: an unassigned workset is assigned to the least loaded member and held", Role::master,
     Input::syn_unassigned, "assign_requests", Output::nothing},
    {"follower: a relayed frame of mine is answered straight to the client", Role::follower,
     Input::syn_relayed_known, "relayed_in", Output::syn_ack},
    {"follower: a relayed frame of mine passes the filter as mine", Role::follower,
     Input::syn_relayed_known, "mine", Output::syn_ack},
    {"follower: a relayed frame of an unknown client waits while the node asks for it",
     Role::follower, Input::syn_relayed_unknown, "neighbour_requests", Output::who_has_client},
    {"master: another address is the kernel's", Role::master, Input::syn_elsewhere, "kernel_frames",
     Output::nothing},
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.what;
}

std::string name(const testing::TestParamInfo<Fig9::ParamType>& info) {
  std::string n(filter::to_string(std::get<0>(info.param)));
  n += "_" + std::to_string(info.index);
  return n;
}

INSTANTIATE_TEST_SUITE_P(Multicast, Fig9,
                         testing::Combine(testing::Values(DistributionMode::multicast),
                                          testing::ValuesIn(kSharedMacCases)),
                         name);
INSTANTIATE_TEST_SUITE_P(Unicast, Fig9,
                         testing::Combine(testing::Values(DistributionMode::unicast),
                                          testing::ValuesIn(kSharedMacCases)),
                         name);
INSTANTIATE_TEST_SUITE_P(Forwarding, Fig9,
                         testing::Combine(testing::Values(DistributionMode::forwarding),
                                          testing::ValuesIn(kForwardingCases)),
                         name);

}  // namespace
}  // namespace phalanx::node
