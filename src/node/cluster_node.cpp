#include "node/cluster_node.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "cluster/backup.hpp"
#include "node/checksum_fixup.hpp"
#include "node/standalone.hpp"
#include "tcp/isn.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::node {

namespace {

using std::chrono::milliseconds;
using wire::EthernetView;

constexpr std::size_t kMaxPendingFrames = 256;  // relayed frames awaiting a client's MAC
constexpr Time kNeighbourWait = milliseconds(1000);
constexpr Time kNeighbourRetry = milliseconds(200);

stack::StackConfig cluster_stack_config(const NodeConfig& config, const ClusterEnvironment& env) {
  NodeConfig served = config;
  served.member.address = config.cluster->ip;
  StandaloneEnvironment senv;
  senv.interface_mac = env.interface_mac;
  senv.mtu = env.mtu;
  senv.offload_max = env.offload_max;
  senv.secret = env.secret;
  stack::StackConfig s = stack_config(served, senv);
  // Unicast/multicast: ARP binds the cluster IP to the shared cluster MAC. Forwarding: to the
  // master's own MAC (served_mac unset = our MAC).
  if (config.cluster->mode != filter::DistributionMode::forwarding) {
    s.served_mac = config.cluster->mac;
  }
  s.answer_arp = false;  // until this member is master
  // Replication: a new session acknowledges and sends nothing before its backup holds it.
  s.limits.hold_until_replicated = config.cluster->replicas > 0;
  // Replies go to the MAC a frame came from: the client's (relayed frames get it back first).
  s.reply_to_frame_source = true;
  return s;
}

cluster::MemberConfig member_config(const NodeConfig& config, const ClusterEnvironment& env) {
  const ClusterSection& c = *config.cluster;
  cluster::MemberConfig m;
  m.cluster_name = c.name;
  m.address = config.member.address;
  m.incarnation = env.incarnation;
  // The handshake keys' seed, another function of the driver's random secret than the ISNs.
  for (std::uint8_t half = 0; half < 2; ++half) {
    const std::array<std::uint8_t, 10> in{'h', 'a', 'n', 'd', 's', 'h', 'a', 'k', 'e', half};
    m.handshake_seed[half] = tcp::siphash24(env.secret, in);
  }
  m.timings.failure_interval = c.failure_interval;
  m.timings.join_timeout = c.join_timeout;
  m.timings.master_offer_wait = c.master_offer_wait;
  m.timings.rebalance_period = c.rebalance_period;
  m.cluster_ip = c.ip;
  m.mode = c.mode;
  m.hash = c.hash;
  // Session replication: a busy workset moves with its sessions to its backup (live moves), and
  // every WorkDeassign waits for the replicator (ClusterNode::answer_moves()).
  m.deferred_release = c.replicas > 0;
  m.live_moves = c.replicas > 0;
  return m;
}

bool has_workset(filter::VerdictKind k) {
  return k == filter::VerdictKind::mine || k == filter::VerdictKind::not_mine ||
         k == filter::VerdictKind::master_must_assign || k == filter::VerdictKind::forward_to_owner;
}

}  // namespace

ClusterNode::ClusterNode(const NodeConfig& config, const ClusterEnvironment& env,
                         ControlSink control)
    : config_(config),
      mac_(config.member.mac.value_or(env.interface_mac)),
      member_(std::make_unique<cluster::Member>(member_config(config, env))),
      stack_(std::make_unique<stack::Stack>(cluster_stack_config(config, env))),
      control_(std::move(control)),
      log_(env.log),
      gained_at_(filter::kWorksetCount, Time::min() / 2),
      last_frame_(filter::kWorksetCount, Time::min() / 2) {
  stack_->set_filter(this);
  member_->set_sessions(this);
  member_->set_event_hook(
      [this](std::string_view line) { log(LogLevel::info, fmt::format("cluster: {}", line)); });
}

ClusterNode::~ClusterNode() {
  stack_->set_filter(nullptr);
}

Result<std::unique_ptr<ClusterNode>> ClusterNode::create(const NodeConfig& config,
                                                         const ClusterEnvironment& env,
                                                         ControlSink control,
                                                         std::unique_ptr<apps::FileSource> files) {
  if (!config.cluster) {
    std::fprintf(stderr, "ClusterNode::create without [cluster]\n");
    std::abort();
  }
  std::unique_ptr<ClusterNode> n(new ClusterNode(config, env, std::move(control)));
  auto apps = Apps::create(*n->stack_, config, std::move(files));
  if (!apps) {
    return apps.error();
  }
  n->apps_ = std::move(*apps);
  if (config.cluster->replicas > 0) {
    n->start_replication();
  }
  return n;
}

