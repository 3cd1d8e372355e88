#include "sim/scenarios.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace phalanx::sim {

namespace {

using namespace std::chrono_literals;
using filter::WorksetId;
using filter::WorksetState;

// After the convergence bound, the liveness phase keeps running this long with every check on.
constexpr Duration kLivenessExtra = 1s;
// How long a measurement may wait before it is given up (and the checkers judge the run).
constexpr Duration kMeasureLimit = 5s;
// Default length of the faulty phase of the long scenarios (the tool and tests may override).
constexpr Duration kDefaultLossDuration = 60s;
constexpr Duration kDefaultFlapDuration = 8s;
// The pause every scenario ends its faults with: it begins within kPauseWithin of the network
// turning healthy and lasts kPauseMin .. kPauseMax (issue 9 part 5).
constexpr Duration kPauseWithin = 500ms;
constexpr Duration kPauseMin = 50ms;
constexpr Duration kPauseMax = 3s;

bool owns(const cluster::Member& m, WorksetId ws) {
  const auto& t = m.table();
  return t.state(ws) != WorksetState::unassigned && t.owner(ws) == t.config().self;
}

// One run: a world, its checkers, and the helpers the scenarios share.
class Run {
 public:
  Run(std::string_view name, std::uint64_t seed, const ScenarioOptions& options, WorldConfig config)
      : name_(name),
        seed_(seed),
        world_(prepare(seed, options, std::move(config))),
        checkers_(bounds_for(world_.config().timings, world_.config().network)) {
    world_.add_observer(&checkers_);
    if (options.trace) {
      world_.set_member_log(options.trace);
    }
  }

  World& w() { return world_; }
  Checkers& checkers() { return checkers_; }
  Prng& prng() { return world_.faults_prng(); }
  Metrics& metrics() { return metrics_; }
  Duration t() const { return world_.config().timings.failure_interval; }

  // Starts `count` members at random offsets in [0, spread], and measures the first master.
  void cold_start(std::size_t count, Duration spread) {
    Time first = Time::max();
    for (std::size_t i = 0; i < count; ++i) {
      const Time at = world_.now() + prng().duration(0ns, spread);
      first = std::min(first, at);
      world_.start_at(i, at);
    }
    auto got = world_.run_until(first + kMeasureLimit, [&] {
      for (std::size_t s = 0; s < world_.slots(); ++s) {
        if (world_.up(s) && world_.member(s)->role() == cluster::Role::master) {
          return true;
        }
      }
      return false;
    });
    if (got) {
      metrics_.first_master = *got - first;
    }
  }

  // Runs until the cluster has converged (or `limit` passes), then `settle` more.
  void settle(Duration settle, Duration limit = kMeasureLimit) {
    world_.run_until(world_.now() + limit, [&] { return converged() && traffic_owned(); });
    world_.run_until(world_.now() + settle);
  }

  std::optional<std::size_t> master() const {
    std::optional<std::size_t> found;
    for (std::size_t s = 0; s < world_.slots(); ++s) {
      if (world_.up(s) && world_.member(s)->role() == cluster::Role::master) {
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
    for (std::size_t s = 0; s < world_.slots(); ++s) {
      if (world_.up(s) && s != m) {
        out.push_back(s);
      }
    }
    return out;
  }

  // One master, followed by every member that is up, listing them all.
  bool converged() const {
    const auto m = master();
    if (!m) {
      return false;
    }
    const cluster::Member& ms = *world_.member(*m);
    for (std::size_t s = 0; s < world_.slots(); ++s) {
      if (!world_.up(s) || s == *m) {
        continue;
      }
      const cluster::Member& f = *world_.member(s);
      if (f.role() != cluster::Role::follower || f.master() != world_.address(*m) ||
          f.epoch() != ms.epoch()) {
        return false;
      }
    }
    return ms.members().size() == world_.up_count();
  }

  // `ws` is served by exactly one member that is up, acknowledged in the master's table.
  bool owned(WorksetId ws) const {
    const auto m = master();
    if (!m || world_.member(*m)->table().state(ws) != WorksetState::assigned) {
      return false;
    }
    int n = 0;
    for (std::size_t s = 0; s < world_.slots(); ++s) {
      n += world_.up(s) && owns(*world_.member(s), ws) ? 1 : 0;
    }
    return n == 1;
  }

  bool has_traffic(WorksetId ws) const {
    const Time last = world_.last_traffic(ws);
    return last != Time::min() && world_.now() - last <= World::kTrafficGap;
  }

  // Every workset with recent traffic is owned.
  bool traffic_owned() const {
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      if (has_traffic(WorksetId{i}) && !owned(WorksetId{i})) {
        return false;
      }
    }
    return true;
  }

  std::vector<WorksetId> loaded_worksets_of(std::size_t slot) const {
    std::vector<WorksetId> out;
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      if (has_traffic(WorksetId{i}) && owns(*world_.member(slot), WorksetId{i})) {
        out.push_back(WorksetId{i});
      }
    }
    return out;
  }

