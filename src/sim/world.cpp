#include "sim/world.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "wire/ethernet.hpp"

namespace phalanx::sim {

namespace {

using namespace std::chrono_literals;

constexpr Time kNeverSeen = Time::min();
// Frames remembered for double-service counting; older ids are forgotten.
constexpr std::uint64_t kServedMemory = 4096;
constexpr std::size_t kL4TcpHeaderSize = 20;
constexpr std::size_t kL4UdpHeaderSize = 8;
constexpr std::size_t kTcpDataOffset = 12;
constexpr std::size_t kUdpLength = 4;
// A client MAC and the cluster's multicast MAC (DESIGN §3 multicast mode).
constexpr wire::MacAddr kClientMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
constexpr wire::MacAddr kClusterMac{{0x01, 0x00, 0x5e, 0x12, 0x00, 0x64}};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "sim::World: %s\n", what);
  std::abort();
}

filter::WorksetTableConfig oracle_config() {
  filter::WorksetTableConfig c;
  c.cluster_ip = kClusterIp;
  c.self = filter::MemberId{0};
  return c;
}

}  // namespace

std::vector<std::byte> client_frame(Ipv4Addr src, std::uint16_t sport, std::uint16_t dport,
                                    std::uint8_t proto) {
  const bool tcp = proto == wire::ipproto::kTcp;
  const std::size_t l4 = tcp ? kL4TcpHeaderSize : kL4UdpHeaderSize;
  wire::EthernetRepr eth{kClusterMac, kClientMac, std::nullopt, wire::ethertype::kIpv4};
  wire::Ipv4Repr ip;
  ip.src = src;
  ip.dst = kClusterIp;
  ip.protocol = proto;
  ip.payload_len = static_cast<std::uint16_t>(l4);
  std::vector<std::byte> frame(eth.size() + ip.size() + l4);
  wire::MutBytes out(frame);
  eth.emit(out);
  ip.emit(out.subspan(eth.size()));
  wire::MutBytes l4b = out.subspan(eth.size() + ip.size());
  wire::write_u16(l4b, filter::kL4SrcPort, sport);
  wire::write_u16(l4b, filter::kL4DstPort, dport);
  if (tcp) {
    wire::write_u8(l4b, kTcpDataOffset, 0x50);  // 5 words, no options
  } else {
    wire::write_u16(l4b, kUdpLength, static_cast<std::uint16_t>(l4));
  }
  return frame;
}

World::World(WorldConfig config)
    : config_(std::move(config)),
      root_(config_.seed),
      net_(root_.fork()),
      clients_(root_.fork()),
      faults_(root_.fork()),
      incarnations_(root_.fork()),
      lag_(root_.fork()),
      oracle_(oracle_config()) {
  if (config_.slots == 0 || config_.slots > kMaxSlots) {
    fail("slot count out of range");
  }
  slots_.resize(config_.slots);
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].address = member_address(i);
    slots_[i].last_served.fill(kNeverSeen);
  }
  last_traffic_.fill(kNeverSeen);
  traffic_since_.fill(kNeverSeen);
  set_clients(config_.clients);
}

World::~World() = default;

std::optional<std::size_t> World::slot_of(Ipv4Addr a) const {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].address == a) {
      return i;
    }
  }
  return std::nullopt;
}

std::size_t World::up_count() const {
  return static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(),
                                                [](const Slot& s) { return s.member != nullptr; }));
}

World::Key World::schedule(Time at, Event e) {
  if (at < now_) {
    fail("event scheduled in the past");
  }
  const Key k{at, seq_++};
  queue_.emplace(k, std::move(e));
  return k;
}

void World::set_processing_lag(std::size_t slot, Duration max) {
  if (max > config_.network.processing_lag) {
    fail("processing lag beyond NetworkConfig::processing_lag (the checkers' bounds)");
  }
  slots_.at(slot).lag_max = max;
}

Duration World::delay() {
  const auto& n = config_.network;
  return n.latency + (n.jitter > 0ns ? net_.duration(0ns, n.jitter) : 0ns);
}

namespace {

// (source address, source port) of a client frame (client_frame(): Ethernet, IPv4 without
// options, then the ports).
std::uint64_t client_key(wire::Bytes frame) {
  return (std::uint64_t{wire::read_u32(frame, 14 + 12)} << 16) | wire::read_u16(frame, 14 + 20);
}

}  // namespace

