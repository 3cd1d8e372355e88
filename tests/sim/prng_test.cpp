#include "sim/prng.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>

namespace phalanx::sim {
namespace {

// Expected values come from an independent transcription of the reference C code
// (prng.di.unimi.it/splitmix64.c and xoshiro256starstar.c), in Python:
//
//   M = (1 << 64) - 1
//   def sm(s):
//       s = (s + 0x9e3779b97f4a7c15) & M; z = s
//       z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
//       z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
//       return s, z ^ (z >> 31)
//   def rotl(x, k): return ((x << k) | (x >> (64 - k))) & M
//   def nxt(s):
//       r = (rotl((s[1] * 5) & M, 7) * 9) & M; t = (s[1] << 17) & M
//       s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
//       s[3] = rotl(s[3], 45); return r
//   state = four successive sm() outputs from the seed
//
// splitmix64 from 0 starting with 0xe220a8397b1dcdaf is also the value published with the
// reference code.
TEST(Splitmix64, MatchesReferenceFromZero) {
  std::uint64_t s = 0;
  EXPECT_EQ(splitmix64(s), 0xe220a8397b1dcdafull);
  EXPECT_EQ(splitmix64(s), 0x6e789e6aa1b965f4ull);
  EXPECT_EQ(splitmix64(s), 0x06c45d188009454full);
}

TEST(Prng, MatchesReferenceSeedZero) {
  Prng p(0);
  const std::array<std::uint64_t, 4> want = {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull,
                                             0x1a5f849d4933e6e0ull, 0x6aa594f1262d2d2cull};
  for (auto w : want) {
    EXPECT_EQ(p.next_u64(), w);
  }
}

TEST(Prng, MatchesReferenceSeed42) {
  Prng p(42);
  const std::array<std::uint64_t, 4> want = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
                                             0xae17533239e499a1ull, 0xecb8ad4703b360a1ull};
  for (auto w : want) {
    EXPECT_EQ(p.next_u64(), w);
  }
}

TEST(Prng, SameSeedSameStream) {
  Prng a(7);
  Prng b(7);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(a.next_u64(), b.next_u64());
  }
}

TEST(Prng, UniformStaysInRangeAndCoversIt) {
  Prng p(1);
  std::array<int, 7> seen{};
  for (int i = 0; i < 7000; ++i) {
    const auto v = p.uniform(7);
    ASSERT_LT(v, 7u);
    ++seen[v];
  }
  for (int c : seen) {
    EXPECT_GT(c, 800);  // ~1000 each
    EXPECT_LT(c, 1200);
  }
  EXPECT_EQ(p.uniform(1), 0u);
}

TEST(Prng, UniformRejectsTheBiasedTail) {
  // n = 2^63 + 1: threshold = 2^64 mod n = 2^63 - 1; about half of all draws are rejected, and
  // what is accepted still lands in range.
  Prng p(3);
  const std::uint64_t n = (std::uint64_t{1} << 63) + 1;
  for (int i = 0; i < 100; ++i) {
    ASSERT_LT(p.uniform(n), n);
  }
}

TEST(Prng, ChanceExtremes) {
  Prng p(5);
  int hits = 0;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(p.chance(0.0));
    EXPECT_TRUE(p.chance(1.0));
    hits += p.chance(0.25) ? 1 : 0;
  }
  EXPECT_GT(hits, 200);
  EXPECT_LT(hits, 300);
}

TEST(Prng, ChanceConsumesOneDrawWhateverP) {
  Prng a(9);
  Prng b(9);
  (void)a.chance(0.0);
  (void)b.chance(0.9);
  EXPECT_EQ(a.next_u64(), b.next_u64());
}

TEST(Prng, DurationIsInclusive) {
  using std::chrono::nanoseconds;
  Prng p(11);
  bool lo = false;
  bool hi = false;
  for (int i = 0; i < 1000; ++i) {
    const auto d = p.duration(nanoseconds(5), nanoseconds(8));
    ASSERT_GE(d, nanoseconds(5));
    ASSERT_LE(d, nanoseconds(8));
    lo = lo || d == nanoseconds(5);
    hi = hi || d == nanoseconds(8);
  }
  EXPECT_TRUE(lo);
  EXPECT_TRUE(hi);
  EXPECT_EQ(p.duration(nanoseconds(3), nanoseconds(3)), nanoseconds(3));
}

TEST(Prng, ForkIsDeterministicAndIndependentOfParentAfterwards) {
  Prng a(13);
  Prng b(13);
  Prng fa = a.fork();
  Prng fb = b.fork();
  (void)a.next_u64();  // the parent's later draws do not affect the child
  EXPECT_EQ(fa.next_u64(), fb.next_u64());
}

}  // namespace
}  // namespace phalanx::sim