void ClusterNode::start_replication() {
  sync::ReplicatorConfig rc;
  rc.cluster_id = cluster::cluster_id_of(config_.cluster->name);
  rc.self = config_.member.address;
  sync::ClusterView view;
  view.owns = [this](filter::WorksetId ws) {
    const filter::WorksetTable& t = member_->table();
    return t.state(ws) != filter::WorksetState::unassigned && t.owner(ws) == t.config().self;
  };
  view.owner = [this](filter::WorksetId ws) { return member_->owner_address(ws); };
  view.backup = [this](filter::WorksetId ws) {
    return cluster::backup_of(ws, config_.member.address, member_->members());
  };
  view.epoch = [this] { return member_->epoch(); };
  view.workset_of = [this](wire::Ipv4Addr remote, std::uint16_t port) {
    return member_->table().workset_for(filter::FlowKey{remote.value(), port, 0});
  };
  replicator_ = std::make_unique<sync::Replicator>(*stack_, rc, std::move(view), sync_auth_);
}

// A workset gained is taken over with the sessions our copy holds, but only by a member whose
// view holds a majority: a member cut off takes every workset it lost, while their owners, on
// the other side, still serve them; adopting its copies would answer those connections from
// stale state once the cut heals. It waits (the copies stay in the store) until it is in a
// majority with the workset still its own, or the workset goes to another member.
void ClusterNode::take_over_due(Time now) {
  if (takeovers_due_.empty() || !member_->in_majority(now)) {
    return;
  }
  const filter::WorksetTable& t = member_->table();
  for (std::uint16_t ws : std::exchange(takeovers_due_, {})) {
    const filter::WorksetId id{ws};
    if (t.state(id) != filter::WorksetState::unassigned && t.owner(id) == t.config().self) {
      replicator_->take_over(now, id);
    }
  }
}

// Live moves: the member's answers to the master's WorkDeassigns, once the replicator has settled
// them. A workset let go has its sessions handed over (forgotten here without a segment): the
// target, their backup, adopts them when the master gives it the workset.
void ClusterNode::answer_moves(Time now) {
  bool answered = false;
  for (filter::WorksetId ws : std::exchange(refusals_, {})) {
    answered = member_->refuse_release(now, ws) || answered;
  }
  for (const sync::MoveResult& r : replicator_->take_moves()) {
    if (!r.ready) {
      answered = member_->refuse_release(now, r.workset) || answered;
      continue;
    }
    if (member_->release_ready(now, r.workset)) {
      replicator_->hand_over(r.workset);
      answered = true;
    }
  }
  if (answered) {
    take_member_output(now);
  }
}

void ClusterNode::log(LogLevel level, std::string_view line) const {
  if (log_) {
    log_(level, line);
  }
}

// --- control plane ----------------------------------------------------------------------------

void ClusterNode::start(Time now) {
  stack_->on_timer(now);
  member_->start(now);
  take_member_output(now);
}

void ClusterNode::on_control(Time now, wire::Bytes datagram) {
  // The driver may pass a datagram's arrival time (replaying a queue after a pause); time never
  // goes backwards for the member or the stack.
  now = std::max(now, latest_);
  latest_ = now;
  stack_->on_timer(now);  // the stack's notion of now, for what the output may inject
  if (sync::Replicator::is_sync(datagram)) {
    if (replicator_) {
      replicator_->on_datagram(now, datagram);
    }
    return;
  }
  member_->on_control(now, datagram);
  take_member_output(now);
}

void ClusterNode::leave(Time now) {
  member_->leave(now);
  take_member_output(now);
}

void ClusterNode::start_drain(Time now, Duration limit) {
  if (member_->draining()) {
    return;
  }
  drain_deadline_ = now + limit;
  member_->drain(now);
  take_member_output(now);
}

void ClusterNode::take_member_output(Time now) {
  member_touched_ = false;
  cluster::Output out = member_->take_output();
  for (auto& m : out.messages) {
    control_out_.push_back(std::move(m));
  }
  for (const cluster::OwnershipEvent& e : out.ownership) {
    if (e.kind == cluster::OwnershipEvent::Kind::gained) {
      gained_at_[e.workset.value()] = now;
      if (replicator_) {
        takeovers_due_.insert(e.workset.value());
      }
    } else if (e.kind == cluster::OwnershipEvent::Kind::release_asked) {
      if (!replicator_ || !e.target || !replicator_->begin_move(now, e.workset, *e.target)) {
        refusals_.push_back(e.workset);
      }
    }
  }
  // Handshakes any member completes (DESIGN §6): the stack answers SYNs with the cluster's
  // cookies once it has a key. Only with replication: without, the handshake would survive its
  // member, but not the connection.
  if (replicator_ && member_->handshake_keys() != cookie_keys_) {
    cookie_keys_ = member_->handshake_keys();
    std::vector<stack::CookieKey> keys;
    for (const cluster::HandshakeKey& k : cookie_keys_) {
      keys.push_back(stack::CookieKey{tcp::IsnSecret{k.secret}, k.generation});
    }
    stack_->set_cookie_keys(std::move(keys));
  }
  const cluster::Role role = member_->role();
  if (role != role_) {
    stack_->set_arp_replies(role == cluster::Role::master);
    role_ = role;
    defence_owed_ = false;
  }
  // Sessions adopted before the held frames reach the stack: they may be for those sessions.
  take_over_due(now);
  for (auto& f : out.frames) {
    if (f.owner == config_.member.address) {
      // Held until our own WorkAssignAck: ours now, past the filter.
      ++counters_.held_delivered;
      replaying_ = true;
      stack_->inject(now, f.frame);
      replaying_ = false;
    } else {
      forward(f.owner, f.frame);
    }
  }
  sync_member_list();
  if (out.announce_arp) {
    stack_->announce();
  }
}

