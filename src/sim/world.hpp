// The simulated world (DESIGN §2 "sim/", STYLE "TigerBeetle's VOPR / FoundationDB"): a logical
// clock, one queue of events, the cluster members, one virtual L2 segment and the clients that
// send traffic to the cluster IP. Everything random is drawn from one seed, so a run is a pure
// function of (seed, scenario): no clock, no thread, no socket.
//
// Events are ordered by (time, insertion sequence), so two events due at the same instant run in
// the order they were scheduled, on every machine.
//
// The segment carries two kinds of traffic:
//   - control datagrams: broadcast (to every other member that is up) or unicast to `to`;
//   - data frames: client frames flooded to every member that is up (multicast distribution
//     mode: every member sees every frame and classifies it with its own table), and frames a
//     master forwards to a workset's owner after an acknowledgement.
// Each delivery independently draws loss, duplication and latency + jitter (jitter reorders).
// A partition splits the members into groups; nothing crosses between groups (checked when the
// datagram is sent and when it arrives). Clients are never cut off.
//
// A member is a cluster::Member plus up/down state. crash() is a silent stop: the object is
// destroyed and every event addressed to it is dropped (datagrams it already sent are on the wire
// and still arrive). restart() builds a new Member with a fresh incarnation from the PRNG.
//
// pause() freezes a member (SIGSTOP, VM steal, swap): it is up but runs nothing; what arrives for
// it (control datagrams, data frames) waits in its queue, in arrival order, and its timers do not
// fire. On resume, as the fixed runtime does, it is told how long it was away
// (Member::on_resume), then handed everything that queued, at the resume instant: the control
// datagrams first, then the data frames (phalanxd reads its control socket before its packet
// ring), each in arrival order; only then do its timers run (the timer event is re-armed at the
// resume instant, after the queue).
//
// Sessions (issue 10): a TCP flow stands for a connection. The first member that serves one of
// its frames holds its session; each member has a cluster::SessionView naming the worksets of
// the live sessions it holds, as a real member's stack would. When another member serves a
// frame of that flow later, the session moved: counted as lost to a fault when its member is
// down, restarted, paused, cut off, no longer listed by the new server's master, left its role
// (follower or master) since it last served it, follows another master or term than the new
// server (a split brain being resolved), or while the network is not healthy (loss, a
// partition, a paused member), or when any crash, pause or network change happened
// within the convergence bound plus a rebalance period (its consequences may still be
// resolving: a resumed master that wins a tie-break with its old table); otherwise broken (a
// workset with a live session was moved from a member in good standing: the checkers flag it).
//
// Observers (the checkers) see every datagram as it is sent and are called after every event.
#pragma once

#include <array>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "cluster/member.hpp"
#include "filter/workset.hpp"
#include "filter/workset_table.hpp"
#include "sim/prng.hpp"
#include "wire/addr.hpp"

