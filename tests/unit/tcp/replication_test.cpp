// FIG. 7 export and restore: the essential state of an established connection rebuilds a
// connection that carries on where the old one stopped.
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

}  // namespace
}  // namespace phalanx::tcp::test
