#include "wire/checksum.hpp"

#include <bit>
#include <cstring>

namespace phalanx::wire::checksum {

namespace {

std::uint16_t fold(std::uint64_t s) {
  while (s >> 16) {
    s = (s & 0xffff) + (s >> 16);
  }
  return static_cast<std::uint16_t>(s);
}

}  // namespace

std::uint16_t sum(Bytes data, std::uint32_t initial) {
  // RFC 1071 §2(B): the one's-complement sum does not depend on byte order, so the data is
  // summed as native 32-bit words into two 64-bit accumulators (no carry can be lost below
  // 2^32 words) and the folded result is byte-swapped once on a little-endian host. Each
  // 32-bit word is two 16-bit words, and 2^16 = 1 (mod 0xffff), so nothing else changes.
  const std::byte* p = data.data();
  std::size_t n = data.size();
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint32_t w[2];
    std::memcpy(w, p, sizeof(w));
    a += w[0];
    b += w[1];
  }
  a += b;
  if (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, sizeof(w));
    a += w;
    n -= 4;
    p += 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, sizeof(w));
    a += w;
    n -= 2;
    p += 2;
  }
  if (n == 1) {
    // The odd byte is the high half of a zero-padded word in network order.
    const auto last = std::to_integer<std::uint8_t>(*p);
    a += std::endian::native == std::endian::little ? last : std::uint32_t{last} << 8;
  }
  std::uint16_t native = fold(a);
  if constexpr (std::endian::native == std::endian::little) {
    native = static_cast<std::uint16_t>((native >> 8) | (native << 8));
  }
  return fold(std::uint64_t{native} + initial);
}

std::uint32_t pseudo_header(Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol,
                            std::uint16_t length) {
  std::uint64_t s = (src.value() >> 16) + (src.value() & 0xffff) + (dst.value() >> 16) +
                    (dst.value() & 0xffff) + protocol + length;
  return fold(s);
}

std::uint16_t update16(std::uint16_t old_checksum, std::uint16_t old_field,
                       std::uint16_t new_field) {
  std::uint64_t s = std::uint16_t(~old_checksum) + std::uint16_t(~old_field) + new_field;
  return static_cast<std::uint16_t>(~fold(s));
}

std::uint16_t update32(std::uint16_t old_checksum, std::uint32_t old_field,
                       std::uint32_t new_field) {
  std::uint16_t c = update16(old_checksum, static_cast<std::uint16_t>(old_field >> 16),
                             static_cast<std::uint16_t>(new_field >> 16));
  return update16(c, static_cast<std::uint16_t>(old_field & 0xffff),
                  static_cast<std::uint16_t>(new_field & 0xffff));
}

}  // namespace phalanx::wire::checksum
