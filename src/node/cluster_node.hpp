// ClusterNode: the Node phalanxd runs for a cluster member. It puts the FIG. 9 dispatch in front
// of the member's stack (stack::FrameFilter), drives the cluster control plane
// (cluster::Member) exactly as the simulator does, and does the L2 work the distribution modes
// need (DESIGN §3).
//
// Who owns which address:
//   - member.address belongs to the member's kernel (configured on the interface): control
//     channel, ssh, the status socket's peers. Frames for it are the kernel's; we ignore them.
//   - cluster.ip belongs to no kernel; the stack here serves it with source MAC = our own MAC.
//
// Frames from the link, in order (one counter per outcome, see ClusterNodeCounters):
//   ARP                      -> learn the sender; to the stack (only the master answers for the
//                               cluster IP: Stack::set_arp_replies follows the role)
//   IPv4 to the cluster IP   -> relayed by a member (source MAC is a member's)? restore the
//                               client's MAC as source, then as below;
//                               the stack, whose filter (on_frame/on_datagram here) classifies
//                               with member.table(): add_load on every verdict with a workset;
//                               mine -> stack; not_mine -> drop; master_must_assign ->
//                               Member::on_unassigned_packet (held there); forward_to_owner ->
//                               re-sent to the owner's MAC. Fragments are reassembled by the
//                               stack first, then classified whole.
//   anything else            -> the kernel's business (counted, ignored)
//
// Forwarding to an owner (forwarding mode, and held frames released after a WorkAssignAck):
// the frame goes to the owner's MAC with OUR MAC as source (never the client's: the switch
// would learn the client's MAC on our port). The owner's MAC is learned from the source MAC of
// its control datagrams, which every member sees on the LAN — only for addresses in the current
// member list (anyone can send a datagram to the control port from any address). A datagram
// seen before its sender is listed (a joining member: the ring and the control socket are read
// in no fixed order) waits in a small ring of recent senders, looked at when the list grows.
// Tables fed from the network are bounded and count what they refuse (issue 9, part 4):
// member MACs by the member list, neighbours by NeighbourCache, frames awaiting a client's MAC
// by kMaxPendingFrames. The owner learns each client's MAC
// from the frames it sees (all of them in unicast/multicast mode) and from ARP, and puts it
// back as the source before its stack sees the frame, so that replies go straight to the client.
// When it does not know the client yet (forwarding mode), it holds the frame (bounded) and asks
// with ARP from its own address.
//
// ARP from the stack: a request whose sender is the cluster IP would make every peer that hears
// it rebind the cluster IP to this member's MAC (Linux refreshes an existing entry from any ARP
// it sees). So requests leave with the member's own address as sender, and replies to that
// address are also shown to the stack as replies to the cluster IP.
//
// Conflicting ARP (issue 9, part 7): anyone claiming the cluster IP with another MAC than the
// cluster's is answered by the master with its own gratuitous ARP at once, as CARP and VRRP do;
// at most one per kArpDefenceInterval, and a conflict inside the interval is answered when it
// ends, so the last word is always ours.
//
// Ownership on output (issue 9, part 5): a TCP segment the stack sends for a remote endpoint
// whose workset this member does not own is dropped and counted (drop.tx_not_owned, and
// drop.tx_rst_not_owned for resets): after a workset moved away (rebalance, a successor that
// took over while we were paused) the stack still holds its connections and would retransmit,
// probe and finally reset them under the new owner's feet.
//
// Sessions (issue 10): the member asks which worksets carry live connections (SessionView) so
// that rebalancing never moves one while its sessions cannot move with it.
//
// Session replication (issue 11, sync::Replicator): sync datagrams share the control channel
// (told apart by their magic); the replicator runs before every drain of the stack's output, so
// that what it holds back (output commit) is held before it leaves; a workset gained is taken
// over with the sessions its backup copy holds.
//
// Pure like the other nodes: no clock, no socket, no file. Control messages to send are handed
// to the ControlSink during drain(); log lines to the environment's LogHook.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "apps/file_source.hpp"
#include "cluster/member.hpp"
#include "node/apps.hpp"
#include "node/counters.hpp"
#include "node/log.hpp"
#include "node/neighbour_cache.hpp"
#include "node/node.hpp"
#include "node/node_config.hpp"
#include "node/result.hpp"
#include "stack/stack.hpp"
#include "sync/replicator.hpp"
#include "wire/arp.hpp"