// A member's sessions: the worksets of the live TCP flows it serves.
class World::SlotSessions final : public cluster::SessionView {
 public:
  SlotSessions(const World& w, std::size_t slot) : w_(w), slot_(slot) {}
  std::bitset<filter::kWorksetCount> busy_worksets() const override {
    return w_.busy_worksets(slot_);
  }

 private:
  const World& w_;
  std::size_t slot_;
};

std::bitset<filter::kWorksetCount> World::busy_worksets(std::size_t slot) const {
  std::bitset<filter::kWorksetCount> busy;
  for (std::size_t i : live_tcp_flows_) {
    const Flow& f = flows_[i];
    if (f.server == slot && f.server_incarnation == slots_[slot].incarnation) {
      busy.set(f.ws.value());
    }
  }
  return busy;
}

std::unique_ptr<cluster::Member> World::make_member(std::size_t slot) {
  cluster::MemberConfig mc;
  mc.cluster_name = config_.cluster_name;
  mc.address = slots_[slot].address;
  mc.incarnation = slots_[slot].incarnation;
  mc.timings = config_.timings;
  mc.cluster_ip = kClusterIp;
  mc.mode = filter::DistributionMode::multicast;
  auto m = std::make_unique<cluster::Member>(std::move(mc));
  if (config_.session_views) {
    if (!slots_[slot].sessions) {
      slots_[slot].sessions = std::make_unique<SlotSessions>(*this, slot);
    }
    m->set_sessions(slots_[slot].sessions.get());
  }
  if (log_sink_) {
    m->set_event_hook([this, slot](std::string_view line) { log_sink_(now_, slot, line); });
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Members

void World::start(std::size_t slot) {
  if (up(slot)) {
    crash(slot);
  }
  Slot& s = slots_.at(slot);
  s.incarnation = incarnations_.next_u64();
  s.member = make_member(slot);
  s.changed_at = now_;
  ++s.tenure;
  s.role = cluster::Role::joining;
  disturbed();
  mix(0x5000 + slot);
  StepInfo info;
  drive(slot, info, [&](cluster::Member& m) { m.start(now_); });
  notify(info);
}

void World::start_at(std::size_t slot, Time at) {
  schedule(at, StartMember{slot});
}

void World::crash(std::size_t slot) {
  Slot& s = slots_.at(slot);
  if (!s.member) {
    return;
  }
  clear_pause(s);
  s.member.reset();
  s.timer.reset();
  s.changed_at = now_;
  ++s.tenure;
  disturbed();
  last_fault_ = now_;
  mix(0xc000 + slot);
  // Drop every event addressed to it (a dead process receives nothing).
  for (auto it = queue_.begin(); it != queue_.end();) {
    bool erase = false;
    if (auto* c = std::get_if<DeliverControl>(&it->second)) {
      erase = c->to == slot;
    } else if (auto* t = std::get_if<FireTimer>(&it->second)) {
      erase = t->slot == slot;
    } else if (auto* d = std::get_if<DeliverData>(&it->second)) {
      std::erase(d->to, slot);
      erase = d->to.empty();
    }
    it = erase ? queue_.erase(it) : std::next(it);
  }
  notify(StepInfo{});
}

void World::leave(std::size_t slot) {
  if (!up(slot)) {
    return;
  }
  if (paused(slot)) {
    crash(slot);  // a frozen process says no goodbye
    return;
  }
  StepInfo info;
  drive(slot, info, [&](cluster::Member& m) { m.leave(now_); });
  crash(slot);
}

void World::pause(std::size_t slot, Duration length) {
  Slot& s = slots_.at(slot);
  if (!s.member || s.paused) {
    return;
  }
  s.paused = true;
  ++s.tenure;
  ++paused_count_;
  if (s.timer) {
    queue_.erase(*s.timer);
    s.timer.reset();
  }
  pauses_.push_back({slot, s.incarnation, now_, now_ + length});
  disturbed();
  last_fault_ = now_;
  mix(0x9000 + slot);
  schedule(now_ + length, ResumeMember{slot, s.incarnation, length});
  notify(StepInfo{});
}

bool World::paused_within(std::size_t slot, Duration d) const {
  const Slot& s = slots_.at(slot);
  return s.paused || (s.resumed_at != Time::min() && now_ - s.resumed_at < d);
}

void World::clear_pause(Slot& s) {
  if (s.paused) {
    s.paused = false;
    --paused_count_;
  }
  s.queued.clear();
}

// The member wakes: told how long it was away, then handed its queue at this instant, in arrival
// order; its timers run after (rearm schedules the timer event now, behind this one).
void World::resume(const ResumeMember& r, StepInfo& info) {
  Slot& s = slots_.at(r.slot);
  if (!s.member || !s.paused || s.incarnation != r.incarnation) {
    return;
  }
  auto queued = std::move(s.queued);
  clear_pause(s);
  s.resumed_at = now_;
  disturbed();
  last_fault_ = now_;
  mix(0x9800 + r.slot);
  drive(r.slot, info, [&](cluster::Member& m) { m.on_resume(now_, r.away); });
  // Control first, then data, each in arrival order: phalanxd reads its control socket before
  // its packet ring in every wakeup, so the frames that queued are classified with the view
  // the control queue gave it (a stale table would take a successor's sessions for its own).
  for (auto& q : queued) {
    if (auto* c = std::get_if<DeliverControl>(&q); c != nullptr && s.member) {
      ++counters_.control_delivered;
      drive(r.slot, info, [&](cluster::Member& m) { m.on_control(now_, wire::Bytes(*c->bytes)); });
    }
  }
  for (auto& q : queued) {
    if (auto* d = std::get_if<DeliverData>(&q); d != nullptr && s.member) {
      receive_data(r.slot, *d, info);
    }
  }
}

template <class F>
void World::drive(std::size_t slot, StepInfo& info, F&& f) {
  Slot& s = slots_[slot];
  cluster::Member& m = *s.member;
  f(m);
  const auto serving = [](cluster::Role r) {
    return r == cluster::Role::follower || r == cluster::Role::master;
  };
  if (serving(s.role) && !serving(m.role())) {
    ++s.tenure;
  }
  s.role = m.role();
  info.touched.push_back(slot);
  info.control = true;
  handle_output(slot, m.take_output());
  rearm(slot);
}

void World::rearm(std::size_t slot) {
  Slot& s = slots_[slot];
  if (!s.member || s.paused) {
    return;
  }
  const Time d = s.member->next_deadline();
  if (d == cluster::kNever) {
    if (s.timer) {
      queue_.erase(*s.timer);
      s.timer.reset();
    }
    return;
  }
  if (s.lag_max > 0ns && s.timer_lag.first != d) {
    s.timer_lag = {d, lag_.duration(0ns, s.lag_max)};
  }
  const Time at = std::max(d + (s.lag_max > 0ns ? s.timer_lag.second : 0ns), now_);
  if (s.timer && s.timer->first == at) {
    return;  // already armed for that instant
  }
  if (s.timer) {
    queue_.erase(*s.timer);
  }
  s.timer = schedule(at, FireTimer{slot});
}

void World::handle_output(std::size_t slot, cluster::Output out) {
  if (log_sink_) {
    for (const cluster::OwnershipEvent& e : out.ownership) {
      using Kind = cluster::OwnershipEvent::Kind;
      if (e.kind == Kind::gained || e.kind == Kind::lost) {
        log_sink_(now_, slot,
                  fmt::format("workset {} {}", e.workset.value(),
                              e.kind == Kind::gained ? "gained" : "lost"));
      }
    }
  }
  for (const auto& m : out.messages) {
    send_control(slot, m);
  }
  for (auto& f : out.frames) {
    if (f.owner == slots_[slot].address) {
      ++counters_.served_forwarded;
      serve(slot, f.workset, next_frame_id_++, f.frame);
      continue;
    }
    auto to = slot_of(f.owner);
    if (!to || !reachable(slot, *to)) {
      ++counters_.data_lost;
      continue;
    }
    if (config_.network.lose_data && net_.chance(config_.network.loss)) {
      ++counters_.data_lost;
      continue;
    }
    auto bytes = std::make_shared<const std::vector<std::byte>>(std::move(f.frame));
    schedule(now_ + delay(), DeliverData{{*to}, slot, std::move(bytes), next_frame_id_++});
  }
  if (out.announce_arp) {
    arp_.push_back({now_, slot});
    mix(0xa000 + slot);
  }
}

// ---------------------------------------------------------------------------------------------
// Network

void World::send_control(std::size_t from, const cluster::Outgoing& m) {
  ++counters_.control_sent;
  for (Observer* o : observers_) {
    o->on_datagram(*this, from, slots_[from].incarnation, m.bytes);
  }
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::byte b : m.bytes) {
    h = (h ^ std::to_integer<std::uint64_t>(b)) * 0x100000001b3ull;
  }
  mix(h);
  auto bytes = std::make_shared<const std::vector<std::byte>>(m.bytes);
  std::vector<std::size_t> to;
  if (m.to) {
    auto s = slot_of(*m.to);
    if (!s) {
      ++counters_.control_no_such_member;
      return;
    }
    to.push_back(*s);
  } else {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (i != from && slots_[i].member) {
        to.push_back(i);
      }
    }
  }
  for (std::size_t t : to) {
    const bool lost = net_.chance(config_.network.loss);
    const bool dup = net_.chance(config_.network.duplicate);
    if (!reachable(from, t)) {
      ++counters_.control_partitioned;
      continue;
    }
    if (lost) {
      ++counters_.control_lost;
      continue;
    }
    const auto deliver = [&] {
      const Time arrived = now_ + delay();
      Time at = arrived;
      if (Slot& slow = slots_[t]; slow.lag_max > 0ns) {
        at = std::max(at + lag_.duration(0ns, slow.lag_max), slow.lagged_until);
        slow.lagged_until = at;
      }
      schedule(at, DeliverControl{t, from, bytes, arrived});
    };
    deliver();
    if (dup) {
      ++counters_.control_duplicated;
      deliver();
    }
  }
}

