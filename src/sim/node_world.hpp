// The whole-member world (issue 10): N node::ClusterNode objects — the very object phalanxd
// runs, FIG. 9, the stack, TCP, echo and http, cluster::Member — and M TcpPeer clients on one
// virtual L2 segment, driven by a logical clock and one seeded PRNG. No clock, no thread, no
// socket: a run is a pure function of (seed, scenario). Beside world.hpp (which runs
// cluster::Member alone with synthetic flows), not instead of it.
//
// Events are ordered by (time, insertion sequence). Each host (member or peer) has at most one
// armed timer event, moved whenever its next_deadline() changes.
//
// Modelled:
//   - the segment: a frame to the broadcast MAC reaches every other host; to a multicast MAC
//     (the cluster MAC: multicast distribution mode) every member that is up (peers' NICs
//     would filter it); to a unicast MAC the host that has it (a member that is down: lost).
//     Each delivery independently draws loss and latency + jitter (jitter reorders).
//   - the control channel: a datagram to the group reaches every other member that is up, one to
//     an address the member at it; each delivery draws loss and delay like a frame. The member
//     first sees it as a UDP frame on its packet ring (where it learns members' MACs), then on
//     its control socket, in the same event, as phalanxd reads both.
//   - crash (the node is destroyed: no goodbye; frames and datagrams it sent are still on the
//     wire), restart (a fresh node, a fresh incarnation from the PRNG; start() on a running
//     slot crashes it first: a flapping member) and leave (ClusterNode::leave, its ExitCluster
//     goes out, then the node is destroyed: phalanxd on SIGTERM).
//   - duplication: each delivery (frame or datagram) draws a second copy with its own delay.
//   - pause (SIGSTOP, VM steal): the member is up but runs nothing. What arrives for it queues,
//     bounded like the kernel's buffers (`paused_ring_bytes` for frames on its packet ring — a
//     control datagram's frame among them —, `paused_socket_bytes` for datagrams on its control
//     socket; beyond, dropped and counted), and its timer does not fire. On resume, as
//     phalanxd's loop does after a stall (runtime/event_loop.cpp): ClusterNode::on_stall(now,
//     length), then every queued control datagram (on_control), then every queued frame
//     (on_frame), each in arrival order, all at the resume instant; only then its timer (re-armed
//     at the resume instant, behind the resume event).
//   - partition: partition(side) cuts the member slots in `side` off from the other members
//     AND from the peers: the peers sit on the switch of the other side, so the cut-off side
//     sees no client traffic (choose the smaller side). Nothing crosses between the two sides:
//     checked when a frame or datagram is sent and again when it arrives (in flight when the
//     cut happens: lost). heal() joins them again.
//   - faults(): every crash, leave, restart, pause and cut-off, with its interval, so that the
//     checkers can tell a connection lost to its server's fault from one lost otherwise.
// Not modelled (yet): the unicast and forwarding distribution modes, IP fragments,
// segmentation offload (members run with offload off), slow members.
//
// Observers see every frame a member sends, before the segment carries it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "node/cluster_node.hpp"
#include "sim/prng.hpp"
#include "sim/tcp_peer.hpp"
#include "tcp/config.hpp"
#include "wire/addr.hpp"

