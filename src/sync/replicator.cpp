#include "sync/replicator.hpp"

#include <algorithm>
#include <utility>

namespace phalanx::sync {

namespace {

using tcp::SeqNum;

// The record's snd_nxt moves in steps of this fraction of the send window (see the header).
constexpr std::uint32_t kUnaSteps = 4;

// The states whose sessions are replicated: established and closing. TIME-WAIT and the rest
// carry nothing over (a handshake is not replicated before its first ACK).
bool replicated_state(tcp::State s) {
  switch (s) {
    case tcp::State::established:
    case tcp::State::fin_wait_1:
    case tcp::State::fin_wait_2:
    case tcp::State::close_wait:
    case tcp::State::closing:
    case tcp::State::last_ack:
      return true;
    default:
      return false;
  }
}

// An update's share of a batch datagram: cut batches well below the datagram limit.
constexpr std::size_t kBatchBudget = kMaxSyncDatagram - 1024;

}  // namespace

Replicator::Replicator(stack::Stack& stack, const ReplicatorConfig& config, ClusterView view,
                       const cluster::Authenticator& auth)
    : stack_(stack),
      config_(config),
      view_(std::move(view)),
      auth_(auth),
      store_(config.max_sessions) {}

bool Replicator::is_sync(wire::Bytes datagram) {
  return datagram.size() >= 4 && wire::read_u32(datagram, 0) == kSyncMagic;
}

SessionRecord Replicator::build(const tcp::Connection& c, const stack::AppSnapshot& snap,
                                const Tracked* t, filter::WorksetId ws) const {
  const tcp::Tcb& tcb = c.tcb();
  SessionRecord r;
  r.workset = ws.value();
  r.owner_epoch = view_.epoch();
  r.initial = c.export_initial();
  r.essential = c.export_essential();
  tcp::EssentialState& e = r.essential;
  const SessionRecord* prev = t != nullptr ? &t->current : nullptr;
  r.version = prev != nullptr ? prev->version : 0;

  // Send side: the peer's acknowledged point, in steps; the window fields with it.
  const SeqNum stream_origin = r.initial.iss + 1;
  const std::uint32_t step = config_.send_window / kUnaSteps;
  const bool idle = tcb.snd_una == tcb.snd_max;
  if (prev != nullptr && !idle && tcb.snd_una < prev->essential.snd_nxt + step &&
      prev->essential.snd_nxt <= tcb.snd_una) {
    e.snd_nxt = prev->essential.snd_nxt;
    e.snd_wl1 = prev->essential.snd_wl1;
    e.snd_wl2 = prev->essential.snd_wl2;
    e.snd_wnd = prev->essential.snd_wnd;
  } else {
    e.snd_nxt = tcb.snd_una;
  }
  // Our FIN, when it is below the replicated point, was acknowledged: restore() takes the
  // state's word for it. When it is beyond, restore() leaves it to the application.
  // Receive side: what the application took, and the window edge we want to announce.
  e.rcv_nxt = tcb.rcv_nxt - static_cast<std::uint32_t>(c.recv_available());
  e.rcv_adv = tcp::seq_max(e.rcv_adv, c.ack_wanted().right_edge);
  // Our TSval, ahead; refreshed when the real one gets within half of it.
  if (prev != nullptr && e.ts_val_last + config_.ts_ahead_ms / 2 <= prev->essential.ts_val_last &&
      prev->essential.ts_val_last - e.ts_val_last <= config_.ts_ahead_ms) {
    e.ts_val_last = prev->essential.ts_val_last;
  } else {
    e.ts_val_last += config_.ts_ahead_ms;
  }
  r.app = snap.state;
  // The send limit: snd_una + the send window, and no further than the application's state
  // determines (its offsets are stream offsets from the ISS).
  const std::uint64_t acked_offset = tcp::seq_len(stream_origin, e.snd_nxt);
  std::uint64_t room = config_.send_window;
  if (snap.determined >= acked_offset) {
    room = std::min<std::uint64_t>(room, snap.determined - acked_offset);
  } else {
    room = 0;
  }
  r.send_limit = e.snd_nxt + static_cast<std::uint32_t>(room);
  if (prev != nullptr && r.send_limit < prev->send_limit && prev->essential.snd_nxt == e.snd_nxt &&
      snap.determined >= acked_offset) {
    r.send_limit = prev->send_limit;  // never back: the owner may have sent up to it
  }
  if (prev != nullptr) {
    // ts_recent rides along with any other change (an older one is harmless).
    const std::uint32_t recent = e.ts_recent;
    e.ts_recent = prev->essential.ts_recent;
    if (diff(r, *prev) != 0) {
      e.ts_recent = recent;
    }
  }
  return r;
}

void Replicator::poll(Time now) {
  for (auto& [id, t] : tracked_) {
    t.seen = false;
  }
  // The stack may not be called from within tcp_for_each_open(): limits are applied after.
  std::vector<stack::ConnectionId> to_limit;
  std::vector<stack::ConnectionId> to_release;
  stack_.tcp_for_each_open([&](stack::ConnectionId id, const tcp::Connection& c,
                               stack::TcpHandler& app) {
    // A connection we stop replicating must not stay held by a version's limits (TIME-WAIT's
    // last ACK of the peer's FIN, a workset given away, a backup gone); its application may
    // forget what the peer acknowledged (no snapshot will need it).
    const auto release = [&] {
      if (c.ack_limit() || c.send_limit()) {
        to_release.push_back(id);
      }
      app.on_acknowledged(id, tcp::seq_len(c.export_initial().iss + 1, c.tcb().snd_una));
    };
    // A handshake keeps the stack's hold (StackLimits::hold_until_replicated) for its first
    // ACK: replication starts there.
    if (c.state() == tcp::State::syn_received) {
      return;
    }
    if (!replicated_state(c.state())) {
      release();
      return;
    }
    const tcp::FourTuple& tuple = c.tuple();
    const filter::WorksetId ws = view_.workset_of(tuple.remote_addr, tuple.remote_port);
    if (!view_.owns(ws)) {
      // Moved away, or given away while we were taken for dead: the new owner streams it from
      // now on. Forgotten here without a word to the backup, which may be that new owner.
      tracked_.erase(id);
      release();
      return;
    }
    const std::optional<wire::Ipv4Addr> backup = view_.backup(ws);
    if (!backup) {
      ++counters_.unprotected;
      tracked_.erase(id);
      release();
      return;
    }
    auto it = tracked_.find(id);
    Tracked* t = it == tracked_.end() ? nullptr : &it->second;
    const std::uint64_t acked_offset =
        t != nullptr ? tcp::seq_len(c.export_initial().iss + 1, t->current.essential.snd_nxt) : 0;
    // The application trims what the peer acknowledged only up to the replicated point.
    const std::uint64_t trim =
        t != nullptr ? acked_offset : tcp::seq_len(c.export_initial().iss + 1, c.tcb().snd_una);
    std::optional<stack::AppSnapshot> snap = app.snapshot(id, trim);
    if (!snap) {
      ++counters_.not_resumable;
      release();
      return;
    }
    SessionRecord r = build(c, *snap, t, ws);
    if (t == nullptr) {
      Tracked fresh;
      fresh.backup = *backup;
      // Until the backup holds the first version, what the stack's hold allows is in force: the
      // handshake, which the peer's next segment lets any member rebuild from its cookie.
      if (c.send_limit() && c.ack_limit() && *c.send_limit() == c.export_initial().iss + 1) {
        fresh.versions.push_back(Limits{0, *c.ack_limit(), *c.send_limit()});
      }
      it = tracked_.emplace(id, std::move(fresh)).first;
      t = &it->second;
    }
    t->seen = true;
    if (t->backup != *backup) {
      // A new backup holds nothing of ours: start over with full records.
      t->backup = *backup;
      t->acked = 0;
      t->sent = 0;
      t->unacked_since = kNever;
      t->full = true;
      t->versions.clear();
      if (t->current.version > 0) {
        // What the new backup will hold first: the current version, sent to it now.
        t->versions.push_back(limits_of(t->current));
      }
    }
    const std::uint16_t changed = t->current.version == 0 ? kAllFields : diff(r, t->current);
    if (changed != 0) {
      t->dirty |= changed;
      // One clock for every version this member makes: a session's versions only grow, also
      // across a re-tracking (a workset that went and came back) and a takeover (the clock
      // starts above every adopted record's), and an acknowledgement of a version made for an
      // earlier tracking of the same connection is told apart (below `first`).
      r.version = ++version_clock_;
      if (t->current.version == 0) {
        t->first = r.version;
      }
      t->current = std::move(r);
      t->versions.push_back(limits_of(t->current));
    }
    to_limit.push_back(id);
  });
  for (stack::ConnectionId id : to_release) {
    stack_.tcp_set_limits(id, std::nullopt, std::nullopt);
  }
  for (stack::ConnectionId id : to_limit) {
    if (auto it = tracked_.find(id); it != tracked_.end()) {
      apply_limits(now, id, it->second);
    }
  }
  // Sessions that ended: their backups forget them. (A connection the stack still holds in
  // TIME-WAIT holds nothing back: tcp::Connection lifts its limits there.)
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (!it->second.seen) {
      if (it->second.sent > 0) {
        closed_[it->second.backup].push_back(it->second.current.initial.tuple);
      }
      it = tracked_.erase(it);
    } else {
      ++it;
    }
  }
  send_batches(now);
  settle_moves(now);
}