void World::set_network(const NetworkConfig& n) {
  if (n.loss != config_.network.loss) {
    network_changed();
  }
  config_.network = n;
  notify(StepInfo{});
}

void World::partition(const std::vector<std::size_t>& side) {
  for (auto& s : slots_) {
    s.group = 0;
  }
  for (std::size_t i : side) {
    slots_.at(i).group = 1;
  }
  partitioned_ = true;
  network_changed();
  mix(0xbeef);
  notify(StepInfo{});
}

void World::heal() {
  for (auto& s : slots_) {
    s.group = 0;
  }
  partitioned_ = false;
  network_changed();
  mix(0xfeed);
  notify(StepInfo{});
}

// ---------------------------------------------------------------------------------------------
// Clients and the data path

void World::set_clients(const ClientConfig& c) {
  config_.clients = c;
  if (c.enabled && !spawning_) {
    spawning_ = true;
    schedule(now_ + c.spawn_interval, SpawnFlows{});
  }
}

void World::open_flow(Duration length, Duration period) {
  Flow f;
  f.src = Ipv4Addr{198, 18, static_cast<std::uint8_t>(100 + clients_.uniform(4)),
                   static_cast<std::uint8_t>(1 + clients_.uniform(254))};
  f.sport = static_cast<std::uint16_t>(2000 + clients_.uniform(60000));
  f.proto = clients_.chance(0.5) ? wire::ipproto::kTcp : wire::ipproto::kUdp;
  const std::uint16_t dport = f.proto == wire::ipproto::kTcp ? 80 : 53;
  f.ends = now_ + length;
  f.period = period;
  f.frame =
      std::make_shared<const std::vector<std::byte>>(client_frame(f.src, f.sport, dport, f.proto));
  const filter::Verdict v = oracle_.classify(*f.frame);
  if (v.kind == filter::VerdictKind::malformed || v.kind == filter::VerdictKind::not_for_cluster) {
    fail("client frame not classified as cluster traffic");
  }
  f.ws = v.workset;
  const bool tcp = f.proto == wire::ipproto::kTcp;
  const std::uint64_t key = client_key(*f.frame);
  flows_.push_back(std::move(f));
  ++active_flows_;
  if (tcp) {
    live_tcp_flows_.insert(flows_.size() - 1);
    flow_by_client_[key] = flows_.size() - 1;
  }
  schedule(now_, FlowTick{flows_.size() - 1});
}

