#include "runtime/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "runtime/toml_reader.hpp"

namespace phalanx::runtime {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::int64_t kMaxU16 = 65535;

std::uint32_t netmask(std::uint8_t prefix) {
  return prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
}

// An address a host may use as its own: not zero, broadcast, multicast, loopback or class E.
std::optional<std::string_view> host_address_problem(wire::Ipv4Addr a) {
  const std::uint32_t v = a.value();
  if ((v >> 24) == 0) {
    return "is in 0.0.0.0/8 (\"this network\")";
  }
  if ((v >> 24) == 127) {
    return "is a loopback address";
  }
  if (a.is_multicast()) {
    return "is a multicast address";
  }
  if ((v >> 28) == 0xf) {
    return "is a reserved (class E) or broadcast address";
  }
  return std::nullopt;
}

void check_host_address(TomlSection& s, std::string_view key, wire::Ipv4Addr a) {
  if (auto problem = host_address_problem(a)) {
    s.fail(key, fmt::format("{} {}", a.to_string(), *problem));
  }
}

void read_member(TomlSection s, MemberSection& m) {
  if (auto v = s.string("interface", true)) {
    if (v->empty() || v->size() > 15 || v->find_first_of("/ \t:") != std::string::npos) {
      s.fail("interface", fmt::format("\"{}\" is not an interface name", *v));
    } else {
      m.interface = *v;
    }
  }
  if (auto v = s.ipv4("address", true)) {
    check_host_address(s, "address", *v);
    m.address = *v;
  }
  if (auto v = s.integer("prefix", 1, 32, true)) {
    m.prefix = static_cast<std::uint8_t>(*v);
  }
  if (auto v = s.mac("mac")) {
    if (!v->is_unicast() || v->is_zero()) {
      s.fail("mac", fmt::format("{} is not a unicast MAC", v->to_string()));
    }
    m.mac = *v;
  }
  if (auto v = s.ipv4("gateway")) {
    const std::uint32_t mask = netmask(m.prefix);
    if (auto problem = host_address_problem(*v)) {
      s.fail("gateway", fmt::format("{} {}", v->to_string(), *problem));
    } else if (*v == m.address) {
      s.fail("gateway", "is the member's own address");
    } else if ((v->value() & mask) != (m.address.value() & mask)) {
      s.fail("gateway",
             fmt::format("{} is not in {}/{}", v->to_string(),
                         wire::Ipv4Addr(m.address.value() & mask).to_string(), m.prefix));
    }
    m.gateway = *v;
  }
  s.finish();
}

void read_link(TomlSection s, LinkSection& l) {
  if (auto v = s.integer("rx_block_size_kib", 4, 16384)) {
    if (*v % 4 != 0) {
      s.fail("rx_block_size_kib", "must be a multiple of 4 (the page size)");
    }
    l.rx_block_size = static_cast<std::size_t>(*v) * 1024;
  }
  if (auto v = s.integer("rx_blocks", 1, 4096)) {
    l.rx_blocks = static_cast<std::size_t>(*v);
  }
  if (auto v = s.integer("rx_block_timeout_ms", 1, 100)) {
    l.rx_block_timeout = milliseconds(*v);
  }
  if (auto v = s.integer("tx_frames", 1, 65536)) {
    l.tx_frames = static_cast<std::size_t>(*v);
  }
  if (auto v = s.boolean("qdisc_bypass")) {
    l.qdisc_bypass = *v;
  }
  if (auto v = s.boolean("promiscuous")) {
    l.promiscuous = *v;
  }
  if (auto v = s.boolean("offload")) {
    l.offload = *v;
  }
  s.finish();
}

template <class Rep, class Period>
void read_duration(TomlSection& s, std::string_view key, std::int64_t min, std::int64_t max,
                   std::chrono::nanoseconds& out, std::chrono::duration<Rep, Period> unit) {
  if (auto v = s.integer(key, min, max)) {
    out = *v * unit;
  }
}

void read_tcp(TomlSection s, TcpSection& t) {
  tcp::Config& c = t.tcp;
  if (auto v = s.integer("mss", 536, 9000)) {
    c.mss = static_cast<std::uint16_t>(*v);
  }
  if (auto v = s.integer("send_buffer_kib", 4, 65536)) {
    c.send_buffer_size = static_cast<std::size_t>(*v) * 1024;
  }
  if (auto v = s.integer("recv_buffer_kib", 4, 65536)) {
    c.recv_buffer_size = static_cast<std::size_t>(*v) * 1024;
  }
  for (auto [key, field] : {std::pair{"window_scaling", &c.window_scaling},
                            {"timestamps", &c.timestamps},
                            {"sack", &c.sack},
                            {"no_options", &c.no_options},
                            {"nodelay", &c.nodelay},
                            {"keepalive", &c.keepalive}}) {
    if (auto v = s.boolean(key)) {
      *field = *v;
    }
  }
  read_duration(s, "delayed_ack_ms", 1, 499, c.delayed_ack, milliseconds(1));
  read_duration(s, "rto_min_ms", 1, 60'000, c.rto_min, milliseconds(1));
  read_duration(s, "rto_initial_ms", 1, 60'000, c.rto_initial, milliseconds(1));
  read_duration(s, "rto_max_ms", 1, 3'600'000, c.rto_max, milliseconds(1));
  if (c.rto_min > c.rto_initial || c.rto_initial > c.rto_max) {
    s.fail("rto_initial_ms", "must satisfy rto_min_ms <= rto_initial_ms <= rto_max_ms");
  }
  if (auto v = s.integer("syn_retries", 1, 20)) {
    c.syn_retries = static_cast<std::uint32_t>(*v);
  }
  if (auto v = s.integer("data_retries", 1, 30)) {
    c.data_retries = static_cast<std::uint32_t>(*v);
  }
  read_duration(s, "keepalive_idle_s", 1, 86'400, c.keepalive_idle, seconds(1));
  read_duration(s, "keepalive_interval_s", 1, 3'600, c.keepalive_interval, seconds(1));
  if (auto v = s.integer("keepalive_count", 1, 100)) {
    c.keepalive_count = static_cast<std::uint32_t>(*v);
  }
  read_duration(s, "time_wait_ms", 0, 240'000, c.time_wait, milliseconds(1));
  if (auto v = s.string("congestion")) {
    if (*v == "newreno") {
      c.congestion = tcp::CongestionAlgorithm::new_reno;
    } else if (*v == "cubic") {
      c.congestion = tcp::CongestionAlgorithm::cubic;
    } else {
      s.fail("congestion", fmt::format("\"{}\" is not one of \"newreno\", \"cubic\"", *v));
    }
  }
  if (auto v = s.integer("initial_cwnd_segments", 1, 100)) {
    c.initial_cwnd_segments = static_cast<std::uint32_t>(*v);
  }
  if (auto v = s.integer("max_connections", 1, 1 << 22)) {
    t.max_connections = static_cast<std::size_t>(*v);
  }
  if (auto v = s.integer("syn_backlog", 1, kMaxU16)) {
    t.syn_backlog = static_cast<std::size_t>(*v);
  }
  s.finish();
}

void read_echo(TomlSection s, EchoSection& e) {
  if (auto v = s.boolean("enabled")) {
    e.enabled = *v;
  }
  if (auto v = s.integers("ports", 1, kMaxU16)) {
    std::set<std::int64_t> seen;
    e.ports.clear();
    for (auto p : *v) {
      if (!seen.insert(p).second) {
        s.fail("ports", fmt::format("port {} is listed twice", p));
      }
      e.ports.push_back(static_cast<std::uint16_t>(p));
    }
    if (e.ports.empty()) {
      s.fail("ports", "is empty");
    }
  }
  s.finish();
}

void read_http(TomlSection s, HttpSection& h, const std::filesystem::path& base) {
  if (auto v = s.boolean("enabled")) {
    h.enabled = *v;
  }
  if (auto v = s.integer("port", 1, kMaxU16)) {
    h.port = static_cast<std::uint16_t>(*v);
  }
  if (auto v = s.string("root", h.enabled)) {
    // Relative to the config file, so a config and its site can move together.
    std::filesystem::path root = base / *v;
    std::error_code ec;
    if (h.enabled && !std::filesystem::is_directory(root, ec)) {
      s.fail("root", fmt::format("{} is not a directory", root.string()));
    }
    h.root = root.lexically_normal().string();
  }
  s.finish();
}

void read_apps(TomlSection s, Config& c, const std::filesystem::path& base) {
  read_echo(s.table("echo"), c.echo);
  read_http(s.table("http"), c.http, base);
  if (c.echo.enabled && c.http.enabled &&
      std::find(c.echo.ports.begin(), c.echo.ports.end(), c.http.port) != c.echo.ports.end()) {
    s.table("http").fail("port", fmt::format("port {} is also an echo port", c.http.port));
  }
  s.finish();
}

void read_log(TomlSection s, Config& c) {
  if (auto v = s.string("level")) {
    if (auto level = log_level_from_string(*v)) {
      c.log_level = *level;
    } else {
      s.fail("level", fmt::format("\"{}\" is not one of trace, debug, info, warn, error, "
                                  "critical, off",
                                  *v));
    }
  }
  s.finish();
}

void read_cluster(TomlSection s, const MemberSection& member, ClusterSection& c) {
  if (auto v = s.string("name", true)) {
    if (v->empty() || v->size() > 64) {
      s.fail("name", "must be 1 to 64 characters");
    }
    c.name = *v;
  }
  if (auto v = s.ipv4("ip", true)) {
    check_host_address(s, "ip", *v);
    const std::uint32_t mask = netmask(member.prefix);
    if (*v == member.address) {
      s.fail("ip", "is member.address; the member's own address must differ");
    } else if ((v->value() & mask) != (member.address.value() & mask)) {
      s.fail("ip", fmt::format("{} is not in member.address's subnet", v->to_string()));
    }
    c.ip = *v;
  }
  bool mode_ok = true;
  if (auto v = s.string("mode")) {
    mode_ok = false;
    if (*v == "forwarding") {
      c.mode = filter::DistributionMode::forwarding;
    } else if (*v == "unicast") {
      c.mode = filter::DistributionMode::unicast;
    } else if (*v == "multicast") {
      c.mode = filter::DistributionMode::multicast;
    } else {
      s.fail("mode", fmt::format("\"{}\" is not one of forwarding, unicast, multicast", *v));
    }
    mode_ok = *v == "forwarding" || *v == "unicast" || *v == "multicast";
  }
  if (auto v = s.mac("mac")) {
    if (v->is_zero() || v->is_broadcast()) {
      s.fail("mac", fmt::format("{} cannot be a cluster MAC", v->to_string()));
    } else if (!mode_ok) {
      // the mode is wrong; whether the MAC fits it is moot
    } else if (c.mode == filter::DistributionMode::multicast && !v->is_multicast()) {
      s.fail("mac",
             fmt::format("{} is not a multicast MAC (mode = \"multicast\")", v->to_string()));
    } else if (c.mode == filter::DistributionMode::unicast && !v->is_unicast()) {
      s.fail("mac", fmt::format("{} is not a unicast MAC (mode = \"unicast\")", v->to_string()));
    }
    c.mac = *v;
  } else {
    c.mac = default_cluster_mac(c.ip, c.mode);
  }
  if (auto v = s.string("hash")) {
    if (auto kind = filter::hash_kind_from_string(*v)) {
      c.hash = *kind;
    } else {
      s.fail("hash", fmt::format("\"{}\" is not one of xor, mix", *v));
    }
  }
  if (auto v = s.ipv4("control_group")) {
    if (!v->is_multicast()) {
      s.fail("control_group", fmt::format("{} is not a multicast address", v->to_string()));
    }
    c.control_group = *v;
  }
  if (auto v = s.integer("control_port", 1, kMaxU16)) {
    c.control_port = static_cast<std::uint16_t>(*v);
  }
  if (auto v = s.boolean("control_broadcast")) {
    c.control_broadcast = *v;
  }
  if (auto v = s.integer("replicas", 0, 1)) {
    c.replicas = static_cast<unsigned>(*v);
  }
  if (auto v = s.string("status_socket")) {
    if (v->empty() || v->size() >= 108) {  // sockaddr_un::sun_path
      s.fail("status_socket", "must be 1 to 107 characters");
    }
    c.status_socket = *v;
  } else {
    c.status_socket = default_status_socket(c.name, member.address);
  }
  TomlSection t = s.table("timings");
  for (auto [key, field, min, max] :
       {std::tuple{"failure_interval_ms", &c.failure_interval, 10, 60'000},
        {"join_timeout_ms", &c.join_timeout, 1, 10'000},
        {"master_offer_wait_ms", &c.master_offer_wait, 1, 10'000},
        {"rebalance_period_ms", &c.rebalance_period, 100, 600'000},
        {"drain_timeout_ms", &c.drain_timeout, 0, 600'000}}) {
    if (auto v = t.integer(key, min, max)) {
      *field = milliseconds(*v);
    }
  }
  t.finish();
  s.finish();
}

}  // namespace

std::string default_status_socket(const std::string& cluster_name, wire::Ipv4Addr member) {
  return fmt::format("/run/phalanx/{}-{}.sock", cluster_name, member.to_string());
}

Result<Config> parse_config(std::string_view text, std::string_view source) {
  ErrorList errors{std::string(source)};
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    errors.add(e.source(), "syntax", e.description());
    return Error{errors.joined()};
  }
  Config config;
  config.source = std::string(source);
  const std::filesystem::path base = std::filesystem::path(source).parent_path();

  TomlSection top(errors, &root, "");
  TomlSection member = top.table("member");
  if (!member.present()) {
    errors.add("[member]", "missing (required)");
  } else {
    read_member(member, config.member);
  }
  read_link(top.table("link"), config.link);
  read_tcp(top.table("tcp"), config.tcp);
  read_apps(top.table("apps"), config, base);
  read_log(top.table("log"), config);
  if (TomlSection cluster = top.table("cluster"); cluster.present()) {
    config.cluster.emplace();
    read_cluster(cluster, config.member, *config.cluster);
  }
  top.finish();
  if (!errors.empty()) {
    return Error{errors.joined()};
  }
  return config;
}

Result<Config> load_config(const std::string& path) {
  // An ifstream opens a directory and reads it as an empty file; say what is wrong instead.
  if (std::error_code ec; std::filesystem::is_directory(path, ec)) {
    return errno_error(path, EISDIR);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return errno_error(path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return errno_error(path);
  }
  return parse_config(text.str(), path);
}

}  // namespace phalanx::runtime