// --- data plane -------------------------------------------------------------------------------

void ClusterNode::on_frame(Time now, wire::Bytes frame, FrameMeta meta) {
  latest_ = std::max(latest_, now);
  ++counters_.frames_in;
  if (frame.size() < EthernetView::kHeaderSize) {
    ++counters_.kernel_frames;
    return;
  }
  const std::uint16_t type = wire::read_u16(frame, EthernetView::kType);
  if (type == wire::ethertype::kArp) {
    ++counters_.arp_frames;
    handle_arp(now, frame);
    return;
  }
  constexpr std::size_t kIp = EthernetView::kHeaderSize;
  if (type != wire::ethertype::kIpv4 || frame.size() < kIp + wire::Ipv4View::kMinHeaderSize) {
    ++counters_.kernel_frames;
    return;
  }
  const wire::Ipv4Addr dst = wire::Ipv4Addr::read(frame, kIp + wire::Ipv4View::kDst);
  if (dst != config_.cluster->ip) {
    // The kernel's (member address, control channel). Learn members' MACs from their control
    // datagrams: UDP to the control port.
    const std::size_t ihl = (wire::read_u8(frame, kIp) & 0x0f) * 4u;
    if (wire::read_u8(frame, kIp + wire::Ipv4View::kProtocol) == wire::ipproto::kUdp &&
        frame.size() >= kIp + ihl + 4 &&
        wire::read_u16(frame, kIp + ihl + 2) == config_.cluster->control_port) {
      const wire::Ipv4Addr src = wire::Ipv4Addr::read(frame, kIp + wire::Ipv4View::kSrc);
      if (src != config_.member.address) {
        learn_member_mac(src, wire::MacAddr::read(frame, EthernetView::kSrc));
      }
    }
    ++counters_.kernel_frames;
    return;
  }
  ++counters_.cluster_frames;
  if (meta.checksum_not_ready) {
    scratch_.assign(frame.begin(), frame.end());
    complete_l4_checksum(scratch_);
    handle_cluster_frame(now, scratch_);
    return;
  }
  handle_cluster_frame(now, frame);
}

void ClusterNode::handle_cluster_frame(Time now, wire::Bytes frame) {
  constexpr std::size_t kIp = EthernetView::kHeaderSize;
  const wire::MacAddr src_mac = wire::MacAddr::read(frame, EthernetView::kSrc);
  const wire::Ipv4Addr src_ip = wire::Ipv4Addr::read(frame, kIp + wire::Ipv4View::kSrc);
  if (!is_member_mac(src_mac)) {
    // Straight from the LAN: the client (or its router) is at src_mac.
    learn_neighbour(now, src_ip, src_mac);
    to_stack(now, frame);
    return;
  }
  // Relayed by the master: give the frame back its client's MAC as source.
  ++counters_.relayed_in;
  const std::optional<wire::MacAddr> client = neighbours_.find(src_ip, now);
  if (!client) {
    if (pending_.size() >= kMaxPendingFrames) {
      ++counters_.drop_neighbour_queue_full;
      return;
    }
    pending_.push_back({src_ip, now + kNeighbourWait, {frame.begin(), frame.end()}});
    ++asked_[src_ip.value()].waiting;
    ask_neighbour(now, src_ip);
    return;
  }
  std::vector<std::byte> copy(frame.begin(), frame.end());
  client->write(copy, EthernetView::kSrc);
  relaying_ = true;
  to_stack(now, copy);
  relaying_ = false;
}

void ClusterNode::to_stack(Time now, wire::Bytes frame) {
  stack_->on_frame(now, frame);
  if (member_touched_) {
    take_member_output(now);
  }
}

void ClusterNode::handle_arp(Time now, wire::Bytes frame) {
  auto arp = wire::ArpRepr::parse(frame.subspan(EthernetView::kHeaderSize));
  if (!arp) {
    stack_->on_frame(now, frame);  // the stack counts it
    return;
  }
  if (arp->sender_ip == config_.cluster->ip) {
    on_arp_conflict(now, *arp);
  }
  if (!arp->sender_ip.is_unspecified() && arp->sender_mac.is_unicast() &&
      arp->sender_ip != config_.cluster->ip && arp->sender_ip != config_.member.address &&
      !is_member_mac(arp->sender_mac)) {
    learn_neighbour(now, arp->sender_ip, arp->sender_mac);
  }
  if (arp->operation == wire::ArpOperation::reply && arp->target_mac == mac_ &&
      arp->target_ip == config_.member.address) {
    // The answer to a request the stack sent from our own address (see drain()).
    std::vector<std::byte> copy(frame.begin(), frame.end());
    config_.cluster->ip.write(copy, EthernetView::kHeaderSize + wire::ArpView::kTargetIp);
    stack_->on_frame(now, copy);
    return;
  }
  stack_->on_frame(now, frame);
}

