// Standalone: one member without a cluster — the stack serving member.address, and the
// applications the config enables, wired together. Pure apart from opening the HTTP root: the
// driver (phalanxd) owns the link, the loop and the clock.
#pragma once

#include <memory>
#include <vector>

#include "apps/echo.hpp"
#include "apps/file_source_posix.hpp"
#include "apps/http_server.hpp"
#include "apps/stack_transport.hpp"
#include "runtime/config.hpp"
#include "runtime/error.hpp"
#include "runtime/logging.hpp"
#include "runtime/stack_node.hpp"
#include "stack/stack.hpp"

namespace phalanx::runtime {

// What the config does not say and the driver supplies.
struct StandaloneEnvironment {
  wire::MacAddr interface_mac;  // member.mac defaults to it
  unsigned mtu = 1500;          // the interface's
  std::size_t offload_max = 0;  // the link's Link::offload_max(), if [link] offload is on
  tcp::IsnSecret secret;        // drawn from getrandom()
};

class Standalone {
 public:
  // Fails when the HTTP root cannot be opened or a port cannot be bound (two apps on one).
  static Result<std::unique_ptr<Standalone>> create(const Config& config,
                                                    const StandaloneEnvironment& env);
  ~Standalone();
  Standalone(const Standalone&) = delete;
  Standalone& operator=(const Standalone&) = delete;

  Node& node() { return node_; }
  stack::Stack& stack() { return *stack_; }

  // The stack's counters (drops first) and the applications'.
  CounterList counters() const;

 private:
  explicit Standalone(const stack::StackConfig& config);

  std::unique_ptr<stack::Stack> stack_;
  StackNode node_;
  apps::StackTransport transport_;
  std::unique_ptr<apps::EchoTcp> echo_tcp_;
  std::unique_ptr<apps::EchoUdp> echo_udp_;
  std::unique_ptr<apps::PosixFileSource> files_;
  std::unique_ptr<apps::http::HttpServer> http_;
};

// The StackConfig a config and an environment describe.
stack::StackConfig stack_config(const Config& config, const StandaloneEnvironment& env);

}  // namespace phalanx::runtime
