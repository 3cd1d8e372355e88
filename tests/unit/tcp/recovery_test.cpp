// Loss recovery: fast retransmit after three duplicate ACKs and NewReno partial ACKs (RFC 6582),
// SACK-based retransmission of holes (RFC 6675), the retransmission timer with backoff and
// Karn's rule (RFC 6298), and congestion windows (RFC 5681).
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

std::string chars(std::size_t n, char c = 'x') {
  return std::string(n, c);
}

// Sends 5000 bytes as five segments (1001, 2001, ..., 5001).
void send_five(Harness& h) {
  h.app_send(chars(1000, 'a') + chars(1000, 'b') + chars(1000, 'c') + chars(1000, 'd') +
             chars(1000, 'e'));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000, 'a')));
  h.recv(seg().seq(2001).ack(5001).win(10000).data(chars(1000, 'b')));
  h.recv(seg().seq(3001).ack(5001).win(10000).data(chars(1000, 'c')));
  h.recv(seg().seq(4001).ack(5001).win(10000).data(chars(1000, 'd')));
  h.recv(seg().psh().seq(5001).ack(5001).win(10000).data(chars(1000, 'e')));
  h.recv_nothing();
}

TEST(Recovery, InitialWindowIsTenSegments) {
  Harness h = Harness::established(plain_config());
  EXPECT_EQ(h.conn.cwnd(), 10000u);
}

TEST(Recovery, FastRetransmitAfterThreeDupAcksAndNewRenoPartialAck) {
  Harness h = Harness::established(plain_config());
  send_five(h);
  // Segments 1001 and 3001 are lost; the peer repeats its ACK for each later arrival.
  h.send(seg().seq(5001).ack(1001).win(10000));
  h.send(seg().seq(5001).ack(1001).win(10000));
  h.recv_nothing();
  h.send(seg().seq(5001).ack(1001).win(10000));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000, 'a')));
  EXPECT_EQ(h.conn.counters().fast_retransmits, 1u);
  EXPECT_EQ(h.conn.ssthresh(), 2500u);         // half the flight (5000)
  EXPECT_EQ(h.conn.cwnd(), 2500u + 3 * 1000);  // inflated by the three duplicates
  // A fourth duplicate inflates cwnd further.
  h.send(seg().seq(5001).ack(1001).win(10000));
  EXPECT_EQ(h.conn.cwnd(), 6500u);
  // Partial ACK: up to the second hole. Its segment goes out at once, cwnd deflates.
  h.send(seg().seq(5001).ack(3001).win(10000));
  h.recv(seg().seq(3001).ack(5001).win(10000).data(chars(1000, 'c')));
  EXPECT_EQ(h.conn.cwnd(), 6500u - 2000 + 1000);
  // Full ACK: recovery ends with cwnd = min(ssthresh, max(flight, MSS) + MSS).
  h.send(seg().seq(5001).ack(6001).win(10000));
  EXPECT_EQ(h.conn.cwnd(), 2000u);
  EXPECT_EQ(h.conn.ssthresh(), 2500u);
  h.recv_nothing();
  EXPECT_EQ(h.conn.next_deadline(), kNever);
}

TEST(Recovery, DupAcksNeedOutstandingDataAndAnUnchangedWindow) {
  Harness h = Harness::established(plain_config());
  send_five(h);
  h.send(seg().seq(5001).ack(1001).win(10000));
  h.send(seg().seq(5001).ack(1001).win(9000));            // a window update, not a duplicate
  h.send(seg().seq(5001).ack(1001).win(9000).data("x"));  // carries data: not a duplicate
  h.take();                                               // (its delayed ACK aside)
  EXPECT_EQ(h.conn.counters().dup_acks, 1u);
  EXPECT_EQ(h.conn.counters().fast_retransmits, 0u);
}

Harness established_with_sack() {
  Config c = plain_config();
  c.sack = true;
  Harness h = Harness::connect(c);
  h.recv(seg().syn().seq(1000).win(10000).mss(1000).sack_ok());
  h.send(seg().syn().seq(5000).ack(1001).win(10000).mss(1000).sack_ok());
  h.recv(seg().seq(1001).ack(5001).win(10000));
  return h;
}