// stack::FrameFilter
stack::FilterVerdict ClusterNode::on_frame(Time now, wire::Bytes frame) {
  return dispatch(now, member_->table().classify(frame), frame);
}

stack::FilterVerdict ClusterNode::on_datagram(Time now, wire::Bytes datagram) {
  const filter::Verdict v = member_->table().classify_ipv4(datagram);
  if (v.kind != filter::VerdictKind::master_must_assign &&
      v.kind != filter::VerdictKind::forward_to_owner) {
    return dispatch(now, v, datagram);
  }
  // To hold or forward it, the reassembled datagram needs an Ethernet header again.
  std::vector<std::byte> frame(EthernetView::kHeaderSize + datagram.size());
  const wire::Ipv4Addr src = wire::Ipv4Addr::read(datagram, wire::Ipv4View::kSrc);
  mac_.write(frame, EthernetView::kDst);
  neighbours_.find(src).value_or(mac_).write(frame, EthernetView::kSrc);
  wire::write_u16(frame, EthernetView::kType, wire::ethertype::kIpv4);
  std::copy(datagram.begin(), datagram.end(), frame.begin() + EthernetView::kHeaderSize);
  return dispatch(now, v, frame);
}

stack::FilterVerdict ClusterNode::dispatch(Time now, filter::Verdict v, wire::Bytes frame) {
  filter::WorksetTable& table = member_->table();
  if (has_workset(v.kind) && !relaying_) {
    // Every member counts every packet it classifies: the master's table then knows which
    // worksets carry traffic (and reassigns those at once when their owner dies).
    table.add_load(v.workset, 1, frame.size());
    // Client traffic: only frames for the cluster IP (the members' own traffic, ARP or to their
    // own addresses, is no sign of clients). T/2: a master doubts its silent followers after
    // T/2 without clients (cluster::Member in_doubt()); a cut shorter than T that made it doubt
    // is a silence to resume from, and no connection opens for 2T after it. The traffic it
    // reports drops to none only after a silence of T: sparse clients (a gap of T/2) are no
    // cut, and a member that reported none of them lost the tie-break to the side cut off
    // (partition_heal seed 3190).
    if (!replaying_) {
      if (now - lan_last_ > config_.cluster->failure_interval / 2) {
        lan_resumed_ = now;
      }
      if (now - lan_last_ > config_.cluster->failure_interval) {
        lan_returned_ = now;
      }
      lan_last_ = std::max(lan_last_, now);
    }
  }
  switch (v.kind) {
    case filter::VerdictKind::mine:
      ++counters_.mine;
      last_frame_[v.workset.value()] = now;
      return stack::FilterVerdict::mine;
    case filter::VerdictKind::not_mine:
      ++counters_.drop_not_mine;
      return stack::FilterVerdict::not_mine;
    case filter::VerdictKind::master_must_assign:
      ++counters_.assign_requests;
      member_->on_unassigned_packet(now, v.workset, frame);
      member_touched_ = true;
      return stack::FilterVerdict::taken;
    case filter::VerdictKind::forward_to_owner:
      if (auto owner = member_->owner_address(v.workset)) {
        forward(*owner, frame);
      } else {
        ++counters_.drop_unexpected;
      }
      return stack::FilterVerdict::taken;
    case filter::VerdictKind::malformed:
      ++counters_.drop_malformed;
      return stack::FilterVerdict::not_mine;
    case filter::VerdictKind::not_for_cluster:
    case filter::VerdictKind::needs_reassembly:
      break;
  }
  ++counters_.drop_unexpected;
  return stack::FilterVerdict::not_mine;
}

// A frame the master held while its workset had no owner, or while it moved, reaches the new
// owner once it acknowledges: relayed by the master, or injected here when the new owner is the
// master itself. During a move the previous owner went on serving until it let go, so such a
// frame may be one it has handled already: typically the FIN of a connection it has put in
// TIME-WAIT (TIME-WAIT does not keep a workset from moving). Answering it with an RST would
// reset, for the peer, a connection that ended well (phalanx-sim --whole --fault join --seed 32
// --workload mixed --peer-ports 40000-40015). So for kReplayQuiet after gaining a workset, a
// relayed or replayed segment that matches no connection is dropped without an answer
// (counted); the peer's own retransmission, straight from the LAN, still gets the RST. In a
// minority (cut off) nothing for no connection is answered: it may be the other side's.
bool ClusterNode::may_reset(Time now, wire::Ipv4Addr remote, std::uint16_t port) {
  if (!member_->in_majority(now) || !member_->table_confirmed()) {
    ++counters_.minority_no_reset;
    return false;
  }
  if (now < quiet_until_) {
    ++counters_.stall_no_reset;
    return false;
  }
  if (!relaying_ && !replaying_) {
    return true;
  }
  const filter::WorksetId ws =
      member_->table().workset_for(filter::FlowKey{remote.value(), port, 0});
  if (now - gained_at_[ws.value()] > kReplayQuiet) {
    return true;
  }
  ++counters_.replay_no_reset;
  return false;
}

