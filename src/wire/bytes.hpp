// Big-endian field access over byte spans. Every packet view in src/wire reads and writes its
// fields through these helpers at named offsets; nothing is ever cast onto packet bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace phalanx::wire {

using Bytes = std::span<const std::byte>;
using MutBytes = std::span<std::byte>;

// Callers guarantee `off + N <= b.size()`; views check lengths once in parse().
inline std::uint8_t read_u8(Bytes b, std::size_t off) {
  return std::to_integer<std::uint8_t>(b[off]);
}

inline std::uint16_t read_u16(Bytes b, std::size_t off) {
  return static_cast<std::uint16_t>((read_u8(b, off) << 8) | read_u8(b, off + 1));
}

inline std::uint32_t read_u32(Bytes b, std::size_t off) {
  return (std::uint32_t{read_u16(b, off)} << 16) | read_u16(b, off + 2);
}

inline std::uint64_t read_u64(Bytes b, std::size_t off) {
  return (std::uint64_t{read_u32(b, off)} << 32) | read_u32(b, off + 4);
}

inline void write_u8(MutBytes b, std::size_t off, std::uint8_t v) {
  b[off] = std::byte{v};
}

inline void write_u16(MutBytes b, std::size_t off, std::uint16_t v) {
  b[off] = std::byte(v >> 8);
  b[off + 1] = std::byte(v & 0xff);
}

inline void write_u32(MutBytes b, std::size_t off, std::uint32_t v) {
  write_u16(b, off, static_cast<std::uint16_t>(v >> 16));
  write_u16(b, off + 2, static_cast<std::uint16_t>(v & 0xffff));
}

inline void write_u64(MutBytes b, std::size_t off, std::uint64_t v) {
  write_u32(b, off, static_cast<std::uint32_t>(v >> 32));
  write_u32(b, off + 4, static_cast<std::uint32_t>(v & 0xffffffffu));
}

}  // namespace phalanx::wire
