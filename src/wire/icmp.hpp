// ICMP for IPv4 (RFC 792). The stack answers echo requests on the cluster IP and must recognise
// the error messages (destination unreachable, time exceeded) that carry a datagram it sent;
// only echo has a repr, the errors are read through the view.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "wire/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/result.hpp"

namespace phalanx::wire {

namespace icmp {
// Message types (RFC 792; redirect and parameter problem listed so they can be counted by name).
inline constexpr std::uint8_t kEchoReply = 0;
inline constexpr std::uint8_t kDestUnreachable = 3;
inline constexpr std::uint8_t kRedirect = 5;
inline constexpr std::uint8_t kEchoRequest = 8;
inline constexpr std::uint8_t kTimeExceeded = 11;
inline constexpr std::uint8_t kParameterProblem = 12;

// Destination-unreachable codes (RFC 792, RFC 1191 for fragmentation needed).
inline constexpr std::uint8_t kNetUnreachable = 0;
inline constexpr std::uint8_t kHostUnreachable = 1;
inline constexpr std::uint8_t kProtocolUnreachable = 2;
inline constexpr std::uint8_t kPortUnreachable = 3;
inline constexpr std::uint8_t kFragmentationNeeded = 4;
inline constexpr std::uint8_t kAdminProhibited = 13;  // RFC 1812 §5.2.7.1

// Time-exceeded codes.
inline constexpr std::uint8_t kTtlExceeded = 0;
inline constexpr std::uint8_t kReassemblyExceeded = 1;

// True for the types whose body is the header of the datagram that caused them (RFC 792), which
// the stack matches to a socket and must never answer with another ICMP error (RFC 1122
// §3.2.2).
constexpr bool is_error(std::uint8_t type) {
  return type == kDestUnreachable || type == kRedirect || type == kTimeExceeded ||
         type == kParameterProblem;
}
}  // namespace icmp

// The whole ICMP message: the IPv4 payload, exactly total length minus header length.
class IcmpView {
 public:
  static constexpr std::size_t kType = 0;
  static constexpr std::size_t kCode = 1;
  static constexpr std::size_t kChecksum = 2;
  static constexpr std::size_t kRest = 4;  // "rest of header": meaning depends on the type
  static constexpr std::size_t kHeaderSize = 8;

  // Fails with `truncated` below the 8-byte header. Checks no checksum (see checksum_ok()) and
  // accepts every type, so that unknown ones can be counted.
  static Result<IcmpView> parse(Bytes b) {
    if (b.size() < kHeaderSize) {
      return Error::truncated;
    }
    return IcmpView{b};
  }

  // Message type, one of icmp::k* or unknown.
  std::uint8_t type() const { return read_u8(b_, kType); }
  // Subtype, meaningful per type (icmp::kPortUnreachable...).
  std::uint8_t code() const { return read_u8(b_, kCode); }
  // The checksum field as sent.
  std::uint16_t checksum() const { return read_u16(b_, kChecksum); }
  // True when the checksum over the whole message verifies.
  bool checksum_ok() const { return checksum::verify(b_); }
  // Bytes 4..7: identifier and sequence for echo, next-hop MTU for fragmentation needed, unused
  // (zero) for most errors.
  std::uint32_t rest() const { return read_u32(b_, kRest); }
  // Echo identifier (first half of rest()).
  std::uint16_t echo_identifier() const { return read_u16(b_, kRest); }
  // Echo sequence number (second half of rest()).
  std::uint16_t echo_sequence() const { return read_u16(b_, kRest + 2); }
  // RFC 1191 next-hop MTU of a fragmentation-needed message (0 from pre-RFC 1191 routers).
  std::uint16_t next_hop_mtu() const { return read_u16(b_, kRest + 2); }
  // After the 8-byte header: echo data, or for an error the IPv4 header and at least 8 bytes of
  // the datagram that caused it (parse it with Ipv4View, which may find it truncated).
  Bytes payload() const { return b_.subspan(kHeaderSize); }
  // The whole message.
  Bytes bytes() const { return b_; }

 private:
  explicit IcmpView(Bytes b) : b_(b) {}
  Bytes b_;
};

// An echo request or reply (RFC 792 p. 14). The payload is a view into the parsed buffer (or the
// caller's), not a copy: it must outlive the repr.
struct IcmpEchoRepr {
  enum class Kind : std::uint8_t { request, reply };

  Kind kind = Kind::request;
  std::uint16_t identifier = 0;
  std::uint16_t sequence = 0;
  Bytes payload;

  // Fails with `truncated` below 8 bytes, `bad_checksum` when the checksum over the message does
  // not verify, `unsupported` for a type other than echo request/reply, and `malformed` for a
  // non-zero code.
  static Result<IcmpEchoRepr> parse(Bytes b) {
    auto v = IcmpView::parse(b);
    if (!v) {
      return v.error();
    }
    if (!v->checksum_ok()) {
      return Error::bad_checksum;
    }
    if (v->type() != icmp::kEchoRequest && v->type() != icmp::kEchoReply) {
      return Error::unsupported;
    }
    if (v->code() != 0) {
      return Error::malformed;
    }
    const Kind kind = v->type() == icmp::kEchoRequest ? Kind::request : Kind::reply;
    return IcmpEchoRepr{kind, v->echo_identifier(), v->echo_sequence(), v->payload()};
  }

  // The reply RFC 792 asks for: same identifier, sequence and data.
  IcmpEchoRepr reply() const { return IcmpEchoRepr{Kind::reply, identifier, sequence, payload}; }

  std::size_t size() const { return IcmpView::kHeaderSize + payload.size(); }

  // Writes header and payload into the first size() bytes of `out` (the caller sized it) with a
  // valid checksum. The payload may already sit in place at out[8..] (a reply built in the
  // request's buffer), or overlap it.
  void emit(MutBytes out) const {
    // The payload first: it may overlap the header bytes about to be written.
    if (!payload.empty()) {
      std::memmove(out.data() + IcmpView::kHeaderSize, payload.data(), payload.size());
    }
    write_u8(out, IcmpView::kType, kind == Kind::request ? icmp::kEchoRequest : icmp::kEchoReply);
    write_u8(out, IcmpView::kCode, 0);
    write_u16(out, IcmpView::kChecksum, 0);
    write_u16(out, IcmpView::kRest, identifier);
    write_u16(out, IcmpView::kRest + 2, sequence);
    const Bytes message(out.data(), size());
    write_u16(out, IcmpView::kChecksum, checksum::compute(message));
  }

  // Field-wise, payload by content.
  bool operator==(const IcmpEchoRepr& o) const {
    return kind == o.kind && identifier == o.identifier && sequence == o.sequence &&
           std::ranges::equal(payload, o.payload);
  }
};

}  // namespace phalanx::wire
