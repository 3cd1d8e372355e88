// The follower's events (spec FIG. 8G-8I, "Client Cluster Member Events"): applying the
// master's keepalive (interval, member list, mirrored table), sending FollowerKeepalive, and
// obeying WorkAssign / WorkDeassign. The master watchdog itself runs in member.cpp's timers.
//
// Replication rule (STYLE 8): epochs move forward only; a keepalive of an older term than the
// master we follow is counted (rx_stale_epoch) and ignored. A keepalive of a newer term from
// another master means our view is older than the cluster's: we do not act on it, we rejoin
// (stale_view), claiming the worksets we serve; the new master keeps those it has not given
// away and names the real owner of the others in its next keepalive.
//
// Values from the wire are bounded before they are used: announced timings outside the
// configured range, or other than ours, are refused (rx_refused_timings); the member list is at
// most kMaxMembers (the decoder) and registers nothing that outlives its use (kMaxRegistered).
#include <algorithm>
#include <bitset>
#include <set>

#include "cluster/member_impl.hpp"

namespace phalanx::cluster {

using filter::MemberId;
using filter::WorksetId;
using filter::WorksetState;

// --- follower (FIG. 8G-8I) ------------------------------------------------------------------

void Member::Impl::enter_follower(Time now, Ipv4Addr master_addr, Epoch master_epoch,
                                  std::uint32_t keepalive_sequence) {
  transition(Role::follower, now, "JoinAck from " + master_addr.to_string());
  keepalive_floor = keepalive_sequence;
  admitted_once = true;
  master = master_addr;
  epoch = master_epoch;
  master_heard = now;
  master_unheard = 0;
  master_seen = now;
  follow_n = kMinKeepaliveN;
  role_deadline = kNever;
  verdict_pending = false;
  id_of(master_addr);
  send_follower_keepalive(now);
}

Duration Member::Impl::follower_period() const {
  return interval() / follow_n;
}

void Member::Impl::send_follower_keepalive(Time now) {
  FollowerKeepalive fk;
  fk.sequence = ++follower_seq;
  fk.load = static_cast<std::uint32_t>(table.worksets_of(self_id));
  const std::bitset<filter::kWorksetCount> busy = busy_now();
  if (busy.any()) {
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      if (busy.test(i) && owns(WorksetId{i})) {
        fk.busy.push_back(i);
      }
    }
  }
  fk.active = static_cast<std::uint16_t>(active_now(now));
  fk.draining = draining;
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
  // A newer term while ours is alive (heard within T/2) and we were not away: a side that elected
  // its own master while cut off (partition heal), or a follower that missed n keepalives and
  // made itself master. The two masters tie-break; ours tells us if it loses (ExitCluster).
  // Following the newer term would give up what its table gives to others: our live connections
  // (whole-member partition_heal seed 72).
  if (other && m.epoch > epoch && !declared_dead(now) && now - master_heard <= interval() / 2) {
    ++counters.rx_other_master;
    return;
  }
  if (other && m.epoch > epoch) {
    // A newer term exists: ours was superseded while we were not listening (paused, cut off).
    // Do not act on the old view; rejoin, and let the master that answers arbitrate. What we
    // may keep meanwhile (and claim) depends on why we did not hear of that term:
    // - We were away longer than our watchdog (a pause) and it does not list us: it declared
    //   us dead, and what we owned may be given to others already, acknowledged or not. We
    //   serve none of it: the frames queued behind this keepalive would otherwise reach our
    //   stack with our old table and reset the new owners' connections (whole-member
    //   crash_during_election seed 37).
    // - Otherwise (a successor's first keepalives list none of the members it waits for):
    //   only what it gives to another member is not ours. Releasing everything there reset
    //   this follower's own live downloads (e2e cluster_pause_test, the master paused 1 s).
    //   Nor what carries live sessions: we claim it as busy when we rejoin, and the master
    //   gives it back unless its new owner has sessions on it (the other side of a healed cut
    //   took over our worksets, and our own master is silent; partition_heal seed 820).
    ++counters.stale_view;
    const bool listed =
        std::find(ka.members.begin(), ka.members.end(), config.address) != ka.members.end();
    const bool dead = !listed && declared_dead(now);
    release_own_worksets(dead ? nullptr : &ka, !dead);
    enter_joining(now, "view older than the cluster's: epoch " + std::to_string(m.epoch) +
                           " from " + m.sender.to_string() + ", ours " + std::to_string(epoch));
    return;
  }
  if (other) {
    ++counters.rx_other_master;
    return;
  }
  // Serial-number order (RFC 1982): within our term, a keepalive numbered before our JoinAck's
  // is stale. A newer term (our master restarted) starts its own numbering.
  if (m.epoch == epoch && static_cast<std::int32_t>(ka.sequence - keepalive_floor) < 0) {
    ++counters.rx_stale_keepalive;
    return;
  }
  const bool new_term = m.epoch > epoch;
  epoch = m.epoch;
  master_heard = now;
  master_seen = now;
  // FIG. 8G 891: the adaptive interval, within bounds.
  apply_announced_timings(now, ka);
  keep_handshake_key(now, ka.handshake);
  next_keepalive = std::min(next_keepalive, now + follower_period());
  // The master removed us (we were declared dead): what we own is no longer ours in its table
  // (released, perhaps reassigned already), so we serve none of it and rejoin.
  //
  // Unless its term is newer: our master restarted within T (same address, a fresh process that
  // elected itself with an empty table; phalanx-sim --whole --scenario flapping_member --seed
  // 71). It did not remove us, it never had us: what it lists as nobody's is still ours alone,
  // and we claim it when we rejoin (a master adopts claims of free worksets). Releasing it made
  // the fresh master take it on the next packet and reset our live connections. What it lists
  // as another member's is not ours any more.
  //
  // And unless a workset carries live sessions: we may have been removed while alive (two
  // keepalives lost, or a cut shorter than T; phalanx-sim --whole --scenario partition_heal
  // --seed 646); its new owner has had it for a round trip at most, with no session on it yet.
  // We keep serving it (answering nothing we do not know: our table is unconfirmed) and claim it
  // as busy when we rejoin; the master gives it back unless its new owner has sessions on it
  // too, and its keepalive then tells us which (mirror_owners). Not after an absence longer than
  // our watchdog: the new owners have had time to open connections of their own on it, which
  // the master cannot know of yet (whole loss_5 seed 856: back from 848 ms, a follower claimed a
  // workset back and reset the connection its new owner had opened 5 ms before).
  if (std::find(ka.members.begin(), ka.members.end(), config.address) == ka.members.end()) {
    release_own_worksets(new_term ? &ka : nullptr, !declared_dead(now));
    enter_joining(now, "not in the master's member list");
    return;
  }
  members = ka.members;
  master_unheard = ka.unheard;
  for (Ipv4Addr a : members) {
    id_of(a);
  }
  // The keepalive the master sent with our JoinAck answers the claims of our JoinRequest.
  mirror_owners(ka, ka.sequence == keepalive_floor);
  table_confirmed = table_confirmed || !ka.owners.empty();
  table_known = table_known || !ka.owners.empty();
  // FIG. 8G 893-898.
  sync_apps(std::set<Ipv4Addr>(members.begin(), members.end()));
}

