#include "node/standalone.hpp"

#include <algorithm>

namespace phalanx::node {

stack::StackConfig stack_config(const NodeConfig& config, const StandaloneEnvironment& env) {
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
    : stack_(std::make_unique<stack::Stack>(config)), node_(*stack_) {}

Standalone::~Standalone() = default;

Result<std::unique_ptr<Standalone>> Standalone::create(const NodeConfig& config,
                                                       const StandaloneEnvironment& env,
                                                       std::unique_ptr<apps::FileSource> files) {
  std::unique_ptr<Standalone> s(new Standalone(stack_config(config, env)));
  auto apps = Apps::create(*s->stack_, config, std::move(files));
  if (!apps) {
    return apps.error();
  }
  s->apps_ = std::move(*apps);
  return s;
}

CounterList Standalone::counters() const {
  CounterList out;
  stack_->counters().for_each([&](std::string_view name, std::uint64_t value) {
    out.push_back({std::string(name), value});
  });
  out.push_back({"checksums_completed", node_.checksums_completed()});
  out.push_back({"tcp_connections", stack_->tcp_connection_count()});
  for (NamedCount& c : apps_->counters()) {
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace phalanx::node
