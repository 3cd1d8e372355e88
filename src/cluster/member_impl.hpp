// Member's private state, shared by member.cpp (input checklist, roles), follower.cpp (FIG.
// 8G-8I), master.cpp (FIG. 8A-8F) and assignment.cpp (FIG. 9, FIG. 8D). Not a public interface:
// include it from those files only.
#pragma once

#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/keepalive.hpp"
#include "cluster/member.hpp"

namespace phalanx::cluster {

// The epoch after `e`. Saturates instead of wrapping: an epoch taken from the wire may be the
// largest there is (forged; DESIGN §7 authentication is what keeps strangers from sending it).
constexpr Epoch next_epoch(Epoch e) {
  return e == std::numeric_limits<Epoch>::max() ? e : e + 1;
}

// The master's view of one follower (FIG. 8B).
struct FollowerState {
  std::uint64_t incarnation = 0;
  Time last_heard{};  // any message from it resets its watchdog
  Time admitted{};    // when its JoinRequest was last answered with a reconciliation
  LossEstimator loss;
  std::bitset<filter::kWorksetCount> busy;  // from its latest FollowerKeepalive
  std::uint16_t active = 0;                 // likewise
  bool draining = false;                    // likewise: given nothing, everything moved away
};

// WorkAssign or WorkDeassign worksets waiting for their acknowledgement from one member.
struct PendingWork {
  std::set<std::uint16_t> worksets;
  Time next_send = kNever;  // when to (re)send; now = as soon as the current call ends
};

struct HeldFrame {
  filter::WorksetId workset;
  std::vector<std::byte> frame;
};

struct Member::Impl {
  Impl(MemberConfig config, std::vector<Application*> apps, const LoadMetric* metric,
       std::unique_ptr<Authenticator> auth);

  // --- member.cpp: common -------------------------------------------------------------------
  void log(std::string line);
  void transition(Role to, Time now, std::string_view why);
  filter::MemberId id_of(Ipv4Addr addr);  // registers unknown addresses
  Ipv4Addr addr_of(filter::MemberId id) const;
  // Frees the registry entries nothing references (kMaxRegistered).
  void reclaim_ids();
  void registry_invariants() const;
  bool is_self(filter::MemberId id) const { return id == self_id; }
  void send(std::optional<Ipv4Addr> to, Body body);
  void sync_apps(std::set<Ipv4Addr> view);
  bool owns(filter::WorksetId ws) const;
  std::vector<std::uint16_t> own_worksets() const;
  // Gives up every workset this member owns (a removed member, a superseded master), or, given a
  // keepalive, those of ours it names another member the owner of; with keep_busy, not those
  // that carry live sessions (claimed as busy when this member rejoins).
  void release_own_worksets(const MasterKeepalive* given_away_by = nullptr, bool keep_busy = false);
  Duration interval() const { return config.timings.failure_interval; }
  // Back from an absence longer than our watchdog within the last T (on_resume): the others
  // have had time to declare us dead and give away what we owned.
  bool declared_dead(Time now) const { return now - resumed_after_silence <= interval(); }
  // How long a peer may stay silent before its watchdog fires (see Timings::watchdog_slack).
  Duration watchdog(Duration t) const { return t + config.timings.watchdog_slack; }

  void on_datagram(Time now, wire::Bytes datagram);
  void on_resume(Time now, Duration away);
  void on_message(Time now, const Message& m);
  void run_timers(Time now);
  Time next_deadline() const;
  void after_call(Time now);  // flushes what a call queued
  // Quorum: the size of this member's view (a master's members and probation; a follower's
  // master's list; joining: the last view) and its bookkeeping after every call.
  std::size_t view_size() const;
  void track_quorum(Time now);
  bool in_majority(Time now) const;
  // A member in our view left gracefully (its ExitCluster): the largest view shrinks with it.
  void on_departure(Ipv4Addr addr);

