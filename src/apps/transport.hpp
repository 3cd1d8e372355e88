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
