// Bad traffic handled gracefully (STYLE, Envoy): valid frames of every kind, mutated by a fixed
// generator (flipped bytes, truncation), never crash the stack nor break its invariants (under
// ASan/UBSan in CI), and what is dropped is counted.
#include <gtest/gtest.h>

#include "harness.hpp"

namespace phalanx::stack::test {
namespace {

class Rng {  // xorshift64* (STYLE 9: our own generator)
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 2685821657736338717ULL;
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t s_;
};

class Sink : public UdpHandler, public TcpHandler {
 public:
  explicit Sink(Stack& s) : stack_(s) {}
  void on_datagram(Endpoint from, std::uint16_t port, wire::Bytes p) override {
    stack_.udp_send(port, from, p);
  }
  void on_open(ConnectionId) override {}
  // An echo that takes only what it can send back: receiving pauses and resumes with sending.
  std::size_t on_data(ConnectionId id, wire::Bytes d) override { return stack_.tcp_send(id, d); }
  void on_writable(ConnectionId id) override { stack_.tcp_resume_receive(id); }
  void on_peer_closed(ConnectionId id) override { stack_.tcp_shutdown(id); }
  void on_closed(ConnectionId, CloseReason) override {}

 private:
  Stack& stack_;
};

std::vector<Frame> seeds() {
  std::vector<Frame> s;
  Frame data(100);
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] = std::byte(i);
  }
  s.push_back(ip_frame(Ip{.protocol = wire::ipproto::kIcmp}, bytes(icmp_echo(1, 2, bytes(data)))));
  s.push_back(ip_frame(Ip{}, bytes(udp(kClientIp, 1000, kOurIp, 7, bytes(data)))));
  s.push_back(ip_frame(Ip{}, bytes(udp(kClientIp, 1000, kOurIp, 9, bytes(data)))));
  const Frame echo = icmp_echo(3, 4, bytes(data));
  s.push_back(ip_frame(Ip{.protocol = wire::ipproto::kIcmp, .df = false, .mf = true},
                       bytes(echo).first(48)));
  s.push_back(ip_frame(Ip{.protocol = wire::ipproto::kIcmp, .df = false, .offset = 48},
                       bytes(echo).subspan(48)));
  wire::TcpRepr syn;
  syn.src_port = 40000;
  syn.dst_port = 80;
  syn.seq = 77;
  syn.flags = wire::tcpflag::kSyn;
  syn.window = 1000;
  syn.options.mss = 1400;
  syn.options.timestamps = wire::TcpTimestamps{1, 0};
  s.push_back(ip_frame(Ip{.protocol = wire::ipproto::kTcp}, bytes(tcp(kClientIp, kOurIp, syn))));
  wire::TcpRepr ack = syn;
  ack.seq = 78;
  ack.flags = wire::tcpflag::kAck | wire::tcpflag::kPsh;
  ack.payload = bytes(data);
  s.push_back(ip_frame(Ip{.protocol = wire::ipproto::kTcp}, bytes(tcp(kClientIp, kOurIp, ack))));
  s.push_back(arp_frame(wire::ArpRepr::request(kClientMac, kClientIp, kOurIp)));
  s.push_back(arp_frame(wire::ArpRepr::reply(kClientMac, kClientIp, kOurMac, kOurIp), kOurMac));
  return s;
}

TEST(Robustness, MutatedFramesNeverCrashTheStack) {
  StackConfig c = default_config();
  c.tcp.send_buffer_size = 4096;
  c.tcp.recv_buffer_size = 4096;
  Harness h(c);
  Sink sink(h.stack());
  ASSERT_TRUE(h.stack().udp_bind(7, &sink));
  ASSERT_TRUE(h.stack().tcp_listen(80, &sink, 4));
  const std::vector<Frame> base = seeds();
  Rng rng(20261126);
  for (int i = 0; i < 50000; ++i) {
    Frame f = base[rng.below(base.size())];
    const std::size_t flips = rng.below(4);
    for (std::size_t k = 0; k < flips; ++k) {
      f[rng.below(f.size())] ^= std::byte(1u << rng.below(8));
    }
    if (rng.below(8) == 0) {
      f.resize(rng.below(f.size() + 1));
    }
    h.send(f);
    h.clear();
    if (i % 1000 == 0) {
      h.advance(milliseconds(rng.below(3000)));
      h.clear();
      h.stack().check_invariants();
    }
  }
  h.stack().check_invariants();
  EXPECT_EQ(h.counters().count(Counter::frames_in), 50000u);
  EXPECT_GT(h.counters().total_drops(), 0u);
  EXPECT_GT(h.counters().count(Counter::icmp_echo_replies), 0u);
}

}  // namespace
}  // namespace phalanx::stack::test