namespace phalanx::node {

struct ClusterEnvironment {
  wire::MacAddr interface_mac;  // member.mac defaults to it
  unsigned mtu = 1500;
  std::size_t offload_max = 0;    // as in StandaloneEnvironment
  tcp::IsnSecret secret;          // drawn from getrandom()
  std::uint64_t incarnation = 0;  // drawn from getrandom() at every start
  LogHook log;                    // where the node's log lines go (none: dropped)
};

struct ClusterNodeCounters {
  std::uint64_t frames_in = 0;
  std::uint64_t kernel_frames = 0;  // not for the cluster IP: the member's kernel handles them
  std::uint64_t arp_frames = 0;
  std::uint64_t cluster_frames = 0;  // IPv4 to the cluster IP, from the LAN or relayed
  std::uint64_t relayed_in = 0;      // relayed to us by the master
  std::uint64_t mine = 0;
  std::uint64_t assign_requests = 0;  // master: handed to Member::on_unassigned_packet
  std::uint64_t forwarded = 0;        // re-sent to their owner
  std::uint64_t held_delivered = 0;   // held frames released to our own stack
  std::uint64_t arp_requests_rewritten = 0;
  std::uint64_t neighbour_requests = 0;  // ARP we sent for a client of a relayed frame
  std::uint64_t control_out = 0;
  std::uint64_t sync_out = 0;  // session replication datagrams
  // Drops, one reason each.
  std::uint64_t drop_not_mine = 0;           // another member serves the workset
  std::uint64_t drop_malformed = 0;          // the filter could not parse it
  std::uint64_t drop_unexpected = 0;         // a verdict the stack's hand-off cannot produce
  std::uint64_t drop_owner_mac_unknown = 0;  // forwarding: no control datagram from the owner yet
  std::uint64_t drop_neighbour_unknown = 0;  // relayed frame: the client's MAC never resolved
  std::uint64_t drop_neighbour_queue_full = 0;
  std::uint64_t drop_tx_not_owned = 0;      // a segment for a workset another member owns
  std::uint64_t drop_tx_rst_not_owned = 0;  // ... a reset, among them
  std::uint64_t replay_no_reset = 0;  // a held frame for no connection, not answered: may_reset()
  // Quorum (cluster::Timings::quorum_forget): in a minority, a segment for no connection left
  // unanswered; a SYN left unanswered just after the clients were heard again (may_open()).
  std::uint64_t minority_no_reset = 0;
  std::uint64_t minority_no_open = 0;
  // Back from a stall longer than T/2: for T, a segment for no connection left unanswered, a
  // SYN refused.
  std::uint64_t stall_no_reset = 0;
  std::uint64_t stall_no_open = 0;
  // Learning refused (the frame itself goes on).
  std::uint64_t member_mac_not_listed = 0;  // a control datagram from an address not listed
  std::uint64_t neighbour_slot_busy = 0;    // the client's slot holds another active client
  std::uint64_t neighbour_replaced = 0;     // an idle client's entry made room for a newcomer
  // Conflicting ARP for the cluster IP.
  std::uint64_t arp_conflicts = 0;
  std::uint64_t arp_defences = 0;           // gratuitous ARP sent in answer
  std::uint64_t arp_defences_deferred = 0;  // inside the rate limit: answered when it ends
  // The loop was away (paused, starved) longer than it asked for.
  std::uint64_t stalls = 0;
  std::uint64_t stalls_beyond_failure_interval = 0;
  std::uint64_t stall_max_ms = 0;
};

class ClusterNode final : public Node, private stack::FrameFilter, private cluster::SessionView {
 public:
  using ControlSink = std::function<void(std::optional<wire::Ipv4Addr> to, wire::Bytes bytes)>;

  static constexpr std::size_t kNeighbourSlots = 65536;
  // After gaining a workset, how long relayed or replayed frames for no connection go unanswered
  // (may_reset()): the master releases held frames within a round trip of the assignment.
  static constexpr Duration kReplayQuiet = std::chrono::seconds(1);
  // A client seen this recently keeps its neighbour slot against newcomers.
  static constexpr Time kNeighbourHold = std::chrono::seconds(1);
  static constexpr Time kArpDefenceInterval = std::chrono::milliseconds(100);
  static constexpr std::size_t kRecentSenders = 32;  // control senders not (yet) listed

