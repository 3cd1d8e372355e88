// The master's events (spec FIG. 8A-8F): becoming master, joins, tie-breaks, acks, watchdogs,
// keepalives, membership changes. Assignment, moves and rebalancing are in assignment.cpp.
//
// Read first: spec US6006259 "Master Unit Events Processing", "FIG. 9"; DESIGN §3 "What a member
// does with a frame", §4. Every workset change goes through the WorksetTable's legal moves:
//   unassigned --assign--> assigned_unacked --ack--> assigned --begin_move--> moving
//   moving --assign (old owner acknowledged the WorkDeassign)--> assigned_unacked
//   any assigned state --release (owner dead, left, or not claiming it)--> unassigned
// WorkAssign and WorkDeassign are resent every retransmit_interval until acknowledged, batched
// per member; a member that dies takes its pending work with it (its worksets return to the
// pool; those that carried traffic are reassigned at once).
#include <algorithm>
#include <utility>

#include "cluster/member_impl.hpp"
#include "tcp/isn.hpp"

namespace phalanx::cluster {

using filter::MemberId;
using filter::WorksetId;
using filter::WorksetState;

// --- becoming and leaving the master role ---------------------------------------------------

// FIG. 6 621-623. The new master adopts the table it mirrored from the last master's keepalives:
// its own worksets stay; the old master's are released (it is dead, or we would not be here),
// and those that carried traffic are reassigned at once; the other owners are on probation for T:
// they keep their worksets if they rejoin in time (claiming them), lose them otherwise.
void Member::Impl::enter_master(Time now, std::string_view why) {
  const bool blind = admitted_once && !table_known;
  table_known = true;
  epoch = next_epoch(std::max(max_epoch_seen, epoch));
  max_epoch_seen = epoch;
  transition(Role::master, now, std::string(why) + "; epoch " + std::to_string(epoch));
  master = config.address;
  const std::vector<Ipv4Addr> old_view = std::exchange(members, {config.address});
  heirs.clear();
  followers.clear();
  probation.clear();
  unheard.clear();
  doubt_since = kNever;
  role_deadline = kNever;
  verdict_pending = false;

  // Every member of the view we followed is expected back (on probation), owner or not: the
  // lost master may have handed any of them a workset after its last keepalive.
  for (Ipv4Addr a : old_view) {
    if (a != config.address && (!last_master || a != *last_master)) {
      probation.emplace(a, now + interval());
    }
  }
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    if (table.state(ws) == WorksetState::unassigned || owns(ws)) {
      continue;
    }
    const Ipv4Addr owner = addr_of(table.owner(ws));
    if (last_master && owner == *last_master) {
      table.release(ws);
      bequeath(owner, {ws}, old_view);
    } else {
      probation.emplace(owner, now + interval());
    }
  }
  // A member that never learned a table (restarted, joined, and its master fell silent before
  // a keepalive reached it) knows neither the old view nor who serves what: the others' claims
  // are all it will learn. It gives no workset away for T, time for them to rejoin (whole
  // flapping_member seed 2361: it took a follower's live workset on its first packet). The
  // first master of a cluster was never admitted: nobody serves anything yet.
  settle_until = blind ? now + interval() : kNever;
  settling = !probation.empty() || blind;
  settle(now);

  std::set<Ipv4Addr> view{config.address};
  for (const auto& [a, deadline] : probation) {
    view.insert(a);
  }
  sync_apps(std::move(view));
  out.announce_arp = true;
  next_rebalance = now + config.timings.rebalance_period;
  send_master_keepalive(now);
}

// Settling after a succession (or any master that inherits a view). Our table is what the lost
// master last announced; after that it may have assigned or moved worksets (a first packet, a
// rebalance, a dead member's worksets) and the new owners acknowledged, unknown to us. Until
// every member of the old view has rejoined and listed what it serves (or its probation ran
// out), a workset nobody in our table serves is not given to anyone: its frames are held (FIG. 9
// 940, bounded) and a claim decides. Giving it away earlier answers another member's live
// connection with RSTs for the round trip of its rejoin (phalanx-sim --whole --fault master
// --seed 602; crash_during_election seeds 5296, 7960). Costs new flows on such worksets at most
// one failure interval, and usually the ~1 ms the others take to rejoin.
void Member::Impl::settle(Time now) {
  if (!settling || !probation.empty() || (settle_until != kNever && now < settle_until)) {
    return;
  }
  settling = false;
  settle_until = kNever;
  std::vector<WorksetId> open;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    if (table.state(WorksetId{i}) == WorksetState::unassigned) {
      open.push_back(WorksetId{i});
    }
  }
  reassign_loaded(now, open);
}