namespace phalanx::sim {

using cluster::Duration;
using cluster::Time;
using wire::Ipv4Addr;

inline constexpr Ipv4Addr kClusterIp{198, 18, 0, 100};
inline constexpr std::size_t kMaxSlots = 64;

// The address of member slot `i`: 198.18.0.1, 198.18.0.2, ...
constexpr Ipv4Addr member_address(std::size_t slot) {
  return Ipv4Addr{198, 18, 0, static_cast<std::uint8_t>(1 + slot)};
}

struct NetworkConfig {
  Duration latency = std::chrono::milliseconds(1);
  Duration jitter{0};      // each delivery adds a uniform draw in [0, jitter]; reorders
  double loss = 0.0;       // per delivery, control and data alike
  double duplicate = 0.0;  // per delivery: a second copy with its own delay
  bool lose_data = true;   // loss applies to data frames too (not only control)
  // The most a slow member may lag (World::set_processing_lag): the checkers' bounds count it
  // like latency.
  Duration processing_lag{0};
};

struct ClientConfig {
  bool enabled = true;
  Duration spawn_interval = std::chrono::milliseconds(10);  // how often a new flow may open
  double spawn_chance = 0.25;                               // ... and with what probability
  std::size_t max_flows = 12;                               // concurrent flows
  Duration flow_min = std::chrono::milliseconds(300);
  Duration flow_max = std::chrono::seconds(3);
  Duration period_min = std::chrono::milliseconds(2);  // between two frames of one flow
  Duration period_max = std::chrono::milliseconds(8);
};

struct WorldConfig {
  std::uint64_t seed = 0;
  std::size_t slots = 3;  // member slots; each starts down until start()
  std::string cluster_name = "sim";
  cluster::Timings timings;
  NetworkConfig network;
  ClientConfig clients;
  bool session_views = true;  // members get a SessionView of their sessions (see World)
};

class World;

// What happened in one step, for observers.
struct StepInfo {
  // Slots whose member was called (control, timer, start, an unassigned packet): their state
  // may have changed. A frame that a member only classified (mine / not_mine) changes nothing
  // but its table's counters and loads, so it does not list the member here.
  std::vector<std::size_t> touched;
  bool control = false;  // some member was called
};

class Observer {
 public:
  virtual ~Observer() = default;
  // Every control datagram a member sends, before loss: `incarnation` is the sender's.
  virtual void on_datagram(const World& /*w*/, std::size_t /*from*/, std::uint64_t /*incarnation*/,
                           wire::Bytes /*bytes*/) {}
  // After every event (and after every scripted action: crash, restart, partition...).
  virtual void after_step(const World& /*w*/, const StepInfo& /*step*/) {}
};

struct ArpAnnouncement {
  Time at;
  std::size_t slot;
};

// One pause of one member, for observers.
struct PauseRecord {
  std::size_t slot = 0;
  std::uint64_t incarnation = 0;
  Time from{0};
  Time until{0};  // the resume instant (set when the pause begins)
};

struct WorldCounters {
  std::uint64_t events = 0;
  std::uint64_t control_sent = 0;
  std::uint64_t control_delivered = 0;
  std::uint64_t control_lost = 0;
  std::uint64_t control_partitioned = 0;
  std::uint64_t control_duplicated = 0;
  std::uint64_t control_no_such_member = 0;
  std::uint64_t client_frames = 0;
  std::uint64_t data_delivered = 0;
  std::uint64_t data_lost = 0;
  std::uint64_t served = 0;               // frames served by some member (locally or forwarded)
  std::uint64_t served_forwarded = 0;     // of which released by the master after an ack
  std::uint64_t forwarded_not_owner = 0;  // forwarded to a member whose table disagrees
  std::uint64_t double_served = 0;        // one client frame served by two members
  std::uint64_t dropped_to_down = 0;      // events addressed to a crashed member
  std::uint64_t queued_while_paused = 0;  // deliveries that waited for a paused member
  // Sessions (TCP flows; see World): opened, served later by another member because their
  // member failed (crashed, restarted, paused, cut off, removed from the member list, left its
  // role), and served by another member while theirs was alive and in good standing: a move
  // that would have reset a live connection (a violation).
  std::uint64_t sessions_opened = 0;
  std::uint64_t sessions_lost_to_faults = 0;
  std::uint64_t sessions_broken = 0;
};

class World {
 public:
  explicit World(WorldConfig config);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  // --- time and randomness
  Time now() const { return now_; }
  const WorldConfig& config() const { return config_; }
  Prng& faults_prng() { return faults_; }  // for scenarios' own choices

  // --- members
  std::size_t slots() const { return slots_.size(); }
  bool up(std::size_t slot) const { return slots_.at(slot).member != nullptr; }
  const cluster::Member* member(std::size_t slot) const { return slots_.at(slot).member.get(); }
  Ipv4Addr address(std::size_t slot) const { return slots_.at(slot).address; }
  std::uint64_t incarnation(std::size_t slot) const { return slots_.at(slot).incarnation; }
  Time up_since(std::size_t slot) const { return slots_.at(slot).changed_at; }
  std::optional<std::size_t> slot_of(Ipv4Addr a) const;
  std::size_t up_count() const;

  // Starts (or restarts) the member in `slot` now, with a fresh incarnation. A member that is up
  // is crashed first.
  void start(std::size_t slot);
  // Schedules start(slot) at `at`.
  void start_at(std::size_t slot, Time at);
  // Silent stop: no ExitCluster, no goodbye; its pending events are dropped.
  void crash(std::size_t slot);
  // Clean shutdown: Member::leave(), its output sent, then the member stops.
  void leave(std::size_t slot);
  // A slow member: every control datagram it receives and every timer it asked for is handled
  // up to `max` late (a uniform draw per datagram and per deadline): a loaded machine, a noisy
  // neighbour. Datagrams in the order they arrived; and, as phalanxd's loop reads its sockets
  // before it runs its timer, a timer runs after every datagram that arrived before it fires
  // (drawn independently, a watchdog used to fire before a keepalive that was already there:
  // 67 of 2,000 slow_members seeds failed on false failovers). Zero: on time (the default).
  // At most network().processing_lag.
  void set_processing_lag(std::size_t slot, Duration max);
  // Freezes the member in `slot` for `length` (see above); nothing if it is down or paused.
  void pause(std::size_t slot, Duration length);
  bool paused(std::size_t slot) const { return slots_.at(slot).paused; }
  // True when `slot` is paused now or resumed less than `d` ago.
  bool paused_within(std::size_t slot, Duration d) const;
  const std::vector<PauseRecord>& pauses() const { return pauses_; }