bool Replicator::any_connection(filter::WorksetId ws,
                                const std::function<bool(tcp::State)>& in_state) const {
  bool found = false;
  stack_.tcp_for_each([&](stack::Endpoint remote, tcp::State s) {
    found = found || (in_state(s) && view_.workset_of(remote.addr, remote.port) == ws);
  });
  return found;
}

bool Replicator::movable(filter::WorksetId ws, wire::Ipv4Addr target, bool newest) const {
  bool ok = true;
  stack_.tcp_for_each_open(
      [&](stack::ConnectionId id, const tcp::Connection& c, stack::TcpHandler& /*app*/) {
        if (!ok || !replicated_state(c.state()) ||
            view_.workset_of(c.tuple().remote_addr, c.tuple().remote_port) != ws) {
          return;
        }
        const auto it = tracked_.find(id);
        if (it == tracked_.end()) {
          ok = false;  // not replicated: its application keeps no snapshot
          return;
        }
        const Tracked& t = it->second;
        ok = !t.lifted && t.backup == target && t.acked != 0 &&
             (!newest || t.acked == t.current.version);
      });
  if (ok) {
    // A handshake in progress is replicated from its first ACK on: not yet.
    ok = !any_connection(ws, [](tcp::State s) {
      return s == tcp::State::syn_received || s == tcp::State::syn_sent;
    });
  }
  return ok;
}

