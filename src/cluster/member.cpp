// Member: the input checklist, the role machine of FIG. 6 (joining, offering) and the follower's
// events of FIG. 8G-8I. The master's events (FIG. 8A-8F, FIG. 9) are in master.cpp.
//
// Read first: spec US6006259 "FIG. 6", "Client Cluster Member Events", "Failover Handling";
// DESIGN §4; the protocol summary at the top of member.hpp.
//
// Replication rule (STYLE 8): epochs move forward only. A follower ignores (and counts) a
// MasterKeepalive of an older epoch than the master it follows; once its master watchdog has
// expired it is joining again and accepts any master.
//
// A view older than the cluster's is never acted on (issue 9 part 5, our refinement of FIG. 6 and
// 8A-8I): a follower that hears a master of a newer epoch than its own rejoins (follower.cpp); a
// master that hears a newer epoch steps down and keeps none of its worksets (master.cpp); orders
// to step down from an older epoch are stale. Timers never run inside on_control(): a member
// that was paused reads its queue before it judges any watchdog (see member.hpp).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "cluster/member_impl.hpp"

namespace phalanx::cluster {

using filter::MemberId;
using filter::WorksetId;
using filter::WorksetState;

namespace {

constexpr std::size_t kEventLogMax = 256;

constexpr bool legal(Role from, Role to) {
  switch (from) {
    case Role::joining:
      return to == Role::offering || to == Role::follower;
    case Role::offering:
      return to == Role::joining || to == Role::master;
    case Role::master:
    case Role::follower:
      return to == Role::joining;
  }
  return false;
}

std::string ms(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(d).count() / 1000.0);
}

filter::WorksetTableConfig table_config(const MemberConfig& c) {
  filter::WorksetTableConfig t;
  t.cluster_ip = c.cluster_ip;
  t.self = MemberId{0};
  t.hash = c.hash;
  t.mix_seed = c.mix_seed;
  t.is_master = false;
  t.mode = c.mode;
  return t;
}

}  // namespace

std::string_view to_string(Role r) {
  switch (r) {
    case Role::joining:
      return "joining";
    case Role::offering:
      return "offering";
    case Role::master:
      return "master";
    case Role::follower:
      return "follower";
  }
  return "unknown";
}

std::uint64_t LoadMetric::workset_weight(const filter::WorksetTable&, filter::WorksetId) const {
  return 1;
}

[[noreturn]] void Member::Impl::die(const std::string& what) const {
  const Member::Impl& m = *this;
  std::fprintf(stderr, "member %s (%.*s): %s\n", m.config.address.to_string().c_str(),
               static_cast<int>(to_string(m.role).size()), to_string(m.role).data(), what.c_str());
  std::abort();
}

Member::Impl::Impl(MemberConfig c, std::vector<Application*> a, const LoadMetric* lm,
                   std::unique_ptr<Authenticator> au)
    : config(std::move(c)),
      apps(std::move(a)),
      metric(lm),
      auth(std::move(au)),
      cluster_id(cluster_id_of(config.cluster_name)),
      table(table_config(config)) {
  static const LoadMetric kDefaultMetric;
  if (metric == nullptr) {
    metric = &kDefaultMetric;
  }
  if (auth == nullptr) {
    auth = std::make_unique<NullAuthenticator>();
  }
  ids.emplace(config.address, self_id);
  addrs.push_back(config.address);
  id_in_use.push_back(true);
}

// --- common ---------------------------------------------------------------------------------

void Member::Impl::log(std::string line) {
  if (hook) {
    hook(line);
  }
  if (events.size() >= kEventLogMax) {
    events.erase(events.begin());
  }
  events.push_back(std::move(line));
}

// The only place the role changes (STYLE 5).
void Member::Impl::transition(Role to, Time now, std::string_view why) {
  if (!legal(role, to)) {
    die("illegal role transition " + std::string(to_string(role)) + " => " +
        std::string(to_string(to)));
  }
  log("t=" + ms(now) + "ms " + std::string(to_string(role)) + " => " + std::string(to_string(to)) +
      ": " + std::string(why));
  role = to;
  table.set_master(to == Role::master);
  table_confirmed = to == Role::master;
  release_pending.clear();  // asked by a master we no longer follow in that role
  assign_pending.reset();
  released_on_order.reset();
}

