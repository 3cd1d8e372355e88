// Standalone: one member without a cluster — the stack serving member.address, and the
// applications the config enables, wired together (node/apps.hpp). Pure: the driver (phalanxd)
// owns the link, the loop and the clock, and opens the HTTP root.
#pragma once

#include <memory>
#include <vector>

#include "apps/file_source.hpp"
#include "node/apps.hpp"
#include "node/counters.hpp"
#include "node/node_config.hpp"
#include "node/result.hpp"
#include "node/stack_node.hpp"
#include "stack/stack.hpp"

namespace phalanx::node {

// What the config does not say and the driver supplies.
struct StandaloneEnvironment {
  wire::MacAddr interface_mac;  // member.mac defaults to it
  unsigned mtu = 1500;          // the interface's
  std::size_t offload_max = 0;  // the link's Link::offload_max(), if [link] offload is on
  tcp::IsnSecret secret;        // drawn from getrandom()
};

class Standalone {
 public:
  // `files`: what http serves (config.http.root, opened by the driver); may be null when http
  // is off. Fails when a port cannot be bound (two apps on one) or http has no files.
  static Result<std::unique_ptr<Standalone>> create(const NodeConfig& config,
                                                    const StandaloneEnvironment& env,
                                                    std::unique_ptr<apps::FileSource> files);
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
  std::unique_ptr<Apps> apps_;
};

// The StackConfig a config and an environment describe.
stack::StackConfig stack_config(const NodeConfig& config, const StandaloneEnvironment& env);

}  // namespace phalanx::node