bool Replicator::begin_move(Time now, filter::WorksetId ws, wire::Ipv4Addr target) {
  if (!view_.owns(ws)) {
    ++counters_.moves_refused;
    return false;
  }
  if (view_.backup(ws) != target) {
    // Only the backup holds the sessions' state: elsewhere, a workset goes only without any.
    if (any_connection(ws, [](tcp::State s) {
          return s != tcp::State::time_wait && s != tcp::State::closed;
        })) {
      ++counters_.moves_refused;
      return false;
    }
    ++counters_.moves_ready;
    settled_.push_back(MoveResult{ws, true});
    return true;
  }
  moves_[ws.value()] = Move{target, now + config_.move_flush};
  return true;
}

void Replicator::settle_moves(Time now) {
  for (auto it = moves_.begin(); it != moves_.end();) {
    const filter::WorksetId ws{it->first};
    const Move& m = it->second;
    std::optional<bool> ready;
    if (!view_.owns(ws) || view_.backup(ws) != m.target) {
      ready = false;
    } else if (movable(ws, m.target, true)) {
      ready = true;
      ++counters_.moves_flushed;
    } else if (now >= m.deadline) {
      ready = movable(ws, m.target, false);
    }
    if (!ready) {
      ++it;
      continue;
    }
    ++(*ready ? counters_.moves_ready : counters_.moves_refused);
    settled_.push_back(MoveResult{ws, *ready});
    it = moves_.erase(it);
  }
}

std::vector<MoveResult> Replicator::take_moves() {
  return std::exchange(settled_, {});
}

void Replicator::hand_over(filter::WorksetId ws) {
  std::vector<stack::ConnectionId> ids;
  stack_.tcp_for_each_open(
      [&](stack::ConnectionId id, const tcp::Connection& c, stack::TcpHandler& /*app*/) {
        if (view_.workset_of(c.tuple().remote_addr, c.tuple().remote_port) == ws) {
          ids.push_back(id);
        }
      });
  for (stack::ConnectionId id : ids) {
    tracked_.erase(id);
    if (stack_.tcp_hand_over(id)) {
      ++counters_.sessions_handed_over;
    }
  }
}

Replicator::Limits Replicator::limits_of(const SessionRecord& r) {
  return Limits{r.version, tcp::AckLimit{r.essential.rcv_nxt, r.essential.rcv_adv}, r.send_limit};
}