// The registry numbers the addresses this member deals with. An address gets an id when the
// member list or the table is about to reference it; when the registry is full (kMaxRegistered)
// the entries nothing references any more are reclaimed first. What is referenced is bounded
// (self, 1024 owners, 255 members and followers, the last master), so the registry never fills:
// "member registry full" is a "cannot happen".
MemberId Member::Impl::id_of(Ipv4Addr addr) {
  auto it = ids.find(addr);
  if (it != ids.end()) {
    return it->second;
  }
  if (free_ids.empty() && addrs.size() >= kMaxRegistered) {
    reclaim_ids();
  }
  MemberId id;
  if (!free_ids.empty()) {
    id = MemberId{free_ids.back()};
    free_ids.pop_back();
    addrs[id.value()] = addr;
    id_in_use[id.value()] = true;
  } else {
    if (addrs.size() >= kMaxRegistered) {
      die("member registry full");
    }
    id = MemberId{static_cast<std::uint16_t>(addrs.size())};
    addrs.push_back(addr);
    id_in_use.push_back(true);
  }
  ids.emplace(addr, id);
  return id;
}

Ipv4Addr Member::Impl::addr_of(MemberId id) const {
  if (id.is_none() || id.value() >= addrs.size() || !id_in_use[id.value()]) {
    die("no address for member id " + std::to_string(id.value()));
  }
  return addrs[id.value()];
}

void Member::Impl::reclaim_ids() {
  std::vector<bool> used(addrs.size(), false);
  used[self_id.value()] = true;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    if (table.state(ws) != WorksetState::unassigned) {
      used[table.owner(ws).value()] = true;
    }
  }
  const auto mark = [&](Ipv4Addr a) {
    if (auto it = ids.find(a); it != ids.end()) {
      used[it->second.value()] = true;
    }
  };
  for (Ipv4Addr a : members) {
    mark(a);
  }
  for (const auto& [a, f] : followers) {
    mark(a);
  }
  for (const auto& [a, d] : probation) {
    mark(a);
  }
  for (const auto& [v, a] : move_target) {
    mark(a);
  }
  for (const auto* pending : {&pending_assign, &pending_deassign}) {
    for (const auto& [a, p] : *pending) {
      mark(a);
    }
  }
  for (const auto& a : {master, last_master}) {
    if (a) {
      mark(*a);
    }
  }
  std::uint64_t freed = 0;
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    if (id_in_use[i] && !used[i]) {
      ids.erase(addrs[i]);
      addrs[i] = Ipv4Addr{};
      id_in_use[i] = false;
      free_ids.push_back(static_cast<std::uint16_t>(i));
      ++freed;
    }
  }
  // Lowest ids first: reuse keeps the numbering dense.
  std::sort(free_ids.begin(), free_ids.end(), std::greater<>());
  counters.registry_reclaimed += freed;
}

void Member::Impl::registry_invariants() const {
  if (addrs.size() > kMaxRegistered || id_in_use.size() != addrs.size() ||
      ids.size() + free_ids.size() != addrs.size()) {
    die("registry accounting");
  }
  for (const auto& [a, id] : ids) {
    if (id.value() >= addrs.size() || !id_in_use[id.value()] || addrs[id.value()] != a) {
      die("registry entry for " + a.to_string() + " disagrees");
    }
  }
}

void Member::Impl::send(std::optional<Ipv4Addr> to, Body body) {
  Message m;
  m.cluster_id = cluster_id;
  m.sender = config.address;
  m.epoch = epoch;
  m.body = std::move(body);
  out.messages.push_back(Outgoing{to, encode(m, *auth)});
}

