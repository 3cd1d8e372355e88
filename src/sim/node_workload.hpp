// Workloads of the whole-member world (issue 10): what the TCP peers ask of the cluster while a
// scenario crashes, joins or does nothing. One call schedules a mix on a NodeWorld, every draw
// made from the scenario's PRNG before any connection runs (so a seed replays exactly).
//
// The kinds (tcp_peer.hpp tells how a peer runs each):
//   download  an HTTP download of one of the world's files (NodeWorldConfig::file_sizes: 1 kB to
//             400 kB by default), every body byte checked;
//   echo      a stream to the echo port, echoed back and checked byte for byte, both directions
//             in flight at once; at 2048 bytes per 50 ms, 100 kB last ~2.5 s, 300 kB ~7.5 s (long
//             enough to span a fault in the middle of the spread);
//   idle      a long idle connection with TCP keepalive: a little echo, seconds of quiet with
//             only keepalive probes on the wire, a final chunk, its echo, and a clean close;
//   burst     one peer downloads small files one after another, each on a new connection (new
//             source port, the server's TIME-WAIT left behind each time).
// Each of `items` draws its kind by weight; a burst is one item and opens several connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sim/node_world.hpp"
#include "sim/prng.hpp"

namespace phalanx::sim {

struct WorkloadMix {
  std::string name = "default";  // its name for --workload (replay commands)
  // Weights of the kinds (non-negative, not all zero; they need not sum to 1). The default is
  // the first simulator's load: 60 % downloads, 40 % echo streams, drawn exactly as it drew them
  // (so its seeds replay the same runs).
  double downloads = 0.6;
  double echoes = 0.4;
  double idles = 0.0;
  double bursts = 0.0;
  // Echo: stream length in bytes.
  std::uint64_t echo_min = 1000;
  std::uint64_t echo_max = 100000;
  // Idle: bytes before and after the quiet phase (each), and the quiet phase's length.
  std::uint64_t idle_bytes_min = 100;
  std::uint64_t idle_bytes_max = 4000;
  Duration idle_min = std::chrono::seconds(3);
  Duration idle_max = std::chrono::seconds(8);
  // Burst: connections per burst, of the world's files no larger than burst_file_max.
  std::size_t burst_min = 3;
  std::size_t burst_max = 12;
  std::uint64_t burst_file_max = 20000;
};

// The named mixes of `phalanx-sim --whole --workload`:
//   default    60 % downloads, 40 % echo (WorkloadMix{});
//   mixed      all four kinds: 35 % downloads, 25 % echo (up to 300 kB), 20 % idle, 20 % bursts;
//   downloads, echo, idle, bursts: one kind alone (echo up to 300 kB).
std::optional<WorkloadMix> workload_from_string(std::string_view name);
// The names above, for --help and error messages.
std::string workload_names();

// What schedule_workload() planned.
struct ScheduledWorkload {
  std::size_t connections = 0;  // connections the peers will open (a burst counts each)
  std::size_t downloads = 0;
  std::size_t echoes = 0;
  std::size_t idles = 0;
  std::size_t bursts = 0;
  std::size_t burst_connections = 0;
};

// Schedules `items` items of `mix` on `w`'s peers (item k on peer k mod peers), each starting
// at a time drawn uniformly in [from, from + spread]; every draw from `prng` (the scenario's)
// is made now. A mix whose weights are all zero, or whose bursts find no file of at most
// burst_file_max bytes, is a caller bug and aborts.
ScheduledWorkload schedule_workload(NodeWorld& w, Prng& prng, const WorkloadMix& mix,
                                    std::size_t items, Time from, Duration spread);

}  // namespace phalanx::sim