// The master loses a tie-break or is told to exit (FIG. 8A 821, FIG. 6 641): it keeps only its own
// worksets (assigned, as a follower's must be), drops what it held and rejoins. Its followers are
// told (ExitCluster naming itself, as when it leaves) so that they rejoin the winner now rather
// than after their watchdog: meanwhile the winner, which may have admitted them too, would
// declare them dead. The goodbye quotes `why`, which may hold text received from the network:
// bounded to what a message carries.
//
// Superseded (a newer epoch was heard: a successor took over while this master was paused or cut
// off): the successor released this master's worksets when it took over and may have given them
// to others already, so this master keeps none of them; it claims nothing when it rejoins, and
// touches nothing of the successor's (no WorkAssign, no keepalive, no OtherMasterExists).
void Member::Impl::step_down(Time now, std::string_view why, bool superseded) {
  if (!followers.empty()) {
    send(std::nullopt, ExitCluster{config.address, bounded_text(why)});
  }
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    if (table.state(ws) != WorksetState::unassigned &&
        (superseded || (!owns(ws) && table.state(ws) != WorksetState::assigned))) {
      table.release(ws);
    } else if (table.state(ws) == WorksetState::moving && owns(ws)) {
      table.assign(ws, self_id);  // our own, waiting for the layer above: the move is off
      table.ack(ws);
    }
  }
  counters.held_dropped += held.size();
  held.clear();
  held_bytes = 0;
  pending_assign.clear();
  pending_deassign.clear();
  move_target.clear();
  heirs.clear();
  followers.clear();
  probation.clear();
  unheard.clear();
  doubt_since = kNever;
  settling = false;
  settle_until = kNever;
  next_rebalance = kNever;
  next_drain_pass = kNever;
  next_keepalive = kNever;
  last_master.reset();
  enter_joining(now, why);
}

// --- input ----------------------------------------------------------------------------------

void Member::Impl::master_on_message(Time now, const Message& m) {
  const Ipv4Addr from = m.sender;
  // FIG. 8B 837: any message from a follower resets its watchdog.
  if (auto it = followers.find(from); it != followers.end()) {
    it->second.last_heard = now;
    if (forget_unheard(from)) {
      log(from.to_string() + " heard again");
    }
  }
  if (const auto* jr = std::get_if<JoinRequest>(&m.body)) {
    master_on_join_request(now, from, *jr);
  } else if (const auto* fk = std::get_if<FollowerKeepalive>(&m.body)) {
    auto it = followers.find(from);
    if (it == followers.end()) {
      // FIG. 8B 833: not in this cluster -> tell it to exit (it will rejoin).
      send(from, ExitCluster{from, "not a member"});
      return;
    }
    // FIG. 8B 835: loss estimate from the sequence gaps (older / duplicate numbers ignored).
    it->second.loss.on_sequence(fk->sequence);
    it->second.busy.reset();
    for (std::uint16_t v : fk->busy) {
      it->second.busy.set(v);  // < kWorksetCount: the decoder checked
    }
    it->second.active = fk->active;
    if (fk->draining && !it->second.draining) {
      it->second.draining = true;
      log("draining " + from.to_string() + ": its worksets move away, then it leaves");
      drain_pass(now);
    }
  } else if (const auto* ka = std::get_if<MasterKeepalive>(&m.body)) {
    master_on_master_keepalive(now, m, *ka);
  } else if (std::holds_alternative<MasterOffer>(m.body)) {
    send(from, OtherMasterExists{from});
  } else if (const auto* ome = std::get_if<OtherMasterExists>(&m.body)) {
    if (ome->member != config.address) {
      ++counters.rx_ignored;
      return;
    }
    // From an older term: the tie-break it answered is over (we are newer). Stale.
    if (m.epoch < epoch) {
      ++counters.rx_stale_epoch;
      return;
    }
    ++counters.tie_breaks_lost;
    const bool superseded = declared_dead(now);
    counters.superseded += superseded ? 1 : 0;
    step_down(now, "other master exists: " + from.to_string(), superseded);
  } else if (const auto* ex = std::get_if<ExitCluster>(&m.body)) {
    if (ex->member == from && (followers.contains(from) || probation.contains(from))) {
      on_departure(from);
      ++counters.members_left;
      remove_member(now, from, "left: " + ex->text);
    } else if (ex->member == config.address && m.epoch < epoch) {
      ++counters.rx_stale_epoch;  // told to exit by an older term: stale
    } else if (ex->member == config.address) {
      const bool superseded = declared_dead(now);
      counters.superseded += superseded ? 1 : 0;
      step_down(now, "told to exit by " + from.to_string() + ": " + ex->text, superseded);
    } else {
      ++counters.rx_ignored;
    }
  } else if (const auto* aa = std::get_if<WorkAssignAck>(&m.body)) {
    master_on_assign_ack(now, from, *aa);
  } else if (const auto* da = std::get_if<WorkDeassignAck>(&m.body)) {
    master_on_deassign_ack(now, from, *da);
  } else {
    // JoinAck, JoinNak, WorkAssign, WorkDeassign: another master's; the keepalive tie-break
    // settles who is master.
    ++counters.rx_ignored;
  }
}

