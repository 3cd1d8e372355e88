#include "sim/node_world.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "sim/sim_content.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/udp.hpp"

namespace phalanx::sim {

namespace {

std::uint64_t mac_key(wire::MacAddr m) {
  std::uint64_t k = 0;
  for (const std::uint8_t o : m.octets()) {
    k = (k << 8) | o;
  }
  return k;
}

// The Ethernet multicast MAC of an IPv4 group (RFC 1112 §6.4).
wire::MacAddr group_mac(wire::Ipv4Addr group) {
  const std::uint32_t g = group.value();
  return wire::MacAddr{{0x01, 0x00, 0x5e, static_cast<std::uint8_t>((g >> 16) & 0x7f),
                        static_cast<std::uint8_t>(g >> 8), static_cast<std::uint8_t>(g)}};
}

enum EventKind : std::uint64_t { kFrame = 1, kControl = 2, kTimer = 3, kAction = 4, kResume = 5 };

}  // namespace

std::string_view to_string(MemberFaultKind k) {
  switch (k) {
    case MemberFaultKind::crash:
      return "crash";
    case MemberFaultKind::leave:
      return "leave";
    case MemberFaultKind::pause:
      return "pause";
    case MemberFaultKind::cut_off:
      return "cut_off";
  }
  return "unknown";
}

wire::Ipv4Addr NodeWorld::member_address(std::size_t slot) {
  return wire::Ipv4Addr{198, 18, 0, static_cast<std::uint8_t>(1 + slot)};
}
wire::MacAddr NodeWorld::member_mac(std::size_t slot) {
  return wire::MacAddr{{0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(1 + slot)}};
}
wire::Ipv4Addr NodeWorld::peer_address(std::size_t i) {
  return wire::Ipv4Addr{198, 18, 0, static_cast<std::uint8_t>(101 + i)};
}
wire::MacAddr NodeWorld::peer_mac(std::size_t i) {
  return wire::MacAddr{{0x02, 0, 0, 0, 1, static_cast<std::uint8_t>(1 + i)}};
}

NodeWorld::NodeWorld(NodeWorldConfig config, PeerObserver* peer_observer)
    : config_(std::move(config)),
      root_(config_.seed),
      net_(root_.fork()),
      nodes_(root_.fork()),
      scenario_(root_.fork()) {
  if (config_.members > kMaxMembers || config_.peers > kMaxPeers) {
    std::fprintf(stderr, "NodeWorld: at most %zu members and %zu peers\n", kMaxMembers, kMaxPeers);
    std::abort();
  }
  if (config_.peer_port_range && config_.peer_port_range->first > config_.peer_port_range->second) {
    std::fprintf(stderr, "NodeWorld: an empty peer port range\n");
    std::abort();
  }
  slots_.resize(config_.members);
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    host_by_mac_[mac_key(member_mac(s))] = s;
  }
  Prng peers_rng = root_.fork();
  for (std::size_t i = 0; i < config_.peers; ++i) {
    PeerConfig pc;
    pc.index = i;
    pc.address = peer_address(i);
    pc.mac = peer_mac(i);
    pc.cluster_ip = kClusterIp;
    pc.tcp = config_.peer_tcp;
    pc.tcp.isn_secret.key = {peers_rng.next_u64(), peers_rng.next_u64()};
    pc.first_port = static_cast<std::uint16_t>(peers_rng.between(32768, 60000));
    if (const auto& r = config_.peer_port_range) {
      pc.first_ephemeral = r->first;
      pc.last_ephemeral = r->second;
      pc.first_port = static_cast<std::uint16_t>(r->first + (pc.first_port - 32768) %
                                                                (r->second - r->first + 1));
    }
    peers_.push_back(std::make_unique<TcpPeer>(pc, peer_observer));
    host_by_mac_[mac_key(pc.mac)] = slots_.size() + i;
  }
  timers_.resize(slots_.size() + peers_.size());
  group_.assign(timers_.size(), 0);
}

NodeWorld::~NodeWorld() = default;

std::optional<std::size_t> NodeWorld::slot_of_mac(wire::MacAddr mac) const {
  const auto it = host_by_mac_.find(mac_key(mac));
  if (it == host_by_mac_.end() || !is_member(it->second)) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<std::size_t> NodeWorld::master() const {
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    if (up(s) && slots_[s].node->member().role() == cluster::Role::master) {
      return s;
    }
  }
  return std::nullopt;
}

