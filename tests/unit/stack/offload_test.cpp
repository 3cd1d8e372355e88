// Segmentation offload (StackLimits::offload_max): the transmit queue's variable-sized frames,
// the software cut of stack/gso.hpp, the marked segments the stack hands a link that offloads,
// and the proof that offload changes nothing on the wire: a stack with it, cut in software,
// sends byte for byte the frames of a stack without it.
#include <gtest/gtest.h>

#include <string>

#include "apps/echo.hpp"
#include "apps/file_source.hpp"
#include "apps/http_server.hpp"
#include "apps/stack_transport.hpp"
#include "harness.hpp"
#include "stack/gso.hpp"
#include "stack/tx_ring.hpp"
#include "tcp_peer.hpp"
#include "wire/checksum.hpp"

namespace phalanx::stack::test {
namespace {

using wire::Ipv4View;
using wire::TcpView;

// ---- TxRing ---------------------------------------------------------------------------------

TEST(TxRing, FramesOfAnySizeLeaveInOrderWithTheirMeta) {
  TxRing ring(8, 1500);
  EXPECT_EQ(ring.free_slots(), 8u);
  wire::MutBytes a = ring.reserve();
  ASSERT_EQ(a.size(), ring.slot_size());
  a[0] = std::byte{1};
  ring.commit(60);
  wire::MutBytes b = ring.reserve(5000);  // the room of four frames
  ASSERT_EQ(b.size(), 5000u);
  b[0] = std::byte{2};
  ring.commit(4000, TxMeta{1448});
  EXPECT_EQ(ring.size(), 2u);
  EXPECT_EQ(ring.free_slots(), 5u);  // 64 + 4032 of 8 * 1536 bytes taken
  std::vector<std::pair<std::size_t, std::uint16_t>> seen;
  ring.drain([&](wire::Bytes f, TxMeta m) {
    seen.emplace_back(f.size(), m.gso_size);
    EXPECT_EQ(f[0], std::byte(seen.size()));
  });
  EXPECT_EQ(seen, (std::vector<std::pair<std::size_t, std::uint16_t>>{{60, 0}, {4000, 1448}}));
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(ring.free_slots(), 8u);  // drained: all the room is back
}

TEST(TxRing, BoundedByFramesAndByBytes) {
  TxRing by_frames(2, 1500);
  by_frames.reserve(64);
  by_frames.commit(64);
  by_frames.reserve(64);
  by_frames.commit(64);
  EXPECT_TRUE(by_frames.full());
  EXPECT_TRUE(by_frames.reserve(64).empty());
  TxRing by_bytes(4, 1500);
  EXPECT_FALSE(by_bytes.has_room(4 * 1536 + 1));
  EXPECT_TRUE(by_bytes.reserve(4 * 1536 + 1).empty());
  by_bytes.reserve(3 * 1536);
  by_bytes.commit(3 * 1536);
  EXPECT_EQ(by_bytes.free_slots(), 1u);
  EXPECT_FALSE(by_bytes.has_room(1537));
}

// ---- the software cut -------------------------------------------------------------------------

Frame super_segment(std::size_t payload, std::uint8_t flags) {
  return phalanx::test::offloadable_datagram(payload, flags);
}

TEST(GsoCut, PiecesAreWholeSegmentsAsLinuxGsoMakesThem) {
  using namespace wire::tcpflag;
  const Frame d = super_segment(3 * 1448 + 100, kAck | kPsh | kFin | kCwr);
  ASSERT_EQ(gso_pieces(bytes(d), 1448), 4u);
  std::size_t total = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    Frame out(1500);
    const std::size_t len = gso_piece(bytes(d), 1448, i, out);
    out.resize(len);
    auto ip = Ipv4View::parse(bytes(out));
    ASSERT_TRUE(ip) << "piece " << i;  // length and header checksum checked
    EXPECT_EQ(ip->ident(), static_cast<std::uint16_t>(0xfffe + i));
    EXPECT_TRUE(ip->dont_fragment());
    auto tcp = wire::TcpRepr::parse(ip->payload(), ip->src(), ip->dst());
    ASSERT_TRUE(tcp) << "piece " << i;  // the TCP checksum verifies
    EXPECT_EQ(tcp->seq, static_cast<std::uint32_t>(0xfffff000 + i * 1448));
    EXPECT_EQ(tcp->payload.size(), i < 3 ? 1448u : 100u);
    EXPECT_EQ(tcp->options.timestamps, (wire::TcpTimestamps{5, 6}));
    EXPECT_EQ(tcp->has(kFin) || tcp->has(kPsh), i == 3);
    EXPECT_EQ(tcp->has(kCwr), i == 0);
    EXPECT_TRUE(tcp->has(kAck));
    EXPECT_EQ(tcp->payload[0], std::byte((i * 1448) * 7 + 3));
    total += tcp->payload.size();
  }
  EXPECT_EQ(total, 3 * 1448 + 100u);
}

TEST(GsoCut, RefusesWhatIsNotTcpOverIpv4) {
  Frame d = super_segment(3000, wire::tcpflag::kAck);
  EXPECT_EQ(gso_pieces(bytes(d), 0), 0u);
  EXPECT_EQ(gso_pieces(wire::Bytes(d.data(), 30), 1448), 0u);  // total length disagrees
  d[Ipv4View::kProtocol] = std::byte{wire::ipproto::kUdp};
  EXPECT_EQ(gso_pieces(bytes(d), 1448), 0u);
  EXPECT_EQ(gso_pieces(wire::Bytes{}, 1448), 0u);
  const Frame empty = super_segment(0, wire::tcpflag::kAck);
  EXPECT_EQ(gso_pieces(bytes(empty), 1448), 0u);
}

// ---- the stack ----------------------------------------------------------------------------------

StackConfig offload_config() {
  StackConfig c = default_config();
  c.limits.offload_max = 65535;
  return c;
}

// A stack serving one file over http, and everything it sent for one download by TcpPeer.
struct Download {
  explicit Download(const StackConfig& config, const std::string& file) : h(config) {
    files.add("file", file);
    EXPECT_TRUE(h.stack().tcp_listen(80, &server));
    h.tap = &sent;
    h.on_drain = [this](wire::Bytes, TxMeta m) { marked += m.gso_size != 0 ? 1 : 0; };
  }
  std::string fetch(std::size_t size) {
    TcpPeer peer(h, 80);
    peer.connect();
    peer.write("GET /file HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_TRUE(peer.run([&] { return body_of(peer.received()).size() >= size || peer.reset(); },
                         std::chrono::seconds(10)));
    EXPECT_FALSE(peer.reset());
    return body_of(peer.received());
  }

