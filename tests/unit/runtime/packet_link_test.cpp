// PacketLink on a real veth pair, each end in its own throwaway network namespace (names start
// with "phrt", addresses from 198.18.0.0/15). Needs root (CI is root); skipped otherwise. The
// namespaces, and with them the veth pair, are removed in TearDown whatever happened.
#include "runtime/packet_link.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "node/checksum_fixup.hpp"
#include "runtime/unique_fd.hpp"
#include "stack/gso.hpp"
#include "testutil.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace phalanx::runtime {
namespace {

using node::complete_l4_checksum;
using Frame = std::vector<std::byte>;

constexpr std::uint16_t kTestEtherType = 0x88b5;  // IEEE 802 local experimental

bool run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

// Runs `fn` with the calling thread inside network namespace `ns`; sockets made there stay
// there after we return.
void in_netns(const std::string& ns, const std::function<void()>& fn) {
  UniqueFd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  UniqueFd target(::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(self.valid() && target.valid()) << "cannot open the namespaces";
  ASSERT_EQ(::setns(target.get(), CLONE_NEWNET), 0);
  fn();
  if (::setns(self.get(), CLONE_NEWNET) != 0) {
    std::abort();  // the rest of the test binary would run in the wrong namespace
  }
}

// An Ethernet frame of `size` bytes from `src` to `dst`, carrying `seq` after the header.
Frame test_frame(wire::MacAddr dst, wire::MacAddr src, std::uint32_t seq, std::size_t size = 60) {
  Frame f(size, std::byte{0});
  wire::MutBytes b(f);
  dst.write(b, 0);
  src.write(b, 6);
  wire::write_u16(b, 12, kTestEtherType);
  wire::write_u32(b, 14, seq);
  return f;
}

class PacketLinkTest : public testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root for network namespaces";
    }
    const std::string id = std::to_string(::getpid());
    ns_a_ = "phrtA" + id;
    ns_b_ = "phrtB" + id;
    ASSERT_TRUE(run("ip netns add " + ns_a_));
    created_a_ = true;
    ASSERT_TRUE(run("ip netns add " + ns_b_));
    created_b_ = true;
    for (const auto& ns : {ns_a_, ns_b_}) {
      // No IPv6: keeps router solicitations and DAD off the wire.
      ASSERT_TRUE(run("ip netns exec " + ns +
                      " sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
                      " net.ipv6.conf.default.disable_ipv6=1"));
    }
    ASSERT_TRUE(
        run("ip link add phrta netns " + ns_a_ + " type veth peer name phrtb netns " + ns_b_));
    ASSERT_TRUE(run("ip -n " + ns_a_ + " link set phrta up"));
    ASSERT_TRUE(run("ip -n " + ns_b_ + " link set phrtb up"));
    a_ = open_in(ns_a_, "phrta");
    b_ = open_in(ns_b_, "phrtb");
    ASSERT_TRUE(a_ && b_);
  }

  void TearDown() override {
    a_.reset();
    b_.reset();
    if (created_a_) {
      EXPECT_TRUE(run("ip netns del " + ns_a_));
    }
    if (created_b_) {
      EXPECT_TRUE(run("ip netns del " + ns_b_));
    }
  }

  std::unique_ptr<PacketLink> open_in(const std::string& ns, const std::string& ifname,
                                      bool offload = true) {
    std::unique_ptr<PacketLink> link;
    in_netns(ns, [&] {
      PacketLinkOptions options;
      options.interface = ifname;
      options.offload = offload;
      auto l = PacketLink::open(options);
      if (!l.ok()) {
        ADD_FAILURE() << l.error().message;
        return;
      }
      link = std::move(*l);
    });
    return link;
  }

  // Frames of the test EtherType received on `link` until `count` arrived or 2 s passed.
  static std::vector<Frame> receive(PacketLink& link, std::size_t count,
                                    std::vector<FrameMeta>* metas = nullptr,
                                    std::chrono::milliseconds wait = std::chrono::seconds(2)) {
    std::vector<Frame> got;
    const auto limit = std::chrono::steady_clock::now() + wait;
    while (got.size() < count && std::chrono::steady_clock::now() < limit) {
      pollfd p{link.fd(), POLLIN, 0};
      ::poll(&p, 1, 10);
      link.receive(
          [&](const RxFrame& f) {
            if (f.bytes.size() >= 14 && wire::read_u16(f.bytes, 12) == kTestEtherType) {
              got.emplace_back(f.bytes.begin(), f.bytes.end());
            } else if (metas != nullptr && f.bytes.size() >= 14 &&
                       wire::read_u16(f.bytes, 12) == 0x0800) {
              got.emplace_back(f.bytes.begin(), f.bytes.end());
              metas->push_back(f.meta);
            }
          },
          1024);
    }
    return got;
  }

  std::string ns_a_;
  std::string ns_b_;
  bool created_a_ = false;
  bool created_b_ = false;
  std::unique_ptr<PacketLink> a_;
  std::unique_ptr<PacketLink> b_;
};

