// The master's work assignment: the first-packet assignment of FIG. 9 (assign to the least
// loaded member, hold the frames until the owner acknowledges), reassignment of freed worksets,
// moves, the WorkAssign / WorkDeassign retransmissions and the rebalancing of FIG. 8D.
//
// Read first: spec US6006259 "FIG. 9" and FIG. 8D in "Master Unit Events Processing"; DESIGN §3
// "What a member does with a frame".
#include <algorithm>
#include <map>

#include <set>

#include "cluster/backup.hpp"
#include "cluster/member_impl.hpp"

namespace phalanx::cluster {

using filter::MemberId;
using filter::WorksetId;
using filter::WorksetState;

// --- assignment (FIG. 9) --------------------------------------------------------------------

bool Member::Impl::loaded(WorksetId ws) const {
  if (table.load(ws).packets > 0) {
    return true;
  }
  return std::any_of(held.begin(), held.end(), [&](const HeldFrame& h) { return h.workset == ws; });
}

// Per member (the master included), the weight of the worksets it owns or is receiving.
// Draining members are given nothing either, unless every member is.
std::map<Ipv4Addr, std::uint64_t> Member::Impl::member_loads() const {
  std::map<Ipv4Addr, std::uint64_t> loads;
  for (bool with_draining : {false, true}) {
    for (Ipv4Addr a : members) {
      if (!unheard.contains(a) && (with_draining || !is_draining(a))) {
        loads[a] = 0;  // in doubt: given nothing (master_timers)
      }
    }
    if (!loads.empty()) {
      break;
    }
  }
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    if (table.state(ws) == WorksetState::unassigned) {
      continue;
    }
    Ipv4Addr owner = addr_of(table.owner(ws));
    if (table.state(ws) == WorksetState::moving) {
      if (auto it = move_target.find(i); it != move_target.end()) {
        owner = it->second;
      }
    }
    if (auto it = loads.find(owner); it != loads.end()) {
      it->second += metric->workset_weight(table, ws);
    }
  }
  return loads;
}

// The least loaded member; ties -> the lowest address (the map is ordered by address).
Ipv4Addr Member::Impl::least_loaded(const std::map<Ipv4Addr, std::uint64_t>& loads) const {
  auto best = loads.begin();
  for (auto it = loads.begin(); it != loads.end(); ++it) {
    if (it->second < best->second) {
      best = it;
    }
  }
  if (best == loads.end()) {
    die("no member to assign work to");
  }
  return best->first;
}

Ipv4Addr Member::Impl::new_owner(WorksetId ws,
                                 const std::map<Ipv4Addr, std::uint64_t>& loads) const {
  if (auto it = heirs.find(ws.value()); it != heirs.end() && loads.contains(it->second)) {
    return it->second;
  }
  return least_loaded(loads);
}

void Member::Impl::bequeath(Ipv4Addr owner, const std::vector<WorksetId>& freed,
                            const std::vector<Ipv4Addr>& view) {
  for (WorksetId ws : freed) {
    if (auto heir = backup_of(ws, owner, view)) {
      heirs[ws.value()] = *heir;
    }
  }
}

void Member::Impl::assign_to(Time now, WorksetId ws, Ipv4Addr target) {
  heirs.erase(ws.value());
  table.assign(ws, id_of(target));
  if (target == config.address) {
    // Assigning to itself needs no message: acknowledged at once, and announced at once.
    table.ack(ws);
    table_news = true;
    release_held(ws, target);
    return;
  }
  PendingWork& p = pending_assign[target];
  p.worksets.insert(ws.value());
  p.next_send = now;
}

void Member::Impl::reassign_loaded(Time now, const std::vector<WorksetId>& freed) {
  if (freed.empty() || settling) {  // settling: see settle()
    return;
  }
  auto loads = member_loads();
  for (WorksetId ws : freed) {
    if (!loaded(ws) && !heirs.contains(ws.value())) {
      continue;  // reassigned lazily, on its next packet
    }
    const Ipv4Addr target = new_owner(ws, loads);
    assign_to(now, ws, target);
    loads[target] += metric->workset_weight(table, ws);
  }
}

// The old owner has let go of a moving workset: hand it to its target, or, if the target is
// gone, back to the pool.
void Member::Impl::complete_move(Time now, WorksetId ws) {
  auto it = move_target.find(ws.value());
  if (it == move_target.end()) {
    die("workset " + std::to_string(ws.value()) + " moving without a target");
  }
  const Ipv4Addr target = it->second;
  move_target.erase(it);
  ++counters.worksets_moved;
  if (target == config.address || followers.contains(target)) {
    assign_to(now, ws, target);
    return;
  }
  table.release(ws);
  reassign_loaded(now, {ws});
}

