// SYN cookies (RFC 4987 §3.6, D. J. Bernstein's scheme as Linux uses it): when a listener's SYN
// backlog is full, the SYN-ACK's sequence number encodes the connection instead of a half-open
// TCB, and the ACK that completes the handshake brings it back. A flood then costs no memory.
//
// The cookie (our ISS) is 32 bits:
//   bits 31..8  24 bits of SipHash-2-4(secret; 4-tuple, client ISN, time slot, MSS index)
//   bits  7..2  the time slot (64 s each) modulo 64
//   bits  1..0  the MSS index into kCookieMss
// A cookie is valid for kCookieMaxAge slots after the one it was made in. What a cookie cannot
// carry (window scale, SACK-permitted, timestamps) is not offered in its SYN-ACK, so both sides
// agree the connection runs without them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "stack/types.hpp"
#include "tcp/config.hpp"
#include "tcp/connection.hpp"

namespace phalanx::stack {

inline constexpr std::array<std::uint16_t, 4> kCookieMss = {536, 1220, 1440, 1460};
inline constexpr Duration kCookieSlot = std::chrono::seconds(64);
inline constexpr std::int64_t kCookieMaxAge = 2;  // slots: a cookie lives 64 to 192 s

struct SynCookie {
  std::uint32_t iss = 0;
  std::uint16_t mss = 0;  // the MSS the cookie encodes (the largest of kCookieMss <= wanted)
};

// The cookie for a SYN with sequence number `client_isn` on `tuple`, wanting at most `mss`.
SynCookie make_syn_cookie(const tcp::IsnSecret& secret, const tcp::FourTuple& tuple,
                          std::uint32_t client_isn, std::uint16_t mss, Time now);

// The MSS of a valid cookie: `iss` is the ACK's ack - 1, `client_isn` its seq - 1. nullopt for a
// forged or expired cookie.
std::optional<std::uint16_t> check_syn_cookie(const tcp::IsnSecret& secret,
                                              const tcp::FourTuple& tuple, std::uint32_t client_isn,
                                              std::uint32_t iss, Time now);

}  // namespace phalanx::stack
