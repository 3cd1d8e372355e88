// Test-side helpers for the stack: a harness that feeds frames with explicit time and collects
// what the stack sends (send / recv / recv_nothing, as in smoltcp's tests), and small builders
// and parsers of Ethernet/IPv4/ICMP/UDP/TCP frames made from the wire reprs.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stack/stack.hpp"
#include "testutil.hpp"
#include "wire/addr.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"
#include "wire/udp.hpp"

namespace phalanx::stack::test {

using Frame = std::vector<std::byte>;
using std::chrono::milliseconds;
using std::chrono::seconds;

inline constexpr wire::MacAddr kOurMac{{0x02, 0x00, 0x00, 0x00, 0x0a, 0x00}};
inline constexpr wire::MacAddr kClientMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
inline constexpr wire::MacAddr kGatewayMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0xfe}};
inline constexpr wire::Ipv4Addr kOurIp{198, 18, 0, 100};
inline constexpr wire::Ipv4Addr kClientIp{198, 18, 0, 1};
inline constexpr wire::Ipv4Addr kGatewayIp{198, 18, 0, 254};

inline StackConfig default_config() {
  StackConfig c;
  c.mac = kOurMac;
  c.address = kOurIp;
  c.prefix_length = 24;
  c.gateway = kGatewayIp;
  return c;
}

inline wire::Bytes bytes(const Frame& f) {
  return {f.data(), f.size()};
}

// Incompressible, reproducible content (xorshift64*, STYLE 9).
inline std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::string out(n, '\0');
  std::uint64_t s = seed;
  for (std::size_t i = 0; i < n; ++i) {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    out[i] = static_cast<char>((s * 2685821657736338717ULL) >> 56);
  }
  return out;
}

// The body of the one HTTP response in `stream`, or what arrived of it.
inline std::string body_of(const std::string& stream) {
  const std::size_t at = stream.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : stream.substr(at + 4);
}

// ---- builders ----------------------------------------------------------------------------------

inline Frame ethernet(wire::MacAddr dst, wire::MacAddr src, std::uint16_t type,
                      wire::Bytes payload) {
  Frame f(wire::EthernetView::kHeaderSize + payload.size());
  wire::EthernetRepr{dst, src, std::nullopt, type}.emit(f);
  std::copy(payload.begin(), payload.end(), f.begin() + wire::EthernetView::kHeaderSize);
  return f;
}

struct Ip {
  wire::Ipv4Addr src = kClientIp;
  wire::Ipv4Addr dst = kOurIp;
  std::uint8_t protocol = wire::ipproto::kUdp;
  std::uint16_t ident = 0x1234;
  bool df = true;
  bool mf = false;
  std::uint16_t offset = 0;  // bytes
  std::uint8_t ttl = 64;
};

inline Frame ipv4(const Ip& h, wire::Bytes payload) {
  wire::Ipv4Repr r;
  r.src = h.src;
  r.dst = h.dst;
  r.protocol = h.protocol;
  r.ident = h.ident;
  r.dont_fragment = h.df;
  r.more_fragments = h.mf;
  r.fragment_offset = h.offset;
  r.ttl = h.ttl;
  r.payload_len = static_cast<std::uint16_t>(payload.size());
  Frame d(r.size() + payload.size());
  r.emit(d);
  std::copy(payload.begin(), payload.end(), d.begin() + static_cast<std::ptrdiff_t>(r.size()));
  return d;
}

inline Frame ip_frame(const Ip& h, wire::Bytes payload, wire::MacAddr src_mac = kClientMac) {
  const Frame d = ipv4(h, payload);
  return ethernet(kOurMac, src_mac, wire::ethertype::kIpv4, bytes(d));
}

inline Frame icmp_echo(std::uint16_t id, std::uint16_t seq, wire::Bytes data) {
  const wire::IcmpEchoRepr r{wire::IcmpEchoRepr::Kind::request, id, seq, data};
  Frame m(r.size());
  r.emit(m);
  return m;
}

inline Frame udp(wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst, std::uint16_t dport,
                 wire::Bytes payload) {
  const wire::UdpRepr r{sport, dport, payload};
  Frame d(r.size());
  r.emit(d, src, dst);
  return d;
}

inline Frame tcp(wire::Ipv4Addr src, wire::Ipv4Addr dst, const wire::TcpRepr& r) {
  Frame d(r.size());
  r.emit(d, src, dst);
  return d;
}

