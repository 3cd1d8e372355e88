// Small value types shared by the stack's parts and its users.
#pragma once

#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>

#include "wire/addr.hpp"
#include "wire/time.hpp"

namespace phalanx::stack {

// Time since the driver's origin: wire/time.hpp.
using phalanx::Duration;
using phalanx::kNever;
using phalanx::Time;

// An address and port.
struct Endpoint {
  wire::Ipv4Addr addr;
  std::uint16_t port = 0;
  constexpr auto operator<=>(const Endpoint&) const = default;
};

// Names one TCP connection for the application. The generation makes an id stale once its
// connection is gone, even after the slot is reused: calls with a stale id do nothing (counted
// as Counter::tcp_stale_id) and report failure.
struct ConnectionId {
  static constexpr std::uint32_t kNoIndex = std::numeric_limits<std::uint32_t>::max();
  std::uint32_t index = kNoIndex;
  std::uint32_t generation = 0;

  constexpr bool valid() const { return index != kNoIndex; }
  constexpr auto operator<=>(const ConnectionId&) const = default;
};

// Why a connection ended, as on_closed() reports it.
enum class CloseReason : std::uint8_t {
  closed,         // both directions closed in order (FIN sent and acknowledged, FIN received)
  reset_by_peer,  // the peer sent an acceptable RST
  timed_out,      // retransmissions or keepalives ran out (RFC 9293 §3.8.3 R2)
  handed_over,    // Stack::tcp_hand_over(): another member serves it now
};

const char* to_string(CloseReason r);

}  // namespace phalanx::stack

template <>
struct std::hash<phalanx::stack::ConnectionId> {
  std::size_t operator()(const phalanx::stack::ConnectionId& id) const noexcept {
    return std::hash<std::uint64_t>{}((std::uint64_t{id.generation} << 32) | id.index);
  }
};
