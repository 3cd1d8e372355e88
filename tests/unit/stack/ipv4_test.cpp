// IPv4 in and out through frames: the input checklist with its counters, echo replies, fragment
// reassembly (and its bounds), output fragmentation, and the cluster filter hook.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "harness.hpp"

namespace phalanx::stack::test {
namespace {

using phalanx::test::hex;

// Echo request 198.18.0.1 -> 198.18.0.100, id 0x42 seq 1, 56 bytes 00..37 (as `ping` sends).
const Frame kPing =
    hex("02 00 00 00 0a 00 02 00 00 00 00 01 08 00 45 00"
        "00 54 12 34 40 00 40 01 9b eb c6 12 00 01 c6 12"
        "00 64 08 00 00 aa 00 42 00 01 00 01 02 03 04 05"
        "06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15"
        "16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23 24 25"
        "26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35"
        "36 37");

// The reply: to the MAC the request came from, ident 0 (the first datagram of a stack whose
// secret is zero), no DF, TTL 64, the ICMP checksum computed over the whole message.
const Frame kPong =
    hex("02 00 00 00 00 01 02 00 00 00 0a 00 08 00 45 00"
        "00 54 00 00 00 00 40 01 ee 1f c6 12 00 64 c6 12"
        "00 01 00 00 08 aa 00 42 00 01 00 01 02 03 04 05"
        "06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15"
        "16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23 24 25"
        "26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35"
        "36 37");

TEST(Ipv4, PingIsAnsweredByteForByte) {
  Harness h;
  h.send(kPing);
  EXPECT_EQ(h.recv(), kPong);
  h.recv_nothing();
  EXPECT_EQ(h.counters().count(Counter::icmp_echo_replies), 1u);
  EXPECT_EQ(h.counters().total_drops(), 0u);
}

Frame with_byte(Frame f, std::size_t at, std::uint8_t v) {
  f[at] = std::byte{v};
  return f;
}

TEST(Ipv4, InputChecklistCountsEveryDrop) {
  constexpr std::size_t kIp = 14;
  struct Case {
    const char* what;
    Frame frame;
    Drop drop;
  };
  const Frame other_mac = [] {
    Frame f = kPing;
    f[5] = std::byte{0x77};
    return f;
  }();
  const Case cases[] = {
      {"runt frame", hex("02 00 00 00 0a 00 02 00"), Drop::eth_malformed},
      {"another host's MAC", other_mac, Drop::eth_not_for_us},
      {"IPv6", with_byte(with_byte(kPing, 12, 0x86), 13, 0xdd), Drop::eth_unknown_type},
      {"version 6 in an IPv4 frame", with_byte(kPing, kIp, 0x65), Drop::ip_bad_version},
      {"header length 4 words", with_byte(kPing, kIp, 0x44), Drop::ip_malformed},
      {"total length past the frame", with_byte(kPing, kIp + 2, 0x01), Drop::ip_malformed},
      {"bad header checksum", with_byte(kPing, kIp + 10, 0x00), Drop::ip_bad_checksum},
      {"bad ICMP checksum", with_byte(kPing, kIp + 23, 0x00), Drop::icmp_bad_checksum},
      {"echo reply", ip_frame(Ip{.protocol = wire::ipproto::kIcmp}, bytes(kPong).subspan(34)),
       Drop::icmp_unsupported},
      {"not for us",
       ip_frame(Ip{.dst = wire::Ipv4Addr{198, 18, 0, 5}, .protocol = wire::ipproto::kIcmp},
                bytes(icmp_echo(1, 1, {}))),
       Drop::ip_not_for_us},
      {"source is broadcast",
       ip_frame(Ip{.src = wire::Ipv4Addr{255, 255, 255, 255}, .protocol = wire::ipproto::kIcmp},
                bytes(icmp_echo(1, 1, {}))),
       Drop::ip_bad_source},
      {"source is our own address",
       ip_frame(Ip{.src = kOurIp, .protocol = wire::ipproto::kIcmp}, bytes(icmp_echo(1, 1, {}))),
       Drop::ip_bad_source},
      {"unknown protocol (GRE)", ip_frame(Ip{.protocol = 47}, bytes(hex("00 00 08 00"))),
       Drop::ip_unknown_protocol},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Harness h;
    h.send(c.frame);
    EXPECT_EQ(h.counters().drops(c.drop), 1u);
    EXPECT_EQ(h.counters().total_drops(), 1u);
    h.clear();
  }
}

TEST(Ipv4, UnknownProtocolGetsProtocolUnreachable) {
  Harness h;
  h.send(ip_frame(Ip{.protocol = 47}, bytes(hex("00 00 08 00"))));
  const Parsed p = parse(h.recv());
  ASSERT_TRUE(p.ip);
  auto icmp = wire::IcmpView::parse(p.l4);
  EXPECT_EQ(icmp->type(), wire::icmp::kDestUnreachable);
  EXPECT_EQ(icmp->code(), wire::icmp::kProtocolUnreachable);
}

// ---- fragments ------------------------------------------------------------------------------

// Splits `payload` (an IPv4 payload) into fragments of `chunk` bytes (a multiple of 8).
std::vector<Frame> fragments(Ip h, wire::Bytes payload, std::size_t chunk) {
  std::vector<Frame> out;
  for (std::size_t off = 0; off < payload.size(); off += chunk) {
    const std::size_t len = std::min(chunk, payload.size() - off);
    Ip f = h;
    f.df = false;
    f.offset = static_cast<std::uint16_t>(off);
    f.mf = off + len < payload.size();
    out.push_back(ip_frame(f, payload.subspan(off, len)));
  }
  return out;
}

// Reassembles what the stack sent (test side): payload by offset.
Frame reassemble(const std::vector<Frame>& frames) {
  std::map<std::size_t, Frame> parts;
  for (const Frame& f : frames) {
    const Parsed p = parse(f);
    EXPECT_TRUE(p.ip);
    EXPECT_LE(p.ip_bytes.size(), 1500u);
    parts[p.ip->fragment_offset] = Frame(p.l4.begin(), p.l4.end());
  }
  Frame whole;
  for (const auto& [off, data] : parts) {
    EXPECT_EQ(off, whole.size());
    whole.insert(whole.end(), data.begin(), data.end());
  }
  return whole;
}

Frame big_data(std::size_t n) {
  Frame d(n);
  for (std::size_t i = 0; i < n; ++i) {
    d[i] = std::byte(i * 7 + 3);
  }
  return d;
}

TEST(Ipv4, FragmentedPingIsReassembledAndAnsweredInFragments) {
  Harness h;
  const Frame data = big_data(3000);
  const Frame echo = icmp_echo(0x77, 9, bytes(data));
  auto frags = fragments(Ip{.protocol = wire::ipproto::kIcmp}, bytes(echo), 1480);
  ASSERT_EQ(frags.size(), 3u);
  // Out of order: last, first, middle.
  h.send(frags[2]);
  h.send(frags[0]);
  h.recv_nothing();
  h.send(frags[1]);
  EXPECT_EQ(h.counters().count(Counter::frag_reassembled), 1u);
  std::vector<Frame> reply;
  while (h.pending() > 0) {
    reply.push_back(h.recv());
  }
  ASSERT_EQ(reply.size(), 3u);
  EXPECT_EQ(h.counters().count(Counter::ip_fragments_sent), 3u);
  const Frame whole = reassemble(reply);
  auto r = wire::IcmpEchoRepr::parse(bytes(whole));  // verifies the full checksum
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, wire::IcmpEchoRepr::Kind::reply);
  EXPECT_EQ(r->identifier, 0x77);
  EXPECT_EQ(r->sequence, 9);
  EXPECT_TRUE(std::ranges::equal(r->payload, data));
  EXPECT_EQ(h.counters().total_drops(), 0u);
}

TEST(Ipv4, OverlappingFragmentsDiscardTheDatagram) {
  Harness h;
  const Frame echo = icmp_echo(1, 1, bytes(big_data(64)));
  Ip ip{.protocol = wire::ipproto::kIcmp, .df = false};
  Ip first = ip;
  first.mf = true;
  Ip overlap = ip;
  overlap.mf = true;
  overlap.offset = 16;
  Ip rest = ip;
  rest.offset = 32;
  h.send(ip_frame(first, bytes(echo).first(32)));
  h.send(ip_frame(overlap, bytes(echo).subspan(16, 24)));  // 16..40 overlaps 0..32
  EXPECT_EQ(h.counters().drops(Drop::frag_overlap), 1u);
  // RFC 5722: the later fragments are dropped too, and nothing is reassembled.
  h.send(ip_frame(rest, bytes(echo).subspan(32)));
  EXPECT_EQ(h.counters().drops(Drop::frag_overlap), 2u);
  h.recv_nothing();
  EXPECT_EQ(h.counters().count(Counter::frag_reassembled), 0u);
}

TEST(Ipv4, ExactDuplicateFragmentsAreIgnored) {
  Harness h;
  const Frame echo = icmp_echo(1, 1, bytes(big_data(64)));
  auto frags = fragments(Ip{.protocol = wire::ipproto::kIcmp}, bytes(echo), 40);
  h.send(frags[0]);
  h.send(frags[0]);
  EXPECT_EQ(h.counters().drops(Drop::frag_duplicate), 1u);
  h.send(frags[1]);
  EXPECT_EQ(h.counters().count(Counter::icmp_echo_replies), 1u);
}

TEST(Ipv4, OversizedAndMalformedFragmentsAreCounted) {
  Harness h;
  // The last fragment would end past 65535 bytes ("ping of death").
  Ip tail{.protocol = wire::ipproto::kIcmp, .df = false};
  tail.offset = 65528;
  h.send(ip_frame(tail, bytes(big_data(16))));
  EXPECT_EQ(h.counters().drops(Drop::frag_too_big), 1u);
  // A fragment with more to come whose length is not a multiple of 8.
  Ip odd{.protocol = wire::ipproto::kIcmp, .ident = 7, .df = false, .mf = true};
  h.send(ip_frame(odd, bytes(big_data(13))));
  EXPECT_EQ(h.counters().drops(Drop::frag_malformed), 1u);
  h.recv_nothing();
}

TEST(Ipv4, IncompleteDatagramsTimeOut) {
  Harness h;
  const Frame echo = icmp_echo(1, 1, bytes(big_data(64)));
  auto frags = fragments(Ip{.protocol = wire::ipproto::kIcmp}, bytes(echo), 40);
  h.send(frags[0]);
  EXPECT_EQ(h.stack().next_deadline(), h.now() + seconds(30));
  h.advance(seconds(29));
  EXPECT_EQ(h.counters().drops(Drop::frag_timeout), 0u);
  h.advance(seconds(1));
  EXPECT_EQ(h.counters().drops(Drop::frag_timeout), 1u);
  // The rest arrives too late: it starts a new datagram that never completes.
  h.send(frags[1]);
  h.recv_nothing();
  EXPECT_EQ(h.stack().next_deadline(), h.now() + seconds(30));
}

TEST(Ipv4, ReassemblyMemoryIsBounded) {
  StackConfig c = default_config();
  c.limits.reassembly_bytes = 8 * 1024;
  c.limits.reassembly_datagrams = 4;
  Harness h(c);
  // 10 datagrams, each left incomplete with 1480 bytes held: at most 4 (and 8 KiB) at once.
  const Frame data = big_data(3000);
  for (std::uint16_t i = 0; i < 10; ++i) {
    auto frags = fragments(Ip{.protocol = wire::ipproto::kIcmp, .ident = i}, bytes(data), 1480);
    h.send(frags[0]);
  }
  EXPECT_EQ(h.counters().drops(Drop::frag_no_memory), 6u);
  EXPECT_LE(h.counters().drops(Drop::frag_no_memory), 10u);
  // A new datagram still completes, evicting the oldest to make room.
  const Frame echo = icmp_echo(1, 1, bytes(data));
  for (const Frame& f :
       fragments(Ip{.protocol = wire::ipproto::kIcmp, .ident = 100}, bytes(echo), 1480)) {
    h.send(f);
  }
  EXPECT_EQ(h.counters().count(Counter::frag_reassembled), 1u);
  EXPECT_EQ(h.counters().count(Counter::icmp_echo_replies), 1u);
}

// ---- output ---------------------------------------------------------------------------------

TEST(Ipv4, TransmitRingOverflowIsCounted) {
  StackConfig c = default_config();
  c.limits.tx_ring_frames = 2;
  Harness h(c);
  for (int i = 0; i < 3; ++i) {
    h.stack().on_frame(h.now(), bytes(kPing));
  }
  EXPECT_EQ(h.counters().drops(Drop::tx_queue_full), 1u);
  h.collect();
  EXPECT_EQ(h.pending(), 2u);
}

// ---- the cluster filter hook ------------------------------------------------------------------

class FixedFilter : public FrameFilter {
 public:
  explicit FixedFilter(FilterVerdict v) : v_(v) {}
  FilterVerdict on_frame(Time, wire::Bytes) override {
    ++frames;
    return v_;
  }
  FilterVerdict on_datagram(Time, wire::Bytes) override {
    ++datagrams;
    return v_;
  }
  int frames = 0;
  int datagrams = 0;

