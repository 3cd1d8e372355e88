// Segment validation: RFC 5961 (blind RST, SYN and data injection: challenge ACKs with a rate
// limit), RFC 7323 PAWS, and the unacceptable-segment rules of RFC 9293 §3.10.7.4.
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

TEST(Security, ExactResetCloses) {
  Harness h = Harness::established(plain_config());
  h.send(seg().rst().seq(5001));
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::reset);
  EXPECT_TRUE(h.conn.take_events().has(Event::closed));
  h.recv_nothing();
}

TEST(Security, InWindowResetGetsAChallengeAck) {
  Harness h = Harness::established(plain_config());
  h.send(seg().rst().seq(5500));
  EXPECT_EQ(h.conn.state(), State::established);
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.counters().challenge_acks, 1u);
}

TEST(Security, InWindowResetInSynReceivedGetsAChallengeAckNotASynAck) {
  // RFC 5961 §3.2 applies in SYN-RECEIVED too: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. A SYN-ACK
  // would answer a blind RST with a retransmission of the handshake instead.
  Harness h = Harness::accept(plain_config(), seg().syn().seq(5000).win(8000).mss(1000));
  h.recv(seg().syn().seq(1000).ack(5001).win(10000).mss(1000));
  h.send(seg().rst().seq(5500));
  EXPECT_EQ(h.conn.state(), State::syn_received);
  h.recv(seg().seq(1001).ack(5001).win(10000));
  h.recv_nothing();
  EXPECT_EQ(h.conn.counters().challenge_acks, 1u);
  // A retransmitted SYN still gets the SYN-ACK again.
  h.send(seg().syn().seq(5000).win(8000).mss(1000));
  h.recv(seg().syn().seq(1000).ack(5001).win(10000).mss(1000));
  // The handshake completes as usual after the challenge.
  h.send(seg().seq(5001).ack(1001).win(8000));
  EXPECT_EQ(h.conn.state(), State::established);
}

TEST(Security, ExactResetInSynReceivedCloses) {
  Harness h = Harness::accept(plain_config(), seg().syn().seq(5000).win(8000).mss(1000));
  h.take();
  h.send(seg().rst().seq(5001));
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::reset);
  h.recv_nothing();
}

TEST(Security, SynReceivedChallengesAnotherSynWithAnAck) {
  // RFC 5961 §4.2: a SYN that is not the handshake's own retransmission gets a challenge ACK.
  Harness h = Harness::accept(plain_config(), seg().syn().seq(5000).win(8000).mss(1000));
  h.take();
  h.send(seg().syn().seq(5100).win(8000).mss(1000));
  EXPECT_EQ(h.conn.state(), State::syn_received);
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.counters().challenge_acks, 1u);
}

TEST(Security, OutOfWindowResetIsDroppedSilently) {
  Harness h = Harness::established(plain_config());
  h.send(seg().rst().seq(5001 + 20000));
  h.send(seg().rst().seq(4000));
  EXPECT_EQ(h.conn.state(), State::established);
  h.recv_nothing();
  EXPECT_EQ(h.conn.counters().drop_rst_invalid, 2u);
}

TEST(Security, SynInEstablishedGetsAChallengeAck) {
  Harness h = Harness::established(plain_config());
  h.send(seg().syn().seq(9999).win(10000).mss(1000));
  EXPECT_EQ(h.conn.state(), State::established);
  h.recv(seg().seq(1001).ack(5001).win(10000));
  h.send(seg().syn().seq(5001).win(10000));  // in the window: the same
  h.recv(seg().seq(1001).ack(5001).win(10000));
}

TEST(Security, ChallengeAcksAreRateLimited) {
  Config c = plain_config();
  c.challenge_ack_limit = 2;
  Harness h = Harness::established(c);
  for (int i = 0; i < 3; ++i) {
    h.send(seg().rst().seq(5100));
  }
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.counters().challenge_acks, 2u);
  EXPECT_EQ(h.conn.counters().challenge_acks_limited, 1u);
  h.tick(1s);
  h.send(seg().rst().seq(5100));
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.counters().challenge_acks, 3u);
}

TEST(Security, AckOfUnsentDataIsAnsweredAndDropped) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(2000).win(10000).data("x"));
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.recv_available(), 0u);
  EXPECT_EQ(h.conn.counters().drop_bad_ack, 1u);
}

TEST(Security, AckTooFarBehindIsDropped) {
  // RFC 5961 §5.2: SEG.ACK below SND.UNA - MAX.SND.WND.
  Harness h = Harness::established(plain_config(), 1000);
  h.send(seg().seq(5001).ack(1001 - 2000).win(1000).data("x"));
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.recv_available(), 0u);
}

TEST(Security, SegmentWithoutAckIsDropped) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).win(10000).data("x"));
  EXPECT_EQ(h.conn.recv_available(), 0u);
  EXPECT_EQ(h.conn.counters().drop_no_ack, 1u);
  h.recv_nothing();
}

TEST(Security, OldDuplicateIsAcknowledged) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(1001).win(10000).data("abc"));
  h.send(seg().seq(5001).ack(1001).win(10000).data("abc"));
  h.recv(seg().seq(1001).ack(5004).win(9997));
  EXPECT_EQ(h.app_recv(), "abc");
}

TEST(Security, PawsDropsOldTimestamps) {
  Config c = plain_config();
  c.timestamps = true;
  Harness h = Harness::connect(c);
  h.take();
  h.send(seg().syn().seq(5000).ack(1001).win(10000).mss(1000).ts(500, 0));
  h.take();
  h.send(seg().seq(5001).ack(1001).win(10000).ts(600, 0).data("new"));
  EXPECT_EQ(h.conn.tcb().ts_recent, 600u);
  // An old duplicate from a previous wrap of the sequence space: TSval 550 < 600.
  h.send(seg().seq(5004).ack(1001).win(10000).ts(550, 0).data("old"));
  h.recv(seg().seq(1001).ack(5004).win(9997).ts(h.tsval(), 600));
  EXPECT_EQ(h.conn.counters().drop_paws, 1u);
  EXPECT_EQ(h.app_recv(), "new");
  // An RST is not subject to PAWS.
  h.send(seg().rst().seq(5004).ts(1, 0));
  EXPECT_EQ(h.conn.state(), State::closed);
}

TEST(Security, TimestampsAcrossTheirWrap) {
  Config c = plain_config();
  c.timestamps = true;
  Harness h = Harness::connect(c);
  h.take();
  h.send(seg().syn().seq(5000).ack(1001).win(10000).mss(1000).ts(0xfffffff0u, 0));
  h.take();
  h.send(seg().seq(5001).ack(1001).win(10000).ts(0x10, 0).data("a"));  // newer across wrap
  EXPECT_EQ(h.conn.tcb().ts_recent, 0x10u);
  EXPECT_EQ(h.conn.counters().drop_paws, 0u);
}

}  // namespace
}  // namespace phalanx::tcp::test