// A member in a minority that heard no client for longer than T/2, and hears them again, was most
// likely cut off from the LAN and is back: the other side served those clients meanwhile and
// will win the tie-break on traffic (cluster::Member), taking back its worksets. A connection
// opened here before that would be the second answer to the client's SYN, and one of the two
// would reset the client. So for 2T (the tie-break needs one keepalive period, at most T/2) it
// opens none and reports no traffic of its own. A survivor of crashed members keeps hearing its
// clients and is not held; after a quiet period one SYN retransmission is the cost.
bool ClusterNode::deaf_hold(Time now, Time resumed) const {
  return now - resumed < 2 * config_.cluster->failure_interval && !member_->in_majority(now);
}

bool ClusterNode::may_open(Time now, wire::Ipv4Addr /*remote*/, std::uint16_t /*port*/) {
  if (now < quiet_until_) {
    ++counters_.stall_no_open;  // the SYN queued while we were away: the others may have it
    return false;
  }
  if (!deaf_hold(now, lan_resumed_)) {
    return true;
  }
  ++counters_.minority_no_open;
  return false;
}

std::optional<cluster::SessionView::ClientTraffic> ClusterNode::client_traffic() const {
  return ClientTraffic{lan_last_, lan_resumed_};
}

std::size_t ClusterNode::active_worksets(Time since) const {
  if (deaf_hold(latest_, lan_returned_)) {
    return 0;
  }
  // With live connections too: a side that took over a workset while cut off hears the clients
  // of the side that served it as soon as the cut heals, but serves none of their connections
  // (whole partition_heal seed 1862: both sides counted 15, and the newer term won).
  const std::bitset<filter::kWorksetCount> busy = busy_worksets();
  const filter::WorksetTable& table = member_->table();
  std::size_t n = 0;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const filter::WorksetId ws{i};
    n += last_frame_[i] >= since && busy.test(i) &&
                 table.state(ws) != filter::WorksetState::unassigned &&
                 table.owner(ws) == table.config().self
             ? 1
             : 0;
  }
  return n;
}

std::bitset<filter::kWorksetCount> ClusterNode::busy_worksets() const {
  std::bitset<filter::kWorksetCount> busy;
  const filter::WorksetTable& table = member_->table();
  stack_->tcp_for_each([&](stack::Endpoint remote, tcp::State state) {
    if (state != tcp::State::time_wait && state != tcp::State::closed) {
      busy.set(table.workset_for(filter::FlowKey{remote.addr.value(), remote.port, 0}).value());
    }
  });
  return busy;
}

void ClusterNode::forward(wire::Ipv4Addr owner, wire::Bytes frame) {
  auto it = member_macs_.find(owner);
  if (it == member_macs_.end()) {
    ++counters_.drop_owner_mac_unknown;
    return;
  }
  std::vector<std::byte>& out = tx_.emplace_back(frame.begin(), frame.end());
  it->second.write(out, EthernetView::kDst);
  mac_.write(out, EthernetView::kSrc);  // never the client's: the switch would learn it here
  ++counters_.forwarded;
}

namespace {

std::uint64_t mac_key(wire::MacAddr mac) {
  std::uint64_t k = 0;
  for (std::uint8_t o : mac.octets()) {
    k = (k << 8) | o;
  }
  return k;
}

}  // namespace

bool ClusterNode::is_member_mac(wire::MacAddr mac) const {
  return member_by_mac_.contains(mac_key(mac));
}

// Only members in the current list are learned: anyone may send a datagram to the control port
// from any address, and a table that learns every sender grows with spoofed sources.
void ClusterNode::learn_member_mac(wire::Ipv4Addr ip, wire::MacAddr mac) {
  if (listed_set_.contains(ip.value())) {
    set_member_mac(ip, mac);
    return;
  }
  // Not listed (yet): remembered among the last kRecentSenders, then forgotten.
  ++counters_.member_mac_not_listed;
  recent_[recent_next_] = {ip, mac};
  recent_next_ = (recent_next_ + 1) % recent_.size();
}

void ClusterNode::set_member_mac(wire::Ipv4Addr ip, wire::MacAddr mac) {
  auto [it, inserted] = member_macs_.try_emplace(ip, mac);
  if (!inserted) {
    if (it->second == mac) {
      return;
    }
    if (auto r = member_by_mac_.find(mac_key(it->second));
        r != member_by_mac_.end() && r->second == ip) {
      member_by_mac_.erase(r);
    }
    it->second = mac;
  }
  member_by_mac_[mac_key(mac)] = ip;
}