// FIG. 8F: JoinNak(in_progress), ask every application, then JoinAck or JoinNak(vetoed).
void Member::Impl::master_on_join_request(Time now, Ipv4Addr from, const JoinRequest& jr) {
  if (auto it = followers.find(from); it != followers.end()) {
    if (it->second.incarnation == jr.incarnation) {
      // A member we have rejoins (its master watchdog fired, or our JoinAck was lost) — or this
      // is a request it sent, joining, before our JoinAck reached it (a joining member repeats
      // its request; a burst of keepalives at a mass join makes it repeat often), arriving after
      // we admitted it and perhaps after it acknowledged worksets we assigned since: its claims
      // are older than those acks, and reconciling them would release worksets it serves (two
      // owners, a connection reset). Within join_timeout of the admission — shorter than any
      // watchdog, and than the pace of a retry after a lost JoinAck — the request is answered
      // again but its claims are not reconciled: the admission reconciled them already.
      send(from, JoinNak{from, NakReason::in_progress, {}});
      send(from, JoinAck{from, master_seq + 1});  // the keepalive below
      if (now - it->second.admitted < config.timings.join_timeout) {
        ++counters.rx_early_join_request;
      } else {
        it->second.admitted = now;
        reconcile_claims(now, from, jr);
      }
      send_master_keepalive(now);
      return;
    }
    // Another incarnation: it restarted. Leave (its old worksets are released), then join.
    ++counters.members_left;
    remove_member(now, from, "restarted");
  }
  if (members.size() >= kMaxMembers) {
    send(from, JoinNak{from, NakReason::cluster_full, "cluster full"});
    return;
  }
  send(from, JoinNak{from, NakReason::in_progress, {}});
  for (Application* app : apps) {
    if (auto veto = app->approve_join(from)) {
      std::string text = bounded_text(*veto);
      log("join of " + from.to_string() + " vetoed: " + text);
      send(from, JoinNak{from, NakReason::vetoed, std::move(text)});
      if (probation.contains(from)) {
        remove_member(now, from, "vetoed");
      }
      return;
    }
  }
  id_of(from);
  members.push_back(from);
  followers[from] = FollowerState{jr.incarnation, now, now, {}, {}};
  probation.erase(from);
  log("admitted " + from.to_string());
  send(from, JoinAck{from, master_seq + 1});  // the keepalive sent below lists it
  reconcile_claims(now, from, jr);
  settle(now);
  std::set<Ipv4Addr> view(members.begin(), members.end());
  for (const auto& [a, deadline] : probation) {
    view.insert(a);
  }
  sync_apps(std::move(view));
  send_master_keepalive(now);  // the newcomer learns the table at once
}

// A (re)joining member lists the worksets it still serves. Claims of free worksets are adopted
// (it serves them already); worksets we think it owns but it does not claim are released (it
// restarted, or never got them); claims of worksets owned by others are refused by our next
// keepalive, which names the real owner.
void Member::Impl::reconcile_claims(Time now, Ipv4Addr addr, const JoinRequest& jr) {
  const MemberId id = id_of(addr);
  std::set<std::uint16_t> claimed;
  const std::set<std::uint16_t> busy(jr.busy.begin(), jr.busy.end());
  for (std::uint16_t v : jr.worksets) {
    const auto ws = WorksetId::from_wire(v);
    if (!ws) {
      continue;
    }
    claimed.insert(v);
    const WorksetState state = table.state(*ws);
    // Settling: a member of the old view that has not rejoined yet may have been relieved of
    // it by the lost master after its last keepalive; the claimant serves it now.
    const bool stale_owner = settling && state != WorksetState::unassigned &&
                             table.owner(*ws) != id &&
                             probation.contains(addr_of(table.owner(*ws)));
    // Live sessions beat none: the two sides of a healed partition both served the workset (the
    // one cut off took it over), but only one has the clients' connections (whole-member
    // partition_heal seed 80). The owner learns from our next keepalive.
    // Or given away a moment ago (its WorkAssign unacknowledged): the claimant was removed while
    // alive (partition_heal seed 646) and has kept the workset's sessions.
    const bool live_claim =
        (state == WorksetState::assigned || state == WorksetState::assigned_unacked) &&
        table.owner(*ws) != id && busy.contains(v) && !owner_busy(*ws);
    if (state == WorksetState::unassigned || stale_owner || live_claim) {
      if (stale_owner || live_claim) {
        counters.claims_taken_live += live_claim ? 1 : 0;
        if (auto p = pending_assign.find(addr_of(table.owner(*ws))); p != pending_assign.end()) {
          p->second.worksets.erase(v);  // an unacknowledged WorkAssign, resent no more
        }
        table.release(*ws);
      }
      table.assign(*ws, id);
      table.ack(*ws);
      release_held(*ws, addr);
    } else if (state == WorksetState::assigned_unacked && table.owner(*ws) == id) {
      table.ack(*ws);
      pending_assign[addr].worksets.erase(v);
      release_held(*ws, addr);
    }
  }
  std::vector<WorksetId> freed;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    if (table.state(ws) == WorksetState::unassigned || table.owner(ws) != id ||
        claimed.contains(i)) {
      continue;
    }
    if (table.state(ws) == WorksetState::assigned) {
      table.release(ws);
      freed.push_back(ws);
    } else if (table.state(ws) == WorksetState::moving) {
      pending_deassign[addr].worksets.erase(i);
      complete_move(now, ws);  // it has let go of it already
    }
    // assigned_unacked: the WorkAssign is still being resent.
  }
  reassign_loaded(now, freed);
}

