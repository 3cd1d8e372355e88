// The simulator's pseudo-random generator (STYLE 9). One seed chooses the whole run, so the
// generator is ours and fixed: xoshiro256** 1.0 (Blackman and Vigna, https://prng.di.unimi.it/
// xoshiro256starstar.c), its 256-bit state filled by splitmix64 (https://prng.di.unimi.it/
// splitmix64.c) as the authors recommend. Every derived draw (uniform, chance, duration) is
// defined here too and never uses std:: distributions, whose output differs between standard
// library versions.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>

namespace phalanx::sim {

// splitmix64: one step of the seeding generator. Advances `state` and returns the next output.
constexpr std::uint64_t splitmix64(std::uint64_t& state) {
  state += 0x9e3779b97f4a7c15ull;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Prng {
 public:
  explicit constexpr Prng(std::uint64_t seed) {
    std::uint64_t sm = seed;
    for (auto& word : s_) {
      word = splitmix64(sm);
    }
  }

  // xoshiro256**: the next 64 random bits.
  constexpr std::uint64_t next_u64() {
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

  // Uniform in [0, n) without modulo bias: draws below 2^64 mod n are rejected, so the
  // accepted range is a whole number of copies of [0, n). n == 0 is a caller bug and aborts.
  constexpr std::uint64_t uniform(std::uint64_t n) {
    if (n == 0) {
      std::abort();
    }
    const std::uint64_t threshold = (0 - n) % n;  // == 2^64 mod n
    for (;;) {
      const std::uint64_t r = next_u64();
      if (r >= threshold) {
        return r % n;
      }
    }
  }

  // Uniform in [lo, hi] (inclusive). lo > hi aborts.
  constexpr std::uint64_t between(std::uint64_t lo, std::uint64_t hi) {
    if (lo > hi) {
      std::abort();
    }
    if (hi - lo == ~std::uint64_t{0}) {
      return next_u64();
    }
    return lo + uniform(hi - lo + 1);
  }

  // A double in [0, 1) from the top 53 bits.
  constexpr double unit() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // True with probability p. Always consumes exactly one draw, whatever p, so that changing a
  // probability does not shift every later draw of the same stream.
  constexpr bool chance(double p) { return unit() < p; }

  // A duration uniform in [a, b] at nanosecond resolution. a > b aborts.
  std::chrono::nanoseconds duration(std::chrono::nanoseconds a, std::chrono::nanoseconds b) {
    if (a > b) {
      std::abort();
    }
    const auto span = static_cast<std::uint64_t>((b - a).count());
    return a + std::chrono::nanoseconds(static_cast<std::int64_t>(between(0, span)));
  }

  // An independent generator for one part of the run (network, clients, faults...), so that
  // the draws of one part do not shift when another part draws more or less.
  constexpr Prng fork() { return Prng(next_u64()); }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::array<std::uint64_t, 4> s_{};
};

}  // namespace phalanx::sim
