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

enum EventKind : std::uint64_t { kFrame = 1, kControl = 2, kTimer = 3, kAction = 4 };

}  // namespace

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
  slots_[slot].node.reset();
  if (timers_[slot]) {
    queue_.erase(*timers_[slot]);
    timers_[slot].reset();
  }
  mix(0xc4a5 + slot);
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
        deliver(h, shared);
      }
    }
  } else if (dst.is_multicast()) {
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      if (s != from) {
        deliver(s, shared);
      }
    }
  } else if (const auto it = host_by_mac_.find(mac_key(dst)); it != host_by_mac_.end()) {
    deliver(it->second, shared);
  } else {
    ++counters_.frames_to_nobody;
  }
}

void NodeWorld::deliver(std::size_t to, Shared frame) {
  if (net_.chance(config_.loss)) {
    ++counters_.frames_lost;
    return;
  }
  schedule(now_ + delay(), FrameArrives{to, std::move(frame)});
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
    schedule(now_ + delay(), ControlArrives{d, frame, bytes});
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
    if (slots_[host].node) {
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
    if (is_member(f->host)) {
      if (!up(f->host)) {
        ++counters_.dropped_to_down;
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
    if (!up(c->slot)) {
      ++counters_.dropped_to_down;
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
      if (!up(t->host)) {
        return;
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
