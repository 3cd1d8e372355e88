// SYN cookies (RFC 4987 §3.6, D. J. Bernstein's scheme as Linux uses it): when a listener's SYN
// backlog is full, the SYN-ACK's sequence number encodes the connection instead of a half-open
// TCB, and the ACK that completes the handshake brings it back. A flood then costs no memory.
//
// The cookie (our ISS) is 32 bits:
//   bits 31..8  24 bits of SipHash-2-4(secret; 4-tuple, client ISN, time slot, MSS index)
//   bits  7..2  the time slot (64 s each) modulo 64
//   bits  1..0  the MSS index into kCookieMss
// A cookie is valid for kCookieMaxAge slots after the one it was made in. A lone stack's slots
// are its clock's; a cluster's members share keys (CookieKey in stack.hpp) whose slot is the
// key's generation, so that any member can check a cookie another one made.
//
// What the 32 bits cannot carry rides in our timestamp, as Linux does (RFC 4987 §3.6 notes the
// loss otherwise): when the SYN offers timestamps, the SYN-ACK's TSval has its low
// kCookieTsBits replaced by the peer's options, and the peer echoes them in the TSecr of the ACK
// that brings the cookie back:
//   bits 3..0  the peer's window scale (0..14); 0xf: it offered none (or we do not scale)
//   bit  4     the peer offered SACK-permitted (and we do SACK)
//   bit  5     0 (Linux: ECN; this stack does not negotiate ECN)
// Timestamps themselves need no bit: the ACK has them or not. Our own window scale is a
// function of the configuration (tcp::Connection::window_scale_for). Without timestamps the
// SYN-ACK offers only MSS, so both sides agree the connection runs without the others. The
// options bits are not authenticated (nor are they in Linux): whoever holds a valid cookie saw
// the SYN-ACK, and can only choose options for its own connection.
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
inline constexpr std::uint32_t kCookieTsBits = 6;
inline constexpr std::uint8_t kCookieNoWindowScale = 0xf;

struct SynCookie {
  std::uint32_t iss = 0;
  std::uint16_t mss = 0;  // the MSS the cookie encodes (the largest of kCookieMss <= wanted)
};

// The slot of the clock that `now` is in.
std::int64_t cookie_time_slot(Time now);

// The cookie for a SYN with sequence number `client_isn` on `tuple`, wanting at most `mss`, in
// the time slot of `now` or in `slot`.
SynCookie make_syn_cookie(const tcp::IsnSecret& secret, const tcp::FourTuple& tuple,
                          std::uint32_t client_isn, std::uint16_t mss, Time now);
SynCookie make_syn_cookie(const tcp::IsnSecret& secret, const tcp::FourTuple& tuple,
                          std::uint32_t client_isn, std::uint16_t mss, std::int64_t slot);

// The peer's options that a cookie SYN-ACK's TSval carries.
struct CookieOptions {
  std::optional<std::uint8_t> window_scale;  // the peer's shift (at most 14), if we scale
  bool sack_permitted = false;               // both sides do SACK
  bool operator==(const CookieOptions&) const = default;
};

// The low kCookieTsBits of a cookie SYN-ACK's TSval that carry `options`.
std::uint32_t cookie_ts_bits(const CookieOptions& options);

// Our TSval for a cookie SYN-ACK: `ts_now` (the TSval clock the connection will use) with its low
// kCookieTsBits replaced by `options`, moved back one step when that would put it ahead of
// ts_now, so that the connection's later TSvals never go backwards (RFC 7323 §5.4).
std::uint32_t cookie_tsval(std::uint32_t ts_now, const CookieOptions& options);

// The options a cookie ACK's TSecr carries back (cookie_tsval's low bits).
CookieOptions cookie_options(std::uint32_t tsecr);

// The MSS of a valid cookie: `iss` is the ACK's ack - 1, `client_isn` its seq - 1. nullopt for a
// forged or expired cookie: one made more than kCookieMaxAge slots before `now`'s, or (the
// second form) in another slot than `slot`.
std::optional<std::uint16_t> check_syn_cookie(const tcp::IsnSecret& secret,
                                              const tcp::FourTuple& tuple, std::uint32_t client_isn,
                                              std::uint32_t iss, Time now);
std::optional<std::uint16_t> check_syn_cookie(const tcp::IsnSecret& secret,
                                              const tcp::FourTuple& tuple, std::uint32_t client_isn,
                                              std::uint32_t iss, std::int64_t slot);

}  // namespace phalanx::stack
