// phalanx-sim: runs the simulator's scenarios over a range of seeds and prints a summary.
//
//   phalanx-sim --scenario NAME|all --seeds N [--first-seed S] [--seed S] [--fixed-n K]
//               [--loss P] [--duration-s D] [--trace]
//   phalanx-sim --demo
//   phalanx-sim --whole [--scenario NAME|all] [--seeds N] [--first-seed S] [--seed S]
//               [--connections C] [--workload default|mixed|downloads|echo|idle|bursts]
//               [--peer-ports LO-HI] [--loss P] [--trace]
//   phalanx-sim --whole --fault follower|master|join|none ...  (= --scenario *_under_load)
//
// Output depends only on the arguments (no wall-clock times), so the same seed prints the same
// bytes; --whole (whole members and TCP peers, whole.cpp) adds one wall-clock figure, its speed. A
// failing run prints its violations and the command that replays it.
#include <fmt/format.h>

#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "demo.hpp"
#include "sim/scenarios.hpp"
#include "whole.hpp"

namespace {

using phalanx::sim::Duration;
using phalanx::sim::RunResult;
using phalanx::sim::Scenario;
using phalanx::sim::ScenarioOptions;

// The replay command of the run in progress, for a member's check_invariants() abort.
char g_replay[256] = {};

void on_abort(int) {
  const char head[] = "\nphalanx-sim: aborted; replay with: ";
  (void)!write(STDERR_FILENO, head, sizeof head - 1);
  (void)!write(STDERR_FILENO, g_replay, std::strlen(g_replay));
  (void)!write(STDERR_FILENO, "\n", 1);
  std::signal(SIGABRT, SIG_DFL);
}

double to_ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Nearest-rank percentile; nullopt for no samples.
std::optional<double> percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return std::nullopt;
  }
  std::sort(v.begin(), v.end());
  std::size_t rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

std::string cell(const std::optional<double>& v) {
  return v ? fmt::format("{:.1f}", *v) : "-";
}

struct Summary {
  std::string name;
  std::uint64_t runs = 0;
  std::uint64_t failing = 0;
  std::vector<double> first_master, detection, reassignment, failover;
  std::uint64_t false_failovers = 0;
  double hours = 0;
  std::optional<std::size_t> max_imbalance;
  std::uint64_t pause_checked = 0;  // runs in which the paused-member check ran
  // Sessions (TCP flows): opened, and lost because their member failed (expected until
  // sessions are replicated); a session broken by a move is a violation.
  std::vector<double> convergence, control_rate;  // scale_64, slow_members
  std::uint64_t sessions = 0;
  std::uint64_t sessions_lost = 0;
  double ff_per_hour() const {
    return hours > 0 ? static_cast<double>(false_failovers) / hours : 0;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Phalanx deterministic cluster simulator"};
  std::string scenario = "all";
  std::uint64_t seeds = 100;
  std::uint64_t first_seed = 0;
  std::optional<std::uint64_t> seed;
  int fixed_n = 0;
  std::optional<double> loss;
  double duration_s = 0;
  app.add_option("--scenario", scenario, "scenario name, or all")->capture_default_str();
  app.add_option("--seeds", seeds, "how many seeds per scenario")->capture_default_str();
  app.add_option("--first-seed", first_seed, "first seed of the range")->capture_default_str();
  app.add_option("--seed", seed, "run this one seed (replay)");
  app.add_option("--fixed-n", fixed_n, "fixed keepalive count n (0: adaptive)")
      ->check(CLI::Range(0, 20));
  app.add_option("--loss", loss, "loss probability for the loss_* scenarios")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--duration-s", duration_s,
                 "simulated seconds of the faulty phase of loss_* and flapping_member");
  bool trace = false;
  app.add_flag("--trace", trace, "print every member's event log (use with --seed)");
  bool demo = false;
  app.add_flag("--demo", demo, "a guided run of a three-member cluster through two crashes");
  bool whole = false;
  app.add_flag("--whole", whole,
               "whole members (node::ClusterNode) and TCP peers under load, with --fault");
  std::string fault = "follower";
  app.add_option("--fault", fault,
                 "--whole: a follower or the master crashes, a member joins, or none")
      ->capture_default_str();
  std::uint64_t connections = 100;
  app.add_option("--connections", connections,
                 "connections per run (--whole; a burst of --workload counts as one)")
      ->capture_default_str();
  std::string workload = "default";
  app.add_option("--workload", workload,
                 "--whole: what the peers do: default (60 % downloads, 40 % echo), mixed (also "
                 "idle keepalive connections and bursts of short ones), downloads, echo, idle, "
                 "bursts")
      ->capture_default_str();
  std::string peer_ports;
  app.add_option("--peer-ports", peer_ports,
                 "--whole: the peers' ephemeral port range LO-HI (default Linux's 32768-60999; a "
                 "narrow one makes peers take ports the servers still hold in TIME-WAIT)");
  unsigned replicas = 1;
  app.add_option("--replicas", replicas,
                 "--whole: members holding a copy of each workset's sessions besides its owner "
                 "(0: session replication off, to compare)")
      ->check(CLI::Range(0, 1))
      ->capture_default_str();
  std::vector<std::uint64_t> file_sizes;
  app.add_option("--file-sizes", file_sizes,
                 "--whole: the sizes in bytes of the files http serves (default 1000 20000 "
                 "100000 400000; larger ones keep downloads running across a crash)")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  if (demo) {
    return phalanx::sim::run_demo();
  }
  if (whole) {
    phalanx::sim::WholeCli w;
    w.first_seed = seed.value_or(first_seed);
    w.seeds = seed ? 1 : (app.count("--seeds") > 0 ? seeds : 1);
    w.connections = connections;
    w.loss = loss.value_or(0.0);
    w.fault = fault;
    w.workload = workload;
    w.peer_ports = peer_ports;
    w.replicas = replicas;
    w.file_sizes = file_sizes;
    if (app.count("--scenario") > 0) {
      w.scenario = scenario;
    }
    w.trace = trace;
    return phalanx::sim::run_whole(w);
  }