// FIG. 8G 893-898: tells the applications who left and who joined since they were last told.
void Member::Impl::sync_apps(std::set<Ipv4Addr> view) {
  view.erase(config.address);
  for (Ipv4Addr a : app_view) {
    if (!view.contains(a)) {
      log("member left: " + a.to_string());
      for (Application* app : apps) {
        app->member_left(a);
      }
    }
  }
  for (Ipv4Addr a : view) {
    if (!app_view.contains(a)) {
      log("member joined: " + a.to_string());
      for (Application* app : apps) {
        app->member_joined(a);
      }
    }
  }
  app_view = std::move(view);
}

bool Member::Impl::owns(WorksetId ws) const {
  return table.state(ws) != WorksetState::unassigned && table.owner(ws) == self_id;
}

void Member::Impl::release_own_worksets(const MasterKeepalive* given_away_by, bool keep_busy) {
  if (given_away_by != nullptr && given_away_by->owners.size() != filter::kWorksetCount) {
    return;
  }
  // Whether `ka` names another member the owner of workset i.
  const auto given_away = [this](const MasterKeepalive& ka, std::uint16_t i) {
    const std::uint8_t e = ka.owners[i];
    return e != kUnassigned && e < ka.members.size() && ka.members[e] != config.address;
  };
  const std::bitset<filter::kWorksetCount> busy =
      keep_busy ? busy_now() : std::bitset<filter::kWorksetCount>{};
  std::size_t n = 0;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    if (owns(WorksetId{i}) && !busy.test(i) &&
        (given_away_by == nullptr || given_away(*given_away_by, i))) {
      table.release(WorksetId{i});
      ++n;
    }
  }
  if (n > 0) {
    log("released " + std::to_string(n) + " worksets" +
        (given_away_by != nullptr ? " the master gives to others" : ""));
  }
}

std::vector<std::uint16_t> Member::Impl::own_worksets() const {
  std::vector<std::uint16_t> v;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    if (owns(WorksetId{i})) {
      v.push_back(i);
    }
  }
  return v;
}

// --- input checklist (OpenBSD CARP style: each check a line and a counter) -----------------

void Member::Impl::on_datagram(Time now, wire::Bytes datagram) {
  ++counters.rx_messages;
  // No timers here (member.hpp "Order of calls"): what has arrived is read before any watchdog
  // is judged, so a member that was paused does not act on a view its queue contradicts.
  auto decoded = decode(datagram, *auth);
  // Malformed, unauthenticated or foreign-format datagrams: counted per reason, dropped.
  if (const auto* err = std::get_if<DecodeError>(&decoded)) {
    ++counters.rx_rejected[static_cast<std::size_t>(*err)];
    return;
  }
  const Message& m = std::get<Message>(decoded);
  // Another cluster sharing the LAN or the group.
  if (m.cluster_id != cluster_id) {
    ++counters.rx_wrong_cluster;
    return;
  }
  // Our own broadcast looped back (spec 627/803: "is it from me?").
  if (m.sender == config.address) {
    ++counters.rx_own;
    return;
  }
  max_epoch_seen = std::max(max_epoch_seen, m.epoch);
  on_message(now, m);
}

void Member::Impl::on_resume(Time now, Duration away) {
  if (away <= Duration::zero()) {
    return;
  }
  const auto later = [&](Time t) { return t >= now - away ? now : t + away; };
  log("t=" + ms(now) + "ms resumed after " + ms(away) + "ms away");
  if (away > watchdog(interval())) {
    resumed_after_silence = now;
  }
  master_heard = later(master_heard);
  for (auto& [a, f] : followers) {
    f.last_heard = later(f.last_heard);
  }
  for (auto& [a, deadline] : probation) {
    deadline = deadline > kNever - away ? kNever : deadline + away;
  }
}

