// A Transport for the applications' adapter tests: a send buffer per connection whose space the
// test sets, and a record of everything sent, shut down and aborted.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "apps/transport.hpp"

namespace phalanx::apps::test {

class FakeTransport final : public Transport {
 public:
  struct Conn {
    std::string sent;           // everything tcp_send accepted
    std::size_t space = 65536;  // what tcp_send accepts now
    bool shut_down = false;
    bool aborted = false;
    int resumes = 0;  // tcp_resume_receive calls
  };
  struct Datagram {
    std::uint16_t from_port;
    stack::Endpoint to;
    std::string payload;
  };

  std::size_t tcp_send(ConnectionId id, wire::Bytes data) override {
    Conn& c = conns[id];
    if (c.shut_down || c.aborted) {
      return 0;
    }
    const std::size_t n = std::min(data.size(), c.space);
    c.sent.append(reinterpret_cast<const char*>(data.data()), n);
    c.space -= n;
    ++send_calls;
    return n;
  }
  std::size_t tcp_send_space(ConnectionId id) const override {
    const Conn& c = conns[id];
    return c.shut_down || c.aborted ? 0 : c.space;
  }
  bool tcp_shutdown(ConnectionId id) override {
    conns[id].shut_down = true;
    return true;
  }
  bool tcp_abort(ConnectionId id) override {
    conns[id].aborted = true;
    return true;
  }
  bool tcp_resume_receive(ConnectionId id) override {
    ++conns[id].resumes;
    return true;
  }
  std::optional<stack::SendError> udp_send(std::uint16_t from_port, stack::Endpoint to,
                                           wire::Bytes payload) override {
    if (udp_fails) {
      return stack::SendError::queue_full;
    }
    datagrams.push_back(
        {from_port, to,
         std::string(reinterpret_cast<const char*>(payload.data()), payload.size())});
    return std::nullopt;
  }

  mutable std::map<ConnectionId, Conn> conns;  // created on first mention
  std::vector<Datagram> datagrams;
  bool udp_fails = false;
  std::size_t send_calls = 0;
};

inline wire::Bytes bytes(std::string_view s) {
  return wire::Bytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

}  // namespace phalanx::apps::test
