// The follower's events (spec FIG. 8G-8I, "Client Cluster Member Events"): applying the
// master's keepalive (interval, member list, mirrored table), sending FollowerKeepalive, and
// obeying WorkAssign / WorkDeassign. The master watchdog itself runs in member.cpp's timers.
//
// Replication rule (STYLE 8): epochs move forward only; a keepalive of an older term than the
// master we follow is counted (rx_stale_epoch) and ignored.
#include <algorithm>
#include <set>

#include "cluster/member_impl.hpp"

namespace phalanx::cluster {

using filter::MemberId;
using filter::WorksetId;
using filter::WorksetState;

// --- follower (FIG. 8G-8I) ------------------------------------------------------------------

void Member::Impl::enter_follower(Time now, Ipv4Addr master_addr, Epoch master_epoch) {
  transition(Role::follower, now, "JoinAck from " + master_addr.to_string());
  master = master_addr;
  epoch = master_epoch;
  master_heard = now;
  master_seen = now;
  follow_interval = interval();
  follow_n = kMinKeepaliveN;
  role_deadline = kNever;
  verdict_pending = false;
  id_of(master_addr);
  send_follower_keepalive(now);
}

Duration Member::Impl::follower_period() const {
  return follow_interval / follow_n;
}

void Member::Impl::send_follower_keepalive(Time now) {
  FollowerKeepalive fk;
  fk.sequence = ++follower_seq;
  fk.load = static_cast<std::uint32_t>(table.worksets_of(self_id));
  send(master, fk);
  next_keepalive = now + follower_period();
}

void Member::Impl::follower_on_master_keepalive(Time now, const Message& m,
                                                const MasterKeepalive& ka) {
  // Another master while ours is alive: not ours to judge (the masters tie-break between them).
  // If ours falls silent, that one is the master to join, whatever its term.
  const bool other = !master || m.sender != *master;
  if (other) {
    other_master_heard = now;
  }
  // Replication moves forward only: a keepalive of an older term than ours is stale (counted,
  // ignored). Our watchdog still runs, so a dead master is noticed all the same.
  if (m.epoch < epoch) {
    ++counters.rx_stale_epoch;
    return;
  }
  if (other) {
    ++counters.rx_other_master;
    return;
  }
  epoch = m.epoch;
  master_heard = now;
  master_seen = now;
  // FIG. 8G 891: the adaptive interval.
  follow_n = std::clamp<int>(ka.keepalive_n, kMinKeepaliveN, kMaxKeepaliveN);
  if (ka.failure_interval_ms > 0) {
    follow_interval = std::chrono::milliseconds(ka.failure_interval_ms);
  }
  next_keepalive = std::min(next_keepalive, now + follower_period());
  // The master removed us (we were declared dead): rejoin.
  if (std::find(ka.members.begin(), ka.members.end(), config.address) == ka.members.end()) {
    enter_joining(now, "not in the master's member list");
    return;
  }
  members = ka.members;
  for (Ipv4Addr a : members) {
    id_of(a);
  }
  mirror_owners(ka);
  // FIG. 8G 893-898.
  sync_apps(std::set<Ipv4Addr>(members.begin(), members.end()));
}

// Followers mirror the master's table: only acknowledged assignments are listed. The master is
// the authority: listed as someone else -> release ours; listed as ours -> adopt. A kUnassigned
// entry leaves our own worksets alone (an assignment we acknowledged may not have reached the
// master yet).
void Member::Impl::mirror_owners(const MasterKeepalive& ka) {
  if (ka.owners.size() != filter::kWorksetCount) {
    return;
  }
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    const std::uint8_t e = ka.owners[i];
    const bool assigned = table.state(ws) != WorksetState::unassigned;
    if (e == kUnassigned || e >= ka.members.size()) {
      if (assigned && !owns(ws)) {
        table.release(ws);
      }
      continue;
    }
    const MemberId owner = id_of(ka.members[e]);
    if (assigned && table.owner(ws) == owner) {
      continue;
    }
    if (assigned) {
      table.release(ws);
    }
    table.assign(ws, owner);
    table.ack(ws);
  }
}

void Member::Impl::follower_on_work_assign(const WorkAssign& wa) {
  WorkAssignAck ack;
  for (std::uint16_t v : wa.worksets) {
    const auto ws = WorksetId::from_wire(v);
    if (!ws) {
      continue;
    }
    if (!owns(*ws)) {
      if (table.state(*ws) != WorksetState::unassigned) {
        table.release(*ws);
      }
      table.assign(*ws, self_id);
      table.ack(*ws);
    }
    ack.worksets.push_back(v);  // acknowledge duplicates too: our first ack may have been lost
  }
  send(master, std::move(ack));
}

void Member::Impl::follower_on_work_deassign(const WorkDeassign& wd) {
  WorkDeassignAck ack;
  for (std::uint16_t v : wd.worksets) {
    const auto ws = WorksetId::from_wire(v);
    if (!ws) {
      continue;
    }
    if (owns(*ws)) {
      table.release(*ws);
    }
    ack.worksets.push_back(v);
  }
  send(master, std::move(ack));
}

}  // namespace phalanx::cluster