void Member::Impl::on_message(Time now, const Message& m) {
  if (role == Role::master) {
    master_on_message(now, m);
    return;
  }
  const Ipv4Addr from = m.sender;
  if (const auto* ka = std::get_if<MasterKeepalive>(&m.body)) {
    if (role == Role::follower) {
      follower_on_master_keepalive(now, m, *ka);
      return;
    }
    // Joining or offering: a master exists; (re)ask it at once instead of waiting.
    master_seen = now;
    if (role == Role::offering) {
      transition(Role::joining, now, "heard master " + from.to_string());
      send_join_request(now);
    } else if (!verdict_pending) {
      send_join_request(now);
    }
    return;
  }
  if (std::holds_alternative<JoinAck>(m.body) || std::holds_alternative<JoinNak>(m.body)) {
    on_join_answer(now, m);
    return;
  }
  if (const auto* offer = std::get_if<MasterOffer>(&m.body)) {
    // A competing offer: the one with more members, then the lower address, wins; the loser
    // backs off to joining (saves a tie-break once both are masters).
    const bool they_win =
        offer->member_count > 1 || (offer->member_count == 1 && from < config.address);
    if (they_win && role != Role::follower) {
      lower_offer_seen = now;
      if (role == Role::offering) {
        transition(Role::joining, now, "lower offer from " + from.to_string());
        send_join_request(now);
      }
    }
    // A follower whose master is alive tells the offerer so, as the master would: the master
    // may merely be slow to answer (paused for less than T). Made master of one meanwhile, the
    // newcomer served the others' worksets and reset their connections (whole-member
    // rebalance_after_join seed 415).
    if (role == Role::follower && now - master_heard <= interval()) {
      ++counters.offers_answered;
      send(from, OtherMasterExists{from});
    }
    return;
  }
  if (const auto* ome = std::get_if<OtherMasterExists>(&m.body)) {
    if (ome->member == config.address && role != Role::follower) {
      master_seen = now;
      if (role == Role::offering) {
        transition(Role::joining, now, "other master exists: " + from.to_string());
      }
      send_join_request(now);
      return;
    }
    ++counters.rx_ignored;
    return;
  }
  if (const auto* ex = std::get_if<ExitCluster>(&m.body)) {
    if (ex->member == from) {
      on_departure(from);
    }
    // The master leaving on its own, or our master telling us to leave (FIG. 6 609): rejoin.
    const bool our_master = role == Role::follower && master && from == *master;
    if (our_master && (ex->member == from || ex->member == config.address)) {
      if (ex->member == from) {
        master_seen.reset();  // it is gone: no reason to wait for it
      } else {
        // Our master says we are not a member: whatever we own is no longer ours in its table
        // (it released it, or never gave it), so we serve none of it while we rejoin, but what
        // carries live sessions (see follower_on_master_keepalive).
        release_own_worksets(nullptr, !declared_dead(now));
      }
      enter_joining(now, ex->member == from ? "master left" : "told to exit: " + ex->text);
      return;
    }
    if (role == Role::offering && ex->member == config.address) {
      transition(Role::joining, now, "told to exit: " + ex->text);
      send_join_request(now);
      return;
    }
    ++counters.rx_ignored;
    return;
  }
  if (role == Role::follower && master && from == *master) {
    // Replication moves forward only: work orders of an older term are stale.
    if (m.epoch < epoch) {
      ++counters.rx_stale_epoch;
      return;
    }
    if (const auto* wa = std::get_if<WorkAssign>(&m.body); wa && wa->member == config.address) {
      follower_on_work_assign(*wa);
      return;
    }
    if (const auto* wd = std::get_if<WorkDeassign>(&m.body); wd && wd->member == config.address) {
      follower_on_work_deassign(*wd);
      return;
    }
  }
  // JoinRequests, FollowerKeepalives and acks are the master's; work orders for others.
  ++counters.rx_ignored;
}

