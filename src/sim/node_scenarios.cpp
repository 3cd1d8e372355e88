#include "sim/node_scenarios.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sim/node_checkers.hpp"
#include "sim/node_workload.hpp"
#include "sim/sim_content.hpp"

namespace phalanx::sim {

namespace {

using std::chrono::milliseconds;

constexpr std::size_t kNobody = ~std::size_t{0};

// The options a replay must repeat, when they differ from the defaults.
std::string replay_options(const WholeOptions& o) {
  std::string s;
  if (o.workload.name != "default") {
    s += " --workload " + o.workload.name;
  }
  if (o.connections != WholeOptions{}.connections) {
    s += fmt::format(" --connections {}", o.connections);
  }
  if (o.peer_port_range) {
    s += fmt::format(" --peer-ports {}-{}", o.peer_port_range->first, o.peer_port_range->second);
  }
  if (o.loss > 0.0) {
    s += fmt::format(" --loss {}", o.loss);
  }
  return s;
}

std::int64_t ms(Time t) {
  return std::chrono::duration_cast<milliseconds>(t).count();
}

}  // namespace

std::string_view scenario_name(WholeFault c) {
  switch (c) {
    case WholeFault::none:
      return "no_crash_under_load";
    case WholeFault::follower:
      return "follower_crash_under_load";
    case WholeFault::master:
      return "master_crash_under_load";
    case WholeFault::join:
      return "join_under_load";
  }
  return "unknown";
}

std::optional<WholeFault> whole_fault_from_string(std::string_view s) {
  if (s == "none") {
    return WholeFault::none;
  }
  if (s == "follower") {
    return WholeFault::follower;
  }
  if (s == "master") {
    return WholeFault::master;
  }
  if (s == "join") {
    return WholeFault::join;
  }
  return std::nullopt;
}

std::string_view fault_word(WholeFault c) {
  switch (c) {
    case WholeFault::none:
      return "none";
    case WholeFault::follower:
      return "follower";
    case WholeFault::master:
      return "master";
    case WholeFault::join:
      return "join";
  }
  return "unknown";
}

std::size_t schedule_load(NodeWorld& w, Prng& prng, const WorkloadMix& mix, Time from,
                          Duration spread, std::size_t items) {
  if (w.peers() == 0) {
    return 0;
  }
  return schedule_workload(w, prng, mix, items, from, spread).connections;
}

namespace {

// How long a wait for the cluster to converge may take before it is judged.
constexpr Duration kConvergeLimit = std::chrono::seconds(5);
// The pause every protocol-sim namesake ends its faults with (scenarios.cpp, scaled): within
// kPauseWithin of the faults' end, kPauseMin .. kPauseMax.
constexpr Duration kPauseWithin = milliseconds(300);
constexpr Duration kPauseMin = milliseconds(50);
constexpr Duration kPauseMax = milliseconds(1000);

// One run: the world, its checkers, the report, and the helpers the scenarios share.
class WholeRun {
 public:
  WholeRun(std::string_view name, const WholeOptions& o, std::size_t members)
      : o_(o), world_(config(o, members), &checkers_) {
    world_.add_observer(&checkers_);
    if (o.trace) {
      world_.set_member_log(o.trace);
    }
    r_.scenario = std::string(name);
    r_.seed = o.seed;
    r_.replay = fmt::format("phalanx-sim --whole --scenario {} --seed {}{}", name, o.seed,
                            replay_options(o));
  }

  NodeWorld& w() { return world_; }
  NodeCheckers& checkers() { return checkers_; }
  WholeReport& report() { return r_; }
  Prng& prng() { return world_.scenario_prng(); }
  const WholeOptions& options() const { return o_; }

  void violation(std::string what) {
    checkers_.violation(fmt::format("at {} ms: {}", ms(world_.now()), what));
  }

  // Starts `count` members (slots 0..count-1) at random offsets in [now, now + spread] and runs
  // until one of them is master (or kConvergeLimit).
  void cold_start(std::size_t count, Duration spread) {
    const Time t0 = world_.now();
    for (std::size_t s = 0; s < count; ++s) {
      world_.at(t0 + prng().duration(Duration{0}, spread), [this, s] { world_.start(s); });
    }
    world_.run_until(t0 + spread);
    world_.run_until(world_.now() + kConvergeLimit, [&] { return master().has_value(); });
  }

