// Data transfer in ESTABLISHED: segmentation, delayed ACK (RFC 1122 4.2.3.2), Nagle (RFC 1122
// 4.2.3.4) and TCP_NODELAY, receive windows and their scaling (RFC 7323), window updates, zero
// windows and probes (RFC 9293 §3.8.6.1), SACK blocks for out-of-order data (RFC 2018), and
// sequence numbers wrapping during a transfer.
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

std::string chars(std::size_t n, char c = 'x') {
  return std::string(n, c);
}

TEST(Data, SendAndAcknowledge) {
  Harness h = Harness::established(plain_config());
  EXPECT_EQ(h.app_send("hello"), 5u);
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("hello"));
  h.recv_nothing();
  EXPECT_EQ(h.conn.next_deadline(), h.now + 200ms);  // RTO armed
  h.send(seg().seq(5001).ack(1006).win(10000));
  EXPECT_TRUE(h.conn.take_events().has(Event::writable));
  EXPECT_EQ(h.conn.send_queued(), 0u);
  EXPECT_EQ(h.conn.next_deadline(), kNever);
}

TEST(Data, SegmentsAtTheMss) {
  Harness h = Harness::established(plain_config());
  h.app_send(chars(2500));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000)));
  h.recv(seg().seq(2001).ack(5001).win(10000).data(chars(1000)));
  // Nagle in Minshall's form: no earlier small segment is unacknowledged, so the tail goes now
  // instead of waiting for the peer's (possibly delayed) ACK of the full ones.
  h.recv(seg().psh().seq(3001).ack(5001).win(10000).data(chars(500)));
  h.recv_nothing();
}

TEST(Data, NagleHoldsASecondSmallSegmentUntilTheFirstIsAcked) {
  Harness h = Harness::established(plain_config());
  h.app_send(chars(1500));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000)));
  h.recv(seg().psh().seq(2001).ack(5001).win(10000).data(chars(500)));
  h.app_send(chars(300));
  h.recv_nothing();
  h.send(seg().seq(5001).ack(2001).win(10000));  // the full segment only
  h.recv_nothing();
  h.send(seg().seq(5001).ack(2501).win(10000));  // now the small one
  h.recv(seg().psh().seq(2501).ack(5001).win(10000).data(chars(300)));
}

TEST(Data, SendIsBoundedByTheBuffer) {
  Harness h = Harness::established(plain_config());
  EXPECT_EQ(h.app_send(chars(12000)), 10000u);
  EXPECT_EQ(h.conn.send_space(), 0u);
  EXPECT_EQ(h.app_send("more"), 0u);
}

TEST(Data, SendIsLimitedByThePeerWindow) {
  Harness h = Harness::established(plain_config(), 1500);
  h.app_send(chars(3000));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(chars(1000)));
  // 500 bytes left in the window; at least half the largest window (750)? no: wait.
  h.recv_nothing();
  h.send(seg().seq(5001).ack(2001).win(1500));
  h.recv(seg().seq(2001).ack(5001).win(10000).data(chars(1000)));
}

TEST(Data, DelayedAckTimer) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(1001).win(10000).data("ping"));
  EXPECT_TRUE(h.conn.take_events().has(Event::readable));
  EXPECT_EQ(h.app_recv(), "ping");
  h.recv_nothing();
  h.tick(39ms);
  h.recv_nothing();
  h.tick(1ms);
  // The right edge stays at 15001: 4 bytes is no reason to move it (receiver SWS avoidance).
  h.recv(seg().seq(1001).ack(5005).win(9996));
}

TEST(Data, AckEverySecondFullSegment) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(1001).win(10000).data(chars(1000)));
  h.recv_nothing();
  h.send(seg().seq(6001).ack(1001).win(10000).data(chars(1000)));
  h.recv(seg().seq(1001).ack(7001).win(8000));
  EXPECT_EQ(h.conn.next_deadline(), kNever);  // the delayed ACK timer is off again
}

