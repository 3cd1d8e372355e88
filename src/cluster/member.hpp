// One cluster member's control plane: the role machine of FIG. 6, the master's events of
// FIG. 8A-8F, the follower's events of FIG. 8G-8I, and the first-packet assignment of FIG. 9.
//
// Pure (DESIGN §2): no clock, no socket. The driver (runtime/ or sim/) calls start(), then
// on_control() for every control datagram, on_unassigned_packet() for data frames the workset
// table says the master must assign, and on_timer() at or after next_deadline(); after each call
// it takes the output (messages to send, frames to forward, ARP announcements) with
// take_output(). Time is a duration since an arbitrary origin chosen by the driver.
//
// Order of calls. on_control() and on_unassigned_packet() never run timers: only on_timer() does.
// A driver that has several things ready reads every datagram that is queued before it calls
// on_timer(), so that a watchdog is judged on everything that has arrived: after a pause (VM
// steal, SIGSTOP, swap) the queue holds the keepalives of a master that is alive, or the news
// that this member was removed or superseded, and a watchdog run first would act on a view the
// queue already contradicts (issue 9 part 5). A driver that notices it was away (its clock jumped
// well past the deadline it slept for) calls on_resume() first, then delivers the queue, then
// on_timer().
//
// Protocol, in short (DESIGN §4; names of states as in the spec):
// - joining: JoinRequest (broadcast, listing the worksets this member still serves, if any).
//   JoinAck -> follower. JoinNak(in_progress) -> keep waiting (join_verdict_timeout).
//   No answer within join_timeout -> offering.
// - offering: MasterOffer (broadcast). OtherMasterExists -> joining. A MasterOffer from a lower
//   address -> back off to joining (the lower one will win anyway; this saves a tie-break).
//   Silence for master_offer_wait -> master: epoch = max epoch seen + 1, gratuitous ARP.
// - master: answers JoinRequest with JoinNak(in_progress), asks every Application, then JoinAck
//   or JoinNak(vetoed, reason). Sends MasterKeepalive every T/n. Watches each follower: silent for
//   T -> dead: removed, its worksets unassigned; those with load > 0 reassigned at once. Hears
//   another MasterKeepalive -> tie-break (the newer epoch wins; equal epochs -> more members
//   wins; equal -> lower address wins; master.cpp says why epochs come first): the winner sends
//   OtherMasterExists and re-announces ARP, the loser sends nothing and rejoins. A loser of an
//   older epoch was superseded: it keeps none of its worksets. OtherMasterExists or ExitCluster
//   from an older epoch are stale and ignored.
//   Every rebalance_period moves worksets from the most loaded K to the least loaded J while
//   K - 1 >= J + 1 (WorkDeassign to K, then WorkAssign to J, each acknowledged; resent every
//   retransmit_interval until acknowledged).
// - follower: applies MasterKeepalive (interval n, member list -> Application joined/left; the
//   announced T is checked against its own, never used), sends FollowerKeepalive every T/n with
//   a strictly increasing sequence; WorkAssign -> own + WorkAssignAck; WorkDeassign -> release +
//   WorkDeassignAck; master silent for T -> joining (keeping its worksets, which it claims in its
//   JoinRequest); the master left, or a master of a newer epoch is heard -> joining (the same);
//   removed from the master's list, or told to exit -> releases its worksets, joining.
#pragma once

#include <array>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/messages.hpp"
#include "filter/workset_table.hpp"
#include "wire/bytes.hpp"
#include "wire/time.hpp"