  // --- network
  const NetworkConfig& network() const { return config_.network; }
  void set_network(const NetworkConfig& n);
  // Cuts `side` off from the other members (they can still talk among themselves).
  void partition(const std::vector<std::size_t>& side);
  void heal();
  bool partitioned() const { return partitioned_; }
  bool reachable(std::size_t a, std::size_t b) const { return slots_[a].group == slots_[b].group; }
  // The last time the network or the membership was disturbed: a crash, a start, a partition or
  // its healing, or a change of the loss rate. Liveness checks count from here.
  Time last_disturbance() const { return last_disturbance_; }
  // True when nothing is faulty right now: no partition, no loss, no member paused.
  bool healthy() const {
    return !partitioned_ && config_.network.loss == 0.0 && paused_count_ == 0;
  }
  // The last time a partition began or healed or the loss rate changed.
  Time last_network_change() const { return last_network_change_; }

  // --- clients
  void set_clients(const ClientConfig& c);
  // Opens one flow now from a fresh client address/port, for `length`, one frame per `period`.
  void open_flow(Duration length, Duration period);
  std::size_t active_flows() const { return active_flows_; }
  // Last time a client frame of workset `ws` was sent; Time::min() when never.
  Time last_traffic(filter::WorksetId ws) const { return last_traffic_[ws.value()]; }
  // Start of the current burst of traffic of `ws` (frames less than kTrafficGap apart).
  Time traffic_since(filter::WorksetId ws) const { return traffic_since_[ws.value()]; }
  static constexpr Duration kTrafficGap = std::chrono::milliseconds(100);
  // Last time member `slot` served a frame of `ws`; Time::min() when never.
  Time last_served(std::size_t slot, filter::WorksetId ws) const {
    return slots_.at(slot).last_served[ws.value()];
  }
  std::uint64_t served_by(std::size_t slot) const { return slots_.at(slot).served; }

  // What the last broken session was (see WorldCounters::sessions_broken).
  const std::string& last_session_break() const { return last_session_break_; }

  const std::vector<ArpAnnouncement>& arp_announcements() const { return arp_; }
  const WorldCounters& counters() const { return counters_; }

  // Every member's event log line ("joining => offering: ..."), as it is logged, for tracing a
  // replayed run. Applies to members started after the call.
  using LogSink = std::function<void(Time, std::size_t slot, std::string_view line)>;
  void set_member_log(LogSink sink) { log_sink_ = std::move(sink); }

  // --- observers (borrowed; must outlive the world or be removed)
  void add_observer(Observer* o) { observers_.push_back(o); }

  // --- running
  // Runs one event. False when the queue is empty.
  bool step();
  // Runs every event due at or before `t`, then sets the clock to `t`.
  void run_until(Time t);
  // Runs until `done()` holds (checked after every event) or until `limit`. Returns the time at
  // which it held, or nullopt.
  std::optional<Time> run_until(Time limit, const std::function<bool()>& done);

  // A running FNV-1a digest of every event (time, kind), every datagram's bytes, every crash,
  // start and ARP announcement: two runs of one seed must end with the same digest.
  std::uint64_t trace_digest() const { return digest_; }

 private:
  struct StartMember {
    std::size_t slot;
  };
  struct DeliverControl {
    std::size_t to;
    std::size_t from;
    std::shared_ptr<const std::vector<std::byte>> bytes;
    Time arrived{};  // on the member's socket; a slow member handles it later (its lag)
  };
  struct DeliverData {
    std::vector<std::size_t> to;
    std::optional<std::size_t> from;  // a forwarding member; nullopt for a client
    std::shared_ptr<const std::vector<std::byte>> frame;
    std::uint64_t frame_id;
  };
  struct ResumeMember {
    std::size_t slot;
    std::uint64_t incarnation;
    Duration away;
  };
  struct Slot {
    Ipv4Addr address;
    std::unique_ptr<cluster::Member> member;
    std::uint64_t incarnation = 0;
    Time changed_at{0};
    std::optional<std::pair<Time, std::uint64_t>> timer;  // the one armed timer event
    int group = 0;
    std::array<Time, filter::kWorksetCount> last_served;
    std::uint64_t served = 0;
    bool paused = false;
    Time resumed_at = Time::min();
    // Bumped whenever the member leaves the follower or master role, pauses, crashes or starts.
    std::uint64_t tenure = 0;
    Duration lag_max{0};
    Time lagged_until{0};  // a slow member handles its datagrams in order
    std::pair<Time, Duration> timer_lag{kNever, Duration{0}};  // (deadline, its lag)
    cluster::Role role = cluster::Role::joining;
    std::unique_ptr<cluster::SessionView> sessions;
    std::vector<std::variant<DeliverControl, DeliverData>> queued;  // while paused
  };
  struct FireTimer {
    std::size_t slot;
  };
  struct FlowTick {
    std::size_t flow;
  };
  struct SpawnFlows {};
  using Event = std::variant<StartMember, DeliverControl, DeliverData, FireTimer, FlowTick,
                             SpawnFlows, ResumeMember>;
  using Key = std::pair<Time, std::uint64_t>;