// The failure interval T is this member's own (its watchdog never runs on a T from the wire); the
// master announces its T so that a disagreement shows. A T outside the configured range, or other
// than ours, and a keepalive count outside 2..20 are refused: counted every time, logged once
// per distinct refusal (a misconfigured master would otherwise flood the log at keepalive rate).
void Member::Impl::apply_announced_timings(Time now, const MasterKeepalive& ka) {
  const auto& t = config.timings;
  const auto announced = std::chrono::milliseconds(ka.failure_interval_ms);
  const auto ours = std::chrono::duration_cast<std::chrono::milliseconds>(interval());
  std::string refusal;
  if (announced < t.failure_interval_min || announced > t.failure_interval_max) {
    refusal = "failure interval " + std::to_string(ka.failure_interval_ms) + " ms out of range";
  } else if (announced != ours) {
    refusal = "failure interval " + std::to_string(ka.failure_interval_ms) +
              " ms disagrees with ours (" + std::to_string(ours.count()) + " ms)";
  }
  if (ka.keepalive_n < kMinKeepaliveN || ka.keepalive_n > kMaxKeepaliveN) {
    refusal += std::string(refusal.empty() ? "" : ", ") + "keepalive count " +
               std::to_string(ka.keepalive_n) + " out of " + std::to_string(kMinKeepaliveN) + ".." +
               std::to_string(kMaxKeepaliveN);
  } else {
    follow_n = ka.keepalive_n;
  }
  if (refusal.empty()) {
    last_refused_timings.clear();
    return;
  }
  ++counters.rx_refused_timings;
  if (refusal != last_refused_timings) {
    log("t=" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) +
        "ms refused timings from master " + (master ? master->to_string() : "?") + ": " + refusal);
    last_refused_timings = std::move(refusal);
  }
}

// The key our master answers handshakes with is ours too, and so are the ones before it (cookies
// made with them are still valid). Should we become master, we draw the next one when this one
// has lived kHandshakeKeyLife.
void Member::Impl::keep_handshake_key(Time now, const HandshakeKey& key) {
  if (!handshake_keys.empty() && handshake_keys.front() == key) {
    return;
  }
  std::erase(handshake_keys, key);
  handshake_keys.insert(handshake_keys.begin(), key);
  if (handshake_keys.size() > kHandshakeKeysKept) {
    handshake_keys.resize(kHandshakeKeysKept);
  }
  next_handshake_key = now + kHandshakeKeyLife;
}