void Member::Impl::run_timers(Time now) {
  if (!started || left) {
    return;
  }
  switch (role) {
    case Role::joining:
      if (now >= role_deadline) {
        on_joining_deadline(now);
      }
      break;
    case Role::offering:
      // FIG. 6 619: silence for master_offer_wait after the offer.
      if (now >= role_deadline) {
        enter_master(now, "no answer to MasterOffer");
      }
      break;
    case Role::follower:
      // FIG. 8I: master watchdog; silent for longer than T -> rejoin, keeping our worksets.
      if (now - master_heard > watchdog(interval())) {
        ++counters.master_lost;
        // Not while another master is heard (ours lost a tie-break): that one is joined.
        const bool other_master = other_master_heard && now - *other_master_heard <= interval();
        const bool successor = next_in_line() && !other_master;
        enter_joining(now, "master watchdog expired");
        if (successor) {
          // Every survivor has the member list, so the next master is known: the lowest
          // address after the lost one. It takes over at once instead of asking and offering
          // (join timeout + offer wait, 130 ms); its offer keeps the others from competing, and
          // they find it as they rejoin. If it is gone too, they elect as FIG. 6 says. A member
          // that merely lost its own link is a master of one, as it would be after the offer,
          // and loses the tie-break when the link returns.
          ++counters.successions;
          transition(Role::offering, now, "next in line");
          send(std::nullopt, MasterOffer{1});
          enter_master(now, "succeeds " + (last_master ? last_master->to_string() : "?"));
        }
        break;
      }
      if (now >= next_keepalive) {
        send_follower_keepalive(now);
      }
      break;
    case Role::master:
      master_timers(now);
      break;
  }
}

Time Member::Impl::next_deadline() const {
  if (!started || left) {
    return kNever;
  }
  switch (role) {
    case Role::joining:
    case Role::offering:
      return role_deadline;
    case Role::follower:
      return std::min(next_keepalive, master_heard + watchdog(interval()) + Duration(1));
    case Role::master:
      return master_deadline();
  }
  return kNever;
}

void Member::Impl::after_call(Time now) {
  check_drained(now);
  if (role == Role::master && !left) {
    flush_pending(now);
  }
  track_quorum(now);
}

bool Member::Impl::is_draining(Ipv4Addr a) const {
  if (a == config.address) {
    return draining;
  }
  const auto it = followers.find(a);
  return it != followers.end() && it->second.draining;
}

// A draining member that owns nothing, has nothing to answer and (master) nothing in flight
// leaves; one in no cluster leaves at once.
void Member::Impl::check_drained(Time now) {
  if (!draining || left || !started) {
    return;
  }
  // A master alone has nobody to give anything to: it leaves at once.
  if (role == Role::follower || (role == Role::master && !followers.empty())) {
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      if (owns(WorksetId{i})) {
        return;
      }
    }
    if (!release_pending.empty()) {
      return;
    }
    if (role == Role::master) {
      for (const auto* pending : {&pending_assign, &pending_deassign}) {
        for (const auto& [a, p] : *pending) {
          if (!p.worksets.empty()) {
            return;
          }
        }
      }
    }
  }
  send(std::nullopt, ExitCluster{config.address, "drained"});
  log("t=" + ms(now) + "ms drained: leaving");
  left = true;
}

// --- quorum (Timings::quorum_forget) --------------------------------------------------------

// Members that said goodbye count no more, though a follower's view lists them a little longer;
// nor do the followers a master keeps in doubt (unheard).
std::size_t Member::Impl::view_size() const {
  std::size_t n = members.size() + (role == Role::master ? probation.size() : 0);
  n -= std::min(n, departed.size());
  n -= std::min(n, role == Role::master ? unheard.size() : master_unheard);
  return std::max<std::size_t>(n, 1);
}

bool Member::Impl::in_majority(Time now) const {
  return view_size() * 2 > view_base || config.timings.quorum_forget == Duration::zero() ||
         (minority_since != kNever && now - minority_since >= config.timings.quorum_forget);
}

