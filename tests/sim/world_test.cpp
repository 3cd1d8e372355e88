// The world's own machinery (clock, segment, faults, clients) and the checkers, apart from any
// scenario.
#include "sim/world.hpp"

#include <gtest/gtest.h>

#include "cluster/messages.hpp"
#include "filter/workset_table.hpp"
#include "sim/checkers.hpp"

namespace phalanx::sim {
namespace {

using namespace std::chrono_literals;

WorldConfig quiet(std::size_t slots) {
  WorldConfig c;
  c.slots = slots;
  c.clients.enabled = false;
  return c;
}

// Counts every datagram sent on the segment.
struct Tap final : Observer {
  void on_datagram(const World&, std::size_t, std::uint64_t, wire::Bytes) override { ++sent; }
  void after_step(const World&, const StepInfo&) override { ++steps; }
  int sent = 0;
  int steps = 0;
};

TEST(ClientFrame, IsClusterTrafficForTheFilter) {
  filter::WorksetTableConfig tc;
  tc.cluster_ip = kClusterIp;
  tc.self = filter::MemberId{0};
  filter::WorksetTable table(tc);
  for (std::uint8_t proto : {wire::ipproto::kTcp, wire::ipproto::kUdp}) {
    const auto frame = client_frame(Ipv4Addr{198, 18, 100, 7}, 40000, 80, proto);
    const filter::Verdict v = table.classify(frame);
    EXPECT_EQ(v.kind, filter::VerdictKind::not_mine);
    EXPECT_EQ(v.workset,
              table.workset_for(filter::FlowKey{Ipv4Addr{198, 18, 100, 7}.value(), 40000, 0}));
  }
}

TEST(World, ALoneMemberBecomesMasterAfterJoinTimeoutAndOfferWait) {
  World w(quiet(1));
  w.start(0);
  const auto& t = w.config().timings;
  w.run_until(t.join_timeout + t.master_offer_wait - 1ms);
  EXPECT_NE(w.member(0)->role(), cluster::Role::master);
  w.run_until(t.join_timeout + t.master_offer_wait + 1ms);
  EXPECT_EQ(w.member(0)->role(), cluster::Role::master);
  ASSERT_FALSE(w.arp_announcements().empty());
  EXPECT_EQ(w.arp_announcements().front().slot, 0u);
}

TEST(World, TotalLossKeepsEveryoneApart) {
  WorldConfig c = quiet(3);
  c.network.loss = 1.0;
  World w(c);
  for (std::size_t i = 0; i < 3; ++i) {
    w.start(i);
  }
  w.run_until(1s);
  EXPECT_EQ(w.counters().control_delivered, 0u);
  EXPECT_GT(w.counters().control_lost, 0u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(w.member(i)->role(), cluster::Role::master);  // each alone
  }
}

TEST(World, PartitionBlocksAndHealReunites) {
  World w(quiet(4));
  for (std::size_t i = 0; i < 4; ++i) {
    w.start(i);
  }
  w.run_until(1s);
  w.partition({0, 1});
  EXPECT_FALSE(w.reachable(0, 2));
  EXPECT_TRUE(w.reachable(0, 1));
  w.run_until(3s);
  EXPECT_GT(w.counters().control_partitioned, 0u);
  int masters = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    masters += w.member(i)->role() == cluster::Role::master ? 1 : 0;
  }
  EXPECT_EQ(masters, 2);
  w.heal();
  w.run_until(5s);
  masters = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    masters += w.member(i)->role() == cluster::Role::master ? 1 : 0;
  }
  EXPECT_EQ(masters, 1);
}

TEST(World, CrashDropsPendingEventsAndRestartDrawsANewIncarnation) {
  World w(quiet(2));
  w.start(0);
  w.start(1);
  const std::uint64_t inc = w.incarnation(1);
  w.run_until(500ms);
  w.crash(1);
  EXPECT_FALSE(w.up(1));
  const auto dropped = w.counters().dropped_to_down;
  w.run_until(700ms);
  EXPECT_EQ(w.counters().dropped_to_down, dropped);  // removed from the queue, not delivered
  w.start(1);
  EXPECT_NE(w.incarnation(1), inc);
}