void ClusterNode::sync_member_list() {
  const std::vector<wire::Ipv4Addr>& now_listed = member_->members();
  if (now_listed == listed_) {
    return;
  }
  listed_ = now_listed;
  listed_set_.clear();
  for (wire::Ipv4Addr a : listed_) {
    listed_set_.insert(a.value());
  }
  // Forget members that left the list.
  for (auto it = member_macs_.begin(); it != member_macs_.end();) {
    if (listed_set_.contains(it->first.value())) {
      ++it;
      continue;
    }
    if (auto r = member_by_mac_.find(mac_key(it->second));
        r != member_by_mac_.end() && r->second == it->first) {
      member_by_mac_.erase(r);
    }
    it = member_macs_.erase(it);
  }
  // Newcomers whose datagrams the ring saw before the list named them (newest wins).
  for (std::size_t i = 0; i < recent_.size(); ++i) {
    const RecentSender& r = recent_[(recent_next_ + i) % recent_.size()];
    if (!r.ip.is_unspecified() && listed_set_.contains(r.ip.value()) &&
        r.ip != config_.member.address) {
      set_member_mac(r.ip, r.mac);
    }
  }
}

void ClusterNode::learn_neighbour(Time now, wire::Ipv4Addr ip, wire::MacAddr mac) {
  switch (neighbours_.learn(now, ip, mac)) {
    case NeighbourCache::Learned::refused:
      ++counters_.neighbour_slot_busy;
      break;
    case NeighbourCache::Learned::replaced:
      ++counters_.neighbour_replaced;
      break;
    case NeighbourCache::Learned::inserted:
    case NeighbourCache::Learned::refreshed:
      break;
  }
  // Release the relayed frames that waited for this client (even when the table refused it:
  // they carry the MAC with them).
  auto asked = asked_.find(ip.value());
  if (asked == asked_.end()) {
    return;
  }
  asked_.erase(asked);
  std::vector<std::vector<std::byte>> ready;
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->client == ip) {
      ready.push_back(std::move(p->frame));
      p = pending_.erase(p);
    } else {
      ++p;
    }
  }
  for (auto& f : ready) {
    mac.write(f, EthernetView::kSrc);
    relaying_ = true;
    to_stack(now, f);
    relaying_ = false;
  }
}

// Someone says the cluster IP is at `arp.sender_mac`. Our own binding (the served MAC) and our
// own frames looped back are no conflict. Another host's claim moves every client that hears it
// (Linux takes a gratuitous ARP at once), so the master answers with its own at once (CARP,
// VRRP); at most one per kArpDefenceInterval, and one more when the interval ends if conflicts
// came in it, so the last word is ours and a flood of claims costs one ARP per interval.
void ClusterNode::on_arp_conflict(Time now, const wire::ArpRepr& arp) {
  if (arp.sender_mac == stack_->config().served_mac.value_or(mac_) || arp.sender_mac == mac_) {
    return;
  }
  ++counters_.arp_conflicts;
  if (member_->role() != cluster::Role::master) {
    return;  // only the master answers for the cluster IP; the counter shows it
  }
  if (now < defend_after_) {
    ++counters_.arp_defences_deferred;
    defence_owed_ = true;
    return;
  }
  log(LogLevel::warn, fmt::format("ARP conflict: {} claims the cluster IP {}; announcing it at {}",
                                  arp.sender_mac.to_string(), config_.cluster->ip.to_string(),
                                  stack_->config().served_mac.value_or(mac_).to_string()));
  defend_cluster_ip(now);
}

void ClusterNode::defend_cluster_ip(Time now) {
  stack_->announce();
  ++counters_.arp_defences;
  defend_after_ = now + kArpDefenceInterval;
  defence_owed_ = false;
}

void ClusterNode::ask_neighbour(Time now, wire::Ipv4Addr ip) {
  Asked& asked = asked_[ip.value()];
  if (asked.waiting > 1 && now < asked.last + kNeighbourRetry) {
    return;  // asked a moment ago for an earlier frame
  }
  asked.last = now;
  std::vector<std::byte>& f = tx_.emplace_back(EthernetView::kHeaderSize + wire::ArpView::kSize);
  wire::MacAddr::broadcast().write(f, EthernetView::kDst);
  mac_.write(f, EthernetView::kSrc);
  wire::write_u16(f, EthernetView::kType, wire::ethertype::kArp);
  wire::ArpRepr::request(mac_, config_.member.address, ip)
      .emit(wire::MutBytes(f).subspan(EthernetView::kHeaderSize));
  ++counters_.neighbour_requests;
}

void ClusterNode::expire_pending(Time now) {
  while (!pending_.empty() && pending_.front().expires <= now) {
    if (auto it = asked_.find(pending_.front().client.value());
        it != asked_.end() && --it->second.waiting == 0) {
      asked_.erase(it);
    }
    pending_.pop_front();
    ++counters_.drop_neighbour_unknown;
  }
}

void ClusterNode::on_timer(Time now) {
  latest_ = std::max(latest_, now);
  if (member_->next_deadline() <= now) {
    member_->on_timer(now);
    take_member_output(now);
  }
  if (defence_owed_ && defend_after_ <= now) {
    if (member_->role() == cluster::Role::master) {
      defend_cluster_ip(now);
    }
    defence_owed_ = false;
  }
  if (now >= drain_deadline_ && !drain_finished()) {
    drain_gave_up_ = true;
    drain_deadline_ = kNever;
    log(LogLevel::warn, fmt::format("drain: not done in time, leaving with {} connections",
                                    stack_->tcp_connection_count()));
    leave(now);
  }
  expire_pending(now);
  stack_->on_timer(now);
  if (replicator_) {
    take_over_due(now);
    if (replicator_->next_deadline() <= now) {
      replicator_->poll(now);
    }
  }
}

