// Address value types: IPv4 addresses and Ethernet MAC addresses, with parsing from text for
// configuration and formatting for logs.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wire/bytes.hpp"

namespace phalanx::wire {

// An IPv4 address held in host order; `value()` is the 32-bit number as written a.b.c.d.
class Ipv4Addr {
 public:
  constexpr Ipv4Addr() = default;
  constexpr explicit Ipv4Addr(std::uint32_t host_order) : v_(host_order) {}
  constexpr Ipv4Addr(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d)
      : v_((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d) {}

  constexpr std::uint32_t value() const { return v_; }
  constexpr bool is_unspecified() const { return v_ == 0; }
  constexpr bool is_broadcast() const { return v_ == 0xffffffffu; }
  constexpr bool is_multicast() const { return (v_ >> 28) == 0xe; }

  static Ipv4Addr read(Bytes b, std::size_t off) { return Ipv4Addr{read_u32(b, off)}; }
  void write(MutBytes b, std::size_t off) const { write_u32(b, off, v_); }

  // Dotted quad "a.b.c.d"; nullopt for anything else (no leading zeros games, no spaces).
  static std::optional<Ipv4Addr> from_string(std::string_view s);
  std::string to_string() const;

  constexpr auto operator<=>(const Ipv4Addr&) const = default;

 private:
  std::uint32_t v_ = 0;
};

class MacAddr {
 public:
  static constexpr std::size_t kSize = 6;

  constexpr MacAddr() = default;
  constexpr explicit MacAddr(std::array<std::uint8_t, kSize> octets) : o_(octets) {}

  static constexpr MacAddr broadcast() { return MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }

  constexpr const std::array<std::uint8_t, kSize>& octets() const { return o_; }
  constexpr bool is_broadcast() const { return *this == broadcast(); }
  constexpr bool is_multicast() const { return (o_[0] & 0x01) != 0; }
  constexpr bool is_unicast() const { return !is_multicast(); }
  constexpr bool is_zero() const { return *this == MacAddr{}; }

  static MacAddr read(Bytes b, std::size_t off) {
    MacAddr m;
    for (std::size_t i = 0; i < kSize; ++i) {
      m.o_[i] = read_u8(b, off + i);
    }
    return m;
  }
  void write(MutBytes b, std::size_t off) const {
    for (std::size_t i = 0; i < kSize; ++i) {
      write_u8(b, off + i, o_[i]);
    }
  }

  // "aa:bb:cc:dd:ee:ff" (case-insensitive); nullopt for anything else.
  static std::optional<MacAddr> from_string(std::string_view s);
  std::string to_string() const;

  constexpr auto operator<=>(const MacAddr&) const = default;

 private:
  std::array<std::uint8_t, kSize> o_{};
};

}  // namespace phalanx::wire