// Called after every call. A joining member keeps the view it last had (a follower whose master
// died is no minority); a view that grows raises the base at once; one in a minority for
// quorum_forget becomes the base (the others are taken to be gone for good).
void Member::Impl::track_quorum(Time now) {
  // A departure is deducted once: until the view no longer lists the member (a duplicated
  // ExitCluster is not a second departure); after that it may rejoin and leave again.
  if (role == Role::follower || role == Role::master) {
    std::erase_if(departed, [&](Ipv4Addr a) {
      return std::find(members.begin(), members.end(), a) == members.end() &&
             !probation.contains(a);
    });
  }
  const std::size_t size = view_size();
  view_base = std::max(view_base, size);
  if (size * 2 > view_base) {
    minority_since = kNever;
  } else if (minority_since == kNever) {
    minority_since = now;
    ++counters.minority_entered;
    log("t=" + ms(now) + "ms minority: a view of " + std::to_string(size) + " of " +
        std::to_string(view_base));
  } else if (now - minority_since >= config.timings.quorum_forget) {
    ++counters.minority_accepted;
    log("t=" + ms(now) + "ms the view of " + std::to_string(size) + " is the cluster now (" +
        std::to_string(view_base) + " before)");
    view_base = size;
    minority_since = kNever;
  }
}

void Member::Impl::on_departure(Ipv4Addr addr) {
  const bool in_view =
      std::find(members.begin(), members.end(), addr) != members.end() || probation.contains(addr);
  if (!in_view || departed.size() >= kMaxMembers || !departed.insert(addr).second) {
    return;
  }
  view_base = std::max<std::size_t>(view_base - 1, 1);
}

// --- joining / offering (FIG. 6) ------------------------------------------------------------

bool Member::Impl::next_in_line() const {
  std::optional<Ipv4Addr> lowest;
  for (Ipv4Addr a : members) {
    if ((!master || a != *master) && (!lowest || a < *lowest)) {
      lowest = a;
    }
  }
  return lowest == config.address;
}

void Member::Impl::enter_joining(Time now, std::string_view why) {
  if (role == Role::follower) {
    last_master = master;
  }
  transition(Role::joining, now, why);
  master.reset();
  verdict_pending = false;
  next_keepalive = kNever;
  send_join_request(now);
}

// FIG. 6 603: broadcast JoinRequest, claiming the worksets this member still serves.
void Member::Impl::send_join_request(Time now) {
  JoinRequest jr;
  jr.incarnation = config.incarnation;
  jr.worksets = own_worksets();
  const std::bitset<filter::kWorksetCount> busy = busy_now();
  for (std::uint16_t v : jr.worksets) {
    if (busy.test(v)) {
      jr.busy.push_back(v);
    }
  }
  send(std::nullopt, std::move(jr));
  role_deadline = now + config.timings.join_timeout;
  verdict_pending = false;
}

void Member::Impl::on_joining_deadline(Time now) {
  // A master answered recently, or a lower member is offering: ask again rather than compete.
  const bool master_alive = master_seen && now - *master_seen <= interval();
  const bool lower_offering =
      lower_offer_seen &&
      now - *lower_offer_seen < config.timings.master_offer_wait + config.timings.join_timeout;
  if (master_alive || lower_offering) {
    send_join_request(now);
    return;
  }
  // FIG. 6 613-615: no answer -> offer to become master.
  enter_offering(now);
}

void Member::Impl::enter_offering(Time now) {
  transition(Role::offering, now, "no answer to JoinRequest");
  send(std::nullopt, MasterOffer{1});
  role_deadline = now + config.timings.master_offer_wait;
}

void Member::Impl::on_join_answer(Time now, const Message& m) {
  if (role != Role::joining) {
    ++counters.rx_ignored;
    return;
  }
  if (const auto* ack = std::get_if<JoinAck>(&m.body)) {
    if (ack->member != config.address) {
      ++counters.rx_ignored;
      return;
    }
    // FIG. 6 605-607.
    enter_follower(now, m.sender, m.epoch, ack->keepalive_sequence);
    return;
  }
  const auto& nak = std::get<JoinNak>(m.body);
  if (nak.member != config.address) {
    ++counters.rx_ignored;
    return;
  }
  // in_progress: the verdict follows. Any refusal: a master exists, so ask again later instead of
  // offering to compete with it.
  master_seen = now;
  verdict_pending = true;
  role_deadline = now + config.timings.join_verdict_timeout;
  if (nak.reason != NakReason::in_progress) {
    log("join refused by " + m.sender.to_string() + ": " + nak.text);
  }
}

// --- public interface -----------------------------------------------------------------------