TEST(Data, ReplyCarriesTheAck) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(1001).win(10000).data("GET"));
  h.app_recv();
  h.app_send("200");
  h.recv(seg().psh().seq(1001).ack(5004).win(9997).data("200"));
  h.tick(40ms);
  h.recv_nothing();  // piggybacked: no separate ACK
}

TEST(Data, NagleHoldsSmallSegmentsWhileDataIsUnacked) {
  Harness h = Harness::established(plain_config());
  h.app_send("a");
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("a"));
  h.app_send("b");
  h.app_send("c");
  h.recv_nothing();
  h.send(seg().seq(5001).ack(1002).win(10000));
  h.recv(seg().psh().seq(1002).ack(5001).win(10000).data("bc"));
}

TEST(Data, NagleSendsFullSegments) {
  Harness h = Harness::established(plain_config());
  h.app_send("a");
  h.take();
  h.app_send(chars(1500));
  h.recv(seg().seq(1002).ack(5001).win(10000).data(chars(1000)));
  h.recv_nothing();  // the 500-byte tail waits for the ACK
}

TEST(Data, NoDelaySendsAtOnce) {
  Harness h = Harness::established(plain_config());
  h.conn.set_nodelay(true);
  h.app_send("a");
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("a"));
  h.app_send("b");
  h.recv(seg().psh().seq(1002).ack(5001).win(10000).data("b"));
}

TEST(Data, WindowShrinksAsDataWaitsAndReopensWithAnUpdate) {
  Harness h = Harness::established(plain_config());
  for (std::uint32_t i = 0; i < 10; ++i) {
    h.send(seg().seq(5001 + 1000 * i).ack(1001).win(10000).data(chars(1000)));
    if (i % 2 == 1) {
      h.recv(seg()
                 .seq(1001)
                 .ack(5001 + 1000 * (i + 1))
                 .win(static_cast<std::uint16_t>(10000 - 1000 * (i + 1))));
    }
  }
  EXPECT_EQ(h.conn.tcb().rcv_wnd, 0u);
  // Beyond the window: dropped, answered with an ACK.
  h.send(seg().seq(15001).ack(1001).win(10000).data("z"));
  h.recv(seg().seq(1001).ack(15001).win(0));
  // Reading 400 bytes is below min(buffer/2, MSS): no update (receiver SWS avoidance).
  std::vector<std::byte> buf(400);
  h.conn.recv({buf.data(), buf.size()});
  h.recv_nothing();
  // Reading 6000 more opens it.
  std::vector<std::byte> more(6000);
  h.conn.recv({more.data(), more.size()});
  h.recv(seg().seq(1001).ack(15001).win(6400));
}

TEST(Data, ScaledWindows) {
  Config c = plain_config();
  c.window_scaling = true;
  c.recv_buffer_size = 200000;  // shift 2: 200000 >> 2 = 50000
  Harness h = Harness::connect(c);
  h.recv(seg().syn().seq(1000).win(65535).mss(1000).ws(2));
  h.send(seg().syn().seq(5000).ack(1001).win(1000).mss(1000).ws(3));
  h.recv(seg().seq(1001).ack(5001).win(50000));
  // The peer's window field 1000 means 8000 bytes.
  h.send(seg().seq(5001).ack(1001).win(1000));
  EXPECT_EQ(h.conn.tcb().snd_wnd, 8000u);
  // 1003 bytes in: 198997 free, rounded down to a multiple of 4, field 49749.
  h.send(seg().seq(5001).ack(1001).win(1000).data(chars(1003)));
  h.tick(40ms);
  h.recv(seg().seq(1001).ack(6004).win(49749));
  // The right edge stays where the handshake's ACK put it (5001 + 200000): it never moves left.
  EXPECT_EQ(h.conn.tcb().rcv_adv, SeqNum{5001 + 200000});
}

