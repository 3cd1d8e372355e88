#include "node/apps.hpp"

#include <fmt/format.h>

#include "sync/record.hpp"

namespace phalanx::node {

Apps::~Apps() = default;

Result<std::unique_ptr<Apps>> Apps::create(stack::Stack& stack, const NodeConfig& config,
                                           std::unique_ptr<apps::FileSource> files) {
  std::unique_ptr<Apps> a(new Apps(stack));
  if (config.echo.enabled) {
    // Session replication (DESIGN §6): every byte taken is held until the peer acknowledges its
    // echo, at most what one sync record carries.
    const bool resumable = config.cluster && config.cluster->replicas > 0;
    a->echo_tcp_ = resumable
                       ? std::make_unique<apps::EchoTcp>(
                             a->transport_, sync::kMaxAppState - apps::kEchoSnapshotHead, true)
                       : std::make_unique<apps::EchoTcp>(a->transport_);
    a->echo_udp_ = std::make_unique<apps::EchoUdp>(a->transport_);
    for (std::uint16_t port : config.echo.ports) {
      if (!a->stack_.tcp_listen(port, a->echo_tcp_.get()) ||
          !a->stack_.udp_bind(port, a->echo_udp_.get())) {
        return Error{fmt::format("echo: port {} is already in use", port)};
      }
    }
  }
  if (config.http.enabled) {
    if (!files) {
      return Error{fmt::format("http: no files to serve (root {})", config.http.root)};
    }
    a->files_ = std::move(files);
    apps::http::SessionLimits limits;
    // Session replication (DESIGN §6): a request is kept until the peer acknowledged its whole
    // answer, so that a new owner regenerates every byte the peer may still need.
    limits.retain_until_acked = config.cluster && config.cluster->replicas > 0;
    a->http_ = std::make_unique<apps::http::HttpServer>(a->transport_, *a->files_, limits);
    if (!a->stack_.tcp_listen(config.http.port, a->http_.get())) {
      return Error{fmt::format("http: port {} is already in use", config.http.port)};
    }
  }
  return a;
}

CounterList Apps::counters() const {
  CounterList out;
  if (echo_tcp_) {
    const auto& t = echo_tcp_->counters();
    const auto& u = echo_udp_->counters();
    out.push_back({"echo.connections", t.connections});
    out.push_back({"echo.bytes_echoed", t.bytes_echoed});
    out.push_back({"echo.drop.overflow_aborts", t.overflow_aborts});
    out.push_back({"echo.adopted", t.adopted});
    out.push_back({"echo.drop.adopt_refused", t.adopt_refused});
    out.push_back({"echo.datagrams_echoed", u.datagrams_echoed});
    out.push_back({"echo.drop.datagrams_dropped", u.datagrams_dropped});
    out.push_back({"echo.drop.datagrams_refused", u.datagrams_refused});
  }
  if (http_) {
    const auto c = http_->counters();
    out.push_back({"http.connections", c.connections});
    out.push_back({"http.aborted", c.aborted});
    out.push_back({"http.responses", c.sessions.responses});
    out.push_back({"http.status_2xx", c.sessions.status_2xx});
    out.push_back({"http.status_4xx", c.sessions.status_4xx});
    out.push_back({"http.status_5xx", c.sessions.status_5xx});
    out.push_back({"http.body_bytes", c.sessions.body_bytes});
  }
  return out;
}

}  // namespace phalanx::node
