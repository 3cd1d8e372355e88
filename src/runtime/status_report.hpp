// The status a member reports (DESIGN §9): its view of the cluster as JSON, for the status
// socket and `phalanxctl status`. Keys are stable; tools and the e2e tests read them.
//
//   cluster, member, mac, cluster_ip, mode, role, master (null while none), epoch, keepalive_n,
//   time_ms (wall clock, ms since the Unix epoch), uptime_ms,
//   members: [{address, mac (null if not learned), worksets, loss_estimate (master only, else
//             null)}]  -- worksets each member owns in this member's table
//   owned: [workset ids this member serves (mine)], unassigned: count,
//   sessions: TCP connections this member holds,
//   pid: the daemon's process id (phalanxctl drain signals it), draining: true once drained,
//   serving: [{workset, sessions, backup (null: none)}] -- its worksets with live connections
//            and the member holding their state,
//   backing_up: {workset: sessions} -- the replicated sessions this member holds as backup,
//   drops: {reason: count} (cluster dispatch, held frames, stack, and with add_counters() the
//          link's: "link.rx_truncated", ...), counters: {name: count},
//   events: the last cluster events ("joining => offering: ...")
#pragma once

#include <nlohmann/json.hpp>

#include "node/cluster_node.hpp"
#include "runtime/clock.hpp"
#include "runtime/logging.hpp"

namespace phalanx::runtime {

using node::ClusterNode;

nlohmann::json cluster_status(const ClusterNode& node, Time now);

// Adds `counters` (named as runtime/logging.hpp names them) to a status: "drop.x" as
// drops["<prefix>.x"] when not zero, the others as counters["<prefix>.name"].
void add_counters(nlohmann::json& status, std::string_view prefix, const CounterList& counters);

}  // namespace phalanx::runtime
