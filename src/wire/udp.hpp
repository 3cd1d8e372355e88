// UDP datagrams (RFC 768) over IPv4, with the pseudo-header checksum (RFC 768, RFC 1122
// §4.1.3.4: a zero checksum field means the sender computed none).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire/result.hpp"

namespace phalanx::wire {

class UdpView {
 public:
  static constexpr std::size_t kSrcPort = 0;
  static constexpr std::size_t kDstPort = 2;
  static constexpr std::size_t kLength = 4;
  static constexpr std::size_t kChecksum = 6;
  static constexpr std::size_t kHeaderSize = 8;

  // Validates the structure (not the checksum: see checksum_ok()). Fails with `truncated` when
  // the buffer is shorter than the header or than the Length field says, and with
  // `bad_total_length` when Length is smaller than the header. The buffer may be longer than the
  // datagram; payload() stops at Length.
  static Result<UdpView> parse(Bytes b) {
    if (b.size() < kHeaderSize) {
      return Error::truncated;
    }
    const std::size_t length = read_u16(b, kLength);
    if (length < kHeaderSize) {
      return Error::bad_total_length;
    }
    if (length > b.size()) {
      return Error::truncated;
    }
    return UdpView{b.first(length)};
  }

  std::uint16_t src_port() const { return read_u16(b_, kSrcPort); }
  std::uint16_t dst_port() const { return read_u16(b_, kDstPort); }
  std::uint16_t length() const { return read_u16(b_, kLength); }
  std::uint16_t checksum() const { return read_u16(b_, kChecksum); }
  // False when the sender left the checksum field zero (allowed over IPv4).
  bool has_checksum() const { return checksum() != 0; }
  // True when the checksum verifies with the IPv4 pseudo-header, or when there is none.
  bool checksum_ok(Ipv4Addr src, Ipv4Addr dst) const {
    return !has_checksum() ||
           checksum::verify(b_, checksum::pseudo_header(src, dst, ipproto::kUdp, length()));
  }
  Bytes payload() const { return b_.subspan(kHeaderSize); }
  Bytes bytes() const { return b_; }

 private:
  explicit UdpView(Bytes b) : b_(b) {}
  Bytes b_;
};

// A datagram's ports and payload. The checksum is not kept: parse() verifies it and emit()
// computes it.
struct UdpRepr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  Bytes payload;

  // Parses and verifies the checksum (`bad_checksum`); a zero checksum field is accepted.
  static Result<UdpRepr> parse(Bytes b, Ipv4Addr src, Ipv4Addr dst) {
    auto v = UdpView::parse(b);
    if (!v) {
      return v.error();
    }
    if (!v->checksum_ok(src, dst)) {
      return Error::bad_checksum;
    }
    return UdpRepr{v->src_port(), v->dst_port(), v->payload()};
  }

  std::size_t size() const { return UdpView::kHeaderSize + payload.size(); }

  // Writes header and payload into `out` (at least size() bytes; the payload may already be in
  // place) with the checksum computed; a computed zero is sent as 0xffff (RFC 768). A payload
  // too long for the 16-bit Length field is a caller bug and aborts.
  void emit(MutBytes out, Ipv4Addr src, Ipv4Addr dst) const {
    if (size() > 0xffff) {
      std::abort();
    }
    const auto length = static_cast<std::uint16_t>(size());
    // The payload moves first: it may sit in `out` already, possibly where the header goes.
    if (!payload.empty()) {
      std::memmove(out.data() + UdpView::kHeaderSize, payload.data(), payload.size());
    }
    write_u16(out, UdpView::kSrcPort, src_port);
    write_u16(out, UdpView::kDstPort, dst_port);
    write_u16(out, UdpView::kLength, length);
    write_u16(out, UdpView::kChecksum, 0);
    std::uint16_t c = checksum::compute(Bytes(out.data(), length),
                                        checksum::pseudo_header(src, dst, ipproto::kUdp, length));
    write_u16(out, UdpView::kChecksum, c == 0 ? 0xffff : c);
  }

  bool operator==(const UdpRepr& o) const {
    return src_port == o.src_port && dst_port == o.dst_port &&
           std::ranges::equal(payload, o.payload);
  }
};

}  // namespace phalanx::wire