Member::Member(MemberConfig config, std::vector<Application*> apps, const LoadMetric* metric,
               std::unique_ptr<Authenticator> auth)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(apps), metric, std::move(auth))) {}

Member::~Member() = default;

void Member::start(Time now) {
  if (impl_->started) {
    impl_->die("start() called twice");
  }
  impl_->started = true;
  impl_->log("t=" + ms(now) + "ms start: joining");
  impl_->send_join_request(now);
}

void Member::on_control(Time now, wire::Bytes datagram) {
  if (!impl_->started || impl_->left) {
    return;
  }
  impl_->on_datagram(now, datagram);
  impl_->after_call(now);
}

void Member::on_timer(Time now) {
  impl_->run_timers(now);
  impl_->after_call(now);
}

void Member::on_resume(Time now, Duration away) {
  if (!impl_->started || impl_->left) {
    return;
  }
  impl_->on_resume(now, away);
}

void Member::on_unassigned_packet(Time now, filter::WorksetId ws, wire::Bytes frame) {
  if (!impl_->started || impl_->left) {
    ++impl_->counters.held_dropped;
    return;
  }
  impl_->on_unassigned_packet(now, ws, frame);
  impl_->after_call(now);
}

void Member::leave(Time now) {
  if (!impl_->started || impl_->left) {
    return;
  }
  impl_->send(std::nullopt, ExitCluster{impl_->config.address, "leaving"});
  impl_->log("t=" + ms(now) + "ms leave");
  impl_->left = true;
}

Time Member::next_deadline() const {
  return impl_->next_deadline();
}

Output Member::take_output() {
  impl_->report_ownership();
  return std::exchange(impl_->out, Output{});
}

void Member::Impl::report_ownership() {
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const bool now = owns(WorksetId{i});
    if (now != owned_reported.test(i)) {
      owned_reported.set(i, now);
      out.ownership.push_back(
          {now ? OwnershipEvent::Kind::gained : OwnershipEvent::Kind::lost, WorksetId{i}, {}});
    }
  }
}

bool Member::release_ready(Time now, filter::WorksetId ws) {
  const bool r = impl_->answer_release(now, ws, true);
  impl_->after_call(now);
  return r;
}

bool Member::refuse_release(Time now, filter::WorksetId ws) {
  const bool r = impl_->answer_release(now, ws, false);
  impl_->after_call(now);
  return r;
}

void Member::drain(Time now) {
  Impl& m = *impl_;
  if (!m.started || m.left || m.draining) {
    return;
  }
  m.draining = true;
  m.log("t=" + ms(now) + "ms draining: every workset moves away, then we leave");
  if (m.role == Role::master) {
    m.drain_pass(now);
  } else if (m.role == Role::follower && m.master) {
    m.send_follower_keepalive(now);  // tells the master
  }
  m.after_call(now);
}

bool Member::draining() const {
  return impl_->draining;
}

bool Member::drained() const {
  return impl_->draining && impl_->left;
}

bool Member::assign_ready(Time /*now*/, filter::WorksetId ws) {
  Impl& m = *impl_;
  if (!m.assign_pending.test(ws.value()) || m.role != Role::follower || !m.master) {
    return false;
  }
  m.assign_pending.reset(ws.value());
  m.take_workset(ws);
  m.send(m.master, WorkAssignAck{{ws.value()}});
  return true;
}

bool Member::Impl::answer_release(Time now, WorksetId ws, bool release) {
  const auto it = release_pending.find(ws.value());
  if (it == release_pending.end() ||
      (role != Role::master && (role != Role::follower || !master))) {
    return false;
  }
  release_pending.erase(it);
  if (role == Role::master) {
    // Our own (release_own()): the move completes, or is off.
    if (table.state(ws) != WorksetState::moving || !is_self(table.owner(ws))) {
      return true;  // moved on meanwhile
    }
    if (release) {
      complete_move(now, ws);
    } else {
      move_target.erase(ws.value());
      table.assign(ws, self_id);
      table.ack(ws);
      release_held(ws, config.address);
      ++counters.moves_cancelled;
    }
    return true;
  }
  WorkDeassignAck ack;
  if (release) {
    if (owns(ws)) {
      table.release(ws);
      released_on_order.set(ws.value());
    }
    ack.worksets.push_back(ws.value());
  } else {
    ++counters.deassign_refused;
    ack.refused.push_back(ws.value());
  }
  send(master, std::move(ack));
  return true;
}