Time ClusterNode::next_deadline() const {
  Time t = std::min(member_->next_deadline(), stack_->next_deadline());
  if (!pending_.empty()) {
    t = std::min(t, pending_.front().expires);
  }
  if (defence_owed_) {
    t = std::min(t, defend_after_);
  }
  if (!drain_finished()) {
    t = std::min(t, drain_deadline_);
  }
  if (replicator_) {
    t = std::min(t, replicator_->next_deadline());
  }
  if (!control_out_.empty() || !tx_.empty() || !refusals_.empty()) {
    t = Time::zero();  // something to drain: wake at once
  }
  return t;
}

void ClusterNode::drain(const FrameSink& sink) {
  if (replicator_) {
    // Before the stack's output: what output commit holds back must be held before it leaves.
    replicator_->poll(latest_);
    answer_moves(latest_);  // before the control messages: the answers go with them
  }
  for (const auto& m : control_out_) {
    ++counters_.control_out;
    control_(m.to, m.bytes);
  }
  control_out_.clear();
  if (replicator_) {
    for (const sync::SyncOut& m : replicator_->take_output()) {
      ++counters_.sync_out;
      control_(m.to, m.bytes);
    }
  }
  stack_->drain([&](wire::Bytes frame, stack::TxMeta meta) {
    constexpr std::size_t kArp = EthernetView::kHeaderSize;
    if (frame.size() >= kArp + wire::ArpView::kSize &&
        wire::read_u16(frame, EthernetView::kType) == wire::ethertype::kArp &&
        wire::read_u16(frame, kArp + wire::ArpView::kOperation) ==
            static_cast<std::uint16_t>(wire::ArpOperation::request) &&
        wire::Ipv4Addr::read(frame, kArp + wire::ArpView::kSenderIp) == config_.cluster->ip &&
        wire::Ipv4Addr::read(frame, kArp + wire::ArpView::kTargetIp) != config_.cluster->ip) {
      // A resolution, not an announcement: ask from our own address (see the header).
      scratch_.assign(frame.begin(), frame.end());
      config_.member.address.write(scratch_, kArp + wire::ArpView::kSenderIp);
      ++counters_.arp_requests_rewritten;
      sink(scratch_, {});
      return;
    }
    if (!owns_remote(frame)) {
      return;  // counted
    }
    sink(frame, meta);
  });
  for (const auto& f : tx_) {
    sink(f, {});
  }
  tx_.clear();
}

// A TCP segment of ours goes to a client whose workset (the filter's key for the client's
// packets: its address and port) this member owns; anything else is dropped here. The stack holds
// connections of worksets that moved away, and after a pause it may hold connections that a
// successor took over: it must not retransmit on them, probe them or reset them.
bool ClusterNode::owns_remote(wire::Bytes frame) {
  constexpr std::size_t kIp = EthernetView::kHeaderSize;
  if (frame.size() < kIp + wire::Ipv4View::kMinHeaderSize ||
      wire::read_u16(frame, EthernetView::kType) != wire::ethertype::kIpv4 ||
      wire::read_u8(frame, kIp + wire::Ipv4View::kProtocol) != wire::ipproto::kTcp) {
    return true;
  }
  const std::size_t ihl = (wire::read_u8(frame, kIp) & 0x0f) * 4u;
  const std::size_t tcp = kIp + ihl;
  if (frame.size() < tcp + wire::TcpView::kMinHeaderSize) {
    return true;  // not ours to judge: the stack does not send these
  }
  const filter::WorksetTable& table = member_->table();
  const wire::Ipv4Addr client = wire::Ipv4Addr::read(frame, kIp + wire::Ipv4View::kDst);
  const std::uint16_t port = wire::read_u16(frame, tcp + filter::kL4DstPort);
  const filter::WorksetId ws = table.workset_for(filter::FlowKey{client.value(), port, 0});
  if (table.state(ws) != filter::WorksetState::unassigned &&
      table.owner(ws) == table.config().self) {
    return true;
  }
  ++counters_.drop_tx_not_owned;
  if ((wire::read_u8(frame, tcp + wire::TcpView::kFlags) & wire::tcpflag::kRst) != 0) {
    ++counters_.drop_tx_rst_not_owned;
  }
  return false;
}