  // The one master among the members that are up (none, or two: nullopt).
  std::optional<std::size_t> master() const {
    std::optional<std::size_t> found;
    for (std::size_t s = 0; s < world_.members(); ++s) {
      if (world_.up(s) && world_.node(s)->member().role() == cluster::Role::master) {
        if (found) {
          return std::nullopt;
        }
        found = s;
      }
    }
    return found;
  }

  std::vector<std::size_t> followers() const {
    std::vector<std::size_t> out;
    const auto m = master();
    for (std::size_t s = 0; s < world_.members(); ++s) {
      if (world_.up(s) && s != m) {
        out.push_back(s);
      }
    }
    return out;
  }

  std::vector<std::size_t> up_members() const {
    std::vector<std::size_t> out;
    for (std::size_t s = 0; s < world_.members(); ++s) {
      if (world_.up(s)) {
        out.push_back(s);
      }
    }
    return out;
  }

  // One master, followed by every member that is up (none paused), listing them all.
  bool converged() const {
    const auto m = master();
    if (!m) {
      return false;
    }
    const cluster::Member& ms = world_.node(*m)->member();
    std::size_t up = 0;
    for (std::size_t s = 0; s < world_.members(); ++s) {
      if (!world_.up(s)) {
        continue;
      }
      ++up;
      if (world_.paused(s)) {
        return false;
      }
      if (s == *m) {
        continue;
      }
      const cluster::Member& f = world_.node(s)->member();
      if (f.role() != cluster::Role::follower || f.master() != NodeWorld::member_address(*m) ||
          f.epoch() != ms.epoch()) {
        return false;
      }
    }
    return ms.members().size() == up;
  }

  // Runs until converged (or `limit`), then `settle` more.
  void settle(Duration settle, Duration limit = kConvergeLimit) {
    world_.run_until(world_.now() + limit, [&] { return converged(); });
    world_.run_until(world_.now() + settle);
  }

  // Worksets member `slot` owns in its own table.
  std::size_t owned(std::size_t slot) const {
    const filter::WorksetTable& t = world_.node(slot)->member().table();
    std::size_t n = 0;
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      const filter::WorksetId ws{i};
      n += t.state(ws) != filter::WorksetState::unassigned && t.owner(ws) == t.config().self;
    }
    return n;
  }

  // The load of the faulty phase: o.connections items of o.workload over o.spread from now.
  void load() {
    expected_connections_ =
        schedule_load(world_, prng(), o_.workload, world_.now(), o_.spread, o_.connections);
  }

  // One member, the master half the time, frozen for kPauseMin .. kPauseMax from a moment
  // within kPauseWithin; returns after it resumed.
  void pause_fault() {
    world_.run_until(world_.now() + prng().duration(Duration{0}, kPauseWithin));
    const auto up = up_members();
    if (up.empty()) {
      return;
    }
    const bool pick_master = prng().chance(0.5);
    std::size_t victim = up[prng().uniform(up.size())];
    if (const auto m = master(); pick_master && m) {
      victim = *m;
    }
    const Duration length = prng().duration(kPauseMin, kPauseMax);
    world_.pause(victim, length);
    world_.run_until(world_.now() + length);
  }

  // The end of a protocol-sim namesake: the network healthy again, then the pause.
  void end_faults() {
    if (world_.partitioned()) {
      world_.heal();
    }
    world_.set_loss(0.0);
    pause_fault();
  }

  // Runs until every connection has ended (or o.limit), then checks that the cluster converges,
  // and judges every connection.
  // `after_connections` runs once every connection has ended (a scenario's last check).
  WholeReport finish(const std::function<void()>& after_connections = {}) {
    const auto opened = [&] {
      std::size_t n = 0;
      for (std::size_t p = 0; p < world_.peers(); ++p) {
        n += world_.peer(p).connections().size();
      }
      return n;
    };
    const auto running = [&] {
      std::size_t n = 0;
      for (std::size_t p = 0; p < world_.peers(); ++p) {
        n += world_.peer(p).running();
      }
      return n;
    };
    world_.run_until(o_.limit, [&] { return opened() == expected_connections_ && running() == 0; });
    // Still running: timed out by the scenario (a loss, judged below like the others).
    for (std::size_t p = 0; p < world_.peers(); ++p) {
      if (world_.peer(p).running() > 0) {
        world_.with_peer(p, [&](TcpPeer& peer) { peer.give_up(world_.now()); });
      }
    }
    if (after_connections) {
      after_connections();
    }
    if (check_converged_ && !up_members().empty() &&
        !world_.run_until(world_.now() + kConvergeLimit, [&] { return converged(); })) {
      violation(
          fmt::format("not converged {} ms after every connection ended", ms(kConvergeLimit)));
    }
    checkers_.finish(world_);
    judge();
    return r_;
  }

