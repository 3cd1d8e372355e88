// The [cluster] parts of the config that cluster mode relies on: the derived cluster MAC, the
// default status socket, the control-channel switches.
#include <gtest/gtest.h>

#include "runtime/config.hpp"

namespace phalanx::runtime {
namespace {

constexpr const char* kMember = R"([member]
interface = "eth0"
address = "198.18.0.11"
prefix = 24
)";

Result<Config> parse_cluster(const std::string& cluster) {
  return parse_config(
      std::string(kMember) + "[cluster]\nname = \"lab\"\nip = \"198.18.0.1\"\n" + cluster,
      "m.toml");
}

TEST(ClusterConfig, MulticastMacDerivedFromTheClusterIp) {
  auto c = parse_cluster("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->cluster->mac, wire::MacAddr({0x03, 0x50, 198, 18, 0, 1}));
  EXPECT_TRUE(c->cluster->mac.is_multicast());
}

TEST(ClusterConfig, UnicastMacDerivedFromTheClusterIp) {
  auto c = parse_cluster("mode = \"unicast\"\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->cluster->mac, wire::MacAddr({0x02, 0x50, 198, 18, 0, 1}));
}

TEST(ClusterConfig, ExplicitMacWins) {
  auto c = parse_cluster("mac = \"01:00:5e:00:00:01\"\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->cluster->mac, wire::MacAddr({0x01, 0x00, 0x5e, 0, 0, 1}));
}

TEST(ClusterConfig, StatusSocketDefaultsToClusterAndMember) {
  auto c = parse_cluster("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->cluster->status_socket, "/run/phalanx/lab-198.18.0.11.sock");
  EXPECT_FALSE(c->cluster->control_broadcast);
}

TEST(ClusterConfig, StatusSocketAndBroadcastAreRead) {
  auto c = parse_cluster("status_socket = \"/tmp/x.sock\"\ncontrol_broadcast = true\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->cluster->status_socket, "/tmp/x.sock");
  EXPECT_TRUE(c->cluster->control_broadcast);
}

TEST(ClusterConfig, EmptyStatusSocketIsRefused) {
  auto c = parse_cluster("status_socket = \"\"\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("cluster.status_socket: must be 1 to 107 characters"),
            std::string::npos)
      << c.error().message;
}

}  // namespace
}  // namespace phalanx::runtime
