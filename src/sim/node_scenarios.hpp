// Scenarios of the whole-member world (issue 10, first cut): whole members (node::ClusterNode)
// serving TCP peers, judged by NodeCheckers. Beside scenarios.hpp (the cluster-only scenarios).
//
// follower_crash_under_load / master_crash_under_load / join_under_load / no_crash_under_load:
// `members` members cold-start together (join: all but the last); once they have converged,
// `connections` items of `workload` (node_workload.hpp: by default downloads of f0..f3 and echo
// streams) open from `peers` peers, spread over `spread`; in the middle of that spread a follower
// (drawn by the seed) or the master crashes, or the last member joins, or nothing happens. The run
// ends when every connection has ended, or at `limit` (the rest then times out: a violation).
// Losses of the crashed member's connections are expected (no session replication yet: the new
// owner of their worksets answers them with an RST); any other loss is a violation.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/node_checkers.hpp"
#include "sim/node_workload.hpp"
#include "sim/node_world.hpp"

namespace phalanx::sim {

enum class WholeFault : std::uint8_t { none, follower, master, join };
std::string_view scenario_name(WholeFault f);
// "none", "follower", "master", "join" (the CLI's words) and back.
std::optional<WholeFault> whole_fault_from_string(std::string_view s);
std::string_view fault_word(WholeFault c);

struct WholeOptions {
  std::uint64_t seed = 1;
  std::size_t members = 3;
  std::size_t peers = 10;
  std::size_t connections = 100;  // workload items (a burst is one, opening several)
  WholeFault fault = WholeFault::follower;
  Duration converge = std::chrono::milliseconds(1500);  // cold start, before any connection
  Duration spread = std::chrono::seconds(4);            // connections open over this
  Duration limit = std::chrono::seconds(120);           // simulated
  double loss = 0.0;
  // The peers' ephemeral port range (NodeWorldConfig::peer_port_range), when not Linux's.
  std::optional<std::pair<std::uint16_t, std::uint16_t>> peer_port_range;
  // What the peers do (node_workload.hpp): by default 60 % downloads, 40 % echo streams.
  WorkloadMix workload;
  // Every member's log line (replaying a seed), when set.
  NodeWorld::LogSink trace;
  // Applied to the world's configuration before it is built (tests: corrupt, slow down...).
  std::function<void(NodeWorldConfig&)> tweak;
};

struct WholeReport {
  std::string scenario;
  std::uint64_t seed = 0;
  std::size_t opened = 0;
  std::size_t completed = 0;
  std::size_t reset = 0;
  std::size_t timed_out = 0;
  std::size_t failed = 0;  // truncated or bad_response
  std::size_t lost = 0;    // opened - completed
  std::size_t lost_on_victim = 0;
  std::optional<std::size_t> victim;
  std::vector<std::size_t> resets_by_member;  // RSTs that ended a connection, by sender slot
  std::vector<std::size_t> served_by_member;  // connections by the slot that sent the SYN-ACK
  std::uint64_t bytes_checked = 0;
  std::uint64_t segments_checked = 0;
  std::array<KindTally, kLoadKinds> by_kind{};  // by LoadKind (node_checkers.hpp)
  Time simulated{0};
  std::uint64_t events = 0;
  std::uint64_t digest = 0;
  std::uint64_t violation_count = 0;
  std::vector<std::string> violations;  // the first NodeCheckers::kMaxReported
  std::string replay;

  bool ok() const { return violation_count == 0; }
};

WholeReport run_under_load(const WholeOptions& o);

// One line: seed, connections lost / opened, outcomes, digest; then violations and the replay
// command when there are any.
std::string format_report(const WholeReport& r);

}  // namespace phalanx::sim