void World::deliver_client_frame(const Flow& f) {
  ++counters_.client_frames;
  const std::uint16_t ws = f.ws.value();
  if (last_traffic_[ws] == kNeverSeen || now_ - last_traffic_[ws] > kTrafficGap) {
    traffic_since_[ws] = now_;
  }
  last_traffic_[ws] = now_;
  const std::uint64_t id = next_frame_id_++;
  // One event per distinct arrival time; members arriving together are served in slot order.
  std::map<Time, std::vector<std::size_t>> arrivals;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].member) {
      continue;
    }
    const bool lost = config_.network.lose_data && net_.chance(config_.network.loss);
    if (lost) {
      ++counters_.data_lost;
      continue;
    }
    arrivals[now_ + delay()].push_back(i);
  }
  for (auto& [at, to] : arrivals) {
    schedule(at, DeliverData{std::move(to), std::nullopt, f.frame, id});
  }
}

void World::serve(std::size_t slot, filter::WorksetId ws, std::uint64_t frame_id,
                  wire::Bytes frame) {
  follow_session(slot, frame);
  Slot& s = slots_[slot];
  s.last_served[ws.value()] = now_;
  ++s.served;
  ++counters_.served;
  auto [it, fresh] = served_frames_.emplace(frame_id, slot);
  if (!fresh && it->second != slot) {
    ++counters_.double_served;
  }
  while (!served_frames_.empty() && served_frames_.begin()->first + kServedMemory < frame_id) {
    served_frames_.erase(served_frames_.begin());
  }
}

