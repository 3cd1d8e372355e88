// ARP through frames: requests for the served address answered (only when replies are on),
// others ignored, announcements, and next-hop resolution with its queue and retries.
#include <gtest/gtest.h>

#include "harness.hpp"

namespace phalanx::stack::test {
namespace {

using phalanx::test::hex;

// "Who has 198.18.0.100? Tell 198.18.0.1", as Linux sends it (padded to 60 bytes).
const Frame kRequestForUs =
    hex("ff ff ff ff ff ff 02 00 00 00 00 01 08 06"
        "00 01 08 00 06 04 00 01 02 00 00 00 00 01 c6 12 00 01"
        "00 00 00 00 00 00 c6 12 00 64"
        "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");

const Frame kReplyToClient =
    hex("02 00 00 00 00 01 02 00 00 00 0a 00 08 06"
        "00 01 08 00 06 04 00 02 02 00 00 00 0a 00 c6 12 00 64"
        "02 00 00 00 00 01 c6 12 00 01");

TEST(Arp, RequestForTheServedAddressIsAnswered) {
  Harness h;
  h.send(kRequestForUs);
  EXPECT_EQ(h.recv(), kReplyToClient);
  h.recv_nothing();
  EXPECT_EQ(h.counters().count(Counter::arp_replies_sent), 1u);
  EXPECT_EQ(h.counters().total_drops(), 0u);
}

TEST(Arp, ReplyBindsTheServedMacButLeavesFromOurOwn) {
  StackConfig c = default_config();
  c.served_mac = wire::MacAddr{{0x01, 0x00, 0x5e, 0x12, 0x00, 0x64}};  // multicast cluster MAC
  Harness h(c);
  h.send(kRequestForUs);
  const Frame reply = h.recv();
  EXPECT_EQ(parse(reply).eth.src, kOurMac);  // DESIGN §3: never the cluster MAC as a source
  auto got = wire::ArpRepr::parse(wire::EthernetView::parse(bytes(reply))->payload());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->sender_mac, *c.served_mac);
  EXPECT_EQ(got->sender_ip, kOurIp);
}

TEST(Arp, OtherAddressesAndOtherCasesAreIgnoredAndCounted) {
  struct Case {
    const char* what;
    wire::ArpRepr arp;
    Drop drop;
  };
  const Case cases[] = {
      {"request for another address",
       wire::ArpRepr::request(kClientMac, kClientIp, wire::Ipv4Addr{198, 18, 0, 7}),
       Drop::arp_not_for_us},
      {"announcement by a neighbour", wire::ArpRepr::gratuitous(kClientMac, kClientIp),
       Drop::arp_not_for_us},
      {"sender is broadcast",
       wire::ArpRepr::request(kClientMac, wire::Ipv4Addr{255, 255, 255, 255}, kOurIp),
       Drop::arp_bad_sender},
      {"sender MAC is our own", wire::ArpRepr::request(kOurMac, kClientIp, kOurIp),
       Drop::arp_bad_sender},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Harness h;
    h.send(arp_frame(c.arp));
    h.recv_nothing();
    EXPECT_EQ(h.counters().drops(c.drop), 1u);
  }
}

TEST(Arp, MalformedAndForeignArpIsCounted) {
  Harness h;
  Frame shortened(kRequestForUs.begin(), kRequestForUs.begin() + 14 + 20);
  h.send(shortened);
  Frame rarp = kRequestForUs;
  rarp[14 + 7] = std::byte{3};  // RARP request
  h.send(rarp);
  h.recv_nothing();
  EXPECT_EQ(h.counters().drops(Drop::arp_malformed), 1u);
  EXPECT_EQ(h.counters().drops(Drop::arp_unsupported), 1u);
}

TEST(Arp, NoRepliesWhenTurnedOffAsAFollower) {
  Harness h;
  h.stack().set_arp_replies(false);
  h.send(kRequestForUs);
  h.recv_nothing();
  EXPECT_EQ(h.counters().drops(Drop::arp_replies_off), 1u);
  h.stack().set_arp_replies(true);
  h.send(kRequestForUs);
  EXPECT_EQ(h.recv(), kReplyToClient);
}

TEST(Arp, ConflictingClaimIsCountedNotAnswered) {
  Harness h;
  h.send(arp_frame(wire::ArpRepr::gratuitous(kClientMac, kOurIp)));
  h.recv_nothing();
  EXPECT_EQ(h.counters().count(Counter::arp_conflicts), 1u);
}

TEST(Arp, GratuitousAnnouncementFormat) {
  Harness h;
  h.stack().announce();
  h.collect();
  // RFC 5227 §2.3: a broadcast request, sender = target = the served address, target MAC zero.
  EXPECT_EQ(h.recv(), hex("ff ff ff ff ff ff 02 00 00 00 0a 00 08 06"
                          "00 01 08 00 06 04 00 01 02 00 00 00 0a 00 c6 12 00 64"
                          "00 00 00 00 00 00 c6 12 00 64"));
  EXPECT_EQ(h.counters().count(Counter::arp_announcements), 1u);
}

class UdpSink : public UdpHandler {
 public:
  void on_datagram(Endpoint, std::uint16_t, wire::Bytes) override {}
};

const std::vector<std::byte> kPayload = hex("68 65 6c 6c 6f");  // "hello"

TEST(Arp, NextHopIsResolvedAndTheQueuedPacketReleased) {
  Harness h;
  const wire::Ipv4Addr peer{198, 18, 0, 7};
  const wire::MacAddr peer_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x07}};
  EXPECT_FALSE(h.stack().udp_send(5000, Endpoint{peer, 6000}, bytes(kPayload)).has_value());
  h.collect();
  // The request, broadcast, target MAC zero.
  EXPECT_EQ(h.recv(), hex("ff ff ff ff ff ff 02 00 00 00 0a 00 08 06"
                          "00 01 08 00 06 04 00 01 02 00 00 00 0a 00 c6 12 00 64"
                          "00 00 00 00 00 00 c6 12 00 07"));
  h.recv_nothing();
  // A second datagram waits behind the same request.
  EXPECT_FALSE(h.stack().udp_send(5000, Endpoint{peer, 6000}, bytes(kPayload)).has_value());
  h.collect();
  h.recv_nothing();
  // The reply releases both, addressed to the learned MAC.
  h.send(arp_frame(wire::ArpRepr::reply(peer_mac, peer, kOurMac, kOurIp), kOurMac));
  for (int i = 0; i < 2; ++i) {
    const Parsed p = parse(h.recv());
    EXPECT_EQ(p.eth.dst, peer_mac);
    EXPECT_EQ(p.eth.src, kOurMac);
    ASSERT_TRUE(p.ip);
    EXPECT_EQ(p.ip->dst, peer);
    auto u = wire::UdpRepr::parse(p.l4, p.ip->src, p.ip->dst);
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->dst_port, 6000);
    EXPECT_TRUE(std::ranges::equal(u->payload, kPayload));
  }
  h.recv_nothing();
  // Cached now: the next one goes at once, and nothing is left to retry.
  EXPECT_FALSE(h.stack().udp_send(5000, Endpoint{peer, 6000}, bytes(kPayload)).has_value());
  h.collect();
  EXPECT_EQ(parse(h.recv()).eth.dst, peer_mac);
  EXPECT_EQ(h.stack().next_deadline(), kNever);
  EXPECT_EQ(h.counters().count(Counter::arp_requests_sent), 1u);
}

