// A tiny test-side builder of Ethernet + IPv4 (+ TCP / UDP / ICMP / L2TP) frames for the filter
// tables. Headers come from the wire reprs; the L4 headers the filter only reads the ports of are
// written raw. Checksums above IPv4 are left zero: the filter never reads them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "filter/workset.hpp"
#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/l2tp.hpp"

namespace phalanx::test {

inline constexpr wire::MacAddr kClientMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
inline constexpr wire::MacAddr kClusterMac{{0x01, 0x00, 0x5e, 0x7f, 0x00, 0x64}};

class FrameBuilder {
 public:
  static FrameBuilder tcp(wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst,
                          std::uint16_t dport) {
    FrameBuilder f(src, dst, wire::ipproto::kTcp);
    f.l4_.assign(20, std::byte{0});
    wire::write_u16(f.l4_, 0, sport);
    wire::write_u16(f.l4_, 2, dport);
    wire::write_u32(f.l4_, 4, 0x01020304);  // sequence number
    wire::write_u8(f.l4_, 12, 5 << 4);      // data offset: 5 words
    wire::write_u8(f.l4_, 13, 0x02);        // SYN
    wire::write_u16(f.l4_, 14, 65535);      // window
    return f;
  }

  static FrameBuilder udp(wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst,
                          std::uint16_t dport, std::size_t payload_len = 4) {
    FrameBuilder f(src, dst, wire::ipproto::kUdp);
    f.l4_.assign(8 + payload_len, std::byte{0x5a});
    f.write_udp_header(sport, dport);
    return f;
  }

  // L2TPv2 over UDP. A control message carries Length and Ns/Nr (RFC 2661 §3.1).
  static FrameBuilder l2tp(wire::Ipv4Addr src, std::uint16_t sport, wire::Ipv4Addr dst,
                           std::uint16_t dport, std::uint16_t tunnel, std::uint16_t session,
                           bool control = false) {
    FrameBuilder f(src, dst, wire::ipproto::kUdp);
    const std::vector<std::byte> ppp(4, std::byte{0xff});
    wire::L2tpRepr r;
    r.control = control;
    r.with_length = control;
    r.tunnel_id = tunnel;
    r.session_id = session;
    if (control) {
      r.sequence = wire::L2tpRepr::Sequence{0, 0};
    } else {
      r.payload = wire::Bytes(ppp.data(), ppp.size());
    }
    f.l4_.assign(8 + r.size(), std::byte{0});
    f.write_udp_header(sport, dport);
    r.emit(wire::MutBytes(f.l4_).subspan(8));
    return f;
  }

  static FrameBuilder icmp_echo(wire::Ipv4Addr src, wire::Ipv4Addr dst) {
    FrameBuilder f(src, dst, wire::ipproto::kIcmp);
    f.l4_.assign(8, std::byte{0});
    wire::write_u8(f.l4_, 0, 8);  // echo request
    wire::write_u16(f.l4_, 4, 0x1234);
    wire::write_u16(f.l4_, 6, 1);
    return f;
  }

  // Any protocol number with an opaque payload (GRE = 47, ESP = 50...).
  static FrameBuilder ip(wire::Ipv4Addr src, wire::Ipv4Addr dst, std::uint8_t protocol,
                         std::size_t payload_len = 8) {
    FrameBuilder f(src, dst, protocol);
    f.l4_.assign(payload_len, std::byte{0xa5});
    return f;
  }

  // A frame of any EtherType with an opaque payload (ARP, IPv6...).
  static std::vector<std::byte> raw_ethernet(std::uint16_t ethertype, std::size_t payload_len) {
    wire::EthernetRepr eth{kClusterMac, kClientMac, std::nullopt, ethertype};
    std::vector<std::byte> out(eth.size() + payload_len, std::byte{0});
    eth.emit(out);
    return out;
  }

  FrameBuilder& vlan(std::uint16_t tci) {
    vlan_ = tci;
    return *this;
  }
  FrameBuilder& fragment(bool more_fragments, std::uint16_t offset_bytes) {
    more_fragments_ = more_fragments;
    fragment_offset_ = offset_bytes;
    return *this;
  }
  // Pads the frame with zeros after the datagram (as Ethernet does up to 60 bytes).
  FrameBuilder& pad_to(std::size_t frame_size) {
    pad_to_ = frame_size;
    return *this;
  }

  std::vector<std::byte> build() const {
    wire::EthernetRepr eth{kClusterMac, kClientMac, vlan_, wire::ethertype::kIpv4};
    wire::Ipv4Repr ip;
    ip.src = src_;
    ip.dst = dst_;
    ip.protocol = protocol_;
    ip.dont_fragment = !more_fragments_ && fragment_offset_ == 0;
    ip.more_fragments = more_fragments_;
    ip.fragment_offset = fragment_offset_;
    ip.payload_len = static_cast<std::uint16_t>(l4_.size());
    std::vector<std::byte> out(eth.size() + ip.size() + l4_.size(), std::byte{0});
    eth.emit(out);
    ip.emit(wire::MutBytes(out).subspan(eth.size()));
    std::copy(l4_.begin(), l4_.end(),
              out.begin() + static_cast<std::ptrdiff_t>(eth.size() + ip.size()));
    if (out.size() < pad_to_) {
      out.resize(pad_to_, std::byte{0});
    }
    return out;
  }

 private:
  FrameBuilder(wire::Ipv4Addr src, wire::Ipv4Addr dst, std::uint8_t protocol)
      : src_(src), dst_(dst), protocol_(protocol) {}

  void write_udp_header(std::uint16_t sport, std::uint16_t dport) {
    wire::write_u16(l4_, 0, sport);
    wire::write_u16(l4_, 2, dport);
    wire::write_u16(l4_, 4, static_cast<std::uint16_t>(l4_.size()));
  }

  wire::Ipv4Addr src_;
  wire::Ipv4Addr dst_;
  std::uint8_t protocol_;
  std::optional<std::uint16_t> vlan_;
  bool more_fragments_ = false;
  std::uint16_t fragment_offset_ = 0;
  std::size_t pad_to_ = 0;
  std::vector<std::byte> l4_;
};

inline wire::Bytes bytes(const std::vector<std::byte>& v) {
  return {v.data(), v.size()};
}

// The test's own fixed generator (STYLE 9): splitmix64.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint32_t u32() { return static_cast<std::uint32_t>(next() >> 32); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(next() >> 48); }

 private:
  std::uint64_t s_;
};

}  // namespace phalanx::test
