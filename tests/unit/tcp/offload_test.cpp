// Segmentation offload (Config::max_offload_payload): new data leaves in segments of whole MSS
// pieces for the link to cut; windows, Nagle and retransmissions keep their one-MSS rules.
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

std::string chars(std::size_t n, char c = 'x') {
  return std::string(n, c);
}

Config offload_config(std::uint32_t max_payload = 4000) {
  Config c = plain_config();
  c.max_offload_payload = max_payload;
  return c;
}

TEST(Offload, ABurstLeavesInSegmentsOfWholeMssPieces) {
  Harness h = Harness::established(offload_config());
  const std::uint64_t before = h.conn.counters().segments_out;
  EXPECT_EQ(h.app_send(chars(10000)), 10000u);
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(4000)));
  h.recv(seg().seq(5001).ack(5001).win(10000).data(chars(4000)));
  h.recv(seg().psh().seq(9001).ack(5001).win(10000).data(chars(2000)));
  h.recv_nothing();
  EXPECT_EQ(h.conn.counters().segments_out - before, 10u);  // pieces on the wire, not calls
}

TEST(Offload, ALimitNotAMultipleOfTheMssIsRoundedDown) {
  Harness h = Harness::established(offload_config(3500));
  h.app_send(chars(7000));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(3000)));
  h.recv(seg().seq(4001).ack(5001).win(10000).data(chars(3000)));
  h.recv(seg().psh().seq(7001).ack(5001).win(10000).data(chars(1000)));
}

TEST(Offload, TheTailIsTheLastPieceWhenNagleAllowsIt) {
  Harness h = Harness::established(offload_config());
  h.app_send(chars(2500));
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data(chars(2500)));
}

TEST(Offload, NagleHoldsAShortTailAsItWouldASegmentOfItsOwn) {
  Harness h = Harness::established(offload_config());
  h.app_send("a");
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("a"));  // a small segment unacked
  h.app_send(chars(2500));
  h.recv(seg().seq(1002).ack(5001).win(10000).data(chars(2000)));
  h.recv_nothing();
  h.send(seg().seq(5001).ack(1002).win(10000));
  h.recv(seg().psh().seq(3002).ack(5001).win(10000).data(chars(500)));
}

TEST(Offload, WithNodelayTheTailIsTheLastPiece) {
  Harness h = Harness::established(offload_config());
  h.conn.set_nodelay(true);
  h.app_send(chars(2500));
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data(chars(2500)));
}

TEST(Offload, AWindowCutLeavesTheRuntForLater) {
  Harness h = Harness::established(offload_config(), 2500);
  h.app_send(chars(6000));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(2000)));
  h.recv_nothing();  // 500 bytes of window: below half the largest window, sender SWS waits
  h.send(seg().seq(5001).ack(3001).win(2500));
  h.recv(seg().seq(3001).ack(5001).win(10000).data(chars(2000)));
}

TEST(Offload, TheCongestionWindowBoundsTheBurst) {
  Config c = offload_config(10000);
  c.initial_cwnd_segments = 3;
  c.send_buffer_size = 20000;
  Harness h = Harness::established(c, 20000);
  h.app_send(chars(8000));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(3000)));
  h.recv_nothing();
}

TEST(Offload, RetransmissionsAreOneMss) {
  Harness h = Harness::established(offload_config());
  h.app_send(chars(4000));
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data(chars(4000)));
  h.to_deadline();  // RTO
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000)));
  h.recv_nothing();  // cwnd is one segment after a timeout
}

TEST(Offload, OffIsOneMss) {
  Harness h = Harness::established(offload_config(0));
  h.app_send(chars(2000));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000)));
  h.recv(seg().psh().seq(2001).ack(5001).win(10000).data(chars(1000)));
}

// Receive offload (GRO, a veth peer's TSO) hands us several of the peer's segments merged
// into one: it counts as that many full-sized segments for the every-second-segment ACK rule
// (RFC 1122 4.2.3.2), as Linux counts bytes beyond one rcv_mss; otherwise each merged burst
// waits for the delayed-ACK timer.
TEST(Offload, AMergedSegmentOfSeveralMssIsAckedAtOnce) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(1001).win(10000).data(chars(3000)));
  h.recv(seg().seq(1001).ack(8001).win(7000));
}

}  // namespace
}  // namespace phalanx::tcp::test
