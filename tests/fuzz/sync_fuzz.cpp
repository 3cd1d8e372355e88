// Fuzz target for the sync datagram decoder (DESIGN §7: every decoder is fuzzed). Any input must
// decode or be rejected without a crash; whatever decodes must re-encode to the very same bytes
// (one encoding per message) and decode again to the same message. Decoded updates then go
// through sync::apply() and a small ReplicaStore, whose outcomes must agree with the rules.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <variant>
#include <vector>

#include "sync/record.hpp"
#include "sync/replica_store.hpp"

namespace {

using namespace phalanx::sync;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "sync_fuzz: %s\n", what);
  std::abort();
}

void exercise_apply(const Update& u) {
  const bool full = u.base_version == 0;
  SessionRecord held;
  const ApplyResult first = apply(u, held, false);
  if (first != (full ? ApplyResult::applied : ApplyResult::need_full)) {
    fail("apply on nothing held: neither applied (full) nor need_full (delta)");
  }
  if (full && !(held == u.record)) {
    fail("a full record applied is not the record");
  }
  if (full && apply(u, held, true) != ApplyResult::stale) {
    fail("the same version applied twice is not stale");
  }
}

void exercise_store(ReplicaStore& store, const SyncBatch& batch) {
  for (const Update& u : batch.updates) {
    exercise_apply(u);
    const StoreResult r = store.apply(u);
    const SessionRecord* held = store.find(u.record.initial.tuple);
    if (r == StoreResult::applied) {
      if (held == nullptr || held->version != u.record.version ||
          held->owner_epoch != u.record.owner_epoch) {
        fail("an applied update is not what the store holds");
      }
      if (store.apply(u) != StoreResult::stale) {
        fail("an applied update applied again is not stale");
      }
    }
  }
  if (!batch.updates.empty()) {
    const std::uint16_t ws = batch.updates.front().record.workset;
    const std::size_t in = store.sessions_in(ws);
    const std::size_t before = store.size();
    const std::vector<SessionRecord> taken = store.take_workset(ws);
    if (taken.size() != in || store.size() != before - in || store.sessions_in(ws) != 0) {
      fail("take_workset took a different number of records than the workset held");
    }
    for (const SessionRecord& r : taken) {
      if (r.workset != ws || store.find(r.initial.tuple) != nullptr) {
        fail("take_workset returned a record of another workset or left it behind");
      }
    }
  }
  for (const SessionKey& k : batch.closed) {
    store.close(k);
    if (store.find(k) != nullptr) {
      fail("a closed session is still held");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const phalanx::cluster::NullAuthenticator auth;
  const phalanx::wire::Bytes input(reinterpret_cast<const std::byte*>(data), size);

  auto first = phalanx::sync::decode(input, auth);
  const auto* m = std::get_if<SyncMessage>(&first);
  if (m == nullptr) {
    return 0;
  }
  const std::vector<std::byte> again = encode(*m, auth);
  if (again.size() != input.size() || !std::equal(again.begin(), again.end(), input.begin())) {
    fail("re-encoding differs from the input");
  }
  auto second = phalanx::sync::decode(phalanx::wire::Bytes(again), auth);
  const auto* m2 = std::get_if<SyncMessage>(&second);
  if (m2 == nullptr || !(*m2 == *m)) {
    fail("decode(encode(m)) differs from m");
  }
  if (const auto* batch = std::get_if<SyncBatch>(&m->body)) {
    std::size_t body = 4 + 2 + 2 + 12 * batch->closed.size();
    for (const Update& u : batch->updates) {
      body += encoded_size(u);
    }
    if (body + kSyncHeaderSize + 3 != input.size()) {
      fail("encoded_size disagrees with the bytes");
    }
    ReplicaStore store(3);  // small, so that capacity is hit
    exercise_store(store, *batch);
  }
  return 0;
}
