#include "stack/syn_cookie.hpp"

#include <algorithm>
#include <array>

#include "tcp/isn.hpp"
#include "wire/bytes.hpp"

namespace phalanx::stack {

std::int64_t cookie_time_slot(Time now) {
  return now / kCookieSlot;
}

namespace {

std::uint32_t hash24(const tcp::IsnSecret& secret, const tcp::FourTuple& t,
                     std::uint32_t client_isn, std::int64_t slot, std::uint32_t mss_index) {
  std::array<std::uint8_t, 25> in{};
  const wire::MutBytes b(reinterpret_cast<std::byte*>(in.data()), in.size());
  wire::write_u32(b, 0, t.local_addr.value());
  wire::write_u16(b, 4, t.local_port);
  wire::write_u32(b, 6, t.remote_addr.value());
  wire::write_u16(b, 10, t.remote_port);
  wire::write_u32(b, 12, client_isn);
  wire::write_u32(b, 16, static_cast<std::uint32_t>(static_cast<std::uint64_t>(slot) >> 32));
  wire::write_u32(b, 20, static_cast<std::uint32_t>(slot));
  wire::write_u8(b, 24, static_cast<std::uint8_t>(mss_index));
  return static_cast<std::uint32_t>(tcp::siphash24(secret, in)) & 0xffffffu;
}

}  // namespace

SynCookie make_syn_cookie(const tcp::IsnSecret& secret, const tcp::FourTuple& tuple,
                          std::uint32_t client_isn, std::uint16_t mss, Time now) {
  return make_syn_cookie(secret, tuple, client_isn, mss, cookie_time_slot(now));
}

SynCookie make_syn_cookie(const tcp::IsnSecret& secret, const tcp::FourTuple& tuple,
                          std::uint32_t client_isn, std::uint16_t mss, std::int64_t slot) {
  std::uint32_t index = 0;
  for (std::uint32_t i = 0; i < kCookieMss.size(); ++i) {
    if (kCookieMss[i] <= mss) {
      index = i;
    }
  }
  const std::uint32_t iss = (hash24(secret, tuple, client_isn, slot, index) << 8) |
                            (static_cast<std::uint32_t>(slot & 0x3f) << 2) | index;
  return SynCookie{iss, kCookieMss[index]};
}

std::uint32_t cookie_ts_bits(const CookieOptions& options) {
  std::uint32_t bits = options.window_scale ? std::min<std::uint8_t>(*options.window_scale, 14)
                                            : kCookieNoWindowScale;
  if (options.sack_permitted) {
    bits |= 1u << 4;
  }
  return bits;
}

std::uint32_t cookie_tsval(std::uint32_t ts_now, const CookieOptions& options) {
  return tcp::tsval_with_low_bits(ts_now, cookie_ts_bits(options), kCookieTsBits);
}

CookieOptions cookie_options(std::uint32_t tsecr) {
  CookieOptions o;
  const auto scale = static_cast<std::uint8_t>(tsecr & 0xf);
  if (scale != kCookieNoWindowScale) {
    o.window_scale = std::min<std::uint8_t>(scale, 14);  // RFC 7323 §2.3: above 14 is 14
  }
  o.sack_permitted = (tsecr & (1u << 4)) != 0;
  return o;
}

std::optional<std::uint16_t> check_syn_cookie(const tcp::IsnSecret& secret,
                                              const tcp::FourTuple& tuple, std::uint32_t client_isn,
                                              std::uint32_t iss, Time now) {
  const std::int64_t now_slot = cookie_time_slot(now);
  // The newest slot at or before now with these low bits.
  const std::int64_t age = (now_slot - static_cast<std::int64_t>((iss >> 2) & 0x3f)) & 0x3f;
  if (age > kCookieMaxAge) {
    return std::nullopt;
  }
  return check_syn_cookie(secret, tuple, client_isn, iss, now_slot - age);
}

std::optional<std::uint16_t> check_syn_cookie(const tcp::IsnSecret& secret,
                                              const tcp::FourTuple& tuple, std::uint32_t client_isn,
                                              std::uint32_t iss, std::int64_t slot) {
  const std::uint32_t index = iss & 0x3;
  if (static_cast<std::uint32_t>(slot & 0x3f) != ((iss >> 2) & 0x3f) ||
      hash24(secret, tuple, client_isn, slot, index) != iss >> 8) {
    return std::nullopt;
  }
  return kCookieMss[index];
}

}  // namespace phalanx::stack
