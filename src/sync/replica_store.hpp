// The backup's side of session replication (DESIGN §6): the records of the sessions whose
// worksets this member backs up, kept until the owner closes them or the master promotes this
// member (take_workset) or picks another backup (drop_workset).
//
// Rules, in the order apply() checks them:
//   - fencing: per workset the store keeps the highest owner epoch seen. An update of a lower
//     epoch comes from a stale owner and is fenced (counted, ignored); one of a higher epoch
//     comes from a new owner, whose records replace the old one's: every record of that
//     workset, all held under a lower epoch, is dropped first;
//   - capacity: a session not held while max_sessions are is refused (counted);
//   - otherwise sync::apply(): forward only, a delta needs its base (STYLE 8).
//
// Deterministic: ordered containers only, so that take_workset() and any walk the simulator
// does over a store give the same order on every run of a seed.
#pragma once

#include <bitset>

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "filter/workset.hpp"
#include "sync/record.hpp"

namespace phalanx::sync {

// Orders session keys by local address, local port, remote address, remote port.
struct SessionKeyLess {
  bool operator()(const SessionKey& a, const SessionKey& b) const;
};

struct StoreCounters {
  std::uint64_t applied = 0;
  std::uint64_t stale = 0;         // not newer than the held version (acknowledged anyway)
  std::uint64_t need_full = 0;     // a delta whose base this store does not hold
  std::uint64_t fenced = 0;        // from an owner epoch older than the workset's newest
  std::uint64_t refused_full = 0;  // a new session while max_sessions are held
  std::uint64_t closed = 0;        // sessions forgotten by close()
};

enum class StoreResult : std::uint8_t {
  applied,
  stale,
  need_full,
  fenced,
  full,
};

class ReplicaStore {
 public:
  explicit ReplicaStore(std::size_t max_sessions);

  // Applies one update (the rules above). Never fails on any update: each outcome is a result
  // and a counter.
  StoreResult apply(const Update& u);
  // Forgets one session, if held (counted in `closed` when it was).
  void close(const SessionKey& key);
  // Removes and returns every record of workset `ws`, sorted by key. The workset's epoch stays:
  // a stale owner remains fenced off.
  std::vector<SessionRecord> take_workset(std::uint16_t ws);
  // Forgets every record of workset `ws` (its epoch stays, as for take_workset()).
  void drop_workset(std::uint16_t ws);

  // The held record of `key`, or nullptr. Valid until the next call that changes the store.
  const SessionRecord* find(const SessionKey& key) const;
  std::size_t size() const { return workset_of_.size(); }
  std::size_t sessions_in(std::uint16_t ws) const;
  // The worksets of which at least one session is held.
  std::bitset<filter::kWorksetCount> held_worksets() const;
  const StoreCounters& counters() const { return counters_; }

 private:
  using Records = std::map<SessionKey, SessionRecord, SessionKeyLess>;
  struct Workset {
    // The highest owner epoch seen; every record held below has exactly this epoch.
    cluster::Epoch epoch = 0;
    Records records;
  };

  StoreResult count(ApplyResult r);

  std::size_t max_sessions_;
  std::map<std::uint16_t, Workset> worksets_;
  // Where each held session is: find() and close() need not know its workset.
  std::map<SessionKey, std::uint16_t, SessionKeyLess> workset_of_;
  StoreCounters counters_;
};

}  // namespace phalanx::sync
