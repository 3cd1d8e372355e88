// The send limit (DESIGN §6, the send side of output commit): no new byte and no FIN at or
// beyond it leaves; retransmissions below snd_max still do; it is no zero window (no probe).
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

// From Harness::established(): snd_nxt 1001, rcv_nxt 5001, windows 10000 both ways, MSS 1000.

TEST(SendLimit, NewDataStopsAtTheLimitUntilItMoves) {
  Harness h = Harness::established(plain_config());
  h.conn.set_send_limit(SeqNum{2501});
  h.app_send(std::string(3000, 'x'));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(std::string(1000, 'x')));
  // 500 bytes remain below the limit: a runt, held as the SWS rule holds one for a window.
  h.recv_nothing();
  h.send(seg().seq(5001).ack(2001).win(10000));
  h.tick(5s);  // no zero-window probe against the limit
  h.recv_nothing();
  h.conn.set_send_limit(SeqNum{4001});
  h.recv(seg().seq(2001).ack(5001).win(10000).data(std::string(1000, 'x')));
  h.recv(seg().psh().seq(3001).ack(5001).win(10000).data(std::string(1000, 'x')));
  h.recv_nothing();
}

TEST(SendLimit, RetransmissionsBelowTheLimitStillLeave) {
  Harness h = Harness::established(plain_config());
  h.app_send(std::string(2000, 'x'));
  h.recv(seg().seq(1001).ack(5001).win(10000).data(std::string(1000, 'x')));
  h.recv(seg().psh().seq(2001).ack(5001).win(10000).data(std::string(1000, 'x')));
  h.conn.set_send_limit(SeqNum{3001});
  h.tick(1s);  // the RTO: the first unacknowledged segment again
  h.recv(seg().seq(1001).ack(5001).win(10000).data(std::string(1000, 'x')));
}

TEST(SendLimit, TheFinMaySitOnTheLimitNotBeyond) {
  Harness h = Harness::established(plain_config());
  h.conn.set_send_limit(SeqNum{1005});
  h.app_send("abcd");
  h.recv(seg().psh().seq(1001).ack(5001).win(10000).data("abcd"));
  h.conn.set_send_limit(SeqNum{1004});  // (a limit never goes back; here it shows the rule)
  h.conn.shutdown();
  h.recv_nothing();  // the FIN would be at 1005, beyond the limit
  h.conn.set_send_limit(SeqNum{1005});
  h.recv(seg().fin().seq(1005).ack(5001).win(10000));
}

TEST(SendLimit, NoLimitIsExactlyAsBefore) {
  Harness a = Harness::established(plain_config());
  Harness b = Harness::established(plain_config());
  b.conn.set_send_limit(std::nullopt);
  a.app_send(std::string(2500, 'y'));
  b.app_send(std::string(2500, 'y'));
  for (int i = 0; i < 3; ++i) {
    auto sa = a.conn.poll_transmit(a.now);
    auto sb = b.conn.poll_transmit(b.now);
    ASSERT_EQ(sa.has_value(), sb.has_value());
    if (sa) {
      EXPECT_EQ(sa->seq, sb->seq);
      EXPECT_EQ(sa->payload.size(), sb->payload.size());
    }
  }
}

}  // namespace
}  // namespace phalanx::tcp::test