  // --- member.cpp: joining / offering (FIG. 6) ----------------------------------------------
  void enter_joining(Time now, std::string_view why);
  // The lowest address in the member list after the master we follow: the one to succeed it.
  bool next_in_line() const;
  void send_join_request(Time now);
  void enter_offering(Time now);
  void on_joining_deadline(Time now);
  void on_join_answer(Time now, const Message& m);

  // --- follower.cpp (FIG. 8G-8I) ------------------------------------------------------
  void enter_follower(Time now, Ipv4Addr master_addr, Epoch master_epoch,
                      std::uint32_t keepalive_sequence);
  void follower_on_master_keepalive(Time now, const Message& m, const MasterKeepalive& ka);
  // Applies the timings a keepalive announces, or refuses them (counted, logged).
  void apply_announced_timings(Time now, const MasterKeepalive& ka);
  // Puts `key` first among the handshake keys (keeping kHandshakeKeysKept).
  void keep_handshake_key(Time now, const HandshakeKey& key);
  void mirror_owners(const MasterKeepalive& ka, bool answers_our_claims);
  void follower_on_work_assign(const WorkAssign& wa);
  void follower_on_work_deassign(const WorkDeassign& wd);
  void send_follower_keepalive(Time now);
  Duration follower_period() const;

  // --- master.cpp (FIG. 8A-8F) and assignment.cpp (FIG. 9, 8D)
  // --------------------------------------------------------
  void enter_master(Time now, std::string_view why);
  // `superseded`: a newer epoch was heard; the successor's term may have given this member's
  // worksets away, so it keeps none of them.
  void step_down(Time now, std::string_view why, bool superseded);
  void master_on_message(Time now, const Message& m);
  void master_on_join_request(Time now, Ipv4Addr from, const JoinRequest& jr);
  void master_on_master_keepalive(Time now, const Message& m, const MasterKeepalive& ka);
  // Worksets that carried client traffic in the last T in this master's view: its own and its
  // followers' (their latest keepalives), at most kWorksetCount.
  std::size_t active_in_view(Time now) const;
  // The valid workset ids of an acknowledgement from a known follower, each taken off
  // `pending`; nothing (counted rx_ignored) when `from` is not a follower.
  std::vector<filter::WorksetId> take_acked(Ipv4Addr from,
                                            const std::vector<std::uint16_t>& worksets,
                                            std::map<Ipv4Addr, PendingWork>& pending);
  void master_on_assign_ack(Time now, Ipv4Addr from, const WorkAssignAck& ack);
  void master_on_deassign_ack(Time now, Ipv4Addr from, const WorkDeassignAck& ack);
  void master_timers(Time now);
  Time master_deadline() const;
  void send_master_keepalive(Time now);
  void draw_handshake_key(Time now);
  int master_keepalive_n() const;
  Duration master_period() const;
  void remove_member(Time now, Ipv4Addr addr, std::string_view why);
  void reconcile_claims(Time now, Ipv4Addr addr, const JoinRequest& jr);
  // Whether the member owning `ws` in our table reported live sessions on it (its latest
  // keepalive; ours now; a member on probation has not reported: assumed busy).
  bool owner_busy(filter::WorksetId ws) const;
  void settle(Time now);
  bool loaded(filter::WorksetId ws) const;
  std::map<Ipv4Addr, std::uint64_t> member_loads() const;
  Ipv4Addr least_loaded(const std::map<Ipv4Addr, std::uint64_t>& loads) const;
  // Who gets a free workset: its heir when it has one among `loads`, else the least loaded.
  Ipv4Addr new_owner(filter::WorksetId ws, const std::map<Ipv4Addr, std::uint64_t>& loads) const;
  // A member's worksets were freed (it died, left, or was the master before this one): each
  // goes to its backup, which holds the state of its sessions (cluster/backup.hpp).
  void bequeath(Ipv4Addr owner, const std::vector<filter::WorksetId>& freed,
                const std::vector<Ipv4Addr>& view);
  void assign_to(Time now, filter::WorksetId ws, Ipv4Addr target);
  void reassign_loaded(Time now, const std::vector<filter::WorksetId>& freed);
  void complete_move(Time now, filter::WorksetId ws);
  void hold(filter::WorksetId ws, wire::Bytes frame);
  void release_held(filter::WorksetId ws, Ipv4Addr owner);
  void flush_pending(Time now);
  void rebalance(Time now);
  void on_unassigned_packet(Time now, filter::WorksetId ws, wire::Bytes frame);
  void master_invariants() const;
  [[noreturn]] void die(const std::string& what) const;

