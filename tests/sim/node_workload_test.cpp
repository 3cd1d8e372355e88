// Workloads of the whole-member simulator (node_workload.hpp, the kinds in tcp_peer.hpp): each
// kind completes on a healthy cluster, its faults are caught, idle keepalive connections live
// through a crash elsewhere and die with their cause on record on the crashed member.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "sim/node_checkers.hpp"
#include "sim/node_scenarios.hpp"
#include "sim/node_workload.hpp"
#include "sim/node_world.hpp"
#include "sim/sim_content.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::sim {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::size_t kind(LoadKind k) {
  return static_cast<std::size_t>(k);
}

WorkloadMix mix(std::string_view name) {
  auto m = workload_from_string(name);
  EXPECT_TRUE(m.has_value()) << name;
  return m.value_or(WorkloadMix{});
}

// Three members converged, `peers` peers, every checker watching.
class Cluster {
 public:
  Cluster(std::uint64_t seed, std::size_t peers, unsigned replicas = 1)
      : w_(config(seed, peers, replicas), &checkers_) {
    w_.add_observer(&checkers_);
    for (std::size_t s = 0; s < w_.members(); ++s) {
      w_.start(s);
    }
    w_.run_until(milliseconds(1500));
  }

  NodeWorld& w() { return w_; }
  NodeCheckers& checkers() { return checkers_; }
  const PeerConnection& conn(std::size_t peer, std::size_t id) {
    return w_.peer(peer).connections().at(id);
  }
  std::optional<std::size_t> server(std::size_t peer, std::size_t id) {
    return checkers_.server(conn(peer, id));
  }
  bool run_to_end(Time limit) {
    const bool done = w_.run_until(limit, [&] {
                          for (std::size_t p = 0; p < w_.peers(); ++p) {
                            if (w_.peer(p).running() + w_.peer(p).queued() > 0) {
                              return false;
                            }
                          }
                          return true;
                        }).has_value();
    checkers_.finish(w_);
    return done;
  }
  std::string violations() const {
    std::string s;
    for (const auto& v : checkers_.violations()) {
      s += v + "\n";
    }
    return s;
  }

 private:
  static NodeWorldConfig config(std::uint64_t seed, std::size_t peers, unsigned replicas) {
    NodeWorldConfig c;
    c.seed = seed;
    c.peers = peers;
    c.replicas = replicas;
    return c;
  }

  NodeCheckers checkers_;
  NodeWorld w_;
};

// --- the mixes ----------------------------------------------------------------------------------

TEST(WorkloadMix, NamesAndDefault) {
  const WorkloadMix d = mix("default");
  EXPECT_EQ(d.downloads, 0.6);
  EXPECT_EQ(d.echoes, 0.4);
  EXPECT_EQ(d.idles + d.bursts, 0.0);
  const WorkloadMix m = mix("mixed");
  EXPECT_GT(m.downloads * m.echoes * m.idles * m.bursts, 0.0);
  EXPECT_EQ(mix("idle").idles, 1.0);
  EXPECT_EQ(mix("bursts").downloads, 0.0);
  EXPECT_FALSE(workload_from_string("everything").has_value());
}