// --- members ------------------------------------------------------------------------------------

void NodeWorld::start(std::size_t slot) {
  if (up(slot)) {
    crash(slot);
  }
  node::NodeConfig c;
  c.member.interface = "sim0";
  c.member.address = member_address(slot);
  c.member.prefix = 24;
  c.tcp.tcp = config_.member_tcp;
  c.echo.enabled = true;
  c.echo.ports = {7};
  c.http.enabled = true;
  c.http.port = 80;
  c.http.root = "/sim";
  node::ClusterSection cs;
  cs.name = config_.cluster_name;
  cs.ip = kClusterIp;
  cs.mode = filter::DistributionMode::multicast;
  cs.mac = node::default_cluster_mac(kClusterIp, cs.mode);
  cs.control_group = kControlGroup;
  cs.control_port = kControlPort;
  cs.failure_interval = config_.failure_interval;
  cs.join_timeout = config_.join_timeout;
  cs.master_offer_wait = config_.master_offer_wait;
  cs.rebalance_period = config_.rebalance_period;
  cs.replicas = config_.replicas;
  c.cluster = cs;
  node::ClusterEnvironment env;
  env.interface_mac = member_mac(slot);
  env.mtu = 1500;
  env.offload_max = 0;
  env.secret.key = {nodes_.next_u64(), nodes_.next_u64()};
  env.incarnation = nodes_.next_u64();
  if (log_sink_) {
    env.log = [this, slot](node::LogLevel, std::string_view line) { log_sink_(now_, slot, line); };
  }
  auto n = node::ClusterNode::create(
      c, env,
      [this, slot](std::optional<wire::Ipv4Addr> to, wire::Bytes bytes) {
        send_control(slot, to, bytes);
      },
      std::make_unique<GeneratedFileSource>(config_.file_sizes, config_.corrupt_file_byte));
  if (!n.ok()) {
    std::fprintf(stderr, "NodeWorld: cannot create member %zu: %s\n", slot,
                 n.error().message.c_str());
    std::abort();
  }
  slots_[slot].node = std::move(*n);
  slots_[slot].incarnation = env.incarnation;
  mix(0x5747 + slot);
  slots_[slot].node->start(now_);
  after_call(slot);
}

void NodeWorld::crash(std::size_t slot) {
  if (!up(slot)) {
    return;
  }
  clear_pause(slots_[slot]);
  if (const sync::Replicator* r = slots_[slot].node->replicator()) {
    handed_over_stopped_ += r->counters().sessions_handed_over;
  }
  faults_.push_back({slot, MemberFaultKind::crash, now_, now_});
  slots_[slot].node.reset();
  if (timers_[slot]) {
    queue_.erase(*timers_[slot]);
    timers_[slot].reset();
  }
  mix(0xc4a5 + slot);
}

void NodeWorld::leave(std::size_t slot) {
  if (!up(slot)) {
    return;
  }
  if (paused(slot)) {
    crash(slot);  // a frozen process says no goodbye
    return;
  }
  slots_[slot].node->leave(now_);
  after_call(slot);
  crash(slot);
  faults_.back().kind = MemberFaultKind::leave;
}

void NodeWorld::drain(std::size_t slot, Duration limit) {
  if (!up(slot) || paused(slot)) {
    return;
  }
  slots_[slot].node->start_drain(now_, limit);
  after_call(slot);
}

void NodeWorld::pause(std::size_t slot, Duration length) {
  Slot& s = slots_.at(slot);
  if (!s.node || s.paused) {
    return;
  }
  s.paused = true;
  if (timers_[slot]) {
    queue_.erase(*timers_[slot]);
    timers_[slot].reset();
  }
  const auto n = static_cast<unsigned>(std::max(1, s.node->member().keepalive_n()));
  faults_.push_back({slot, MemberFaultKind::pause, now_, now_ + length,
                     config_.failure_interval / n, false, s.incarnation});
  mix(0x9000 + slot);
  schedule(now_ + length, Resume{slot, s.incarnation, length});
}

void NodeWorld::clear_pause(Slot& s) {
  s.paused = false;
  s.ring.clear();
  s.socket.clear();
  s.ring_bytes = 0;
  s.socket_bytes = 0;
}

