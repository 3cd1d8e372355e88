// The backup of a workset (DESIGN §6, "Where state goes"): the member that holds a copy of the
// state of the workset's sessions besides its owner, and takes the workset over when the owner
// dies.
//
// Rendezvous hashing (highest random weight) over the member list the master announces: the
// backup is the member other than the owner with the highest mix(workset, member). So it costs
// no bytes on the wire (every member computes the same one from the announced list), the backups
// of one owner's worksets spread evenly over the other members, and a member joining or leaving
// changes the backup only of the worksets it becomes or was the backup of. In particular the
// owner's death changes no other member's score: the member the owner was streaming to is the
// one the master promotes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "filter/workset.hpp"
#include "wire/addr.hpp"
#include "wire/mix.hpp"

namespace phalanx::cluster {

inline std::uint64_t backup_score(filter::WorksetId ws, wire::Ipv4Addr member) {
  return wire::fmix64((std::uint64_t{ws.value()} << 32) ^ member.value());
}

// nullopt when the owner is the only member.
inline std::optional<wire::Ipv4Addr> backup_of(filter::WorksetId ws, wire::Ipv4Addr owner,
                                               std::span<const wire::Ipv4Addr> members) {
  std::optional<wire::Ipv4Addr> best;
  std::uint64_t best_score = 0;
  for (wire::Ipv4Addr m : members) {
    if (m == owner) {
      continue;
    }
    const std::uint64_t s = backup_score(ws, m);
    if (!best || s > best_score || (s == best_score && m < *best)) {
      best = m;
      best_score = s;
    }
  }
  return best;
}

}  // namespace phalanx::cluster