  struct Flow {
    Ipv4Addr src;
    std::uint16_t sport;
    std::uint8_t proto;
    Time ends;
    Duration period;
    std::shared_ptr<const std::vector<std::byte>> frame;
    filter::WorksetId ws;
    // TCP: the member holding its session, as of the last frame served.
    std::optional<std::size_t> server;
    std::uint64_t server_incarnation = 0;
    std::uint64_t server_tenure = 0;
    bool moved = false;  // counted once
  };
  class SlotSessions;

  Key schedule(Time at, Event e);
  void dispatch(Event& e, StepInfo& info);
  void deliver_control(const DeliverControl& c, StepInfo& info);
  void notify(const StepInfo& info);
  void mix(std::uint64_t v) { digest_ = (digest_ ^ v) * 0x100000001b3ull; }

  // Calls `f` on the member in `slot`, then takes its output and re-arms its timer.
  template <class F>
  void drive(std::size_t slot, StepInfo& info, F&& f);
  void handle_output(std::size_t slot, cluster::Output out);
  void rearm(std::size_t slot);
  void send_control(std::size_t from, const cluster::Outgoing& m);
  void deliver_client_frame(const Flow& f);
  void receive_data(std::size_t slot, const DeliverData& d, StepInfo& info);
  void serve(std::size_t slot, filter::WorksetId ws, std::uint64_t frame_id, wire::Bytes frame);
  void follow_session(std::size_t slot, wire::Bytes frame);
  std::bitset<filter::kWorksetCount> busy_worksets(std::size_t slot) const;
  Duration delay();
  void disturbed() { last_disturbance_ = now_; }
  void network_changed() {
    last_network_change_ = now_;
    last_fault_ = now_;
    disturbed();
  }
  bool within_fault_window() const;
  void resume(const ResumeMember& r, StepInfo& info);
  void clear_pause(Slot& s);
  std::unique_ptr<cluster::Member> make_member(std::size_t slot);

  WorldConfig config_;
  Prng root_;
  Prng net_;
  Prng clients_;
  Prng faults_;
  Prng incarnations_;
  Prng lag_;  // slow members' processing lag (drawn only for them)
  Time now_{0};
  std::uint64_t seq_ = 0;
  std::map<Key, Event> queue_;
  std::vector<Slot> slots_;
  bool partitioned_ = false;
  Time last_disturbance_{0};
  Time last_network_change_{0};
  Time last_fault_ = Time::min();  // crash, pause, resume, partition, heal, loss change
  std::size_t paused_count_ = 0;
  std::vector<PauseRecord> pauses_;
  std::vector<Flow> flows_;
  std::size_t active_flows_ = 0;
  std::set<std::size_t> live_tcp_flows_;                           // indexes into flows_
  std::unordered_map<std::uint64_t, std::size_t> flow_by_client_;  // (address, port) -> flow
  std::string last_session_break_;
  std::uint64_t next_frame_id_ = 0;
  std::array<Time, filter::kWorksetCount> last_traffic_;
  std::array<Time, filter::kWorksetCount> traffic_since_;
  // Which member served each recent frame, to count double service (bounded ring).
  std::map<std::uint64_t, std::size_t> served_frames_;
  std::vector<ArpAnnouncement> arp_;
  std::vector<Observer*> observers_;
  WorldCounters counters_;
  std::uint64_t digest_ = 0xcbf29ce484222325ull;
  filter::WorksetTable oracle_;  // computes the workset of client frames
  bool spawning_ = false;
  LogSink log_sink_;
};

// Builds an Ethernet + IPv4 + TCP or UDP header frame from a client to the cluster IP.
std::vector<std::byte> client_frame(Ipv4Addr src, std::uint16_t sport, std::uint16_t dport,
                                    std::uint8_t proto);

}  // namespace phalanx::sim