// pause(): frozen, the member runs nothing (no timer, no delivery: its counters stand still) and
// what arrives waits; on resume it reads all of it before its timers run. A follower paused for
// 1 s (longer than T) does not succeed its master, which is alive.
TEST(World, APausedMemberRunsNothingAndReadsItsQueueOnResume) {
  World w(quiet(3));
  w.start(0);
  w.run_until(200ms);
  w.start(1);
  w.start(2);
  w.run_until(1s);
  ASSERT_EQ(w.member(0)->role(), cluster::Role::master);
  ASSERT_EQ(w.member(1)->role(), cluster::Role::follower);
  const auto rx = w.member(1)->counters().rx_messages;
  w.pause(1, 1s);
  EXPECT_TRUE(w.paused(1));
  EXPECT_FALSE(w.healthy());
  w.run_until(1999ms);
  EXPECT_EQ(w.member(1)->counters().rx_messages, rx);
  EXPECT_GT(w.counters().queued_while_paused, 0u);
  EXPECT_EQ(w.member(0)->members().size(), 2u);  // the master declared it dead meanwhile
  w.run_until(2s);
  EXPECT_FALSE(w.paused(1));
  EXPECT_TRUE(w.paused_within(1, 1ms));
  EXPECT_GT(w.member(1)->counters().rx_messages, rx);
  EXPECT_EQ(w.member(1)->counters().successions, 0u);
  EXPECT_NE(w.member(1)->role(), cluster::Role::master);
  ASSERT_EQ(w.pauses().size(), 1u);
  EXPECT_EQ(w.pauses()[0].from, 1s);
  EXPECT_EQ(w.pauses()[0].until, 2s);
  w.run_until(2500ms);
  EXPECT_EQ(w.member(0)->role(), cluster::Role::master);
  EXPECT_EQ(w.member(1)->role(), cluster::Role::follower);
  EXPECT_EQ(w.member(0)->members().size(), 3u);
}

// The paused-member check runs once the pause is seen, and only then.
TEST(Checkers, APauseIsCheckedOnceSeen) {
  WorldConfig c = quiet(3);
  World w(c);
  Checkers checks(bounds_for(c.timings, c.network));
  w.add_observer(&checks);
  for (std::size_t s = 0; s < 3; ++s) {
    w.start(s);
  }
  w.run_until(1s);
  w.pause(0, 600ms);
  w.run_until(1600ms + checks.bounds().pause_seen - 1ns);
  EXPECT_EQ(checks.pause_checks(), 0u);
  w.run_until(2500ms);
  EXPECT_GT(checks.pause_checks(), 0u);
  EXPECT_TRUE(checks.ok());
}

TEST(World, ObserversSeeEveryDatagramAndEveryStep) {
  World w(quiet(2));
  Tap tap;
  w.add_observer(&tap);
  w.start(0);
  w.start(1);
  w.run_until(1s);
  EXPECT_EQ(static_cast<std::uint64_t>(tap.sent), w.counters().control_sent);
  EXPECT_GE(static_cast<std::uint64_t>(tap.steps), w.counters().events);
}

TEST(World, DuplicationDeliversSecondCopies) {
  WorldConfig c = quiet(3);
  c.network.duplicate = 0.5;
  c.network.jitter = 2ms;
  World w(c);
  Checkers checks(bounds_for(c.timings, c.network));
  w.add_observer(&checks);
  for (std::size_t i = 0; i < 3; ++i) {
    w.start(i);
  }
  w.run_until(3s);
  EXPECT_GT(w.counters().control_duplicated, 0u);
  EXPECT_TRUE(checks.ok()) << checks.violations().front().what;
}

TEST(World, ClientsOpenFlowsThatGetServed) {
  WorldConfig c;
  c.slots = 3;
  World w(c);
  for (std::size_t i = 0; i < 3; ++i) {
    w.start(i);
  }
  w.run_until(3s);
  EXPECT_GT(w.counters().client_frames, 100u);
  EXPECT_GT(w.counters().served, w.counters().client_frames / 2);
  EXPECT_EQ(w.counters().double_served, 0u);
}

TEST(Checkers, ARepeatedFollowerKeepaliveSequenceIsAViolation) {
  World w(quiet(1));
  Checkers checks(bounds_for(w.config().timings, w.network()));
  cluster::Message m;
  m.cluster_id = cluster::cluster_id_of("sim");
  m.sender = w.address(0);
  m.epoch = 1;
  m.body = cluster::FollowerKeepalive{5, 0, {}};
  const auto bytes = cluster::encode(m, cluster::NullAuthenticator{});
  checks.on_datagram(w, 0, 1, bytes);
  EXPECT_TRUE(checks.ok());
  checks.on_datagram(w, 0, 2, bytes);  // another incarnation may start over
  EXPECT_TRUE(checks.ok());
  checks.on_datagram(w, 0, 1, bytes);
  EXPECT_FALSE(checks.ok());
}

TEST(Checkers, BoundsAreNamedFromTheTimings) {
  cluster::Timings t;
  NetworkConfig n;
  const Bounds b = bounds_for(t, n);
  EXPECT_EQ(b.convergence, 3 * t.failure_interval + 2 * t.master_offer_wait + t.join_timeout);
  EXPECT_EQ(b.dead_owner, t.failure_interval + 2 * n.latency + kDeadOwnerSlack);
  EXPECT_EQ(b.pause_seen, 4 * n.latency);  // two round trips
}

}  // namespace
}  // namespace phalanx::sim
