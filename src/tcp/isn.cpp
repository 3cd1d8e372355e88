#include "tcp/isn.hpp"

#include <array>
#include <chrono>

namespace phalanx::tcp {

namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

struct SipState {
  std::uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};

std::uint64_t load_le64(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= std::uint64_t{p[i]} << (8 * i);
  }
  return v;
}

// The 4-tuple as 12 bytes plus a tweak byte that separates the ISN from the TS offset.
std::array<std::uint8_t, 13> tuple_bytes(wire::Ipv4Addr la, std::uint16_t lp, wire::Ipv4Addr ra,
                                         std::uint16_t rp, std::uint8_t tweak) {
  std::array<std::uint8_t, 13> b{};
  for (int i = 0; i < 4; ++i) {
    b[i] = static_cast<std::uint8_t>(la.value() >> (24 - 8 * i));
    b[4 + i] = static_cast<std::uint8_t>(ra.value() >> (24 - 8 * i));
  }
  b[8] = static_cast<std::uint8_t>(lp >> 8);
  b[9] = static_cast<std::uint8_t>(lp);
  b[10] = static_cast<std::uint8_t>(rp >> 8);
  b[11] = static_cast<std::uint8_t>(rp);
  b[12] = tweak;
  return b;
}

}  // namespace

std::uint64_t siphash24(const IsnSecret& key, std::span<const std::uint8_t> data) {
  const std::uint64_t k0 = key.key[0];
  const std::uint64_t k1 = key.key[1];
  SipState s{0x736f6d6570736575ull ^ k0, 0x646f72616e646f6dull ^ k1, 0x6c7967656e657261ull ^ k0,
             0x7465646279746573ull ^ k1};
  const std::size_t full = data.size() / 8 * 8;
  for (std::size_t i = 0; i < full; i += 8) {
    const std::uint64_t m = load_le64(data.data() + i, 8);
    s.v3 ^= m;
    s.round();
    s.round();
    s.v0 ^= m;
  }
  const std::uint64_t last =
      (std::uint64_t{data.size() & 0xff} << 56) | load_le64(data.data() + full, data.size() - full);
  s.v3 ^= last;
  s.round();
  s.round();
  s.v0 ^= last;
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) {
    s.round();
  }
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

SeqNum isn(const IsnSecret& key, wire::Ipv4Addr local_addr, std::uint16_t local_port,
           wire::Ipv4Addr remote_addr, std::uint16_t remote_port, Time now) {
  const auto b = tuple_bytes(local_addr, local_port, remote_addr, remote_port, 0);
  const auto f = static_cast<std::uint32_t>(siphash24(key, b));
  // M: one tick per 4 microseconds (RFC 6528 §3, after RFC 793's ISN clock).
  const auto m = static_cast<std::uint32_t>(
      static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now).count()) /
      4);
  return SeqNum{m + f};
}

std::uint32_t ts_offset(const IsnSecret& key, wire::Ipv4Addr local_addr, std::uint16_t local_port,
                        wire::Ipv4Addr remote_addr, std::uint16_t remote_port) {
  const auto b = tuple_bytes(local_addr, local_port, remote_addr, remote_port, 1);
  return static_cast<std::uint32_t>(siphash24(key, b));
}

}  // namespace phalanx::tcp
