// Every whole-member scenario (node_scenarios.hpp) over a few seeds: whole ClusterNode members,
// TCP peers, every byte checked. kDefaultSeeds per scenario, or PHALANX_SIM_SEEDS / 8 (at least
// one) for slow builds such as ASan, as scenarios_test.cpp scales its own. A failing seed prints
// its report and the command that replays it.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "sim/node_scenarios.hpp"

namespace phalanx::sim {
namespace {

constexpr std::uint64_t kDefaultSeeds = 3;

std::uint64_t seed_count() {
  if (const char* s = std::getenv("PHALANX_SIM_SEEDS")) {
    const long v = std::strtol(s, nullptr, 10);
    if (v > 0) {
      return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(v) / 8);
    }
  }
  return kDefaultSeeds;
}

class WholeScenarioTest : public ::testing::TestWithParam<std::string_view> {};

TEST_P(WholeScenarioTest, NoViolationButExpectedLosses) {
  const WholeScenario* s = find_whole_scenario(GetParam());
  ASSERT_NE(s, nullptr);
  for (std::uint64_t seed = 1; seed <= seed_count(); ++seed) {
    WholeOptions o;
    o.seed = seed;
    const WholeReport r = s->run(o);
    EXPECT_EQ(r.opened, o.connections) << format_report(r);
    EXPECT_EQ(r.lost, r.lost_expected) << format_report(r);
    EXPECT_TRUE(r.ok()) << format_report(r);
  }
}

std::vector<std::string_view> names() {
  std::vector<std::string_view> out;
  for (const auto& s : whole_scenarios()) {
    out.push_back(s.name);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, WholeScenarioTest, ::testing::ValuesIn(names()),
                         [](const auto& info) { return std::string(info.param); });

// The 11 protocol-simulator scenarios and the five under load are all there.
TEST(WholeScenarios, EveryScenarioIsListed) {
  for (const char* n : {"cold_start", "master_crash", "follower_crash", "crash_during_election",
                        "simultaneous_joins", "partition_heal", "loss_1", "loss_5", "loss_20",
                        "flapping_member", "rebalance_after_join", "rebalance_under_load",
                        "join_under_load", "follower_crash_under_load", "master_crash_under_load",
                        "no_crash_under_load", "drain_under_load"}) {
    EXPECT_NE(find_whole_scenario(n), nullptr) << n;
  }
  EXPECT_EQ(whole_scenarios().size(), 17u);
}

// Partition heal (issue 10): the side cut off from the peers took the other side's worksets and
// reset its connections when the network healed, or won the tie-break on its newer epoch and took
// the live worksets away. Each seed failed one rule of the fix: the traffic-first tie-break
// (0, 3), no RST from a minority (10, 39), a minority's followers left to their master's
// tie-break (72), a claim with live sessions beating an idle owner (80). Then a cut of the master
// healed before the other side had elected: the master removed the silent followers and gave
// their live worksets away (407, 597: a master without clients keeps them in doubt); a follower
// removed while alive released its live worksets (646, and 820 after a newer term took its
// worksets: it keeps them and claims them back); a minority opened connections after a silence
// shorter than T (792: members' own frames counted as clients); a member with sparse clients
// reported no traffic and lost the tie-break to the side cut off (3190); the side cut off counted
// the traffic of worksets it had taken over and won on its newer term (1862); the side cut off, as
// large as the other, elected a newer term before the master removed its silent followers, and
// the master took itself for superseded and released its live worksets, whose heirs had no copy
// of their unprotected sessions (525). Every connection of a
// member that was not cut off completes. 1154 (the master paused as the cut healed, then read a
// SYN another member had answered) is not whole yet: it loses one connection to a reset after
// the quiet T instead of two at once, so it is not listed.
TEST(WholeScenarios, PartitionHealRegressionSeeds) {
  const WholeScenario* s = find_whole_scenario("partition_heal");
  ASSERT_NE(s, nullptr);
  const std::vector<std::uint64_t> all = {0,   3,   10,  39,  72,   80,   407, 597,
                                          646, 754, 792, 820, 1862, 3190, 525};
  // Every seed in the release build; the first three in the sanitizer build (seed_count()
  // scaled down), where echo's replicated 16 KiB windows make each run minutes long.
  const std::size_t n = seed_count() >= kDefaultSeeds ? all.size() : 3;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t seed = all[i];
    WholeOptions o;
    o.seed = seed;
    const WholeReport r = s->run(o);
    EXPECT_EQ(r.lost, r.lost_expected) << format_report(r);
    EXPECT_TRUE(r.ok()) << format_report(r);
  }
}

// Found by 10,000-seed runs: a member removed while alive kept nothing (flapping_member 641,
// loss_20 718); a keepalive older than a WorkDeassign gave the workset back (5392); a master that
// never learned a table gave a follower's live workset away (2361); a follower back from a pause
// longer than its watchdog claimed its old worksets back from owners with new connections
// (loss_5 856, rebalance_after_join 614). Session replication (issue 11): a connection tracked
// again after its workset came back restarted its versions, and a late acknowledgement of the
// earlier tracking made the owner encode a delta against a newer base than its version: the
// member aborted (loss_20 11). Resumable echo held every byte until a snapshot let it go, and a
// member with no backup takes no snapshots: its echo sessions stalled (cold_start 29).
TEST(WholeScenarios, RegressionSeeds) {
  const std::pair<std::string_view, std::uint64_t> runs[] = {
      {"flapping_member", 641}, {"flapping_member", 2361}, {"flapping_member", 5392},
      {"loss_20", 718},         {"loss_5", 856},           {"rebalance_after_join", 614},
      {"loss_20", 11},          {"cold_start", 29}};
  for (const auto& [name, seed] : runs) {
    const WholeScenario* s = find_whole_scenario(name);
    ASSERT_NE(s, nullptr) << name;
    WholeOptions o;
    o.seed = seed;
    const WholeReport r = s->run(o);
    EXPECT_TRUE(r.ok()) << format_report(r);
  }
}

// Issue 11, drain: a member (the master in some runs) drained under load hands its downloads
// sessions over with their worksets (live moves) and leaves; nothing is lost, every byte checked.
TEST(WholeScenarios, ADrainedMemberHandsItsDownloadsOver) {
  const WholeScenario* s = find_whole_scenario("drain_under_load");
  ASSERT_NE(s, nullptr);
  std::uint64_t moved = 0;
  const std::uint64_t seeds = seed_count() >= kDefaultSeeds ? 4 : 2;
  for (std::uint64_t seed = 0; seed < seeds; ++seed) {
    WholeOptions o;
    o.seed = seed;
    o.workload = *workload_from_string("downloads");
    o.connections = 40;
    o.tweak = [](NodeWorldConfig& c) { c.file_sizes = {1'000'000, 2'000'000}; };
    const WholeReport r = s->run(o);
    EXPECT_TRUE(r.ok()) << format_report(r);
    EXPECT_EQ(r.lost, 0u) << format_report(r);
    moved += r.sessions_moved;
  }
  EXPECT_GT(moved, 0u);
}

// Issue 11, session replication: a download survives the crash of the member serving it. With
// replication off the same seeds lose downloads (so the runs do crash members mid-download);
// with it on, none is lost and every byte is checked. A follower's crash (the master's: below).
TEST(WholeScenarios, DownloadsSurviveTheCrashOfTheirMember) {
  const WholeScenario* s = find_whole_scenario("follower_crash_under_load");
  ASSERT_NE(s, nullptr);
  std::size_t lost_without = 0;
  std::size_t lost_with = 0;
  // Six seeds; two in the sanitizer build (seed_count() scaled down).
  const std::uint64_t seeds = seed_count() >= kDefaultSeeds ? 6 : 2;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    for (unsigned replicas : {0u, 1u}) {
      WholeOptions o;
      o.seed = seed;
      o.workload = *workload_from_string("downloads");
      o.connections = 40;
      o.tweak = [replicas](NodeWorldConfig& c) {
        c.replicas = replicas;
        c.file_sizes = {1'000'000, 3'000'000};  // long enough to be mid-transfer at the crash
      };
      const WholeReport r = s->run(o);
      EXPECT_TRUE(r.ok()) << format_report(r);
      (replicas == 0 ? lost_without : lost_with) += r.lost;
      if (replicas == 1) {
        EXPECT_EQ(r.lost, 0u) << format_report(r);
      }
    }
  }
  EXPECT_GE(lost_without, seeds);  // 13 over the six seeds, 6 over the first two
  EXPECT_EQ(lost_with, 0u);
}

