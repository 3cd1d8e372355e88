// Opening connections (RFC 9293 §3.5): active and passive open, option negotiation (RFC 7323,
// RFC 2018), SYN retransmission, refusal, simultaneous open, and what a listener does.
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

Config options_config() {
  Config c = plain_config();
  c.recv_buffer_size = 1 << 20;  // needs window scale 5 to advertise
  c.window_scaling = true;
  c.timestamps = true;
  c.sack = true;
  return c;
}

TEST(Handshake, ActiveOpenWithoutOptions) {
  Harness h = Harness::connect(plain_config());
  EXPECT_EQ(h.conn.state(), State::syn_sent);
  h.recv(seg().syn().seq(1000).win(10000).mss(1000));
  h.recv_nothing();
  h.send(seg().syn().seq(5000).ack(1001).win(8000).mss(1460));
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.state(), State::established);
  EXPECT_TRUE(h.conn.take_events().has(Event::established));
  EXPECT_EQ(h.conn.tcb().snd_mss, 1000);  // ours is smaller
  EXPECT_EQ(h.conn.tcb().snd_wnd, 8000u);
  EXPECT_FALSE(h.conn.tcb().ts_received);
  EXPECT_EQ(h.conn.next_deadline(), kNever);
}

TEST(Handshake, NoOptionsConfigSendsABareSyn) {
  Config c = plain_config();
  c.no_options = true;
  Harness h = Harness::connect(c);
  h.recv(seg().syn().seq(1000).win(10000));
  // A SYN-ACK without MSS: RFC 9293 §3.7.1 says assume 536.
  h.send(seg().syn().seq(5000).ack(1001).win(8000));
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_EQ(h.conn.tcb().snd_mss, 536);
  EXPECT_TRUE(h.conn.tcb().no_options);
}

TEST(Handshake, ActiveOpenNegotiatesScaleTimestampsAndSack) {
  Harness h = Harness::connect(options_config());
  h.recv(seg().syn().seq(1000).win(65535).mss(1000).ws(5).sack_ok().ts(h.tsval(), 0));
  const std::uint32_t our_syn_ts = h.tsval();
  h.tick(3ms);
  h.send(seg().syn().seq(5000).ack(1001).win(20000).mss(1400).ws(2).sack_ok().ts(777, our_syn_ts));
  // Our window: 2^20 bytes >> 5.
  h.recv(seg().seq(1001).ack(5001).win(32768).ts(h.tsval(), 777));
  const Tcb& t = h.conn.tcb();
  EXPECT_EQ(h.conn.state(), State::established);
  EXPECT_EQ(t.snd_scale, 2);
  EXPECT_EQ(t.rcv_scale, 5);
  EXPECT_TRUE(t.ws_requested && t.ws_received);
  EXPECT_TRUE(t.ts_requested && t.ts_received);
  EXPECT_TRUE(t.sack_permitted);
  EXPECT_EQ(t.ts_recent, 777u);
  EXPECT_EQ(t.snd_wnd, 20000u);  // a SYN's window is never scaled
  // The first RTT sample came from the timestamp echo: 3 ms.
  EXPECT_EQ(h.conn.rto(), 200ms);  // 3 ms + 4 * 1.5 ms, raised to rto_min
  // Afterwards the peer's windows are scaled by 2^2.
  h.send(seg().seq(5001).ack(1001).win(100).ts(778, h.tsval()));
  EXPECT_EQ(h.conn.tcb().snd_wnd, 400u);
}

TEST(Handshake, ScaleAboveFourteenIsFourteen) {
  Harness h = Harness::connect(options_config());
  h.take();
  h.send(seg().syn().seq(5000).ack(1001).win(20000).mss(1400).ws(15));
  EXPECT_EQ(h.conn.tcb().snd_scale, 14);
  // No timestamps from the peer: none from us either.
  h.recv(seg().seq(1001).ack(5001).win(32768));
}