void Replicator::apply_limits(Time now, stack::ConnectionId id, Tracked& t) {
  if (t.versions.empty()) {
    return;
  }
  const tcp::Connection* c = stack_.tcp_connection(id);
  if (c == nullptr) {
    return;
  }
  const bool silent = t.unacked_since != kNever && now - t.unacked_since > config_.ack_timeout;
  if (silent) {
    if (!t.lifted) {
      t.lifted = true;
      ++counters_.backup_silent;
      stack_.tcp_set_limits(id, std::nullopt, std::nullopt);
    }
    return;
  }
  t.lifted = false;
  const Limits& in_force = t.versions.front();
  if (c->ack_limit() != in_force.ack || c->send_limit() != in_force.send_limit) {
    stack_.tcp_set_limits(id, in_force.ack, in_force.send_limit);
  }
}

void Replicator::send_batches(Time now) {
  std::map<wire::Ipv4Addr, SyncBatch> batches;
  std::map<wire::Ipv4Addr, Batch> flights;
  std::map<wire::Ipv4Addr, std::size_t> sizes;
  auto flush = [&](wire::Ipv4Addr to) {
    SyncBatch& b = batches[to];
    if (b.updates.empty() && b.closed.empty()) {
      return;
    }
    std::uint32_t& seq = next_sequence_[to];
    b.sequence = ++seq;
    in_flight_[{to, b.sequence}] = std::move(flights[to]);
    ++counters_.batches_sent;
    emit(to, std::move(b));
    batches.erase(to);
    flights.erase(to);
    sizes[to] = 0;
  };
  for (auto& [to, keys] : closed_) {
    for (const SessionKey& k : keys) {
      if (sizes[to] + 16 > kBatchBudget || batches[to].closed.size() >= 0xffff) {
        flush(to);
      }
      batches[to].closed.push_back(k);
      sizes[to] += 12;
    }
  }
  closed_.clear();
  next_resend_ = kNever;
  for (auto& [id, t] : tracked_) {
    if (t.current.version == 0) {
      continue;
    }
    const bool fresh = t.sent < t.current.version;
    const bool overdue = t.acked < t.sent && now >= t.sent_at + config_.retransmit;
    if (!fresh && !overdue) {
      if (t.acked < t.sent) {
        next_resend_ = std::min(next_resend_, t.sent_at + config_.retransmit);
      }
      continue;
    }
    if (overdue && !fresh) {
      ++counters_.resent;
    }
    const bool full = t.full || t.acked == 0;
    Update u = make_update(t.current, full ? 0 : t.acked, full ? kAllFields : t.dirty);
    const std::size_t size = encoded_size(u);
    if (sizes[t.backup] + size > kBatchBudget || batches[t.backup].updates.size() >= 0xffff) {
      flush(t.backup);
    }
    sizes[t.backup] += size;
    counters_.update_bytes += size;
    ++counters_.updates_sent;
    if (full) {
      ++counters_.full_updates_sent;
    }
    batches[t.backup].updates.push_back(std::move(u));
    flights[t.backup].versions.emplace_back(id, t.current.version);
    if (t.unacked_since == kNever) {
      t.unacked_since = now;
    }
    t.sent = t.current.version;
    t.sent_at = now;
    next_resend_ = std::min(next_resend_, now + config_.retransmit);
  }
  std::vector<wire::Ipv4Addr> targets;
  for (const auto& [to, b] : batches) {
    targets.push_back(to);
  }
  for (wire::Ipv4Addr to : targets) {
    flush(to);
  }
}

void Replicator::emit(wire::Ipv4Addr to, std::variant<SyncBatch, SyncAck> body) {
  SyncMessage m;
  m.cluster_id = config_.cluster_id;
  m.sender = config_.self;
  m.epoch = view_.epoch();
  m.body = std::move(body);
  std::vector<std::byte> bytes = encode(m, auth_);
  counters_.batch_bytes += bytes.size();
  out_.push_back(SyncOut{to, std::move(bytes)});
}

void Replicator::on_datagram(Time now, wire::Bytes datagram) {
  auto decoded = sync::decode(datagram, auth_);
  const auto* m = std::get_if<SyncMessage>(&decoded);
  if (m == nullptr || m->cluster_id != config_.cluster_id || m->sender == config_.self) {
    ++counters_.decode_errors;
    return;
  }
  if (const auto* b = std::get_if<SyncBatch>(&m->body)) {
    on_batch(now, m->sender, *b);
  } else {
    on_ack(now, m->sender, std::get<SyncAck>(m->body));
  }
}