  void expect_connections(std::size_t n) { expected_connections_ = n; }
  void skip_convergence_check() { check_converged_ = false; }

 private:
  static NodeWorldConfig config(const WholeOptions& o, std::size_t members) {
    NodeWorldConfig wc;
    wc.seed = o.seed;
    wc.members = members;
    wc.peers = o.peers;
    wc.loss = o.loss;
    wc.peer_port_range = o.peer_port_range;
    if (o.tweak) {
      o.tweak(wc);
    }
    return wc;
  }

  void judge() {
    NodeWorld& w = world_;
    r_.resets_by_member.assign(w.members(), 0);
    r_.served_by_member.assign(w.members(), 0);
    for (std::size_t p = 0; p < w.peers(); ++p) {
      for (const PeerConnection& c : w.peer(p).connections()) {
        ++r_.opened;
        const auto server = checkers_.server(c);
        if (server) {
          ++r_.served_by_member[*server];
        }
        // The member whose RST ended it (kNobody: none, or not a member).
        const std::size_t reset_by =
            c.reset_by ? w.slot_of_mac(*c.reset_by).value_or(kNobody) : kNobody;
        switch (c.outcome) {
          case ConnOutcome::completed:
            ++r_.completed;
            continue;
          case ConnOutcome::reset:
            ++r_.reset;
            if (reset_by != kNobody) {
              ++r_.resets_by_member[reset_by];
            }
            break;
          case ConnOutcome::timed_out:
            ++r_.timed_out;
            break;
          case ConnOutcome::truncated:
          case ConnOutcome::bad_response:
          case ConnOutcome::running:
            ++r_.failed;
            break;
        }
        ++r_.lost;
        if (server && w.faulted(*server, c.opened, c.ended)) {
          ++r_.lost_expected;
          continue;
        }
        std::string faults;
        if (server) {
          for (const MemberFault& f : w.faults()) {
            if (f.slot == *server) {
              faults += fmt::format(" {}@{}..{}", to_string(f.kind), ms(f.from),
                                    f.until == kNever ? -1 : ms(f.until));
            }
          }
        }
        checkers_.violation(fmt::format(
            "lost: peer {} connection {} (port {}, opened at {} ms) ended {}{} at {} ms, served by "
            "{} (its faults:{})",
            p, c.id, c.local_port, ms(c.opened), to_string(c.outcome),
            reset_by != kNobody ? fmt::format(" by member {}", reset_by) : std::string(),
            ms(c.ended), server ? fmt::format("member {}", *server) : std::string("nobody"),
            faults.empty() ? std::string(" none") : faults));
      }
    }
    r_.sessions_moved += w.sessions_handed_over_by_stopped();
    for (std::size_t s = 0; s < w.members(); ++s) {
      if (w.up(s)) {
        r_.worksets_moved += w.node(s)->member().counters().worksets_moved;
        r_.moves_refused += w.node(s)->member().counters().rebalance_kept_busy +
                            w.node(s)->member().counters().deassign_refused;
        if (const sync::Replicator* rep = w.node(s)->replicator()) {
          r_.sessions_moved += rep->counters().sessions_handed_over;
        }
      }
    }
    r_.bytes_checked = checkers_.bytes_checked();
    r_.segments_checked = checkers_.segments_checked();
    r_.by_kind = checkers_.by_kind();
    r_.simulated = w.now();
    r_.events = w.counters().events;
    r_.digest = w.digest();
    r_.violation_count = checkers_.violation_count();
    r_.violations = checkers_.violations();
    r_.violations_by_kind = checkers_.violations_by_kind();
  }