TEST(Handshake, ScalingNeedsBothSides) {
  Harness h = Harness::connect(options_config());
  h.take();
  h.send(seg().syn().seq(5000).ack(1001).win(20000).mss(1400));
  EXPECT_EQ(h.conn.tcb().snd_scale, 0);
  EXPECT_EQ(h.conn.tcb().rcv_scale, 0);
  EXPECT_FALSE(h.conn.tcb().sack_permitted);
  h.recv(seg().seq(1001).ack(5001).win(65535));  // unscaled: capped at 16 bits
}

TEST(Handshake, PassiveOpenOffersOnlyWhatTheSynOffered) {
  const Seg syn = seg().syn().seq(5000).win(29200).mss(1460).ws(7);
  EXPECT_EQ(Connection::classify_for_listen(syn.repr(true)), ListenVerdict::accept);
  Harness h = Harness::accept(options_config(), syn);
  EXPECT_EQ(h.conn.state(), State::syn_received);
  h.recv(seg().syn().seq(1000).ack(5001).win(65535).mss(1000).ws(5));
  h.recv_nothing();
  h.send(seg().seq(5001).ack(1001).win(229));
  EXPECT_EQ(h.conn.state(), State::established);
  EXPECT_TRUE(h.conn.take_events().has(Event::established));
  EXPECT_EQ(h.conn.tcb().snd_wnd, 229u << 7);
  EXPECT_FALSE(h.conn.tcb().ts_requested);
  EXPECT_FALSE(h.conn.tcb().sack_permitted);
}

TEST(Handshake, PassiveOpenWithTimestampsAndSack) {
  const Seg syn = seg().syn().seq(5000).win(29200).mss(1460).sack_ok().ts(100, 0);
  Harness h = Harness::accept(options_config(), syn);
  h.recv(seg().syn().seq(1000).ack(5001).win(65535).mss(1000).sack_ok().ts(h.tsval(), 100));
  h.send(seg().seq(5001).ack(1001).win(29200).ts(101, h.tsval()));
  EXPECT_EQ(h.conn.state(), State::established);
  EXPECT_TRUE(h.conn.tcb().sack_permitted);
  EXPECT_EQ(h.conn.tcb().ts_recent, 101u);
  EXPECT_EQ(h.conn.tcb().snd_wnd, 29200u);  // no scaling negotiated
}

TEST(Handshake, PassiveOpenRetransmitsSynAckForARetransmittedSyn) {
  const Seg syn = seg().syn().seq(5000).win(8000).mss(1000);
  Harness h = Harness::accept(plain_config(), syn);
  h.recv(seg().syn().seq(1000).ack(5001).win(10000).mss(1000));
  h.send(syn);
  h.recv(seg().syn().seq(1000).ack(5001).win(10000).mss(1000));
  // No ACK arrives: the SYN-ACK is retransmitted on the RTO (1 s, then 2 s).
  h.tick(1s);
  h.recv(seg().syn().seq(1000).ack(5001).win(10000).mss(1000));
  h.tick(1999ms);
  h.recv_nothing();
  h.tick(1ms);
  h.recv(seg().syn().seq(1000).ack(5001).win(10000).mss(1000));
}

TEST(Handshake, SynReceivedAnswersABadAckWithReset) {
  Harness h = Harness::accept(plain_config(), seg().syn().seq(5000).win(8000).mss(1000));
  h.take();
  h.send(seg().seq(5001).ack(4242).win(8000));
  h.recv(seg().rst().seq(4242));
  EXPECT_EQ(h.conn.state(), State::syn_received);
}

TEST(Handshake, SynRetransmittedWithBackoffUntilTimeout) {
  Config c = plain_config();
  c.syn_retries = 2;
  Harness h = Harness::connect(c);
  h.recv(seg().syn().seq(1000).win(10000).mss(1000));
  h.tick(999ms);
  h.recv_nothing();
  h.tick(1ms);
  h.recv(seg().syn().seq(1000).win(10000).mss(1000));
  h.tick(2s);
  h.recv(seg().syn().seq(1000).win(10000).mss(1000));
  h.tick(4s);
  h.recv_nothing();
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::timeout);
  EXPECT_TRUE(h.conn.take_events().has(Event::closed));
}