bool NodeWorld::enqueue(std::vector<Shared>& q, std::size_t& used, std::size_t limit,
                        Shared bytes) {
  if (used + bytes->size() > limit) {
    ++counters_.dropped_while_paused;
    return false;
  }
  used += bytes->size();
  q.push_back(std::move(bytes));
  ++counters_.queued_while_paused;
  return true;
}

// As phalanxd after a stall: told how long it was away, then the control socket, then the
// packet ring, at this instant; its timer runs after (rearm schedules it behind this event).
void NodeWorld::resume(const Resume& r) {
  Slot& s = slots_[r.slot];
  if (!s.node || !s.paused || s.incarnation != r.incarnation) {
    return;
  }
  const std::vector<Shared> socket = std::move(s.socket);
  const std::vector<Shared> ring = std::move(s.ring);
  clear_pause(s);
  s.node->on_stall(now_, r.length);
  for (const Shared& d : socket) {
    ++counters_.control_delivered;
    s.node->on_control(now_, *d);
  }
  for (const Shared& f : ring) {
    ++counters_.frames_delivered;
    s.node->on_frame(now_, *f, node::FrameMeta{});
  }
  after_call(r.slot);
}

void NodeWorld::partition(const std::vector<std::size_t>& side) {
  if (partitioned_) {
    heal();
  }
  for (const std::size_t slot : side) {
    group_.at(slot) = 1;
    faults_.push_back({slot, MemberFaultKind::cut_off, now_, kNever});
    mix(0xbeef + slot);
  }
  partitioned_ = true;
}

void NodeWorld::heal() {
  for (MemberFault& f : faults_) {
    if (f.kind == MemberFaultKind::cut_off && f.until == kNever) {
      f.until = now_;
    }
  }
  std::fill(group_.begin(), group_.end(), 0);
  partitioned_ = false;
  mix(0xfeed);
}

void NodeWorld::watch_pauses() {
  for (MemberFault& f : faults_) {
    if (f.kind != MemberFaultKind::pause || f.declared_dead ||
        now_ > f.until + config_.failure_interval || !up(f.slot) ||
        slots_[f.slot].incarnation != f.incarnation) {
      continue;
    }
    const wire::Ipv4Addr a = member_address(f.slot);
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      if (s == f.slot || !up(s) || paused(s) ||
          slots_[s].node->member().role() != cluster::Role::master) {
        continue;
      }
      const auto& listed = slots_[s].node->member().members();
      if (std::find(listed.begin(), listed.end(), a) == listed.end()) {
        f.declared_dead = true;
        break;
      }
    }
  }
}

bool NodeWorld::faulted(std::size_t slot, Time from, Time to) const {
  for (const MemberFault& f : faults_) {
    if (f.slot != slot || f.from > to || f.until < from) {
      continue;
    }
    if (f.kind != MemberFaultKind::pause || f.declared_dead ||
        (f.until - f.from) + f.keepalive_period >= config_.failure_interval) {
      return true;
    }
  }
  return false;
}

void NodeWorld::with_peer(std::size_t i, const std::function<void(TcpPeer&)>& f) {
  f(*peers_.at(i));
  after_call(slots_.size() + i);
}

// --- the segment --------------------------------------------------------------------------------

Duration NodeWorld::delay() {
  return config_.latency + net_.duration(Duration{0}, config_.jitter);
}

void NodeWorld::mix_bytes(wire::Bytes b) {
  for (const std::byte x : b) {
    digest_ = (digest_ ^ static_cast<std::uint8_t>(x)) * 0x100000001b3ull;
  }
}

void NodeWorld::after_call(std::size_t host) {
  if (is_member(host)) {
    node::ClusterNode* n = slots_[host].node.get();
    if (n == nullptr) {
      return;
    }
    n->drain([&](wire::Bytes frame, stack::TxMeta meta) {
      if (meta.gso_size != 0) {
        std::fprintf(stderr, "NodeWorld: segmentation offload is not modelled\n");
        std::abort();
      }
      for (NodeObserver* o : observers_) {
        o->on_member_frame(*this, host, frame);
      }
      send_frame(host, frame);
    });
    if (n->drain_finished()) {
      // Left, drained or not (the process exits): a drain that gave up is a leave.
      const bool gave_up = !n->member().drained();
      crash(host);
      faults_.back().kind = MemberFaultKind::leave;
      if (!gave_up) {
        faults_.pop_back();  // drained: nothing of it may be lost
      }
      return;
    }
  } else {
    peers_[host - slots_.size()]->drain([&](wire::Bytes frame) { send_frame(host, frame); });
  }
  rearm(host);
}

