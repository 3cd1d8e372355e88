// The demo: three members and a stream of client flows on one simulated LAN (1 ms latency,
// default timings). It prints, with simulated timestamps: the election, worksets assigned as
// flows arrive, the busiest follower crashing and its worksets moving to the survivors, then the
// master crashing and a new master taking over. Everything is the real cluster::Member code; only
// the clock and the wire are simulated, so the run is the same on every machine.
#include "demo.hpp"

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "sim/world.hpp"

namespace phalanx::sim {

namespace {

using namespace std::chrono_literals;

double ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

class Demo {
 public:
  Demo() : w_(config()) {
    w_.set_member_log([this](Time t, std::size_t slot, std::string_view line) {
      // Members stamp their own lines with "t=...ms "; the timeline has its own column.
      if (line.starts_with("t=")) {
        line.remove_prefix(std::min(line.find(' ') + 1, line.size()));
      }
      say(t, fmt::format("{:<14} {}", name(slot), line));
    });
  }

  int run() {
    fmt::print("Phalanx demo: 3 members on a simulated LAN (1 ms latency), cluster IP {}\n",
               kClusterIp.to_string());
    fmt::print("failure interval T = {:.0f} ms, master offer wait = {:.0f} ms\n\n",
               ms(w_.config().timings.failure_interval), ms(w_.config().timings.master_offer_wait));
    for (std::size_t s = 0; s < w_.slots(); ++s) {
      w_.start_at(s, Time{std::chrono::milliseconds(20 * s)});
    }
    const auto elected = w_.run_until(Time{2s}, [&] { return master().has_value(); });
    if (!elected) {
      return fail("no master elected within 2 s");
    }
    const Time first_master = *elected;
    w_.run_until(Time{2500ms});
    show_table();

    // The busiest follower crashes (no goodbye).
    std::size_t victim = busiest_follower();
    const std::vector<filter::WorksetId> lost = worksets_of(victim);
    const Time crash1 = w_.now();
    say(crash1, fmt::format("*** {} crashes, owning {} worksets", name(victim), lost.size()));
    w_.crash(victim);
    const auto taken = w_.run_until(crash1 + 2s, [&] { return owned_by_survivors(lost); });
    if (!taken) {
      return fail("the crashed follower's worksets were not taken over");
    }
    say(*taken, fmt::format("*** all {} worksets of {} are served by survivors, {:.1f} ms after "
                            "the crash",
                            lost.size(), name(victim), ms(*taken - crash1)));
    w_.run_until(*taken + 1s);
    show_table();

    // The master crashes.
    const std::size_t old_master = *master();
    const Time crash2 = w_.now();
    say(crash2, fmt::format("*** {} (the master) crashes", name(old_master)));
    w_.crash(old_master);
    const auto recovered = w_.run_until(crash2 + 3s, [&] {
      const auto m = master();
      return m && *m != old_master && all_traffic_owned();
    });
    if (!recovered) {
      return fail("no new master serving every workset after the master's crash");
    }
    say(*recovered, fmt::format("*** {} is master and every workset with traffic is served, "
                                "{:.1f} ms after the crash",
                                name(*master()), ms(*recovered - crash2)));
    w_.run_until(*recovered + 1s);
    show_table();

    fmt::print("\nfigure: demo_first_master = {:.1f} ms\n", ms(first_master));
    fmt::print("figure: demo_follower_takeover = {:.1f} ms\n", ms(*taken - crash1));
    fmt::print("figure: demo_master_takeover = {:.1f} ms\n", ms(*recovered - crash2));
    return 0;
  }

 private:
  static WorldConfig config() {
    WorldConfig c;
    c.seed = 2026;
    c.slots = 3;
    c.cluster_name = "demo";
    return c;
  }

  std::string name(std::size_t slot) const {
    return fmt::format("[{}]", w_.address(slot).to_string());
  }

  void say(Time t, const std::string& line) { fmt::print("{:>9.1f} ms  {}\n", ms(t), line); }

  int fail(const std::string& why) {
    fmt::print("demo FAILED: {}\n", why);
    return 1;
  }

  std::optional<std::size_t> master() const {
    std::optional<std::size_t> found;
    for (std::size_t s = 0; s < w_.slots(); ++s) {
      if (w_.up(s) && w_.member(s)->role() == cluster::Role::master) {
        if (found) {
          return std::nullopt;  // two masters: not settled
        }
        found = s;
      }
    }
    return found;
  }

  // The worksets a member serves: owned by itself and acknowledged, in its own table.
  std::vector<filter::WorksetId> worksets_of(std::size_t slot) const {
    std::vector<filter::WorksetId> v;
    if (!w_.up(slot)) {
      return v;
    }
    const auto& t = w_.member(slot)->table();
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      const filter::WorksetId ws{i};
      if (t.owner(ws) == t.config().self && t.state(ws) == filter::WorksetState::assigned) {
        v.push_back(ws);
      }
    }
    return v;
  }

  std::size_t busiest_follower() const {
    std::size_t best = 0;
    std::size_t most = 0;
    for (std::size_t s = 0; s < w_.slots(); ++s) {
      if (w_.up(s) && w_.member(s)->role() == cluster::Role::follower &&
          worksets_of(s).size() >= most) {
        most = worksets_of(s).size();
        best = s;
      }
    }
    return best;
  }

  bool served_by_someone(filter::WorksetId ws) const {
    for (std::size_t s = 0; s < w_.slots(); ++s) {
      if (!w_.up(s)) {
        continue;
      }
      const auto& t = w_.member(s)->table();
      if (t.owner(ws) == t.config().self && t.state(ws) == filter::WorksetState::assigned) {
        return true;
      }
    }
    return false;
  }

  // Traffic in the last World::kTrafficGap (the checkers' definition of a busy workset).
  bool has_traffic(filter::WorksetId ws) const {
    const Time last = w_.last_traffic(ws);
    return last != Time::min() && w_.now() - last <= World::kTrafficGap;
  }

  bool owned_by_survivors(const std::vector<filter::WorksetId>& lost) const {
    // Only the worksets that still carry traffic need an owner; idle ones wait for a packet.
    for (filter::WorksetId ws : lost) {
      if (has_traffic(ws) && !served_by_someone(ws)) {
        return false;
      }
    }
    return true;
  }

  bool all_traffic_owned() const {
    for (std::uint16_t i = 0; i < filter::kWorksetCount; ++i) {
      const filter::WorksetId ws{i};
      if (has_traffic(ws) && !served_by_someone(ws)) {
        return false;
      }
    }
    return true;
  }

  void show_table() {
    std::string line = "worksets served:";
    for (std::size_t s = 0; s < w_.slots(); ++s) {
      if (w_.up(s)) {
        line += fmt::format("  {} {}{}", name(s), worksets_of(s).size(),
                            w_.member(s)->role() == cluster::Role::master ? " (master)" : "");
      } else {
        line += fmt::format("  {} down", name(s));
      }
    }
    say(w_.now(), line + fmt::format("  | active client flows: {}", w_.active_flows()));
  }

  World w_;
};

}  // namespace

int run_demo() {
  return Demo().run();
}

}  // namespace phalanx::sim