  // Crashes a follower and measures detection and reassignment of its loaded worksets.
  void crash_follower(std::size_t victim) {
    const Time crashed = world_.now();
    const Ipv4Addr a = world_.address(victim);
    const auto loaded = loaded_worksets_of(victim);
    world_.crash(victim);
    bool detected = false;
    auto done = world_.run_until(crashed + kMeasureLimit, [&] {
      const auto m = master();
      if (!detected && m) {
        const auto& mem = world_.member(*m)->members();
        if (std::find(mem.begin(), mem.end(), a) == mem.end()) {
          detected = true;
          metrics_.failure_detection.push_back(world_.now() - crashed);
        }
      }
      if (!detected) {
        return false;
      }
      for (WorksetId ws : loaded) {
        // A workset whose traffic stopped after the crash needs no owner.
        if (world_.last_traffic(ws) > crashed && !owned(ws)) {
          return false;
        }
      }
      return true;
    });
    if (done) {
      metrics_.reassignment.push_back(*done - crashed);
    }
  }

  // Crashes the master and measures the failover: one master again, traffic owned.
  void crash_master(std::size_t victim) {
    const Time crashed = world_.now();
    world_.crash(victim);
    auto done =
        world_.run_until(crashed + kMeasureLimit, [&] { return converged() && traffic_owned(); });
    if (done) {
      metrics_.master_failover.push_back(*done - crashed);
    }
  }

  // Max - min of worksets per member that is up, from their own tables.
  std::size_t imbalance() const {
    std::size_t lo = SIZE_MAX;
    std::size_t hi = 0;
    for (std::size_t s = 0; s < world_.slots(); ++s) {
      if (!world_.up(s)) {
        continue;
      }
      std::size_t n = 0;
      for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
        n += owns(*world_.member(s), WorksetId{i}) ? 1 : 0;
      }
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
    return lo == SIZE_MAX ? 0 : hi - lo;
  }

  // One member, the master half the time, frozen for kPauseMin .. kPauseMax from a moment within
  // kPauseWithin; returns after it resumed.
  void pause_fault() {
    world_.run_until(world_.now() + prng().duration(0ns, kPauseWithin));
    std::vector<std::size_t> up;
    for (std::size_t s = 0; s < world_.slots(); ++s) {
      if (world_.up(s)) {
        up.push_back(s);
      }
    }
    if (up.empty()) {
      return;
    }
    const bool pick_master = prng().chance(0.5);
    std::size_t victim = up[prng().uniform(up.size())];
    if (const auto m = master(); pick_master && m) {
      victim = *m;
    }
    const Duration length = prng().duration(kPauseMin, kPauseMax);
    metrics_.pause = length;
    world_.pause(victim, length);
    world_.run_until(world_.now() + length);
  }

  // The liveness phase: the network is made healthy, a member pauses, the cluster must converge
  // within the bound after it resumed, and then every check applies for kLivenessExtra.
  RunResult finish() {
    if (world_.partitioned()) {
      world_.heal();
    }
    if (world_.network().loss != 0.0) {
      NetworkConfig n = world_.network();
      n.loss = 0.0;
      world_.set_network(n);
    }
    pause_fault();
    const Time end = std::max(world_.now(), world_.last_disturbance()) +
                     checkers_.bounds().convergence + kLivenessExtra;
    world_.run_until(end);
    if (checkers_.liveness_sweeps() == 0 && world_.up_count() > 0) {
      violation("the liveness phase never ran");
    }
    RunResult r;
    r.scenario = std::string(name_);
    r.seed = seed_;
    r.violations = checkers_.violations();
    r.violation_count = checkers_.violation_count() + extra_violations_;
    for (auto& v : own_violations_) {
      if (r.violations.size() < Checkers::kMaxRecorded) {
        r.violations.push_back(v);
      }
    }
    metrics_.false_failovers = checkers_.false_failovers();
    metrics_.pause_checks = checkers_.pause_checks();
    metrics_.simulated = world_.now();
    r.metrics = metrics_;
    r.digest = world_.trace_digest();
    r.counters = world_.counters();
    return r;
  }