void NodeWorld::send_frame(std::size_t from, wire::Bytes frame) {
  ++counters_.frames_sent;
  mix_bytes(frame);
  if (frame.size() < wire::EthernetView::kHeaderSize) {
    return;
  }
  const auto shared = std::make_shared<const std::vector<std::byte>>(frame.begin(), frame.end());
  const wire::MacAddr dst = wire::MacAddr::read(frame, wire::EthernetView::kDst);
  if (dst.is_broadcast()) {
    for (std::size_t h = 0; h < timers_.size(); ++h) {
      if (h != from) {
        deliver(from, h, shared);
      }
    }
  } else if (dst.is_multicast()) {
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      if (s != from) {
        deliver(from, s, shared);
      }
    }
  } else if (const auto it = host_by_mac_.find(mac_key(dst)); it != host_by_mac_.end()) {
    deliver(from, it->second, shared);
  } else {
    ++counters_.frames_to_nobody;
  }
}

void NodeWorld::deliver(std::size_t from, std::size_t to, Shared frame) {
  if (net_.chance(config_.loss)) {
    ++counters_.frames_lost;
    return;
  }
  if (!reachable(from, to)) {
    ++counters_.frames_partitioned;
    return;
  }
  // Drawn only when duplication is on, so that runs without it keep their draws.
  if (config_.duplicate > 0.0 && net_.chance(config_.duplicate)) {
    ++counters_.frames_duplicated;
    schedule(now_ + delay(), FrameArrives{to, from, frame});
  }
  schedule(now_ + delay(), FrameArrives{to, from, std::move(frame)});
}

void NodeWorld::send_control(std::size_t from, std::optional<wire::Ipv4Addr> to,
                             wire::Bytes datagram) {
  ++counters_.control_sent;
  mix_bytes(datagram);
  std::vector<std::size_t> dests;
  if (!to) {
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      if (s != from) {
        dests.push_back(s);
      }
    }
  } else {
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      if (member_address(s) == *to) {
        dests.push_back(s);
      }
    }
  }
  // The frame the datagram travels in, as the members' packet rings see it.
  const wire::Ipv4Addr dst_ip = to.value_or(kControlGroup);
  const wire::MacAddr dst_mac =
      to && !dests.empty() ? member_mac(dests.front()) : group_mac(kControlGroup);
  const wire::UdpRepr udp{kControlPort, kControlPort, datagram};
  constexpr std::size_t kIp = wire::EthernetView::kHeaderSize;
  constexpr std::size_t kUdp = kIp + wire::Ipv4View::kMinHeaderSize;
  auto frame = std::make_shared<std::vector<std::byte>>(kUdp + udp.size());
  wire::EthernetRepr{dst_mac, member_mac(from), std::nullopt, wire::ethertype::kIpv4}.emit(*frame);
  wire::Ipv4Repr ip;
  ip.src = member_address(from);
  ip.dst = dst_ip;
  ip.protocol = wire::ipproto::kUdp;
  ip.payload_len = static_cast<std::uint16_t>(udp.size());
  ip.emit(wire::MutBytes(*frame).subspan(kIp));
  udp.emit(wire::MutBytes(*frame).subspan(kUdp), ip.src, ip.dst);
  const auto bytes =
      std::make_shared<const std::vector<std::byte>>(datagram.begin(), datagram.end());
  for (const std::size_t d : dests) {
    if (net_.chance(config_.loss)) {
      ++counters_.control_lost;
      continue;
    }
    if (!reachable(from, d)) {
      ++counters_.control_partitioned;
      continue;
    }
    if (config_.duplicate > 0.0 && net_.chance(config_.duplicate)) {
      ++counters_.control_duplicated;
      schedule(now_ + delay(), ControlArrives{d, from, frame, bytes});
    }
    schedule(now_ + delay(), ControlArrives{d, from, frame, bytes});
  }
}

// --- events -------------------------------------------------------------------------------------

NodeWorld::Key NodeWorld::schedule(Time at, Event e) {
  const Key k{at, seq_++};
  queue_.emplace(k, std::move(e));
  return k;
}

void NodeWorld::at(Time at, std::function<void()> f) {
  schedule(std::max(at, now_), Action{std::move(f)});
}