TEST(Arp, RequestsNeverRebindTheServedAddress) {
  const wire::MacAddr cluster_mac{{0x01, 0x00, 0x5e, 0x12, 0x00, 0x64}};
  const wire::Ipv4Addr peer{198, 18, 0, 7};
  const wire::MacAddr peer_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x07}};
  StackConfig c = default_config();
  c.served_mac = cluster_mac;
  {
    // The master names the cluster MAC, the binding every neighbour should keep.
    Harness h(c);
    EXPECT_FALSE(h.stack().udp_send(1, Endpoint{peer, 7}, bytes(kPayload)).has_value());
    h.collect();
    const Frame f = h.recv();
    EXPECT_EQ(parse(f).eth.src, kOurMac);
    auto arp = wire::ArpRepr::parse(wire::EthernetView::parse(bytes(f))->payload());
    EXPECT_EQ(arp->sender_mac, cluster_mac);
    EXPECT_EQ(arp->sender_ip, kOurIp);
  }
  {
    // A follower asks as an RFC 5227 probe (sender 0.0.0.0), which updates nobody's cache; the
    // reply to it (target 0.0.0.0, to the cluster MAC) releases the waiting datagram.
    c.answer_arp = false;
    Harness h(c);
    EXPECT_FALSE(h.stack().udp_send(1, Endpoint{peer, 7}, bytes(kPayload)).has_value());
    h.collect();
    auto arp = wire::ArpRepr::parse(wire::EthernetView::parse(bytes(h.recv()))->payload());
    EXPECT_EQ(arp->sender_mac, cluster_mac);
    EXPECT_TRUE(arp->sender_ip.is_unspecified());
    h.send(arp_frame(wire::ArpRepr::reply(peer_mac, peer, cluster_mac, wire::Ipv4Addr{}),
                     cluster_mac));
    EXPECT_EQ(parse(h.recv()).eth.dst, peer_mac);
    h.counters().for_each([](std::string_view name, std::uint64_t v) {
      EXPECT_TRUE(v == 0 || !name.starts_with("drop.")) << name;
    });
  }
}

