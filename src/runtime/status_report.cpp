#include "runtime/status_report.hpp"

#include <unistd.h>

#include <chrono>
#include <map>

#include "cluster/backup.hpp"

namespace phalanx::runtime {

namespace {

constexpr std::size_t kEventsShown = 32;

nlohmann::json address_or_null(const std::optional<wire::Ipv4Addr>& a) {
  return a ? nlohmann::json(a->to_string()) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json cluster_status(const ClusterNode& node, Time now) {
  const cluster::Member& m = node.member();
  const node::NodeConfig& config = node.config();
  nlohmann::json j;
  j["cluster"] = config.cluster->name;
  j["member"] = config.member.address.to_string();
  j["mac"] = node.mac().to_string();
  j["cluster_ip"] = config.cluster->ip.to_string();
  j["mode"] = std::string(filter::to_string(config.cluster->mode));
  j["role"] = std::string(cluster::to_string(m.role()));
  j["master"] = address_or_null(m.master());
  j["epoch"] = m.epoch();
  j["keepalive_n"] = m.keepalive_n();
  j["failure_interval_ms"] = config.cluster->failure_interval.count();
  j["time_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  j["uptime_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();

  std::map<wire::Ipv4Addr, std::size_t> per_owner;
  nlohmann::json owned = nlohmann::json::array();
  std::size_t unassigned = 0;
  for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
    const filter::WorksetId ws{i};
    if (auto owner = m.owner_address(ws)) {
      ++per_owner[*owner];
      if (*owner == config.member.address) {
        owned.push_back(i);
      }
    } else {
      ++unassigned;
    }
  }
  nlohmann::json members = nlohmann::json::array();
  auto add_member = [&](wire::Ipv4Addr a) {
    nlohmann::json e;
    e["address"] = a.to_string();
    if (a == config.member.address) {
      e["mac"] = node.mac().to_string();
    } else if (auto it = node.member_macs().find(a); it != node.member_macs().end()) {
      e["mac"] = it->second.to_string();
    } else {
      e["mac"] = nullptr;
    }
    e["worksets"] = per_owner.count(a) ? per_owner[a] : 0;
    if (auto p = m.loss_estimate(a)) {
      e["loss_estimate"] = *p;
    } else {
      e["loss_estimate"] = nullptr;
    }
    members.push_back(std::move(e));
  };
  bool self_listed = false;
  for (wire::Ipv4Addr a : m.members()) {
    self_listed |= a == config.member.address;
    add_member(a);
  }
  if (!self_listed) {
    add_member(config.member.address);  // joining: not (yet) in anyone's list
  }
  j["members"] = std::move(members);
  j["owned"] = std::move(owned);
  j["unassigned"] = unassigned;
  j["sessions"] = node.stack().tcp_connection_count();
  j["pid"] = static_cast<std::int64_t>(::getpid());
  j["draining"] = m.draining();
  // Per workset this member owns and serves connections on: their count and the backup that
  // holds their state (DESIGN §6); and the sessions this member holds copies of, per workset.
  std::map<std::uint16_t, std::size_t> live;
  node.stack().tcp_for_each([&](stack::Endpoint remote, tcp::State state) {
    if (state != tcp::State::time_wait && state != tcp::State::closed) {
      ++live[m.table().workset_for(filter::FlowKey{remote.addr.value(), remote.port, 0}).value()];
    }
  });
  nlohmann::json serving = nlohmann::json::array();
  for (const auto& [ws, n] : live) {
    nlohmann::json e;
    e["workset"] = ws;
    e["sessions"] = n;
    e["backup"] = address_or_null(
        cluster::backup_of(filter::WorksetId{ws}, config.member.address, m.members()));
    serving.push_back(std::move(e));
  }
  j["serving"] = std::move(serving);
  nlohmann::json held = nlohmann::json::object();
  if (const sync::Replicator* r = node.replicator()) {
    const auto bits = r->store().held_worksets();
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      if (bits.test(i)) {
        held[std::to_string(i)] = r->store().sessions_in(i);
      }
    }
  }
  j["backing_up"] = std::move(held);

  nlohmann::json drops = nlohmann::json::object();
  nlohmann::json counters = nlohmann::json::object();
  for (const auto& c : node.counter_list()) {
    if (c.name.rfind("drop.", 0) == 0) {
      drops[c.name.substr(5)] = c.value;
    } else {
      counters[c.name] = c.value;
    }
  }
  node.stack().counters().for_each([&](std::string_view name, std::uint64_t value) {
    if (value != 0) {
      counters["stack." + std::string(name)] = value;
    }
  });
  for (std::size_t i = 0; i < stack::kDropCount; ++i) {
    const auto d = static_cast<stack::Drop>(i);
    if (const auto v = node.stack().counters().drops(d); v != 0) {
      drops["stack." + std::string(stack::to_string(d))] = v;
    }
  }
  const cluster::MemberCounters& mc = m.counters();
  counters["cluster.rx_messages"] = mc.rx_messages;
  counters["cluster.rx_stale_epoch"] = mc.rx_stale_epoch;
  counters["cluster.rx_wrong_cluster"] = mc.rx_wrong_cluster;
  counters["cluster.followers_declared_dead"] = mc.followers_declared_dead;
  counters["cluster.members_left"] = mc.members_left;
  counters["cluster.master_lost"] = mc.master_lost;
  counters["cluster.successions"] = mc.successions;
  counters["cluster.tie_breaks_won"] = mc.tie_breaks_won;
  counters["cluster.tie_breaks_lost"] = mc.tie_breaks_lost;
  counters["cluster.worksets_moved"] = mc.worksets_moved;
  counters["cluster.held_frames"] = mc.held_frames;
  counters["cluster.deassign_refused"] = mc.deassign_refused;
  counters["cluster.moves_cancelled"] = mc.moves_cancelled;
  counters["cluster.rebalance_kept_busy"] = mc.rebalance_kept_busy;
  counters["cluster.live_moves"] = mc.live_moves;
  counters["cluster.superseded"] = mc.superseded;
  counters["cluster.minority_entered"] = mc.minority_entered;
  counters["cluster.minority_accepted"] = mc.minority_accepted;
  counters["cluster.claims_taken_live"] = mc.claims_taken_live;
  counters["cluster.removals_deferred"] = mc.removals_deferred;
  counters["cluster.offers_answered"] = mc.offers_answered;
  for (std::size_t i = 0; i < cluster::kDecodeErrorCount; ++i) {
    if (mc.rx_rejected[i] != 0) {
      drops["control." + std::string(cluster::to_string(static_cast<cluster::DecodeError>(i)))] =
          mc.rx_rejected[i];
    }
  }
  j["drops"] = std::move(drops);
  j["counters"] = std::move(counters);

  const auto& log = m.event_log();
  nlohmann::json events = nlohmann::json::array();
  for (std::size_t i = log.size() > kEventsShown ? log.size() - kEventsShown : 0; i < log.size();
       ++i) {
    events.push_back(log[i]);
  }
  j["events"] = std::move(events);
  return j;
}

void add_counters(nlohmann::json& status, std::string_view prefix, const CounterList& counters) {
  const std::string p(prefix);
  for (const auto& c : counters) {
    if (c.name.rfind("drop.", 0) == 0) {
      if (c.value != 0) {
        status["drops"][p + "." + c.name.substr(5)] = c.value;
      }
    } else {
      status["counters"][p + "." + c.name] = c.value;
    }
  }
}

}  // namespace phalanx::runtime