  void violation(std::string what) {
    ++extra_violations_;
    own_violations_.push_back({world_.now(), std::move(what)});
  }

 private:
  static WorldConfig prepare(std::uint64_t seed, const ScenarioOptions& o, WorldConfig c) {
    c.seed = seed;
    c.timings.fixed_keepalive_n = o.fixed_keepalive_n;
    c.session_views = o.session_views;
    return c;
  }

  std::string_view name_;
  std::uint64_t seed_;
  World world_;
  Checkers checkers_;
  Metrics metrics_;
  std::uint64_t extra_violations_ = 0;
  std::vector<Violation> own_violations_;
};

// A world config whose member count is drawn from the seed (a separate stream, so that the count
// does not shift the world's own draws).
WorldConfig config_with(std::uint64_t seed, std::size_t min_members, std::size_t max_members,
                        std::size_t extra_slots = 0) {
  Prng p(seed ^ 0x5ce7a210u);
  WorldConfig c;
  c.slots = static_cast<std::size_t>(p.between(min_members, max_members)) + extra_slots;
  return c;
}

// Long flows, so that a crashed member's worksets keep their traffic while they are reassigned.
ClientConfig steady_clients() {
  ClientConfig c;
  c.max_flows = 12;
  c.spawn_chance = 0.5;
  c.flow_min = 2s;
  c.flow_max = 6s;
  c.period_min = 2ms;
  c.period_max = 6ms;
  return c;
}

// ---------------------------------------------------------------------------------------------

RunResult cold_start(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 1, 16);
  Run run("cold_start", seed, o, c);
  run.cold_start(c.slots, 300ms);
  return run.finish();
}

RunResult master_crash(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 2, 6);
  c.clients = steady_clients();
  Run run("master_crash", seed, o, c);
  run.cold_start(c.slots, 300ms);
  run.settle(run.prng().duration(500ms, 1500ms));
  if (auto m = run.master()) {
    run.crash_master(*m);
    // The old master comes back as a follower (or not), later.
    if (run.prng().chance(0.5)) {
      run.w().run_until(run.w().now() + run.prng().duration(0ms, 1s));
      run.w().start(*m);
    }
  } else {
    run.violation("no master before the crash");
  }
  return run.finish();
}

RunResult follower_crash(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 2, 6);
  c.clients = steady_clients();
  Run run("follower_crash", seed, o, c);
  run.cold_start(c.slots, 300ms);
  run.settle(run.prng().duration(500ms, 1500ms));
  auto f = run.followers();
  if (f.empty()) {
    run.violation("no follower before the crash");
    return run.finish();
  }
  // The follower with the most loaded worksets, ties to the first.
  std::size_t victim = f.front();
  std::size_t most = 0;
  for (std::size_t s : f) {
    const std::size_t n = run.loaded_worksets_of(s).size();
    if (n > most) {
      most = n;
      victim = s;
    }
  }
  run.crash_follower(victim);
  if (run.prng().chance(0.5)) {
    run.w().start(victim);
  }
  return run.finish();
}

RunResult crash_during_election(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 3, 6);
  c.clients = steady_clients();
  Run run("crash_during_election", seed, o, c);
  run.cold_start(c.slots, 300ms);
  run.settle(run.prng().duration(300ms, 1s));
  auto m = run.master();
  if (!m) {
    run.violation("no master before the crash");
    return run.finish();
  }
  const Time crashed = run.w().now();
  run.w().crash(*m);
  // Somewhere between the followers noticing (T) and the election's end (T + join timeout +
  // offer wait), crash another member: often the one that is offering.
  const auto& tm = run.w().config().timings;
  run.w().run_until(crashed + run.t() +
                    run.prng().duration(0ms, tm.join_timeout + tm.master_offer_wait));
  std::vector<std::size_t> offering;
  std::vector<std::size_t> up;
  for (std::size_t s = 0; s < run.w().slots(); ++s) {
    if (!run.w().up(s)) {
      continue;
    }
    up.push_back(s);
    const auto r = run.w().member(s)->role();
    if (r == cluster::Role::offering || r == cluster::Role::master) {
      offering.push_back(s);
    }
  }
  const auto& pool = offering.empty() ? up : offering;
  run.w().crash(pool[run.prng().uniform(pool.size())]);
  return run.finish();
}