TEST_F(PacketLinkTest, OpensWithTheInterfacesAddressAndMtu) {
  EXPECT_EQ(a_->interface(), "phrta");
  EXPECT_GT(a_->ifindex(), 0);
  EXPECT_EQ(a_->mtu(), 1500u);
  EXPECT_TRUE(a_->mac().is_unicast());
  EXPECT_FALSE(a_->mac().is_zero());
  EXPECT_NE(a_->mac(), b_->mac());
}

TEST_F(PacketLinkTest, FramesGoBothWaysInOrder) {
  constexpr std::uint32_t kCount = 200;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(a_->send(test_frame(b_->mac(), a_->mac(), i)));
  }
  a_->flush();
  auto at_b = receive(*b_, kCount);
  ASSERT_EQ(at_b.size(), kCount);
  for (std::uint32_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(at_b[i], test_frame(b_->mac(), a_->mac(), i)) << "frame " << i;
  }

  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(b_->send(test_frame(a_->mac(), b_->mac(), 1000 + i, 1514)));
  }
  b_->flush();
  auto at_a = receive(*a_, kCount);
  ASSERT_EQ(at_a.size(), kCount);
  for (std::uint32_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(at_a[i], test_frame(a_->mac(), b_->mac(), 1000 + i, 1514)) << "frame " << i;
  }
  EXPECT_EQ(a_->counters().tx_frames, kCount);
  EXPECT_EQ(b_->counters().rx_frames, kCount);
  EXPECT_EQ(a_->counters().rx_kernel_drops, 0u);
}

TEST_F(PacketLinkTest, OwnTransmissionsAreNotReceived) {
  ASSERT_TRUE(a_->send(test_frame(b_->mac(), a_->mac(), 7)));
  a_->flush();
  ASSERT_EQ(receive(*b_, 1).size(), 1u);
  EXPECT_TRUE(receive(*a_, 1, nullptr, std::chrono::milliseconds(50)).empty());
}

TEST_F(PacketLinkTest, TheRingWrapsManyTimes) {
  // More frames than the TX ring has slots (512) and the RX ring holds in one block, in bursts.
  std::size_t received = 0;
  for (std::uint32_t burst = 0; burst < 20; ++burst) {
    for (std::uint32_t i = 0; i < 100; ++i) {
      ASSERT_TRUE(a_->send(test_frame(b_->mac(), a_->mac(), burst * 100 + i)));
    }
    a_->flush();
    received += receive(*b_, 100).size();
  }
  EXPECT_EQ(received, 2000u);
  EXPECT_EQ(a_->counters().tx_ring_full, 0u);
}

TEST_F(PacketLinkTest, ABatchLongerThanTheRingIsNotCut) {
  // The stack may hand over more frames between two flushes than the TX ring has slots (512):
  // send() passes the queued ones to the kernel instead of refusing the rest.
  constexpr std::uint32_t kCount = 1200;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(a_->send(test_frame(b_->mac(), a_->mac(), i))) << i;
  }
  a_->flush();
  const auto got = receive(*b_, kCount);
  ASSERT_EQ(got.size(), kCount);
  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(got[i], test_frame(b_->mac(), a_->mac(), i)) << i;
  }
  EXPECT_EQ(a_->counters().tx_ring_full, 0u);
}

