// The backup's store: forward-only application, fencing of stale owners, capacity, and handing
// a workset's records over on takeover.
#include "sync/replica_store.hpp"

#include <gtest/gtest.h>

#include <bitset>

#include <vector>

namespace phalanx::sync {
namespace {

using wire::Ipv4Addr;

// Session `n` of the cluster address 198.18.0.10:80.
SessionKey key(std::uint16_t n) {
  return SessionKey{Ipv4Addr(198, 18, 0, 10), 80, Ipv4Addr(203, 0, 113, 7),
                    static_cast<std::uint16_t>(40000 + n)};
}

SessionRecord record(const SessionKey& k, std::uint16_t ws, cluster::Epoch epoch,
                     std::uint64_t version) {
  SessionRecord r;
  r.workset = ws;
  r.owner_epoch = epoch;
  r.version = version;
  r.initial = tcp::InitialState{k, 1448, 12, tcp::SeqNum{999}};
  r.essential.snd_nxt = tcp::SeqNum{1000 + static_cast<std::uint32_t>(version)};
  r.essential.rcv_nxt = tcp::SeqNum{5000};
  r.send_limit = tcp::SeqNum{70000};
  return r;
}

Update full(const SessionKey& k, std::uint16_t ws, cluster::Epoch epoch, std::uint64_t version) {
  return make_update(record(k, ws, epoch, version), 0, kAllFields);
}

// A delta of send fields from `version - 1`.
Update delta(const SessionKey& k, std::uint16_t ws, cluster::Epoch epoch, std::uint64_t version) {
  return make_update(record(k, ws, epoch, version), version - 1, kFieldSend);
}

TEST(ReplicaStore, AppliesFullRecordsThenDeltas) {
  ReplicaStore store(10);
  EXPECT_EQ(store.apply(full(key(1), 3, 1, 1)), StoreResult::applied);
  EXPECT_EQ(store.apply(delta(key(1), 3, 1, 2)), StoreResult::applied);
  ASSERT_NE(store.find(key(1)), nullptr);
  EXPECT_EQ(*store.find(key(1)), record(key(1), 3, 1, 2));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.sessions_in(3), 1u);
  EXPECT_EQ(store.sessions_in(4), 0u);
  EXPECT_EQ(store.counters().applied, 2u);
  std::bitset<filter::kWorksetCount> held;
  held.set(3);
  EXPECT_EQ(store.held_worksets(), held);
  store.close(key(1));
  EXPECT_TRUE(store.held_worksets().none());  // the epoch stays, the workset holds nothing
}

TEST(ReplicaStore, CountsStaleUpdatesAndKeepsTheNewer) {
  ReplicaStore store(10);
  ASSERT_EQ(store.apply(full(key(1), 3, 1, 5)), StoreResult::applied);
  // Replication moves forward only: a replayed or reordered update changes nothing.
  EXPECT_EQ(store.apply(full(key(1), 3, 1, 5)), StoreResult::stale);
  EXPECT_EQ(store.apply(full(key(1), 3, 1, 4)), StoreResult::stale);
  EXPECT_EQ(store.apply(delta(key(1), 3, 1, 3)), StoreResult::stale);
  EXPECT_EQ(*store.find(key(1)), record(key(1), 3, 1, 5));
  EXPECT_EQ(store.counters().stale, 3u);
}

TEST(ReplicaStore, AsksForTheFullRecordWithoutTheBase) {
  ReplicaStore store(10);
  EXPECT_EQ(store.apply(delta(key(1), 3, 1, 2)), StoreResult::need_full);
  EXPECT_EQ(store.find(key(1)), nullptr);
  EXPECT_EQ(store.size(), 0u);
  ASSERT_EQ(store.apply(full(key(1), 3, 1, 1)), StoreResult::applied);
  EXPECT_EQ(store.apply(delta(key(1), 3, 1, 3)), StoreResult::need_full);  // base 2 lost
  EXPECT_EQ(*store.find(key(1)), record(key(1), 3, 1, 1));
  EXPECT_EQ(store.counters().need_full, 2u);
}

TEST(ReplicaStore, FencesAStaleOwner) {
  ReplicaStore store(10);
  ASSERT_EQ(store.apply(full(key(1), 3, 5, 1)), StoreResult::applied);
  ASSERT_EQ(store.apply(full(key(2), 3, 5, 1)), StoreResult::applied);
  ASSERT_EQ(store.apply(full(key(3), 4, 2, 1)), StoreResult::applied);

  // An owner that still thinks it holds workset 3 under epoch 4.
  EXPECT_EQ(store.apply(full(key(1), 3, 4, 9)), StoreResult::fenced);
  EXPECT_EQ(store.apply(full(key(7), 3, 4, 1)), StoreResult::fenced);
  EXPECT_EQ(store.counters().fenced, 2u);
  EXPECT_EQ(*store.find(key(1)), record(key(1), 3, 5, 1));
  EXPECT_EQ(store.find(key(7)), nullptr);
  // Other worksets keep their own epochs: 2 is current for workset 4.
  EXPECT_EQ(store.apply(delta(key(3), 4, 2, 2)), StoreResult::applied);
}

TEST(ReplicaStore, ANewOwnerReplacesTheOldOwnersRecords) {
  ReplicaStore store(10);
  ASSERT_EQ(store.apply(full(key(1), 3, 5, 1)), StoreResult::applied);
  ASSERT_EQ(store.apply(full(key(2), 3, 5, 4)), StoreResult::applied);
  ASSERT_EQ(store.apply(full(key(3), 4, 5, 1)), StoreResult::applied);

  // The new owner's delta cannot build on the old owner's record: all of workset 3 goes, and
  // the delta asks for a full record.
  EXPECT_EQ(store.apply(delta(key(1), 3, 6, 2)), StoreResult::need_full);
  EXPECT_EQ(store.find(key(1)), nullptr);
  EXPECT_EQ(store.find(key(2)), nullptr);
  EXPECT_EQ(store.sessions_in(3), 0u);
  EXPECT_NE(store.find(key(3)), nullptr);
  EXPECT_EQ(store.size(), 1u);

  // Even an older version from the new owner is taken: its epoch is what counts.
  EXPECT_EQ(store.apply(full(key(2), 3, 6, 1)), StoreResult::applied);
  EXPECT_EQ(*store.find(key(2)), record(key(2), 3, 6, 1));
  EXPECT_EQ(store.apply(full(key(1), 3, 5, 9)), StoreResult::fenced);
}

TEST(ReplicaStore, RefusesNewSessionsWhenFull) {
  ReplicaStore store(2);
  ASSERT_EQ(store.apply(full(key(1), 3, 1, 1)), StoreResult::applied);
  ASSERT_EQ(store.apply(full(key(2), 4, 1, 1)), StoreResult::applied);
  EXPECT_EQ(store.apply(full(key(3), 3, 1, 1)), StoreResult::full);
  EXPECT_EQ(store.apply(delta(key(3), 3, 1, 2)), StoreResult::full);
  EXPECT_EQ(store.counters().refused_full, 2u);
  EXPECT_EQ(store.find(key(3)), nullptr);
  // Sessions already held still move forward.
  EXPECT_EQ(store.apply(delta(key(1), 3, 1, 2)), StoreResult::applied);
  EXPECT_EQ(store.apply(full(key(2), 4, 1, 7)), StoreResult::applied);
  // A closed session makes room.
  store.close(key(2));
  EXPECT_EQ(store.apply(full(key(3), 3, 1, 1)), StoreResult::applied);
  EXPECT_EQ(store.size(), 2u);
}

TEST(ReplicaStore, NoRoomAtAll) {
  ReplicaStore store(0);
  EXPECT_EQ(store.apply(full(key(1), 3, 1, 1)), StoreResult::full);
  EXPECT_EQ(store.size(), 0u);
}

TEST(ReplicaStore, CloseForgetsOneSession) {
  ReplicaStore store(10);
  ASSERT_EQ(store.apply(full(key(1), 3, 1, 1)), StoreResult::applied);
  ASSERT_EQ(store.apply(full(key(2), 3, 1, 1)), StoreResult::applied);
  store.close(key(1));
  EXPECT_EQ(store.find(key(1)), nullptr);
  EXPECT_NE(store.find(key(2)), nullptr);
  EXPECT_EQ(store.sessions_in(3), 1u);
  EXPECT_EQ(store.counters().closed, 1u);
  // A session this store never held is nothing to forget.
  store.close(key(1));
  store.close(key(9));
  EXPECT_EQ(store.counters().closed, 1u);
  // A delta for a closed session finds no base.
  EXPECT_EQ(store.apply(delta(key(1), 3, 1, 2)), StoreResult::need_full);
}

TEST(ReplicaStore, TakeWorksetHandsOverItsRecordsSortedByKey) {
  ReplicaStore store(10);
  for (std::uint16_t n : {5, 1, 9, 3}) {
    ASSERT_EQ(store.apply(full(key(n), 3, 2, n)), StoreResult::applied);
  }
  ASSERT_EQ(store.apply(full(key(4), 7, 2, 1)), StoreResult::applied);

  const std::vector<SessionRecord> taken = store.take_workset(3);
  ASSERT_EQ(taken.size(), 4u);
  const std::uint16_t order[] = {1, 3, 5, 9};
  for (std::size_t i = 0; i < taken.size(); ++i) {
    EXPECT_EQ(taken[i], record(key(order[i]), 3, 2, order[i]));
  }
  EXPECT_EQ(store.sessions_in(3), 0u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.find(key(1)), nullptr);
  EXPECT_NE(store.find(key(4)), nullptr);
  EXPECT_TRUE(store.take_workset(3).empty());
  EXPECT_TRUE(store.take_workset(900).empty());
  // The workset's epoch outlives its records: the old owner stays fenced off.
  EXPECT_EQ(store.apply(full(key(1), 3, 1, 8)), StoreResult::fenced);
}

TEST(ReplicaStore, DropWorksetForgetsItsRecords) {
  ReplicaStore store(10);
  ASSERT_EQ(store.apply(full(key(1), 3, 2, 1)), StoreResult::applied);
  ASSERT_EQ(store.apply(full(key(2), 3, 2, 1)), StoreResult::applied);
  ASSERT_EQ(store.apply(full(key(3), 4, 2, 1)), StoreResult::applied);
  store.drop_workset(3);
  store.drop_workset(5);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.sessions_in(3), 0u);
  EXPECT_EQ(store.find(key(2)), nullptr);
  EXPECT_EQ(store.counters().closed, 0u);
  EXPECT_EQ(store.apply(full(key(1), 3, 1, 2)), StoreResult::fenced);
  EXPECT_EQ(store.apply(full(key(1), 3, 2, 2)), StoreResult::applied);
}

// A key belongs to one workset; an update naming another is still the same session, re-filed
// only when it applies.
TEST(ReplicaStore, ASessionKeepsOneRecordWhateverWorksetAnUpdateNames) {
  ReplicaStore store(10);
  ASSERT_EQ(store.apply(full(key(1), 3, 2, 5)), StoreResult::applied);
  EXPECT_EQ(store.apply(full(key(1), 4, 2, 4)), StoreResult::stale);
  EXPECT_EQ(store.sessions_in(3), 1u);
  EXPECT_EQ(store.apply(full(key(1), 4, 2, 6)), StoreResult::applied);
  EXPECT_EQ(store.sessions_in(3), 0u);
  EXPECT_EQ(store.sessions_in(4), 1u);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(*store.find(key(1)), record(key(1), 4, 2, 6));
  EXPECT_EQ(store.take_workset(4).size(), 1u);
  EXPECT_EQ(store.size(), 0u);
}

}  // namespace
}  // namespace phalanx::sync
