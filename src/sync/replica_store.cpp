#include "sync/replica_store.hpp"

#include <tuple>
#include <utility>

namespace phalanx::sync {

bool SessionKeyLess::operator()(const SessionKey& a, const SessionKey& b) const {
  return std::tie(a.local_addr, a.local_port, a.remote_addr, a.remote_port) <
         std::tie(b.local_addr, b.local_port, b.remote_addr, b.remote_port);
}

ReplicaStore::ReplicaStore(std::size_t max_sessions) : max_sessions_(max_sessions) {}

StoreResult ReplicaStore::apply(const Update& u) {
  const SessionKey& key = u.record.initial.tuple;
  const std::uint16_t ws = u.record.workset;
  Workset& w = worksets_[ws];

  // First, fencing: a stale owner's records never overwrite the current owner's.
  if (u.record.owner_epoch < w.epoch) {
    ++counters_.fenced;
    return StoreResult::fenced;
  }
  // A new owner's records replace the old owner's: none of them may survive into a takeover.
  if (u.record.owner_epoch > w.epoch) {
    for (const auto& [k, record] : w.records) {
      workset_of_.erase(k);
    }
    w.records.clear();
    w.epoch = u.record.owner_epoch;
  }

  const auto where = workset_of_.find(key);
  // Second, capacity: a session not held is one more.
  if (where == workset_of_.end()) {
    if (size() >= max_sessions_) {
      ++counters_.refused_full;
      return StoreResult::full;
    }
    SessionRecord record;
    const ApplyResult r = sync::apply(u, record, false);
    if (r == ApplyResult::applied) {
      w.records.emplace(key, std::move(record));
      workset_of_.emplace(key, ws);
    }
    return count(r);
  }
  // Last, forward only. A key's workset comes from its addresses and never changes; one that
  // claims another (a sender's bug) is still the same session, re-filed where the update says
  // only if it applies.
  if (where->second == ws) {
    return count(sync::apply(u, w.records.at(key), true));
  }
  Records& old = worksets_.at(where->second).records;
  auto node = old.extract(key);
  const ApplyResult r = sync::apply(u, node.mapped(), true);
  if (r == ApplyResult::applied) {
    w.records.insert(std::move(node));
    where->second = ws;
  } else {
    old.insert(std::move(node));
  }
  return count(r);
}

StoreResult ReplicaStore::count(ApplyResult r) {
  switch (r) {
    case ApplyResult::applied:
      ++counters_.applied;
      return StoreResult::applied;
    case ApplyResult::stale:
      ++counters_.stale;
      return StoreResult::stale;
    case ApplyResult::need_full:
      ++counters_.need_full;
      return StoreResult::need_full;
  }
  return StoreResult::need_full;
}

void ReplicaStore::close(const SessionKey& key) {
  const auto where = workset_of_.find(key);
  if (where == workset_of_.end()) {
    return;
  }
  worksets_.at(where->second).records.erase(key);
  workset_of_.erase(where);
  ++counters_.closed;
}

std::vector<SessionRecord> ReplicaStore::take_workset(std::uint16_t ws) {
  std::vector<SessionRecord> taken;
  const auto it = worksets_.find(ws);
  if (it == worksets_.end()) {
    return taken;
  }
  Records& records = it->second.records;
  taken.reserve(records.size());
  for (auto& [key, record] : records) {
    workset_of_.erase(key);
    taken.push_back(std::move(record));
  }
  records.clear();
  return taken;
}

void ReplicaStore::drop_workset(std::uint16_t ws) {
  const auto it = worksets_.find(ws);
  if (it == worksets_.end()) {
    return;
  }
  for (const auto& [key, record] : it->second.records) {
    workset_of_.erase(key);
  }
  it->second.records.clear();
}

const SessionRecord* ReplicaStore::find(const SessionKey& key) const {
  const auto where = workset_of_.find(key);
  if (where == workset_of_.end()) {
    return nullptr;
  }
  const Records& records = worksets_.at(where->second).records;
  const auto it = records.find(key);
  return it == records.end() ? nullptr : &it->second;
}

std::size_t ReplicaStore::sessions_in(std::uint16_t ws) const {
  const auto it = worksets_.find(ws);
  return it == worksets_.end() ? 0 : it->second.records.size();
}

std::bitset<filter::kWorksetCount> ReplicaStore::held_worksets() const {
  std::bitset<filter::kWorksetCount> held;
  for (const auto& [ws, w] : worksets_) {
    if (!w.records.empty() && ws < filter::kWorksetCount) {
      held.set(ws);
    }
  }
  return held;
}

}  // namespace phalanx::sync