// The default mix is the first simulator's load, drawn the same way (so that a seed replays the
// run it did before node_workload.cpp existed): the same draws, in the same order, as the loop
// that run_under_load held, written out here.
TEST(WorkloadMix, DefaultMixDrawsAsBefore) {
  NodeWorldConfig c;
  c.seed = 5;
  c.peers = 4;
  NodeWorld w(c, nullptr);
  const Prng before = w.scenario_prng();
  const Duration spread = seconds(4);
  const ScheduledWorkload s =
      schedule_workload(w, w.scenario_prng(), WorkloadMix{}, 50, milliseconds(1500), spread);
  Prng legacy = before;
  std::size_t downloads = 0;
  std::vector<std::uint64_t> lengths;
  for (std::size_t k = 0; k < 50; ++k) {
    (void)legacy.duration(Duration{0}, spread);
    if (legacy.chance(0.6)) {
      (void)legacy.uniform(c.file_sizes.size());
      ++downloads;
    } else {
      (void)legacy.next_u64();
      lengths.push_back(legacy.between(1000, 100000));
    }
  }
  EXPECT_EQ(legacy.next_u64(), w.scenario_prng().next_u64());
  EXPECT_EQ(s.downloads, downloads);
  EXPECT_EQ(s.echoes, lengths.size());
  EXPECT_EQ(s.connections, 50u);
  EXPECT_EQ(s.idles + s.bursts, 0u);
  // And the peers open what was drawn (no member is up: they only send SYNs).
  w.run_until(milliseconds(1500) + spread);
  std::size_t echoes = 0;
  std::vector<std::uint64_t> echo_lengths;
  for (std::size_t p = 0; p < w.peers(); ++p) {
    for (const PeerConnection& k : w.peer(p).connections()) {
      echoes += k.kind == StreamKind::echo ? 1 : 0;
      if (k.kind == StreamKind::echo) {
        echo_lengths.push_back(k.length);
      }
    }
  }
  EXPECT_EQ(echoes, lengths.size());
  std::sort(lengths.begin(), lengths.end());
  std::sort(echo_lengths.begin(), echo_lengths.end());
  EXPECT_EQ(echo_lengths, lengths);
}

// --- each kind alone, no fault: everything completes ---------------------------------------------

TEST(NodeWorkload, EachKindCompletesWithoutFault) {
  for (const std::string_view name : {"downloads", "echo", "idle", "bursts"}) {
    WholeOptions o;
    o.seed = 21;
    o.connections = 20;
    o.fault = WholeFault::none;
    o.workload = mix(name);
    const WholeReport r = run_under_load(o);
    EXPECT_TRUE(r.ok()) << name << ": " << format_report(r);
    EXPECT_GE(r.opened, 20u) << name;
    EXPECT_EQ(r.completed, r.opened) << name << ": " << format_report(r);
    EXPECT_GT(r.bytes_checked, 0u) << name;
  }
}

// An idle connection: its head and tail come back byte for byte, and in the quiet phase the
// peer's keepalive probes are each answered by the member serving it.
TEST(NodeWorkload, IdleConnectionKeepaliveProbesAreAnswered) {
  Cluster c(31, 1);
  c.w().with_peer(
      0, [&](TcpPeer& p) { p.open_idle(c.w().now(), echo_key(1), 700, seconds(6), 1900); });
  ASSERT_TRUE(c.run_to_end(seconds(30)));
  const PeerConnection& k = c.conn(0, 0);
  EXPECT_EQ(k.outcome, ConnOutcome::completed) << k.detail;
  EXPECT_EQ(k.received, 1900u);
  EXPECT_GE(k.ended - k.opened, seconds(6));
  // Probes every ~1 s (TCP_KEEPIDLE 1 s, restarted by each answer) over 6 s of quiet.
  EXPECT_GE(k.keepalive_probes, 5u);
  EXPECT_EQ(k.quiet_segments_in, k.keepalive_probes);
  EXPECT_EQ(c.checkers().violation_count(), 0u) << c.violations();
}

// Nobody answers the probes (every member is gone): keepalive times the connection out, and
// the cause is on record.
TEST(NodeWorkload, UnansweredKeepaliveTimesOutWithItsCause) {
  Cluster c(32, 1);
  c.w().with_peer(
      0, [&](TcpPeer& p) { p.open_idle(c.w().now(), echo_key(2), 300, seconds(30), 600); });
  c.w().run_until(c.w().now() + seconds(2));
  ASSERT_EQ(c.conn(0, 0).outcome, ConnOutcome::running);
  for (std::size_t s = 0; s < c.w().members(); ++s) {
    c.w().crash(s);
  }
  ASSERT_TRUE(c.run_to_end(seconds(60)));
  const PeerConnection& k = c.conn(0, 0);
  EXPECT_EQ(k.outcome, ConnOutcome::timed_out);
  EXPECT_NE(k.detail.find("in the quiet phase"), std::string::npos) << k.detail;
  // TCP_KEEPCNT probes, none answered, well before the application's own idle timeout.
  // (one before the crash, answered).
  EXPECT_EQ(k.keepalive_probes, 1u + 5u) << k.detail;
  EXPECT_EQ(k.quiet_segments_in, 1u) << k.detail;
  EXPECT_LT(k.ended - k.opened, seconds(10));
}

