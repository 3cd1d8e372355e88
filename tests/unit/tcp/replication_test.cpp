// FIG. 7 export and restore: the essential state of a connection rebuilds a connection that
// carries on where the old one stopped, in every synchronized state but SYN-RECEIVED (the FIN
// state both ways), and accepts ACKs of bytes the old owner sent after its last export.
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

TEST(Replication, RestoreContinuesTheConversation) {
  Config c = plain_config();
  c.timestamps = true;
  c.sack = true;
  c.window_scaling = true;
  c.recv_buffer_size = 1 << 17;  // scale 2
  Harness h = Harness::connect(c);
  h.take();
  h.send(seg().syn().seq(5000).ack(1001).win(30000).mss(1200).ws(2).sack_ok().ts(70, 0));
  h.take();
  h.app_send("hello");
  h.take();
  h.tick(20ms);
  h.send(seg().seq(5001).ack(1006).win(7000).ts(80, h.tsval()).data("abc"));

  const InitialState init = h.conn.export_initial();
  const EssentialState e = h.conn.export_essential();
  EXPECT_EQ(init.mss, 1000);
  EXPECT_EQ(init.options_size, 12);
  EXPECT_EQ(e.snd_nxt, SeqNum{1006});
  EXPECT_EQ(e.rcv_nxt, SeqNum{5004});
  EXPECT_EQ(e.snd_wnd, 28000u);
  EXPECT_EQ(e.snd_scale, 2);
  EXPECT_EQ(e.rcv_scale, 2);
  EXPECT_EQ(e.ts_recent, 80u);
  EXPECT_TRUE(e.ts_requested && e.ts_received && e.ws_requested && e.ws_received &&
              e.sack_permitted);

  // Another member rebuilds it, with its own clock.
  Harness r(Connection::restore(c, init, e, Time{0} + 5s), Time{0} + 5s);
  EXPECT_EQ(r.conn.state(), State::established);
  const Tcb& t = r.conn.tcb();
  EXPECT_EQ(t.snd_una, t.snd_nxt);
  EXPECT_EQ(t.snd_max, t.snd_nxt);
  EXPECT_EQ(r.conn.next_deadline(), kNever);
  EXPECT_EQ(r.conn.cwnd(), 10u * 988);  // initial: 10 segments of MSS less timestamps
  EXPECT_EQ(r.conn.export_essential().snd_nxt, e.snd_nxt);
  // The stream's origin stays the first owner's ISS, for every later owner's application.
  EXPECT_EQ(init.iss, SeqNum{1000});
  EXPECT_EQ(r.conn.export_initial(), init);
  // Its TSval goes on from the old one's, so the peer's PAWS accepts it.
  EXPECT_GT(r.tsval(), e.ts_val_last);
  r.app_send("more");
  r.recv(seg()
             .psh()
             .seq(1006)
             .ack(5004)
             .win(static_cast<std::uint16_t>(seq_len(e.rcv_nxt, e.rcv_adv) >> 2))
             .ts(r.tsval(), 80)
             .data("more"));
  r.send(seg().seq(5004).ack(1010).win(7000).ts(81, r.tsval()).data("def"));
  EXPECT_EQ(r.app_recv(), "def");
}

// Another member rebuilds `h`'s connection from its exported state, one second later.
Harness restore_of(const Harness& h, const Config& c, std::uint32_t ack_slack = 0) {
  const Time at = h.now + 1s;
  return Harness(
      Connection::restore(c, h.conn.export_initial(), h.conn.export_essential(), at, ack_slack),
      at);
}

// ---- the FIN state both ways ----------------------------------------------------------------
// From Harness::established(): snd_nxt 1001, rcv_nxt 5001, windows 10000 both ways.

Harness in_fin_wait_1(const Config& c) {
  Harness h = Harness::established(c);
  h.conn.shutdown();
  h.recv(seg().fin().seq(1001).ack(5001).win(10000));
  return h;
}

Harness in_fin_wait_2(const Config& c) {
  Harness h = in_fin_wait_1(c);
  h.send(seg().seq(5001).ack(1002).win(10000));
  return h;
}

Harness in_close_wait(const Config& c) {
  Harness h = Harness::established(c);
  h.send(seg().fin().seq(5001).ack(1001).win(10000));
  h.recv(seg().seq(1001).ack(5002).win(9999));
  return h;
}

Harness in_last_ack(const Config& c) {
  Harness h = in_close_wait(c);
  h.conn.shutdown();
  h.recv(seg().fin().seq(1001).ack(5002).win(9999));
  return h;
}

Harness in_closing(const Config& c) {
  Harness h = in_fin_wait_1(c);
  h.send(seg().fin().seq(5001).ack(1001).win(10000));  // crosses our FIN
  h.recv(seg().seq(1002).ack(5002).win(9999));
  return h;
}

