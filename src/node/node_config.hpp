// What a member is told: the data-only part of a member's configuration that the node needs
// (its address, TCP limits, the applications, the cluster). The driver fills it: runtime parses
// it from TOML (runtime/config.hpp adds the Linux-only parts, docs/config.md is the reference),
// the simulator and the tests write it directly.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "filter/workset.hpp"
#include "filter/workset_table.hpp"
#include "tcp/config.hpp"
#include "wire/addr.hpp"

namespace phalanx::node {

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
  std::string root;  // directory served; required when enabled (the driver opens it)
};

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
  // SIGTERM/SIGINT drain the member (its worksets move away with their sessions) for at most
  // this long, then it leaves anyway.
  std::chrono::milliseconds drain_timeout{10'000};
  // Members that hold a copy of each workset's session state besides its owner (DESIGN §6): 1,
  // the default, lets TCP sessions of resumable applications (http) survive their member; 0
  // turns session replication off.
  unsigned replicas = 1;
};

// The cluster MAC a cluster IP a.b.c.d gets by default: 03:50:a:b:c:d in multicast mode (group
// bit and locally-administered bit set), 02:50:a:b:c:d otherwise (locally administered
// unicast). The same derivation as phalanx-lab's, so a capture shows the address in the MAC.
wire::MacAddr default_cluster_mac(wire::Ipv4Addr cluster_ip, filter::DistributionMode mode);

struct NodeConfig {
  MemberSection member;
  TcpSection tcp;
  EchoSection echo;
  HttpSection http;
  std::optional<ClusterSection> cluster;
};

}  // namespace phalanx::node