// A burst: short downloads one after another, each on its own connection from the next port,
// every byte checked; the server keeps each closed connection in TIME-WAIT.
TEST(NodeWorkload, BurstOpensOneConnectionAfterAnother) {
  Cluster c(33, 1);
  std::vector<ShortRequest> requests;
  for (std::size_t i = 0; i < 8; ++i) {
    requests.push_back(ShortRequest{file_path(i % 2), file_key(i % 2), i % 2 ? 20000u : 1000u});
  }
  c.w().with_peer(0, [&](TcpPeer& p) { p.open_burst(c.w().now(), requests); });
  EXPECT_EQ(c.w().peer(0).queued(), 7u);
  ASSERT_TRUE(c.run_to_end(seconds(30)));
  const auto& conns = c.w().peer(0).connections();
  ASSERT_EQ(conns.size(), 8u);
  std::set<std::uint16_t> ports;
  for (std::size_t i = 0; i < conns.size(); ++i) {
    EXPECT_EQ(conns[i].outcome, ConnOutcome::completed) << i << ": " << conns[i].detail;
    EXPECT_EQ(conns[i].burst, std::optional<std::size_t>(0));
    ports.insert(conns[i].local_port);
    if (i > 0) {
      EXPECT_GE(conns[i].opened, conns[i - 1].ended) << "one after another";
    }
  }
  EXPECT_EQ(ports.size(), 8u);
  EXPECT_EQ(c.w().peer(0).queued(), 0u);
  // The server closed first (Connection: close), so it holds each one in TIME-WAIT (60 s)
  // once the peer's FIN, sent as its last connection completed, has arrived.
  c.w().run_until(c.w().now() + milliseconds(100));
  std::size_t time_wait = 0;
  for (std::size_t s = 0; s < c.w().members(); ++s) {
    c.w().node(s)->stack().tcp_for_each([&](stack::Endpoint remote, tcp::State state) {
      time_wait += remote.addr == NodeWorld::peer_address(0) && ports.contains(remote.port) &&
                           state == tcp::State::time_wait
                       ? 1
                       : 0;
    });
  }
  EXPECT_EQ(time_wait, 8u);
  EXPECT_EQ(c.checkers().by_kind()[kind(LoadKind::short_download)].completed, 8u);
  EXPECT_EQ(c.checkers().violation_count(), 0u) << c.violations();
}

// A peer with three ephemeral ports runs ten short downloads: it takes each port again while
// the server still holds its previous connection in TIME-WAIT, and the server reopens it for
// the new SYN (RFC 6191, as Linux) — every download completes.
TEST(NodeWorkload, BurstReusesPortsInServersTimeWait) {
  NodeWorldConfig config;
  config.seed = 37;
  config.peers = 1;
  config.peer_port_range = {40000, 40002};
  NodeCheckers checkers;
  NodeWorld w(config, &checkers);
  w.add_observer(&checkers);
  for (std::size_t s = 0; s < w.members(); ++s) {
    w.start(s);
  }
  w.run_until(milliseconds(1500));
  std::vector<ShortRequest> requests(10, ShortRequest{file_path(0), file_key(0), 1000});
  w.with_peer(0, [&](TcpPeer& p) { p.open_burst(w.now(), requests); });
  ASSERT_TRUE(w.run_until(seconds(30), [&] {
                 return w.peer(0).running() + w.peer(0).queued() == 0;
               }).has_value());
  checkers.finish(w);
  std::set<std::uint16_t> ports;
  for (const PeerConnection& k : w.peer(0).connections()) {
    EXPECT_EQ(k.outcome, ConnOutcome::completed) << k.local_port << ": " << k.detail;
    ports.insert(k.local_port);
  }
  EXPECT_EQ(ports, (std::set<std::uint16_t>{40000, 40001, 40002}));
  std::uint64_t reused = 0;
  for (std::size_t s = 0; s < w.members(); ++s) {
    reused += w.node(s)->stack().counters().count(stack::Counter::tcp_time_wait_reused);
  }
  EXPECT_EQ(reused, 7u);
  EXPECT_EQ(checkers.violation_count(), 0u);
}