bool Member::Impl::owner_busy(WorksetId ws) const {
  const MemberId owner = table.owner(ws);
  if (is_self(owner)) {
    return busy_now().test(ws.value());
  }
  const auto it = followers.find(addr_of(owner));
  return it == followers.end() || it->second.busy.test(ws.value());
}

// FIG. 8A, refined: two masters. In order:
//  1. A master back from an absence longer than its watchdog loses, and so does one whose
//     followers are listed by a newer term: a member of that term took over its worksets. It
//     steps down as superseded, keeping none of its worksets (issue 9 part 5), unless the
//     followers it shares had been silent to it for T/2 (a cut, not an absence of its own).
//  2. A master of a newer term listed by the other as a follower wins: the other's view is
//     older (its follower gave up on it and took over); what it counts is not there.
//  3. The view that served more client traffic in the last T wins (active worksets), then more
//     members, then the newer epoch, then the lower address.
// The spec compares member counts: the larger side of a partition is the cluster. We put the
// traffic first because the loser gives up every workset the winner's table gives to another
// member, with its connections (until sessions move, issue 11): the side that served the clients
// must stay. A side cut off from the clients serves none, whatever its size (whole-member
// partition_heal, seeds 0 and 3). Every rule is decided the same way on both sides, or two
// masters would each win forever (protocol master_crash seed 153). The loser keeps its worksets
// but those the winner's table gives to another member, and claims them as it rejoins. While a
// side is a minority it answers no unknown connection with an RST (Timings::quorum_forget), and a
// minority that heard no client for T opens no connection for 2T once clients are heard again
// (ClusterNode::may_open): the segments it sees after the heal and before this tie-break are the
// other side's.
namespace {
std::string tie_break_terms(std::size_t active, std::size_t members, Epoch epoch) {
  return std::to_string(active) + " active worksets, " + std::to_string(members) +
         " members, epoch " + std::to_string(epoch);
}
}  // namespace