TEST(Recovery, SackRetransmitsEveryHoleAtOnce) {
  Harness h = established_with_sack();
  send_five(h);
  // 1001 and 3001 are lost.
  h.send(seg().seq(5001).ack(1001).win(10000).sack(2001, 3001));
  h.send(seg().seq(5001).ack(1001).win(10000).sack(4001, 5001).sack(2001, 3001));
  h.recv_nothing();
  h.send(seg().seq(5001).ack(1001).win(10000).sack(4001, 6001).sack(2001, 3001));
  // cwnd = ssthresh = 2500; pipe counts only the retransmissions: both holes go.
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000, 'a')));
  h.recv(seg().seq(3001).ack(5001).win(10000).data(chars(1000, 'c')));
  h.recv_nothing();
  EXPECT_EQ(h.conn.cwnd(), 2500u);
  h.send(seg().seq(5001).ack(6001).win(10000));
  EXPECT_EQ(h.conn.cwnd(), 2000u);
  EXPECT_EQ(h.conn.counters().retransmits, 2u);
}

TEST(Recovery, RetransmissionTimeoutBacksOffAndKarnKeepsIt) {
  Harness h = Harness::established(plain_config());
  EXPECT_EQ(h.conn.rto(), 200ms);  // from the handshake's sample, raised to rto_min
  h.app_send("abc");
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("abc"));
  h.tick(199ms);
  h.recv_nothing();
  h.tick(1ms);
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("abc"));
  EXPECT_EQ(h.conn.cwnd(), 1000u);  // one segment after a timeout
  EXPECT_EQ(h.conn.ssthresh(), 2000u);
  h.tick(399ms);
  h.recv_nothing();
  h.tick(1ms);
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("abc"));
  EXPECT_EQ(h.conn.rto(), 800ms);
  // The ACK of a retransmitted segment gives no sample (Karn): the backoff stays.
  h.tick(5ms);
  h.send(seg().seq(5001).ack(1004).win(10000));
  EXPECT_EQ(h.conn.rto(), 800ms);
  // A fresh segment is timed: 30 ms -> RTO = 30 + 4 * 15 = 90 ms, raised to 200 ms.
  h.app_send("d");
  h.recv(seg().psh().seq(1004).ack(5001).win(10000).data("d"));
  h.tick(30ms);
  h.send(seg().seq(5001).ack(1005).win(10000));
  EXPECT_EQ(h.conn.rto(), 200ms);
}

TEST(Recovery, RtoGrowsWithMeasuredRtt) {
  Harness h = Harness::established(plain_config());
  h.conn.set_nodelay(true);
  for (int i = 0; i < 3; ++i) {
    h.app_send("x");
    h.take();
    h.tick(150ms);
    h.send(seg().seq(5001).ack(1002 + i).win(10000));
  }
  // After the handshake's 0 ms sample, three of 150 ms lift the RTO well above the floor.
  EXPECT_GT(h.conn.rto(), 300ms);
  EXPECT_LT(h.conn.rto(), 400ms);
  EXPECT_EQ(h.conn.counters().rto_expiries, 0u);
}

TEST(Recovery, TooManyRetransmissionsTimeOut) {
  Config c = plain_config();
  c.data_retries = 3;
  Harness h = Harness::established(c);
  h.app_send("abc");
  h.take();
  for (int i = 0; i < 3; ++i) {
    h.to_deadline();
    h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("abc"));
  }
  h.to_deadline();
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::timeout);
  EXPECT_TRUE(h.conn.take_events().has(Event::closed));
  h.recv_nothing();
}

TEST(Recovery, GoBackNAfterTimeoutThenSlowStart) {
  Harness h = Harness::established(plain_config());
  send_five(h);
  h.tick(200ms);
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000, 'a')));
  h.recv_nothing();  // cwnd is one segment
  h.send(seg().seq(5001).ack(2001).win(10000));
  EXPECT_EQ(h.conn.cwnd(), 2000u);  // slow start
  h.recv(seg().seq(2001).ack(5001).win(10000).data(chars(1000, 'b')));
  h.recv(seg().seq(3001).ack(5001).win(10000).data(chars(1000, 'c')));
  h.recv_nothing();
}

TEST(Recovery, CubicGrowsAndBacksOff) {
  Config c = plain_config();
  c.congestion = CongestionAlgorithm::cubic;
  Harness h = Harness::established(c);
  send_five(h);
  h.tick(200ms);
  h.take();
  EXPECT_EQ(h.conn.cwnd(), 1000u);
  EXPECT_EQ(h.conn.ssthresh(), 7000u);  // beta = 0.7 of the 10-segment window
}

}  // namespace
}  // namespace phalanx::tcp::test