TEST_F(PacketLinkTest, RefusesFramesLongerThanTheMtu) {
  EXPECT_FALSE(a_->send(Frame(1515, std::byte{0})));
  EXPECT_EQ(a_->counters().tx_too_big, 1u);
  EXPECT_TRUE(a_->send(Frame(1514, std::byte{0})));
}

TEST_F(PacketLinkTest, MulticastMembership) {
  const wire::MacAddr group({0x01, 0x00, 0x5e, 0x7f, 0x00, 0x01});
  ASSERT_TRUE(b_->add_membership(group).ok());
  ASSERT_TRUE(a_->send(test_frame(group, a_->mac(), 1)));
  a_->flush();
  EXPECT_EQ(receive(*b_, 1).size(), 1u);
  EXPECT_TRUE(b_->drop_membership(group).ok());

  auto unicast = b_->add_membership(a_->mac());
  ASSERT_FALSE(unicast.ok());
  EXPECT_EQ(unicast.error().message,
            "add_membership: " + a_->mac().to_string() + " is not a multicast MAC");
}

TEST_F(PacketLinkTest, FlagsChecksumsTheLocalSenderLeftToHardware) {
  // A kernel UDP socket in B sends to an address behind A. veth offers checksum offload, so
  // the datagram leaves B with CHECKSUM_PARTIAL: A must see checksum_not_ready.
  ASSERT_TRUE(run("ip -n " + ns_b_ + " addr add 198.18.0.2/24 dev phrtb"));
  ASSERT_TRUE(run("ip -n " + ns_b_ + " neigh add 198.18.0.1 lladdr " + a_->mac().to_string() +
                  " dev phrtb nud permanent"));
  in_netns(ns_b_, [&] {
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s.valid());
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(wire::Ipv4Addr(198, 18, 0, 1).value());
    const char payload[] = "checksum?";
    ASSERT_EQ(::sendto(s.get(), payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&to),
                       sizeof(to)),
              static_cast<ssize_t>(sizeof(payload)));
  });
  std::vector<FrameMeta> metas;
  auto got = receive(*a_, 1, &metas);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(metas.size(), 1u);
  EXPECT_TRUE(metas[0].checksum_not_ready);
  EXPECT_EQ(a_->counters().rx_checksum_not_ready, 1u);

  // The driver completes it; then it verifies like any checksum.
  Frame frame = got[0];
  auto udp = [&] { return wire::Bytes(frame).subspan(14 + 20); };
  const auto pseudo =
      wire::checksum::pseudo_header(wire::Ipv4Addr(198, 18, 0, 2), wire::Ipv4Addr(198, 18, 0, 1),
                                    17, static_cast<std::uint16_t>(udp().size()));
  EXPECT_FALSE(wire::checksum::verify(udp(), pseudo)) << "left to hardware: not yet valid";
  ASSERT_TRUE(complete_l4_checksum(frame));
  EXPECT_TRUE(wire::checksum::verify(udp(), pseudo));
}

// `ethtool -K IF tso off tx off` through SIOCETHTOOL, inside `ns`: the kernel then cuts an
// offloaded frame itself (GSO) and fills in the checksums, so the peer sees what a NIC would
// put on the wire.
void software_offload_only(const std::string& ns, const std::string& ifname) {
  in_netns(ns, [&] {
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s.valid());
    for (std::uint32_t cmd : {std::uint32_t{ETHTOOL_STSO}, std::uint32_t{ETHTOOL_STXCSUM}}) {
      ethtool_value v{cmd, 0};
      ifreq ifr{};
      std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname.c_str());
      ifr.ifr_data = reinterpret_cast<char*>(&v);
      ASSERT_EQ(::ioctl(s.get(), SIOCETHTOOL, &ifr), 0) << "SIOCETHTOOL " << cmd;
    }
  });
}

