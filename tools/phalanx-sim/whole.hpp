// `phalanx-sim --whole`: the whole-member simulator (src/sim/node_world.hpp) over a range of
// seeds, see whole.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace phalanx::sim {

struct WholeCli {
  std::uint64_t first_seed = 0;
  std::uint64_t seeds = 1;
  std::uint64_t connections = 100;
  double loss = 0.0;
  std::string peer_ports;  // "LO-HI": the peers' ephemeral port range; empty: Linux's default
  bool trace = false;      // print every member's log
  std::string fault = "follower";         // follower, master, join or none
  std::string scenario;                   // a whole scenario's name, or all; empty: by --fault
  std::string workload = "default";       // a name of sim::workload_from_string()
  unsigned replicas = 1;                  // NodeWorldConfig::replicas
  std::vector<std::uint64_t> file_sizes;  // NodeWorldConfig::file_sizes; empty: its default
};

// Runs the scenario (--scenario, or the one of --fault) for each seed and prints a line per
// seed, the figures per scenario, and the simulator's speed. Returns the process exit code: 1 when
// any seed had a violation.
int run_whole(const WholeCli& cli);

}  // namespace phalanx::sim
