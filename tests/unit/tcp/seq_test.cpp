#include "tcp/seq.hpp"

#include <gtest/gtest.h>

namespace phalanx::tcp {
namespace {

TEST(SeqNum, ComparesAcrossWrap) {
  const SeqNum a{0xfffffff0u};
  const SeqNum b{0x00000010u};
  EXPECT_LT(a, b);
  EXPECT_GT(b, a);
  EXPECT_LE(a, a);
  EXPECT_GE(b, b);
  EXPECT_EQ(b - a, 0x20);
  EXPECT_EQ(a - b, -0x20);
  EXPECT_EQ(a + 0x20u, b);
  EXPECT_EQ(b - 0x20u, a);
  EXPECT_EQ(seq_len(a, b), 0x20u);
}

TEST(SeqNum, MinMaxAndRange) {
  const SeqNum a{0xffffff00u};
  const SeqNum b{0x100u};
  EXPECT_EQ(seq_max(a, b), b);
  EXPECT_EQ(seq_min(a, b), a);
  EXPECT_TRUE(seq_in(SeqNum{0}, a, b));
  EXPECT_TRUE(seq_in(a, a, b));
  EXPECT_FALSE(seq_in(b, a, b));
  EXPECT_FALSE(seq_in(SeqNum{0x200u}, a, b));
}

TEST(SeqNum, HalfSpaceIsTheLimit) {
  const SeqNum a{0};
  EXPECT_LT(a, SeqNum{0x7fffffffu});
  EXPECT_GT(a, SeqNum{0x80000001u});  // more than 2^31 ahead reads as behind
  SeqNum c{0xffffffffu};
  c += 1;
  EXPECT_EQ(c.raw(), 0u);
  c -= 1;
  EXPECT_EQ(c.raw(), 0xffffffffu);
}

}  // namespace
}  // namespace phalanx::tcp