void Member::Impl::master_on_master_keepalive(Time now, const Message& m,
                                              const MasterKeepalive& ka) {
  const Ipv4Addr from = m.sender;
  // From our follower, of an older term: a master we superseded, which sent it before it read
  // our keepalive and rejoined us (whole-member loss_20 seed 492). Stale.
  if (m.epoch < epoch && followers.contains(from)) {
    ++counters.rx_stale_epoch;
    return;
  }
  // Members both views list, besides the two masters: they left one master for the other.
  const bool shares_followers = std::any_of(ka.members.begin(), ka.members.end(), [&](Ipv4Addr a) {
    return a != from && a != config.address && followers.contains(a);
  });
  // Our followers follow a newer term: we lose (decided the same way on both sides).
  const bool newer_term_shares = m.epoch > epoch && shares_followers;
  // Superseded: back from an absence longer than T, or followers we heard within T/2 follow a
  // newer term: a member of that term took over our worksets (whether or not our driver noticed
  // that we were away). Followers silent for longer are no such sign: a side cut off from us as
  // large as ours elects a term of its own before we remove them, and owns none of the clients'
  // sessions we serve (whole-member partition_heal seed 525). We lose then without being
  // superseded: we keep what the winner gives to nobody else and claim it as we rejoin.
  const bool shares_heard_followers =
      newer_term_shares && std::any_of(ka.members.begin(), ka.members.end(), [&](Ipv4Addr a) {
        const auto f = followers.find(a);
        return a != from && a != config.address && f != followers.end() && !unheard.contains(a) &&
               now - f->second.last_heard <= interval() / 2;
      });
  const bool superseded = declared_dead(now) || shares_heard_followers;
  // One lists the other as its follower: that one's view is older (its follower gave up on it
  // and took over, or it was away and speaks before it reads what happened meanwhile); what it
  // counts is not there. Decided the same way on both sides.
  // A newer term is what taking over makes: listing alone may come from a JoinRequest that
  // queued while a master was paused (whole-member rebalance_after_join seed 415).
  const bool it_lists_us = m.epoch < epoch && std::find(ka.members.begin(), ka.members.end(),
                                                        config.address) != ka.members.end();
  const bool we_list_it =
      m.epoch > epoch && std::find(members.begin(), members.end(), from) != members.end();
  const std::size_t active = active_in_view(now);
  // Members heard, not those in doubt (in_doubt()).
  const std::size_t ours = members.size() - unheard.size();
  const std::size_t theirs =
      ka.members.size() - std::min<std::size_t>(ka.unheard, ka.members.size());
  bool win = false;
  if (superseded || newer_term_shares) {
    win = false;
  } else if (m.epoch < epoch && shares_followers) {
    win = true;  // the other side of the rule above
  } else if (it_lists_us != we_list_it) {
    win = it_lists_us;
  } else if (active != ka.active) {
    win = active > ka.active;
  } else if (ours != theirs) {
    win = ours > theirs;
  } else if (m.epoch != epoch) {
    win = epoch > m.epoch;
  } else {
    win = config.address < from;
  }
  if (!win) {
    ++counters.tie_breaks_lost;
    counters.superseded += superseded ? 1 : 0;
    if (!superseded) {
      release_own_worksets(&ka);
    }
    step_down(now,
              (superseded ? "superseded by " : "lost tie-break to ") + from.to_string() + " (" +
                  tie_break_terms(ka.active, theirs, m.epoch) + "; ours " +
                  tie_break_terms(active, ours, epoch) + ")",
              superseded);
    return;
  }
  ++counters.tie_breaks_won;
  log("won tie-break against " + from.to_string() + " (" +
      tie_break_terms(ka.active, theirs, m.epoch) + "; ours " +
      tie_break_terms(active, ours, epoch) + ")");
  // Epochs move forward only: the surviving term is newer than both. The keepalive goes before
  // OtherMasterExists: the loser learns from it what it may keep.
  if (m.epoch >= epoch) {
    epoch = next_epoch(m.epoch);
    max_epoch_seen = std::max(max_epoch_seen, epoch);
  }
  send_master_keepalive(now);
  send(from, OtherMasterExists{from});
  out.announce_arp = true;
}

std::size_t Member::Impl::active_in_view(Time now) const {
  std::size_t n = active_now(now);
  for (const auto& [a, f] : followers) {
    n += unheard.contains(a) ? 0 : f.active;  // what a silent one served is not ours to claim
  }
  return std::min(n, filter::kWorksetCount);
}

std::vector<WorksetId> Member::Impl::take_acked(Ipv4Addr from,
                                                const std::vector<std::uint16_t>& worksets,
                                                std::map<Ipv4Addr, PendingWork>& pending) {
  std::vector<WorksetId> acked;
  if (!followers.contains(from)) {
    ++counters.rx_ignored;
    return acked;
  }
  const auto it = pending.find(from);
  for (std::uint16_t v : worksets) {
    if (const auto ws = WorksetId::from_wire(v)) {
      if (it != pending.end()) {
        it->second.worksets.erase(v);
      }
      acked.push_back(*ws);
    }
  }
  return acked;
}

void Member::Impl::master_on_assign_ack(Time /*now*/, Ipv4Addr from, const WorkAssignAck& ack) {
  const std::vector<WorksetId> acked = take_acked(from, ack.worksets, pending_assign);
  const MemberId id = acked.empty() ? MemberId::none() : id_of(from);
  for (WorksetId ws : acked) {
    if (table.state(ws) == WorksetState::assigned_unacked && table.owner(ws) == id) {
      table.ack(ws);
      release_held(ws, from);  // FIG. 9 941-943
    } else if (table.state(ws) == WorksetState::unassigned) {
      // It serves it now (a late ack after we released it): adopt rather than have it and the
      // next owner both serve it until our keepalive sorts it out.
      table.assign(ws, id);
      table.ack(ws);
    } else {
      ++counters.rx_ignored;  // a duplicate, or about a workset that has moved on since
    }
  }
}