// Followers mirror the master's table: only acknowledged assignments are listed. The master is
// the authority: listed as someone else -> release ours; listed as ours -> adopt. A kUnassigned
// entry leaves our own worksets alone (an assignment we acknowledged may not have reached the
// master yet) — except in the keepalive sent with our JoinAck (`answers_our_claims`): our
// JoinRequest claimed everything we own, the master granted what it could, and a claim it did
// not grant is not ours (typically assigned to another member and not yet acknowledged, so not
// listed: keeping it made two owners until that member's ack; 3 in 10,000 seeds of
// crash_during_election, a member resuming from a pause).
void Member::Impl::mirror_owners(const MasterKeepalive& ka, bool answers_our_claims) {
  if (ka.owners.size() != filter::kWorksetCount) {
    return;
  }
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    const std::uint8_t e = ka.owners[i];
    const bool assigned = table.state(ws) != WorksetState::unassigned;
    const bool names_us =
        e != kUnassigned && e < ka.members.size() && ka.members[e] == config.address;
    if (!names_us) {
      released_on_order.reset(i);  // the master has our release
    } else if (released_on_order.test(i)) {
      // Sent before the WorkDeassign we obeyed (a master that resumed sends both at once, and
      // they may cross): taking it back made two owners until the next keepalive, and the
      // second one reset a connection the new owner opened (whole flapping_member seed 5392).
      continue;
    }
    if (e == kUnassigned || e >= ka.members.size()) {
      if (assigned && (!owns(ws) || answers_our_claims)) {
        table.release(ws);
      }
      continue;
    }
    const MemberId owner = id_of(ka.members[e]);
    if (owner != self_id) {
      assign_pending.reset(i);  // the master has given it to another since
    }
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

// Acknowledgements list each workset once, whatever the order repeats: the list echoed is bounded
// by the 1024 worksets, not by what a peer chose to send (issue 9 part 3).
void Member::Impl::follower_on_work_assign(const WorkAssign& wa) {
  WorkAssignAck ack;
  std::bitset<filter::kWorksetCount> listed;
  for (std::uint16_t v : wa.worksets) {
    const auto ws = WorksetId::from_wire(v);
    if (!ws || listed.test(v)) {
      continue;
    }
    listed.set(v);
    if (!owns(*ws) && config.deferred_assign) {
      // Answered by assign_ready(); a resent order asks nothing new.
      if (!assign_pending.test(v)) {
        assign_pending.set(v);
        out.ownership.push_back({OwnershipEvent::Kind::assign_asked, *ws, {}});
      }
      continue;
    }
    take_workset(*ws);
    ack.worksets.push_back(v);  // owned already too: our first ack may have been lost
  }
  if (!ack.worksets.empty()) {
    send(master, std::move(ack));
  }
}

void Member::Impl::take_workset(WorksetId ws) {
  released_on_order.reset(ws.value());
  if (owns(ws)) {
    return;
  }
  if (table.state(ws) != WorksetState::unassigned) {
    table.release(ws);
  }
  table.assign(ws, self_id);
  table.ack(ws);
}

// A workset that carries live sessions is kept (SessionView): the master cancels the move. With
// deferred_release the layer above decides: it may hand the sessions over (a live move).
void Member::Impl::follower_on_work_deassign(const WorkDeassign& wd) {
  WorkDeassignAck ack;
  std::bitset<filter::kWorksetCount> listed;
  const std::bitset<filter::kWorksetCount> busy = busy_now();
  for (std::uint16_t v : wd.worksets) {
    const auto ws = WorksetId::from_wire(v);
    if (!ws || listed.test(v)) {
      continue;
    }
    listed.set(v);
    if (owns(*ws) && busy.test(v) && !config.deferred_release) {
      ++counters.deassign_refused;
      ack.refused.push_back(v);
      continue;
    }
    if (owns(*ws) && config.deferred_release) {
      // Answered by release_ready() / refuse_release(); a resent order asks nothing new.
      if (release_pending.emplace(v, wd.target).second) {
        out.ownership.push_back({OwnershipEvent::Kind::release_asked, *ws, wd.target});
      }
      continue;
    }
    if (owns(*ws)) {
      table.release(*ws);
      released_on_order.set(v);
    }
    ack.worksets.push_back(v);
  }
  std::sort(ack.refused.begin(), ack.refused.end());
  if (ack.worksets.empty() && ack.refused.empty()) {
    return;  // every listed workset waits for release_ready()
  }
  if (!ack.refused.empty()) {
    log("kept " + std::to_string(ack.refused.size()) +
        " worksets the master asked for: they carry live sessions");
  }
  send(master, std::move(ack));
}

}  // namespace phalanx::cluster
