// IPv4 headers (RFC 791). Options are skipped (never interpreted); fragments are recognised so
// that the filter and the stack can treat them apart.
#pragma once

#include <cstdint>

#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/result.hpp"

namespace phalanx::wire {

namespace ipproto {
inline constexpr std::uint8_t kIcmp = 1;
inline constexpr std::uint8_t kTcp = 6;
inline constexpr std::uint8_t kUdp = 17;
}  // namespace ipproto

class Ipv4View {
 public:
  static constexpr std::size_t kVersionIhl = 0;
  static constexpr std::size_t kTos = 1;
  static constexpr std::size_t kTotalLength = 2;
  static constexpr std::size_t kIdent = 4;
  static constexpr std::size_t kFlagsFragment = 6;
  static constexpr std::size_t kTtl = 8;
  static constexpr std::size_t kProtocol = 9;
  static constexpr std::size_t kChecksum = 10;
  static constexpr std::size_t kSrc = 12;
  static constexpr std::size_t kDst = 16;
  static constexpr std::size_t kMinHeaderSize = 20;

  static constexpr std::uint16_t kFlagDontFragment = 0x4000;
  static constexpr std::uint16_t kFlagMoreFragments = 0x2000;
  static constexpr std::uint16_t kFragmentOffsetMask = 0x1fff;

  // Validates the structure (not the checksum: see checksum_ok()). The buffer may be longer than
  // the datagram (Ethernet padding); payload() stops at the total length.
  static Result<Ipv4View> parse(Bytes b) {
    if (b.size() < kMinHeaderSize) {
      return Error::truncated;
    }
    const std::uint8_t vihl = read_u8(b, kVersionIhl);
    if ((vihl >> 4) != 4) {
      return Error::bad_version;
    }
    const std::size_t ihl = std::size_t{vihl & 0x0fu} * 4;
    if (ihl < kMinHeaderSize) {
      return Error::bad_header_length;
    }
    if (ihl > b.size()) {
      return Error::truncated;
    }
    const std::size_t total = read_u16(b, kTotalLength);
    if (total < ihl) {
      return Error::bad_total_length;
    }
    if (total > b.size()) {
      return Error::truncated;
    }
    return Ipv4View{b.first(total)};
  }

  std::size_t header_size() const { return std::size_t{read_u8(b_, kVersionIhl) & 0x0fu} * 4; }
  std::uint8_t tos() const { return read_u8(b_, kTos); }
  std::uint16_t total_length() const { return read_u16(b_, kTotalLength); }
  std::uint16_t ident() const { return read_u16(b_, kIdent); }
  bool dont_fragment() const { return (read_u16(b_, kFlagsFragment) & kFlagDontFragment) != 0; }
  bool more_fragments() const { return (read_u16(b_, kFlagsFragment) & kFlagMoreFragments) != 0; }
  // Offset of this fragment's payload in the datagram, in bytes.
  std::size_t fragment_offset() const {
    return (std::size_t{read_u16(b_, kFlagsFragment)} & kFragmentOffsetMask) * 8;
  }
  bool is_fragment() const { return more_fragments() || fragment_offset() != 0; }
  std::uint8_t ttl() const { return read_u8(b_, kTtl); }
  std::uint8_t protocol() const { return read_u8(b_, kProtocol); }
  std::uint16_t checksum() const { return read_u16(b_, kChecksum); }
  bool checksum_ok() const { return checksum::verify(b_.first(header_size())); }
  Ipv4Addr src() const { return Ipv4Addr::read(b_, kSrc); }
  Ipv4Addr dst() const { return Ipv4Addr::read(b_, kDst); }
  Bytes options() const { return b_.subspan(kMinHeaderSize, header_size() - kMinHeaderSize); }
  Bytes payload() const { return b_.subspan(header_size()); }
  Bytes bytes() const { return b_; }

 private:
  explicit Ipv4View(Bytes b) : b_(b) {}
  Bytes b_;
};

// The header fields we keep; options are dropped on parse and never emitted.
struct Ipv4Repr {
  Ipv4Addr src;
  Ipv4Addr dst;
  std::uint8_t protocol = 0;
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;
  std::uint16_t ident = 0;
  bool dont_fragment = true;
  bool more_fragments = false;
  std::uint16_t fragment_offset = 0;  // bytes, a multiple of 8
  std::uint16_t payload_len = 0;

  // Parses and also verifies the header checksum (`bad_checksum`).
  static Result<Ipv4Repr> parse(Bytes b) {
    auto v = Ipv4View::parse(b);
    if (!v) {
      return v.error();
    }
    if (!v->checksum_ok()) {
      return Error::bad_checksum;
    }
    Ipv4Repr r;
    r.src = v->src();
    r.dst = v->dst();
    r.protocol = v->protocol();
    r.ttl = v->ttl();
    r.tos = v->tos();
    r.ident = v->ident();
    r.dont_fragment = v->dont_fragment();
    r.more_fragments = v->more_fragments();
    r.fragment_offset = static_cast<std::uint16_t>(v->fragment_offset());
    r.payload_len = static_cast<std::uint16_t>(v->total_length() - v->header_size());
    return r;
  }

  std::size_t size() const { return Ipv4View::kMinHeaderSize; }

  // Writes a 20-byte header with a valid checksum into `out`.
  void emit(MutBytes out) const {
    write_u8(out, Ipv4View::kVersionIhl, 0x45);
    write_u8(out, Ipv4View::kTos, tos);
    write_u16(out, Ipv4View::kTotalLength,
              static_cast<std::uint16_t>(Ipv4View::kMinHeaderSize + payload_len));
    write_u16(out, Ipv4View::kIdent, ident);
    std::uint16_t ff =
        static_cast<std::uint16_t>((fragment_offset / 8) & Ipv4View::kFragmentOffsetMask);
    if (dont_fragment) {
      ff |= Ipv4View::kFlagDontFragment;
    }
    if (more_fragments) {
      ff |= Ipv4View::kFlagMoreFragments;
    }
    write_u16(out, Ipv4View::kFlagsFragment, ff);
    write_u8(out, Ipv4View::kTtl, ttl);
    write_u8(out, Ipv4View::kProtocol, protocol);
    write_u16(out, Ipv4View::kChecksum, 0);
    src.write(out, Ipv4View::kSrc);
    dst.write(out, Ipv4View::kDst);
    write_u16(out, Ipv4View::kChecksum,
              checksum::compute(Bytes(out.data(), Ipv4View::kMinHeaderSize)));
  }

  bool operator==(const Ipv4Repr&) const = default;
};

}  // namespace phalanx::wire