// Peers with 16 ephemeral ports each take them again during the run, and a follower crashes:
// each lost connection is told apart by the member that served it, not by the latest
// connection from its port (before: connections lost on the crashed member were counted as
// lost on the member that served the port's next connection, a false violation). Replication
// off, so that the crash loses connections to account for.
TEST(NodeWorkload, LossAccountingFollowsConnectionsNotPorts) {
  WholeOptions o;
  o.seed = 0;
  o.workload = mix("mixed");
  o.tweak = [](NodeWorldConfig& c) {
    c.peer_port_range = {40000, 40015};
    c.replicas = 0;
  };
  const WholeReport r = run_under_load(o);
  EXPECT_TRUE(r.ok()) << format_report(r);
  EXPECT_GT(r.lost, 0u);
  EXPECT_EQ(r.lost, r.lost_expected) << format_report(r);
}

// The master moves a workset whose connection its owner has just put in TIME-WAIT (not a live
// session for rebalancing), and hands the joiner the peer's FIN it held during the move. The
// joiner has no such connection; it answered with an RST (the peer's connection had ended well,
// yet a member reset it) until relayed or replayed frames for no connection went unanswered
// for a while after a workset is gained (ClusterNode::may_reset).
TEST(NodeWorkload, AHeldFinReplayedToTheNewOwnerIsNotAnsweredWithAReset) {
  WholeOptions o;
  o.seed = 32;
  o.fault = WholeFault::join;
  o.workload = mix("mixed");
  o.peer_port_range = std::pair<std::uint16_t, std::uint16_t>{40000, 40015};
  const WholeReport r = run_under_load(o);
  EXPECT_TRUE(r.ok()) << format_report(r);
  EXPECT_EQ(r.completed, r.opened) << format_report(r);
}

// Ports come from Linux's ephemeral range and wrap inside it.
TEST(TcpPeerPorts, WrapInsideTheEphemeralRange) {
  PeerConfig pc;
  pc.address = NodeWorld::peer_address(0);
  pc.mac = NodeWorld::peer_mac(0);
  pc.cluster_ip = NodeWorld::kClusterIp;
  pc.first_port = 60998;
  TcpPeer p(pc, nullptr);
  for (int i = 0; i < 3; ++i) {
    p.open_echo(Time{0}, echo_key(1), 10);
  }
  EXPECT_EQ(p.connections()[0].local_port, 60998);
  EXPECT_EQ(p.connections()[1].local_port, 60999);
  EXPECT_EQ(p.connections()[2].local_port, 32768);
}

// --- faults are caught --------------------------------------------------------------------------

// Members that serve their files with a byte flipped: a burst's short downloads catch it.
TEST(NodeWorkload, CorruptByteInShortDownloadIsCaught) {
  WholeOptions o;
  o.seed = 3;
  o.connections = 4;
  o.fault = WholeFault::none;
  o.workload = mix("bursts");
  o.tweak = [](NodeWorldConfig& c) { c.corrupt_file_byte = 555; };
  const WholeReport r = run_under_load(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.violations[0].find("byte at offset 555"), std::string::npos) << format_report(r);
}

