// Stack::tcp_adopt (session takeover, DESIGN §6): a connection exported from one member's stack
// and restored on another's goes on with the same peer, byte for byte; the ack limit seen
// through the stack.
#include <string>
#include <vector>

#include "harness.hpp"
#include "tcp_peer.hpp"

namespace phalanx::stack::test {
namespace {

// Keeps what it receives; sends only when told.
class Recorder : public TcpHandler {
 public:
  void on_open(ConnectionId id) override { opened.push_back(id); }
  void on_adopted(ConnectionId id) override { adopted.push_back(id); }
  std::size_t on_data(ConnectionId, wire::Bytes data) override {
    received.append(reinterpret_cast<const char*>(data.data()), data.size());
    return data.size();
  }
  void on_writable(ConnectionId) override {}
  void on_peer_closed(ConnectionId) override { peer_closed = true; }
  void on_closed(ConnectionId, CloseReason) override { ++closed; }

  std::vector<ConnectionId> opened;
  std::vector<ConnectionId> adopted;
  std::string received;
  bool peer_closed = false;
  int closed = 0;
};

void send(Harness& h, ConnectionId id, std::string_view s) {
  const auto b = reinterpret_cast<const std::byte*>(s.data());
  ASSERT_EQ(h.stack().tcp_send(id, wire::Bytes(b, s.size())), s.size());
}

struct Exported {
  tcp::InitialState initial;
  tcp::EssentialState essential;
};

// A conversation on member A: the peer sends "hello ", A's application answers "first ".
class AdoptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(a_.stack().tcp_listen(80, &app_a_));
    peer_.connect();
    ASSERT_EQ(app_a_.opened.size(), 1u);
    id_a_ = app_a_.opened[0];
    peer_.write("hello ");
    ASSERT_TRUE(peer_.run([&] { return app_a_.received == "hello "; }, seconds(1)));
    send(a_, id_a_, "first ");
    // Until A holds no unacknowledged byte (the peer's delayed ACK).
    ASSERT_TRUE(peer_.run(
        [&] {
          const tcp::Connection* c = a_.stack().tcp_connection(id_a_);
          return peer_.received() == "first " && c != nullptr && c->send_queued() == 0;
        },
        seconds(1)));
    const tcp::Connection* c = a_.stack().tcp_connection(id_a_);
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->send_queued(), 0u);
    exported_ = {c->export_initial(), c->export_essential()};
  }

  // Member B, on the same clock as A from now on.
  tcp::Connection restored_on_b() {
    b_.advance(a_.now() - b_.now());
    return tcp::Connection::restore(default_config().tcp, exported_.initial, exported_.essential,
                                    b_.now());
  }

  Harness a_;
  Harness b_;
  Recorder app_a_;
  Recorder app_b_;
  TcpPeer peer_{a_, 80};
  ConnectionId id_a_;
  Exported exported_;
};

TEST_F(AdoptTest, AdoptedConnectionCarriesOnTheConversation) {
  const std::optional<ConnectionId> id = b_.stack().tcp_adopt(restored_on_b(), &app_b_);
  ASSERT_TRUE(id.has_value());
  // on_adopted() in place of on_open(), before tcp_adopt() returned.
  ASSERT_EQ(app_b_.adopted.size(), 1u);
  EXPECT_EQ(app_b_.adopted[0], *id);
  EXPECT_TRUE(app_b_.opened.empty());
  EXPECT_EQ(b_.counters().count(Counter::tcp_adopted), 1u);
  EXPECT_EQ(b_.stack().tcp_connection_count(), 1u);
  const std::optional<TcpInfo> info = b_.stack().tcp_info(*id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->remote.addr, kClientIp);
  b_.recv_nothing();  // nothing owed

  // A is gone; the peer talks to B.
  peer_.move_to(b_);
  peer_.write("world");
  ASSERT_TRUE(peer_.run([&] { return app_b_.received == "world"; }, seconds(1)));
  send(b_, *id, "second");
  ASSERT_TRUE(peer_.run([&] { return peer_.received() == "first second"; }, seconds(1)));
  EXPECT_EQ(app_a_.received, "hello ");
  EXPECT_FALSE(peer_.reset());

  // And it closes as any other: the peer first, then B's application.
  peer_.shutdown();
  ASSERT_TRUE(peer_.run([&] { return app_b_.peer_closed; }, seconds(1)));
  ASSERT_TRUE(b_.stack().tcp_shutdown(*id));
  ASSERT_TRUE(peer_.run([&] { return peer_.fin_received() && peer_.all_acked(); }, seconds(1)));
  peer_.step();
  EXPECT_EQ(app_b_.closed, 1);
  EXPECT_EQ(b_.counters().drops(Drop::tcp_no_connection), 0u);
  b_.stack().check_invariants();
}