  const WholeOptions& o_;
  NodeCheckers checkers_;
  NodeWorld world_;
  WholeReport r_;
  std::size_t expected_connections_ = 0;
  bool check_converged_ = true;
};

// A member count drawn from the seed on a stream of its own (as scenarios.cpp does).
std::size_t members_between(std::uint64_t seed, std::size_t lo, std::size_t hi) {
  Prng p(seed ^ 0x5ce7a210u);
  return static_cast<std::size_t>(p.between(lo, hi));
}

// ---------------------------------------------------------------------------------------------
// The protocol simulator's scenarios, with TCP load.

WholeReport cold_start(const WholeOptions& o) {
  WholeRun run("cold_start", o, members_between(o.seed, 1, 16));
  run.load();  // from the first instant: the cluster forms under the load
  run.cold_start(run.w().members(), milliseconds(300));
  run.end_faults();
  return run.finish();
}

WholeReport master_crash(const WholeOptions& o) {
  WholeRun run("master_crash", o, members_between(o.seed, 2, 6));
  run.cold_start(run.w().members(), milliseconds(300));
  run.settle(Duration{0});
  run.load();
  run.w().run_until(run.w().now() + run.prng().duration(milliseconds(500), milliseconds(1500)));
  if (const auto m = run.master()) {
    run.w().crash(*m);
    run.settle(Duration{0});
    // The old master comes back as a follower (or not), later.
    if (run.prng().chance(0.5)) {
      run.w().run_until(run.w().now() + run.prng().duration(milliseconds(0), milliseconds(1000)));
      run.w().start(*m);
    }
  } else {
    run.violation("no master before the crash");
  }
  run.end_faults();
  return run.finish();
}

WholeReport follower_crash(const WholeOptions& o) {
  WholeRun run("follower_crash", o, members_between(o.seed, 2, 6));
  run.cold_start(run.w().members(), milliseconds(300));
  run.settle(Duration{0});
  run.load();
  run.w().run_until(run.w().now() + run.prng().duration(milliseconds(500), milliseconds(1500)));
  const auto f = run.followers();
  if (f.empty()) {
    run.violation("no follower before the crash");
  } else {
    // The follower that owns the most worksets, ties to the first.
    std::size_t victim = f.front();
    std::size_t most = 0;
    for (const std::size_t s : f) {
      if (run.owned(s) > most) {
        most = run.owned(s);
        victim = s;
      }
    }
    run.w().crash(victim);
    const wire::Ipv4Addr a = NodeWorld::member_address(victim);
    run.w().run_until(run.w().now() + kConvergeLimit, [&] {
      const auto m = run.master();
      if (!m) {
        return false;
      }
      const auto& listed = run.w().node(*m)->member().members();
      return std::find(listed.begin(), listed.end(), a) == listed.end();
    });
    if (run.prng().chance(0.5)) {
      run.w().start(victim);
    }
  }
  run.end_faults();
  return run.finish();
}

WholeReport crash_during_election(const WholeOptions& o) {
  WholeRun run("crash_during_election", o, members_between(o.seed, 3, 6));
  run.cold_start(run.w().members(), milliseconds(300));
  run.settle(run.prng().duration(milliseconds(300), milliseconds(1000)));
  run.load();
  run.w().run_until(run.w().now() + milliseconds(500));
  const auto m = run.master();
  if (!m) {
    run.violation("no master before the crash");
  } else {
    const Time crashed = run.w().now();
    run.w().crash(*m);
    const NodeWorldConfig& c = run.w().config();
    run.w().run_until(crashed + c.failure_interval +
                      run.prng().duration(Duration{0}, c.join_timeout + c.master_offer_wait));
    std::vector<std::size_t> offering;
    const auto up = run.up_members();
    for (const std::size_t s : up) {
      const auto role = run.w().node(s)->member().role();
      if (role == cluster::Role::offering || role == cluster::Role::master) {
        offering.push_back(s);
      }
    }
    const auto& pool = offering.empty() ? up : offering;
    if (!pool.empty()) {
      run.w().crash(pool[run.prng().uniform(pool.size())]);
    }
  }
  run.end_faults();
  return run.finish();
}

WholeReport simultaneous_joins(const WholeOptions& o) {
  const std::size_t n = members_between(o.seed, 1, 5) + 2;
  WholeRun run("simultaneous_joins", o, n);
  run.cold_start(n - 2, milliseconds(300));
  run.settle(run.prng().duration(milliseconds(200), milliseconds(1000)));
  run.load();
  run.w().run_until(run.w().now() + run.prng().duration(milliseconds(200), milliseconds(1500)));
  run.w().start(n - 2);
  run.w().start(n - 1);
  run.end_faults();
  return run.finish();
}

WholeReport partition_heal(const WholeOptions& o) {
  const std::size_t n = members_between(o.seed, 2, 8);
  WholeRun run("partition_heal", o, n);
  run.cold_start(n, milliseconds(300));
  run.settle(run.prng().duration(milliseconds(200), milliseconds(1000)));
  run.load();
  run.w().run_until(run.w().now() + run.prng().duration(milliseconds(200), milliseconds(1000)));
  // The side cut off (with the peers on the other side): a random subset of n/2 members.
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) {
    order[i] = i;
  }
  for (std::size_t i = n; i > 1; --i) {
    std::swap(order[i - 1], order[run.prng().uniform(i)]);
  }
  order.resize(n / 2);
  run.w().partition(order);
  // Long enough, usually, for each side to elect its own master; sometimes shorter than T.
  run.w().run_until(run.w().now() + run.prng().duration(milliseconds(50), milliseconds(2000)));
  run.w().heal();
  run.end_faults();
  return run.finish();
}

