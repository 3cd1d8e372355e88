// Bulk transfers through the whole stack with the real applications (apps::HttpServer,
// apps::EchoTcp) against a Linux-like peer (tcp_peer.hpp): more than a send buffer's worth of
// data, fast and slow readers, both ways of closing. These are the conversations phalanxd has
// with curl and with an echo client over a veth.
#include <gtest/gtest.h>

#include <string>

#include "apps/echo.hpp"
#include "apps/file_source.hpp"
#include "apps/http_server.hpp"
#include "apps/stack_transport.hpp"
#include "harness.hpp"
#include "tcp_peer.hpp"

namespace phalanx::stack::test {
namespace {

class HttpTransfer : public ::testing::Test {
 protected:
  static constexpr std::size_t kFileSize = 1 << 20;  // four default send buffers

  HttpTransfer() : transport_(h_.stack()), server_(transport_, files_) {
    file_ = random_bytes(kFileSize, 0x5eed);
    files_.add("file", file_);
    EXPECT_TRUE(h_.stack().tcp_listen(80, &server_));
  }

  // GET /file, read the whole response, close; the stack must end with no connection left, no
  // drop and no reset.
  void fetch(TcpPeer& peer, std::string_view request, Duration limit) {
    peer.connect();
    peer.write(request);
    const bool complete = peer.run(
        [&] { return body_of(peer.received()).size() >= kFileSize || peer.reset(); }, limit);
    const std::string body = body_of(peer.received());
    ASSERT_TRUE(complete) << "stalled after " << body.size() << " of " << kFileSize
                          << " body bytes; connections " << h_.stack().tcp_connection_count();
    EXPECT_FALSE(peer.reset());
    ASSERT_EQ(body.size(), kFileSize);
    EXPECT_TRUE(body == file_) << "the body differs from the file";
  }

