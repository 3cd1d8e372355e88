// Closing (RFC 9293 §3.6): active, passive and simultaneous close, the FIN in every state that
// takes one, TIME-WAIT and its expiry, FIN retransmission, abort, and resets while closing.
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

TEST(Close, ActiveClose) {
  Harness h = Harness::established(plain_config());
  h.conn.shutdown();
  EXPECT_EQ(h.conn.state(), State::fin_wait_1);
  EXPECT_EQ(h.app_send("late"), 0u);
  h.recv(seg().fin().seq(1001).ack(5001).win(10000));
  h.send(seg().seq(5001).ack(1002).win(10000));
  EXPECT_EQ(h.conn.state(), State::fin_wait_2);
  h.send(seg().fin().seq(5001).ack(1002).win(10000));
  h.recv(seg().seq(1002).ack(5002).win(9999));
  EXPECT_EQ(h.conn.state(), State::time_wait);
  const Events e = h.conn.take_events();
  EXPECT_TRUE(e.has(Event::peer_fin));
  EXPECT_TRUE(e.has(Event::closed));
  EXPECT_EQ(h.conn.close_reason(), CloseReason::normal);
  EXPECT_EQ(h.conn.next_deadline(), h.now + 10s);
  h.tick(10s);
  EXPECT_EQ(h.conn.state(), State::closed);
  h.recv_nothing();
}

TEST(Close, FinRidesTheLastDataSegment) {
  Harness h = Harness::established(plain_config());
  h.app_send("bye");
  h.conn.shutdown();
  h.recv(seg().fin().psh().seq(1001).ack(5001).win(10000).data("bye"));
  h.send(seg().seq(5001).ack(1005).win(10000));
  EXPECT_EQ(h.conn.state(), State::fin_wait_2);
}

TEST(Close, FinAndAckTogetherGoStraightToTimeWait) {
  Harness h = Harness::established(plain_config());
  h.conn.shutdown();
  h.take();
  h.send(seg().fin().seq(5001).ack(1002).win(10000));
  EXPECT_EQ(h.conn.state(), State::time_wait);
  h.recv(seg().seq(1002).ack(5002).win(9999));
}

TEST(Close, PassiveClose) {
  Harness h = Harness::established(plain_config());
  h.send(seg().fin().seq(5001).ack(1001).win(10000).data("last"));
  // A FIN is acknowledged at once. The right edge stays at 15001 (it never moves left, and a
  // few bytes are no reason to move it right): the window shrinks by the data and the FIN.
  h.recv(seg().seq(1001).ack(5006).win(9995));
  EXPECT_EQ(h.conn.state(), State::close_wait);
  const Events e = h.conn.take_events();
  EXPECT_TRUE(e.has(Event::readable));
  EXPECT_TRUE(e.has(Event::peer_fin));
  EXPECT_FALSE(h.conn.recv_finished());
  EXPECT_EQ(h.app_recv(), "last");
  EXPECT_TRUE(h.conn.recv_finished());
  // We may still send in CLOSE-WAIT.
  h.app_send("reply");
  h.recv(seg().psh().seq(1001).ack(5006).win(9995).data("reply"));
  h.conn.shutdown();
  EXPECT_EQ(h.conn.state(), State::last_ack);
  h.recv(seg().fin().seq(1006).ack(5006).win(9995));
  h.send(seg().seq(5006).ack(1007).win(10000));
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::normal);
  EXPECT_EQ(h.conn.next_deadline(), kNever);
}

TEST(Close, SimultaneousClose) {
  Harness h = Harness::established(plain_config());
  h.conn.shutdown();
  h.recv(seg().fin().seq(1001).ack(5001).win(10000));
  // The peer's FIN crosses ours: it does not acknowledge our FIN.
  h.send(seg().fin().seq(5001).ack(1001).win(10000));
  EXPECT_EQ(h.conn.state(), State::closing);
  h.recv(seg().seq(1002).ack(5002).win(9999));
  h.send(seg().seq(5002).ack(1002).win(10000));
  EXPECT_EQ(h.conn.state(), State::time_wait);
}

TEST(Close, FinIsRetransmitted) {
  Harness h = Harness::established(plain_config());
  h.conn.shutdown();
  h.recv(seg().fin().seq(1001).ack(5001).win(10000));
  h.tick(200ms);
  h.recv(seg().fin().seq(1001).ack(5001).win(10000));
  h.send(seg().seq(5001).ack(1002).win(10000));
  EXPECT_EQ(h.conn.state(), State::fin_wait_2);
}

TEST(Close, TimeWaitAcknowledgesARetransmittedFinAndRestarts) {
  Harness h = Harness::established(plain_config());
  h.conn.shutdown();
  h.take();
  h.send(seg().fin().seq(5001).ack(1002).win(10000));
  h.take();
  h.tick(6s);
  h.send(seg().fin().seq(5001).ack(1002).win(10000));  // our ACK was lost
  h.recv(seg().seq(1002).ack(5002).win(9999));
  h.tick(6s);
  EXPECT_EQ(h.conn.state(), State::time_wait);  // the 2 MSL timer restarted
  h.tick(4s);
  EXPECT_EQ(h.conn.state(), State::closed);
}

