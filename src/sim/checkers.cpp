#include "sim/checkers.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <variant>

#include "cluster/messages.hpp"

namespace phalanx::sim {

namespace {

using namespace std::chrono_literals;
using filter::WorksetId;
using filter::WorksetState;

// The table sweeps of the liveness phase run at most this often (the cheap checks run after
// every step): every bound they check is many times longer.
constexpr Duration kSweepInterval = 5ms;

std::string ms(Time t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t).count();
  std::string s = std::to_string(us / 1000) + ".";
  const auto frac = us % 1000;
  s += frac < 10 ? "00" : frac < 100 ? "0" : "";
  s += std::to_string(frac);
  return s + "ms";
}

std::string addr(Ipv4Addr a) {
  return a.to_string();
}

bool owns(const cluster::Member& m, WorksetId ws) {
  const auto& t = m.table();
  return t.state(ws) != WorksetState::unassigned && t.owner(ws) == t.config().self;
}

}  // namespace

Bounds bounds_for(const cluster::Timings& t, const NetworkConfig& n) {
  const Duration rtt = 2 * (n.latency + n.jitter + n.processing_lag);
  Bounds b;
  b.failure_interval = t.failure_interval;
  b.convergence = 3 * t.failure_interval + 2 * t.master_offer_wait + t.join_timeout;
  b.ownership_grace = 5 * t.retransmit_interval + 2 * rtt;
  b.dead_owner = t.failure_interval + rtt + kDeadOwnerSlack;
  b.agreement_grace = t.failure_interval + 4 * t.retransmit_interval + rtt;
  b.pause_seen = 2 * rtt;
  b.pause_watch = b.convergence + 1s;
  return b;
}

Checkers::Checkers(const Bounds& bounds) : bounds_(bounds) {
  unowned_since_.fill(Time::min());
  disagree_since_.fill(Time::min());
}

void Checkers::violate(Time at, std::string what) {
  ++violation_count_;
  if (violations_.size() < kMaxRecorded) {
    violations_.push_back({at, std::move(what)});
  }
}

// ---------------------------------------------------------------------------------------------
// Every datagram