  Harness h;
  apps::MemoryFileSource files;
  apps::StackTransport transport{h.stack()};
  apps::http::HttpServer server{transport, files};
  std::vector<Frame> sent;
  std::size_t marked = 0;
};

std::string describe(const Frame& f) {
  auto eth = wire::EthernetView::parse(bytes(f));
  if (!eth) {
    return "not Ethernet";
  }
  auto ip = Ipv4View::parse(eth->payload());
  if (!ip) {
    return "not IPv4";
  }
  auto t = wire::TcpRepr::parse(ip->payload(), ip->src(), ip->dst());
  if (!t) {
    return "not TCP";
  }
  return "id " + std::to_string(ip->ident()) + " seq " + std::to_string(t->seq) + " ack " +
         std::to_string(t->ack) + " flags " + std::to_string(t->flags) + " win " +
         std::to_string(t->window) + " len " + std::to_string(t->payload.size());
}

TEST(StackOffload, OnTheWireNothingChanges) {
  const std::string file = random_bytes(3 << 20, 42);
  Download with(offload_config(), file);
  Download without(default_config(), file);
  EXPECT_TRUE(with.fetch(file.size()) == file);
  EXPECT_TRUE(without.fetch(file.size()) == file);
  ASSERT_GT(with.sent.size(), 2000u);
  ASSERT_EQ(with.sent.size(), without.sent.size());
  for (std::size_t i = 0; i < with.sent.size(); ++i) {
    ASSERT_TRUE(with.sent[i] == without.sent[i]) << "frame " << i << " differs:\n"
                                                 << describe(with.sent[i]) << "\n"
                                                 << describe(without.sent[i]);
  }
  EXPECT_EQ(with.h.counters().total_drops(), 0u);
  // The offloading stack really did hand out fewer, larger segments.
  EXPECT_GT(with.marked, 100u);
  EXPECT_EQ(without.marked, 0u);
}

TEST(StackOffload, ALinkThatOffloadsGetsMarkedSegments) {
  const std::string file = random_bytes(1 << 20, 7);
  Download d(offload_config(), file);
  std::size_t marked = 0;
  std::size_t plain = 0;
  d.h.on_drain = [&](wire::Bytes f, TxMeta m) {
    auto eth = wire::EthernetView::parse(f);
    ASSERT_TRUE(eth);
    const wire::Bytes datagram = eth->payload();
    if (m.gso_size == 0) {
      ++plain;
      EXPECT_LE(f.size(), 1514u);
      return;
    }
    ++marked;
    EXPECT_EQ(m.gso_size, 1448);  // MSS 1460 less 12 bytes of timestamps
    ASSERT_GT(datagram.size(), 1500u);
    // Ipv4View::parse checks the header checksum and the total length.
    auto ip = Ipv4View::parse(datagram);
    ASSERT_TRUE(ip);
    EXPECT_LE(ip->total_length(), 65535);
    EXPECT_TRUE(ip->dont_fragment());
    const wire::Bytes seg = ip->payload();
    EXPECT_EQ(
        wire::read_u16(seg, TcpView::kChecksum),
        static_cast<std::uint16_t>(wire::checksum::pseudo_header(
            ip->src(), ip->dst(), wire::ipproto::kTcp, static_cast<std::uint16_t>(seg.size()))));
    EXPECT_GE(gso_pieces(datagram, m.gso_size), 2u);
  };
  EXPECT_TRUE(d.fetch(file.size()) == file);
  EXPECT_GT(marked, 10u);
  EXPECT_GE(plain, 1u);  // the handshake, and ACKs
}

