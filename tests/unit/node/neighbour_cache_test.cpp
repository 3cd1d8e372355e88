// NeighbourCache: a fixed table; active clients keep their slots, idle ones make room, and
// addresses that follow each other (what a flood of spoofed sources sends) spread over it.
#include "node/neighbour_cache.hpp"

#include <gtest/gtest.h>

namespace phalanx::node {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Learned = NeighbourCache::Learned;

constexpr wire::MacAddr kMac{{0x02, 0, 0, 0, 0, 1}};
constexpr wire::MacAddr kOtherMac{{0x02, 0, 0, 0, 0, 2}};

TEST(NeighbourCache, LearnsRefreshesAndFinds) {
  NeighbourCache c(16, seconds(1));
  const wire::Ipv4Addr a{198, 18, 0, 101};
  EXPECT_EQ(c.learn(Time{}, a, kMac), Learned::inserted);
  EXPECT_EQ(c.learn(Time{}, a, kOtherMac), Learned::refreshed);
  EXPECT_EQ(c.find(a), kOtherMac);
  EXPECT_EQ(c.find(wire::Ipv4Addr{198, 18, 0, 102}), std::nullopt);
  EXPECT_EQ(c.size(), 1u);
}

TEST(NeighbourCache, AnActiveClientKeepsItsSlotAnIdleOneMakesRoom) {
  NeighbourCache c(2, seconds(1));  // two slots: collisions guaranteed
  std::vector<wire::Ipv4Addr> held;
  for (std::uint32_t i = 1; held.size() < 2; ++i) {
    if (c.learn(Time{}, wire::Ipv4Addr{i}, kMac) == Learned::inserted) {
      held.push_back(wire::Ipv4Addr{i});
    }
  }
  std::size_t refused = 0;
  for (std::uint32_t i = 1000; i < 1100; ++i) {
    refused += c.learn(milliseconds(500), wire::Ipv4Addr{i}, kOtherMac) == Learned::refused;
  }
  EXPECT_EQ(refused, 100u) << "newcomers pushed out clients seen within the hold";
  EXPECT_EQ(c.find(held[0]), kMac);
  EXPECT_EQ(c.learn(seconds(2), wire::Ipv4Addr{5000}, kOtherMac), Learned::replaced);
  EXPECT_EQ(c.size(), 2u);
}

TEST(NeighbourCache, ConsecutiveAddressesSpreadOverTheSlots) {
  NeighbourCache c(65536, seconds(1));
  std::size_t refused = 0;
  for (std::uint32_t i = 0; i < 60'000; ++i) {
    refused +=
        c.learn(Time{}, wire::Ipv4Addr{0x0a000000u + 1'000'000u + i}, kMac) == Learned::refused;
  }
  // A random function would refuse about 20,000 of them (birthday collisions); the middle bits
  // of the product, used at first, refused 51,000.
  EXPECT_LT(refused, 6'000u) << "the hash piles consecutive addresses into few slots";
}

}  // namespace
}  // namespace phalanx::node