  if (seed) {
    first_seed = *seed;
    seeds = 1;
  }
  ScenarioOptions options;
  options.fixed_keepalive_n = fixed_n;
  options.loss = loss;
  options.duration =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(duration_s));
  if (trace) {
    options.trace = [](phalanx::sim::Time t, std::size_t slot, std::string_view line) {
      fmt::print("{:>12.3f} ms  member {}  {}\n", to_ms(t), slot, line);
    };
  }

  std::vector<const Scenario*> chosen;
  if (scenario == "all") {
    for (const auto& s : phalanx::sim::scenarios()) {
      chosen.push_back(&s);
    }
  } else if (const Scenario* s = phalanx::sim::find_scenario(scenario)) {
    chosen.push_back(s);
  } else {
    std::string names;
    for (const auto& s : phalanx::sim::scenarios()) {
      names += " " + std::string(s.name);
    }
    fmt::print(stderr, "phalanx-sim: no scenario '{}'; known: all{}\n", scenario, names);
    return 2;
  }

  std::signal(SIGABRT, on_abort);
  std::vector<Summary> summaries;
  bool any_failed = false;
  for (const Scenario* s : chosen) {
    Summary sum;
    sum.name = std::string(s->name);
    for (std::uint64_t i = 0; i < seeds; ++i) {
      const std::uint64_t sd = first_seed + i;
      const std::string replay = phalanx::sim::replay_command(s->name, sd, options);
      std::snprintf(g_replay, sizeof g_replay, "%s", replay.c_str());
      const RunResult r = s->run(sd, options);
      ++sum.runs;
      const auto& m = r.metrics;
      if (m.first_master) {
        sum.first_master.push_back(to_ms(*m.first_master));
      }
      for (auto d : m.failure_detection) {
        sum.detection.push_back(to_ms(d));
      }
      for (auto d : m.reassignment) {
        sum.reassignment.push_back(to_ms(d));
      }
      for (auto d : m.master_failover) {
        sum.failover.push_back(to_ms(d));
      }
      sum.false_failovers += m.false_failovers;
      sum.hours += std::chrono::duration<double>(m.simulated).count() / 3600.0;
      if (m.imbalance) {
        sum.max_imbalance = std::max(sum.max_imbalance.value_or(0), *m.imbalance);
      }
      sum.pause_checked += m.pause_checks > 0 ? 1 : 0;
      if (m.convergence) {
        sum.convergence.push_back(to_ms(*m.convergence));
      }
      if (m.control_rate) {
        sum.control_rate.push_back(*m.control_rate);
      }
      sum.sessions += r.counters.sessions_opened;
      sum.sessions_lost += r.counters.sessions_lost_to_faults + r.counters.sessions_broken;
      if (seeds == 1) {
        fmt::print("{} seed {}: {} violations, {} events, digest {:016x}\n", r.scenario, r.seed,
                   r.violation_count, r.counters.events, r.digest);
      }
      if (!r.ok()) {
        ++sum.failing;
        any_failed = true;
        fmt::print("FAIL {} seed {}: {} violations\n", r.scenario, r.seed, r.violation_count);
        for (const auto& v : r.violations) {
          fmt::print("  at {:.3f} ms: {}\n", to_ms(v.at), v.what);
        }
        fmt::print("  replay: {}\n", replay);
      }
    }
    summaries.push_back(std::move(sum));
  }

  fmt::print("\n{:<22} {:>6} {:>5} {:>15} {:>15} {:>15} {:>15} {:>9} {:>5} {:>6} {:>15}\n",
             "scenario", "runs", "viol", "first master", "detection", "reassignment", "failover",
             "false/h", "imbal", "paused", "sessions");
  fmt::print("{:<22} {:>6} {:>5} {:>15} {:>15} {:>15} {:>15} {:>9} {:>5} {:>6} {:>15}\n", "", "",
             "", "p50/p99 ms", "p50/p99 ms", "p50/p99 ms", "p50/p99 ms", "", "max", "chkd",
             "lost/opened");
  auto pair = [](const std::vector<double>& v) {
    return cell(percentile(v, 50)) + "/" + cell(percentile(v, 99));
  };
  for (const auto& s : summaries) {
    fmt::print("{:<22} {:>6} {:>5} {:>15} {:>15} {:>15} {:>15} {:>9.2f} {:>5} {:>6} {:>15}\n",
               s.name, s.runs, s.failing, pair(s.first_master), pair(s.detection),
               pair(s.reassignment), pair(s.failover), s.ff_per_hour(),
               s.max_imbalance ? std::to_string(*s.max_imbalance) : "-", s.pause_checked,
               fmt::format("{}/{}", s.sessions_lost, s.sessions));
  }
  fmt::print("\n");
  for (const auto& s : summaries) {
    fmt::print("figure: {}.failing_runs = {} runs\n", s.name, s.failing);
    auto fig = [&](const char* what, const std::vector<double>& v) {
      if (!v.empty()) {
        fmt::print("figure: {}.{}_p50 = {:.1f} ms\n", s.name, what, *percentile(v, 50));
        fmt::print("figure: {}.{}_p99 = {:.1f} ms\n", s.name, what, *percentile(v, 99));
      }
    };
    fig("first_master", s.first_master);
    fig("failure_detection", s.detection);
    fig("reassignment", s.reassignment);
    fig("master_failover", s.failover);
    fig("convergence", s.convergence);
    if (!s.control_rate.empty()) {
      fmt::print("figure: {}.control_per_member_p50 = {:.1f} datagrams_per_s\n", s.name,
                 *percentile(s.control_rate, 50));
      fmt::print("figure: {}.control_per_member_max = {:.1f} datagrams_per_s\n", s.name,
                 *percentile(s.control_rate, 100));
    }
    fmt::print("figure: {}.false_failovers = {:.2f} per_hour\n", s.name, s.ff_per_hour());
    fmt::print("figure: {}.pause_checked_runs = {} runs\n", s.name, s.pause_checked);
    fmt::print("figure: {}.sessions_opened = {} sessions\n", s.name, s.sessions);
    fmt::print("figure: {}.sessions_lost = {} sessions\n", s.name, s.sessions_lost);
    fmt::print("figure: {}.sessions_lost_ratio = {:.4f} lost/opened\n", s.name,
               s.sessions > 0 ? static_cast<double>(s.sessions_lost) / s.sessions : 0.0);
    if (s.max_imbalance) {
      fmt::print("figure: {}.max_imbalance = {} worksets\n", s.name, *s.max_imbalance);
    }
  }
  return any_failed ? 1 : 0;
}