Harness in_time_wait(const Config& c) {
  Harness h = in_fin_wait_2(c);
  h.send(seg().fin().seq(5001).ack(1002).win(10000));
  h.recv(seg().seq(1002).ack(5002).win(9999));
  return h;
}

struct FinCase {
  const char* name;
  Harness (*drive)(const Config&);
  State state;
  bool fin_queued;
  bool fin_sent;
  bool peer_fin;
};

TEST(Replication, FinStateRoundTripsInEveryState) {
  const FinCase cases[] = {
      {"ESTABLISHED", [](const Config& c) { return Harness::established(c); }, State::established,
       false, false, false},
      {"FIN-WAIT-1", in_fin_wait_1, State::fin_wait_1, true, true, false},
      {"FIN-WAIT-2", in_fin_wait_2, State::fin_wait_2, true, true, false},
      {"CLOSE-WAIT", in_close_wait, State::close_wait, false, false, true},
      {"CLOSING", in_closing, State::closing, true, true, true},
      {"LAST-ACK", in_last_ack, State::last_ack, true, true, true},
      {"TIME-WAIT", in_time_wait, State::time_wait, true, true, true},
  };
  const Config c = plain_config();
  for (const FinCase& k : cases) {
    SCOPED_TRACE(k.name);
    Harness h = k.drive(c);
    ASSERT_EQ(h.conn.state(), k.state);
    const EssentialState e = h.conn.export_essential();
    EXPECT_EQ(e.state, k.state);
    EXPECT_EQ(e.our_fin_queued(), k.fin_queued);
    EXPECT_EQ(e.fin_sent, k.fin_sent);
    EXPECT_EQ(e.fin_seq, k.fin_queued ? SeqNum{1001} : SeqNum{0});
    EXPECT_EQ(e.peer_fin_received(), k.peer_fin);

    Harness r = restore_of(h, c);
    EXPECT_EQ(r.conn.state(), k.state);
    EXPECT_EQ(r.conn.tcb().fin_received, k.peer_fin);
    EXPECT_TRUE(r.conn.take_events().has(Event::established));
    const bool fin_unacked =
        k.state == State::fin_wait_1 || k.state == State::closing || k.state == State::last_ack;
    if (fin_unacked) {
      // Our FIN was in flight: the new owner sends it again at once.
      const auto fin = r.take();
      ASSERT_TRUE(fin.has_value());
      EXPECT_TRUE(fin->has(wire::tcpflag::kFin));
      EXPECT_EQ(fin->seq, 1001u);
      EXPECT_EQ(fin->ack, k.peer_fin ? 5002u : 5001u);
    }
    r.recv_nothing();
    EXPECT_EQ(r.conn.export_essential(), e);
    if (k.state == State::time_wait) {
      EXPECT_EQ(r.conn.next_deadline(), r.now + 10s);  // a fresh 2 MSL
    }
  }
}

TEST(Replication, RestoredCloseWaitStillSendsThenCloses) {
  const Config c = plain_config();
  Harness h = in_close_wait(c);
  Harness r = restore_of(h, c);
  EXPECT_EQ(r.app_send("late"), 4u);
  r.recv(seg().psh().seq(1001).ack(5002).win(9999).data("late"));
  r.conn.shutdown();
  EXPECT_EQ(r.conn.state(), State::last_ack);
  r.recv(seg().fin().seq(1005).ack(5002).win(9999));
  r.send(seg().seq(5002).ack(1006).win(10000));
  EXPECT_EQ(r.conn.state(), State::closed);
  EXPECT_EQ(r.conn.close_reason(), CloseReason::normal);
}

TEST(Replication, RestoredFinWait1FinishesTheActiveClose) {
  const Config c = plain_config();
  Harness r = restore_of(in_fin_wait_1(c), c);
  r.recv(seg().fin().seq(1001).ack(5001).win(10000));
  r.send(seg().seq(5001).ack(1002).win(10000));
  EXPECT_EQ(r.conn.state(), State::fin_wait_2);
  r.send(seg().fin().seq(5001).ack(1002).win(10000));
  r.recv(seg().seq(1002).ack(5002).win(9999));
  EXPECT_EQ(r.conn.state(), State::time_wait);
}

TEST(Replication, RestoredClosingAndLastAckEndOnTheAckOfOurFin) {
  const Config c = plain_config();
  Harness closing = restore_of(in_closing(c), c);
  closing.take();
  closing.send(seg().seq(5002).ack(1002).win(10000));
  EXPECT_EQ(closing.conn.state(), State::time_wait);

  Harness last_ack = restore_of(in_last_ack(c), c);
  last_ack.take();
  last_ack.send(seg().seq(5002).ack(1002).win(10000));
  EXPECT_EQ(last_ack.conn.state(), State::closed);
}