// A member that resets a connection it serves while the peer still runs it is caught (here: the
// RST is forged after the SYN-ACK, as a member would send one for an idle connection).
TEST(NodeWorkload, ServerResettingItsOwnLiveConnectionIsCaught) {
  Cluster c(34, 1);
  c.w().with_peer(0,
                  [&](TcpPeer& p) { p.open_idle(c.w().now(), echo_key(3), 300, seconds(5), 600); });
  c.w().run_until(c.w().now() + seconds(1));
  const auto server = c.server(0, 0);
  ASSERT_TRUE(server.has_value());
  wire::TcpRepr seg;
  seg.src_port = 7;
  seg.dst_port = c.conn(0, 0).local_port;
  seg.flags = wire::tcpflag::kRst;
  std::vector<std::byte> f(wire::EthernetView::kHeaderSize + wire::Ipv4View::kMinHeaderSize +
                           seg.size());
  wire::EthernetRepr{NodeWorld::peer_mac(0), NodeWorld::member_mac(*server), std::nullopt,
                     wire::ethertype::kIpv4}
      .emit(f);
  wire::Ipv4Repr ip;
  ip.src = NodeWorld::kClusterIp;
  ip.dst = NodeWorld::peer_address(0);
  ip.protocol = wire::ipproto::kTcp;
  ip.payload_len = static_cast<std::uint16_t>(seg.size());
  ip.emit(wire::MutBytes(f).subspan(wire::EthernetView::kHeaderSize));
  seg.emit(
      wire::MutBytes(f).subspan(wire::EthernetView::kHeaderSize + wire::Ipv4View::kMinHeaderSize),
      ip.src, ip.dst);
  c.checkers().on_member_frame(c.w(), *server, f);
  ASSERT_EQ(c.checkers().violation_count(), 1u) << c.violations();
  EXPECT_NE(c.checkers().violations()[0].find("its own live connection"), std::string::npos)
      << c.violations();
}

// --- crashes
// --------------------------------------------------------------------------------------

// Idle connections spread over the members; a follower serving some crashes in their quiet
// phase. Without replication its own end reset (the worksets' new owner answers a probe) with
// the cause on record; with it (issue 11) they live on at the backup, which answers the probes
// and echoes the tail. Every other one lives through the crash and completes.
void idle_connections_across_a_follower_crash(unsigned replicas);

TEST(NodeWorkload, IdleConnectionsSurviveFollowerCrashElsewhere) {
  for (unsigned replicas : {0u, 1u}) {
    SCOPED_TRACE(replicas);
    idle_connections_across_a_follower_crash(replicas);
  }
}

void idle_connections_across_a_follower_crash(unsigned replicas) {
  Cluster c(35, 6, replicas);
  for (std::size_t p = 0; p < 6; ++p) {
    c.w().with_peer(p, [&](TcpPeer& peer) {
      peer.open_idle(c.w().now(), echo_key(10 + p), 500, seconds(5), 1500);
    });
  }
  c.w().run_until(c.w().now() + seconds(1));
  const auto master = c.w().master();
  ASSERT_TRUE(master.has_value());
  std::optional<std::size_t> victim;
  for (std::size_t p = 0; p < 6 && !victim; ++p) {
    if (c.server(p, 0) && *c.server(p, 0) != *master) {
      victim = c.server(p, 0);
    }
  }
  ASSERT_TRUE(victim.has_value()) << "no idle connection on a follower";
  const Time crash = c.w().now();
  c.w().crash(*victim);
  ASSERT_TRUE(c.run_to_end(seconds(40)));
  std::size_t survived = 0;
  std::size_t lost = 0;
  for (std::size_t p = 0; p < 6; ++p) {
    const PeerConnection& k = c.conn(p, 0);
    if (c.server(p, 0) == victim && replicas == 0) {
      ++lost;
      EXPECT_EQ(k.outcome, ConnOutcome::reset) << p << ": " << k.detail;
      EXPECT_NE(k.detail.find("in the quiet phase"), std::string::npos) << k.detail;
    } else {
      ++survived;
      EXPECT_EQ(k.outcome, ConnOutcome::completed) << p << ": " << k.detail;
      EXPECT_GT(k.ended, crash + seconds(3));
      EXPECT_GT(k.quiet_segments_in, 0u);
    }
  }
  EXPECT_EQ(lost > 0, replicas == 0);
  EXPECT_GT(survived, 0u);
  EXPECT_EQ(c.checkers().violation_count(), 0u) << c.violations();
}