// An Ethernet frame carrying test::offloadable_datagram().
Frame offloadable_segment(wire::MacAddr dst, wire::MacAddr src, std::size_t payload) {
  const std::vector<std::byte> d =
      phalanx::test::offloadable_datagram(payload, wire::tcpflag::kAck | wire::tcpflag::kPsh);
  Frame f(14 + d.size());
  wire::MutBytes b(f);
  dst.write(b, 0);
  src.write(b, 6);
  wire::write_u16(b, 12, 0x0800);
  std::copy(d.begin(), d.end(), f.begin() + 14);
  return f;
}

// The frames stack/gso.hpp makes of `frame`: what the peer must receive.
std::vector<Frame> cut_in_software(const Frame& frame, std::uint16_t gso_size) {
  std::vector<Frame> out;
  std::vector<std::byte> scratch;
  stack::for_each_gso_frame(wire::Bytes(frame), gso_size, scratch, [&](wire::Bytes piece) {
    out.emplace_back(piece.begin(), piece.end());
  });
  return out;
}

TEST_F(PacketLinkTest, TheKernelCutsAnOffloadedSegmentAsTheSoftwareCutDoes) {
  software_offload_only(ns_a_, "phrta");
  ASSERT_EQ(a_->offload_max(), 65535u) << a_->offload_error();
  const Frame before = test_frame(b_->mac(), a_->mac(), 1);
  const Frame segment = offloadable_segment(b_->mac(), a_->mac(), 40 * 1448 + 100);
  ASSERT_TRUE(a_->send(before));  // queued in the ring: must still arrive first
  ASSERT_TRUE(a_->send(segment, stack::TxMeta{1448}));
  a_->flush();
  std::vector<FrameMeta> metas;
  const std::vector<Frame> got = receive(*b_, 42, &metas);
  const std::vector<Frame> expected = cut_in_software(segment, 1448);
  ASSERT_EQ(expected.size(), 41u);
  ASSERT_EQ(got.size(), 42u);
  EXPECT_EQ(got[0], before);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(got[i + 1], expected[i]) << "piece " << i;
  }
  EXPECT_EQ(a_->counters().tx_offloaded, 1u);
  EXPECT_EQ(a_->counters().tx_cut_here, 0u);
}

TEST_F(PacketLinkTest, WithoutOffloadTheLinkCutsInUserSpace) {
  std::unique_ptr<PacketLink> plain = open_in(ns_a_, "phrta", false);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->offload_max(), 0u);
  const Frame segment = offloadable_segment(b_->mac(), plain->mac(), 3 * 1448);
  ASSERT_TRUE(plain->send(segment, stack::TxMeta{1448}));
  plain->flush();
  std::vector<FrameMeta> metas;
  EXPECT_EQ(receive(*b_, 3, &metas), cut_in_software(segment, 1448));
  EXPECT_EQ(plain->counters().tx_cut_here, 3u);
  EXPECT_EQ(plain->counters().tx_offloaded, 0u);
}

TEST_F(PacketLinkTest, AMarkedSegmentThatFitsTheMtuIsCutAtItsGsoSize) {
  // A peer with MSS 536: two pieces and a tail fit one 1500-byte frame, and still go out cut.
  software_offload_only(ns_a_, "phrta");
  ASSERT_EQ(a_->offload_max(), 65535u) << a_->offload_error();
  const Frame segment = offloadable_segment(b_->mac(), a_->mac(), 2 * 524 + 100);
  ASSERT_LE(segment.size(), 1514u);
  ASSERT_TRUE(a_->send(segment, stack::TxMeta{524}));
  a_->flush();
  std::vector<FrameMeta> metas;
  EXPECT_EQ(receive(*b_, 3, &metas), cut_in_software(segment, 524));
  EXPECT_EQ(a_->counters().tx_offloaded, 1u);
}

// A kernel TCP connection from B to A, B's veth with TSO on (the veth default): B's kernel
// hands its segments to the veth up to 64 KB at a time, as GRO on a NIC would deliver them.
// A's link must deliver those frames whole, with their checksum state, instead of truncating
// them. Returns the frames A's link delivered (IPv4 only) and their metadata.
struct Upload {
  std::vector<Frame> frames;
  std::vector<FrameMeta> metas;
  std::size_t bytes_sent = 0;
};

