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

#include "node/log.hpp"
#include "node/node_config.hpp"
#include "runtime/error.hpp"
#include "wire/addr.hpp"

namespace phalanx::runtime {

// The node's part (member, tcp, apps, cluster) is node::NodeConfig; these are the driver's.
using node::ClusterSection;
using node::default_cluster_mac;
using node::EchoSection;
using node::HttpSection;
using node::log_level_from_string;
using node::LogLevel;
using node::MemberSection;
using node::TcpSection;

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

// The status socket path used when [cluster] status_socket is not set.
std::string default_status_socket(const std::string& cluster_name, wire::Ipv4Addr member);

// The whole file: the node's sections (member, tcp, apps, cluster) and the driver's.
struct Config : node::NodeConfig {
  std::string source;  // the file it came from, for messages
  LinkSection link;
  LogLevel log_level = LogLevel::info;
};

// Parses TOML text; `source` names it in messages. On failure, the error lists every problem
// found, one per line, as "source:line:column: key: what is wrong".
Result<Config> parse_config(std::string_view text, std::string_view source);

// Reads and parses a file. Fails as parse_config does, or when the file cannot be read.
Result<Config> load_config(const std::string& path);

}  // namespace phalanx::runtime
