// The whole-member simulator (issue 10): ClusterNode members serving TCP peers on the virtual
// segment, judged by NodeCheckers.
#include <gtest/gtest.h>

#include <vector>

#include "sim/node_checkers.hpp"
#include "sim/node_scenarios.hpp"
#include "sim/node_world.hpp"
#include "sim/sim_content.hpp"

namespace phalanx::sim {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The scenario over a few seeds: every connection ends, every byte checks, only the crashed
// follower's connections are lost.
TEST(NodeWorld, FollowerCrashUnderLoad) {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    WholeOptions o;
    o.seed = seed;
    const WholeReport r = run_follower_crash_under_load(o);
    EXPECT_TRUE(r.ok()) << format_report(r);
    EXPECT_EQ(r.opened, 100u);
    EXPECT_TRUE(r.victim.has_value());
    EXPECT_EQ(r.lost, r.lost_on_victim) << format_report(r);
    EXPECT_GT(r.completed, 0u);
  }
}

// No crash: nothing is lost.
TEST(NodeWorld, NoFaultLosesNothing) {
  WholeOptions o;
  o.seed = 7;
  o.connections = 40;
  o.crash_follower = false;
  const WholeReport r = run_follower_crash_under_load(o);
  EXPECT_TRUE(r.ok()) << format_report(r);
  EXPECT_EQ(r.opened, 40u);
  EXPECT_EQ(r.completed, 40u) << format_report(r);
}

// Same seed, same run; another seed, another run.
TEST(NodeWorld, SameSeedSameDigest) {
  WholeOptions o;
  o.seed = 11;
  o.connections = 30;
  const WholeReport a = run_follower_crash_under_load(o);
  const WholeReport b = run_follower_crash_under_load(o);
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.lost, b.lost);
  o.seed = 12;
  const WholeReport c = run_follower_crash_under_load(o);
  EXPECT_NE(a.digest, c.digest);
}

// --- the checkers catch what they are for
// ----------------------------------------------------------

PeerConnection connection(std::uint64_t key) {
  PeerConnection c;
  c.peer = 0;
  c.id = 0;
  c.kind = StreamKind::echo;
  c.key = key;
  c.length = 100;
  return c;
}

TEST(NodeCheckers, RightBytesPass) {
  NodeCheckers k;
  const PeerConnection c = connection(echo_key(1));
  std::vector<std::byte> b(100);
  fill_content(c.key, 0, b);
  k.on_stream_bytes(c, 0, std::span(b).first(40));
  k.on_stream_bytes(c, 40, std::span(b).subspan(40));
  EXPECT_EQ(k.violation_count(), 0u);
  EXPECT_EQ(k.bytes_checked(), 100u);
}

TEST(NodeCheckers, CorruptedByteIsCaught) {
  NodeCheckers k;
  const PeerConnection c = connection(echo_key(1));
  std::vector<std::byte> b(100);
  fill_content(c.key, 0, b);
  b[57] ^= std::byte{0x01};
  k.on_stream_bytes(c, 0, b);
  ASSERT_EQ(k.violation_count(), 1u);
  EXPECT_NE(k.violations()[0].find("offset 57"), std::string::npos) << k.violations()[0];
}

TEST(NodeCheckers, GapAndDuplicateAreCaught) {
  NodeCheckers k;
  const PeerConnection c = connection(echo_key(2));
  std::vector<std::byte> b(100);
  fill_content(c.key, 0, b);
  k.on_stream_bytes(c, 0, std::span(b).first(10));
  k.on_stream_bytes(c, 20, std::span(b).subspan(20, 10));  // a gap
  k.on_stream_bytes(c, 25, std::span(b).subspan(25, 10));  // an overlap
  EXPECT_EQ(k.violation_count(), 2u);
}

// End to end: members that serve a file with one byte flipped are caught at that byte.
TEST(NodeCheckers, CorruptedFileEndToEndIsCaught) {
  WholeOptions o;
  o.seed = 3;
  o.connections = 10;
  o.crash_follower = false;
  o.tweak = [](NodeWorldConfig& c) { c.corrupt_file_byte = 777; };
  const WholeReport r = run_follower_crash_under_load(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.violations[0].find("byte at offset 777"), std::string::npos) << format_report(r);
}

}  // namespace
}  // namespace phalanx::sim