  // `files`: what http serves (config.http.root, opened by the driver); may be null when http
  // is off. Fails when a port cannot be bound or http has no files. `config.cluster` must be set
  // (a caller bug otherwise: aborts).
  static Result<std::unique_ptr<ClusterNode>> create(const NodeConfig& config,
                                                     const ClusterEnvironment& env,
                                                     ControlSink control,
                                                     std::unique_ptr<apps::FileSource> files);
  ~ClusterNode() override;
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // Starts the control plane (JoinRequest).
  void start(Time now);
  // One datagram from the control channel. `now` may be when it arrived (earlier than the
  // latest time the node was given: it is then taken as that latest time).
  void on_control(Time now, wire::Bytes datagram);
  // Clean shutdown: ExitCluster, so the master reassigns our worksets at once.
  void leave(Time now);
  // Graceful shutdown (cluster::Member::drain()): every workset moves to another member, busy
  // ones with their sessions, then the member leaves. After `limit` it leaves anyway (counted,
  // logged with the sessions it still serves). drain_finished(): left, drained or not.
  void start_drain(Time now, Duration limit);
  bool drain_finished() const { return member_->drained() || drain_gave_up_; }
  // The driver noticed that it was away for `gap` beyond the deadline it asked for (the process
  // was stopped, the machine starved it) and reads what queued meanwhile next, before any timer.
  // The member's watchdogs move on by the gap (cluster::Member::on_resume), so that it judges
  // its peers on what the queue says, not on its own absence; the queue is then taken at `now`.
  // Counted and logged; a gap beyond the failure interval means the others may have acted on
  // our silence.
  void on_stall(Time now, Time gap);

  void on_frame(Time now, wire::Bytes frame, FrameMeta meta) override;
  void on_timer(Time now) override;
  Time next_deadline() const override;
  void drain(const FrameSink& sink) override;

  const cluster::Member& member() const { return *member_; }
  // Session replication (DESIGN §6); nullptr with cluster.replicas = 0.
  const sync::Replicator* replicator() const { return replicator_.get(); }
  const stack::Stack& stack() const { return *stack_; }
  const ClusterNodeCounters& counters() const { return counters_; }
  const NodeConfig& config() const { return config_; }
  wire::MacAddr mac() const { return mac_; }
  // The MACs learned for members (from their control datagrams).
  const std::map<wire::Ipv4Addr, wire::MacAddr>& member_macs() const { return member_macs_; }
  // A client's MAC as learned from its frames and ARP.
  std::optional<wire::MacAddr> neighbour(wire::Ipv4Addr ip) const { return neighbours_.find(ip); }
  std::size_t neighbour_count() const { return neighbours_.size(); }
  // Every counter, drops first, for logs and the status endpoint.
  CounterList counter_list() const;

 private:
  ClusterNode(const NodeConfig& config, const ClusterEnvironment& env, ControlSink control);

  // stack::FrameFilter: the FIG. 9 dispatch.
  stack::FilterVerdict on_frame(Time now, wire::Bytes frame) override;
  stack::FilterVerdict on_datagram(Time now, wire::Bytes datagram) override;
  bool may_reset(Time now, wire::Ipv4Addr remote, std::uint16_t port) override;
  bool may_open(Time now, wire::Ipv4Addr remote, std::uint16_t port) override;
  stack::FilterVerdict dispatch(Time now, filter::Verdict v, wire::Bytes frame);
  // cluster::SessionView: the worksets of the stack's connections, TIME-WAIT left out.
  std::bitset<filter::kWorksetCount> busy_worksets() const override;
  std::size_t active_worksets(Time since) const override;
  std::optional<ClientTraffic> client_traffic() const override;