void Checkers::on_datagram(const World& w, std::size_t from, std::uint64_t incarnation,
                           wire::Bytes bytes) {
  auto decoded = cluster::decode(bytes, cluster::NullAuthenticator{});
  auto* m = std::get_if<cluster::Message>(&decoded);
  if (!m) {
    violate(w.now(), "member " + addr(w.address(from)) + " sent an undecodable datagram (" +
                         std::string(cluster::to_string(std::get<cluster::DecodeError>(decoded))) +
                         ")");
    return;
  }
  if (m->sender != w.address(from)) {
    violate(w.now(),
            "member " + addr(w.address(from)) + " sent a message naming sender " + addr(m->sender));
  }
  if (auto* fk = std::get_if<cluster::FollowerKeepalive>(&m->body)) {
    const auto key = std::make_pair(from, incarnation);
    auto it = keepalive_seq_.find(key);
    if (it != keepalive_seq_.end() && fk->sequence <= it->second) {
      violate(w.now(), "member " + addr(w.address(from)) + " FollowerKeepalive sequence " +
                           std::to_string(fk->sequence) + " after " + std::to_string(it->second) +
                           " in one incarnation");
    }
    keepalive_seq_[key] = fk->sequence;
  } else if (auto* mk = std::get_if<cluster::MasterKeepalive>(&m->body)) {
    if (mk->owners.size() == filter::kWorksetCount) {
      Announced& a = announced_[from];
      a.incarnation = incarnation;
      a.epoch = m->epoch;
      a.members = mk->members;
      a.owners = mk->owners;
      a.at = w.now();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// After every step

void Checkers::after_step(const World& w, const StepInfo& step) {
  if (slots_.size() != w.slots()) {
    slots_.resize(w.slots());
  }
  for (std::size_t s : step.touched) {
    if (const cluster::Member* m = w.member(s)) {
      m->check_invariants();
    }
  }
  if (w.partitioned() != was_partitioned_) {
    was_partitioned_ = w.partitioned();
    partition_changed_ = w.now();
  }
  track_crashes(w);
  for (std::size_t s : step.touched) {
    watch_failovers(w, s);
  }
  check_dead_owners(w);
  check_pauses(w, step);
  if (w.counters().sessions_broken > sessions_broken_seen_) {
    sessions_broken_seen_ = w.counters().sessions_broken;
    violate(w.now(), "a move broke a live session: " + w.last_session_break());
  }
  liveness(w);
}

void Checkers::check_pauses(const World& w, const StepInfo& step) {
  // Ownership changes only when a member is called.
  if (step.touched.empty()) {
    return;
  }
  const auto& pauses = w.pauses();
  pause_race_.resize(pauses.size(), {false, Time::min()});
  for (std::size_t i = 0; i < pauses.size(); ++i) {
    const PauseRecord& p = pauses[i];
    const Time seen = p.until + bounds_.pause_seen;
    if (w.now() < seen || w.now() > seen + bounds_.pause_watch) {
      continue;
    }
    if (!w.up(p.slot) || w.incarnation(p.slot) != p.incarnation || w.paused(p.slot) ||
        w.partitioned() || w.last_network_change() >= p.from) {
      continue;
    }
    // A later pause of the same member starts its own watch.
    const bool later =
        std::any_of(pauses.begin() + static_cast<std::ptrdiff_t>(i) + 1, pauses.end(),
                    [&](const PauseRecord& q) { return q.slot == p.slot && q.from <= w.now(); });
    if (later) {
      continue;
    }
    // Joining, or following a master that is gone: a failover's race (checkers.hpp).
    const cluster::Member& m = *w.member(p.slot);
    bool race = m.role() == cluster::Role::joining || m.role() == cluster::Role::offering;
    if (m.role() == cluster::Role::follower) {
      const auto ms_slot = m.master() ? w.slot_of(*m.master()) : std::nullopt;
      race = !ms_slot || !w.up(*ms_slot) || w.member(*ms_slot)->role() != cluster::Role::master;
    }
    auto& [in_race, wait_until] = pause_race_[i];
    if (race) {
      in_race = true;
      continue;
    }
    if (in_race) {
      in_race = false;
      wait_until = w.now() + bounds_.pause_seen / 2;  // one round trip
    }
    if (w.now() < wait_until) {
      continue;
    }
    ++pause_checks_;
    for (std::uint16_t ws = 0; ws < filter::kWorksetCount; ++ws) {
      if (!owns(m, WorksetId{ws})) {
        continue;
      }
      for (std::size_t s = 0; s < w.slots(); ++s) {
        if (s == p.slot || !w.up(s) || !owns(*w.member(s), WorksetId{ws})) {
          continue;
        }
        if (pauses_reported_ <= i) {
          pauses_reported_ = i + 1;  // one violation per pause: the first is the story
          violate(w.now(), "workset " + std::to_string(ws) + " owned by both " +
                               addr(w.address(p.slot)) + " (paused " + ms(p.from) + " .. " +
                               ms(p.until) + ") and " + addr(w.address(s)) + ", " +
                               ms(w.now() - p.until) + " after the resume");
        }
      }
    }
  }
}

void Checkers::track_crashes(const World& w) {
  for (std::size_t s = 0; s < w.slots(); ++s) {
    SlotWatch& sw = slots_[s];
    const bool up = w.up(s);
    if (sw.seen && (!up || w.incarnation(s) != sw.incarnation)) {
      // The member in `s` crashed (or was restarted): the master it leaves behind must forget
      // its worksets within the dead-owner bound.
      const auto master = unique_master(w);
      if (master && *master != s) {
        dead_owner_checks_.push_back({w.up_since(s) + bounds_.dead_owner, s, sw.incarnation,
                                      *master, w.incarnation(*master), w.member(*master)->epoch()});
      }
      sw = SlotWatch{};
    }
    if (up && !sw.seen) {
      const cluster::Member& m = *w.member(s);
      sw.seen = true;
      sw.incarnation = w.incarnation(s);
      sw.master_lost = m.counters().master_lost;
      sw.declared_dead = m.counters().followers_declared_dead;
      sw.master = m.master();
      sw.members = m.members();
    }
  }
}

void Checkers::watch_failovers(const World& w, std::size_t slot) {
  const cluster::Member* m = w.member(slot);
  SlotWatch& sw = slots_[slot];
  if (!m || !sw.seen) {
    return;
  }
  const Time now = w.now();
  const Duration t = bounds_.failure_interval;
  // Silence caused by a partition is no false alarm: it may be noticed up to T after the heal.
  const bool partition_quiet =
      !w.partitioned() && (partition_changed_ == Time::min() || now - partition_changed_ > t);
  const auto& c = m->counters();
  if (c.master_lost > sw.master_lost && partition_quiet && sw.master &&
      *sw.master != w.address(slot)) {
    // A follower's master watchdog fired: false if that master is up, still master, and was up
    // for the whole interval.
    // A master that was paused was silent: no false alarm.
    auto ms = w.slot_of(*sw.master);
    if (ms && w.up(*ms) && w.member(*ms)->role() == cluster::Role::master &&
        now - w.up_since(*ms) > t && !w.paused_within(*ms, 2 * t)) {
      ++false_failovers_;
    }
  }
  if (c.followers_declared_dead > sw.declared_dead && partition_quiet) {
    for (Ipv4Addr a : sw.members) {
      if (std::find(m->members().begin(), m->members().end(), a) != m->members().end()) {
        continue;
      }
      auto s = w.slot_of(a);
      if (s && w.up(*s) && now - w.up_since(*s) > t && !w.paused_within(*s, 2 * t)) {
        ++false_failovers_;
      }
    }
  }
  sw.master_lost = c.master_lost;
  sw.declared_dead = c.followers_declared_dead;
  sw.master = m->master();
  sw.members = m->members();
}

void Checkers::check_dead_owners(const World& w) {
  for (auto it = dead_owner_checks_.begin(); it != dead_owner_checks_.end();) {
    if (w.now() < it->due) {
      ++it;
      continue;
    }
    const PendingDeadOwner c = *it;
    it = dead_owner_checks_.erase(it);
    // Only meaningful when the same master reigned throughout, the dead member stayed dead (no
    // restart and crash again since: up_since() is still the crash), and no partition hid
    // anything meanwhile.
    if (w.up(c.slot) || w.up_since(c.slot) != c.due - bounds_.dead_owner || !w.up(c.master) ||
        w.incarnation(c.master) != c.master_incarnation) {
      continue;
    }
    const cluster::Member& m = *w.member(c.master);
    if (m.role() != cluster::Role::master || m.epoch() != c.epoch || w.partitioned() ||
        partition_changed_ >= c.due - bounds_.dead_owner) {
      continue;
    }
    if (std::find(m.members().begin(), m.members().end(), w.address(c.slot)) != m.members().end()) {
      violate(w.now(), "master " + addr(w.address(c.master)) + " still lists member " +
                           addr(w.address(c.slot)) + " " + ms(bounds_.dead_owner) +
                           " after it crashed");
    }
    // Acknowledged worksets in the master's table that no member that is up owns: the dead
    // member's, still counted as served.
    const auto& t = m.table();
    int orphans = 0;
    int first = -1;
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      const WorksetId ws{i};
      if (t.state(ws) != WorksetState::assigned) {
        continue;
      }
      bool owned = false;
      for (std::size_t s = 0; s < w.slots() && !owned; ++s) {
        owned = w.up(s) && owns(*w.member(s), ws);
      }
      if (!owned) {
        ++orphans;
        first = first < 0 ? i : first;
      }
    }
    if (orphans > 0) {
      violate(w.now(), "master " + addr(w.address(c.master)) + ": " + std::to_string(orphans) +
                           " acknowledged worksets (first " + std::to_string(first) +
                           ") owned by no live member " + ms(bounds_.dead_owner) +
                           " after member " + addr(w.address(c.slot)) + " crashed");
    }
  }
}

std::optional<std::size_t> Checkers::unique_master(const World& w) const {
  std::optional<std::size_t> found;
  for (std::size_t s = 0; s < w.slots(); ++s) {
    if (w.up(s) && w.member(s)->role() == cluster::Role::master) {
      if (found) {
        return std::nullopt;
      }
      found = s;
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Liveness: once healthy for the convergence bound

void Checkers::liveness(const World& w) {
  const Time now = w.now();
  if (!w.healthy() || now - w.last_disturbance() < bounds_.convergence || w.up_count() == 0) {
    stable_since_ = Time::min();
    unowned_since_.fill(Time::min());
    disagree_since_.fill(Time::min());
    return;
  }
  if (stable_since_ == Time::min()) {
    stable_since_ = now;
  } else if (now - last_sweep_ < kSweepInterval) {
    return;
  }
  last_sweep_ = now;
  ++liveness_sweeps_;

  // Exactly one master, followed by every member that is up.
  std::vector<std::size_t> masters;
  for (std::size_t s = 0; s < w.slots(); ++s) {
    if (w.up(s) && w.member(s)->role() == cluster::Role::master) {
      masters.push_back(s);
    }
  }
  if (masters.size() != 1) {
    std::string who;
    for (std::size_t s : masters) {
      // Not `" " + addr(...)`: g++ 12 at -O3 reports a false -Wrestrict inside libstdc++ for
      // that form (GCC PR 105329), which -Werror turns into a broken Release build.
      who += ' ';
      who += addr(w.address(s));
    }
    violate(now, std::to_string(masters.size()) + " masters (" + (who.empty() ? " none" : who) +
                     " ) " + ms(now - w.last_disturbance()) + " after the last disturbance");
    return;
  }
  const std::size_t ms_slot = masters.front();
  const cluster::Member& master = *w.member(ms_slot);
  const Ipv4Addr master_addr = w.address(ms_slot);
  for (std::size_t s = 0; s < w.slots(); ++s) {
    if (!w.up(s) || s == ms_slot) {
      continue;
    }
    const cluster::Member& m = *w.member(s);
    if (m.role() != cluster::Role::follower || m.master() != master_addr ||
        m.epoch() != master.epoch()) {
      violate(now, "member " + addr(w.address(s)) + " is " +
                       std::string(cluster::to_string(m.role())) + " following " +
                       (m.master() ? addr(*m.master()) : "nobody") + " epoch " +
                       std::to_string(m.epoch()) + ", not master " + addr(master_addr) + " epoch " +
                       std::to_string(master.epoch()));
      return;
    }
  }
  if (master.members().size() != w.up_count()) {
    violate(now, "master " + addr(master_addr) + " lists " +
                     std::to_string(master.members().size()) + " members, " +
                     std::to_string(w.up_count()) + " are up");
  }

  const auto ann_it = announced_.find(ms_slot);
  const Announced* ann = ann_it != announced_.end() &&
                                 ann_it->second.incarnation == w.incarnation(ms_slot) &&
                                 ann_it->second.epoch == master.epoch()
                             ? &ann_it->second
                             : nullptr;
  const auto& mt = master.table();
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    int owners = 0;
    std::size_t owner = 0;
    for (std::size_t s = 0; s < w.slots(); ++s) {
      if (w.up(s) && owns(*w.member(s), ws)) {
        if (owners == 1) {
          violate(now, "workset " + std::to_string(i) + " owned by both " + addr(w.address(owner)) +
                           " and " + addr(w.address(s)));
        }
        ++owners;
        owner = s;
      }
    }
    // Traffic -> one owner, acknowledged in the master's table.
    const Time last = w.last_traffic(ws);
    const bool traffic = last != Time::min() && now - last <= World::kTrafficGap;
    const bool served = owners == 1 && mt.state(ws) == WorksetState::assigned;
    if (traffic && !served) {
      if (unowned_since_[i] == Time::min()) {
        unowned_since_[i] = now;
      } else if (now - unowned_since_[i] > bounds_.ownership_grace) {
        violate(now, "workset " + std::to_string(i) + " has traffic but " + std::to_string(owners) +
                         " owners, state " + std::string(filter::to_string(mt.state(ws))) +
                         " in the master's table, for " + ms(now - unowned_since_[i]));
        unowned_since_[i] = now;  // report again only after another grace period
      }
    } else {
      unowned_since_[i] = Time::min();
    }
    // Agreement with the master's last announcement, for acknowledged worksets.
    if (ann == nullptr || mt.state(ws) != WorksetState::assigned) {
      disagree_since_[i] = Time::min();
      continue;
    }
    const std::uint8_t e = ann->owners[i];
    const bool named_someone = e < ann->members.size();
    const Ipv4Addr announced = named_someone ? ann->members[e] : Ipv4Addr{};
    bool agree = true;
    std::string detail;
    for (std::size_t s = 0; s < w.slots() && agree; ++s) {
      if (!w.up(s)) {
        continue;
      }
      const bool named = named_someone && announced == w.address(s);
      if (named != owns(*w.member(s), ws)) {
        agree = false;
        detail = addr(w.address(s)) + (named ? " does not own it" : " owns it");
      }
    }
    if (!agree) {
      if (disagree_since_[i] == Time::min()) {
        disagree_since_[i] = now;
      } else if (now - disagree_since_[i] > bounds_.agreement_grace) {
        violate(now, "workset " + std::to_string(i) + ": master " + addr(master_addr) +
                         " announces owner " + (named_someone ? addr(announced) : "none") +
                         " but " + detail + ", for " + ms(now - disagree_since_[i]));
        disagree_since_[i] = now;
      }
    } else {
      disagree_since_[i] = Time::min();
    }
  }
}

}  // namespace phalanx::sim
