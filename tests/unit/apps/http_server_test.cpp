// HttpServer: the adapter between the stack's TcpHandler callbacks and HttpSession, against a
// fake transport.
#include "apps/http_server.hpp"

#include <gtest/gtest.h>

#include <string>

#include "fake_transport.hpp"

namespace phalanx::apps::http {
namespace {

using test::bytes;
using test::FakeTransport;

constexpr ConnectionId kConn{3, 1};

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    std::string big;
    for (int i = 0; i < 20000; ++i) {
      big += static_cast<char>('a' + i % 26);
    }
    big_ = big;
    files_.add("big.txt", big);
    files_.add("a.txt", "A");
  }
  FakeTransport t_;
  MemoryFileSource files_;
  std::string big_;
};

TEST_F(HttpServerTest, StreamsAsSendSpaceOpens) {
  SessionLimits limits;
  limits.chunk_size = 1024;
  HttpServer server(t_, files_, limits);
  server.on_open(kConn);
  t_.conns[kConn].space = 100;
  server.on_data(kConn, bytes("GET /big.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(t_.conns[kConn].sent.size(), 100u);
  while (!t_.conns[kConn].shut_down) {
    const std::size_t before = t_.conns[kConn].sent.size();
    t_.conns[kConn].space = 1500;
    server.on_writable(kConn);
    ASSERT_GT(t_.conns[kConn].sent.size(), before);
  }
  const std::string& sent = t_.conns[kConn].sent;
  const auto body_at = sent.find("\r\n\r\n") + 4;
  EXPECT_EQ(sent.substr(body_at), big_);
  EXPECT_NE(sent.find("Connection: close\r\n"), std::string::npos);
  server.on_closed(kConn, stack::CloseReason::closed);
  EXPECT_EQ(server.connections(), 0u);
  EXPECT_EQ(server.counters().sessions.body_bytes, big_.size());
  EXPECT_EQ(server.counters().sessions.status_2xx, 1u);
}

TEST_F(HttpServerTest, KeepAliveStaysOpenAndPeerFinShutsDown) {
  HttpServer server(t_, files_);
  server.on_open(kConn);
  server.on_data(kConn, bytes("GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_TRUE(t_.conns[kConn].sent.ends_with("\r\n\r\nA"));
  EXPECT_FALSE(t_.conns[kConn].shut_down);
  server.on_data(kConn, bytes("GET /a.txt HTTP/1.1\r\n"));
  server.on_peer_closed(kConn);  // the partial second request is dropped
  EXPECT_TRUE(t_.conns[kConn].shut_down);
  EXPECT_EQ(server.counters().sessions.responses, 1u);
}

TEST_F(HttpServerTest, PipelinedInputBeyondTheBacklogWaitsWithTheStack) {
  SessionLimits limits;
  limits.parser.max_queued = 1;
  limits.max_backlog = 64;
  HttpServer server(t_, files_, limits);
  server.on_open(kConn);
  t_.conns[kConn].space = 0;  // the peer does not read, and keeps sending
  const std::string one = "GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n";  // 32 bytes
  std::string requests;
  for (int i = 0; i < 10; ++i) {
    requests += one;
  }
  // One request parsed, 64 bytes held: the rest stays in the stack's window.
  std::size_t taken = server.on_data(kConn, bytes(requests));
  EXPECT_EQ(taken, one.size() + 64);
  EXPECT_FALSE(t_.conns[kConn].aborted);
  EXPECT_EQ(server.counters().input_paused, 1u);
  // The peer reads: answers go out, the parser takes held requests, receiving resumes, and the
  // stack offers the rest again until all ten are answered.
  for (int round = 0; round < 20 && taken < requests.size(); ++round) {
    t_.conns[kConn].space = 1 << 20;
    server.on_writable(kConn);
    if (t_.conns[kConn].resumes > 0) {
      t_.conns[kConn].resumes = 0;
      taken += server.on_data(kConn, bytes(requests).subspan(taken));
    }
  }
  EXPECT_EQ(taken, requests.size());
  server.on_writable(kConn);
  EXPECT_EQ(server.counters().sessions.responses, 10u);
  EXPECT_EQ(server.counters().aborted, 0u);
  EXPECT_EQ(server.counters().sessions.input_overflow, 0u);
}

TEST_F(HttpServerTest, BadRequestIsAnsweredThenShutDown) {
  HttpServer server(t_, files_);
  server.on_open(kConn);
  server.on_data(kConn, bytes("BREW /pot HTCPCP/1.0\r\n\r\n"));
  EXPECT_TRUE(t_.conns[kConn].sent.starts_with("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_TRUE(t_.conns[kConn].shut_down);
  EXPECT_FALSE(t_.conns[kConn].aborted);
  EXPECT_EQ(server.counters().sessions.parse_errors, 1u);
}

}  // namespace
}  // namespace phalanx::apps::http

namespace phalanx::apps::http {
namespace {

// DESIGN §6: a download resumes on another member from the snapshot, at the offset the new
// owner's TCP asks for, byte for byte.
TEST_F(HttpServerTest, ASnapshotResumesTheDownloadOnAnotherServer) {
  SessionLimits limits;
  limits.chunk_size = 1024;
  limits.retain_until_acked = true;
  HttpServer old_owner(t_, files_, limits);
  old_owner.on_open(kConn);
  t_.conns[kConn].space = 5000;
  old_owner.on_data(kConn, bytes("GET /big.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::string first = t_.conns[kConn].sent;
  ASSERT_EQ(first.size(), 5000u);
  // The peer acknowledged 3000 bytes; the old owner dies with 2000 sent and unacknowledged.
  const auto snap = old_owner.snapshot(kConn, 3000);
  ASSERT_TRUE(snap);

  FakeTransport t2;
  HttpServer new_owner(t2, files_, limits);
  constexpr ConnectionId kAdopted{7, 1};
  t2.conns[kAdopted].space = 1 << 20;
  EXPECT_EQ(snap->determined, first.find("\r\n\r\n") + 4 + big_.size());
  ASSERT_TRUE(new_owner.on_adopted(kAdopted, wire::Bytes(snap->state), 3000));
  const std::string& rest = t2.conns[kAdopted].sent;
  const std::string whole = first.substr(0, 3000) + rest;
  const auto body_at = whole.find("\r\n\r\n") + 4;
  EXPECT_EQ(whole.substr(body_at), big_);
  EXPECT_EQ(new_owner.counters().adopted, 1u);
}

TEST_F(HttpServerTest, WithoutRetentionThereIsNoSnapshotAndGarbageIsRefused) {
  HttpServer server(t_, files_);
  server.on_open(kConn);
  EXPECT_FALSE(server.snapshot(kConn, 0));
  SessionLimits limits;
  limits.retain_until_acked = true;
  HttpServer other(t_, files_, limits);
  const std::byte junk[3]{};
  EXPECT_FALSE(other.on_adopted(ConnectionId{9, 1}, wire::Bytes(junk, 3), 0));
  EXPECT_EQ(other.counters().adopt_refused, 1u);
  EXPECT_EQ(other.connections(), 0u);
}

}  // namespace
}  // namespace phalanx::apps::http
