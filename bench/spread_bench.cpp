// How evenly the two workset hashes spread realistic client populations over the 1024 worksets
// (DESIGN §3: "a benchmark of distribution quality for both"). Quality, not time: a plain main().
//
// For each population it prints the load of the fullest workset over the mean load (1.0 is a
// perfect spread; the master balances worksets, so the fullest one bounds how finely it can
// balance) and, as the baseline, the same figure for connections thrown into worksets by the
// PRNG itself (what an ideal hash would do). Everything comes from one fixed-seed generator.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "filter/workset.hpp"

namespace {

using phalanx::filter::FlowKey;
using phalanx::filter::HashKind;
using phalanx::filter::kDefaultMixSeed;
using phalanx::filter::kWorksetCount;
using phalanx::filter::workset_of;

// xoshiro256** (Blackman & Vigna), seeded through splitmix64: the bench owns its generator.
class Xoshiro256 {
 public:
  explicit Xoshiro256(std::uint64_t seed) {
    for (auto& w : s_) {
      std::uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w = z ^ (z >> 31);
    }
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [lo, hi], by rejection (no modulo bias).
  std::uint32_t between(std::uint32_t lo, std::uint32_t hi) {
    const std::uint64_t span = std::uint64_t{hi} - lo + 1;
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    std::uint64_t r;
    do {
      r = next();
    } while (r >= limit);
    return static_cast<std::uint32_t>(lo + r % span);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

constexpr std::uint32_t ip(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return (std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d;
}

struct Spread {
  double max_over_mean = 0;
  double cv = 0;  // standard deviation over mean
  std::size_t empty = 0;
};

Spread measure(const std::array<std::uint64_t, kWorksetCount>& load, std::size_t n) {
  const double mean = static_cast<double>(n) / kWorksetCount;
  double var = 0;
  Spread s;
  for (std::uint64_t l : load) {
    var += (static_cast<double>(l) - mean) * (static_cast<double>(l) - mean);
    s.empty += l == 0 ? 1 : 0;
  }
  s.max_over_mean = static_cast<double>(*std::max_element(load.begin(), load.end())) / mean;
  s.cv = std::sqrt(var / kWorksetCount) / mean;
  return s;
}

struct Population {
  std::string name;
  std::string description;
  std::vector<FlowKey> keys;
};

std::vector<Population> populations(Xoshiro256& rng) {
  std::vector<Population> out;

  Population random{"random", "1,000,000 random client ip:port pairs", {}};
  for (int i = 0; i < 1'000'000; ++i) {
    random.keys.push_back(FlowKey{static_cast<std::uint32_t>(rng.next() >> 32),
                                  static_cast<std::uint16_t>(rng.between(1024, 65535)), 0});
  }
  out.push_back(std::move(random));

  Population nat{"nat", "50,000 connections from one NAT address, sequential ports", {}};
  for (std::uint32_t p = 0; p < 50'000; ++p) {
    nat.keys.push_back(FlowKey{ip(203, 0, 113, 77), static_cast<std::uint16_t>(10'000 + p), 0});
  }
  out.push_back(std::move(nat));

  Population lan{
      "subnet24", "256 clients of one /24, 200 connections each, ports 32768..60999", {}};
  for (std::uint32_t host = 0; host < 256; ++host) {
    for (int c = 0; c < 200; ++c) {
      lan.keys.push_back(FlowKey{ip(198, 51, 100, static_cast<std::uint8_t>(host)),
                                 static_cast<std::uint16_t>(rng.between(32768, 60999)), 0});
    }
  }
  out.push_back(std::move(lan));

  // One L2TP access concentrator on port 1701, 64 tunnels of 500 sessions, IDs handed out
  // sequentially from 1 (as many LNS implementations do).
  Population l2tp{"l2tp_lac", "one LAC, 64 tunnels x 500 sequential sessions", {}};
  for (std::uint32_t t = 1; t <= 64; ++t) {
    for (std::uint32_t s = 1; s <= 500; ++s) {
      l2tp.keys.push_back(FlowKey{ip(192, 0, 2, 1), phalanx::wire::kL2tpPort, (t << 16) | s});
    }
  }
  out.push_back(std::move(l2tp));
  return out;
}

Spread spread_of(const std::vector<FlowKey>& keys,
                 const std::function<std::uint16_t(const FlowKey&)>& f) {
  std::array<std::uint64_t, kWorksetCount> load{};
  for (const FlowKey& k : keys) {
    ++load[f(k)];
  }
  return measure(load, keys.size());
}

}  // namespace

int main() {
  constexpr std::uint64_t kSeed = 20240601;
  Xoshiro256 rng(kSeed);
  const std::vector<Population> pops = populations(rng);
  std::vector<std::string> lines;

  std::printf("spread over %zu worksets (seed %llu); max/mean: 1.00 is perfect\n", kWorksetCount,
              static_cast<unsigned long long>(kSeed));
  std::printf("%-10s %-9s %10s %10s %8s  %s\n", "case", "hash", "max/mean", "stddev/mean", "empty",
              "population");
  for (const Population& p : pops) {
    const Spread x = spread_of(
        p.keys, [](const FlowKey& k) { return workset_of(k, HashKind::xor_fold, 0).value(); });
    const Spread m = spread_of(p.keys, [](const FlowKey& k) {
      return workset_of(k, HashKind::mix, kDefaultMixSeed).value();
    });
    Xoshiro256 ideal_rng(kSeed ^ 0x1dea1);
    const Spread ideal = spread_of(p.keys, [&](const FlowKey&) {
      return static_cast<std::uint16_t>(ideal_rng.next() >> (64 - 10));
    });
    for (const auto& [hash, s] :
         {std::pair{"xor", x}, std::pair{"mix", m}, std::pair{"ideal", ideal}}) {
      std::printf("%-10s %-9s %10.2f %10.3f %8zu  %s (%zu flows)\n", p.name.c_str(), hash,
                  s.max_over_mean, s.cv, s.empty, p.description.c_str(), p.keys.size());
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "figure: spread_%s_xor = %.2f max/mean", p.name.c_str(),
                  x.max_over_mean);
    lines.emplace_back(buf);
    std::snprintf(buf, sizeof buf, "figure: spread_%s_mix = %.2f max/mean", p.name.c_str(),
                  m.max_over_mean);
    lines.emplace_back(buf);
    std::snprintf(buf, sizeof buf, "baseline: spread_%s_ideal = %.2f max/mean", p.name.c_str(),
                  ideal.max_over_mean);
    lines.emplace_back(buf);
    std::snprintf(buf, sizeof buf, "ratio: spread_%s_xor_over_mix = %.2f", p.name.c_str(),
                  x.max_over_mean / m.max_over_mean);
    lines.emplace_back(buf);
  }
  for (const std::string& l : lines) {
    std::printf("%s\n", l.c_str());
  }
  return 0;
}
