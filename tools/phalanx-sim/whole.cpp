// Every line depends only on the arguments except the speed figure, which reads the wall clock
// (tools/ may; src/sim may not): simulated seconds per wall second of the whole run.
#include "whole.hpp"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/node_scenarios.hpp"

namespace phalanx::sim {

int run_whole(const WholeCli& cli) {
  std::vector<const WholeScenario*> chosen;
  if (cli.scenario.empty()) {
    const auto fault = whole_fault_from_string(cli.fault);
    if (!fault) {
      fmt::print(stderr, "phalanx-sim: --fault follower, master, join or none, not '{}'\n",
                 cli.fault);
      return 2;
    }
    chosen.push_back(find_whole_scenario(scenario_name(*fault)));
  } else if (cli.scenario == "all") {
    for (const auto& s : whole_scenarios()) {
      chosen.push_back(&s);
    }
  } else if (const WholeScenario* s = find_whole_scenario(cli.scenario)) {
    chosen.push_back(s);
  } else {
    std::string names;
    for (const auto& s : whole_scenarios()) {
      names += " " + std::string(s.name);
    }
    fmt::print(stderr, "phalanx-sim: no whole scenario '{}'; known: all{}\n", cli.scenario, names);
    return 2;
  }
  const auto workload = workload_from_string(cli.workload);
  if (!workload) {
    fmt::print(stderr, "phalanx-sim: --workload {}, not '{}'\n", workload_names(), cli.workload);
    return 2;
  }
  std::optional<std::pair<std::uint16_t, std::uint16_t>> ports;
  if (!cli.peer_ports.empty()) {
    unsigned lo = 0;
    unsigned hi = 0;
    char dash = 0;
    char extra = 0;
    if (std::sscanf(cli.peer_ports.c_str(), "%u%c%u%c", &lo, &dash, &hi, &extra) != 3 ||
        dash != '-' || lo == 0 || lo > hi || hi > 65535) {
      fmt::print(stderr, "phalanx-sim: --peer-ports LO-HI (1 <= LO <= HI <= 65535), not '{}'\n",
                 cli.peer_ports);
      return 2;
    }
    ports = {static_cast<std::uint16_t>(lo), static_cast<std::uint16_t>(hi)};
  }
  struct Sum {
    std::string_view name;
    std::uint64_t opened = 0, lost = 0, lost_expected = 0, failing = 0, moved = 0, refused = 0,
                  sessions_moved = 0;
    std::array<KindTally, kLoadKinds> by_kind{};
  };
  std::vector<Sum> sums;
  double simulated_s = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const WholeScenario* sc : chosen) {
    Sum sum{sc->name};
    for (std::uint64_t i = 0; i < cli.seeds; ++i) {
      WholeOptions o;
      o.seed = cli.first_seed + i;
      o.connections = cli.connections;
      o.loss = cli.loss;
      o.workload = *workload;
      o.peer_port_range = ports;
      o.tweak = [&cli](NodeWorldConfig& c) {
        c.replicas = cli.replicas;
        if (!cli.file_sizes.empty()) {
          c.file_sizes = cli.file_sizes;
        }
      };
      if (cli.trace) {
        o.trace = [](Time t, std::size_t slot, std::string_view line) {
          fmt::print("{:>12.3f} ms  member {}  {}\n",
                     std::chrono::duration<double, std::milli>(t).count(), slot, line);
        };
      }
      const WholeReport r = sc->run(o);
      if (cli.seeds <= 20 || !r.ok()) {
        fmt::print("{}", format_report(r));
      }
      sum.opened += r.opened;
      sum.lost += r.lost;
      sum.lost_expected += r.lost_expected;
      sum.moved += r.worksets_moved;
      sum.refused += r.moves_refused;
      sum.sessions_moved += r.sessions_moved;
      simulated_s += std::chrono::duration<double>(r.simulated).count();
      sum.failing += r.ok() ? 0 : 1;
      for (std::size_t k = 0; k < kLoadKinds; ++k) {
        sum.by_kind[k].opened += r.by_kind[k].opened;
        sum.by_kind[k].completed += r.by_kind[k].completed;
        sum.by_kind[k].lost += r.by_kind[k].lost;
      }
    }
    sums.push_back(sum);
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::uint64_t failing = 0;
  for (const Sum& s : sums) {
    fmt::print("\nfigure: {}.failing_runs = {} runs\n", s.name, s.failing);
    fmt::print("figure: {}.connections_opened = {} connections\n", s.name, s.opened);
    fmt::print(
        "figure: {}.connections_lost = {} connections ({} expected: their member crashed, "
        "left, was paused until declared dead, or was cut off)\n",
        s.name, s.lost, s.lost_expected);
    fmt::print("figure: {}.lost_ratio = {:.4f} lost/opened\n", s.name,
               s.opened > 0 ? static_cast<double>(s.lost) / static_cast<double>(s.opened) : 0.0);
    fmt::print("figure: {}.worksets_moved = {} worksets ({} moves refused: live connections)\n",
               s.name, s.moved, s.refused);
    fmt::print(
        "figure: {}.sessions_moved = {} sessions (live moves: handed over with their "
        "workset)\n",
        s.name, s.sessions_moved);
    if (cli.workload != "default") {
      for (std::size_t k = 0; k < kLoadKinds; ++k) {
        fmt::print("figure: {}.{}_lost = {} of {} connections\n", s.name,
                   to_string(static_cast<LoadKind>(k)), s.by_kind[k].lost, s.by_kind[k].opened);
      }
    }
    failing += s.failing;
  }
  fmt::print(
      "figure: whole.sim_speed = {:.1f} simulated_s/wall_s ({:.1f} s simulated in {:.2f} "
      "s; varies with the machine)\n",
      wall_s > 0 ? simulated_s / wall_s : 0.0, simulated_s, wall_s);
  return failing > 0 ? 1 : 0;
}

}  // namespace phalanx::sim
