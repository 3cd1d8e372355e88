// RFC 6528 initial sequence numbers and the SipHash-2-4 behind them.
#include "tcp/isn.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace phalanx::tcp {
namespace {

using namespace std::chrono_literals;

IsnSecret reference_key() {
  // The key 00 01 02 ... 0f of the SipHash paper, as two little-endian words.
  return IsnSecret{{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}};
}

TEST(SipHash, ReferenceVectors) {
  std::vector<std::uint8_t> msg;
  EXPECT_EQ(siphash24(reference_key(), msg), 0x726fdb47dd0e0e31ull);
  for (std::uint8_t i = 0; i < 15; ++i) {
    msg.push_back(i);
  }
  // Appendix A of the paper: the 15-byte message 00..0e.
  EXPECT_EQ(siphash24(reference_key(), msg), 0xa129ca6149be45e5ull);
}

const wire::Ipv4Addr kA{10, 0, 0, 1};
const wire::Ipv4Addr kB{10, 0, 0, 2};

TEST(Isn, AdvancesEveryFourMicroseconds) {
  const IsnSecret k = reference_key();
  const SeqNum a = isn(k, kA, 80, kB, 40000, Time{0});
  EXPECT_EQ(isn(k, kA, 80, kB, 40000, 3us), a);
  EXPECT_EQ(isn(k, kA, 80, kB, 40000, 4us), a + 1);
  EXPECT_EQ(isn(k, kA, 80, kB, 40000, 1s), a + 250000);
}

TEST(Isn, MonotoneForOneTuple) {
  const IsnSecret k = reference_key();
  SeqNum prev = isn(k, kA, 80, kB, 40000, Time{0});
  for (int i = 1; i <= 100; ++i) {
    const SeqNum next = isn(k, kA, 80, kB, 40000, Time{0} + i * 1ms);
    EXPECT_GT(next, prev);
    prev = next;
  }
}

TEST(Isn, KeyedAndPerTuple) {
  const IsnSecret k = reference_key();
  IsnSecret other = k;
  other.key[1] ^= 1;
  const SeqNum a = isn(k, kA, 80, kB, 40000, Time{0});
  EXPECT_NE(isn(other, kA, 80, kB, 40000, Time{0}), a);
  EXPECT_NE(isn(k, kA, 80, kB, 40001, Time{0}), a);
  EXPECT_NE(isn(k, kA, 81, kB, 40000, Time{0}), a);
  EXPECT_NE(isn(k, kB, 80, kA, 40000, Time{0}), a);
  // The timestamp offset is a different function of the same tuple.
  EXPECT_NE(ts_offset(k, kA, 80, kB, 40000), a.raw());
  EXPECT_EQ(ts_offset(k, kA, 80, kB, 40000), ts_offset(k, kA, 80, kB, 40000));
}

}  // namespace
}  // namespace phalanx::tcp
