// The status a member reports (DESIGN §9): its view of the cluster as JSON, for the status
// socket and `phalanxctl status`. Keys are stable; tools and the e2e tests read them.
//
//   cluster, member, mac, cluster_ip, mode, role, master (null while none), epoch, keepalive_n,
//   time_ms (wall clock, ms since the Unix epoch), uptime_ms,
//   members: [{address, mac (null if not learned), worksets, loss_estimate (master only, else
//             null)}]  -- worksets each member owns in this member's table
//   owned: [workset ids this member serves (mine)], unassigned: count,
//   sessions: TCP connections this member holds,
//   drops: {reason: count} (cluster dispatch, held frames, stack), counters: {name: count},
//   events: the last cluster events ("joining => offering: ...")
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/clock.hpp"
#include "runtime/cluster_node.hpp"

namespace phalanx::runtime {

nlohmann::json cluster_status(const ClusterNode& node, Time now);

}  // namespace phalanx::runtime
