#include "wire/checksum.hpp"

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
  std::uint64_t s = initial;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) {
    s += read_u16(data, i);
  }
  if (i < data.size()) {
    s += std::uint32_t{read_u8(data, i)} << 8;
  }
  return fold(s);
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