// --loss overrides the loss of the faulty phase (the cold start is healthy, as in the namesake).
WholeReport loss(std::string_view name, double p, const WholeOptions& options) {
  WholeOptions o = options;
  o.loss = 0.0;
  WholeRun run(name, o, members_between(o.seed, 2, 5));
  if (options.loss > 0.0) {
    run.report().replay += fmt::format(" --loss {}", options.loss);
  }
  run.cold_start(run.w().members(), milliseconds(300));
  run.settle(milliseconds(500));
  run.load();
  run.w().set_loss(options.loss > 0.0 ? options.loss : p);
  run.w().run_until(run.w().now() + std::chrono::seconds(3));
  run.end_faults();
  return run.finish();
}

WholeReport loss_1(const WholeOptions& o) {
  return loss("loss_1", 0.01, o);
}
WholeReport loss_5(const WholeOptions& o) {
  return loss("loss_5", 0.05, o);
}
WholeReport loss_20(const WholeOptions& o) {
  return loss("loss_20", 0.20, o);
}

WholeReport flapping_member(const WholeOptions& o) {
  const std::size_t n = members_between(o.seed, 2, 5);
  WholeRun run("flapping_member", o, n);
  run.cold_start(n, milliseconds(300));
  run.settle(milliseconds(300));
  run.load();
  const std::size_t flapper = run.prng().uniform(n);
  const Time end = run.w().now() + std::chrono::seconds(3);
  while (run.w().now() < end) {
    run.w().run_until(run.w().now() + run.prng().duration(milliseconds(50), milliseconds(1500)));
    if (run.w().up(flapper)) {
      run.w().crash(flapper);
    } else {
      run.w().start(flapper);
    }
  }
  if (!run.w().up(flapper)) {
    run.w().start(flapper);
  }
  run.end_faults();
  return run.finish();
}

// After the join, once the connections have ended, a few rebalance periods; then every member
// owns as many worksets as any other, give or take one.
WholeReport rebalance_after_join(const WholeOptions& o) {
  const std::size_t n = members_between(o.seed, 2, 4) + 1;
  WholeRun run("rebalance_after_join", o, n);
  run.cold_start(n - 1, milliseconds(300));
  run.settle(milliseconds(1000));
  run.load();
  // Late in the load: most worksets are assigned to the others by then, and the newcomer gets
  // its share from the master's rebalance.
  run.w().run_until(run.w().now() + 3 * o.spread / 4);
  run.w().start(n - 1);
  run.end_faults();
  return run.finish([&run] {
    // The worksets that carried connections at the join stay with their members until those
    // end (sessions are not moved); then a few rebalance periods.
    run.w().run_until(run.w().now() + 3 * run.w().config().rebalance_period + milliseconds(500));
    std::size_t lo = SIZE_MAX;
    std::size_t hi = 0;
    for (const std::size_t s : run.up_members()) {
      lo = std::min(lo, run.owned(s));
      hi = std::max(hi, run.owned(s));
    }
    if (lo != SIZE_MAX && hi - lo > 1) {
      run.violation(
          fmt::format("imbalance {} (worksets per member {}..{}) three rebalance periods after the "
                      "connections ended",
                      hi - lo, lo, hi));
    }
  });
}