TEST_F(AdoptTest, AdoptingATupleInUseFails) {
  // A still holds it.
  const std::size_t before = a_.stack().tcp_connection_count();
  EXPECT_FALSE(a_.stack().tcp_adopt(restored_on_b(), &app_b_).has_value());
  EXPECT_EQ(a_.counters().drops(Drop::tcp_adopt_in_use), 1u);
  EXPECT_EQ(a_.stack().tcp_connection_count(), before);
  EXPECT_TRUE(app_b_.adopted.empty());
  // On B: once, then not twice.
  ASSERT_TRUE(b_.stack().tcp_adopt(restored_on_b(), &app_b_).has_value());
  EXPECT_FALSE(b_.stack().tcp_adopt(restored_on_b(), &app_b_).has_value());
  EXPECT_EQ(b_.counters().drops(Drop::tcp_adopt_in_use), 1u);
  EXPECT_EQ(app_b_.adopted.size(), 1u);
  a_.stack().check_invariants();
  b_.stack().check_invariants();
}

TEST_F(AdoptTest, AdoptingIntoAFullTableOrForAnotherAddressFails) {
  StackConfig config = default_config();
  config.limits.max_connections = 1;
  Harness c(config);
  c.advance(a_.now() - c.now());
  ASSERT_TRUE(c.stack().tcp_adopt(restored_on_b(), &app_b_).has_value());
  tcp::InitialState other = exported_.initial;
  other.tuple.remote_port = 40001;
  EXPECT_FALSE(
      c.stack()
          .tcp_adopt(tcp::Connection::restore(config.tcp, other, exported_.essential, c.now()),
                     &app_b_)
          .has_value());
  EXPECT_EQ(c.counters().drops(Drop::tcp_connection_limit), 1u);

  tcp::InitialState elsewhere = exported_.initial;
  elsewhere.tuple.local_addr = kGatewayIp;
  EXPECT_FALSE(
      b_.stack()
          .tcp_adopt(tcp::Connection::restore(config.tcp, elsewhere, exported_.essential, b_.now()),
                     &app_b_)
          .has_value());
  EXPECT_EQ(b_.counters().drops(Drop::tcp_adopt_invalid), 1u);
}

TEST_F(AdoptTest, AckLimitHoldsTheAckOfDataUntilRaised) {
  // Output commit through the stack: A acknowledges the peer's bytes only once allowed.
  const tcp::Connection* c = a_.stack().tcp_connection(id_a_);
  ASSERT_TRUE(a_.stack().tcp_set_limits(id_a_, c->ack_wanted(), std::nullopt));
  const tcp::SeqNum held = c->tcb().rcv_nxt;
  peer_.write(std::string(3000, 'x'));
  for (int i = 0; i < 200; ++i) {  // 100 ms: past the delayed ACK
    peer_.step();
  }
  EXPECT_EQ(app_a_.received.size(), 3006u);  // delivered to the application...
  EXPECT_FALSE(peer_.all_acked());           // ...but not acknowledged
  EXPECT_EQ(c->tcb().last_ack_sent, held);
  ASSERT_TRUE(a_.stack().tcp_set_limits(id_a_, std::nullopt, std::nullopt));
  a_.collect();
  ASSERT_GT(a_.pending(), 0u);  // released at once
  peer_.step();
  EXPECT_TRUE(peer_.all_acked());
}

}  // namespace
}  // namespace phalanx::stack::test
