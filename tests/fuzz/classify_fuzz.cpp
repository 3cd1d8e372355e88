// Classifies the input as an Ethernet frame with a fixed table, as a follower and as a forwarding
// master, as received and as forwarded, under both hashes. No input may crash, read out of
// bounds, or leave the table inconsistent; every verdict must name a workset in range, and the
// inline fast path of classify() must agree with classify_reference() (the wire views only).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "filter/workset_table.hpp"

namespace {

using phalanx::filter::DistributionMode;
using phalanx::filter::HashKind;
using phalanx::filter::MemberId;
using phalanx::filter::WorksetId;
using phalanx::filter::WorksetTable;
using phalanx::filter::WorksetTableConfig;

WorksetTable make_table(HashKind hash, bool master) {
  WorksetTableConfig c;
  c.cluster_ip = phalanx::wire::Ipv4Addr{198, 18, 0, 100};
  c.self = MemberId{1};
  c.hash = hash;
  c.is_master = master;
  c.mode = DistributionMode::forwarding;
  WorksetTable t(c);
  // A mix of every state: mine, a peer's acked, unacked and moving, the rest unassigned.
  for (std::uint16_t i = 0; i < 1024; i += 5) {
    const WorksetId ws{i};
    t.assign(ws, MemberId{static_cast<std::uint16_t>(1 + i % 3)});
    if (i % 2 == 0) {
      t.ack(ws);
      if (i % 4 == 0) {
        t.begin_move(ws);
      }
    }
  }
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static WorksetTable fast[] = {make_table(HashKind::xor_fold, false),
                                make_table(HashKind::mix, true)};
  static WorksetTable reference[] = {make_table(HashKind::xor_fold, false),
                                     make_table(HashKind::mix, true)};
  const phalanx::wire::Bytes frame(reinterpret_cast<const std::byte*>(data), size);
  for (std::size_t i = 0; i < 2; ++i) {
    for (bool forwarded : {false, true}) {
      const auto v = fast[i].classify(frame, forwarded);
      if (v.workset.value() >= 1024 || v != reference[i].classify_reference(frame, forwarded)) {
        std::abort();
      }
    }
    fast[i].check_invariants();
  }
  return 0;
}
