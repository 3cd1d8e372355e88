// The Internet checksum (RFC 1071), its incremental update (RFC 1624), and the TCP/UDP
// pseudo-header sum (RFC 9293 §3.1, RFC 768).
#pragma once

#include <cstdint>

#include "wire/addr.hpp"
#include "wire/bytes.hpp"

namespace phalanx::wire::checksum {

// One's-complement sum of `data` folded to 16 bits, added to `initial` (not complemented).
// Odd lengths are padded with a zero byte, as RFC 1071 says.
std::uint16_t sum(Bytes data, std::uint32_t initial = 0);

// The checksum field value for `data`: ~sum(data, initial).
inline std::uint16_t compute(Bytes data, std::uint32_t initial = 0) {
  return static_cast<std::uint16_t>(~sum(data, initial));
}

// True when `data` (with its checksum field in place) sums to 0xffff.
inline bool verify(Bytes data, std::uint32_t initial = 0) {
  return sum(data, initial) == 0xffff;
}

// Pseudo-header sum (folded to 16 bits, not complemented) for TCP/UDP over IPv4: src, dst, zero,
// protocol, and the transport length. Pass it as `initial` to sum()/compute()/verify().
std::uint32_t pseudo_header(Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol,
                            std::uint16_t length);

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a 16-bit field changing from `old_field` to
// `new_field`. Like a full recomputation it yields 0x0000 when the data sums to 0xffff; it
// cannot tell the all-zero data case (whose checksum is 0xffff) apart (RFC 1624 §3), which
// never arises for IPv4, TCP or UDP headers. Build such messages with a full checksum.
std::uint16_t update16(std::uint16_t old_checksum, std::uint16_t old_field,
                       std::uint16_t new_field);

// Same for a 32-bit field (two 16-bit words), e.g. an IPv4 address or a sequence number.
std::uint16_t update32(std::uint16_t old_checksum, std::uint32_t old_field,
                       std::uint32_t new_field);

}  // namespace phalanx::wire::checksum