// ---- a peer whose MSS is below the MTU's ------------------------------------------------------

// What the link is handed must become, on the wire, segments of at most the peer's MSS with
// complete checksums: a frame marked for offload is cut at gso_size (the kernel finishes each
// piece's checksum); any other frame goes out as it is, so its checksum must verify and its
// payload fit the MSS. A segment of several MSS pieces that fits the MTU once went out unmarked,
// whole and with only the pseudo-header sum.
struct WireCheck {
  std::uint16_t mss = 0;  // what the peer advertised (536 when it sent no option)
  std::size_t frames = 0;
  std::size_t marked = 0;
  std::size_t largest_payload = 0;

  void operator()(wire::Bytes f, TxMeta m) {
    ++frames;
    auto eth = wire::EthernetView::parse(f);
    ASSERT_TRUE(eth);
    auto ip = Ipv4View::parse(eth->payload());
    ASSERT_TRUE(ip);
    if (ip->protocol() != wire::ipproto::kTcp) {
      return;
    }
    const wire::Bytes seg = ip->payload();
    auto view = TcpView::parse(seg);
    ASSERT_TRUE(view);
    const std::size_t options = view->header_size() - TcpView::kMinHeaderSize;
    const std::size_t payload = seg.size() - view->header_size();
    if (m.gso_size != 0) {
      ++marked;
      EXPECT_LE(m.gso_size + options, mss) << "cut into pieces above the MSS";
      EXPECT_GE(gso_pieces(ip->bytes(), m.gso_size), 2u);
      return;
    }
    largest_payload = std::max(largest_payload, payload);
    EXPECT_TRUE(wire::TcpRepr::parse(seg, ip->src(), ip->dst()))
        << "an unmarked segment of " << payload << " bytes without a complete checksum";
    EXPECT_LE(payload + options, mss) << "an unmarked segment above the MSS";
  }
};

class SmallMss : public ::testing::TestWithParam<std::uint16_t> {
 protected:
  // The MSS the stack must use: the option's, or 536 without one.
  std::uint16_t mss() const { return GetParam() == 0 ? 536 : GetParam(); }
  PeerOptions peer_options() const {
    PeerOptions o;
    o.mss = GetParam();
    return o;
  }
};

TEST_P(SmallMss, DownloadSegmentsFitThePeersMss) {
  const std::string file = random_bytes(256 << 10, 11);
  Download d(offload_config(), file);
  WireCheck check{mss()};
  d.h.on_drain = [&](wire::Bytes f, TxMeta m) { check(f, m); };
  TcpPeer peer(d.h, 80, peer_options());
  peer.connect();
  peer.write("GET /file HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_TRUE(
      peer.run([&] { return body_of(peer.received()).size() >= file.size() || peer.reset(); },
               std::chrono::seconds(10)));
  EXPECT_TRUE(body_of(peer.received()) == file);
  EXPECT_GT(check.marked, 0u);  // offload still carries the bulk
  EXPECT_EQ(d.h.counters().total_drops(), 0u);
  EXPECT_EQ(peer.out_of_order(), 0u);  // nothing lost, nothing retransmitted
}

TEST_P(SmallMss, AnEchoOfMoreThanOneMssIsCutAtTheMss) {
  // The reproduction: 1450 bytes echoed to a peer whose MSS is smaller.
  Harness h(offload_config());
  apps::StackTransport transport(h.stack());
  apps::EchoTcp echo(transport);
  ASSERT_TRUE(h.stack().tcp_listen(apps::kEchoPort, &echo));
  WireCheck check{mss()};
  h.on_drain = [&](wire::Bytes f, TxMeta m) { check(f, m); };
  TcpPeer peer(h, apps::kEchoPort, peer_options());
  peer.connect();
  const std::string data = random_bytes(1450, 5);
  peer.write(data);
  EXPECT_TRUE(peer.run([&] { return peer.received().size() >= data.size() || peer.reset(); },
                       std::chrono::seconds(2)));
  EXPECT_TRUE(peer.received() == data);
  EXPECT_EQ(h.counters().total_drops(), 0u);
  EXPECT_EQ(peer.out_of_order(), 0u);
}

// 0: no MSS option (536); 100: a tiny clamp; 1400: VPN and mobile; 1452: PPPoE.
INSTANTIATE_TEST_SUITE_P(Offload, SmallMss, ::testing::Values(0, 100, 1400, 1452));

}  // namespace
}  // namespace phalanx::stack::test
