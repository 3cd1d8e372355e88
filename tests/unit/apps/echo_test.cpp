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

TEST(EchoStream, RetainsWhatWasSentUntilTheAcknowledgement) {
  EchoStream s(8, true);
  EXPECT_EQ(s.on_input(bytes("abcdef")), 6u);
  EXPECT_EQ(take(s, 4), "abcd");
  EXPECT_EQ(s.buffered(), 2u);
  EXPECT_EQ(s.held(), 6u);  // sent is not forgotten: the peer may not have it
  EXPECT_EQ(s.on_input(bytes("ghijk")), 2u);
  s.acknowledge(3);  // "abc" acknowledged
  EXPECT_EQ(s.start(), 3u);
  EXPECT_EQ(s.on_input(bytes("ijk")), 3u);  // wraps around
  s.acknowledge(100);                       // only what was sent goes
  EXPECT_EQ(s.start(), 4u);
  EXPECT_EQ(take(s, 100), "efghijk");
  std::string held(s.held(), '\0');
  s.copy_held(reinterpret_cast<std::byte*>(held.data()));
  EXPECT_EQ(held, "efghijk");
  EXPECT_EQ(s.end(), 11u);
}

std::string state_bytes(const stack::AppSnapshot& snap) {
  return std::string(reinterpret_cast<const char*>(snap.state.data()) + kEchoSnapshotHead,
                     snap.state.size() - kEchoSnapshotHead);
}

// DESIGN §6: an echo session resumes on another member from its snapshot, which holds every byte
// taken and not yet acknowledged by the peer; the new owner sends exactly the rest.
TEST(EchoTcp, ResumableSessionGoesOnFromItsSnapshotOnANewOwner) {
  FakeTransport old_t;
  EchoTcp old_owner(old_t, 64, true);
  old_owner.on_open(kConn);
  EXPECT_FALSE(EchoTcp(old_t).snapshot(kConn, 0));  // not resumable: no snapshot
  EXPECT_EQ(old_owner.on_data(kConn, bytes("hello ")), 6u);
  EXPECT_EQ(old_owner.on_data(kConn, bytes("world")), 5u);
  old_owner.on_peer_closed(kConn);
  EXPECT_EQ(old_t.conns[kConn].sent, "hello world");
  EXPECT_TRUE(old_t.conns[kConn].shut_down);
  const auto snap = old_owner.snapshot(kConn, 2);  // the peer acknowledged "he"
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->determined, 11u);  // the output is known up to the input taken
  EXPECT_EQ(state_bytes(*snap), "llo world");
  EXPECT_EQ(std::to_integer<int>(snap->state[7]), 2);  // offset of the first held byte
  EXPECT_EQ(std::to_integer<int>(snap->state[8]), 1);  // the peer closed

  // The new owner's stack resumes at offset 4 (the replicated point may be past the snapshot's).
  FakeTransport new_t;
  EchoTcp new_owner(new_t, 64, true);
  constexpr ConnectionId kAdopted{5, 3};
  ASSERT_TRUE(new_owner.on_adopted(kAdopted, wire::Bytes(snap->state), 4));
  EXPECT_EQ(new_t.conns[kAdopted].sent, "o world");
  EXPECT_TRUE(new_t.conns[kAdopted].shut_down);  // the peer's FIN is not delivered again
  EXPECT_EQ(new_owner.counters().adopted, 1u);
  // It holds the rest until acknowledged, for the next takeover.
  const auto again = new_owner.snapshot(kAdopted, 6);
  ASSERT_TRUE(again);
  EXPECT_EQ(state_bytes(*again), "world");
  EXPECT_EQ(again->determined, 11u);
}

TEST(EchoTcp, ResumableSessionPausesAtItsWindowAndResumesOnTheAcknowledgement) {
  FakeTransport t;
  EchoTcp echo(t, 8, true);
  echo.on_open(kConn);
  EXPECT_EQ(echo.on_data(kConn, bytes("abcdefghij")), 8u);  // the rest stays with the stack
  EXPECT_EQ(t.conns[kConn].sent, "abcdefgh");
  EXPECT_EQ(t.conns[kConn].resumes, 0);
  ASSERT_TRUE(echo.snapshot(kConn, 1));  // 1 byte free: below a quarter, still paused
  EXPECT_EQ(t.conns[kConn].resumes, 0);
  const auto snap = echo.snapshot(kConn, 5);
  ASSERT_TRUE(snap);
  EXPECT_EQ(t.conns[kConn].resumes, 1);
  EXPECT_EQ(state_bytes(*snap), "fgh");
  EXPECT_EQ(echo.on_data(kConn, bytes("ij")), 2u);
  EXPECT_EQ(t.conns[kConn].sent, "abcdefghij");
}

// A session that is not replicated (no backup yet) gets no snapshot() calls: the replicator
// tells the application what the peer acknowledged instead, or its window never reopens.
TEST(EchoTcp, ResumableSessionWithoutABackupResumesOnTheAcknowledgementToo) {
  FakeTransport t;
  EchoTcp echo(t, 8, true);
  echo.on_open(kConn);
  EXPECT_EQ(echo.on_data(kConn, bytes("abcdefghij")), 8u);
  echo.on_acknowledged(kConn, 8);
  EXPECT_EQ(t.conns[kConn].resumes, 1);
  EXPECT_EQ(echo.on_data(kConn, bytes("ij")), 2u);
  EXPECT_EQ(t.conns[kConn].sent, "abcdefghij");
}

TEST(EchoTcp, RefusesASnapshotItCannotResumeFrom) {
  FakeTransport t;
  EchoTcp echo(t, 8, true);
  const std::string short_state(5, '\0');
  EXPECT_FALSE(echo.on_adopted(kConn, bytes(short_state), 0));
  std::string state(kEchoSnapshotHead, '\0');
  state[8] = 2;  // peer-closed flag out of range
  EXPECT_FALSE(echo.on_adopted(kConn, bytes(state), 0));
  state[8] = 0;
  state[7] = 10;                                                           // held bytes start at 10
  EXPECT_FALSE(echo.on_adopted(kConn, bytes(state + "abc"), 9));           // before them
  EXPECT_FALSE(echo.on_adopted(kConn, bytes(state + "abc"), 14));          // beyond them
  EXPECT_FALSE(echo.on_adopted(kConn, bytes(state + "abcdefghijk"), 10));  // over the buffer
  EXPECT_EQ(echo.counters().adopt_refused, 5u);
  EXPECT_EQ(echo.connections(), 0u);
  EXPECT_FALSE(EchoTcp(t).on_adopted(kConn, bytes(state), 10));   // not resumable
  ASSERT_TRUE(echo.on_adopted(kConn, bytes(state + "abc"), 13));  // everything acknowledged
  EXPECT_EQ(t.conns[kConn].sent, "");
  EXPECT_FALSE(t.conns[kConn].shut_down);
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