TEST(Data, ZeroWindowProbesBackOffUntilTheWindowOpens) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(1001).win(0));
  h.app_send("data");
  h.recv_nothing();
  EXPECT_EQ(h.conn.next_deadline(), h.now + 200ms);
  h.tick(200ms);
  h.recv(seg().seq(1001).ack(5001).win(10000).data("d"));  // one byte of new data
  h.send(seg().seq(5001).ack(1001).win(0));                // refused
  h.tick(399ms);
  h.recv_nothing();
  h.tick(1ms);
  h.recv(seg().seq(1001).ack(5001).win(10000).data("d"));  // after 400 ms
  h.send(seg().seq(5001).ack(1001).win(0));
  h.tick(800ms);
  h.recv(seg().seq(1001).ack(5001).win(10000).data("d"));  // after 800 ms
  // The window opens: everything goes, starting again at the refused byte.
  h.send(seg().seq(5001).ack(1001).win(10000));
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("data"));
  h.send(seg().seq(5001).ack(1005).win(10000));
  EXPECT_EQ(h.conn.next_deadline(), kNever);
}

TEST(Data, ZeroWindowProbeAcceptedByteAdvances) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(1001).win(0));
  h.app_send("ab");
  h.recv_nothing();
  h.tick(200ms);
  h.recv(seg().seq(1001).ack(5001).win(10000).data("a"));
  h.send(seg().seq(5001).ack(1002).win(0));  // took the byte, still closed
  h.tick(400ms);
  h.recv(seg().seq(1002).ack(5001).win(10000).data("b"));
}

TEST(Data, UnansweredZeroWindowProbesTimeOut) {
  Config c = plain_config();
  c.zero_window_probe_limit = 3;
  Harness h = Harness::established(c);
  h.send(seg().seq(5001).ack(1001).win(0));
  h.app_send("x");
  h.recv_nothing();
  for (int i = 0; i < 3; ++i) {
    h.to_deadline();
    h.recv(seg().seq(1001).ack(5001).win(10000).data("x"));
  }
  h.to_deadline();
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::timeout);
}

Harness established_with_sack() {
  Config c = plain_config();
  c.sack = true;
  Harness h = Harness::connect(c);
  h.recv(seg().syn().seq(1000).win(10000).mss(1000).sack_ok());
  h.send(seg().syn().seq(5000).ack(1001).win(10000).mss(1000).sack_ok());
  h.recv(seg().seq(1001).ack(5001).win(10000));
  EXPECT_TRUE(h.conn.tcb().sack_permitted);
  return h;
}

TEST(Data, SackBlocksForOutOfOrderData) {
  Harness h = established_with_sack();
  h.send(seg().seq(6001).ack(1001).win(10000).data(chars(1000, 'b')));
  h.recv(seg().seq(1001).ack(5001).win(10000).sack(6001, 7001));  // immediate duplicate ACK
  h.send(seg().seq(8001).ack(1001).win(10000).data(chars(1000, 'd')));
  // The most recent block first (RFC 2018 §4).
  h.recv(seg().seq(1001).ack(5001).win(10000).sack(8001, 9001).sack(6001, 7001));
  h.send(seg().seq(7001).ack(1001).win(10000).data(chars(1000, 'c')));
  h.recv(seg().seq(1001).ack(5001).win(10000).sack(6001, 9001));
  EXPECT_EQ(h.conn.recv_available(), 0u);
  // The gap fills: everything is delivered and acknowledged at once.
  h.send(seg().seq(5001).ack(1001).win(10000).data(chars(1000, 'a')));
  h.recv(seg().seq(1001).ack(9001).win(6000));
  EXPECT_EQ(h.app_recv(),
            chars(1000, 'a') + chars(1000, 'b') + chars(1000, 'c') + chars(1000, 'd'));
}