TEST(Replication, FinBeyondUnsentBytesIsLeftToTheApplication) {
  // The old owner queued "bye" and its FIN, but replicated snd_nxt before the bytes left: the
  // new owner cannot send the FIN before the bytes, so it comes back ESTABLISHED and the
  // application queues them again, then shuts down.
  const Config c = plain_config();
  Harness h = Harness::established(c);
  EssentialState e = h.conn.export_essential();
  e.state = State::fin_wait_1;
  e.fin_seq = e.snd_nxt + 3;
  Harness r(Connection::restore(c, h.conn.export_initial(), e, h.now), h.now);
  EXPECT_EQ(r.conn.state(), State::established);
  EXPECT_EQ(r.conn.send_end(), SeqNum{1001});
  r.app_send("bye");
  r.conn.shutdown();
  r.recv(seg().fin().psh().seq(1001).ack(5001).win(10000).data("bye"));
  EXPECT_EQ(r.conn.export_essential().fin_seq, SeqNum{1004});
}

// ---- ACKs of bytes the old owner sent after its last export ----------------------------------

// The replicated window was closed (a slow reader); a new owner that waited for it would sit out
// a persist timeout. solicit_ack() sends at once a segment the peer must answer, and its answer
// opens the window: the data goes without waiting for a timer.
TEST(Replication, ANewOwnerAsksThePeerForItsWindowAtOnce) {
  const Config c = plain_config();
  Harness h = Harness::established(c);
  h.send(seg().seq(5001).ack(1001).win(0));  // the peer's window closes
  const InitialState init = h.conn.export_initial();
  const EssentialState e = h.conn.export_essential();
  ASSERT_EQ(e.snd_wnd, 0u);

  Harness r(Connection::restore(c, init, e, h.now), h.now);
  r.app_send("resumed");
  r.recv_nothing();  // a zero window: only the persist timer would probe
  r.conn.solicit_ack();
  r.recv(seg().seq(1000).ack(5001).win(10000));  // SND.NXT - 1: the peer answers it
  r.send(seg().seq(5001).ack(1001).win(10000));  // ... with its window, open by now
  r.recv(seg().psh().seq(1001).ack(5001).win(10000).data("resumed"));
}

TEST(Replication, AckBeyondSndNxtWithinTheSlackIsTaken) {
  const Config c = plain_config();
  Harness h = Harness::established(c);
  const InitialState init = h.conn.export_initial();
  const EssentialState e = h.conn.export_essential();  // the backup's copy: snd_nxt 1001
  // The old owner sends 11 more bytes and dies; the peer got them.
  h.app_send("hello world");
  h.take();

  Harness r(Connection::restore(c, init, e, h.now, 100), h.now);
  r.send(seg().seq(5001).ack(1012).win(10000));
  EXPECT_EQ(r.conn.counters().acks_beyond_restore, 1u);
  EXPECT_EQ(r.conn.counters().drop_bad_ack, 0u);
  EXPECT_EQ(r.conn.tcb().snd_una, SeqNum{1012});
  EXPECT_EQ(r.conn.tcb().snd_max, SeqNum{1012});
  r.recv_nothing();  // nothing to answer: it was an acceptable ACK
  // The application resumes at the acknowledged offset: 11 bytes past its replicated one.
  EXPECT_EQ(seq_len(e.snd_nxt, r.conn.send_end()), 11u);
  r.app_send("!");
  r.recv(seg().psh().seq(1012).ack(5001).win(10000).data("!"));
}

TEST(Replication, AckBeyondSndNxtCoversBytesTheApplicationQueuedAgain) {
  const Config c = plain_config();
  Harness h = Harness::established(c);
  Harness r(Connection::restore(c, h.conn.export_initial(), h.conn.export_essential(), h.now, 100),
            h.now);
  // The application regenerates its stream from the replicated offset; the peer had "hello".
  r.app_send("hello world");
  r.send(seg().seq(5001).ack(1006).win(10000));
  EXPECT_EQ(r.conn.send_queued(), 6u);
  r.recv(seg().psh().seq(1006).ack(5001).win(10000).data(" world"));
}

TEST(Replication, AckBeyondTheSlackIsStillUnsentData) {
  const Config c = plain_config();
  Harness h = Harness::established(c);
  Harness r = restore_of(h, c, 10);
  r.send(seg().seq(5001).ack(1012).win(10000));  // 11 > 10
  EXPECT_EQ(r.conn.counters().drop_bad_ack, 1u);
  EXPECT_EQ(r.conn.tcb().snd_una, SeqNum{1001});
  r.recv(seg().seq(1001).ack(5001).win(10000));

  Harness none = restore_of(h, c);  // no slack: as before
  none.send(seg().seq(5001).ack(1002).win(10000));
  EXPECT_EQ(none.conn.counters().drop_bad_ack, 1u);
  none.recv(seg().seq(1001).ack(5001).win(10000));
}

}  // namespace
}  // namespace phalanx::tcp::test
