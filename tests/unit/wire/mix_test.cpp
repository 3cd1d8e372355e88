#include "wire/mix.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>

namespace phalanx::wire {
namespace {

// MurmurHash3's fmix64 (Appleby, MurmurHash3.cpp); the workset hash and the stack's tables rely
// on these exact outputs, so the values are pinned. Usable at compile time.
static_assert(fmix64(0) == 0);
static_assert(fmix64(1) == 0xb456bcfc34c2cb2cull);

TEST(Fmix64, MatchesMurmur3) {
  EXPECT_EQ(fmix64(2), 0x3abf2a20650683e7ull);
  EXPECT_EQ(fmix64(0x0123456789abcdefull), 0x87cbfbfe89022ceaull);
  EXPECT_EQ(fmix64(~std::uint64_t{0}), 0x64b5720b4b825f21ull);
}

// Flipping one input bit flips about half the output bits, whichever bit it is.
TEST(Fmix64, OneInputBitChangesAboutHalfTheOutput) {
  for (int bit = 0; bit < 64; ++bit) {
    int flipped = 0;
    for (std::uint64_t x = 1; x <= 256; ++x) {
      flipped += std::popcount(fmix64(x) ^ fmix64(x ^ (std::uint64_t{1} << bit)));
    }
    EXPECT_NEAR(flipped / 256.0, 32.0, 2.0) << "input bit " << bit;
  }
}

}  // namespace
}  // namespace phalanx::wire