  // --- state ----------------------------------------------------------------------------------
  MemberConfig config;
  std::vector<Application*> apps;
  const LoadMetric* metric;
  std::unique_ptr<Authenticator> auth;
  const SessionView* sessions = nullptr;
  // deferred_release: worksets the master asked this follower to release (-> target), waiting
  // for release_ready() / refuse_release(). Cleared on every role transition.
  std::map<std::uint16_t, Ipv4Addr> release_pending;
  // deferred_assign: worksets the master gave this follower, waiting for assign_ready(). Cleared
  // on every role transition and for a workset a keepalive names another owner of.
  std::bitset<filter::kWorksetCount> assign_pending;
  // Follower: worksets released on the master's order, until a keepalive lists another owner
  // (or none) for them or a WorkAssign gives them back: a keepalive naming us their owner was
  // sent before the order (reordered on the way) and is not followed (mirror_owners).
  std::bitset<filter::kWorksetCount> released_on_order;
  // What this member owned at the last take_output() (OwnershipEvent gained / lost).
  std::bitset<filter::kWorksetCount> owned_reported;
  void report_ownership();
  bool answer_release(Time now, filter::WorksetId ws, bool release);
  // Drain (Member::drain()).
  bool draining = false;
  bool is_draining(Ipv4Addr a) const;
  void drain_pass(Time now);     // master: starts moving every workset of draining members
  void check_drained(Time now);  // owns nothing any more: leaves
  // Master: a move of `ws` from `from` to `to` (WorkDeassign, or our own let go).
  void start_move(Time now, filter::WorksetId ws, Ipv4Addr from, Ipv4Addr to);
  // Master: our own moving workset goes, through the layer above when deferred_release.
  void release_own(Time now, filter::WorksetId ws);
  void take_workset(filter::WorksetId ws);  // ours, assigned and acknowledged
  // This member's worksets with live sessions now (empty without a SessionView).
  std::bitset<filter::kWorksetCount> busy_now() const {
    return sessions != nullptr ? sessions->busy_worksets() : std::bitset<filter::kWorksetCount>{};
  }
  std::size_t active_now(Time now) const {
    return sessions != nullptr
               ? std::min(sessions->active_worksets(now - interval()), filter::kWorksetCount)
               : 0;
  }
  std::uint32_t cluster_id;
  filter::MemberId self_id{0};
  filter::WorksetTable table;
  MemberCounters counters;
  Output out;
  std::vector<std::string> events;
  std::function<void(std::string_view)> hook;

  // Registry: local MemberId <-> address. MemberIds never cross the wire.
  std::map<Ipv4Addr, filter::MemberId> ids;
  std::vector<Ipv4Addr> addrs;  // index = MemberId value
  std::vector<bool> id_in_use;  // index = MemberId value; false: free, in free_ids
  std::vector<std::uint16_t> free_ids;

  Role role = Role::joining;
  bool started = false;
  bool left = false;  // leave() was called: the member is silent from now on
  Epoch epoch = 0;    // the term of the master this member follows or is
  Epoch max_epoch_seen = 0;
  std::optional<Ipv4Addr> master;       // followed master, or self
  std::optional<Ipv4Addr> last_master;  // the master followed before the last rejoin
  std::vector<Ipv4Addr> members;        // master first
  std::set<Ipv4Addr> app_view;          // what the applications were told (self excluded)