namespace phalanx::cluster {

// Time since the driver's origin: wire/time.hpp.
using phalanx::Duration;
using phalanx::kNever;
using phalanx::Time;

enum class Role : std::uint8_t { joining, offering, master, follower };
std::string_view to_string(Role r);

struct Timings {
  Duration failure_interval = std::chrono::milliseconds(200);  // T
  // A watchdog fires after T + slack of silence. Keepalives leave every T/n, so without the
  // slack the n-th keepalive after the last one heard would arrive just after the deadline and
  // n - 1 losses (one, for n = 2) would already declare a live member dead. With it, a member
  // is declared dead after n consecutive losses (DESIGN §4). Covers latency and timer jitter.
  Duration watchdog_slack = std::chrono::milliseconds(5);
  Duration join_timeout = std::chrono::milliseconds(30);           // no JoinAck/Nak -> offer
  Duration join_verdict_timeout = std::chrono::milliseconds(500);  // after Nak(in_progress)
  Duration master_offer_wait = std::chrono::milliseconds(100);
  Duration rebalance_period = std::chrono::seconds(2);
  Duration retransmit_interval = std::chrono::milliseconds(20);  // WorkAssign / WorkDeassign
  // 0: adaptive keepalive count n in 2..20 (DESIGN §4). Otherwise a fixed n (for comparison),
  // used within 2..20.
  int fixed_keepalive_n = 0;
  // The range the configuration allows for the failure interval (runtime's failure_interval_ms,
  // 10..60000). A MasterKeepalive announcing a T outside it, or any T other than this member's
  // own, is refused (rx_refused_timings, logged): a follower's watchdog always runs on its own T,
  // never on one taken from the wire (issue 9 part 6: an announced 1 ms fired every watchdog).
  Duration failure_interval_min = std::chrono::milliseconds(10);
  Duration failure_interval_max = std::chrono::seconds(60);
  // Quorum (DESIGN §4). A member whose view holds no more than half of the largest view it was
  // part of (graceful leaves deducted) is in a minority: cut off, or the survivor of a majority
  // that failed at once; it cannot tell which. Until it is in a majority again, or for
  // quorum_forget (then its view is the cluster), the layer above answers no segment of an
  // unknown connection with an RST: the connection may be the other side's. 0 turns it off.
  Duration quorum_forget = std::chrono::seconds(30);
};

// A member's registry (its local MemberId <-> address numbering) never holds more entries than
// this: it keeps the addresses its member list and its table reference (at most 1 + 1024 + 255,
// and a few more), and reclaims the others when it needs room. Addresses named by strangers, or
// by members long gone, cost nothing that lasts (issue 9 part 3).
inline constexpr std::size_t kMaxRegistered = 2048;

// The cluster's handshake keys (HandshakeKey): the master draws a new one this often, and
// every member keeps this many, newest first, so that a cookie lives two to three key lives.
inline constexpr Duration kHandshakeKeyLife = std::chrono::seconds(64);
inline constexpr std::size_t kHandshakeKeysKept = 3;
// A master announces a workset it gave itself in a keepalive at once, but sends no two
// keepalives closer than this (a burst of new worksets at start).
inline constexpr Duration kAnnounceGap = std::chrono::milliseconds(5);

struct MemberConfig {
  std::string cluster_name;
  Ipv4Addr address;               // this member's own address; also its identity
  std::uint64_t incarnation = 0;  // a fresh random draw per process start (the driver's)
  // 128 random bits (the driver's): as master, this member derives the handshake keys from them.
  std::array<std::uint64_t, 2> handshake_seed{};
  Timings timings;
  // The workset table this member classifies with (self and is_master are the member's to set).
  Ipv4Addr cluster_ip;
  filter::DistributionMode mode = filter::DistributionMode::multicast;
  filter::HashKind hash = filter::HashKind::xor_fold;
  std::uint64_t mix_seed = filter::kDefaultMixSeed;
  std::size_t held_frames_max = 512;  // per member, all worksets together
  std::size_t held_bytes_max = 512 * 1024;
  // A follower told to give up a workset (WorkDeassign) does not release it and acknowledge at
  // once: it reports OwnershipEvent::release_asked and waits for release_ready() (its sessions
  // were handed over) or refuse_release(); a busy workset too (the layer above decides whether
  // its sessions can move). Off: released at once unless busy (SessionView), refused if busy.
  bool deferred_release = false;
  // Master: rebalancing may move a follower's busy workset (SessionView), with its sessions, to
  // the workset's backup (backup_of()), which holds their state: the follower hands them over
  // (deferred_release). Off, and for the master's own: busy worksets stay where they are.
  bool live_moves = false;
  // A follower given a workset (WorkAssign) does not take it and acknowledge at once: it reports
  // OwnershipEvent::assign_asked and waits for assign_ready() (the layer above has what it needs
  // to serve it: a promoted backup's sessions, issue 11). Meanwhile the master holds the
  // workset's frames (FIG. 9 940). Off: taken and acknowledged in the same call.
  bool deferred_assign = false;
};

// Applications (DESIGN §8) hear about membership and may veto a join.
class Application {
 public:
  virtual ~Application() = default;
  // nullopt: approve. Otherwise the reason for the veto, sent in the JoinNak.
  virtual std::optional<std::string> approve_join(Ipv4Addr /*member*/) { return std::nullopt; }
  virtual void member_joined(Ipv4Addr /*member*/) {}
  virtual void member_left(Ipv4Addr /*member*/) {}
};

// What the data path knows of the sessions this member serves: the worksets it owns that carry
// live TCP sessions (any state but TIME-WAIT: a half-open one too). Until sessions can move
// with their workset (issue 11), moving such a workset resets them (the new owner knows nothing
// of them), so the master never moves one (followers report theirs in every FollowerKeepalive)
// and a follower told to release one refuses (WorkDeassignAck.refused; the master cancels the
// move). Worksets of a member that died or left are reassigned as before: nothing holds them.
class SessionView {
 public:
  virtual ~SessionView() = default;
  virtual std::bitset<filter::kWorksetCount> busy_worksets() const = 0;
  // How many of this member's worksets delivered a frame from a client since `since` and carry a
  // live connection: the traffic it serves now (a member cut off from the clients serves none,
  // nor one that hears the clients of worksets it took over while cut off). Two masters of
  // equal standing keep the one whose view serves more (MasterKeepalive::active).
  virtual std::size_t active_worksets(Time /*since*/) const { return 0; }
  // When frames from clients (for the cluster IP, any workset) reached this member: the latest,
  // and the first after the latest silence longer than T. nullopt: not known (no data path).
  // A master that hears half its view or less and no client either is most likely the side cut
  // off: it keeps the silent followers in doubt instead of giving their worksets away (their
  // clients' connections live on the other side), until clients have been back for T.
  struct ClientTraffic {
    Time last;
    Time resumed;
  };
  virtual std::optional<ClientTraffic> client_traffic() const { return std::nullopt; }
};

// How the master weighs a member's load when assigning and rebalancing. Default: one per workset.
class LoadMetric {
 public:
  virtual ~LoadMetric() = default;
  virtual std::uint64_t workset_weight(const filter::WorksetTable& table,
                                       filter::WorksetId ws) const;
};

struct Outgoing {
  std::optional<Ipv4Addr> to;  // nullopt: the control group (every member)
  std::vector<std::byte> bytes;
};

struct ForwardedFrame {
  Ipv4Addr owner;  // may be this member itself: deliver to the local stack
  filter::WorksetId workset;
  std::vector<std::byte> frame;
};

// A change of what this member owns, for the layer above (sessions follow ownership: issue 11).
struct OwnershipEvent {
  enum class Kind : std::uint8_t {
    gained,         // the workset is this member's now (assigned, claimed, mirrored)
    lost,           // ... no longer (released, reassigned, this member removed or superseded)
    release_asked,  // MemberConfig::deferred_release: the master asks it to go to `target`
    assign_asked,   // MemberConfig::deferred_assign: the master gives it; assign_ready() takes it
  };
  Kind kind = Kind::gained;
  filter::WorksetId workset;
  std::optional<Ipv4Addr> target;  // release_asked only
  bool operator==(const OwnershipEvent&) const = default;
};

struct Output {
  std::vector<Outgoing> messages;
  // In order. gained/lost compare what the member owns at take_output() with what it owned at
  // the previous take_output(), so a workset lost and regained in between reports nothing.
  std::vector<OwnershipEvent> ownership;
  std::vector<ForwardedFrame> frames;  // held frames released after an acknowledgement
  bool announce_arp = false;           // send gratuitous ARP for the cluster IP now
};

struct MemberCounters {
  std::uint64_t rx_messages = 0;
  std::uint64_t rx_rejected[kDecodeErrorCount] = {};
  std::uint64_t rx_wrong_cluster = 0;
  std::uint64_t rx_stale_epoch = 0;
  std::uint64_t rx_own = 0;
  std::uint64_t rx_other_master = 0;  // follower: a keepalive from a master it does not follow
  std::uint64_t rx_ignored = 0;       // valid, but meaningless in this role (e.g. stale acks)
  std::uint64_t held_frames = 0;
  std::uint64_t held_dropped = 0;  // hold queue full
  std::uint64_t followers_declared_dead = 0;
  std::uint64_t members_left = 0;  // master: ExitCluster from a member, or a restart
  std::uint64_t master_lost = 0;   // follower's master watchdog expired
  std::uint64_t successions = 0;   // ... and this member, next in line, took over at once
  std::uint64_t tie_breaks_won = 0;
  std::uint64_t tie_breaks_lost = 0;
  std::uint64_t worksets_moved = 0;
  // Timings announced in a MasterKeepalive out of range or other than ours (Timings).
  std::uint64_t rx_refused_timings = 0;
  // Master: stepped down on hearing a newer epoch (a successor took over while it was away).
  std::uint64_t superseded = 0;
  // Follower: heard a master of a newer epoch than the one it follows, and rejoined.
  std::uint64_t stale_view = 0;
  // master: a JoinRequest of a follower within join_timeout of its admission, sent before our
  // JoinAck reached it (its claims predate its acks: not reconciled)
  std::uint64_t rx_early_join_request = 0;
  std::uint64_t registry_reclaimed = 0;  // registry entries freed (no longer referenced)
  // Follower: a MasterKeepalive sent before its JoinAck (reordered on the way).
  std::uint64_t rx_stale_keepalive = 0;
  // SessionView: follower, worksets it refused to release; master, moves it cancelled on a
  // refusal, and busy worksets the rebalancing left where they are (counted once per pass).
  std::uint64_t deassign_refused = 0;
  std::uint64_t moves_cancelled = 0;
  std::uint64_t rebalance_kept_busy = 0;
  std::uint64_t live_moves = 0;  // busy worksets of followers asked to move to their backup
  // Master: a rejoining member's claim with live sessions, of a workset owned by a member with
  // none, given to the claimant.
  std::uint64_t claims_taken_live = 0;
  // Follower: MasterOffers answered with OtherMasterExists (its master was heard within T).
  std::uint64_t offers_answered = 0;
  // Quorum: times this member's view fell to half or less of the largest view it was part of,
  // and times it accepted a smaller view after quorum_forget.
  std::uint64_t minority_entered = 0;
  std::uint64_t minority_accepted = 0;
  // Master: silent followers kept in doubt instead of removed (SessionView::client_traffic).
  std::uint64_t removals_deferred = 0;
};

class Member {
 public:
  // `apps` and `metric` are borrowed and must outlive the member; metric nullptr = default.
  explicit Member(MemberConfig config, std::vector<Application*> apps = {},
                  const LoadMetric* metric = nullptr,
                  std::unique_ptr<Authenticator> auth = std::make_unique<NullAuthenticator>());
  ~Member();
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  // Borrowed; nullptr (the default) = no sessions anywhere (every workset may move).
  void set_sessions(const SessionView* sessions);