void Member::Impl::master_on_deassign_ack(Time now, Ipv4Addr from, const WorkDeassignAck& ack) {
  const std::vector<WorksetId> acked = take_acked(from, ack.worksets, pending_deassign);
  const MemberId id = acked.empty() ? MemberId::none() : id_of(from);
  for (WorksetId ws : acked) {
    if (table.state(ws) == WorksetState::moving && table.owner(ws) == id) {
      complete_move(now, ws);
    }
  }
  // Kept by their owner (live sessions): the move is off, the owner stays. Marked busy until
  // its next keepalive says otherwise, so that the next pass picks others.
  const std::vector<WorksetId> refused = take_acked(from, ack.refused, pending_deassign);
  const MemberId owner = refused.empty() ? MemberId::none() : id_of(from);
  for (WorksetId ws : refused) {
    if (table.state(ws) == WorksetState::moving && table.owner(ws) == owner) {
      move_target.erase(ws.value());
      table.assign(ws, owner);
      table.ack(ws);
      release_held(ws, from);  // frames held while it was moving go back to it
      ++counters.moves_cancelled;
      if (auto f = followers.find(from); f != followers.end()) {
        f->second.busy.set(ws.value());
      }
    }
  }
}

// --- timers ---------------------------------------------------------------------------------

// A master whose followers fall silent cannot tell their crash from its own cut: on a cut LAN
// both sides see the other go silent. Removing them gives their worksets to the members left
// here; if the cut heals before the other side has a master to win the tie-break, those new
// owners answer the clients' live connections, still served over there, with RSTs
// (phalanx-sim --whole --scenario partition_heal --seed 407). The side cut off is the one
// without clients. So a master that has heard no client within T/2 when a follower falls silent
// (the cut may have come a keepalive period, up to T/2, after the follower's last message)
// keeps it in doubt if no more than half the largest view (view_base) is heard: listed, owning
// what it owned, given nothing, counted out of the view (a follower learns that from
// MasterKeepalive::unheard), looked at again with every keepalive. "Heard" is strict: within
// T/2, so that the others cut at the same instant, whose watchdogs fire up to a keepalive
// period (T/2) later, already count as silent. A crash with more than half the view heard is
// no doubt: removed at T, as ever (e2e.cluster_failover_test). Heard again, a follower in doubt
// is a follower as before. Once more than half the view is heard, or clients have been back for
// T, or the minority is accepted (Timings::quorum_forget), the doubt is over and the silent
// ones are removed. Meanwhile this side is a minority (no resets, no new connections when
// clients come back: ClusterNode); a crash of half the view in an idle cluster costs a client
// a SYN retransmission. A master without a data path (SessionView::client_traffic() nullopt)
// never doubts.
bool Member::Impl::forget_unheard(Ipv4Addr a) {
  const bool was = unheard.erase(a) != 0;
  if (unheard.empty()) {
    doubt_since = kNever;
  }
  return was;
}

bool Member::Impl::in_doubt(Time now, std::size_t quiet) {
  const auto traffic = sessions != nullptr ? sessions->client_traffic()
                                           : std::optional<SessionView::ClientTraffic>{};
  const std::size_t size = view_size();
  const bool majority_heard = (size - std::min(size, quiet)) * 2 > view_base;
  if (!traffic || majority_heard ||
      (doubt_since == kNever && now - traffic->last <= interval() / 2)) {
    doubt_since = kNever;
    return false;
  }
  if (doubt_since == kNever) {
    doubt_since = now;
    return true;
  }
  const bool clients_back = traffic->resumed > doubt_since && now - traffic->resumed >= interval();
  if (clients_back) {
    doubt_since = kNever;
    return false;
  }
  return true;
}

void Member::Impl::master_timers(Time now) {
  // FIG. 8E: follower watchdogs. Silent for longer than T -> dead, unless in doubt.
  std::vector<Ipv4Addr> dead;
  std::size_t quiet = 0;  // silent for over T/2, not in doubt yet (in_doubt())
  for (const auto& [a, f] : followers) {
    if (now - f.last_heard > watchdog(interval())) {
      dead.push_back(a);
    }
    quiet += !unheard.contains(a) && now - f.last_heard > interval() / 2 ? 1 : 0;
  }
  if (!dead.empty() && in_doubt(now, quiet)) {
    for (Ipv4Addr a : dead) {
      if (unheard.insert(a).second) {
        ++counters.removals_deferred;
        log("not removing " + a.to_string() + " yet: silent, but so are the clients, and " +
            std::to_string(view_size()) + " of " + std::to_string(view_base) +
            " members are heard (cut off?)");
      }
    }
    dead.clear();
  }
  for (Ipv4Addr a : dead) {
    ++counters.followers_declared_dead;
    remove_member(now, a, "watchdog expired");
  }
  std::vector<Ipv4Addr> expired;
  for (const auto& [a, deadline] : probation) {
    if (now >= deadline) {
      expired.push_back(a);
    }
  }
  for (Ipv4Addr a : expired) {
    remove_member(now, a, "did not rejoin the new master");
  }
  if (settling && settle_until != kNever && now >= settle_until) {
    settle(now);
  }
  // FIG. 8C.
  if (now >= next_keepalive || (table_news && now >= last_master_keepalive + kAnnounceGap)) {
    send_master_keepalive(now);
  }
  // FIG. 8D.
  if (now >= next_drain_pass) {
    next_drain_pass = kNever;
    drain_pass(now);
  }
  if (now >= next_rebalance) {
    rebalance(now);
    next_rebalance = now + config.timings.rebalance_period;
  }
}