  // joining / offering
  Time role_deadline = kNever;
  bool verdict_pending = false;  // a master answered JoinNak: wait for it, do not offer
  std::optional<Time> master_seen;
  std::optional<Time> lower_offer_seen;

  // follower
  Time master_heard{};
  std::size_t master_unheard = 0;  // MasterKeepalive::unheard of our master's latest keepalive
  // When this member last resumed from an absence longer than its watchdog (on_resume): the
  // others have had time to declare it dead.
  Time resumed_after_silence = Time::min() / 2;
  std::optional<Time> other_master_heard;  // a MasterKeepalive not from our master
  Duration follow_interval{};
  int follow_n = kMinKeepaliveN;
  std::string last_refused_timings;  // logged once per distinct refusal
  std::uint32_t follower_seq = 0;    // per incarnation, never reset: strictly increasing
  Time next_keepalive = kNever;
  std::vector<HandshakeKey> handshake_keys;  // newest first
  Time next_handshake_key = kNever;          // when the master draws the next one

  // master
  std::map<Ipv4Addr, FollowerState> followers;
  std::map<Ipv4Addr, Time> probation;  // the old view's members, until they rejoin
  // Followers silent for longer than their watchdog, kept (not removed) while in_doubt().
  std::set<Ipv4Addr> unheard;
  Time doubt_since = kNever;
  bool in_doubt(Time now, std::size_t quiet);
  bool forget_unheard(Ipv4Addr a);  // heard again or removed; false if it was not in doubt
  bool settling = false;            // unowned worksets wait for probation's claims
  // ... or, for a master that never learned a table (settle()), until then.
  Time settle_until = kNever;
  // This member has been master, or applied a master's table, since it started; was admitted.
  bool table_known = false;
  bool admitted_once = false;
  std::uint32_t master_seq = 0;
  // Master: it gave itself a workset since the last keepalive. The followers learn it at
  // once (within kAnnounceGap): should this master die now, its successor must know who owns
  // the workset, or it gives it to a member that holds none of its sessions.
  bool table_news = false;
  Time last_master_keepalive = Time::min() / 2;
  // Follower: the JoinAck's keepalive_sequence. Keepalives of our master's term numbered
  // before it were sent before we were admitted (reordered on the way): stale. Only the JoinAck
  // sets it, not every keepalive, so that one forged keepalive numbered far ahead cannot make
  // us deaf to the real master.
  std::uint32_t keepalive_floor = 0;
  Time next_rebalance = kNever;
  // While a member drains: the next drain_pass(), for what was kept or refused meanwhile.
  Time next_drain_pass = kNever;
  static constexpr Duration kDrainRetry = std::chrono::milliseconds(250);
  std::map<Ipv4Addr, PendingWork> pending_assign;    // by target
  std::map<Ipv4Addr, PendingWork> pending_deassign;  // by current owner
  std::map<std::uint16_t, Ipv4Addr> move_target;     // moving worksets -> their next owner
  // Free worksets whose owner died or left -> the backup that holds their sessions' state
  // (DESIGN §6): assigned to it, not to the least loaded member, while it is a member; and at
  // once, not on their next packet: a peer waiting for data sends nothing.
  std::map<std::uint16_t, Ipv4Addr> heirs;
  std::deque<HeldFrame> held;
  std::size_t held_bytes = 0;

  // A master, or a follower that has applied its master's table since its admission: what this
  // member serves is what the master in force gave it (Member::table_confirmed).
  bool table_confirmed = false;
  // quorum (track_quorum)
  std::size_t view_base = 1;     // the largest view since, less graceful departures
  Time minority_since = kNever;  // when the view fell to half of view_base or less
  std::set<Ipv4Addr> departed;   // left gracefully, deducted once; cleared on return
};

}  // namespace phalanx::cluster