  void start(Time now);
  void on_control(Time now, wire::Bytes datagram);
  void on_timer(Time now);
  // The driver was unable to run for `away` (a pause: its clock jumped that far past what it
  // expected) and is about to deliver the datagrams that queued meanwhile, then call on_timer().
  // The absence is not held against the peers: every watchdog (a follower's on its master, a
  // master's on its followers and on the members on probation) is pushed back by `away`, capped
  // at `now`, so that a peer is judged on the silence it was responsible for. The queue then
  // tells what happened meanwhile: a keepalive resets a watchdog, a keepalive without this
  // member makes it rejoin, a newer epoch makes it step down or rejoin. Nothing is sent. A
  // zero or negative `away` does nothing.
  void on_resume(Time now, Duration away);
  // The data path classified a frame as master_must_assign: hold it (bounded), assign its
  // workset if it is unassigned, forward it once the owner acknowledges.
  void on_unassigned_packet(Time now, filter::WorksetId ws, wire::Bytes frame);
  // MemberConfig::deferred_release: the layer above is ready to let `ws` go, for which it was
  // given OwnershipEvent::release_asked: the member releases it and acknowledges the master's
  // WorkDeassign. refuse_release() keeps it instead (as for a busy workset: the master cancels
  // the move). False, and nothing sent, when no release of `ws` is pending (it was answered
  // already, or the member changed role or master since it was asked).
  bool release_ready(Time now, filter::WorksetId ws);
  bool refuse_release(Time now, filter::WorksetId ws);
  // MemberConfig::deferred_assign: the layer above is ready to serve `ws`, for which it was given
  // OwnershipEvent::assign_asked: the member takes it and acknowledges the master's WorkAssign.
  // False, and nothing sent, when no assignment of `ws` is pending (answered already; the member
  // changed role or master; or a keepalive since named another owner for it).
  bool assign_ready(Time now, filter::WorksetId ws);
  // Clean shutdown: broadcasts ExitCluster naming this member, so the master reassigns its
  // worksets at once instead of after T.
  void leave(Time now);
  // Drain (issue 11): every workset of this member moves to another member, a busy one with its
  // sessions to its backup (MemberConfig::live_moves; without, a busy workset stays until its
  // sessions end), an idle one to the least loaded; no new workset comes to it; once it owns
  // none, it leaves (ExitCluster). A follower asks by its keepalives (FollowerKeepalive::
  // draining); a master moves its own worksets and leaves last (its followers elect a
  // successor). drained() says when it has left that way. A member in no cluster leaves at once.
  void drain(Time now);
  bool draining() const;
  bool drained() const;

