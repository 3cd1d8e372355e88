#include "runtime/standalone.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

namespace phalanx::runtime {

stack::StackConfig stack_config(const Config& config, const StandaloneEnvironment& env) {
  stack::StackConfig s;
  s.mac = config.member.mac.value_or(env.interface_mac);
  s.address = config.member.address;
  s.prefix_length = config.member.prefix;
  s.gateway = config.member.gateway;
  s.answer_arp = true;
  s.reply_to_frame_source = true;
  s.secret = env.secret;
  s.limits.max_connections = config.tcp.max_connections;
  s.limits.syn_backlog = config.tcp.syn_backlog;
  s.limits.mtu = static_cast<std::uint16_t>(std::min(env.mtu, 9000u));
  // Offload pays only when the kernel cuts: one trip through the stack below per 64 KB.
  if (env.offload_max > s.limits.mtu && s.limits.tx_ring_frames * s.limits.mtu >= 4 * 65535) {
    s.limits.offload_max = std::min<std::size_t>(env.offload_max, 65535);
  }
  s.tcp = config.tcp.tcp;
  s.tcp.isn_secret = env.secret;
  return s;
}

Standalone::Standalone(const stack::StackConfig& config)
    : stack_(std::make_unique<stack::Stack>(config)), node_(*stack_), transport_(*stack_) {}

Standalone::~Standalone() = default;

Result<std::unique_ptr<Standalone>> Standalone::create(const Config& config,
                                                       const StandaloneEnvironment& env) {
  std::unique_ptr<Standalone> s(new Standalone(stack_config(config, env)));
  if (config.echo.enabled) {
    s->echo_tcp_ = std::make_unique<apps::EchoTcp>(s->transport_);
    s->echo_udp_ = std::make_unique<apps::EchoUdp>(s->transport_);
    for (std::uint16_t port : config.echo.ports) {
      if (!s->stack_->tcp_listen(port, s->echo_tcp_.get()) ||
          !s->stack_->udp_bind(port, s->echo_udp_.get())) {
        return Error{fmt::format("echo: port {} is already in use", port)};
      }
    }
  }
  if (config.http.enabled) {
    s->files_ = apps::PosixFileSource::open_root(config.http.root);
    if (!s->files_) {
      return errno_error("http root " + config.http.root);
    }
    s->http_ = std::make_unique<apps::http::HttpServer>(s->transport_, *s->files_);
    if (!s->stack_->tcp_listen(config.http.port, s->http_.get())) {
      return Error{fmt::format("http: port {} is already in use", config.http.port)};
    }
  }
  return s;
}

CounterList Standalone::counters() const {
  CounterList out;
  stack_->counters().for_each([&](std::string_view name, std::uint64_t value) {
    out.push_back({std::string(name), value});
  });
  out.push_back({"checksums_completed", node_.checksums_completed()});
  out.push_back({"tcp_connections", stack_->tcp_connection_count()});
  if (echo_tcp_) {
    const auto& t = echo_tcp_->counters();
    const auto& u = echo_udp_->counters();
    out.push_back({"echo.connections", t.connections});
    out.push_back({"echo.bytes_echoed", t.bytes_echoed});
    out.push_back({"echo.drop.overflow_aborts", t.overflow_aborts});
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

}  // namespace phalanx::runtime
