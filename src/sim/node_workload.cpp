#include "sim/node_workload.hpp"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sim/sim_content.hpp"
#include "sim/tcp_peer.hpp"

namespace phalanx::sim {

namespace {

enum class Kind : std::uint8_t { download, echo, idle, burst };

// One draw picks the kind: the same single unit() that Prng::chance(downloads) takes when only
// downloads and echo weigh, so the default mix replays the first simulator's draws.
Kind draw_kind(Prng& prng, const WorkloadMix& m, double total) {
  const double u = prng.unit();
  if (u < m.downloads / total) {
    return Kind::download;
  }
  if (u < (m.downloads + m.echoes) / total || m.idles + m.bursts == 0) {
    return Kind::echo;
  }
  if (u < (m.downloads + m.echoes + m.idles) / total || m.bursts == 0) {
    return Kind::idle;
  }
  return Kind::burst;
}

[[noreturn]] void caller_bug(const char* what) {
  std::fprintf(stderr, "schedule_workload: %s\n", what);
  std::abort();
}

}  // namespace

std::optional<WorkloadMix> workload_from_string(std::string_view name) {
  WorkloadMix m;
  m.name = std::string(name);
  if (name == "default") {
    return m;
  }
  m.echo_max = 300000;
  if (name == "mixed") {
    m.downloads = 0.35;
    m.echoes = 0.25;
    m.idles = 0.2;
    m.bursts = 0.2;
    return m;
  }
  m.downloads = name == "downloads" ? 1 : 0;
  m.echoes = name == "echo" ? 1 : 0;
  m.idles = name == "idle" ? 1 : 0;
  m.bursts = name == "bursts" ? 1 : 0;
  if (m.downloads + m.echoes + m.idles + m.bursts == 0) {
    return std::nullopt;
  }
  return m;
}

std::string workload_names() {
  return "default, mixed, downloads, echo, idle, bursts";
}

ScheduledWorkload schedule_workload(NodeWorld& w, Prng& prng, const WorkloadMix& mix,
                                    std::size_t items, Time from, Duration spread) {
  const double total = mix.downloads + mix.echoes + mix.idles + mix.bursts;
  if (!(total > 0) || mix.downloads < 0 || mix.echoes < 0 || mix.idles < 0 || mix.bursts < 0) {
    caller_bug("the mix's weights must be non-negative, not all zero");
  }
  const std::vector<std::uint64_t>& sizes = w.config().file_sizes;
  std::vector<std::size_t> small;  // the files a burst downloads
  for (std::size_t f = 0; f < sizes.size(); ++f) {
    if (sizes[f] <= mix.burst_file_max) {
      small.push_back(f);
    }
  }
  if (mix.bursts > 0 && small.empty()) {
    caller_bug("no file small enough for a burst");
  }
  ScheduledWorkload s;
  for (std::size_t k = 0; k < items; ++k) {
    const Time at = from + prng.duration(Duration{0}, spread);
    const std::size_t p = k % w.peers();
    switch (draw_kind(prng, mix, total)) {
      case Kind::download: {
        const auto f = static_cast<std::size_t>(prng.uniform(sizes.size()));
        const std::uint64_t size = sizes[f];
        w.at(at, [&w, p, f, size] {
          w.with_peer(p, [&](TcpPeer& peer) {
            peer.open_download(w.now(), file_path(f), file_key(f), size);
          });
        });
        ++s.downloads;
        ++s.connections;
        break;
      }
      case Kind::echo: {
        const std::uint64_t key = echo_key(prng.next_u64());
        const std::uint64_t length = prng.between(mix.echo_min, mix.echo_max);
        w.at(at, [&w, p, key, length] {
          w.with_peer(p, [&](TcpPeer& peer) { peer.open_echo(w.now(), key, length); });
        });
        ++s.echoes;
        ++s.connections;
        break;
      }
      case Kind::idle: {
        const std::uint64_t key = echo_key(prng.next_u64());
        const std::uint64_t head = prng.between(mix.idle_bytes_min, mix.idle_bytes_max);
        const std::uint64_t tail = prng.between(mix.idle_bytes_min, mix.idle_bytes_max);
        const Duration idle = prng.duration(mix.idle_min, mix.idle_max);
        w.at(at, [&w, p, key, head, idle, tail] {
          w.with_peer(
              p, [&](TcpPeer& peer) { peer.open_idle(w.now(), key, head, idle, head + tail); });
        });
        ++s.idles;
        ++s.connections;
        break;
      }
      case Kind::burst: {
        const auto n = static_cast<std::size_t>(prng.between(mix.burst_min, mix.burst_max));
        std::vector<ShortRequest> requests;
        for (std::size_t i = 0; i < n; ++i) {
          const std::size_t f = small[prng.uniform(small.size())];
          requests.push_back(ShortRequest{file_path(f), file_key(f), sizes[f]});
        }
        w.at(at, [&w, p, requests = std::move(requests)] {
          w.with_peer(p, [&](TcpPeer& peer) { peer.open_burst(w.now(), requests); });
        });
        ++s.bursts;
        s.burst_connections += n;
        s.connections += n;
        break;
      }
    }
  }
  return s;
}

}  // namespace phalanx::sim