// A lossy or partitioned network, a paused member (false failovers, split brains), or a crash,
// pause, resume or network change this recent that may still be resolving (a resumed master
// winning a tie-break with its old table, members rejoining): the convergence bound of the
// checkers plus a rebalance period.
bool World::within_fault_window() const {
  const cluster::Timings& t = config_.timings;
  const Duration window =
      4 * t.failure_interval + t.join_timeout + 2 * t.master_offer_wait + t.rebalance_period;
  return !healthy() || (last_fault_ != Time::min() && now_ - last_fault_ < window);
}

void World::follow_session(std::size_t slot, wire::Bytes frame) {
  const auto it = flow_by_client_.find(client_key(frame));
  if (it == flow_by_client_.end() || !live_tcp_flows_.contains(it->second)) {
    return;  // UDP, or a frame that outlived its flow
  }
  Flow& f = flows_[it->second];
  const Slot& s = slots_[slot];
  if (!f.server) {
    ++counters_.sessions_opened;
  } else if (*f.server != slot || f.server_incarnation != s.incarnation) {
    const Slot& old = slots_[*f.server];
    const std::vector<Ipv4Addr>& listed = s.member->members();
    // Two members that follow different masters (or terms) are a split brain being resolved
    // (a partition, a paused master, two masters at a cold start): a fault, not a move.
    const bool fault = !old.member || old.incarnation != f.server_incarnation ||
                       old.tenure != f.server_tenure || old.paused || !reachable(*f.server, slot) ||
                       std::find(listed.begin(), listed.end(), old.address) == listed.end() ||
                       old.member->master() != s.member->master() ||
                       old.member->epoch() != s.member->epoch() || within_fault_window();
    if (!f.moved) {
      f.moved = true;
      if (fault) {
        ++counters_.sessions_lost_to_faults;
      } else {
        ++counters_.sessions_broken;
        last_session_break_ = "session of " + f.src.to_string() + ":" + std::to_string(f.sport) +
                              " (workset " + std::to_string(f.ws.value()) + ") served by " +
                              old.address.to_string() + ", alive and listed, then by " +
                              s.address.to_string();
      }
    }
  }
  f.server = slot;
  f.server_incarnation = s.incarnation;
  f.server_tenure = s.tenure;
}

void World::receive_data(std::size_t slot, const DeliverData& d, StepInfo& info) {
  Slot& s = slots_[slot];
  if (!s.member) {
    ++counters_.dropped_to_down;
    return;
  }
  ++counters_.data_delivered;
  filter::WorksetTable& table = s.member->table();
  if (d.from) {
    if (!reachable(*d.from, slot)) {
      ++counters_.data_lost;
      return;
    }
    // Released by the master after an acknowledgement: goes to the local stack.
    const filter::Verdict v = oracle_.classify(*d.frame);
    if (table.owner(v.workset) != table.config().self) {
      ++counters_.forwarded_not_owner;
    }
    ++counters_.served_forwarded;
    serve(slot, v.workset, d.frame_id, *d.frame);
    return;
  }
  const filter::Verdict v = table.classify(*d.frame);
  switch (v.kind) {
    case filter::VerdictKind::mine:
      table.add_load(v.workset, 1, d.frame->size());
      serve(slot, v.workset, d.frame_id, *d.frame);
      break;
    case filter::VerdictKind::master_must_assign:
      drive(slot, info, [&](cluster::Member& m) {
        m.on_unassigned_packet(now_, v.workset, wire::Bytes(*d.frame));
      });
      break;
    default:
      break;  // not_mine: the owner saw it too
  }
}