 private:
  FilterVerdict v_;
};

TEST(Ipv4, TheClusterFilterDecidesForPacketsToTheServedAddress) {
  for (FilterVerdict v : {FilterVerdict::mine, FilterVerdict::not_mine, FilterVerdict::taken}) {
    Harness h;
    FixedFilter f(v);
    h.stack().set_filter(&f);
    h.send(kPing);
    EXPECT_EQ(f.frames, 1);
    EXPECT_EQ(h.pending(), v == FilterVerdict::mine ? 1u : 0u);
    EXPECT_EQ(h.counters().drops(Drop::filter_not_mine), v == FilterVerdict::not_mine ? 1u : 0u);
    EXPECT_EQ(h.counters().count(Counter::filter_taken), v == FilterVerdict::taken ? 1u : 0u);
    // ARP does not pass the filter; inject() skips it.
    h.clear();
    h.stack().inject(h.now(), bytes(kPing));
    h.collect();
    EXPECT_EQ(h.pending(), 1u);
    EXPECT_EQ(f.frames, 1);
  }
}

TEST(Ipv4, TheFilterSeesReassembledDatagramsWhole) {
  Harness h;
  FixedFilter f(FilterVerdict::not_mine);
  h.stack().set_filter(&f);
  const Frame echo = icmp_echo(1, 1, bytes(big_data(64)));
  for (const Frame& frag : fragments(Ip{.protocol = wire::ipproto::kIcmp}, bytes(echo), 40)) {
    h.send(frag);
  }
  EXPECT_EQ(f.frames, 0);
  EXPECT_EQ(f.datagrams, 1);
  EXPECT_EQ(h.counters().drops(Drop::filter_not_mine), 1u);
  h.recv_nothing();
}

}  // namespace
}  // namespace phalanx::stack::test
