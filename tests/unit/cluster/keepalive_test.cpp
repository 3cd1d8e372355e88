#include "cluster/keepalive.hpp"

#include <gtest/gtest.h>

namespace phalanx::cluster {
namespace {

constexpr std::chrono::milliseconds kT{200};

// n = smallest in 2..20 with n * P^n < T / 1 week = 0.2 / 604800 = 3.31e-7 at T = 200 ms.
TEST(KeepaliveN, TheBoundIsTheFailureIntervalOverAWeek) {
  EXPECT_DOUBLE_EQ(false_alarm_bound(kT), 0.2 / 604800);
  EXPECT_DOUBLE_EQ(false_alarm_bound(std::chrono::seconds(1)), 1.0 / 604800);
}

TEST(KeepaliveN, NoLossNeedsTheMinimum) {
  EXPECT_EQ(keepalive_n_for_loss(0.0, kT), 2);
}

TEST(KeepaliveN, OnePerMille) {
  // n=2: 2 * 1e-6 = 2e-6; n=3: 3 * 1e-9 = 3e-9.
  EXPECT_EQ(keepalive_n_for_loss(0.001, kT), 3);
}

TEST(KeepaliveN, FivePercent) {
  // n=5: 5 * 3.125e-7 = 1.56e-6; n=6: 6 * 1.5625e-8 = 9.4e-8 < 3.31e-7.
  EXPECT_EQ(keepalive_n_for_loss(0.05, kT), 6);
}

TEST(KeepaliveN, TwentyPercent) {
  // n=10: 10 * 1.024e-7 = 1.02e-6; n=11: 11 * 2.048e-8 = 2.25e-7.
  EXPECT_EQ(keepalive_n_for_loss(0.2, kT), 11);
}

TEST(KeepaliveN, ALongerIntervalToleratesMoreAlarmsPerInterval) {
  // T = 10 s: bound 1.65e-5. 5%: n=4: 4 * 6.25e-6 = 2.5e-5; n=5: 1.56e-6.
  EXPECT_EQ(keepalive_n_for_loss(0.05, std::chrono::seconds(10)), 5);
}

TEST(KeepaliveN, HopelessLossCapsAtTwenty) {
  EXPECT_EQ(keepalive_n_for_loss(0.5, kT), 20);
  EXPECT_EQ(keepalive_n_for_loss(1.0, kT), 20);
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

// A new follower starts cautious (n = 6: six losses in a row before a false "dead") and a clean
// link brings it down to n = 2 within several hundred keepalives.
TEST(LossEstimator, StartsCautiousAndRelaxesOnACleanLink) {
  LossEstimator e;
  EXPECT_EQ(e.n(kT), 6);
  std::uint32_t seq = 0;
  for (int i = 0; i < 200; ++i) {
    e.on_sequence(seq++);
  }
  EXPECT_EQ(e.n(kT), 4);  // P = 0.05 * (127/128)^199 = 0.0105
  for (int i = 0; i < 800; ++i) {
    e.on_sequence(seq++);
  }
  EXPECT_EQ(e.n(kT), 2);
}

TEST(LossEstimator, HugeGapIsBoundedAndPStaysAProbability) {
  LossEstimator e;
  e.on_sequence(1);
  for (std::uint32_t s = 1000; s < 200000; s += 1000) {
    e.on_sequence(s);
  }
  EXPECT_LE(e.p(), 1.0);
  EXPECT_EQ(e.n(kT), 20);
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
  EXPECT_EQ(e.n(kT), 20);
}

}  // namespace
}  // namespace phalanx::cluster