TEST(Close, TimeWaitTellsANewConnectionBySequenceNumberWithoutTimestamps) {
  // RFC 1122 4.2.2.13: without timestamps, only a SYN beyond the old sequence space.
  Harness h = Harness::established(plain_config());
  h.conn.shutdown();
  h.take();
  h.send(seg().fin().seq(5001).ack(1002).win(10000));
  h.take();
  ASSERT_EQ(h.conn.state(), State::time_wait);  // rcv_nxt 5002
  auto new_one = [&](const Seg& s) { return h.conn.accepts_new_incarnation(s.repr(true)); };
  EXPECT_TRUE(new_one(seg().syn().seq(5003).win(8000)));
  EXPECT_TRUE(new_one(seg().syn().seq(900000).win(8000)));
  EXPECT_FALSE(new_one(seg().syn().seq(5002).win(8000)));
  EXPECT_FALSE(new_one(seg().syn().seq(4000).win(8000)));
  EXPECT_FALSE(new_one(seg().syn().seq(4000).win(8000).ts(1, 0)));   // we do no timestamps
  EXPECT_FALSE(new_one(seg().syn().ack(1002).seq(9000).win(8000)));  // not a plain SYN
  EXPECT_FALSE(new_one(seg().syn().rst().seq(9000).win(8000)));
  // Our new ISS is beyond the old one's sequence space by at least an unscaled window.
  EXPECT_GT(h.conn.successor_iss(h.now) - SeqNum{1002}, 0xffff);
  // Not in other states.
  Harness e = Harness::established(plain_config());
  EXPECT_FALSE(e.conn.accepts_new_incarnation(seg().syn().seq(900000).win(8000).repr(true)));
}

TEST(Close, TimeWaitTellsANewConnectionByTimestamp) {
  // RFC 6191 §2: with timestamps on both incarnations, the timestamp decides.
  Config c = plain_config();
  c.timestamps = true;
  Harness h = Harness::accept(c, seg().syn().seq(5000).win(10000).mss(1000).ts(100, 0));
  h.take();
  h.send(seg().seq(5001).ack(1001).win(10000).ts(101, h.tsval()));
  h.conn.shutdown();
  h.take();
  h.send(seg().fin().seq(5001).ack(1002).win(10000).ts(102, h.tsval()));
  h.take();
  ASSERT_EQ(h.conn.state(), State::time_wait);
  ASSERT_EQ(h.conn.tcb().ts_recent, 102u);
  auto new_one = [&](const Seg& s) { return h.conn.accepts_new_incarnation(s.repr(true)); };
  EXPECT_TRUE(new_one(seg().syn().seq(1).win(8000).ts(103, 0)));      // newer TS, any seq
  EXPECT_TRUE(new_one(seg().syn().seq(6000).win(8000).ts(102, 0)));   // same TS, newer seq
  EXPECT_FALSE(new_one(seg().syn().seq(5000).win(8000).ts(102, 0)));  // same TS, old seq
  EXPECT_FALSE(new_one(seg().syn().seq(90000).win(8000).ts(90, 0)));  // older TS: a duplicate
  EXPECT_TRUE(new_one(seg().syn().seq(90000).win(8000)));             // no TS: by seq
  EXPECT_FALSE(new_one(seg().syn().seq(5000).win(8000)));
}

TEST(Close, TimeWaitIgnoresResets) {
  Harness h = Harness::established(plain_config());
  h.conn.shutdown();
  h.take();
  h.send(seg().fin().seq(5001).ack(1002).win(10000));
  h.take();
  h.send(seg().rst().seq(5002));
  EXPECT_EQ(h.conn.state(), State::time_wait);  // RFC 1337
}

TEST(Close, FinAfterAGapWaitsForTheGap) {
  Harness h = Harness::established(plain_config());
  h.send(seg().fin().seq(5004).ack(1001).win(10000).data("def"));
  h.recv(seg().seq(1001).ack(5001).win(10000));  // duplicate ACK for the gap
  EXPECT_EQ(h.conn.state(), State::established);
  h.send(seg().seq(5001).ack(1001).win(10000).data("abc"));
  EXPECT_EQ(h.conn.state(), State::close_wait);
  h.recv(seg().seq(1001).ack(5008).win(9993));
  EXPECT_EQ(h.app_recv(), "abcdef");
}

TEST(Close, FinInSynReceivedMovesToCloseWait) {
  Harness h = Harness::accept(plain_config(), seg().syn().seq(5000).win(8000).mss(1000));
  h.take();
  h.send(seg().fin().seq(5001).ack(1001).win(8000));
  EXPECT_EQ(h.conn.state(), State::close_wait);
  h.recv(seg().seq(1001).ack(5002).win(9999));
}

TEST(Close, ShutdownInSynReceivedSendsFinAfterTheHandshake) {
  Harness h = Harness::accept(plain_config(), seg().syn().seq(5000).win(8000).mss(1000));
  h.take();
  h.conn.shutdown();
  EXPECT_EQ(h.conn.state(), State::syn_received);
  h.send(seg().seq(5001).ack(1001).win(8000));
  EXPECT_EQ(h.conn.state(), State::fin_wait_1);
  h.recv(seg().fin().seq(1001).ack(5001).win(10000));
}

TEST(Close, ShutdownInSynSentJustCloses) {
  Harness h = Harness::connect(plain_config());
  h.take();
  h.conn.shutdown();
  EXPECT_EQ(h.conn.state(), State::closed);
  h.recv_nothing();
}

TEST(Close, AbortSendsReset) {
  Harness h = Harness::established(plain_config());
  h.app_send("unsent");
  h.conn.abort();
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::aborted);
  h.recv(seg().rst().seq(1001).ack(5001));
  h.recv_nothing();
}

TEST(Close, ResetWhileClosing) {
  Harness h = Harness::established(plain_config());
  h.conn.shutdown();
  h.take();
  h.send(seg().rst().seq(5001));
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::reset);
}

TEST(Close, DataAfterPeerFinIsIgnored) {
  Harness h = Harness::established(plain_config());
  h.send(seg().fin().seq(5001).ack(1001).win(10000));
  h.take();
  h.send(seg().seq(5002).ack(1001).win(10000).data("zombie"));
  EXPECT_EQ(h.conn.recv_available(), 0u);
}

}  // namespace
}  // namespace phalanx::tcp::test
