// Keepalive (RFC 1122 4.2.3.6) and the deadlines the stack's timer wheel sees.
#include "harness.hpp"

namespace phalanx::tcp::test {
namespace {

Config keepalive_config() {
  Config c = plain_config();
  c.keepalive = true;
  c.keepalive_idle = 10s;
  c.keepalive_interval = 1s;
  c.keepalive_count = 3;
  return c;
}

TEST(Keepalive, ProbesAfterIdleAndAnAnswerResets) {
  Harness h = Harness::established(keepalive_config());
  EXPECT_EQ(h.conn.next_deadline(), h.now + 10s);
  h.tick(10s);
  h.recv(seg().seq(1000).ack(5001).win(10000));  // SEG.SEQ = SND.NXT - 1, no data
  h.tick(1s);
  h.recv(seg().seq(1000).ack(5001).win(10000));
  h.send(seg().seq(5001).ack(1001).win(10000));  // the peer is alive
  EXPECT_EQ(h.conn.next_deadline(), h.now + 10s);
  h.tick(9s);
  h.recv_nothing();
}

TEST(Keepalive, UnansweredProbesTimeOut) {
  Harness h = Harness::established(keepalive_config());
  h.tick(10s);
  for (int i = 0; i < 3; ++i) {
    h.recv(seg().seq(1000).ack(5001).win(10000));
    h.tick(1s);
  }
  EXPECT_EQ(h.conn.state(), State::closed);
  EXPECT_EQ(h.conn.close_reason(), CloseReason::timeout);
  h.recv_nothing();
}

TEST(Keepalive, OffByDefaultAndSwitchable) {
  Harness h = Harness::established(plain_config());
  EXPECT_EQ(h.conn.next_deadline(), kNever);
  h.conn.set_keepalive(true);
  EXPECT_EQ(h.conn.next_deadline(), Time{0} + std::chrono::hours(2));
  h.conn.set_keepalive(false);
  EXPECT_EQ(h.conn.next_deadline(), kNever);
}

TEST(Timers, DeadlineIsTheEarliestTimer) {
  Harness h = Harness::established(keepalive_config());
  h.send(seg().seq(5001).ack(1001).win(10000).data("x"));  // delayed ACK: 40 ms
  EXPECT_EQ(h.conn.next_deadline(), h.now + 40ms);
  h.app_send("y");
  h.recv(seg().psh().seq(1001).ack(5002).win(9999).data("y"));  // RTO 200 ms, ACK carried
  EXPECT_EQ(h.conn.next_deadline(), h.now + 200ms);
}

}  // namespace
}  // namespace phalanx::tcp::test
