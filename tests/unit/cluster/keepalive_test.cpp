#include "cluster/keepalive.hpp"

#include <gtest/gtest.h>

namespace phalanx::cluster {
namespace {

// n = smallest in 2..20 with n * P^n < 1/3600 (= 2.78e-4).
TEST(KeepaliveN, NoLossNeedsTheMinimum) {
  EXPECT_EQ(keepalive_n_for_loss(0.0), 2);
}

TEST(KeepaliveN, FivePercent) {
  // n=2: 2 * 0.0025 = 5e-3; n=3: 3 * 1.25e-4 = 3.75e-4; n=4: 4 * 6.25e-6 = 2.5e-5 < 2.78e-4.
  EXPECT_EQ(keepalive_n_for_loss(0.05), 4);
}

TEST(KeepaliveN, TwentyPercent) {
  // n=6: 6 * 6.4e-5 = 3.84e-4; n=7: 7 * 1.28e-5 = 8.96e-5.
  EXPECT_EQ(keepalive_n_for_loss(0.2), 7);
}

TEST(KeepaliveN, FiftyPercent) {
  // n=15: 15 / 32768 = 4.58e-4; n=16: 16 / 65536 = 2.44e-4.
  EXPECT_EQ(keepalive_n_for_loss(0.5), 16);
}

TEST(KeepaliveN, HopelessLossCapsAtTwenty) {
  EXPECT_EQ(keepalive_n_for_loss(0.7), 20);
  EXPECT_EQ(keepalive_n_for_loss(1.0), 20);
}

TEST(LossEstimator, FirstSequenceOnlyRemembered) {
  LossEstimator e;
  EXPECT_TRUE(e.on_sequence(100));
  EXPECT_EQ(e.p(), kInitialLossEstimate);
}

TEST(LossEstimator, OneGapAddsOneOver128) {
  LossEstimator e;
  e.on_sequence(1);
  e.on_sequence(3);  // 1 missing
  const double p1 = kInitialLossEstimate * 127 / 128 + 1.0 / 128;
  EXPECT_DOUBLE_EQ(e.p(), p1);
  e.on_sequence(4);  // S = 0
  EXPECT_DOUBLE_EQ(e.p(), p1 * 127 / 128);
}

TEST(LossEstimator, DuplicatesAndOlderSequencesAreIgnored) {
  LossEstimator e;
  e.on_sequence(10);
  e.on_sequence(12);
  const double p = e.p();
  EXPECT_FALSE(e.on_sequence(12));
  EXPECT_FALSE(e.on_sequence(11));
  EXPECT_FALSE(e.on_sequence(5));
  EXPECT_EQ(e.p(), p);
  EXPECT_TRUE(e.on_sequence(13));  // still compared against 12
  EXPECT_DOUBLE_EQ(e.p(), p * 127 / 128);
}

TEST(LossEstimator, SequenceWrapsAround) {
  LossEstimator e;
  e.on_sequence(0xffffffffu);
  EXPECT_TRUE(e.on_sequence(0));
  EXPECT_DOUBLE_EQ(e.p(), kInitialLossEstimate * 127 / 128);  // S = 0: no loss across the wrap
}

// A new follower starts cautious (n = 4: four losses in a row before a false "dead") and a clean
// link brings it down to n = 2 within a few hundred keepalives.
TEST(LossEstimator, StartsCautiousAndRelaxesOnACleanLink) {
  LossEstimator e;
  EXPECT_EQ(e.n(), 4);
  std::uint32_t seq = 0;
  for (int i = 0; i < 300; ++i) {
    e.on_sequence(seq++);
  }
  EXPECT_EQ(e.n(), 2);
}

TEST(LossEstimator, HugeGapIsBoundedAndPStaysAProbability) {
  LossEstimator e;
  e.on_sequence(1);
  for (std::uint32_t s = 1000; s < 200000; s += 1000) {
    e.on_sequence(s);
  }
  EXPECT_LE(e.p(), 1.0);
  EXPECT_EQ(e.n(), 20);
}

TEST(LossEstimator, SteadyLossOfOneInThreeConvergesToOneHalf) {
  // Every third keepalive lost: every other reception carries S = 1.
  LossEstimator e;
  std::uint32_t seq = 0;
  for (int i = 0; i < 3000; ++i) {
    seq += (i % 2 == 0) ? 1 : 2;
    e.on_sequence(seq);
  }
  EXPECT_NEAR(e.p(), 0.5, 0.01);
  EXPECT_EQ(e.n(), 16);
}

}  // namespace
}  // namespace phalanx::cluster