// Two members under load; two more join at once, then the follower of the first two leaves
// gracefully (ExitCluster), while connections are live: the master's periodic rebalance moves
// idle worksets to the newcomers and keeps those that carry connections. Only the leaver's
// connections may be lost.
WholeReport rebalance_under_load(const WholeOptions& o) {
  WholeRun run("rebalance_under_load", o, 4);
  run.cold_start(2, milliseconds(10));
  run.settle(Duration{0});
  run.load();
  run.w().run_until(run.w().now() + o.spread / 3);
  run.w().start(2);
  run.w().start(3);
  // Past the next rebalance period, so that the first rebalance after the join runs with both
  // of the first two members up.
  run.w().run_until(run.w().now() + run.w().config().rebalance_period + milliseconds(200));
  const auto m = run.master();
  if (!m || *m > 1) {
    run.violation("not one master among the first two members");
  } else {
    run.w().leave(1 - *m);
  }
  return run.finish([&run] {
    for (const std::size_t s : {std::size_t{2}, std::size_t{3}}) {
      if (run.w().up(s) && run.owned(s) == 0) {
        run.violation(fmt::format("member {}, which joined, owns no workset after the load", s));
      }
    }
  });
}

// Three or four members under load; one of them (the master in half the runs) is drained
// (SIGTERM: ClusterNode::start_drain) while connections are live: its worksets move to the
// others, busy ones with their sessions, and it leaves. Nothing may be lost.
WholeReport drain_under_load(const WholeOptions& o) {
  const std::size_t n = members_between(o.seed, 3, 4);
  WholeRun run("drain_under_load", o, n);
  run.cold_start(n, milliseconds(100));
  run.settle(milliseconds(300));
  run.load();
  run.w().run_until(run.w().now() + run.prng().duration(o.spread / 4, o.spread / 2));
  const auto m = run.master();
  std::size_t victim = run.prng().uniform(n);
  if (m && run.prng().uniform(2) == 0) {
    victim = *m;
  }
  const Duration limit = std::chrono::seconds(10);
  const Time until = run.w().now() + limit + milliseconds(500);
  run.w().drain(victim, limit);
  // A session that cannot move (echo, a handshake) keeps its workset until it ends: the drain
  // takes as long, up to its limit.
  while (run.w().up(victim) && run.w().now() < until) {
    run.w().run_until(run.w().now() + milliseconds(100));
  }
  return run.finish([&run, victim] {
    if (run.w().up(victim)) {
      run.violation(fmt::format("member {} was drained and is still up", victim));
    }
  });
}

WholeReport under_load(WholeFault f, const WholeOptions& o) {
  WholeOptions with = o;
  with.fault = f;
  return run_under_load(with);
}
WholeReport join_under_load(const WholeOptions& o) {
  return under_load(WholeFault::join, o);
}
WholeReport follower_crash_under_load(const WholeOptions& o) {
  return under_load(WholeFault::follower, o);
}
WholeReport master_crash_under_load(const WholeOptions& o) {
  return under_load(WholeFault::master, o);
}
WholeReport no_crash_under_load(const WholeOptions& o) {
  return under_load(WholeFault::none, o);
}

}  // namespace

const std::vector<WholeScenario>& whole_scenarios() {
  static const std::vector<WholeScenario> all = {
      {"cold_start", cold_start, "1..16 members start in 0..300 ms under load"},
      {"master_crash", master_crash, "the master crashes under load (and may come back)"},
      {"follower_crash", follower_crash, "the busiest follower crashes (and may come back)"},
      {"crash_during_election", crash_during_election,
       "the master crashes, then another member during the election"},
      {"simultaneous_joins", simultaneous_joins, "two members join at the same instant"},
      {"partition_heal", partition_heal, "a minority cut off with no peers, then healed"},
      {"loss_1", loss_1, "1% loss of frames and datagrams for 3 s"},
      {"loss_5", loss_5, "5% loss of frames and datagrams for 3 s"},
      {"loss_20", loss_20, "20% loss of frames and datagrams for 3 s"},
      {"flapping_member", flapping_member, "one member crashes and restarts for 3 s"},
      {"rebalance_after_join", rebalance_after_join,
       "a member joins under load; worksets balanced once connections end"},
      {"rebalance_under_load", rebalance_under_load,
       "two members join, one leaves gracefully; rebalance with connections live"},
      {"join_under_load", join_under_load, "the last of 3 members joins under load"},
      {"drain_under_load", drain_under_load,
       "one of 3..4 members (the master in half the runs) is drained under load"},
      {"follower_crash_under_load", follower_crash_under_load, "a follower crashes under load"},
      {"master_crash_under_load", master_crash_under_load, "the master crashes under load"},
      {"no_crash_under_load", no_crash_under_load, "load, no fault"},
  };
  return all;
}