RunResult simultaneous_joins(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 1, 5, 2);
  Run run("simultaneous_joins", seed, o, c);
  run.cold_start(c.slots - 2, 300ms);
  run.settle(run.prng().duration(200ms, 1s));
  run.w().start(c.slots - 2);
  run.w().start(c.slots - 1);
  return run.finish();
}

RunResult partition_heal(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 2, 8);
  Run run("partition_heal", seed, o, c);
  run.cold_start(c.slots, 300ms);
  run.settle(run.prng().duration(200ms, 1s));
  // Two halves (sizes differ by at most one; the side is a random subset).
  std::vector<std::size_t> order(c.slots);
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  for (std::size_t i = order.size(); i > 1; --i) {
    std::swap(order[i - 1], order[run.prng().uniform(i)]);
  }
  order.resize(c.slots / 2 + (c.slots % 2 == 1 && run.prng().chance(0.5) ? 1 : 0));
  run.w().partition(order);
  // Long enough, usually, for each side to elect its own master; sometimes shorter than T.
  run.w().run_until(run.w().now() + run.prng().duration(50ms, 2s));
  run.w().heal();
  return run.finish();
}

RunResult loss(std::string_view name, double p, std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 2, 5);
  c.clients.max_flows = 6;
  c.clients.period_min = 10ms;
  c.clients.period_max = 40ms;
  Run run(name, seed, o, c);
  run.cold_start(c.slots, 300ms);
  run.settle(500ms);
  NetworkConfig n = run.w().network();
  n.loss = o.loss.value_or(p);
  run.w().set_network(n);
  run.w().run_until(run.w().now() + (o.duration > 0ns ? o.duration : kDefaultLossDuration));
  return run.finish();
}

RunResult loss_1(std::uint64_t seed, const ScenarioOptions& o) {
  return loss("loss_1", 0.01, seed, o);
}
RunResult loss_5(std::uint64_t seed, const ScenarioOptions& o) {
  return loss("loss_5", 0.05, seed, o);
}
RunResult loss_20(std::uint64_t seed, const ScenarioOptions& o) {
  return loss("loss_20", 0.20, seed, o);
}

RunResult flapping_member(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 2, 5);
  c.clients = steady_clients();
  Run run("flapping_member", seed, o, c);
  run.cold_start(c.slots, 300ms);
  run.settle(300ms);
  const std::size_t flapper = run.prng().uniform(c.slots);
  const Time end = run.w().now() + (o.duration > 0ns ? o.duration : kDefaultFlapDuration);
  while (run.w().now() < end) {
    run.w().run_until(run.w().now() + run.prng().duration(50ms, 1500ms));
    if (run.w().up(flapper)) {
      run.w().crash(flapper);
    } else {
      run.w().start(flapper);
    }
  }
  if (!run.w().up(flapper)) {
    run.w().start(flapper);
  }
  return run.finish();
}

RunResult rebalance_after_join(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 2, 4, 1);
  c.clients.max_flows = 60;
  c.clients.spawn_interval = 5ms;
  c.clients.spawn_chance = 1.0;
  c.clients.flow_min = 10s;
  c.clients.flow_max = 20s;
  c.clients.period_min = 20ms;
  c.clients.period_max = 60ms;
  Run run("rebalance_after_join", seed, o, c);
  run.cold_start(c.slots - 1, 300ms);
  run.settle(1s);
  run.w().start(c.slots - 1);
  // The worksets carrying the flows that were live at the join stay with their members until
  // those flows end (sessions are not moved, issue 10); then a few rebalance periods.
  run.w().run_until(run.w().now() + c.clients.flow_max +
                    3 * run.w().config().timings.rebalance_period + 500ms);
  const std::size_t imbalance = run.imbalance();
  run.metrics().imbalance = imbalance;
  if (imbalance > 1) {
    run.violation("imbalance " + std::to_string(imbalance) +
                  " three rebalance periods after the flows of the join ended");
  }
  return run.finish();
}