// Backup side. An update is refused when our table names another member as the workset's owner
// (or us): a stale owner (paused, removed, its worksets given away) is fenced off here as well as
// by the store's epochs. Not acknowledged then: the owner sends it again. A workset our table
// shows unassigned is taken: a follower learns of an assignment to another member only from
// the next keepalive, and the new owner's sessions would go unprotected until then.
void Replicator::on_batch(Time /*now*/, wire::Ipv4Addr from, const SyncBatch& b) {
  ++counters_.batches_in;
  SyncAck ack;
  ack.sequence = b.sequence;
  bool any_refused = false;
  for (const Update& u : b.updates) {
    const filter::WorksetId ws{u.record.workset};
    const std::optional<wire::Ipv4Addr> owner = view_.owner(ws);
    if ((owner && *owner != from) || view_.owns(ws)) {
      ++counters_.refused_not_owner;
      any_refused = true;
      continue;
    }
    if (store_.apply(u) == StoreResult::need_full) {
      ack.need_full.push_back(u.record.initial.tuple);
    }
  }
  for (const SessionKey& k : b.closed) {
    const SessionRecord* held = store_.find(k);
    if (held != nullptr && view_.owner(filter::WorksetId{held->workset}) == from) {
      store_.close(k);
    }
  }
  if (any_refused && ack.need_full.empty()) {
    return;  // the owner resends the whole batch's sessions
  }
  emit(from, std::move(ack));
}

void Replicator::on_ack(Time now, wire::Ipv4Addr from, const SyncAck& a) {
  auto it = in_flight_.find({from, a.sequence});
  if (it == in_flight_.end()) {
    return;  // a duplicate, or for a batch we no longer track
  }
  ++counters_.acks_in;
  Batch batch = std::move(it->second);
  in_flight_.erase(it);
  std::map<stack::ConnectionId, bool> need_full;
  for (const auto& [id, t] : tracked_) {
    for (const SessionKey& k : a.need_full) {
      if (t.current.initial.tuple == k) {
        need_full[id] = true;
      }
    }
  }
  counters_.need_full_in += a.need_full.size();
  for (const auto& [id, version] : batch.versions) {
    auto t = tracked_.find(id);
    if (t == tracked_.end() || t->second.backup != from) {
      continue;
    }
    Tracked& tr = t->second;
    if (need_full.contains(id)) {
      tr.full = true;
      tr.sent = 0;  // send again now, whole
      continue;
    }
    if (version <= tr.acked || version < tr.first || version > tr.sent) {
      continue;
    }
    tr.acked = version;
    tr.full = false;
    if (version == tr.current.version) {
      tr.dirty = 0;
    }
    // The backup answers: the clock of what it has not acknowledged yet starts again.
    tr.unacked_since = tr.acked >= tr.sent ? kNever : now;
    while (tr.versions.size() > 1 && tr.versions[1].version <= version) {
      tr.versions.pop_front();
    }
    apply_limits(now, id, tr);
  }
}

void Replicator::take_over(Time now, filter::WorksetId ws) {
  std::vector<SessionRecord> records = store_.take_workset(ws.value());
  const tcp::Config& tcp_config = stack_.config().tcp;
  for (SessionRecord& r : records) {
    stack::TcpHandler* app = stack_.tcp_listener(r.initial.tuple.local_port);
    if (app == nullptr) {
      ++counters_.adopt_failed;
      continue;
    }
    const std::uint32_t slack =
        r.essential.snd_nxt <= r.send_limit ? tcp::seq_len(r.essential.snd_nxt, r.send_limit) : 0;
    tcp::Connection c = tcp::Connection::restore(tcp_config, r.initial, r.essential, now, slack);
    version_clock_ = std::max(version_clock_, r.version);
    if (auto id = stack_.tcp_adopt(std::move(c), app, wire::Bytes(r.app))) {
      ++counters_.sessions_adopted;
      stack_.tcp_solicit_ack(*id);  // the peer's window now, not as replicated
    } else {
      ++counters_.adopt_failed;
    }
  }
}

std::vector<SyncOut> Replicator::take_output() {
  return std::exchange(out_, {});
}

Time Replicator::next_deadline() const {
  if (!out_.empty() || !settled_.empty()) {
    return Time::zero();
  }
  Time t = next_resend_;
  for (const auto& [ws, m] : moves_) {
    t = std::min(t, m.deadline);
  }
  return t;
}

}  // namespace phalanx::sync
