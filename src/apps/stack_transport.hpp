// The Transport that the runtime and the simulator give the applications: stack::Stack itself.
// Kept out of transport.hpp on purpose: where this final class is visible the compiler may
// devirtualize Transport calls towards it, which would tie every application object file to the
// stack's implementation (and the applications' unit tests to a complete stack).
#pragma once

#include "apps/transport.hpp"
#include "stack/stack.hpp"

namespace phalanx::apps {

class StackTransport final : public Transport {
 public:
  explicit StackTransport(stack::Stack& stack) : stack_(stack) {}
  std::size_t tcp_send(ConnectionId id, wire::Bytes data) override {
    return stack_.tcp_send(id, data);
  }
  std::size_t tcp_send_space(ConnectionId id) const override { return stack_.tcp_send_space(id); }
  bool tcp_shutdown(ConnectionId id) override { return stack_.tcp_shutdown(id); }
  bool tcp_abort(ConnectionId id) override { return stack_.tcp_abort(id); }
  bool tcp_resume_receive(ConnectionId id) override { return stack_.tcp_resume_receive(id); }
  std::optional<stack::SendError> udp_send(std::uint16_t from_port, stack::Endpoint to,
                                           wire::Bytes payload) override {
    return stack_.udp_send(from_port, to, payload);
  }

 private:
  stack::Stack& stack_;
};

}  // namespace phalanx::apps