const WholeScenario* find_whole_scenario(std::string_view name) {
  for (const auto& s : whole_scenarios()) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

WholeReport run_under_load(const WholeOptions& o) {
  WholeRun run(scenario_name(o.fault), o, o.members);
  run.report().replay = fmt::format("phalanx-sim --whole --fault {} --seed {}{}",
                                    fault_word(o.fault), o.seed, replay_options(o));
  NodeWorld& w = run.w();
  Prng& prng = run.prng();

  // Cold start: every member within the first 10 ms (join: but the last, which joins later).
  const std::size_t cold = o.fault == WholeFault::join ? w.members() - 1 : w.members();
  for (std::size_t s = 0; s < cold; ++s) {
    w.at(prng.duration(Duration{0}, milliseconds(10)), [&w, s] { w.start(s); });
  }
  w.run_until(o.converge);
  if (!w.master()) {
    run.violation(fmt::format("no master {} ms after a cold start", ms(o.converge)));
  }
  run.expect_connections(schedule_load(w, prng, o.workload, o.converge, o.spread, o.connections));
  if (o.fault == WholeFault::join) {
    w.at(o.converge + o.spread / 2, [&w, cold] { w.start(cold); });
  } else if (o.fault != WholeFault::none) {
    const std::uint64_t draw = prng.next_u64();
    w.at(o.converge + o.spread / 2, [&, draw] {
      const cluster::Role wanted =
          o.fault == WholeFault::master ? cluster::Role::master : cluster::Role::follower;
      std::vector<std::size_t> candidates;
      for (std::size_t s = 0; s < w.members(); ++s) {
        if (w.up(s) && w.node(s)->member().role() == wanted) {
          candidates.push_back(s);
        }
      }
      if (candidates.empty()) {
        run.violation(fmt::format("no {} to crash", cluster::to_string(wanted)));
        return;
      }
      run.report().victim = candidates[draw % candidates.size()];
      w.crash(*run.report().victim);
    });
  }
  run.skip_convergence_check();
  return run.finish();
}

std::string format_report(const WholeReport& r) {
  std::string s = fmt::format(
      "{} seed {}: connections lost {} / opened {} (expected: {}), served by member "
      "{}: completed {}, reset {} (by member: {}), timed out {}, failed {}; {} bytes and {} member "
      "segments checked; worksets moved {} (refused: live connections {}; sessions moved "
      "with their workset {}); "
      "{:.1f} s simulated, {} events, digest {:016x}, violations {}\n",
      r.scenario, r.seed, r.lost, r.opened, r.lost_expected, fmt::join(r.served_by_member, "/"),
      r.completed, r.reset, fmt::join(r.resets_by_member, "/"), r.timed_out, r.failed,
      r.bytes_checked, r.segments_checked, r.worksets_moved, r.moves_refused, r.sessions_moved,
      std::chrono::duration<double>(r.simulated).count(), r.events, r.digest, r.violation_count);
  if (r.by_kind[static_cast<std::size_t>(LoadKind::idle)].opened +
          r.by_kind[static_cast<std::size_t>(LoadKind::short_download)].opened >
      0) {
    s += "  lost / opened by kind:";
    for (std::size_t k = 0; k < kLoadKinds; ++k) {
      s += fmt::format(" {} {}/{}", to_string(static_cast<LoadKind>(k)), r.by_kind[k].lost,
                       r.by_kind[k].opened);
    }
    s += "\n";
  }
  for (const auto& v : r.violations) {
    s += fmt::format("  violation: {}\n", v);
  }
  if (!r.ok()) {
    s += fmt::format("  replay: {}\n", r.replay);
  }
  return s;
}

}  // namespace phalanx::sim
