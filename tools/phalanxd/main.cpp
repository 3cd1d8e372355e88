// phalanxd: one member. `phalanxd --config FILE` serves the config's address on its interface
// until SIGTERM or SIGINT (exit 0); SIGHUP logs the counters. `--check` validates the config and
// exits (0 valid, 2 invalid). Exit 1: the environment failed (interface, permissions).
//
// With a [cluster] section the member joins the cluster and serves the cluster IP
// (serve_cluster): the member address must be configured on the interface (the kernel owns it;
// the control channel runs on it), the cluster IP must not be. SIGTERM/SIGINT drain the member
// (its worksets move to others with their sessions, for at most [cluster.timings]
// drain_timeout_ms), then it leaves the cluster cleanly (ExitCluster) and exits; a second signal
// leaves at once.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <sys/epoll.h>

#include <csignal>
#include <cstdio>

#include "runtime/clock.hpp"
#include "runtime/config.hpp"
#include "runtime/control_channel.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/host.hpp"
#include "runtime/logging.hpp"
#include "runtime/node_driver.hpp"
#include "runtime/node_factory.hpp"
#include "runtime/packet_link.hpp"
#include "runtime/random.hpp"
#include "runtime/status_report.hpp"
#include "runtime/status_server.hpp"

namespace {

using namespace phalanx;
using namespace phalanx::runtime;

constexpr int kExitEnvironment = 1;
constexpr int kExitBadConfig = 2;

std::string describe(const Config& c) {
  std::string apps;
  if (c.echo.enabled) {
    apps += " echo(";
    for (std::size_t i = 0; i < c.echo.ports.size(); ++i) {
      apps += fmt::format("{}{}", i == 0 ? "" : ",", c.echo.ports[i]);
    }
    apps += ")";
  }
  if (c.http.enabled) {
    apps += fmt::format(" http({} {})", c.http.port, c.http.root);
  }
  std::string cluster;
  if (c.cluster) {
    cluster =
        fmt::format(", cluster {} ip {} mac {} mode {}", c.cluster->name, c.cluster->ip.to_string(),
                    c.cluster->mac.to_string(), filter::to_string(c.cluster->mode));
  }
  return fmt::format("interface {}, address {}/{}{}, apps:{}", c.member.interface,
                     c.member.address.to_string(), c.member.prefix, cluster,
                     apps.empty() ? " none" : apps);
}

void dump(std::string_view why, PacketLink& link, const NodeDriver& driver,
          const Standalone& member) {
  log_counters(fmt::format("{} link", why), named_counters(link.counters()));
  log_counters(fmt::format("{} loop", why), named_counters(driver.counters()));
  log_counters(fmt::format("{} stack", why), member.counters());
}

// [link] offload asked for and refused: the member works, at a higher cost per byte.
void warn_offload(const Config& config, const PacketLink& link) {
  if (config.link.offload && link.offload_max() == 0) {
    spdlog::warn("{}: segmentation offload unavailable ({}); cutting TCP segments in user space",
                 link.interface(), link.offload_error());
  }
}

PacketLinkOptions link_options(const Config& config) {
  PacketLinkOptions options;
  options.interface = config.member.interface;
  options.rx_block_size = config.link.rx_block_size;
  options.rx_block_count = config.link.rx_blocks;
  options.rx_block_timeout = config.link.rx_block_timeout;
  options.tx_frame_count = config.link.tx_frames;
  options.qdisc_bypass = config.link.qdisc_bypass;
  options.promiscuous = config.link.promiscuous;
  options.offload = config.link.offload;
  return options;
}

void dump_cluster(std::string_view why, PacketLink& link, const NodeDriver& driver,
                  const ControlChannel& control, const ClusterNode& node) {
  log_counters(fmt::format("{} link", why), named_counters(link.counters()));
  log_counters(fmt::format("{} loop", why), named_counters(driver.counters()));
  const ControlChannelCounters& c = control.counters();
  log_counters(fmt::format("{} control", why), {{"rx_datagrams", c.rx_datagrams},
                                                {"rx_own", c.rx_own},
                                                {"rx_truncated", c.rx_truncated},
                                                {"rx_errors", c.rx_errors},
                                                {"tx_datagrams", c.tx_datagrams},
                                                {"tx_errors", c.tx_errors}});
  log_counters(fmt::format("{} cluster", why), node.counter_list());
  CounterList stack;
  node.stack().counters().for_each([&](std::string_view name, std::uint64_t value) {
    stack.push_back({std::string(name), value});
  });
  log_counters(fmt::format("{} stack", why), stack);
}

// Cluster mode: the member address is the kernel's, the cluster IP is ours.
int serve_cluster(const Config& config) {
  const ClusterSection& cluster = *config.cluster;
  MonotonicClock clock;
  auto loop = EventLoop::create(clock);
  if (!loop) {
    spdlog::critical("{}", loop.error().message);
    return kExitEnvironment;
  }
  auto served = interface_with_address(cluster.ip);
  if (!served) {
    spdlog::critical("{}", served.error().message);
    return kExitEnvironment;
  }
  if (*served) {
    spdlog::critical(
        "cluster IP {} is configured on interface {}: the kernel would answer for it too "
        "(RST, ICMP). Remove it (ip addr del) and start again.",
        cluster.ip.to_string(), **served);
    return kExitEnvironment;
  }
  auto own = interface_with_address(config.member.address);
  if (!own) {
    spdlog::critical("{}", own.error().message);
    return kExitEnvironment;
  }
  if (!*own || **own != config.member.interface) {
    spdlog::critical(
        "member address {} is not configured on {}: in cluster mode the kernel owns it (the "
        "control channel runs on it). Add it (ip addr add {}/{} dev {}) and start again.",
        config.member.address.to_string(), config.member.interface,
        config.member.address.to_string(), config.member.prefix, config.member.interface);
    return kExitEnvironment;
  }

  PacketLinkOptions options = link_options(config);
  // Unicast mode: frames to the shared unicast cluster MAC pass the NIC only promiscuously. So
  // do frames to a member.mac that is not the interface's.
  if (cluster.mode == filter::DistributionMode::unicast || config.member.mac) {
    options.promiscuous = true;
  }
  auto link = PacketLink::open(options);
  if (!link) {
    spdlog::critical("{}", link.error().message);
    return kExitEnvironment;
  }
  if (config.member.mac && *config.member.mac != (*link)->mac()) {
    spdlog::info("member.mac {} is not {}'s MAC {}: receiving promiscuously",
                 config.member.mac->to_string(), config.member.interface,
                 (*link)->mac().to_string());
  }
  if (cluster.mode == filter::DistributionMode::multicast) {
    if (auto s = (*link)->add_membership(cluster.mac); !s) {
      spdlog::critical("cluster MAC {}: {}", cluster.mac.to_string(), s.error().message);
      return kExitEnvironment;
    }
  }

  ControlChannelOptions copts;
  copts.interface = config.member.interface;
  copts.address = config.member.address;
  copts.prefix = config.member.prefix;
  copts.group = cluster.control_group;
  copts.port = cluster.control_port;
  copts.broadcast = cluster.control_broadcast;
  auto control = ControlChannel::open(copts);
  if (!control) {
    spdlog::critical("{}", control.error().message);
    return kExitEnvironment;
  }

  ClusterEnvironment env;
  env.interface_mac = (*link)->mac();
  env.mtu = (*link)->mtu();
  env.offload_max = (*link)->offload_max();
  warn_offload(config, **link);
  if (auto s = fill_random(std::as_writable_bytes(std::span(env.secret.key))); !s) {
    spdlog::critical("ISN secret: {}", s.error().message);
    return kExitEnvironment;
  }
  auto incarnation = random_u64();
  if (!incarnation) {
    spdlog::critical("incarnation: {}", incarnation.error().message);
    return kExitEnvironment;
  }
  env.incarnation = *incarnation;
  ControlChannel& channel = **control;
  auto node = make_cluster_node(
      config, env,
      [&channel](std::optional<wire::Ipv4Addr> to, wire::Bytes bytes) { channel.send(to, bytes); });
  if (!node) {
    spdlog::critical("{}", node.error().message);
    return kExitEnvironment;
  }
  ClusterNode& member = **node;

  NodeDriver driver(**loop, **link, member);
  // The control socket is served first in every wakeup, then the packet ring, then the timer
  // (event_loop.hpp): after a pause the member hears what its peers said before its watchdogs
  // judge their silence. Each datagram is handed over at the time the kernel received it, so
  // a queue that built up while we were stopped replays as it happened (cluster::Member runs
  // its timers before each datagram).
  constexpr int kControlFirst = -1;
  if (auto s = (*loop)->watch(
          channel.fd(), EPOLLIN,
          [&](std::uint32_t) {
            const Time now = clock.now();
            const auto realtime_origin = std::chrono::system_clock::now() - now;
            channel.receive([&](wire::Ipv4Addr, wire::Bytes datagram) {
              Time at = now;
              if (auto arrival = channel.arrival()) {
                at = std::min(now, std::chrono::duration_cast<Time>(*arrival - realtime_origin));
              }
              member.on_control(at, datagram);
            });
            driver.pump();
          },
          kControlFirst);
      !s) {
    spdlog::critical("control channel: {}", s.error().message);
    return kExitEnvironment;
  }
  auto status = StatusServer::open(**loop, cluster.status_socket, [&] {
    nlohmann::json j = cluster_status(member, clock.now());
    add_counters(j, "link", named_counters((*link)->counters()));
    add_counters(j, "loop", named_counters(driver.counters()));
    return j.dump();
  });
  if (!status) {
    spdlog::critical("{}", status.error().message);
    return kExitEnvironment;
  }
  (*loop)->set_signal_handler([&](int signo) {
    if (signo == SIGHUP) {
      dump_cluster("SIGHUP", **link, driver, channel, member);
      return;
    }
    const char* name = signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (member.member().draining()) {
      spdlog::info("{} again: leaving the cluster now", name);
      member.leave(clock.now());
      driver.pump();
      (*loop)->stop();
      return;
    }
    spdlog::info(
        "{}: draining (worksets move away with their sessions; up to {} ms; send it "
        "again to leave at once)",
        name, cluster.drain_timeout.count());
    member.start_drain(clock.now(), cluster.drain_timeout);
    driver.pump();
  });
  driver.set_after_pump([&] {
    if (member.drain_finished()) {
      spdlog::info("{}", member.member().drained() ? "drained: left the cluster"
                                                   : "drain timed out: left the cluster");
      (*loop)->stop();
    }
  });
  // A wakeup this late past its deadline is a stall (SIGSTOP, a starved VM): reported to the
  // member, the backlog read before any timer.
  const Time stall_threshold =
      std::min<Time>(std::chrono::milliseconds(50), cluster.failure_interval / 4);
  (*loop)->set_stall_handler(stall_threshold,
                             [&](Time now, Time late) { member.on_stall(now, late); });
  member.start(clock.now());
  if (auto s = driver.start(); !s) {
    spdlog::critical("{}", s.error().message);
    return kExitEnvironment;
  }
  spdlog::info("member of {}: {} (MAC {}, MTU {}, offload {}), status on {}", cluster.name,
               describe(config), member.mac().to_string(), (*link)->mtu(),
               (*link)->offload_max() > 0 ? "on" : "off", cluster.status_socket);
  if (auto s = (*loop)->run(); !s) {
    spdlog::critical("{}", s.error().message);
    return kExitEnvironment;
  }
  dump_cluster("exit", **link, driver, channel, member);
  return 0;
}

int serve(const Config& config) {
  setup_logging(config.log_level);
  if (config.cluster) {
    return serve_cluster(config);
  }
  // The loop first: it blocks SIGTERM/SIGINT/SIGHUP, and must do so before anything else could
  // start a thread.
  MonotonicClock clock;
  auto loop = EventLoop::create(clock);
  if (!loop) {
    spdlog::critical("{}", loop.error().message);
    return kExitEnvironment;
  }

  auto local = interface_with_address(config.member.address);
  if (!local) {
    spdlog::critical("{}", local.error().message);
    return kExitEnvironment;
  }
  if (*local) {
    spdlog::critical(
        "{} is configured on interface {}: the kernel would answer for it too "
        "(RST, ICMP). Remove it (ip addr del) and start again.",
        config.member.address.to_string(), **local);
    return kExitEnvironment;
  }

  PacketLinkOptions options = link_options(config);
  auto link = PacketLink::open(options);
  if (!link) {
    spdlog::critical("{}", link.error().message);
    return kExitEnvironment;
  }
  if (config.member.mac && *config.member.mac != (*link)->mac() && !options.promiscuous) {
    // Frames to a MAC that is not the interface's pass the NIC's filter only in promiscuous
    // mode. Reopen so; the membership goes away with the socket.
    spdlog::info("member.mac {} is not {}'s MAC {}: receiving promiscuously",
                 config.member.mac->to_string(), config.member.interface,
                 (*link)->mac().to_string());
    options.promiscuous = true;
    link = PacketLink::open(options);
    if (!link) {
      spdlog::critical("{}", link.error().message);
      return kExitEnvironment;
    }
  }

  StandaloneEnvironment env;
  env.interface_mac = (*link)->mac();
  env.mtu = (*link)->mtu();
  env.offload_max = (*link)->offload_max();
  warn_offload(config, **link);
  if (auto s = fill_random(std::as_writable_bytes(std::span(env.secret.key))); !s) {
    spdlog::critical("ISN secret: {}", s.error().message);
    return kExitEnvironment;
  }
  auto member = make_standalone(config, env);
  if (!member) {
    spdlog::critical("{}", member.error().message);
    return kExitEnvironment;
  }

  NodeDriver driver(**loop, **link, (*member)->node());
  (*loop)->set_signal_handler([&](int signo) {
    if (signo == SIGHUP) {
      dump("SIGHUP", **link, driver, **member);
      return;
    }
    spdlog::info("{}: stopping", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    (*loop)->stop();
  });
  if (auto s = driver.start(); !s) {
    spdlog::critical("{}", s.error().message);
    return kExitEnvironment;
  }
  spdlog::info("serving {} (MAC {}, MTU {}, offload {})", describe(config),
               config.member.mac.value_or((*link)->mac()).to_string(), (*link)->mtu(),
               (*link)->offload_max() > 0 ? "on" : "off");
  if (auto s = (*loop)->run(); !s) {
    spdlog::critical("{}", s.error().message);
    return kExitEnvironment;
  }
  dump("exit", **link, driver, **member);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"phalanxd: one member of a Phalanx cluster, or a stand-alone member"};
  std::string config_path;
  bool check = false;
  app.add_option("-c,--config", config_path, "the member's TOML configuration")->required();
  app.add_flag("--check", check, "validate the configuration and exit");
  CLI11_PARSE(app, argc, argv);

  auto config = load_config(config_path);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return kExitBadConfig;
  }
  if (check) {
    std::printf("%s: ok: %s\n", config_path.c_str(), describe(*config).c_str());
    return 0;
  }
  return serve(*config);
}
