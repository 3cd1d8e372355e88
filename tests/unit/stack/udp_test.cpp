// UDP through frames: an echo service on a test handler, port unreachable for closed ports with
// its rate limit, and the checks on input.
#include <gtest/gtest.h>

#include "harness.hpp"

namespace phalanx::stack::test {
namespace {

using phalanx::test::hex;

// Echoes every datagram back from within the callback (re-entrant udp_send).
class Echo : public UdpHandler {
 public:
  explicit Echo(Stack& stack) : stack_(stack) {}
  void on_datagram(Endpoint from, std::uint16_t to_port, wire::Bytes payload) override {
    ++received;
    last_from = from;
    EXPECT_FALSE(stack_.udp_send(to_port, from, payload).has_value());
  }
  int received = 0;
  Endpoint last_from;

 private:
  Stack& stack_;
};

const Frame kHello = hex("68 65 6c 6c 6f 0a");

TEST(Udp, EchoThroughAHandler) {
  Harness h;
  Echo echo(h.stack());
  ASSERT_TRUE(h.stack().udp_bind(7, &echo));
  EXPECT_FALSE(h.stack().udp_bind(7, &echo));  // taken
  h.send(ip_frame(Ip{}, bytes(udp(kClientIp, 40000, kOurIp, 7, bytes(kHello)))));
  EXPECT_EQ(echo.received, 1);
  EXPECT_EQ(echo.last_from, (Endpoint{kClientIp, 40000}));
  // The reply goes back to the MAC the datagram came from, without ARP.
  const Frame reply = h.recv();
  const Parsed p = parse(reply);
  EXPECT_EQ(p.eth.dst, kClientMac);
  EXPECT_EQ(p.ip->src, kOurIp);
  EXPECT_EQ(p.ip->dst, kClientIp);
  auto u = wire::UdpRepr::parse(p.l4, p.ip->src, p.ip->dst);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->src_port, 7);
  EXPECT_EQ(u->dst_port, 40000);
  EXPECT_TRUE(std::ranges::equal(u->payload, kHello));
  h.recv_nothing();
  EXPECT_EQ(h.counters().count(Counter::udp_delivered), 1u);
  EXPECT_EQ(h.counters().count(Counter::udp_sent), 1u);
  EXPECT_EQ(h.counters().total_drops(), 0u);
  // Unbound: the port is closed again.
  EXPECT_TRUE(h.stack().udp_unbind(7));
  h.send(ip_frame(Ip{}, bytes(udp(kClientIp, 40000, kOurIp, 7, bytes(kHello)))));
  EXPECT_EQ(echo.received, 1);
  EXPECT_EQ(h.counters().drops(Drop::udp_no_listener), 1u);
}

TEST(Udp, LargeDatagramsAreFragmented) {
  Harness h;
  Echo echo(h.stack());
  ASSERT_TRUE(h.stack().udp_bind(7, &echo));
  Frame big(4000, std::byte{0x5a});
  const Frame d = udp(kClientIp, 40000, kOurIp, 7, bytes(big));
  // Sent to us in fragments of 1480, echoed in fragments of at most 1500-byte datagrams.
  for (std::size_t off = 0; off < d.size(); off += 1480) {
    const std::size_t len = std::min<std::size_t>(1480, d.size() - off);
    h.send(ip_frame(Ip{.df = false, .mf = off + len < d.size(), .offset = std::uint16_t(off)},
                    bytes(d).subspan(off, len)));
  }
  EXPECT_EQ(echo.received, 1);
  EXPECT_EQ(h.pending(), 3u);
  EXPECT_EQ(h.counters().count(Counter::ip_fragments_sent), 3u);
}

TEST(Udp, ClosedPortGetsPortUnreachable) {
  Harness h;
  const Frame datagram =
      ipv4(Ip{.ident = 0x4242}, bytes(udp(kClientIp, 40000, kOurIp, 9, bytes(kHello))));
  h.send(ethernet(kOurMac, kClientMac, wire::ethertype::kIpv4, bytes(datagram)));
  const Parsed p = parse(h.recv());
  ASSERT_TRUE(p.ip);
  EXPECT_EQ(p.ip->protocol, wire::ipproto::kIcmp);
  EXPECT_EQ(p.ip->dst, kClientIp);
  EXPECT_EQ(p.eth.dst, kClientMac);
  auto icmp = wire::IcmpView::parse(p.l4);
  ASSERT_TRUE(icmp.ok());
  EXPECT_TRUE(icmp->checksum_ok());
  EXPECT_EQ(icmp->type(), wire::icmp::kDestUnreachable);
  EXPECT_EQ(icmp->code(), wire::icmp::kPortUnreachable);
  EXPECT_EQ(icmp->rest(), 0u);
  // It quotes the offending datagram (all of it: it is short).
  EXPECT_TRUE(std::ranges::equal(icmp->payload(), datagram));
  EXPECT_EQ(h.counters().drops(Drop::udp_no_listener), 1u);
  EXPECT_EQ(h.counters().count(Counter::icmp_unreachables), 1u);
}

TEST(Udp, PortUnreachableIsRateLimited) {
  StackConfig c = default_config();
  c.limits.icmp_error_burst = 5;
  c.limits.icmp_errors_per_second = 10;
  Harness h(c);
  const Frame f = ip_frame(Ip{}, bytes(udp(kClientIp, 40000, kOurIp, 9, bytes(kHello))));
  for (int i = 0; i < 8; ++i) {
    h.send(f);
  }
  EXPECT_EQ(h.counters().count(Counter::icmp_unreachables), 5u);
  EXPECT_EQ(h.counters().drops(Drop::icmp_rate_limited), 3u);
  // One token every 100 ms.
  h.advance(milliseconds(100));
  h.send(f);
  h.send(f);
  EXPECT_EQ(h.counters().count(Counter::icmp_unreachables), 6u);
  EXPECT_EQ(h.counters().drops(Drop::icmp_rate_limited), 4u);
}

// As Linux (icmp_ratelimit, inet_peer_xrlim_allow): one client cannot draw the whole global
// allowance; each destination has its own small bucket.
TEST(Udp, PortUnreachableIsRateLimitedPerDestination) {
  StackConfig c = default_config();
  c.limits.icmp_error_burst = 1000;
  c.limits.icmp_errors_per_second = 1000;
  c.limits.icmp_errors_per_destination_burst = 6;
  c.limits.icmp_error_interval_per_destination = seconds(1);
  Harness h(c);
  const wire::Ipv4Addr other{198, 18, 0, 77};
  const Frame from_client = ip_frame(Ip{}, bytes(udp(kClientIp, 40000, kOurIp, 9, bytes(kHello))));
  for (int i = 0; i < 100; ++i) {
    h.send(from_client);
  }
  EXPECT_EQ(h.counters().count(Counter::icmp_unreachables), 6u);
  EXPECT_EQ(h.counters().drops(Drop::icmp_dest_limited), 94u);
  EXPECT_EQ(h.counters().drops(Drop::icmp_rate_limited), 0u);
  // Another destination has its own bucket.
  Ip ip_other;
  ip_other.src = other;
  const Frame from_other = ip_frame(ip_other, bytes(udp(other, 40000, kOurIp, 9, bytes(kHello))));
  for (int i = 0; i < 10; ++i) {
    h.send(from_other);
  }
  EXPECT_EQ(h.counters().count(Counter::icmp_unreachables), 12u);
  // One more per second for the first.
  h.advance(seconds(1));
  h.send(from_client);
  h.send(from_client);
  EXPECT_EQ(h.counters().count(Counter::icmp_unreachables), 13u);
}

TEST(Udp, BadDatagramsAreCounted) {
  Harness h;
  Echo echo(h.stack());
  ASSERT_TRUE(h.stack().udp_bind(7, &echo));
  Frame bad_sum = udp(kClientIp, 40000, kOurIp, 7, bytes(kHello));
  bad_sum[6] ^= std::byte{0xff};
  h.send(ip_frame(Ip{}, bytes(bad_sum)));
  Frame bad_len = udp(kClientIp, 40000, kOurIp, 7, bytes(kHello));
  bad_len[5] = std::byte{0x40};  // length beyond the datagram
  h.send(ip_frame(Ip{}, bytes(bad_len)));
  // A zero checksum means "none" over IPv4 (RFC 768) and is accepted.
  Frame no_sum = udp(kClientIp, 40000, kOurIp, 7, bytes(kHello));
  no_sum[6] = no_sum[7] = std::byte{0};
  h.send(ip_frame(Ip{}, bytes(no_sum)));
  EXPECT_EQ(h.counters().drops(Drop::udp_bad_checksum), 1u);
  EXPECT_EQ(h.counters().drops(Drop::udp_malformed), 1u);
  EXPECT_EQ(echo.received, 1);
}

TEST(Udp, NoPortUnreachableForLinkBroadcasts) {
  Harness h;
  const Frame d = ipv4(Ip{}, bytes(udp(kClientIp, 40000, kOurIp, 9, bytes(kHello))));
  h.send(ethernet(wire::MacAddr::broadcast(), kClientMac, wire::ethertype::kIpv4, bytes(d)));
  h.recv_nothing();
  EXPECT_EQ(h.counters().drops(Drop::udp_no_listener), 1u);
  EXPECT_EQ(h.counters().count(Counter::icmp_unreachables), 0u);
}

}  // namespace
}  // namespace phalanx::stack::test