Role Member::role() const {
  return impl_->role;
}
std::optional<Ipv4Addr> Member::master() const {
  return impl_->master;
}
Epoch Member::epoch() const {
  return impl_->epoch;
}
const std::vector<Ipv4Addr>& Member::members() const {
  return impl_->members;
}
const filter::WorksetTable& Member::table() const {
  return impl_->table;
}
filter::WorksetTable& Member::table() {
  return impl_->table;
}
bool Member::table_confirmed() const {
  return impl_->table_confirmed;
}

bool Member::in_majority(Time now) const {
  return impl_->in_majority(now);
}

int Member::keepalive_n() const {
  return impl_->role == Role::master ? impl_->master_keepalive_n() : impl_->follow_n;
}
std::optional<double> Member::loss_estimate(Ipv4Addr follower) const {
  if (impl_->role != Role::master) {
    return std::nullopt;
  }
  auto it = impl_->followers.find(follower);
  if (it == impl_->followers.end()) {
    return std::nullopt;
  }
  return it->second.loss.p();
}
const MemberCounters& Member::counters() const {
  return impl_->counters;
}
const std::vector<HandshakeKey>& Member::handshake_keys() const {
  return impl_->handshake_keys;
}
const MemberConfig& Member::config() const {
  return impl_->config;
}
std::size_t Member::held_frames_now() const {
  return impl_->held.size();
}
std::optional<Ipv4Addr> Member::address_of(filter::MemberId id) const {
  if (id.is_none() || id.value() >= impl_->addrs.size() || !impl_->id_in_use[id.value()]) {
    return std::nullopt;
  }
  return impl_->addrs[id.value()];
}
std::optional<Ipv4Addr> Member::owner_address(filter::WorksetId ws) const {
  if (impl_->table.state(ws) == WorksetState::unassigned) {
    return std::nullopt;
  }
  return address_of(impl_->table.owner(ws));
}
const std::vector<std::string>& Member::event_log() const {
  return impl_->events;
}
void Member::set_sessions(const SessionView* sessions) {
  impl_->sessions = sessions;
}

void Member::set_event_hook(std::function<void(std::string_view)> hook) {
  impl_->hook = std::move(hook);
}

void Member::check_invariants() const {
  const Impl& m = *impl_;
  m.table.check_invariants();
  m.registry_invariants();
  if (m.table.is_master() != (m.role == Role::master)) {
    m.die("table's master flag disagrees with the role");
  }
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const WorksetId ws{i};
    const MemberId owner = m.table.owner(ws);
    if (m.table.state(ws) != WorksetState::unassigned &&
        (owner.value() >= m.addrs.size() || !m.id_in_use[owner.value()])) {
      m.die("workset " + std::to_string(i) + " owned by an unregistered member id");
    }
  }
  if (m.role == Role::master) {
    m.master_invariants();
    return;
  }
  if (!m.held.empty() || m.held_bytes != 0) {
    m.die("held frames outside the master role");
  }
  if (!m.pending_assign.empty() || !m.pending_deassign.empty() || !m.move_target.empty()) {
    m.die("pending work outside the master role");
  }
  if (m.role == Role::follower) {
    if (!m.master || *m.master == m.config.address) {
      m.die("follower without a master, or following itself");
    }
  }
  if (m.role != Role::master) {
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      const WorksetId ws{i};
      if (m.table.state(ws) != WorksetState::unassigned &&
          m.table.state(ws) != WorksetState::assigned) {
        m.die("workset " + std::to_string(i) + " is " +
              std::string(filter::to_string(m.table.state(ws))) + " outside the master role");
      }
    }
  }
}

}  // namespace phalanx::cluster
