// The part of the stack an application sends through, as an interface, so that the applications'
// stack adapters run in unit tests against a fake (Katran: the adapter is a constructor
// argument). StackTransport (stack_transport.hpp) forwards to stack::Stack; the tests use their
// own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "stack/stack.hpp"
#include "stack/types.hpp"
#include "wire/bytes.hpp"

namespace phalanx::apps {

using stack::ConnectionId;

// The 64-bit stream offset whose low 32 bits are those of `offset`, nearest to `near`: the
// stack gives the offsets of TcpHandler::snapshot() and on_adopted() from sequence numbers,
// modulo 2^32 (a session's offsets never differ by 2 GB within one snapshot).
inline std::uint64_t unwrap_offset(std::uint64_t offset, std::uint64_t near) {
  const auto delta = static_cast<std::int32_t>(static_cast<std::uint32_t>(offset) -
                                               static_cast<std::uint32_t>(near));
  return near + static_cast<std::uint64_t>(static_cast<std::int64_t>(delta));
}

class Transport {
 public:
  virtual ~Transport() = default;
  // As the Stack calls of the same names (stack/stack.hpp).
  virtual std::size_t tcp_send(ConnectionId id, wire::Bytes data) = 0;
  virtual std::size_t tcp_send_space(ConnectionId id) const = 0;
  virtual bool tcp_shutdown(ConnectionId id) = 0;
  virtual bool tcp_abort(ConnectionId id) = 0;
  virtual bool tcp_resume_receive(ConnectionId id) = 0;
  virtual std::optional<stack::SendError> udp_send(std::uint16_t from_port, stack::Endpoint to,
                                                   wire::Bytes payload) = 0;
};

}  // namespace phalanx::apps