Time Member::Impl::master_deadline() const {
  Time t =
      std::min({next_keepalive, next_rebalance, next_drain_pass, settling ? settle_until : kNever,
                table_news ? last_master_keepalive + kAnnounceGap : kNever});
  for (const auto& [a, f] : followers) {
    if (!unheard.contains(a)) {  // in doubt: looked at again with each keepalive
      t = std::min(t, f.last_heard + watchdog(interval()) + Duration(1));
    }
  }
  for (const auto& [a, deadline] : probation) {
    t = std::min(t, deadline);
  }
  for (const auto* pending : {&pending_assign, &pending_deassign}) {
    for (const auto& [a, p] : *pending) {
      if (!p.worksets.empty()) {
        t = std::min(t, p.next_send);
      }
    }
  }
  return t;
}

int Member::Impl::master_keepalive_n() const {
  if (config.timings.fixed_keepalive_n != 0) {
    return std::clamp(config.timings.fixed_keepalive_n, kMinKeepaliveN, kMaxKeepaliveN);
  }
  int n = kMinKeepaliveN;
  for (const auto& [a, f] : followers) {
    n = std::max(n, f.loss.n(interval()));  // the worst follower's
  }
  return n;
}

Duration Member::Impl::master_period() const {
  return interval() / master_keepalive_n();
}

// FIG. 8C: members, the keepalive interval, and the acknowledged assignments.
void Member::Impl::send_master_keepalive(Time now) {
  if (handshake_keys.empty() || now >= next_handshake_key) {
    draw_handshake_key(now);
  }
  MasterKeepalive ka;
  ka.sequence = ++master_seq;
  ka.keepalive_n = static_cast<std::uint8_t>(master_keepalive_n());
  const auto t_ms = std::chrono::duration_cast<std::chrono::milliseconds>(interval()).count();
  ka.failure_interval_ms = static_cast<std::uint16_t>(std::clamp<std::int64_t>(t_ms, 1, 65535));
  ka.members = members;
  std::map<MemberId, std::uint8_t> index;
  for (std::size_t i = 0; i < members.size(); ++i) {
    index[ids.at(members[i])] = static_cast<std::uint8_t>(i);
  }
  ka.owners.assign(filter::kWorksetCount, kUnassigned);
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    if (table.state(ws) != WorksetState::assigned) {
      continue;
    }
    if (auto it = index.find(table.owner(ws)); it != index.end()) {
      ka.owners[i] = it->second;
    }
  }
  ka.active = static_cast<std::uint16_t>(active_in_view(now));
  ka.unheard = static_cast<std::uint16_t>(unheard.size());
  ka.handshake = handshake_keys.front();
  send(std::nullopt, std::move(ka));
  next_keepalive = now + master_period();
  last_master_keepalive = now;
  table_news = false;
}

// The next handshake key: a keyed hash of its generation under this member's own random seed, so
// that nobody else can tell it in advance. A successor master goes on from the newest key it
// heard.
void Member::Impl::draw_handshake_key(Time now) {
  HandshakeKey key;
  key.generation = handshake_keys.empty() ? 1 : handshake_keys.front().generation + 1;
  for (std::uint8_t half = 0; half < 2; ++half) {
    std::array<std::uint8_t, 5> in{};
    for (std::size_t i = 0; i < 4; ++i) {
      in[i] = static_cast<std::uint8_t>(key.generation >> (24 - 8 * i));
    }
    in[4] = half;
    key.secret[half] = tcp::siphash24(tcp::IsnSecret{config.handshake_seed}, in);
  }
  keep_handshake_key(now, key);
}

// --- membership changes ---------------------------------------------------------------------