  void handle_arp(Time now, wire::Bytes frame);
  void handle_cluster_frame(Time now, wire::Bytes frame);
  void to_stack(Time now, wire::Bytes frame);
  // Takes the member's output: control messages queued, held frames delivered or forwarded,
  // ARP announced, ARP replies switched on or off with the role.
  void take_member_output(Time now);
  void forward(wire::Ipv4Addr owner, wire::Bytes frame);
  void learn_neighbour(Time now, wire::Ipv4Addr ip, wire::MacAddr mac);
  void learn_member_mac(wire::Ipv4Addr ip, wire::MacAddr mac);
  void set_member_mac(wire::Ipv4Addr ip, wire::MacAddr mac);
  // Follows the member list: forgets members that left, learns newcomers from recent senders.
  void sync_member_list();
  bool is_member_mac(wire::MacAddr mac) const;
  void on_arp_conflict(Time now, const wire::ArpRepr& arp);
  void defend_cluster_ip(Time now);
  bool owns_remote(wire::Bytes frame);
  void ask_neighbour(Time now, wire::Ipv4Addr ip);
  void expire_pending(Time now);
  void log(LogLevel level, std::string_view line) const;
  void start_replication();
  void take_over_due(Time now);
  void answer_moves(Time now);

  struct PendingFrame {
    wire::Ipv4Addr client;
    Time expires;
    std::vector<std::byte> frame;
  };

  NodeConfig config_;
  wire::MacAddr mac_;
  std::unique_ptr<cluster::Member> member_;
  std::unique_ptr<stack::Stack> stack_;
  std::unique_ptr<Apps> apps_;
  cluster::NullAuthenticator sync_auth_;
  std::unique_ptr<sync::Replicator> replicator_;
  std::set<std::uint16_t> takeovers_due_;    // worksets gained, their sessions not adopted yet
  std::vector<filter::WorksetId> refusals_;  // WorkDeassigns to refuse (no live move possible)
  Time drain_deadline_ = kNever;             // start_drain(): leave anyway then
  bool drain_gave_up_ = false;
  ControlSink control_;
  LogHook log_;

  cluster::Role role_ = cluster::Role::joining;
  Time latest_{};           // the latest `now` given to any call
  bool relaying_ = false;   // the frame in the stack now was relayed (its load is counted)
  bool replaying_ = false;  // ... was held by this member as master: its own, now
  // When this member last gained each workset (OwnershipEvent::gained); see may_reset().
  std::vector<Time> gained_at_;
  // When each workset last delivered a frame from the LAN to our stack (active_worksets()).
  std::vector<Time> last_frame_;
  // Client traffic for the cluster IP, any workset: when last seen, and when it was seen again
  // after a silence longer than half the failure interval (may_open(), client_traffic()).
  Time lan_last_ = Time::min() / 2;
  Time lan_resumed_ = Time::min() / 2;
  Time lan_returned_ = Time::min() / 2;  // ... after a silence longer than T (active_worksets())
  Time quiet_until_ = Time::min() / 2;   // no RST for an unknown connection before (on_stall())
  bool deaf_hold(Time now, Time resumed) const;
  bool member_touched_ = false;  // the filter called the member: take its output afterwards
  std::vector<cluster::Outgoing> control_out_;
  std::deque<std::vector<std::byte>> tx_;  // frames we send ourselves (forwarded, ARP)
  std::vector<std::byte> scratch_;
  // Member MACs: only for addresses in member_->members() (listed_), with the reverse index
  // that tells relayed frames from clients' in O(1).
  std::map<wire::Ipv4Addr, wire::MacAddr> member_macs_;
  std::unordered_map<std::uint64_t, wire::Ipv4Addr> member_by_mac_;
  std::vector<wire::Ipv4Addr> listed_;
  std::unordered_set<std::uint32_t> listed_set_;
  struct RecentSender {
    wire::Ipv4Addr ip;
    wire::MacAddr mac;
  };
  std::array<RecentSender, kRecentSenders> recent_{};
  std::size_t recent_next_ = 0;
  NeighbourCache neighbours_{kNeighbourSlots, kNeighbourHold};
  // Clients with relayed frames waiting for their MAC: when we last asked, how many frames wait.
  // At most one entry per frame in pending_, so bounded by kMaxPendingFrames.
  struct Asked {
    Time last;
    std::size_t waiting = 0;
  };
  std::unordered_map<std::uint32_t, Asked> asked_;
  // ARP defence: no gratuitous ARP before defend_after_; one owed when the interval ends.
  Time defend_after_{};
  bool defence_owed_ = false;
  std::vector<cluster::HandshakeKey> cookie_keys_;  // what the stack answers SYNs with
  std::deque<PendingFrame> pending_;
  ClusterNodeCounters counters_;
};

}  // namespace phalanx::node