void Member::Impl::hold(WorksetId ws, wire::Bytes frame) {
  if (held.size() + 1 > config.held_frames_max ||
      held_bytes + frame.size() > config.held_bytes_max) {
    ++counters.held_dropped;  // hold queue full
    return;
  }
  held.push_back(HeldFrame{ws, std::vector<std::byte>(frame.begin(), frame.end())});
  held_bytes += frame.size();
  ++counters.held_frames;
}

void Member::Impl::release_held(WorksetId ws, Ipv4Addr owner) {
  std::deque<HeldFrame> keep;
  for (HeldFrame& h : held) {
    if (h.workset == ws) {
      held_bytes -= h.frame.size();
      out.frames.push_back(ForwardedFrame{owner, ws, std::move(h.frame)});
    } else {
      keep.push_back(std::move(h));
    }
  }
  held = std::move(keep);
}

void Member::Impl::on_unassigned_packet(Time now, WorksetId ws, wire::Bytes frame) {
  // The data path raced a role change: only a master assigns.
  if (role != Role::master) {
    ++counters.held_dropped;
    return;
  }
  switch (table.state(ws)) {
    case WorksetState::unassigned: {
      if (settling) {
        hold(ws, frame);  // a member of the old view may serve it: see settle()
        return;
      }
      // FIG. 9 937: the least loaded member (the master counts as one), or the heir of a dead
      // owner's workset.
      const Ipv4Addr target = new_owner(ws, member_loads());
      assign_to(now, ws, target);
      if (target == config.address) {
        out.frames.push_back(ForwardedFrame{target, ws, {frame.begin(), frame.end()}});
      } else {
        hold(ws, frame);
      }
      return;
    }
    case WorksetState::assigned_unacked:
    case WorksetState::moving:
      // FIG. 9 940-941: hold until the owner acknowledges.
      hold(ws, frame);
      return;
    case WorksetState::assigned:
      // Not a must-assign verdict any more (the ack raced the data path): pass it on.
      out.frames.push_back(
          ForwardedFrame{addr_of(table.owner(ws)), ws, {frame.begin(), frame.end()}});
      return;
  }
}

void Member::Impl::flush_pending(Time now) {
  for (auto it = pending_assign.begin(); it != pending_assign.end();) {
    PendingWork& p = it->second;
    if (p.worksets.empty()) {
      it = pending_assign.erase(it);
      continue;
    }
    if (now >= p.next_send) {
      send(it->first, WorkAssign{it->first, {p.worksets.begin(), p.worksets.end()}});
      p.next_send = now + config.timings.retransmit_interval;
    }
    ++it;
  }
  for (auto it = pending_deassign.begin(); it != pending_deassign.end();) {
    PendingWork& p = it->second;
    if (p.worksets.empty()) {
      it = pending_deassign.erase(it);
      continue;
    }
    if (now >= p.next_send) {
      // One WorkDeassign per target: the message names a single receiver.
      std::map<Ipv4Addr, std::vector<std::uint16_t>> by_target;
      for (std::uint16_t v : p.worksets) {
        by_target[move_target.at(v)].push_back(v);
      }
      for (auto& [target, list] : by_target) {
        send(it->first, WorkDeassign{it->first, target, std::move(list)});
      }
      p.next_send = now + config.timings.retransmit_interval;
    }
    ++it;
  }
}

