#include "sim/node_scenarios.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sim/node_checkers.hpp"
#include "sim/node_workload.hpp"

namespace phalanx::sim {

namespace {

using std::chrono::milliseconds;

constexpr std::size_t kNobody = ~std::size_t{0};

std::int64_t ms(Time t) {
  return std::chrono::duration_cast<milliseconds>(t).count();
}

}  // namespace

std::string_view scenario_name(WholeFault c) {
  switch (c) {
    case WholeFault::none:
      return "no_crash_under_load";
    case WholeFault::follower:
      return "follower_crash_under_load";
    case WholeFault::master:
      return "master_crash_under_load";
    case WholeFault::join:
      return "join_under_load";
  }
  return "unknown";
}

std::optional<WholeFault> whole_fault_from_string(std::string_view s) {
  if (s == "none") {
    return WholeFault::none;
  }
  if (s == "follower") {
    return WholeFault::follower;
  }
  if (s == "master") {
    return WholeFault::master;
  }
  if (s == "join") {
    return WholeFault::join;
  }
  return std::nullopt;
}

std::string_view fault_word(WholeFault c) {
  switch (c) {
    case WholeFault::none:
      return "none";
    case WholeFault::follower:
      return "follower";
    case WholeFault::master:
      return "master";
    case WholeFault::join:
      return "join";
  }
  return "unknown";
}

WholeReport run_under_load(const WholeOptions& o) {
  NodeWorldConfig wc;
  wc.seed = o.seed;
  wc.members = o.members;
  wc.peers = o.peers;
  wc.loss = o.loss;
  wc.peer_port_range = o.peer_port_range;
  if (o.tweak) {
    o.tweak(wc);
  }
  NodeCheckers checkers;
  NodeWorld w(wc, &checkers);
  w.add_observer(&checkers);
  if (o.trace) {
    w.set_member_log(o.trace);
  }
  WholeReport r;
  r.scenario = std::string(scenario_name(o.fault));
  r.seed = o.seed;
  r.replay = fmt::format(
      "phalanx-sim --whole --fault {} --seed {}{}{}", fault_word(o.fault), o.seed,
      o.workload.name != "default" ? " --workload " + o.workload.name : "",
      o.connections != WholeOptions{}.connections ? fmt::format(" --connections {}", o.connections)
                                                  : "");
  if (o.peer_port_range) {
    r.replay +=
        fmt::format(" --peer-ports {}-{}", o.peer_port_range->first, o.peer_port_range->second);
  }
  if (o.loss > 0) {
    r.replay += fmt::format(" --loss {}", o.loss);
  }
  Prng& prng = w.scenario_prng();

  // Cold start: every member within the first 10 ms (join: but the last, which joins later).
  const std::size_t cold = o.fault == WholeFault::join ? w.members() - 1 : w.members();
  for (std::size_t s = 0; s < cold; ++s) {
    w.at(prng.duration(Duration{0}, milliseconds(10)), [&w, s] { w.start(s); });
  }
  w.run_until(o.converge);
  if (!w.master()) {
    checkers.violation(fmt::format("no master {} ms after a cold start", ms(o.converge)));
  }

  // The load: every draw made here, before any connection runs.
  const ScheduledWorkload load =
      schedule_workload(w, prng, o.workload, o.connections, o.converge, o.spread);
  if (o.fault == WholeFault::join) {
    w.at(o.converge + o.spread / 2, [&w, cold] { w.start(cold); });
  } else if (o.fault != WholeFault::none) {
    const std::uint64_t draw = prng.next_u64();
    w.at(o.converge + o.spread / 2, [&, draw] {
      const cluster::Role wanted =
          o.fault == WholeFault::master ? cluster::Role::master : cluster::Role::follower;
      std::vector<std::size_t> candidates;
      for (std::size_t s = 0; s < w.members(); ++s) {
        if (w.up(s) && w.node(s)->member().role() == wanted) {
          candidates.push_back(s);
        }
      }
      if (candidates.empty()) {
        checkers.violation(
            fmt::format("no {} to crash at {} ms", cluster::to_string(wanted), ms(w.now())));
        return;
      }
      r.victim = candidates[draw % candidates.size()];
      w.crash(*r.victim);
    });
  }

  const auto opened = [&] {
    std::size_t n = 0;
    for (std::size_t p = 0; p < w.peers(); ++p) {
      n += w.peer(p).connections().size();
    }
    return n;
  };
  const auto running = [&] {
    std::size_t n = 0;
    for (std::size_t p = 0; p < w.peers(); ++p) {
      n += w.peer(p).running();
    }
    return n;
  };
  w.run_until(o.limit, [&] { return opened() == load.connections && running() == 0; });
  // Still running: timed out by the scenario (a loss, judged below like the others).
  for (std::size_t p = 0; p < w.peers(); ++p) {
    if (w.peer(p).running() > 0) {
      w.with_peer(p, [&](TcpPeer& peer) { peer.give_up(w.now()); });
    }
  }
  checkers.finish(w);

  r.resets_by_member.assign(w.members(), 0);
  r.served_by_member.assign(w.members(), 0);
  for (std::size_t p = 0; p < w.peers(); ++p) {
    for (const PeerConnection& c : w.peer(p).connections()) {
      ++r.opened;
      const auto server = checkers.server(c);
      if (server) {
        ++r.served_by_member[*server];
      }
      // The member whose RST ended it (kNobody: none, or not a member).
      const std::size_t reset_by =
          c.reset_by ? w.slot_of_mac(*c.reset_by).value_or(kNobody) : kNobody;
      switch (c.outcome) {
        case ConnOutcome::completed:
          ++r.completed;
          continue;
        case ConnOutcome::reset:
          ++r.reset;
          if (reset_by != kNobody) {
            ++r.resets_by_member[reset_by];
          }
          break;
        case ConnOutcome::timed_out:
          ++r.timed_out;
          break;
        case ConnOutcome::truncated:
        case ConnOutcome::bad_response:
        case ConnOutcome::running:
          ++r.failed;
          break;
      }
      ++r.lost;
      if (r.victim && server == r.victim) {
        ++r.lost_on_victim;
      } else {
        checkers.violation(fmt::format(
            "lost: peer {} connection {} (port {}, opened at {} ms) ended {}{} at {} ms, served by "
            "{} (crashed: {})",
            p, c.id, c.local_port, ms(c.opened), to_string(c.outcome),
            reset_by != kNobody ? fmt::format(" by member {}", reset_by) : std::string(),
            ms(c.ended), server ? fmt::format("member {}", *server) : std::string("nobody"),
            r.victim ? fmt::format("member {}", *r.victim) : std::string("none")));
      }
    }
  }
  r.bytes_checked = checkers.bytes_checked();
  r.segments_checked = checkers.segments_checked();
  r.by_kind = checkers.by_kind();
  r.simulated = w.now();
  r.events = w.counters().events;
  r.digest = w.digest();
  r.violation_count = checkers.violation_count();
  r.violations = checkers.violations();
  return r;
}

std::string format_report(const WholeReport& r) {
  std::string s = fmt::format(
      "{} seed {}: connections lost {} / opened {} (on the crashed member {}), served by member "
      "{}: completed {}, reset {} (by member: {}), timed out {}, failed {}; {} bytes and {} member "
      "segments checked; "
      "{:.1f} s simulated, {} events, digest {:016x}, violations {}\n",
      r.scenario, r.seed, r.lost, r.opened, r.lost_on_victim, fmt::join(r.served_by_member, "/"),
      r.completed, r.reset, fmt::join(r.resets_by_member, "/"), r.timed_out, r.failed,
      r.bytes_checked, r.segments_checked, std::chrono::duration<double>(r.simulated).count(),
      r.events, r.digest, r.violation_count);
  if (r.by_kind[static_cast<std::size_t>(LoadKind::idle)].opened +
          r.by_kind[static_cast<std::size_t>(LoadKind::short_download)].opened >
      0) {
    s += "  lost / opened by kind:";
    for (std::size_t k = 0; k < kLoadKinds; ++k) {
      s += fmt::format(" {} {}/{}", to_string(static_cast<LoadKind>(k)), r.by_kind[k].lost,
                       r.by_kind[k].opened);
    }
    s += "\n";
  }
  for (const auto& v : r.violations) {
    s += fmt::format("  violation: {}\n", v);
  }
  if (!r.ok()) {
    s += fmt::format("  replay: {}\n", r.replay);
  }
  return s;
}

}  // namespace phalanx::sim