TEST(Arp, OffLinePeersResolveTheGateway) {
  Harness h;
  EXPECT_FALSE(h.stack()
                   .udp_send(5000, Endpoint{wire::Ipv4Addr{203, 0, 113, 5}, 53}, bytes(kPayload))
                   .has_value());
  h.collect();
  auto arp = wire::ArpRepr::parse(wire::EthernetView::parse(bytes(h.recv()))->payload());
  ASSERT_TRUE(arp.ok());
  EXPECT_EQ(arp->target_ip, kGatewayIp);
  h.send(arp_frame(wire::ArpRepr::reply(kGatewayMac, kGatewayIp, kOurMac, kOurIp), kOurMac));
  const Parsed p = parse(h.recv());
  EXPECT_EQ(p.eth.dst, kGatewayMac);
  EXPECT_EQ(p.ip->dst, (wire::Ipv4Addr{203, 0, 113, 5}));
}

TEST(Arp, NoGatewayMeansNoRoute) {
  StackConfig c = default_config();
  c.gateway.reset();
  Harness h(c);
  EXPECT_EQ(h.stack().udp_send(5000, Endpoint{wire::Ipv4Addr{203, 0, 113, 5}, 53}, bytes(kPayload)),
            SendError::no_route);
  EXPECT_EQ(h.counters().drops(Drop::tx_no_route), 1u);
}

TEST(Arp, UnansweredRequestsAreRetriedThenThePacketsDropped) {
  Harness h;
  const wire::Ipv4Addr peer{198, 18, 0, 9};
  EXPECT_FALSE(h.stack().udp_send(5000, Endpoint{peer, 6000}, bytes(kPayload)).has_value());
  EXPECT_FALSE(h.stack().udp_send(5000, Endpoint{peer, 6000}, bytes(kPayload)).has_value());
  h.collect();
  EXPECT_EQ(h.pending(), 1u);  // one request
  h.clear();
  h.advance(seconds(1));  // retry 2
  h.advance(seconds(1));  // retry 3
  EXPECT_EQ(h.pending(), 2u);
  h.clear();
  EXPECT_EQ(h.counters().drops(Drop::arp_unresolved), 0u);
  h.advance(seconds(1));  // give up
  h.recv_nothing();
  EXPECT_EQ(h.counters().drops(Drop::arp_unresolved), 2u);
  EXPECT_EQ(h.counters().count(Counter::arp_requests_sent), 3u);
  EXPECT_EQ(h.stack().next_deadline(), kNever);
}

TEST(Arp, TheQueueAwaitingResolutionIsBounded) {
  StackConfig c = default_config();
  c.limits.arp_pending_per_host = 2;
  Harness h(c);
  const Endpoint peer{wire::Ipv4Addr{198, 18, 0, 9}, 6000};
  EXPECT_FALSE(h.stack().udp_send(1, peer, bytes(kPayload)).has_value());
  EXPECT_FALSE(h.stack().udp_send(1, peer, bytes(kPayload)).has_value());
  EXPECT_EQ(h.stack().udp_send(1, peer, bytes(kPayload)), SendError::queue_full);
  EXPECT_EQ(h.counters().drops(Drop::arp_queue_full), 1u);
}

TEST(Arp, EntriesExpire) {
  StackConfig c = default_config();
  c.limits.arp_entry_ttl = seconds(10);
  Harness h(c);
  const wire::Ipv4Addr peer{198, 18, 0, 7};
  const wire::MacAddr peer_mac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x07}};
  // Learned from a request addressed to us (RFC 826: the target adds the sender).
  h.send(arp_frame(wire::ArpRepr::request(peer_mac, peer, kOurIp)));
  h.clear();
  EXPECT_FALSE(h.stack().udp_send(1, Endpoint{peer, 7}, bytes(kPayload)).has_value());
  h.collect();
  EXPECT_EQ(parse(h.recv()).eth.dst, peer_mac);
  h.advance(seconds(11));
  EXPECT_FALSE(h.stack().udp_send(1, Endpoint{peer, 7}, bytes(kPayload)).has_value());
  h.collect();
  EXPECT_EQ(parse(h.recv()).eth.ethertype, wire::ethertype::kArp);  // asks again
}

}  // namespace
}  // namespace phalanx::stack::test