// Downloads opened a few milliseconds before the master crashed, each lost before this stop:
// seed 17 had its request acknowledged before the backup held it (output commit now holds a new
// session at the handshake); seed 27 was on a workset the master had given itself after its
// last keepalive, which its successor never gave to the backup (now announced at once). With
// 100 downloads of 1 and 3 MB each, as `phalanx-sim --whole --scenario master_crash_under_load
// --workload downloads --file-sizes 1000000 3000000 --seed N` runs them.
TEST(WholeScenarios, DownloadsOpenedJustBeforeTheMasterCrashSurvive) {
  const WholeScenario* s = find_whole_scenario("master_crash_under_load");
  ASSERT_NE(s, nullptr);
  // Both seeds; the first in the sanitizer build (seed_count() scaled down).
  const std::vector<std::uint64_t> seeds = seed_count() >= kDefaultSeeds
                                               ? std::vector<std::uint64_t>{17, 27}
                                               : std::vector<std::uint64_t>{17};
  for (std::uint64_t seed : seeds) {
    WholeOptions o;
    o.seed = seed;
    o.workload = *workload_from_string("downloads");
    o.tweak = [](NodeWorldConfig& c) { c.file_sizes = {1'000'000, 3'000'000}; };
    const WholeReport r = s->run(o);
    EXPECT_TRUE(r.ok()) << format_report(r);
    EXPECT_EQ(r.lost, 0u) << format_report(r);
  }
}