namespace phalanx::sim {

using phalanx::Duration;
using phalanx::Time;

struct NodeWorldConfig {
  std::uint64_t seed = 0;
  std::size_t members = 3;
  std::size_t peers = 10;
  std::string cluster_name = "whole";
  // Member timings as in the other simulator (cluster::Timings): T = 200 ms.
  std::chrono::milliseconds failure_interval{200};
  std::chrono::milliseconds join_timeout{30};
  std::chrono::milliseconds master_offer_wait{100};
  std::chrono::milliseconds rebalance_period{2000};
  // The segment.
  Duration latency = std::chrono::microseconds(100);
  Duration jitter = std::chrono::microseconds(50);
  double loss = 0.0;       // per delivery: frames and control datagrams alike
  double duplicate = 0.0;  // per delivery: a second copy with its own delay
  // What a paused member's buffers hold (Linux: the packet ring, the socket's rmem_default).
  std::size_t paused_ring_bytes = std::size_t{4} << 20;
  std::size_t paused_socket_bytes = 212992;
  // Files the members' http serves (f0, f1, ...: sim_content.hpp).
  std::vector<std::uint64_t> file_sizes{1000, 20000, 100000, 400000};
  // A fault for the checkers' self-test: the members serve every file with this byte flipped.
  std::optional<std::uint64_t> corrupt_file_byte;
  // Every peer's ephemeral port range (ip_local_port_range), when not Linux's default: a narrow
  // one makes peers take ports again while the servers still hold them in TIME-WAIT.
  std::optional<std::pair<std::uint16_t, std::uint16_t>> peer_port_range;
  unsigned replicas = 1;   // ClusterSection::replicas (0: session replication off)
  tcp::Config member_tcp;  // tcp/config.hpp defaults
  tcp::Config peer_tcp;    // Linux-like: RTO min 200 ms, delayed ACK 40 ms (the defaults)
};

class NodeWorld;

class NodeObserver {
 public:
  virtual ~NodeObserver() = default;
  // Every frame member `slot` sends, as it leaves, before the segment carries it.
  virtual void on_member_frame(const NodeWorld& /*w*/, std::size_t /*slot*/,
                               wire::Bytes /*frame*/) {}
};

struct NodeWorldCounters {
  std::uint64_t events = 0;
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_delivered = 0;
  std::uint64_t frames_lost = 0;
  std::uint64_t frames_to_nobody = 0;  // a unicast MAC nobody (up) has
  std::uint64_t control_sent = 0;
  std::uint64_t control_delivered = 0;
  std::uint64_t control_lost = 0;
  std::uint64_t dropped_to_down = 0;  // events addressed to a crashed member
  std::uint64_t frames_duplicated = 0;
  std::uint64_t control_duplicated = 0;
  std::uint64_t frames_partitioned = 0;    // between the two sides of a partition
  std::uint64_t control_partitioned = 0;   // likewise
  std::uint64_t queued_while_paused = 0;   // frames and datagrams that waited for a paused member
  std::uint64_t dropped_while_paused = 0;  // ... and those its full buffers dropped
};

// A member fault, for the checkers (see NodeWorld::faults()).
enum class MemberFaultKind : std::uint8_t { crash, leave, pause, cut_off };
std::string_view to_string(MemberFaultKind k);

struct MemberFault {
  std::size_t slot = 0;
  MemberFaultKind kind = MemberFaultKind::crash;
  Time from{0};
  Time until{0};  // crash, leave: == from; pause: the resume; cut_off: the heal (kNever: not yet)
  // pause: the member's keepalive period when it froze (T / n). Its silence as the others see it
  // is up to the pause plus one period (its last keepalive may have left a period before).
  Duration keepalive_period{0};
  // pause: a master that is up and running did not list the member at some instant between the
  // pause and T after the resume (it was declared dead, or left out of a term elected while it
  // was frozen): the cluster acted on its silence.
  bool declared_dead = false;
  std::uint64_t incarnation = 0;
};

class NodeWorld {
 public:
  static constexpr wire::Ipv4Addr kClusterIp{198, 18, 0, 250};
  static constexpr std::uint16_t kControlPort = 8472;
  static constexpr wire::Ipv4Addr kControlGroup{239, 255, 80, 72};
  static constexpr std::size_t kMaxMembers = 64;
  static constexpr std::size_t kMaxPeers = 100;
  // 198.18.0.1 ... for members, 198.18.0.101 ... for peers; MACs 02:00:00:00:00:xx and
  // 02:00:00:00:01:xx.
  static wire::Ipv4Addr member_address(std::size_t slot);
  static wire::MacAddr member_mac(std::size_t slot);
  static wire::Ipv4Addr peer_address(std::size_t i);
  static wire::MacAddr peer_mac(std::size_t i);

  // `peer_observer` is borrowed (may be null) and sees every peer's stream bytes.
  NodeWorld(NodeWorldConfig config, PeerObserver* peer_observer);
  ~NodeWorld();
  NodeWorld(const NodeWorld&) = delete;
  NodeWorld& operator=(const NodeWorld&) = delete;

  Time now() const { return now_; }
  const NodeWorldConfig& config() const { return config_; }
  Prng& scenario_prng() { return scenario_; }

  // --- members
  std::size_t members() const { return slots_.size(); }
  bool up(std::size_t slot) const { return slots_.at(slot).node != nullptr; }
  const node::ClusterNode* node(std::size_t slot) const { return slots_.at(slot).node.get(); }
  std::optional<std::size_t> slot_of_mac(wire::MacAddr mac) const;
  // Starts (or restarts: a running node is crashed first) the member in `slot` now.
  void start(std::size_t slot);
  // Silent stop: the node is destroyed, its pending events dropped.
  void crash(std::size_t slot);
  // Clean stop: ClusterNode::leave (ExitCluster goes out), then the node is destroyed.
  void leave(std::size_t slot);
  // Graceful stop: ClusterNode::start_drain; the node is destroyed once it has left (as
  // phalanxd exits), drained or after `limit`. Not a fault: its connections must survive.
  void drain(std::size_t slot, Duration limit);
  // Freezes the member for `length` (see above); nothing if it is down or already paused.
  void pause(std::size_t slot, Duration length);
  bool paused(std::size_t slot) const { return slots_.at(slot).paused; }
  // Changes the loss probability of every delivery from now on.
  void set_loss(double p) { config_.loss = p; }
  // Cuts the member slots in `side` off from the other members and from every peer (above).
  void partition(const std::vector<std::size_t>& side);
  void heal();
  bool partitioned() const { return partitioned_; }
  bool cut_off(std::size_t slot) const { return group_.at(slot) != 0; }
  // Sessions handed over by live moves (sync::ReplicatorCounters::sessions_handed_over) of the
  // members stopped so far (crashed, left, drained, restarted).
  std::uint64_t sessions_handed_over_by_stopped() const { return handed_over_stopped_; }
  // Every crash (restarts included), leave, pause and cut-off so far, in the order they began.
  const std::vector<MemberFault>& faults() const { return faults_; }
  // The member in `slot` crashed, left, was cut off, or was paused long enough to be declared
  // dead (the pause plus its keepalive period reach the failure interval: its silence may have
  // lasted T; or a master was seen not listing it, MemberFault::declared_dead), at some instant
  // in [from, to]: its connections of that time may be lost.
  bool faulted(std::size_t slot, Time from, Time to) const;
  // The slot of the member that is master now (the first when several claim it).
  std::optional<std::size_t> master() const;

