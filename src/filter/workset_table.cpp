#include "filter/workset_table.hpp"

#include <cstdio>
#include <cstdlib>
#include <numeric>

namespace phalanx::filter {

namespace {

[[noreturn]] void die(const char* what, unsigned ws, std::string_view detail) {
  std::fprintf(stderr, "workset table: %s (workset %u): %.*s\n", what, ws,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// The legal moves of a workset's state (see workset_table.hpp).
constexpr bool legal(WorksetState from, WorksetState to) {
  using S = WorksetState;
  switch (to) {
    case S::assigned_unacked:
      return from == S::unassigned || from == S::moving;
    case S::assigned:
      return from == S::assigned_unacked;
    case S::moving:
      return from == S::assigned;
    case S::unassigned:
      return from != S::unassigned;
  }
  return false;
}

}  // namespace

std::string_view to_string(WorksetState s) {
  switch (s) {
    case WorksetState::unassigned:
      return "unassigned";
    case WorksetState::assigned_unacked:
      return "assigned_unacked";
    case WorksetState::assigned:
      return "assigned";
    case WorksetState::moving:
      return "moving";
  }
  return "unknown";
}

std::string_view to_string(DistributionMode m) {
  switch (m) {
    case DistributionMode::forwarding:
      return "forwarding";
    case DistributionMode::unicast:
      return "unicast";
    case DistributionMode::multicast:
      return "multicast";
  }
  return "unknown";
}

std::string_view to_string(VerdictKind k) {
  switch (k) {
    case VerdictKind::mine:
      return "mine";
    case VerdictKind::not_mine:
      return "not_mine";
    case VerdictKind::master_must_assign:
      return "master_must_assign";
    case VerdictKind::forward_to_owner:
      return "forward_to_owner";
    case VerdictKind::not_for_cluster:
      return "not_for_cluster";
    case VerdictKind::needs_reassembly:
      return "needs_reassembly";
    case VerdictKind::malformed:
      return "malformed";
  }
  return "unknown";
}

Verdict WorksetTable::classify_reference(wire::Bytes frame, bool forwarded) {
  auto eth = wire::EthernetView::parse(frame);
  if (!eth) {
    return count_malformed(eth.error());
  }
  if (eth->ethertype() != wire::ethertype::kIpv4) {
    return counted(VerdictKind::not_for_cluster);
  }
  return classify_ipv4(eth->payload(), forwarded);
}

Verdict WorksetTable::classify_ipv4(wire::Bytes datagram, bool forwarded) {
  auto ip = wire::Ipv4View::parse(datagram);
  if (!ip) {
    return count_malformed(ip.error());
  }
  if (!forwarded && ip->dst() != config_.cluster_ip) {
    return counted(VerdictKind::not_for_cluster);
  }
  const KeyExtraction k = flow_key(*ip, forwarded);
  if (k.status == KeyStatus::fragment) {
    return counted(VerdictKind::needs_reassembly);
  }
  if (k.status == KeyStatus::malformed) {
    return count_malformed(k.error);
  }
  return counted(workset_for(k.key));
}

WorksetTable::WorksetTable(const WorksetTableConfig& config) : config_(config) {
  if (config_.self.is_none()) {
    die("config without a member id", 0, "self is none");
  }
  recompute_all();
}

void WorksetTable::assign(WorksetId ws, MemberId owner) {
  if (owner.is_none()) {
    die("assign to no member", ws.value(), to_string(state(ws)));
  }
  transition(ws, WorksetState::assigned_unacked, owner);
}

void WorksetTable::ack(WorksetId ws) {
  transition(ws, WorksetState::assigned, owner(ws));
}

void WorksetTable::begin_move(WorksetId ws) {
  transition(ws, WorksetState::moving, owner(ws));
}

void WorksetTable::release(WorksetId ws) {
  transition(ws, WorksetState::unassigned, MemberId::none());
}

void WorksetTable::transition(WorksetId ws, WorksetState to, MemberId new_owner) {
  const std::size_t i = ws.value();
  const WorksetState from = state_[i];
  if (!legal(from, to)) {
    char buf[64];
    const int n = std::snprintf(buf, sizeof buf, "%.*s => %.*s",
                                static_cast<int>(to_string(from).size()), to_string(from).data(),
                                static_cast<int>(to_string(to).size()), to_string(to).data());
    die("illegal transition", ws.value(), std::string_view(buf, static_cast<std::size_t>(n)));
  }
  state_[i] = to;
  owner_[i] = new_owner;
  verdict_[i] = compute_verdict(i);
}

void WorksetTable::set_master(bool is_master) {
  config_.is_master = is_master;
  recompute_all();
}

void WorksetTable::set_mode(DistributionMode mode) {
  config_.mode = mode;
  recompute_all();
}

std::size_t WorksetTable::worksets_of(MemberId member) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < kWorksetCount; ++i) {
    if (state_[i] != WorksetState::unassigned && owner_[i] == member) {
      ++n;
    }
  }
  return n;
}

VerdictKind WorksetTable::compute_verdict(std::size_t i) const {
  if (state_[i] != WorksetState::unassigned && owner_[i] == config_.self) {
    return VerdictKind::mine;
  }
  if (!config_.is_master) {
    return VerdictKind::not_mine;
  }
  // FIG. 9 927-941: unassigned -> assign and hold; not yet acknowledged -> hold. A workset on the
  // move is held the same way until its new owner acknowledges.
  if (state_[i] != WorksetState::assigned) {
    return VerdictKind::master_must_assign;
  }
  // FIG. 9 933-943: in unicast and multicast modes the owner saw the packet itself.
  return config_.mode == DistributionMode::forwarding ? VerdictKind::forward_to_owner
                                                      : VerdictKind::not_mine;
}

void WorksetTable::recompute_all() {
  for (std::size_t i = 0; i < kWorksetCount; ++i) {
    verdict_[i] = compute_verdict(i);
  }
}

void WorksetTable::check_invariants() const {
  if (config_.self.is_none()) {
    die("invariant", 0, "self is none");
  }
  for (std::size_t i = 0; i < kWorksetCount; ++i) {
    const unsigned ws = static_cast<unsigned>(i);
    if ((state_[i] == WorksetState::unassigned) != owner_[i].is_none()) {
      die("invariant", ws, "an unassigned workset has an owner, or an assigned one has none");
    }
    if (verdict_[i] != compute_verdict(i)) {
      die("invariant", ws, "precomputed verdict is stale");
    }
  }
  const std::uint64_t by_reason =
      std::accumulate(malformed_counts_.begin(), malformed_counts_.end(), std::uint64_t{0});
  if (by_reason != count(VerdictKind::malformed)) {
    die("invariant", 0, "malformed counters by reason do not add up to the malformed verdicts");
  }
}

}  // namespace phalanx::filter