  Harness h_;
  apps::MemoryFileSource files_;
  apps::StackTransport transport_;
  apps::http::HttpServer server_;
  std::string file_;
};

// curl's way: HTTP/1.1 keep-alive, the client closes first once it has the whole body.
TEST_F(HttpTransfer, FileLargerThanTheSendBufferArrivesWhole) {
  TcpPeer peer(h_, 80);
  fetch(peer, "GET /file HTTP/1.1\r\nHost: t\r\nUser-Agent: curl\r\nAccept: */*\r\n\r\n",
        std::chrono::seconds(10));
  peer.shutdown();
  ASSERT_TRUE(
      peer.run([&] { return peer.fin_received() && peer.all_acked(); }, std::chrono::seconds(5)));
  peer.step();  // our ACK of the server's FIN: LAST-ACK -> CLOSED
  EXPECT_EQ(h_.stack().tcp_connection_count(), 0u);
  EXPECT_EQ(server_.connections(), 0u);
  EXPECT_EQ(server_.counters().sessions.body_bytes, kFileSize);
  EXPECT_EQ(h_.counters().total_drops(), 0u);
  h_.stack().check_invariants();
}

// Connection: close: the server shuts down while most of the response is still queued and
// unacknowledged; the FIN must follow the last byte, and nothing may be freed before.
TEST_F(HttpTransfer, ServerCloseWithDataQueuedDeliversEverything) {
  TcpPeer peer(h_, 80);
  fetch(peer, "GET /file HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        std::chrono::seconds(10));
  ASSERT_TRUE(peer.run([&] { return peer.fin_received(); }, std::chrono::seconds(5)));
  EXPECT_EQ(server_.connections(), 1u);  // FIN-WAIT-2: the peer may still send
  peer.shutdown();
  ASSERT_TRUE(peer.run([&] { return peer.all_acked(); }, std::chrono::seconds(5)));
  EXPECT_EQ(server_.connections(), 0u);  // on_closed came with TIME-WAIT
  // TIME-WAIT holds the 4-tuple: late ACKs from the peer are answered by the connection, not
  // by the listener.
  EXPECT_EQ(h_.stack().tcp_connection_count(), 1u);
  h_.advance(std::chrono::seconds(61));
  h_.recv_nothing();
  EXPECT_EQ(h_.stack().tcp_connection_count(), 0u);
  EXPECT_EQ(h_.counters().total_drops(), 0u);
  h_.stack().check_invariants();
}

// A reader that takes 8 KiB per 2 ms tick behind a 256 KiB buffer and ACKs every eighth
// segment: the window closes, the stack probes it, and the transfer resumes each time.
TEST_F(HttpTransfer, SlowReaderWithZeroWindowsArrivesWhole) {
  PeerOptions o;
  o.rcv_buffer = 256 * 1024;
  o.read_per_tick = 8 * 1024;
  o.ack_every = 8;
  o.tick = std::chrono::milliseconds(2);
  TcpPeer peer(h_, 80, o);
  fetch(peer, "GET /file HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        std::chrono::seconds(60));
  EXPECT_GT(peer.zero_windows_seen(), 0u);
  ASSERT_TRUE(peer.run([&] { return peer.fin_received(); }, std::chrono::seconds(5)));
  EXPECT_EQ(h_.counters().total_drops(), 0u);
  h_.stack().check_invariants();
}

// A peer that ACKs only on its delayed-ACK timer (every 40 ms) over a long path.
TEST_F(HttpTransfer, SlowAckerArrivesWhole) {
  PeerOptions o;
  o.ack_every = 1000;
  o.tick = std::chrono::milliseconds(10);
  TcpPeer peer(h_, 80, o);
  fetch(peer, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n", std::chrono::seconds(120));
  EXPECT_EQ(h_.counters().total_drops(), 0u);
  h_.stack().check_invariants();
}

// A transmit ring of two frames, far below one window: connections stop at the full ring and go
// on from on_timer() once the driver drained it, instead of losing segments to the RTO.
TEST(HttpTransferRing, ATinyTransmitRingDefersInsteadOfDropping) {
  StackConfig config = default_config();
  config.limits.tx_ring_frames = 2;
  Harness h(config);
  apps::MemoryFileSource files;
  const std::string file = random_bytes(512 * 1024, 0x7117);
  files.add("file", file);
  apps::StackTransport transport(h.stack());
  apps::http::HttpServer server(transport, files);
  ASSERT_TRUE(h.stack().tcp_listen(80, &server));
  PeerOptions o;
  o.ack_every = 16;  // each ACK opens room for a burst longer than the ring
  TcpPeer peer(h, 80, o);
  peer.connect();
  peer.write("GET /file HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(peer.run([&] { return body_of(peer.received()).size() >= file.size(); },
                       std::chrono::seconds(10)));
  EXPECT_TRUE(body_of(peer.received()) == file);
  EXPECT_EQ(h.counters().drops(Drop::tx_queue_full), 0u);
  EXPECT_GT(h.counters().count(Counter::tcp_tx_deferred), 0u);
  h.stack().check_invariants();
}

// ---- echo ---------------------------------------------------------------------------------

class EchoTransfer : public ::testing::Test {
 protected:
  EchoTransfer() : transport_(h_.stack()), echo_(transport_) {
    EXPECT_TRUE(h_.stack().tcp_listen(apps::kEchoPort, &echo_));
  }
  Harness h_;
  apps::StackTransport transport_;
  apps::EchoTcp echo_;
};

// Three full segments and a short tail, to a Linux-like peer that ACKs every second segment at
// once and delays the ACK of an odd one by 40 ms. Classic Nagle held the tail until that delayed
// ACK; Minshall's rule (Linux's) sends it at once, as no earlier short segment is unacknowledged.
TEST_F(EchoTransfer, TheTailOfAReplyDoesNotWaitForADelayedAck) {
  const std::string data = random_bytes(3 * 1448 + 100, 0x7a11);
  PeerOptions o;
  o.port = 40008;
  o.ack_every = 2;
  o.delayed_ack = std::chrono::milliseconds(40);
  TcpPeer peer(h_, apps::kEchoPort, o);
  peer.connect();
  const Time start = h_.now();
  peer.write(data);
  ASSERT_TRUE(peer.run([&] { return peer.received().size() >= data.size() || peer.reset(); },
                       std::chrono::seconds(1)));
  EXPECT_TRUE(peer.received() == data);
  EXPECT_LT(h_.now() - start, std::chrono::milliseconds(10));
}

// 4 MB sent as fast as the window allows to a peer that reads 16 KiB per millisecond: its
// buffer fills, then ours, then the echo buffer; the echo pauses receiving, our window closes,
// and the peer waits. Every byte comes back, in order, and the connection closes cleanly.
TEST_F(EchoTransfer, FourMegabytesThroughASlowReaderComeBackByteExact) {
  constexpr std::size_t kSize = 4 << 20;
  const std::string data = random_bytes(kSize, 0xec40);
  PeerOptions o;
  o.port = 40007;
  o.rcv_buffer = 256 * 1024;
  o.read_per_tick = 16 * 1024;
  o.tick = std::chrono::milliseconds(1);
  TcpPeer peer(h_, apps::kEchoPort, o);
  peer.connect();
  peer.write(data);
  peer.shutdown();
  const bool done =
      peer.run([&] { return (peer.fin_received() && peer.unread() == 0) || peer.reset(); },
               std::chrono::seconds(60));
  ASSERT_TRUE(done) << "stalled after " << peer.received().size() << " of " << kSize;
  EXPECT_FALSE(peer.reset());
  ASSERT_EQ(peer.received().size(), kSize);
  EXPECT_TRUE(peer.received() == data) << "the echo differs";
  EXPECT_GT(echo_.counters().receive_pauses, 0u);
  EXPECT_GT(h_.counters().count(Counter::tcp_receive_paused), 0u);
  EXPECT_EQ(echo_.counters().overflow_aborts, 0u);
  EXPECT_EQ(echo_.counters().bytes_echoed, kSize);
  peer.step();  // our ACK of the echo's FIN: LAST-ACK -> CLOSED
  EXPECT_EQ(h_.stack().tcp_connection_count(), 0u);
  EXPECT_EQ(echo_.connections(), 0u);
  EXPECT_EQ(h_.counters().total_drops(), 0u);
  h_.stack().check_invariants();
}

// An upload to echo from a peer that reads the echo at once, over a 0.5 ms round trip: the
// echo buffer still fills (the echo back is slower to start than the upload: slow start), the
// echo pauses receiving and resumes, and each resume must open our window at once with a window
// update (RFC 9293 §3.8.6.2.2): this peer, like Linux, sends nothing more into a closed window
// until told, and has no persist timer here, so a lost update shows as a stall. The bound is
// ten times what the window and round trip allow (about 10 ms for 4 MB).
TEST_F(EchoTransfer, AnUploadThroughPausesRunsAtWindowSpeed) {
  constexpr std::size_t kSize = 4 << 20;
  const std::string data = random_bytes(kSize, 0xec41);
  PeerOptions o;
  o.port = 40009;
  TcpPeer peer(h_, apps::kEchoPort, o);
  peer.connect();
  const Time start = h_.now();
  peer.write(data);
  const bool done = peer.run([&] { return peer.received().size() >= kSize || peer.reset(); },
                             std::chrono::milliseconds(100));
  ASSERT_TRUE(done) << "only " << peer.received().size() << " of " << kSize
                    << " echoed within 100 ms";
  EXPECT_TRUE(peer.received() == data) << "the echo differs";
  EXPECT_GT(h_.counters().count(Counter::tcp_receive_paused), 0u) << "no pause: not exercised";
  EXPECT_LT(h_.now() - start, std::chrono::milliseconds(100));
  EXPECT_EQ(h_.counters().total_drops(), 0u);
  h_.stack().check_invariants();
}

}  // namespace
}  // namespace phalanx::stack::test
