// Apps: the applications a member serves on its stack, as its config enables them (echo on
// TCP and UDP, http). The one wiring both members use, stand-alone and clustered.
#pragma once

#include <memory>

#include "apps/echo.hpp"
#include "apps/file_source.hpp"
#include "apps/http_server.hpp"
#include "apps/stack_transport.hpp"
#include "node/counters.hpp"
#include "node/node_config.hpp"
#include "node/result.hpp"
#include "stack/stack.hpp"

namespace phalanx::node {

class Apps {
 public:
  // Registers on `stack` the applications `config` enables. http serves `files`, which the
  // driver opened on config.http.root (a node opens no file itself). Fails when a port is
  // already in use (two applications on one port) or http is enabled without `files`.
  // `stack` must outlive the Apps.
  static Result<std::unique_ptr<Apps>> create(stack::Stack& stack, const NodeConfig& config,
                                              std::unique_ptr<apps::FileSource> files);
  ~Apps();
  Apps(const Apps&) = delete;
  Apps& operator=(const Apps&) = delete;

  // The applications' counters: echo.* and http.*, drops as "<app>.drop.<reason>".
  CounterList counters() const;

 private:
  explicit Apps(stack::Stack& stack) : stack_(stack), transport_(stack) {}

  stack::Stack& stack_;
  apps::StackTransport transport_;
  std::unique_ptr<apps::EchoTcp> echo_tcp_;
  std::unique_ptr<apps::EchoUdp> echo_udp_;
  std::unique_ptr<apps::FileSource> files_;
  std::unique_ptr<apps::http::HttpServer> http_;
};

}  // namespace phalanx::node