  // --- peers
  std::size_t peers() const { return peers_.size(); }
  TcpPeer& peer(std::size_t i) { return *peers_.at(i); }
  const TcpPeer& peer(std::size_t i) const { return *peers_.at(i); }
  // Runs `f` on peer `i` now (opening connections), then takes its output.
  void with_peer(std::size_t i, const std::function<void(TcpPeer&)>& f);

  // --- running
  void add_observer(NodeObserver* o) { observers_.push_back(o); }
  // Runs `f` at `at` (a scripted action: crash, open a connection...).
  void at(Time at, std::function<void()> f);
  bool step();
  // Runs every event due at or before `t`, then sets the clock to `t`.
  void run_until(Time t);
  // Runs until `done()` holds (checked after every event) or `limit`; the time it held.
  std::optional<Time> run_until(Time limit, const std::function<bool()>& done);

  // FNV-1a over every event (time, kind, host) and every frame and datagram sent: two runs of
  // one seed end with the same digest.
  std::uint64_t digest() const { return digest_; }
  const NodeWorldCounters& counters() const { return counters_; }

  // Every member's log line, for tracing a replayed run. Applies to members started after.
  using LogSink = std::function<void(Time, std::size_t slot, std::string_view line)>;
  void set_member_log(LogSink sink) { log_sink_ = std::move(sink); }

 private:
  using Shared = std::shared_ptr<const std::vector<std::byte>>;
  struct FrameArrives {
    std::size_t host;
    std::size_t from;
    Shared frame;
  };
  struct ControlArrives {
    std::size_t slot;
    std::size_t from;
    Shared frame;     // as the packet ring sees it
    Shared datagram;  // as the control socket reads it
  };
  struct TimerFires {
    std::size_t host;
  };
  struct Action {
    std::function<void()> f;
  };
  struct Resume {
    std::size_t slot;
    std::uint64_t incarnation;
    Duration length;
  };
  using Event = std::variant<FrameArrives, ControlArrives, TimerFires, Action, Resume>;
  using Key = std::pair<Time, std::uint64_t>;

  struct Slot {
    std::unique_ptr<node::ClusterNode> node;
    std::uint64_t incarnation = 0;
    bool paused = false;
    // While paused: the packet ring (frames, in arrival order) and the control socket.
    std::vector<Shared> ring;
    std::vector<Shared> socket;
    std::size_t ring_bytes = 0;
    std::size_t socket_bytes = 0;
  };

  Key schedule(Time at, Event e);
  void dispatch(Event& e);
  // Hosts: members 0..members()-1, then peers.
  bool is_member(std::size_t host) const { return host < slots_.size(); }
  // Takes host's output (frames, control datagrams) and re-arms its timer.
  void after_call(std::size_t host);
  void send_frame(std::size_t from, wire::Bytes frame);
  void deliver(std::size_t from, std::size_t to, Shared frame);
  bool reachable(std::size_t a, std::size_t b) const { return group_[a] == group_[b]; }
  void resume(const Resume& r);
  void clear_pause(Slot& s);
  // After every event: marks the pauses whose member a running master does not list.
  void watch_pauses();
  // Queues on a paused member's ring / socket; false when the buffer is full (dropped).
  bool enqueue(std::vector<Shared>& q, std::size_t& used, std::size_t limit, Shared bytes);
  void send_control(std::size_t from, std::optional<wire::Ipv4Addr> to, wire::Bytes datagram);
  void rearm(std::size_t host);
  Duration delay();
  void mix(std::uint64_t v) { digest_ = (digest_ ^ v) * 0x100000001b3ull; }
  void mix_bytes(wire::Bytes b);

  NodeWorldConfig config_;
  Prng root_;
  Prng net_;
  Prng nodes_;
  Prng scenario_;
  Time now_{0};
  std::uint64_t seq_ = 0;
  std::map<Key, Event> queue_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<TcpPeer>> peers_;
  std::vector<std::optional<Key>> timers_;  // per host: the armed timer event
  std::vector<std::uint8_t> group_;         // per host: 1 on the cut-off side, else 0
  bool partitioned_ = false;
  std::uint64_t handed_over_stopped_ = 0;
  std::vector<MemberFault> faults_;
  std::unordered_map<std::uint64_t, std::size_t> host_by_mac_;
  std::vector<NodeObserver*> observers_;
  NodeWorldCounters counters_;
  std::uint64_t digest_ = 0xcbf29ce484222325ull;
  LogSink log_sink_;
  std::vector<std::vector<std::byte>> out_;  // frames taken from the host being drained
};

}  // namespace phalanx::sim
