// Observers that judge a simulated run (STYLE "TigerBeetle's VOPR / FoundationDB"): separate from
// the world, they see every datagram as it is sent and are called after every event.
//
// Always (safety; every phase, whatever the faults):
//   - every member's check_invariants() holds (it aborts otherwise). A member's state changes only
//     when the world calls it, so after each step the members that step called are checked; the
//     others were checked after the step that last called them and have not changed since (a
//     frame classified as mine / not_mine only bumps table counters and loads, which are checked
//     at the member's next call).
//   - a member's FollowerKeepalive sequence never repeats or goes backwards within one
//     incarnation (every datagram on the segment is decoded);
//   - a follower that crashed is no longer the owner of any acknowledged workset in the master's
//     table after kDeadOwner (T + a control round trip + slack), when the master stayed the same
//     and the network was not partitioned meanwhile.
//   - a paused member splits no brain (issue 9 part 5): once the pause of member P has been
//     seen, no workset is owned by P and by another member that is up, each in its own table.
//     The pause is *seen* at `resume + pause_seen`. At the resume instant P has read everything
//     that queued while it was frozen, before any of its timers ran (World::pause). pause_seen
//     is two control round trips after that: one for what P learned from its queue to take
//     effect (a member that rejoins is answered with JoinAck and the keepalive that names the
//     real owners), one for a decision the cluster took in the instant around the resume (the
//     master's watchdog on P firing just before P's first keepalive after the resume arrives;
//     a successor taking over just before the old master's first keepalive arrives): the news
//     reaches P one delay after the decision, the new owner one delay after it too. Not while
//     P is joining or follows a member that is no longer an up master: P's worksets then come
//     from a term whose master is gone, and until its claims reach the new master (elected
//     perhaps after the resume, knowing nothing of an assignment the dead master never
//     announced) the conflict is a failover's race, the same without any pause; nor for one
//     round trip after (the keepalive naming the real owners may trail the JoinAck). Checked
//     after every step that called a member, from then for pause_watch (after that the
//     liveness checks own the question), while P stays up, unpaused and of the same
//     incarnation, and only if the network did not change (no partition, no loss change) since
//     the pause began: a partition makes two owners on its own, judged by the liveness checks.
//     A pause is a disturbance (the liveness checks wait for the convergence bound after it)
//     and a paused member makes the network unhealthy; its silence is no false failover.
//   - no session is broken by a move (issue 10): a TCP flow is never served by another member
//     while the member holding its session is up, unpaused, reachable, still listed and has
//     not left its role (WorldCounters::sessions_broken; World says which). Sessions lost to
//     a fault are expected until sessions are replicated (issue 11) and only counted.
// Once the network has been healthy (no partition, no loss, no crash or start) for the
// convergence bound (liveness):
//   - exactly one member is master and every member that is up follows it (same address, same
//     epoch);
//   - no workset is served by two members (owner == self in two members' own tables);
//   - every workset that had client traffic in the last World::kTrafficGap is served by exactly
//     one member that is up and acknowledged (state assigned) in the master's table, except for
//     at most kOwnershipGrace after its traffic began or after it was last fine (a first packet
//     being assigned, a rebalancing move);
//   - every member agrees with the master on what it owns: for each workset acknowledged in the
//     master's table, a member owns it in its own table exactly when the master's last announced
//     table (its MasterKeepalive) names that member, allowing kAgreementGrace for the next
//     announcement.
// The table sweeps of the liveness checks are sampled every few milliseconds of simulated time
// (kSweepInterval in checkers.cpp), far finer than any bound they enforce.
// Member ids are local to each member (each table numbers addresses as it meets them), so the
// checks compare "owner == self" per table and addresses from the wire, never ids across tables.
//
// A violation is recorded with the simulated time; any violation fails the run.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cluster/member.hpp"
#include "sim/world.hpp"