void NodeWorld::rearm(std::size_t host) {
  Time deadline = kNever;
  if (is_member(host)) {
    if (slots_[host].node && !slots_[host].paused) {
      deadline = slots_[host].node->next_deadline();
    }
  } else {
    deadline = peers_[host - slots_.size()]->next_deadline();
  }
  auto& armed = timers_[host];
  if (deadline == kNever) {
    if (armed) {
      queue_.erase(*armed);
      armed.reset();
    }
    return;
  }
  const Time at = std::max(deadline, now_);
  if (armed && armed->first == at) {
    return;
  }
  if (armed) {
    queue_.erase(*armed);
  }
  armed = schedule(at, TimerFires{host});
}

void NodeWorld::dispatch(Event& e) {
  if (auto* f = std::get_if<FrameArrives>(&e)) {
    mix(kFrame * 1000 + f->host);
    if (!reachable(f->from, f->host)) {
      ++counters_.frames_partitioned;
      return;
    }
    if (is_member(f->host)) {
      if (!up(f->host)) {
        ++counters_.dropped_to_down;
        return;
      }
      if (Slot& s = slots_[f->host]; s.paused) {
        enqueue(s.ring, s.ring_bytes, config_.paused_ring_bytes, f->frame);
        return;
      }
      ++counters_.frames_delivered;
      slots_[f->host].node->on_frame(now_, *f->frame, node::FrameMeta{});
    } else {
      ++counters_.frames_delivered;
      peers_[f->host - slots_.size()]->on_frame(now_, *f->frame);
    }
    after_call(f->host);
  } else if (auto* c = std::get_if<ControlArrives>(&e)) {
    mix(kControl * 1000 + c->slot);
    if (!reachable(c->from, c->slot)) {
      ++counters_.control_partitioned;
      return;
    }
    if (!up(c->slot)) {
      ++counters_.dropped_to_down;
      return;
    }
    if (Slot& s = slots_[c->slot]; s.paused) {
      enqueue(s.socket, s.socket_bytes, config_.paused_socket_bytes, c->datagram);
      enqueue(s.ring, s.ring_bytes, config_.paused_ring_bytes, c->frame);
      return;
    }
    ++counters_.control_delivered;
    slots_[c->slot].node->on_frame(now_, *c->frame, node::FrameMeta{});
    slots_[c->slot].node->on_control(now_, *c->datagram);
    after_call(c->slot);
  } else if (auto* t = std::get_if<TimerFires>(&e)) {
    mix(kTimer * 1000 + t->host);
    timers_[t->host].reset();
    if (is_member(t->host)) {
      if (!up(t->host) || slots_[t->host].paused) {
        return;  // re-armed when it resumes
      }
      slots_[t->host].node->on_timer(now_);
    } else {
      peers_[t->host - slots_.size()]->on_timer(now_);
    }
    after_call(t->host);
    // A core that still wants to be woken now after its timer ran would spin the clock; the
    // node's and the peer's contract rule it out, so a repeat is moved a microsecond on.
    if (timers_[t->host] && timers_[t->host]->first <= now_) {
      Event again = TimerFires{t->host};
      queue_.erase(*timers_[t->host]);
      timers_[t->host] = schedule(now_ + std::chrono::microseconds(1), std::move(again));
    }
  } else if (auto* a = std::get_if<Action>(&e)) {
    mix(kAction);
    a->f();
  } else if (auto* r = std::get_if<Resume>(&e)) {
    mix(kResume * 1000 + r->slot);
    resume(*r);
  }
}

bool NodeWorld::step() {
  if (queue_.empty()) {
    return false;
  }
  auto node = queue_.extract(queue_.begin());
  now_ = node.key().first;
  ++counters_.events;
  mix(static_cast<std::uint64_t>(now_.count()));
  dispatch(node.mapped());
  watch_pauses();
  return true;
}

void NodeWorld::run_until(Time t) {
  while (!queue_.empty() && queue_.begin()->first.first <= t) {
    step();
  }
  now_ = std::max(now_, t);
}

std::optional<Time> NodeWorld::run_until(Time limit, const std::function<bool()>& done) {
  if (done()) {
    return now_;
  }
  while (!queue_.empty() && queue_.begin()->first.first <= limit) {
    step();
    if (done()) {
      return now_;
    }
  }
  now_ = std::max(now_, limit);
  return std::nullopt;
}

}  // namespace phalanx::sim