inline Frame arp_frame(const wire::ArpRepr& a, wire::MacAddr dst = wire::MacAddr::broadcast()) {
  Frame p(a.size());
  a.emit(p);
  return ethernet(dst, a.sender_mac, wire::ethertype::kArp, bytes(p));
}

// ---- parsers of what the stack sent -------------------------------------------------------------

struct Parsed {
  std::shared_ptr<const Frame> frame;  // owns the bytes the spans below point into
  wire::EthernetRepr eth;
  std::optional<wire::Ipv4Repr> ip;
  wire::Bytes ip_bytes;  // the whole datagram
  wire::Bytes l4;        // the IPv4 payload
};

inline Parsed parse(const Frame& frame) {
  Parsed p;
  p.frame = std::make_shared<const Frame>(frame);
  const Frame& f = *p.frame;
  auto eth = wire::EthernetView::parse(bytes(f));
  EXPECT_TRUE(eth.ok());
  p.eth = *wire::EthernetRepr::parse(bytes(f));
  if (eth->ethertype() == wire::ethertype::kIpv4) {
    auto ip = wire::Ipv4Repr::parse(eth->payload());
    EXPECT_TRUE(ip.ok()) << "the stack sent a bad IPv4 header";
    if (ip) {
      p.ip = *ip;
      auto v = wire::Ipv4View::parse(eth->payload());
      p.ip_bytes = v->bytes();
      p.l4 = v->payload();
    }
  }
  return p;
}

// The segment in `f`; its payload points into `f`.
inline wire::TcpRepr parse_tcp(const Frame& f) {
  auto eth = wire::EthernetView::parse(bytes(f));
  auto ip = wire::Ipv4View::parse(eth->payload());
  EXPECT_TRUE(ip.ok() && ip->protocol() == wire::ipproto::kTcp);
  auto seg = wire::TcpRepr::parse(ip->payload(), ip->src(), ip->dst());
  EXPECT_TRUE(seg.ok()) << "the stack sent a bad TCP segment";
  return seg ? *seg : wire::TcpRepr{};
}

// ---- the harness -------------------------------------------------------------------------------

class Harness {
 public:
  explicit Harness(const StackConfig& config = default_config())
      : stack_(std::make_unique<Stack>(config)) {
    stack_->on_timer(now_);  // application calls outside callbacks take the driver's latest now
  }

  Stack& stack() { return *stack_; }
  const Counters& counters() const { return stack_->counters(); }
  Time now() const { return now_; }

  void send(const Frame& f) {
    stack_->on_frame(now_, bytes(f));
    collect();
  }

  // Moves time forward by `d`, running every timer that comes due on the way, in order.
  void advance(Duration d) {
    const Time end = now_ + d;
    for (int guard = 0; guard < 1000000; ++guard) {
      const Time next = stack_->next_deadline();
      if (next > end) {
        break;
      }
      now_ = std::max(now_, next);
      stack_->on_timer(now_);
      collect();
    }
    now_ = end;
    stack_->on_timer(now_);
    collect();
  }

  Frame recv() {
    if (out_.empty()) {
      ADD_FAILURE() << "expected a frame, the stack sent nothing";
      return {};
    }
    Frame f = std::move(out_.front());
    out_.pop_front();
    return f;
  }
  void recv_nothing() {
    EXPECT_TRUE(out_.empty()) << out_.size() << " unexpected frame(s)";
    out_.clear();
  }
  std::size_t pending() const { return out_.size(); }
  void clear() { out_.clear(); }

  // Takes what the stack sends; a segment marked for offload is cut here, as a link would.
  void collect() {
    stack_->drain([&](wire::Bytes f, TxMeta m) {
      if (on_drain) {
        on_drain(f, m);
      }
      if (m.gso_size == 0) {
        keep(f);
      } else {
        for_each_gso_frame(f, m.gso_size, gso_scratch_, [&](wire::Bytes piece) { keep(piece); });
      }
    });
  }

  // When set: every frame the stack sends is also appended here (offloaded ones cut).
  std::vector<Frame>* tap = nullptr;
  // When set: sees each frame as drain() hands it out, before any cut.
  std::function<void(wire::Bytes, TxMeta)> on_drain;

 private:
  std::unique_ptr<Stack> stack_;
  Time now_ = seconds(1);
  std::deque<Frame> out_;
  std::vector<std::byte> gso_scratch_;

  void keep(wire::Bytes f) {
    out_.emplace_back(f.begin(), f.end());
    if (tap != nullptr) {
      tap->emplace_back(f.begin(), f.end());
    }
  }
};

}  // namespace phalanx::stack::test
