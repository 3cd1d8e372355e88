#include "node/node_config.hpp"

namespace phalanx::node {

wire::MacAddr default_cluster_mac(wire::Ipv4Addr cluster_ip, filter::DistributionMode mode) {
  const std::uint32_t v = cluster_ip.value();
  const std::uint8_t first = mode == filter::DistributionMode::multicast ? 0x03 : 0x02;
  return wire::MacAddr({first, 0x50, static_cast<std::uint8_t>(v >> 24),
                        static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
                        static_cast<std::uint8_t>(v)});
}

}  // namespace phalanx::node
