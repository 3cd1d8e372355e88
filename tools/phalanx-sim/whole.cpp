// Every line depends only on the arguments except the speed figure, which reads the wall clock
// (tools/ may; src/sim may not): simulated seconds per wall second of the whole run.
#include "whole.hpp"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <optional>
#include <utility>

#include "sim/node_scenarios.hpp"

namespace phalanx::sim {

int run_whole(const WholeCli& cli) {
  const auto fault = whole_fault_from_string(cli.fault);
  if (!fault) {
    fmt::print(stderr, "phalanx-sim: --fault follower, master, join or none, not '{}'\n",
               cli.fault);
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
  const std::string_view name = scenario_name(*fault);
  std::uint64_t opened = 0;
  std::uint64_t lost = 0;
  std::uint64_t lost_on_victim = 0;
  std::uint64_t failing = 0;
  std::array<KindTally, kLoadKinds> by_kind{};
  double simulated_s = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < cli.seeds; ++i) {
    WholeOptions o;
    o.seed = cli.first_seed + i;
    o.connections = cli.connections;
    o.loss = cli.loss;
    o.fault = *fault;
    o.workload = *workload;
    o.peer_port_range = ports;
    if (cli.trace) {
      o.trace = [](Time t, std::size_t slot, std::string_view line) {
        fmt::print("{:>12.3f} ms  member {}  {}\n",
                   std::chrono::duration<double, std::milli>(t).count(), slot, line);
      };
    }
    const WholeReport r = run_under_load(o);
    fmt::print("{}", format_report(r));
    opened += r.opened;
    lost += r.lost;
    lost_on_victim += r.lost_on_victim;
    simulated_s += std::chrono::duration<double>(r.simulated).count();
    failing += r.ok() ? 0 : 1;
    for (std::size_t k = 0; k < kLoadKinds; ++k) {
      by_kind[k].opened += r.by_kind[k].opened;
      by_kind[k].completed += r.by_kind[k].completed;
      by_kind[k].lost += r.by_kind[k].lost;
    }
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("\nfigure: {}.failing_runs = {} runs\n", name, failing);
  fmt::print("figure: {}.connections_opened = {} connections\n", name, opened);
  fmt::print("figure: {}.connections_lost = {} connections ({} on the crashed member)\n", name,
             lost, lost_on_victim);
  fmt::print("figure: {}.lost_ratio = {:.4f} lost/opened\n", name,
             opened > 0 ? static_cast<double>(lost) / static_cast<double>(opened) : 0.0);
  if (cli.workload != "default") {
    for (std::size_t k = 0; k < kLoadKinds; ++k) {
      fmt::print("figure: {}.{}_lost = {} of {} connections\n", name,
                 to_string(static_cast<LoadKind>(k)), by_kind[k].lost, by_kind[k].opened);
    }
  }
  fmt::print(
      "figure: whole.sim_speed = {:.1f} simulated_s/wall_s ({:.1f} s simulated in {:.2f} "
      "s; varies with the machine)\n",
      wall_s > 0 ? simulated_s / wall_s : 0.0, simulated_s, wall_s);
  return failing > 0 ? 1 : 0;
}

}  // namespace phalanx::sim