// Issue 11, echo: a bidirectional stream survives the crash of the member serving it. Echo's
// snapshot holds every byte taken and not yet acknowledged, and a new owner sends it again. With
// replication off the same seeds lose echo sessions; with it on, none, every byte checked both
// ways. The crash of a follower and of the master.
TEST(WholeScenarios, EchoStreamsSurviveTheCrashOfTheirMember) {
  // Three seeds per scenario; one in the sanitizer build (seed_count() scaled down).
  const std::uint64_t seeds = seed_count() >= kDefaultSeeds ? 3 : 1;
  for (const char* name : {"follower_crash_under_load", "master_crash_under_load"}) {
    const WholeScenario* s = find_whole_scenario(name);
    ASSERT_NE(s, nullptr);
    std::size_t lost_without = 0;
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
      for (unsigned replicas : {0u, 1u}) {
        WholeOptions o;
        o.seed = seed;
        o.workload = *workload_from_string("echo");
        o.connections = 40;
        o.tweak = [replicas](NodeWorldConfig& c) { c.replicas = replicas; };
        const WholeReport r = s->run(o);
        EXPECT_TRUE(r.ok()) << format_report(r);
        if (replicas == 0) {
          lost_without += r.lost;
        } else {
          EXPECT_EQ(r.lost, 0u) << format_report(r);
        }
      }
    }
    EXPECT_GE(lost_without, seeds) << name;
  }
}

// One seed, two runs, one digest (every scenario's faults are drawn from the seed).
TEST(WholeScenarios, SameSeedSameRun) {
  for (const char* n : {"partition_heal", "flapping_member", "loss_5"}) {
    WholeOptions o;
    o.seed = 9;
    o.connections = 30;
    const WholeReport a = find_whole_scenario(n)->run(o);
    const WholeReport b = find_whole_scenario(n)->run(o);
    EXPECT_EQ(a.digest, b.digest) << n;
    EXPECT_EQ(a.events, b.events) << n;
    EXPECT_EQ(a.lost, b.lost) << n;
  }
}

}  // namespace
}  // namespace phalanx::sim
