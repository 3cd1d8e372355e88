#include "wire/addr.hpp"

#include <charconv>
#include <cstdio>

namespace phalanx::wire {

std::optional<Ipv4Addr> Ipv4Addr::from_string(std::string_view s) {
  std::uint32_t v = 0;
  const char* p = s.data();
  const char* end = s.data() + s.size();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (p == end || *p != '.') {
        return std::nullopt;
      }
      ++p;
    }
    if (p == end || *p < '0' || *p > '9') {
      return std::nullopt;
    }
    unsigned octet = 0;
    auto [next, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc{} || octet > 255 || next - p > 3) {
      return std::nullopt;
    }
    p = next;
    v = (v << 8) | octet;
  }
  if (p != end) {
    return std::nullopt;
  }
  return Ipv4Addr{v};
}

std::string Ipv4Addr::to_string() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", v_ >> 24, (v_ >> 16) & 0xff, (v_ >> 8) & 0xff,
                v_ & 0xff);
  return buf;
}

std::optional<MacAddr> MacAddr::from_string(std::string_view s) {
  if (s.size() != 17) {
    return std::nullopt;
  }
  std::array<std::uint8_t, kSize> o{};
  for (std::size_t i = 0; i < kSize; ++i) {
    if (i > 0 && s[i * 3 - 1] != ':') {
      return std::nullopt;
    }
    const char* p = s.data() + i * 3;
    unsigned octet = 0;
    auto [next, ec] = std::from_chars(p, p + 2, octet, 16);
    if (ec != std::errc{} || next != p + 2) {
      return std::nullopt;
    }
    o[i] = static_cast<std::uint8_t>(octet);
  }
  return MacAddr{o};
}

std::string MacAddr::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", o_[0], o_[1], o_[2], o_[3], o_[4],
                o_[5]);
  return buf;
}

}  // namespace phalanx::wire