// ---------------------------------------------------------------------------------------------
// The loop

// A control datagram handled by its member (or queued while it is paused).
void World::deliver_control(const DeliverControl& c, StepInfo& info) {
  if (!slots_[c.to].member) {
    ++counters_.dropped_to_down;
  } else if (!reachable(c.from, c.to)) {
    ++counters_.control_partitioned;
  } else if (slots_[c.to].paused) {
    ++counters_.queued_while_paused;
    slots_[c.to].queued.emplace_back(c);
  } else {
    ++counters_.control_delivered;
    drive(c.to, info, [&](cluster::Member& m) { m.on_control(now_, wire::Bytes(*c.bytes)); });
  }
}

void World::dispatch(Event& e, StepInfo& info) {
  if (auto* sm = std::get_if<StartMember>(&e)) {
    start(sm->slot);
  } else if (auto* c = std::get_if<DeliverControl>(&e)) {
    deliver_control(*c, info);
  } else if (auto* d = std::get_if<DeliverData>(&e)) {
    for (std::size_t slot : d->to) {
      if (slots_[slot].member && slots_[slot].paused) {
        ++counters_.queued_while_paused;
        slots_[slot].queued.emplace_back(DeliverData{{slot}, d->from, d->frame, d->frame_id});
        continue;
      }
      receive_data(slot, *d, info);
    }
  } else if (auto* t = std::get_if<FireTimer>(&e)) {
    slots_[t->slot].timer.reset();
    if (!slots_[t->slot].member || slots_[t->slot].paused) {
      return;  // re-armed when it resumes
    }
    // A slow member's loop, like phalanxd's, reads what is on its socket before it runs its
    // timer: datagrams that arrived by now are handled first, in order, whatever their lag.
    if (slots_[t->slot].lag_max > 0ns) {
      for (auto it = queue_.begin(); it != queue_.end();) {
        const auto* c = std::get_if<DeliverControl>(&it->second);
        if (c == nullptr || c->to != t->slot || c->arrived > now_) {
          ++it;
          continue;
        }
        const DeliverControl early = *c;
        it = queue_.erase(it);
        deliver_control(early, info);
      }
      if (!slots_[t->slot].member || slots_[t->slot].paused) {
        return;
      }
    }
    drive(t->slot, info, [&](cluster::Member& m) { m.on_timer(now_); });
  } else if (auto* r = std::get_if<ResumeMember>(&e)) {
    resume(*r, info);
  } else if (auto* f = std::get_if<FlowTick>(&e)) {
    const Flow& flow = flows_[f->flow];
    deliver_client_frame(flow);
    if (now_ + flow.period < flow.ends) {
      schedule(now_ + flow.period, FlowTick{f->flow});
    } else {
      --active_flows_;
      live_tcp_flows_.erase(f->flow);
    }
  } else if (std::holds_alternative<SpawnFlows>(e)) {
    const ClientConfig& c = config_.clients;
    if (!c.enabled) {
      spawning_ = false;
      return;
    }
    if (clients_.chance(c.spawn_chance) && active_flows_ < c.max_flows) {
      open_flow(clients_.duration(c.flow_min, c.flow_max),
                clients_.duration(c.period_min, c.period_max));
    }
    schedule(now_ + c.spawn_interval, SpawnFlows{});
  }
}

void World::notify(const StepInfo& info) {
  for (Observer* o : observers_) {
    o->after_step(*this, info);
  }
}

bool World::step() {
  if (queue_.empty()) {
    return false;
  }
  auto node = queue_.extract(queue_.begin());
  now_ = node.key().first;
  ++counters_.events;
  mix(static_cast<std::uint64_t>(now_.count()));
  mix(node.mapped().index());
  StepInfo info;
  dispatch(node.mapped(), info);
  notify(info);
  return true;
}

void World::run_until(Time t) {
  while (!queue_.empty() && queue_.begin()->first.first <= t) {
    step();
  }
  if (t > now_) {
    now_ = t;
  }
}

std::optional<Time> World::run_until(Time limit, const std::function<bool()>& done) {
  if (done()) {
    return now_;
  }
  while (!queue_.empty() && queue_.begin()->first.first <= limit) {
    step();
    if (done()) {
      return now_;
    }
  }
  if (limit > now_) {
    now_ = limit;
  }
  return std::nullopt;
}

}  // namespace phalanx::sim
