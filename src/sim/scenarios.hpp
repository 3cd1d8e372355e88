// Named simulation scenarios. Each is a function of (seed, options): it builds a world from the
// seed, runs a safety phase (faults; only the always-on checks apply), then a liveness phase
// (healthy network; the cluster must converge within Bounds::convergence and then every check
// applies), and returns the violations and the metrics it measured. The same (seed, options)
// always returns the same result.
//
// Every scenario ends its faults with a pause (issue 9 part 5): once the network is healthy
// again, within kPauseWithin, one member (the master half the time) is frozen for 50 ms .. 3 s
// and resumed with its queue (World::pause); the liveness phase starts after the resume.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/checkers.hpp"
#include "sim/world.hpp"

namespace phalanx::sim {

struct ScenarioOptions {
  int fixed_keepalive_n = 0;   // 0: adaptive (DESIGN §4); otherwise a fixed n, for comparison
  std::optional<double> loss;  // overrides the loss of the loss_* scenarios
  // Length of the faulty phase of the long scenarios (loss_*, flapping_member); 0: default.
  Duration duration{0};
  // Members report their sessions (cluster::SessionView). Off: the cluster moves worksets
  // without regard to sessions, as before issue 10 (the checkers then catch broken sessions).
  bool session_views = true;
  // When set, every member's event log line and every crash/start is passed here (replays).
  World::LogSink trace;
};

struct Metrics {
  std::optional<Duration> first_master;     // first start -> first member in the master role
  std::vector<Duration> failure_detection;  // follower crash -> master no longer lists it
  std::vector<Duration> reassignment;       // follower crash -> its loaded worksets owned again
  std::vector<Duration> master_failover;    // master crash -> one master, traffic owned again
  std::uint64_t false_failovers = 0;        // see Checkers::false_failovers()
  std::optional<std::size_t> imbalance;     // max - min worksets per member after rebalancing
  std::optional<Duration> pause;            // how long the paused member was frozen
  std::uint64_t pause_checks = 0;           // steps at which the paused-member check ran
  Duration simulated{0};                    // simulated time of the run
  // scale_64 / slow_members: first start -> one master followed by every member; control
  // datagrams sent per member per second over a steady stretch (a broadcast counts once).
  std::optional<Duration> convergence;
  std::optional<double> control_rate;
};

struct RunResult {
  std::string scenario;
  std::uint64_t seed = 0;
  std::vector<Violation> violations;  // the first few
  std::uint64_t violation_count = 0;
  Metrics metrics;
  std::uint64_t digest = 0;  // World::trace_digest() at the end
  WorldCounters counters;

  bool ok() const { return violation_count == 0; }
};

using ScenarioFn = RunResult (*)(std::uint64_t seed, const ScenarioOptions& options);

struct Scenario {
  std::string_view name;
  ScenarioFn run;
  std::string_view what;
};

// Every scenario, in a fixed order.
const std::vector<Scenario>& scenarios();
// nullptr when there is no scenario of that name.
const Scenario* find_scenario(std::string_view name);

// The command that replays one run (STYLE 9).
std::string replay_command(std::string_view scenario, std::uint64_t seed,
                           const ScenarioOptions& options);

}  // namespace phalanx::sim
