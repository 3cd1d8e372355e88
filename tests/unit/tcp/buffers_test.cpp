// The fixed-capacity structures behind a connection: the byte ring, the receive side's
// out-of-order ranges with their SACK blocks, and the send side's SACK scoreboard.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "tcp/reassembly.hpp"
#include "tcp/ring_buffer.hpp"
#include "tcp/sack.hpp"

namespace phalanx::tcp {
namespace {

wire::Bytes text(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
std::string str(wire::Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

TEST(RingBuffer, WrapsAndStopsSpansAtTheWrap) {
  RingBuffer r(8);
  EXPECT_EQ(r.push(text("abcdef")), 6u);
  r.pop(4);
  EXPECT_EQ(r.push(text("ghijklmn")), 6u);  // only 6 free
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(str(r.contiguous(0, 100)), "efgh");  // up to the end of storage
  EXPECT_EQ(str(r.contiguous(4, 100)), "ijkl");
  std::array<std::byte, 8> out{};
  EXPECT_EQ(r.read(1, out), 7u);
  EXPECT_EQ(str({out.data(), 7}), "fghijkl");
}

TEST(RingBuffer, WritesBeyondTheEndAndCommitsLater) {
  RingBuffer r(8);
  r.push(text("ab"));
  r.write_at(4, text("ef"));  // out of order
  EXPECT_EQ(r.size(), 2u);
  r.write_at(2, text("cd"));
  r.commit(4);
  std::array<std::byte, 6> out{};
  r.read(0, out);
  EXPECT_EQ(str(out), "abcdef");
}

TEST(Reassembly, MergesAndDeliversContiguousData) {
  Reassembly q(4);
  const SeqNum base{0xfffffff0u};  // across the wrap
  EXPECT_TRUE(q.add(base + 10, base + 20));
  EXPECT_TRUE(q.add(base + 30, base + 40));
  EXPECT_TRUE(q.add(base + 20, base + 30));  // joins both
  EXPECT_EQ(q.range_count(), 1u);
  EXPECT_EQ(q.take_contiguous(base), 0u);
  EXPECT_EQ(q.take_contiguous(base + 10), 30u);
  EXPECT_TRUE(q.empty());
}

TEST(Reassembly, SackBlocksMostRecentFirst) {
  Reassembly q(4);
  q.add(SeqNum{100}, SeqNum{200});
  q.add(SeqNum{300}, SeqNum{400});
  q.add(SeqNum{500}, SeqNum{600});
  q.add(SeqNum{150}, SeqNum{250});  // touches the first block again
  std::array<wire::TcpSackBlock, 4> b{};
  ASSERT_EQ(q.sack_blocks(b), 3u);
  EXPECT_EQ(b[0], (wire::TcpSackBlock{100, 250}));
  EXPECT_EQ(b[1], (wire::TcpSackBlock{500, 600}));
  EXPECT_EQ(b[2], (wire::TcpSackBlock{300, 400}));
}

TEST(Reassembly, IsBounded) {
  Reassembly q(2);
  EXPECT_TRUE(q.add(SeqNum{10}, SeqNum{20}));
  EXPECT_TRUE(q.add(SeqNum{30}, SeqNum{40}));
  EXPECT_FALSE(q.add(SeqNum{50}, SeqNum{60}));
  EXPECT_TRUE(q.add(SeqNum{15}, SeqNum{25}));  // merging needs no new range
}

TEST(Scoreboard, ClipsMergesAndCounts) {
  Scoreboard s;
  const wire::TcpSackBlock blocks[] = {{2000, 3000}, {4000, 5000}, {500, 900}, {5000, 9000}};
  s.add(blocks, SeqNum{1000}, SeqNum{6000});  // the old and the beyond-snd_max block are ignored
  ASSERT_EQ(s.ranges().size(), 2u);
  EXPECT_EQ(s.sacked_bytes(), 2000u);
  EXPECT_EQ(s.highest(SeqNum{1000}), SeqNum{5000});
  EXPECT_TRUE(s.is_sacked(SeqNum{2500}));
  EXPECT_FALSE(s.is_sacked(SeqNum{3000}));
  EXPECT_EQ(s.next_unsacked(SeqNum{2000}), SeqNum{3000});
  EXPECT_EQ(s.next_sacked(SeqNum{1000}, SeqNum{6000}), SeqNum{2000});
  EXPECT_EQ(s.unsacked_between(SeqNum{1000}, SeqNum{6000}), 3000u);
  const wire::TcpSackBlock join[] = {{3000, 4000}};
  s.add(join, SeqNum{1000}, SeqNum{6000});
  EXPECT_EQ(s.ranges().size(), 1u);
  s.advance(SeqNum{4500});
  EXPECT_EQ(s.sacked_bytes(), 500u);
  s.advance(SeqNum{5000});
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace phalanx::tcp