TEST(Handshake, KarnSkipsTheRetransmittedSyn) {
  Harness h = Harness::connect(plain_config());
  h.take();
  h.tick(1s);
  h.take();  // SYN again; RTO now backed off to 2 s
  h.tick(10ms);
  h.send(seg().syn().seq(5000).ack(1001).win(8000).mss(1000));
  // No sample from the ambiguous SYN: the backed-off RTO stays.
  EXPECT_EQ(h.conn.rto(), 2s);
}

TEST(Handshake, RefusedByReset) {
  Harness h = Harness::connect(plain_config());
  h.take();
  h.send(seg().rst().seq(0).ack(1001));
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::reset);
  h.recv_nothing();
}

TEST(Handshake, SynSentIgnoresResetWithoutAcceptableAck) {
  Harness h = Harness::connect(plain_config());
  h.take();
  h.send(seg().rst().seq(0).ack(999));
  h.send(seg().rst().seq(0));
  EXPECT_EQ(h.conn.state(), State::syn_sent);
  EXPECT_EQ(h.conn.counters().drop_rst_invalid, 1u);
}

TEST(Handshake, SynSentAnswersABadAckWithReset) {
  Harness h = Harness::connect(plain_config());
  h.take();
  h.send(seg().seq(7).ack(7777).win(10));
  h.recv(seg().rst().seq(7777));
  EXPECT_EQ(h.conn.state(), State::syn_sent);
}

TEST(Handshake, SimultaneousOpen) {
  // RFC 9293 FIG. 8: both sides send SYNs that cross.
  Harness h = Harness::connect(plain_config());
  h.recv(seg().syn().seq(1000).win(10000).mss(1000));
  h.send(seg().syn().seq(5000).win(8000).mss(1000));
  EXPECT_EQ(h.conn.state(), State::syn_received);
  h.recv(seg().syn().seq(1000).ack(5001).win(10000).mss(1000));
  h.send(seg().syn().seq(5000).ack(1001).win(8000).mss(1000));
  // The peer's SYN-ACK repeats its SYN: its ACK completes our side.
  EXPECT_EQ(h.conn.state(), State::syn_received);
  h.recv(seg().syn().seq(1000).ack(5001).win(10000).mss(1000));
  h.send(seg().seq(5001).ack(1001).win(8000));
  EXPECT_EQ(h.conn.state(), State::established);
}

TEST(Handshake, ListenerVerdictsAndResets) {
  EXPECT_EQ(Connection::classify_for_listen(seg().rst().seq(1).repr(true)), ListenVerdict::drop);
  EXPECT_EQ(Connection::classify_for_listen(seg().ack(5).seq(1).repr(true)), ListenVerdict::reset);
  EXPECT_EQ(Connection::classify_for_listen(seg().syn().fin().seq(1).repr(true)),
            ListenVerdict::drop);
  EXPECT_EQ(Connection::classify_for_listen(seg().seq(1).data("x").repr(true)),
            ListenVerdict::drop);
  // <SEQ=SEG.ACK><CTL=RST> for a segment with ACK.
  auto r = Connection::reset_for(seg().seq(1).ack(77).repr(true));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, seg().rst().seq(77).repr(false));
  // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> otherwise; SYN and FIN count.
  r = Connection::reset_for(seg().syn().seq(10).data("abc").repr(true));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, seg().rst().seq(0).ack(14).repr(false));
  EXPECT_FALSE(Connection::reset_for(seg().rst().seq(1).repr(true)));
}

TEST(Handshake, DataQueuedBeforeEstablishedLeavesAfter) {
  Harness h = Harness::connect(plain_config());
  EXPECT_EQ(h.app_send("early"), 5u);
  h.recv(seg().syn().seq(1000).win(10000).mss(1000));
  h.recv_nothing();
  h.send(seg().syn().seq(5000).ack(1001).win(8000).mss(1000));
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("early"));
}

}  // namespace
}  // namespace phalanx::tcp::test