TEST(Data, AtMostThreeSackBlocksWithTimestamps) {
  Config c = plain_config();
  c.sack = true;
  c.timestamps = true;
  Harness h = Harness::connect(c);
  h.take();
  h.send(seg().syn().seq(5000).ack(1001).win(10000).mss(1000).sack_ok().ts(1, 0));
  h.take();
  for (std::uint32_t i = 0; i < 4; ++i) {
    h.send(seg().seq(5101 + 200 * i).ack(1001).win(10000).ts(2, 0).data("x"));
    h.take();
  }
  h.send(seg().seq(5901).ack(1001).win(10000).ts(2, 0).data("x"));
  h.recv(seg()
             .seq(1001)
             .ack(5001)
             .win(10000)
             .ts(h.tsval(), 1)
             .sack(5901, 5902)
             .sack(5701, 5702)
             .sack(5501, 5502));
}

TEST(Data, OutOfOrderRangesAreBounded) {
  Config c = plain_config();
  c.max_ooo_ranges = 2;
  Harness h = Harness::established(c);
  h.send(seg().seq(5101).ack(1001).win(10000).data("a"));
  h.send(seg().seq(5201).ack(1001).win(10000).data("b"));
  h.send(seg().seq(5301).ack(1001).win(10000).data("c"));
  EXPECT_EQ(h.conn.counters().drop_ooo_full, 1u);
}

TEST(Data, SequenceNumbersWrapDuringATransfer) {
  Harness h = Harness::connect(plain_config(), 0xfffff000u);
  h.recv(seg().syn().seq(0xfffff000u).win(10000).mss(1000));
  h.send(seg().syn().seq(0xffffff00u).ack(0xfffff001u).win(10000).mss(1000));
  h.recv(seg().seq(0xfffff001u).ack(0xffffff01u).win(10000));
  std::string sent;
  for (int i = 0; i < 8; ++i) {
    sent += chars(1000, static_cast<char>('a' + i));
  }
  h.app_send(sent);
  std::uint32_t seq = 0xfffff001u;
  for (int i = 0; i < 8; ++i) {
    auto out = h.take();
    ASSERT_TRUE(out);
    EXPECT_EQ(out->seq, seq);
    seq += static_cast<std::uint32_t>(out->payload.size());
  }
  EXPECT_EQ(seq, 0xfffff001u + 8000u);  // wrapped past zero
  h.send(seg().seq(0xffffff01u).ack(seq).win(10000).data(chars(1000, 'z')));
  EXPECT_EQ(h.conn.send_queued(), 0u);
  EXPECT_EQ(h.conn.tcb().rcv_nxt, SeqNum{0xffffff01u + 1000});
  EXPECT_EQ(h.app_recv(), chars(1000, 'z'));
}

}  // namespace
}  // namespace phalanx::tcp::test

namespace phalanx::tcp::test {
namespace {

TEST(Data, PeekAndConsumeAcrossTheRingsWrap) {
  Harness h = Harness::established(plain_config());
  h.send(seg().seq(5001).ack(1001).win(10000).data(std::string(9000, 'a')));
  std::vector<std::byte> sink(9000);
  h.conn.recv({sink.data(), sink.size()});
  // The next 2000 bytes straddle the end of the 10000-byte ring.
  h.send(
      seg().seq(14001).ack(1001).win(10000).data(std::string(1000, 'b') + std::string(1000, 'c')));
  EXPECT_EQ(h.conn.recv_available(), 2000u);
  const wire::Bytes first = h.conn.peek();
  EXPECT_EQ(first.size(), 1000u);  // up to the wrap
  EXPECT_EQ(first[0], std::byte{'b'});
  h.conn.consume(first.size());
  const wire::Bytes second = h.conn.peek();
  ASSERT_EQ(second.size(), 1000u);
  EXPECT_EQ(second[999], std::byte{'c'});
  h.conn.consume(1000);
  EXPECT_EQ(h.conn.recv_available(), 0u);
}

}  // namespace
}  // namespace phalanx::tcp::test