// A follower died, left or restarted, or a member on probation did not rejoin: its worksets go
// back to the pool; those that carried traffic are reassigned at once (DESIGN §4, §6).
void Member::Impl::remove_member(Time now, Ipv4Addr addr, std::string_view why) {
  log("removing " + addr.to_string() + ": " + std::string(why));
  const std::vector<Ipv4Addr> before = members;
  members.erase(std::remove(members.begin(), members.end(), addr), members.end());
  followers.erase(addr);
  probation.erase(addr);
  forget_unheard(addr);
  pending_assign.erase(addr);
  pending_deassign.erase(addr);
  const MemberId id = id_of(addr);
  std::vector<WorksetId> freed;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    if (table.state(ws) != WorksetState::unassigned && table.owner(ws) == id) {
      move_target.erase(i);
      table.release(ws);
      freed.push_back(ws);
    }
  }
  bequeath(addr, freed, before);
  reassign_loaded(now, freed);
  settle(now);
  std::set<Ipv4Addr> view(members.begin(), members.end());
  for (const auto& [a, deadline] : probation) {
    view.insert(a);
  }
  sync_apps(std::move(view));
  send_master_keepalive(now);
}

// --- invariants -----------------------------------------------------------------------------

void Member::Impl::master_invariants() const {
  if (members.empty() || members.front() != config.address || master != config.address) {
    die("master not first in its own member list");
  }
  if (members.size() > kMaxMembers) {
    die("more than kMaxMembers members");
  }
  if (std::set<Ipv4Addr>(members.begin(), members.end()).size() != members.size()) {
    die("duplicate member");
  }
  if (followers.size() + 1 != members.size()) {
    die("followers and member list disagree");
  }
  for (Ipv4Addr a : unheard) {
    if (!followers.contains(a)) {
      die(a.to_string() + " in doubt but not a follower");
    }
  }
  if (unheard.empty() != (doubt_since == kNever)) {
    die("in doubt with nobody unheard, or the reverse");
  }
  if (settling && probation.empty() && settle_until == kNever) {
    die("settling with nobody on probation and no deadline");
  }
  for (std::size_t i = 1; i < members.size(); ++i) {
    if (!followers.contains(members[i]) || probation.contains(members[i])) {
      die(members[i].to_string() + " listed but not a follower, or on probation");
    }
  }
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    const WorksetState s = table.state(ws);
    // Built only when it dies: this runs after every simulated step.
    const auto name = [i] { return "workset " + std::to_string(i); };
    if (s == WorksetState::unassigned) {
      if (move_target.contains(i)) {
        die(name() + " unassigned but has a move target");
      }
      continue;
    }
    const Ipv4Addr owner = addr_of(table.owner(ws));
    const bool member = owner == config.address || followers.contains(owner);
    if (!member && !probation.contains(owner)) {
      die(name() + " owned by " + owner.to_string() + ", not a member");
    }
    // Our own moving ones wait for the layer above (release_own()).
    if (owner == config.address && s != WorksetState::assigned &&
        !(s == WorksetState::moving && release_pending.contains(i))) {
      die(name() + " of the master itself is not assigned");
    }
    if (s == WorksetState::moving && !move_target.contains(i)) {
      die(name() + " moving without a target");
    }
    if (s == WorksetState::assigned_unacked) {
      auto it = pending_assign.find(owner);
      if (it == pending_assign.end() || !it->second.worksets.contains(i)) {
        die(name() + " unacknowledged but no WorkAssign pending");
      }
    }
  }
  std::size_t bytes = 0;
  for (const HeldFrame& h : held) {
    const WorksetState s = table.state(h.workset);
    if (s != WorksetState::assigned_unacked && s != WorksetState::moving &&
        !(s == WorksetState::unassigned && settling)) {
      die("held frame for workset " + std::to_string(h.workset.value()) + " in state " +
          std::string(filter::to_string(s)));
    }
    bytes += h.frame.size();
  }
  if (bytes != held_bytes || held.size() > config.held_frames_max ||
      held_bytes > config.held_bytes_max) {
    die("hold queue accounting");
  }
  for (const auto& [a, p] : pending_assign) {
    for (std::uint16_t v : p.worksets) {
      const WorksetId ws{v};
      if (table.state(ws) != WorksetState::assigned_unacked || addr_of(table.owner(ws)) != a) {
        die("WorkAssign pending for workset " + std::to_string(v) + " not assigned_unacked to " +
            a.to_string());
      }
    }
  }
  for (const auto& [a, p] : pending_deassign) {
    for (std::uint16_t v : p.worksets) {
      const WorksetId ws{v};
      if (table.state(ws) != WorksetState::moving || addr_of(table.owner(ws)) != a) {
        die("WorkDeassign pending for workset " + std::to_string(v) + " not moving from " +
            a.to_string());
      }
    }
  }
  for (const auto& [v, target] : move_target) {
    if (table.state(WorksetId{v}) != WorksetState::moving) {
      die("move target for workset " + std::to_string(v) + " not moving");
    }
  }
}

}  // namespace phalanx::cluster