// Converged from `from` (first start) within `limit`, recorded; then control datagrams sent per
// member per second over `steady`; false failovers are violations (the network is healthy).
void measure_scale(Run& run, Time from, Duration limit, Duration steady) {
  auto got = run.w().run_until(from + limit, [&] { return run.converged(); });
  if (!got) {
    run.violation("not converged " + std::to_string(limit.count() / 1'000'000) +
                  " ms after the first start");
    return;
  }
  run.metrics().convergence = *got - from;
  run.w().run_until(run.w().now() + 1s);  // the joins' aftermath
  const std::uint64_t sent = run.w().counters().control_sent;
  run.w().run_until(run.w().now() + steady);
  run.metrics().control_rate = static_cast<double>(run.w().counters().control_sent - sent) /
                               static_cast<double>(run.w().up_count()) /
                               std::chrono::duration<double>(steady).count();
  if (run.checkers().false_failovers() > 0) {
    run.violation(std::to_string(run.checkers().false_failovers()) +
                  " false failovers in a healthy network");
  }
}

// 64 members (the member list's practical size here) start at the same instant; a follower
// crashes once they have converged.
RunResult scale_64(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c;
  c.slots = 64;
  c.clients = steady_clients();
  Run run("scale_64", seed, o, c);
  const Time first = run.w().now();
  run.cold_start(c.slots, 0ns);
  measure_scale(run, first, 30s, 2s);
  const auto f = run.followers();
  if (!f.empty()) {
    run.crash_follower(f[run.prng().uniform(f.size())]);
  }
  return run.finish();
}

// Some members are slow: every control datagram and timer of theirs is handled up to T/2 late
// (a loaded machine). The cluster must converge and never declare a slow member dead.
RunResult slow_members(std::uint64_t seed, const ScenarioOptions& o) {
  WorldConfig c = config_with(seed, 3, 8);
  c.clients = steady_clients();
  c.network.processing_lag = c.timings.failure_interval / 2;
  Run run("slow_members", seed, o, c);
  bool any = false;
  for (std::size_t s = 0; s < c.slots; ++s) {
    if (run.prng().chance(0.5) || (!any && s + 1 == c.slots)) {
      run.w().set_processing_lag(s, run.t() / 2);
      any = true;
    }
  }
  const Time first = run.w().now();
  run.cold_start(c.slots, 300ms);
  measure_scale(run, first, 10s, 3s);
  return run.finish();
}

}  // namespace

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      {"cold_start", cold_start, "1..16 members start at random offsets in 0..300 ms"},
      {"master_crash", master_crash, "the master crashes in a busy cluster"},
      {"follower_crash", follower_crash, "the busiest follower crashes"},
      {"crash_during_election", crash_during_election,
       "the master crashes, then another member during the election"},
      {"simultaneous_joins", simultaneous_joins, "two members join at the same instant"},
      {"partition_heal", partition_heal, "two halves cut apart, then healed (tie-break)"},
      {"loss_1", loss_1, "1% control and data loss"},
      {"loss_5", loss_5, "5% control and data loss"},
      {"loss_20", loss_20, "20% control and data loss"},
      {"flapping_member", flapping_member, "one member crashes and restarts repeatedly"},
      {"rebalance_after_join", rebalance_after_join,
       "a member joins a busy cluster; worksets are rebalanced"},
      {"scale_64", scale_64, "64 members start at once, then a follower crashes"},
      {"slow_members", slow_members, "some members handle everything up to T/2 late"},
  };
  return all;
}

const Scenario* find_scenario(std::string_view name) {
  for (const auto& s : scenarios()) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

std::string replay_command(std::string_view scenario, std::uint64_t seed,
                           const ScenarioOptions& options) {
  std::string cmd =
      "phalanx-sim --scenario " + std::string(scenario) + " --seed " + std::to_string(seed);
  if (options.fixed_keepalive_n != 0) {
    cmd += " --fixed-n " + std::to_string(options.fixed_keepalive_n);
  }
  if (options.loss) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " --loss %g", *options.loss);
    cmd += buf;
  }
  if (options.duration > 0ns) {
    cmd +=
        " --duration-s " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options.duration).count());
  }
  return cmd;
}

}  // namespace phalanx::sim