namespace phalanx::sim {

using cluster::Epoch;

// The bounds the checks use, all derived from the member timings and the network.
struct Bounds {
  Duration failure_interval;  // T
  // Healthy for this long -> the liveness checks apply: detection (T) + rejoin (join_timeout) +
  // two offer waits (a backed-off offer and the winning one) + 2T margin for joins and the
  // table announcements that follow.
  Duration convergence;
  // A workset with traffic may be unowned this long (assignment round trips, retransmissions).
  Duration ownership_grace;
  // A dead follower may own acknowledged worksets in the master's table this long after its
  // crash: T + one control round trip + kDeadOwnerSlack.
  Duration dead_owner;
  // A member's own table may disagree with the master's announcement this long.
  Duration agreement_grace;
  // A pause is seen this long after the member resumed: two control round trips (see above).
  Duration pause_seen;
  // ... and checked for this long after that: the convergence bound and one second more.
  Duration pause_watch;
};

// Slack on top of T + round trip for the dead-owner check: the watchdog is checked on the
// master's timer, which fires at the next keepalive period at the latest (T/2 for n = 2).
inline constexpr Duration kDeadOwnerSlack = std::chrono::milliseconds(20);

Bounds bounds_for(const cluster::Timings& t, const NetworkConfig& n);

struct Violation {
  Time at;
  std::string what;
};

class Checkers final : public Observer {
 public:
  explicit Checkers(const Bounds& bounds);

  void on_datagram(const World& w, std::size_t from, std::uint64_t incarnation,
                   wire::Bytes bytes) override;
  void after_step(const World& w, const StepInfo& step) override;

  bool ok() const { return violation_count_ == 0; }
  // The first kMaxRecorded violations (all are counted).
  const std::vector<Violation>& violations() const { return violations_; }
  std::uint64_t violation_count() const { return violation_count_; }
  static constexpr std::size_t kMaxRecorded = 16;

  // A live member declared dead by the master, or a follower's master watchdog firing while its
  // master was up, with no partition in the last T.
  std::uint64_t false_failovers() const { return false_failovers_; }
  // How often the liveness checks ran (a run whose liveness phase never ran proves little).
  std::uint64_t liveness_sweeps() const { return liveness_sweeps_; }
  // How often the paused-member check ran (likewise).
  std::uint64_t pause_checks() const { return pause_checks_; }

  const Bounds& bounds() const { return bounds_; }

 private:
  struct SlotWatch {
    std::uint64_t incarnation = 0;
    bool seen = false;
    std::uint64_t master_lost = 0;
    std::uint64_t declared_dead = 0;
    std::optional<Ipv4Addr> master;
    std::vector<Ipv4Addr> members;
  };
  struct Announced {
    std::uint64_t incarnation = 0;
    Epoch epoch = 0;
    std::vector<Ipv4Addr> members;
    std::vector<std::uint8_t> owners;  // 1024 entries
    Time at{0};
  };
  struct PendingDeadOwner {
    Time due;
    std::size_t slot;
    std::uint64_t incarnation;  // of the crashed member
    std::size_t master;
    std::uint64_t master_incarnation;
    Epoch epoch;
  };

  void violate(Time at, std::string what);
  void watch_failovers(const World& w, std::size_t slot);
  void track_crashes(const World& w);
  void check_dead_owners(const World& w);
  void check_pauses(const World& w, const StepInfo& step);
  void liveness(const World& w);
  std::optional<std::size_t> unique_master(const World& w) const;

  Bounds bounds_;
  std::vector<Violation> violations_;
  std::uint64_t violation_count_ = 0;
  std::uint64_t false_failovers_ = 0;
  std::uint64_t liveness_sweeps_ = 0;
  std::uint64_t pause_checks_ = 0;
  std::size_t pauses_reported_ = 0;  // pauses() before this index have had their violation
  // Per pause: the paused member is in a failover's race (joining, or its master gone), and
  // until when the check waits after it left that state.
  std::vector<std::pair<bool, Time>> pause_race_;
  // FollowerKeepalive sequence per (slot, incarnation).
  std::map<std::pair<std::size_t, std::uint64_t>, std::uint32_t> keepalive_seq_;
  std::map<std::size_t, Announced> announced_;  // by master slot
  std::vector<SlotWatch> slots_;
  std::vector<PendingDeadOwner> dead_owner_checks_;
  std::uint64_t sessions_broken_seen_ = 0;
  bool was_partitioned_ = false;
  Time partition_changed_{Time::min()};
  Time last_sweep_{Time::min()};
  std::array<Time, filter::kWorksetCount> unowned_since_;
  std::array<Time, filter::kWorksetCount> disagree_since_;
  Time stable_since_{Time::min()};
};

}  // namespace phalanx::sim