void ClusterNode::on_stall(Time now, Time gap) {
  // The member must not judge its peers on its own absence: its watchdogs move on by the gap
  // before the queue (read next, before any timer) tells it what happened meanwhile.
  now = std::max(now, latest_);
  latest_ = now;
  member_->on_resume(now, gap);
  take_member_output(now);
  // Away for longer than T/2, our followers may have followed a newer term (cluster::Member:
  // a follower does once its master is silent for T/2), whose members opened connections on
  // worksets our table still calls ours; the queue we read next carries their segments. Until
  // the tie-break has had time to settle that (T), a segment for no connection gets no RST and
  // a SYN opens nothing (whole partition_heal seeds 1154, 3159: the master paused as the cut
  // healed, read a SYN another member had answered, and reset the client). A client nobody
  // answered retransmits its SYN.
  if (gap > config_.cluster->failure_interval / 2) {
    quiet_until_ = now + config_.cluster->failure_interval;
  }
  ++counters_.stalls;
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(gap).count());
  counters_.stall_max_ms = std::max(counters_.stall_max_ms, ms);
  if (gap > config_.cluster->failure_interval) {
    ++counters_.stalls_beyond_failure_interval;
    log(LogLevel::warn,
        fmt::format("away for {} ms, beyond the failure interval ({} ms): the others may have "
                    "acted on our silence; what queued meanwhile was read before any timer",
                    ms, config_.cluster->failure_interval.count()));
  } else {
    log(LogLevel::info, fmt::format("away for {} ms (failure interval {} ms)", ms,
                                    config_.cluster->failure_interval.count()));
  }
}

CounterList ClusterNode::counter_list() const {
  const ClusterNodeCounters& c = counters_;
  CounterList out{
      {"drop.not_mine", c.drop_not_mine},
      {"drop.malformed", c.drop_malformed},
      {"drop.unexpected_verdict", c.drop_unexpected},
      {"drop.owner_mac_unknown", c.drop_owner_mac_unknown},
      {"drop.neighbour_unknown", c.drop_neighbour_unknown},
      {"drop.neighbour_queue_full", c.drop_neighbour_queue_full},
      {"drop.held_overflow", member_->counters().held_dropped},
      {"drop.tx_not_owned", c.drop_tx_not_owned},
      {"drop.tx_rst_not_owned", c.drop_tx_rst_not_owned},
      {"replay_no_reset", c.replay_no_reset},
      {"minority_no_reset", c.minority_no_reset},
      {"stall_no_reset", c.stall_no_reset},
      {"stall_no_open", c.stall_no_open},
      {"minority_no_open", c.minority_no_open},
      {"drop.learn.member_mac_not_listed", c.member_mac_not_listed},
      {"drop.learn.neighbour_slot_busy", c.neighbour_slot_busy},
      {"frames_in", c.frames_in},
      {"kernel_frames", c.kernel_frames},
      {"arp_frames", c.arp_frames},
      {"cluster_frames", c.cluster_frames},
      {"relayed_in", c.relayed_in},
      {"mine", c.mine},
      {"assign_requests", c.assign_requests},
      {"forwarded", c.forwarded},
      {"held_delivered", c.held_delivered},
      {"arp_requests_rewritten", c.arp_requests_rewritten},
      {"neighbour_requests", c.neighbour_requests},
      {"control_out", c.control_out},
      {"sync_out", c.sync_out},
      {"neighbour_replaced", c.neighbour_replaced},
      {"neighbours", neighbours_.size()},
      {"member_macs", member_macs_.size()},
      {"arp_conflicts", c.arp_conflicts},
      {"arp_defences", c.arp_defences},
      {"arp_defences_deferred", c.arp_defences_deferred},
      {"stalls", c.stalls},
      {"stalls_beyond_failure_interval", c.stalls_beyond_failure_interval},
      {"stall_max_ms", c.stall_max_ms},
  };
  if (replicator_) {
    const sync::ReplicatorCounters& r = replicator_->counters();
    const sync::StoreCounters& st = replicator_->store().counters();
    for (const auto& [name, value] : std::initializer_list<std::pair<const char*, std::uint64_t>>{
             {"sync.drop.decode_errors", r.decode_errors},
             {"sync.drop.refused_not_owner", r.refused_not_owner},
             {"sync.drop.store_stale", st.stale},
             {"sync.drop.store_fenced", st.fenced},
             {"sync.drop.store_full", st.refused_full},
             {"sync.sessions_replicated", replicator_->tracked()},
             {"sync.sessions_held", replicator_->store().size()},
             {"sync.batches_sent", r.batches_sent},
             {"sync.batch_bytes", r.batch_bytes},
             {"sync.updates_sent", r.updates_sent},
             {"sync.full_updates_sent", r.full_updates_sent},
             {"sync.update_bytes", r.update_bytes},
             {"sync.resent", r.resent},
             {"sync.acks_in", r.acks_in},
             {"sync.need_full_in", r.need_full_in},
             {"sync.batches_in", r.batches_in},
             {"sync.store_applied", st.applied},
             {"sync.store_need_full", st.need_full},
             {"sync.unprotected_no_backup", r.unprotected},
             {"sync.unprotected_backup_silent", r.backup_silent},
             {"sync.not_resumable", r.not_resumable},
             {"sync.sessions_adopted", r.sessions_adopted},
             {"sync.adopt_failed", r.adopt_failed},
             {"sync.moves_ready", r.moves_ready},
             {"sync.moves_flushed", r.moves_flushed},
             {"sync.moves_refused", r.moves_refused},
             {"sync.sessions_handed_over", r.sessions_handed_over},
         }) {
      out.push_back({name, value});
    }
  }
  if (apps_) {
    for (NamedCount& c : apps_->counters()) {
      out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace phalanx::node
