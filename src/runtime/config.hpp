// The configuration of one member, from TOML (docs/config.md is the reference; examples/ has a
// commented file). Loading validates everything it can without touching the network: types,
// ranges, addresses, that the HTTP root is a directory. Unknown keys are errors, so a typo never
// silently falls back to a default.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filter/workset.hpp"
#include "filter/workset_table.hpp"
#include "runtime/error.hpp"
#include "tcp/config.hpp"
#include "wire/addr.hpp"

namespace phalanx::runtime {

// [member]: this machine.
struct MemberSection {
  std::string interface;  // the LAN interface the data plane runs on
  // The served IP. Phalanx answers for it in user space; it must NOT be configured on the
  // interface, or the kernel would answer too (RSTs for our connections).
  wire::Ipv4Addr address;
  std::uint8_t prefix = 24;
  std::optional<wire::MacAddr> mac;  // unset: the interface's own MAC
  std::optional<wire::Ipv4Addr> gateway;
};

// [link]: the AF_PACKET rings.
struct LinkSection {
  // Small blocks: a block reaches us when full or after rx_block_timeout, and a stream of ACKs
  // fills a 128 KiB block only after the timeout, delaying every ACK (and the data it clocks
  // out) by up to a timer tick. 8 KiB holds ~50 ACKs or 5 full frames; same 8 MiB in all.
  std::size_t rx_block_size = std::size_t{1} << 13;
  std::size_t rx_blocks = 1024;
  std::chrono::milliseconds rx_block_timeout{1};
  std::size_t tx_frames = 512;
  bool qdisc_bypass = false;
  bool promiscuous = false;
  // Segmentation offload: TCP sends up to 64 KB per segment and the kernel (GSO) or the NIC
  // (TSO) cuts it into frames, which costs far less per byte. Off: every frame is cut here.
  bool offload = true;
};

// [tcp]: stack-wide TCP settings and limits.
struct TcpSection {
  tcp::Config tcp;  // isn_secret is drawn at start, never configured
  std::size_t max_connections = 16384;
  std::size_t syn_backlog = 128;
};

struct EchoSection {
  bool enabled = false;
  std::vector<std::uint16_t> ports{7};
};

struct HttpSection {
  bool enabled = false;
  std::uint16_t port = 80;
  std::string root;  // directory served; required when enabled
};

enum class LogLevel : std::uint8_t { trace, debug, info, warn, error, critical, off };
std::string_view to_string(LogLevel l);
std::optional<LogLevel> log_level_from_string(std::string_view s);

// [cluster]: absent for a stand-alone member. With it, member.address is the member's own
// address, owned by the kernel (configured on member.interface; the control channel runs on it),
// and phalanxd serves cluster.ip in user space.
struct ClusterSection {
  std::string name;
  wire::Ipv4Addr ip;  // the cluster IP; in member.address's subnet, never equal to it
  // The cluster MAC (multicast in multicast mode, unicast in unicast mode; unused in forwarding
  // mode). Default: derived from the cluster IP, see default_cluster_mac().
  wire::MacAddr mac;
  filter::DistributionMode mode = filter::DistributionMode::multicast;
  filter::HashKind hash = filter::HashKind::xor_fold;
  wire::Ipv4Addr control_group{239, 255, 80, 72};  // multicast group of the control channel
  std::uint16_t control_port = 8472;
  bool control_broadcast = false;  // group messages to the subnet broadcast instead
  std::string status_socket;       // default: /run/phalanx/<name>-<member.address>.sock
  std::chrono::milliseconds failure_interval{200};
  std::chrono::milliseconds join_timeout{30};
  std::chrono::milliseconds master_offer_wait{100};
  std::chrono::milliseconds rebalance_period{2000};
};

// The cluster MAC a cluster IP a.b.c.d gets by default: 03:50:a:b:c:d in multicast mode (group
// bit and locally-administered bit set), 02:50:a:b:c:d otherwise (locally administered
// unicast). The same derivation as phalanx-lab's, so a capture shows the address in the MAC.
wire::MacAddr default_cluster_mac(wire::Ipv4Addr cluster_ip, filter::DistributionMode mode);

// The status socket path used when [cluster] status_socket is not set.
std::string default_status_socket(const std::string& cluster_name, wire::Ipv4Addr member);

struct Config {
  std::string source;  // the file it came from, for messages
  MemberSection member;
  LinkSection link;
  TcpSection tcp;
  EchoSection echo;
  HttpSection http;
  LogLevel log_level = LogLevel::info;
  std::optional<ClusterSection> cluster;
};

// Parses TOML text; `source` names it in messages. On failure, the error lists every problem
// found, one per line, as "source:line:column: key: what is wrong".
Result<Config> parse_config(std::string_view text, std::string_view source);

// Reads and parses a file. Fails as parse_config does, or when the file cannot be read.
Result<Config> load_config(const std::string& path);

}  // namespace phalanx::runtime