// An echo stream long enough to span the crash of a follower that does not serve it: it
// completes, every byte checked, both directions in flight across the crash.
TEST(NodeWorkload, LongEchoSpansFollowerCrash) {
  Cluster c(36, 3);
  for (std::size_t p = 0; p < 3; ++p) {
    c.w().with_peer(p,
                    [&](TcpPeer& peer) { peer.open_echo(c.w().now(), echo_key(20 + p), 200000); });
  }
  c.w().run_until(c.w().now() + seconds(1));
  const auto master = c.w().master();
  ASSERT_TRUE(master.has_value());
  // A follower that serves none of them, if there is one; else the follower serving the fewest.
  std::optional<std::size_t> victim;
  std::size_t fewest = 4;
  for (std::size_t s = 0; s < c.w().members(); ++s) {
    std::size_t serves = 0;
    for (std::size_t p = 0; p < 3; ++p) {
      serves += c.server(p, 0) == s ? 1 : 0;
    }
    if (s != *master && serves < fewest) {
      fewest = serves;
      victim = s;
    }
  }
  ASSERT_TRUE(victim.has_value());
  const Time crash = c.w().now();
  c.w().crash(*victim);
  ASSERT_TRUE(c.run_to_end(seconds(40)));
  std::size_t spanned = 0;
  for (std::size_t p = 0; p < 3; ++p) {
    const PeerConnection& k = c.conn(p, 0);
    if (c.server(p, 0) != victim) {
      EXPECT_EQ(k.outcome, ConnOutcome::completed) << p << ": " << k.detail;
      EXPECT_EQ(k.received, 200000u);
      spanned += k.opened < crash && k.ended > crash + seconds(1) ? 1 : 0;
    }
  }
  EXPECT_GT(spanned, 0u);
  EXPECT_EQ(c.checkers().violation_count(), 0u) << c.violations();
}

// The scenario with idle connections only and a follower crash, replication off: the crashed
// member's idle connections are the only losses, and the accounting (lost, lost on the victim,
// by kind) agrees. With replication on, none is lost.
TEST(NodeWorkload, IdleWorkloadFollowerCrashAccounting) {
  std::size_t lost_expected = 0;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    WholeOptions o;
    o.seed = seed;
    o.connections = 30;
    o.workload = mix("idle");
    WholeOptions on = o;
    const WholeReport replicated = run_under_load(on);
    EXPECT_TRUE(replicated.ok()) << format_report(replicated);
    EXPECT_EQ(replicated.lost, 0u) << format_report(replicated);
    o.tweak = [](NodeWorldConfig& c) { c.replicas = 0; };
    const WholeReport r = run_under_load(o);
    EXPECT_TRUE(r.ok()) << format_report(r);
    EXPECT_EQ(r.lost, r.lost_expected) << format_report(r);
    EXPECT_EQ(r.by_kind[kind(LoadKind::idle)].opened, r.opened);
    EXPECT_EQ(r.by_kind[kind(LoadKind::idle)].lost, r.lost);
    EXPECT_EQ(r.by_kind[kind(LoadKind::idle)].completed, r.completed);
    EXPECT_GT(r.completed, 0u);
    lost_expected += r.lost_expected;
  }
  EXPECT_GT(lost_expected, 0u);
}

// All four kinds together under each fault, over a few seeds.
TEST(NodeWorkload, MixedWorkloadUnderEachFault) {
  for (const WholeFault fault :
       {WholeFault::none, WholeFault::follower, WholeFault::master, WholeFault::join}) {
    for (std::uint64_t seed = 1; seed <= 2; ++seed) {
      WholeOptions o;
      o.seed = seed;
      o.connections = 20;
      o.fault = fault;
      o.workload = mix("mixed");
      const WholeReport r = run_under_load(o);
      EXPECT_TRUE(r.ok()) << format_report(r);
      EXPECT_EQ(r.lost, r.lost_expected) << format_report(r);
      for (std::size_t k = 0; k < kLoadKinds; ++k) {
        EXPECT_GT(r.by_kind[k].opened, 0u) << to_string(static_cast<LoadKind>(k));
      }
      if (fault == WholeFault::none || fault == WholeFault::join) {
        EXPECT_EQ(r.completed, r.opened) << format_report(r);
      }
    }
  }
}

}  // namespace
}  // namespace phalanx::sim
