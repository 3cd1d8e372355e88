// Output commit (DESIGN §6): with an ack limit set, no segment acknowledges bytes or opens window
// beyond it; a pure ACK that would repeat itself waits, and leaves at once when the limit moves.
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

// From Harness::established(): snd_nxt 1001, rcv_nxt 5001, windows 10000 both ways (right edge
// 15001), MSS 1000.

TEST(AckLimit, AckStopsAtTheLimitUntilItMoves) {
  Harness h = Harness::established(plain_config());
  h.conn.set_ack_limit(h.conn.ack_wanted());
  EXPECT_EQ(h.conn.ack_limit(), (AckLimit{SeqNum{5001}, SeqNum{15001}}));
  // Two full segments would be acknowledged at once; the limit holds the ACK back.
  h.send(seg().seq(5001).ack(1001).win(10000).data(std::string(1000, 'a')));
  h.send(seg().seq(6001).ack(1001).win(10000).data(std::string(1000, 'b')));
  h.recv_nothing();
  h.tick(200ms);  // the delayed ACK timer too
  h.recv_nothing();
  EXPECT_GE(h.conn.counters().acks_held, 1u);
  EXPECT_EQ(h.conn.ack_wanted().ack, SeqNum{7001});
  // The backup holds the first segment: its ACK leaves at the next poll, no further.
  h.conn.set_ack_limit(AckLimit{SeqNum{6001}, SeqNum{15001}});
  h.recv(seg().seq(1001).ack(6001).win(9000));
  h.recv_nothing();
  // Then everything.
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.recv(seg().seq(1001).ack(7001).win(8000));
  h.recv_nothing();
}

TEST(AckLimit, DataLeavesWithTheHeldAck) {
  Harness h = Harness::established(plain_config());
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.send(seg().seq(5001).ack(1001).win(10000).data("abcd"));
  h.app_send("xyz");
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("xyz"));
  h.tick(50ms);  // past the delayed ACK, before the retransmission timeout
  h.recv_nothing();
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.recv(seg().seq(1004).ack(5005).win(9996));
}

TEST(AckLimit, WindowNeverOpensBeyondTheLimit) {
  Harness h = Harness::established(plain_config());
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.send(seg().seq(5001).ack(1001).win(10000).data(std::string(1000, 'a')));
  h.send(seg().seq(6001).ack(1001).win(10000).data(std::string(1000, 'b')));
  EXPECT_EQ(h.app_recv().size(), 2000u);
  // The backup holds rcv_nxt 7001, but not yet a window edge beyond 15001.
  EXPECT_EQ(h.conn.ack_wanted(), (AckLimit{SeqNum{7001}, SeqNum{17001}}));
  h.conn.set_ack_limit(AckLimit{SeqNum{7001}, SeqNum{15001}});
  h.recv(seg().seq(1001).ack(7001).win(8000));
  h.recv_nothing();
  // The window update follows the limit.
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.recv(seg().seq(1001).ack(7001).win(10000));
  h.recv_nothing();
}

TEST(AckLimit, NothingHeldMeansNothingDeferred) {
  // A limit at or beyond what we would say changes nothing: an out-of-window segment is still
  // answered with an ACK.
  Harness h = Harness::established(plain_config());
  h.conn.set_ack_limit(AckLimit{SeqNum{9001}, SeqNum{20001}});
  h.send(seg().seq(4000).ack(1001).win(10000).data("old"));
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.counters().acks_held, 0u);
}

TEST(AckLimit, LiftingTheLimitReleasesTheAck) {
  Harness h = Harness::established(plain_config());
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.send(seg().fin().seq(5001).ack(1001).win(10000));
  h.recv_nothing();  // the ACK of the FIN is held too
  EXPECT_EQ(h.conn.state(), State::close_wait);
  h.conn.set_ack_limit(std::nullopt);
  h.recv(seg().seq(1001).ack(5002).win(9999));
}

// Nothing is replicated once both streams are over: entering TIME-WAIT lifts the limits, and
// the ACK of the peer's FIN leaves (else the peer would sit in LAST-ACK, resending its FIN).
TEST(AckLimit, TimeWaitLiftsTheLimits) {
  Harness h = Harness::established(plain_config());
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.conn.set_send_limit(SeqNum{1001});
  h.conn.shutdown();
  h.recv(seg().fin().seq(1001).ack(5001).win(10000));  // the FIN sits on the send limit
  h.send(seg().fin().seq(5001).ack(1002).win(10000));
  EXPECT_EQ(h.conn.state(), State::time_wait);
  h.recv(seg().seq(1002).ack(5002).win(9999));
  EXPECT_FALSE(h.conn.ack_limit());
  EXPECT_FALSE(h.conn.send_limit());
}

// The same from LAST-ACK. The peer's FIN came, its ACK held by the limit; our FIN leaves (the
// application closed) acknowledging only the data, and the peer, now in CLOSING, acknowledges
// our FIN. Closing there left the peer's FIN unacknowledged: its retransmission found no
// connection and was reset (e2e cluster_echo_takeover_test under load). Both streams are over:
// the limits go, the ACK leaves, and the connection waits in TIME-WAIT to answer the peer's
// FIN again.
TEST(AckLimit, LastAckWithTheFinAckHeldSendsItAndWaits) {
  Harness h = Harness::established(plain_config());
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.send(seg().fin().seq(5001).ack(1001).win(10000));
  h.recv_nothing();  // held
  h.conn.shutdown();
  EXPECT_EQ(h.conn.state(), State::last_ack);
  h.recv(seg().fin().seq(1001).ack(5001).win(10000));  // not the peer's FIN: still held
  h.send(seg().seq(5002).ack(1002).win(10000));        // CLOSING: our FIN acknowledged
  EXPECT_EQ(h.conn.state(), State::time_wait);
  h.recv(seg().seq(1002).ack(5002).win(9999));
  EXPECT_FALSE(h.conn.ack_limit());
  h.send(seg().fin().seq(5001).ack(1002).win(10000));  // the peer's FIN again: answered
  h.recv(seg().seq(1002).ack(5002).win(9999));
}

// Without a held ACK, LAST-ACK ends as RFC 9293 says: closed once our FIN is acknowledged.
TEST(AckLimit, LastAckWithNothingHeldCloses) {
  Harness h = Harness::established(plain_config());
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.send(seg().fin().seq(5001).ack(1001).win(10000));
  h.conn.set_ack_limit(h.conn.ack_wanted());
  h.recv(seg().seq(1001).ack(5002).win(9999));
  h.conn.shutdown();
  h.recv(seg().fin().seq(1001).ack(5002).win(9999));
  h.send(seg().seq(5002).ack(1002).win(10000));
  EXPECT_EQ(h.conn.state(), State::closed);
}

}  // namespace
}  // namespace phalanx::tcp::test