  Time next_deadline() const;
  Output take_output();

  Role role() const;
  std::optional<Ipv4Addr> master() const;  // self when master
  Epoch epoch() const;
  const std::vector<Ipv4Addr>& members()
      const;                                  // the master's list (from keepalives when follower)
  const filter::WorksetTable& table() const;  // the data path classifies with this
  filter::WorksetTable& table();              // ... and counts load into it
  int keepalive_n() const;                    // the n in force
  // Quorum (Timings::quorum_forget): whether this member's view holds a majority of the largest
  // view it was part of.
  bool in_majority(Time now) const;
  // Whether what this member serves is confirmed by the master in force: it is the master, or a
  // follower that has applied the master's table since it was admitted. A member that is joining
  // (rejoining after its master lost a tie-break, say) may still serve worksets the master has
  // given to others; the layer above answers no unknown connection with an RST meanwhile.
  bool table_confirmed() const;
  std::optional<double> loss_estimate(Ipv4Addr follower) const;  // master only
  const MemberCounters& counters() const;
  // The cluster's handshake keys, newest first (at most kHandshakeKeysKept): the master's own,
  // or those its keepalives announced. Empty until this member is master or hears one.
  const std::vector<HandshakeKey>& handshake_keys() const;
  const MemberConfig& config() const;
  std::size_t held_frames_now() const;  // frames held right now, all worksets together
  // MemberIds are this member's own numbering (they never cross the wire); these translate.
  std::optional<Ipv4Addr> address_of(filter::MemberId id) const;      // nullopt: unknown / none
  std::optional<Ipv4Addr> owner_address(filter::WorksetId ws) const;  // nullopt: unassigned

  // Role transitions and notable events ("joining => offering: no answer"), oldest first, the
  // last 256. The hook, when set, also sees every line as it is logged.
  const std::vector<std::string>& event_log() const;
  void set_event_hook(std::function<void(std::string_view)> hook);

  // Aborts with a message when the member's view is inconsistent (STYLE 5).
  void check_invariants() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace phalanx::cluster
