// Initial sequence numbers per RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport,
// secretkey), M a timer ticking every 4 microseconds, F SipHash-2-4 keyed with the 128-bit
// secret. The same keyed hash (with a different tweak) gives each connection's timestamp offset
// (RFC 7323 §5.4 recommends a random per-connection offset).
#pragma once

#include <cstdint>
#include <span>

#include "tcp/config.hpp"
#include "tcp/seq.hpp"
#include "wire/addr.hpp"

namespace phalanx::tcp {

// SipHash-2-4 (Aumasson and Bernstein, 2012) of `data` under the 128-bit key (k0, k1), which are
// the key's two little-endian 64-bit halves.
std::uint64_t siphash24(const IsnSecret& key, std::span<const std::uint8_t> data);

// RFC 6528 §3. `now` drives M; a connection made later for the same 4-tuple gets a larger ISN
// (modulo 2^32, which wraps every 4.77 hours).
SeqNum isn(const IsnSecret& key, wire::Ipv4Addr local_addr, std::uint16_t local_port,
           wire::Ipv4Addr remote_addr, std::uint16_t remote_port, Time now);

// A per-4-tuple offset for our TSval clock, independent of the ISN.
std::uint32_t ts_offset(const IsnSecret& key, wire::Ipv4Addr local_addr, std::uint16_t local_port,
                        wire::Ipv4Addr remote_addr, std::uint16_t remote_port);

}  // namespace phalanx::tcp
