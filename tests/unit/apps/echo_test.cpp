// Echo (RFC 862): EchoStream's ring, and EchoTcp/EchoUdp against a fake transport.
#include "apps/echo.hpp"

#include <gtest/gtest.h>

#include <string>

#include "fake_transport.hpp"

namespace phalanx::apps {
namespace {

using test::bytes;
using test::FakeTransport;

constexpr ConnectionId kConn{1, 1};
constexpr ConnectionId kOther{2, 7};

std::string take(EchoStream& s, std::size_t max) {
  std::string out;
  while (out.size() < max) {
    const wire::Bytes b = s.peek(max - out.size());
    if (b.empty()) {
      break;
    }
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
    s.consume(b.size());
  }
  return out;
}

TEST(EchoStream, WrapsAroundItsRing) {
  EchoStream s(8);
  EXPECT_EQ(s.on_input(bytes("abcdef")), 6u);
  EXPECT_EQ(take(s, 4), "abcd");
  EXPECT_EQ(s.on_input(bytes("ghijklmn")), 6u);  // 2 buffered + 6 = full
  EXPECT_EQ(s.space(), 0u);
  EXPECT_EQ(s.peek(100).size(), 4u);  // contiguous up to the end of the ring
  EXPECT_EQ(take(s, 100), "efghijkl");
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(EchoStream, FinishesAfterFinAndDrain) {
  EchoStream s(8);
  EXPECT_EQ(s.on_input(bytes("xy")), 2u);
  s.on_peer_closed();
  EXPECT_FALSE(s.finished());
  EXPECT_EQ(s.on_input(bytes("z")), 0u);  // nothing after FIN
  EXPECT_EQ(take(s, 10), "xy");
  EXPECT_TRUE(s.finished());
}

TEST(EchoTcp, EchoesDirectlyWhenThereIsSpace) {
  FakeTransport t;
  EchoTcp echo(t);
  echo.on_open(kConn);
  echo.on_data(kConn, bytes("hello"));
  echo.on_data(kConn, bytes(" world"));
  EXPECT_EQ(t.conns[kConn].sent, "hello world");
  EXPECT_EQ(echo.counters().bytes_echoed, 11u);
  EXPECT_FALSE(t.conns[kConn].shut_down);
}

TEST(EchoTcp, KeepsWhatTheStackRefusesAndResumesOnWritable) {
  FakeTransport t;
  EchoTcp echo(t, 16);
  echo.on_open(kConn);
  t.conns[kConn].space = 3;
  echo.on_data(kConn, bytes("abcdefgh"));
  EXPECT_EQ(t.conns[kConn].sent, "abc");
  echo.on_data(kConn, bytes("ij"));  // queued behind the rest, order kept
  EXPECT_EQ(t.conns[kConn].sent, "abc");
  t.conns[kConn].space = 4;
  echo.on_writable(kConn);
  EXPECT_EQ(t.conns[kConn].sent, "abcdefg");
  t.conns[kConn].space = 100;
  echo.on_writable(kConn);
  EXPECT_EQ(t.conns[kConn].sent, "abcdefghij");
}

TEST(EchoTcp, ShutsDownAfterFinOnceEverythingIsEchoed) {
  FakeTransport t;
  EchoTcp echo(t, 16);
  echo.on_open(kConn);
  t.conns[kConn].space = 2;
  echo.on_data(kConn, bytes("abcd"));
  echo.on_peer_closed(kConn);
  EXPECT_FALSE(t.conns[kConn].shut_down);  // "cd" still owed
  t.conns[kConn].space = 1;
  echo.on_writable(kConn);
  EXPECT_FALSE(t.conns[kConn].shut_down);
  t.conns[kConn].space = 10;
  echo.on_writable(kConn);
  EXPECT_EQ(t.conns[kConn].sent, "abcd");
  EXPECT_TRUE(t.conns[kConn].shut_down);
  echo.on_writable(kConn);  // late callbacks are harmless
  echo.on_closed(kConn, stack::CloseReason::closed);
  EXPECT_EQ(echo.connections(), 0u);
}

TEST(EchoTcp, FinWithNothingPendingShutsDownAtOnce) {
  FakeTransport t;
  EchoTcp echo(t);
  echo.on_open(kConn);
  echo.on_data(kConn, bytes("x"));
  echo.on_peer_closed(kConn);
  EXPECT_TRUE(t.conns[kConn].shut_down);
}

TEST(EchoTcp, FullBufferLeavesInputWithTheStackAndResumesAsItDrains) {
  FakeTransport t;
  EchoTcp echo(t, 8);
  echo.on_open(kConn);
  echo.on_open(kOther);
  t.conns[kConn].space = 0;
  EXPECT_EQ(echo.on_data(kConn, bytes("abcdefgh")), 8u);  // fits exactly
  EXPECT_EQ(echo.on_data(kConn, bytes("ijk")), 0u);       // full: the stack keeps it
  EXPECT_EQ(echo.counters().receive_pauses, 1u);
  EXPECT_FALSE(t.conns[kConn].aborted);
  EXPECT_EQ(t.conns[kConn].resumes, 0);
  t.conns[kConn].space = 1;
  echo.on_writable(kConn);  // 1 byte of room: below a quarter of the buffer, still paused
  EXPECT_EQ(t.conns[kConn].resumes, 0);
  t.conns[kConn].space = 1;
  echo.on_writable(kConn);  // 2 bytes of room: resume
  EXPECT_EQ(t.conns[kConn].resumes, 1);
  EXPECT_EQ(echo.on_data(kConn, bytes("ijk")), 2u);  // the stack offers the rest again
  t.conns[kConn].space = 100;
  echo.on_writable(kConn);
  EXPECT_EQ(t.conns[kConn].resumes, 2);
  EXPECT_EQ(echo.on_data(kConn, bytes("k")), 1u);
  EXPECT_EQ(t.conns[kConn].sent, "abcdefghijk");  // nothing lost, nothing reordered
  EXPECT_EQ(echo.counters().overflow_aborts, 0u);
  EXPECT_EQ(echo.on_data(kOther, bytes("ok")), 2u);  // the other connection is untouched
  EXPECT_EQ(t.conns[kOther].sent, "ok");
}

TEST(EchoUdp, AnswersEachDatagramToItsSender) {
  FakeTransport t;
  EchoUdp echo(t);
  const stack::Endpoint client{wire::Ipv4Addr{}, 40000};
  echo.on_datagram(client, kEchoPort, bytes("ping"));
  ASSERT_EQ(t.datagrams.size(), 1u);
  EXPECT_EQ(t.datagrams[0].from_port, kEchoPort);
  EXPECT_EQ(t.datagrams[0].to, client);
  EXPECT_EQ(t.datagrams[0].payload, "ping");
  echo.on_datagram(client, kEchoPort, bytes(""));  // empty datagrams are echoed too
  EXPECT_EQ(t.datagrams.size(), 2u);
  EXPECT_EQ(echo.counters().datagrams_echoed, 2u);
}

TEST(EchoUdp, RefusesPrivilegedSourcePortsAndCountsSendFailures) {
  FakeTransport t;
  EchoUdp echo(t);
  echo.on_datagram(stack::Endpoint{wire::Ipv4Addr{}, 19}, kEchoPort, bytes("chargen"));
  echo.on_datagram(stack::Endpoint{wire::Ipv4Addr{}, 7}, kEchoPort, bytes("echo"));
  EXPECT_TRUE(t.datagrams.empty());
  EXPECT_EQ(echo.counters().datagrams_refused, 2u);
  t.udp_fails = true;
  echo.on_datagram(stack::Endpoint{wire::Ipv4Addr{}, 5000}, kEchoPort, bytes("x"));
  EXPECT_EQ(echo.counters().datagrams_dropped, 1u);
}

}  // namespace
}  // namespace phalanx::apps