Upload kernel_upload(const std::string& ns_a, const std::string& ns_b, PacketLink& a,
                     std::size_t bytes) {
  Upload up;
  EXPECT_TRUE(run("ip -n " + ns_a + " addr add 198.18.0.1/24 dev phrta"));
  EXPECT_TRUE(run("ip -n " + ns_b + " addr add 198.18.0.2/24 dev phrtb"));
  UniqueFd listener;
  in_netns(ns_a, [&] { listener = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); });
  UniqueFd client;
  in_netns(ns_b, [&] { client = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); });
  if (!listener.valid() || !client.valid()) {
    ADD_FAILURE() << "socket";
    return up;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(5001);
  addr.sin_addr.s_addr = htonl(wire::Ipv4Addr(198, 18, 0, 1).value());
  const int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ADD_FAILURE() << "cannot connect B to A: " << std::strerror(errno);
    return up;
  }
  UniqueFd server(::accept(listener.get(), nullptr, nullptr));
  const timeval limit{5, 0};
  ::setsockopt(server.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  ::setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  std::size_t read_total = 0;
  std::thread reader([&] {
    std::vector<char> buf(1 << 16);
    while (read_total < bytes) {
      const ssize_t n = ::read(server.get(), buf.data(), buf.size());
      if (n <= 0) {
        return;
      }
      read_total += static_cast<std::size_t>(n);
    }
  });
  std::thread writer([&] {
    const std::vector<char> data(bytes, 'u');
    while (up.bytes_sent < bytes) {
      const ssize_t n = ::write(client.get(), data.data() + up.bytes_sent, bytes - up.bytes_sent);
      if (n <= 0) {
        return;
      }
      up.bytes_sent += static_cast<std::size_t>(n);
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto tap = [&] {
    pollfd p{a.fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    a.receive(
        [&](const RxFrame& f) {
          if (f.bytes.size() >= 14 && wire::read_u16(f.bytes, 12) == 0x0800) {
            up.frames.emplace_back(f.bytes.begin(), f.bytes.end());
            up.metas.push_back(f.meta);
          }
        },
        1024);
  };
  while (read_total < bytes && std::chrono::steady_clock::now() < deadline) {
    tap();
  }
  writer.join();
  reader.join();
  for (int i = 0; i < 20; ++i) {  // what the ring still holds (block timeout: 1 ms)
    tap();
  }
  EXPECT_EQ(read_total, bytes);
  return up;
}

TEST_F(PacketLinkTest, ReceiveOffloadedSegmentsArriveWhole) {
  constexpr std::size_t kBytes = 4 << 20;
  const Upload up = kernel_upload(ns_a_, ns_b_, *a_, kBytes);
  std::size_t large = 0;
  std::size_t payload = 0;
  for (std::size_t i = 0; i < up.frames.size(); ++i) {
    Frame f = up.frames[i];
    if (f.size() <= 1514) {
      continue;
    }
    ++large;
    // A local sender left the checksum to "hardware": flagged, and whole once completed.
    EXPECT_TRUE(up.metas[i].checksum_not_ready) << "frame " << i;
    ASSERT_TRUE(complete_l4_checksum(f));
    auto ip = wire::Ipv4View::parse(wire::Bytes(f).subspan(14));
    ASSERT_TRUE(ip) << "frame " << i;
    EXPECT_EQ(ip->total_length() + 14u, f.size());
    auto seg = wire::TcpRepr::parse(ip->payload(), ip->src(), ip->dst());
    ASSERT_TRUE(seg) << "frame " << i;
    payload += seg->payload.size();
  }
  EXPECT_GT(large, 0u) << "no merged segment arrived: is TSO off on the veth?";
  EXPECT_GT(payload, kBytes / 2);  // most of the upload came merged
  const PacketLinkCounters& c = a_->counters();
  EXPECT_EQ(c.rx_truncated, 0u);
  // Those a ring block cannot hold came through the large-frame socket.
  EXPECT_GT(c.rx_large_frames, 0u);
  EXPECT_LE(c.rx_large_frames, large);
  EXPECT_EQ(c.rx_large_kernel_drops, 0u);
  EXPECT_EQ(c.rx_kernel_drops, 0u);
}

TEST_F(PacketLinkTest, AnUnmarkedTcpSegmentBeyondTheMtuIsCutAtTheMtu) {
  // A merged segment the master forwards to its owner (forwarding mode, GRO on): no mark,
  // a complete checksum; it leaves in MTU-sized pieces, kernel-cut and cut here alike.
  Frame segment = offloadable_segment(b_->mac(), a_->mac(), 10 * 1448 + 7);
  ASSERT_TRUE(complete_l4_checksum(segment));
  const std::vector<Frame> expected = cut_in_software(segment, 1448);  // 1500 - 20 - 32
  software_offload_only(ns_a_, "phrta");
  ASSERT_TRUE(a_->send(segment));
  a_->flush();
  std::vector<FrameMeta> metas;
  EXPECT_EQ(receive(*b_, expected.size(), &metas), expected);
  EXPECT_EQ(a_->counters().tx_resegmented, 1u);
  EXPECT_EQ(a_->counters().tx_offloaded, 1u);

  std::unique_ptr<PacketLink> plain = open_in(ns_a_, "phrta", false);
  ASSERT_TRUE(plain);
  ASSERT_TRUE(plain->send(segment));
  plain->flush();
  EXPECT_EQ(receive(*b_, expected.size(), &metas), expected);
  EXPECT_EQ(plain->counters().tx_cut_here, expected.size());

  // Anything else beyond the MTU is still refused.
  Frame udp = segment;
  udp[14 + 9] = std::byte{17};
  EXPECT_FALSE(a_->send(udp));
  EXPECT_EQ(a_->counters().tx_too_big, 1u);
}

TEST_F(PacketLinkTest, AMarkedFrameThatIsNotTcpIsDroppedAndCounted) {
  Frame frame = offloadable_segment(b_->mac(), a_->mac(), 3 * 1448);
  frame[14 + 9] = std::byte{17};  // UDP
  EXPECT_FALSE(a_->send(frame, stack::TxMeta{1448}));
  EXPECT_EQ(a_->counters().tx_not_tcp, 1u);
}

// A measurement, not a check: run with --gtest_also_run_disabled_tests. One thread sends bursts
// from A and reads B's ring between bursts for one second per frame size, and prints the rate.
TEST_F(PacketLinkTest, DISABLED_Throughput) {
  for (std::size_t size : {60u, 1514u}) {
    const Frame f = test_frame(b_->mac(), a_->mac(), 0, size);
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    const auto start = std::chrono::steady_clock::now();
    const auto end = start + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < end) {
      for (int i = 0; i < 256 && a_->send(f); ++i) {
        ++sent;
      }
      a_->flush();
      received += b_->receive([](const RxFrame&) {}, 1 << 20);
    }
    pollfd p{b_->fd(), POLLIN, 0};
    ::poll(&p, 1, 20);
    received += b_->receive([](const RxFrame&) {}, 1 << 20);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "%zu-byte frames: sent %.0f/s, received %.0f/s (%.1f%% lost: tx ring full %lu, "
        "rx ring drops %lu)\n",
        size, static_cast<double>(sent) / seconds, static_cast<double>(received) / seconds,
        100.0 * static_cast<double>(sent - received) / static_cast<double>(sent),
        static_cast<unsigned long>(a_->counters().tx_ring_full),
        static_cast<unsigned long>(b_->counters().rx_kernel_drops));
  }
}

TEST(PacketLinkOpenTest, NoSuchInterface) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root for AF_PACKET";
  }
  PacketLinkOptions options;
  options.interface = "phrtnone";
  auto l = PacketLink::open(options);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().message, "interface phrtnone: No such device");
}

}  // namespace
}  // namespace phalanx::runtime