// FIG. 8D: while the most loaded K and the least loaded J satisfy K - w >= J + w (w the weight
// of the workset moved; K - 1 >= J + 1 with the default metric), de-assign one workset from K
// toward J. Loads count moving worksets at their target, so one pass plans every move.
// A workset with live sessions at its owner (SessionView: the master's own, the followers' from
// their keepalives) stays where it is; when K has nothing else to give, the next most loaded
// member gives instead. A joining member thus gets idle worksets, and new ones as they appear.
// With live_moves, a follower's busy workset whose backup is J moves too, when K has nothing
// idle to give: its sessions go with it (the follower hands them over before it lets go).
void Member::Impl::rebalance(Time now) {
  if (members.size() < 2 || settling) {
    return;
  }
  drain_pass(now);  // what a draining member kept last time (busy, no backup to take it)
  auto loads = member_loads();
  const std::bitset<filter::kWorksetCount> own_busy = busy_now();
  std::set<Ipv4Addr> exhausted;  // nothing movable left
  int moves = 0;
  std::bitset<filter::kWorksetCount> kept;  // busy worksets passed over
  for (std::size_t round = 0; round < filter::kWorksetCount + kMaxMembers; ++round) {
    auto k = loads.end();
    for (auto it = loads.begin(); it != loads.end(); ++it) {
      if (!exhausted.contains(it->first) && (k == loads.end() || it->second > k->second)) {
        k = it;
      }
    }
    if (k == loads.end()) {
      break;
    }
    const Ipv4Addr from = k->first;
    const Ipv4Addr to = least_loaded(loads);
    if (from == to) {
      break;
    }
    const MemberId from_id = id_of(from);
    const auto follower = followers.find(from);
    const std::bitset<filter::kWorksetCount>* busy =
        from == config.address ? &own_busy
                               : (follower != followers.end() ? &follower->second.busy : nullptr);
    std::optional<WorksetId> pick;
    std::uint64_t pick_w = 0;
    std::optional<WorksetId> pick_busy;  // live_moves: a busy one whose backup is `to`
    std::uint64_t pick_busy_w = 0;
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      const WorksetId ws{i};
      if (table.state(ws) != WorksetState::assigned || table.owner(ws) != from_id) {
        continue;
      }
      const std::uint64_t w = metric->workset_weight(table, ws);
      if (w == 0 || loads[from] < loads[to] + 2 * w) {
        continue;
      }
      if (busy != nullptr && busy->test(i)) {
        if (config.live_moves && !pick_busy && backup_of(ws, from, members) == to) {
          pick_busy = ws;
          pick_busy_w = w;
        } else {
          kept.set(i);
        }
        continue;
      }
      // Prefer a workset without traffic: nothing to hand over.
      if (!pick || (table.load(*pick).packets > 0 && table.load(ws).packets == 0)) {
        pick = ws;
        pick_w = w;
      }
    }
    if (!pick && pick_busy) {
      pick = pick_busy;
      pick_w = pick_busy_w;
      ++counters.live_moves;
    }
    if (!pick) {
      // Balanced enough from K, or all it could give is busy: ask the next most loaded.
      exhausted.insert(from);
      continue;
    }
    start_move(now, *pick, from, to);
    loads[from] -= pick_w;
    loads[to] += pick_w;
    ++moves;
  }
  counters.rebalance_kept_busy += kept.count();
  if (moves > 0 || kept.any()) {
    log("rebalance: " + std::to_string(moves) + " worksets to move" +
        (kept.any() ? ", " + std::to_string(kept.count()) + " kept (live sessions)" : ""));
  }
}

void Member::Impl::start_move(Time now, WorksetId ws, Ipv4Addr from, Ipv4Addr to) {
  table.begin_move(ws);
  move_target[ws.value()] = to;
  if (from == config.address) {
    release_own(now, ws);
  } else {
    PendingWork& p = pending_deassign[from];
    p.worksets.insert(ws.value());
    p.next_send = now;
  }
}

// The master lets go of its own at once, or, with deferred_release, once the layer above has
// handed the sessions over (OwnershipEvent::release_asked, answered by release_ready()).
void Member::Impl::release_own(Time now, WorksetId ws) {
  if (!config.deferred_release) {
    complete_move(now, ws);
    return;
  }
  const Ipv4Addr target = move_target.at(ws.value());
  if (release_pending.emplace(ws.value(), target).second) {
    out.ownership.push_back({OwnershipEvent::Kind::release_asked, ws, target});
  }
}

// Drain: every workset a draining member owns starts moving, a busy one to its backup (which
// holds its sessions), an idle one to the least loaded; a busy one without live_moves or without
// a backup able to take it stays, and is looked at again by the next rebalancing pass.
void Member::Impl::drain_pass(Time now) {
  if (role != Role::master) {
    return;
  }
  // Looked at again soon while anyone drains: a move refused meanwhile (a session that could not
  // move yet) or kept here is retried without waiting for the next rebalancing.
  const bool anyone = draining || std::any_of(followers.begin(), followers.end(),
                                              [](const auto& f) { return f.second.draining; });
  next_drain_pass = anyone ? now + kDrainRetry : kNever;
  if (settling || !anyone) {
    return;
  }
  auto loads = member_loads();
  const std::bitset<filter::kWorksetCount> own_busy = busy_now();
  std::size_t moves = 0;
  std::size_t kept = 0;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    if (table.state(ws) != WorksetState::assigned) {
      continue;
    }
    const Ipv4Addr from = addr_of(table.owner(ws));
    if (!is_draining(from)) {
      continue;
    }
    const auto f = followers.find(from);
    const bool busy = from == config.address ? own_busy.test(i)
                                             : (f == followers.end() || f->second.busy.test(i));
    std::optional<Ipv4Addr> to;
    if (busy) {
      if (config.live_moves) {
        const auto b = backup_of(ws, from, members);
        if (b && loads.contains(*b)) {
          to = b;
        }
      }
    } else {
      to = least_loaded(loads);
    }
    if (!to || *to == from) {
      ++kept;
      continue;
    }
    start_move(now, ws, from, *to);
    loads[*to] += metric->workset_weight(table, ws);
    ++moves;
  }
  if (moves > 0) {
    log("drain: " + std::to_string(moves) + " worksets to move" +
        (kept > 0 ? ", " + std::to_string(kept) + " kept (live sessions, no backup to take them)"
                  : ""));
  }
}

}  // namespace phalanx::cluster
