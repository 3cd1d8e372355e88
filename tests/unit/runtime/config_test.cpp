// Config loading: a good file round-trips into the structs; each broken file is rejected with a
// message naming the file, the line and the key.
#include "runtime/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace phalanx::runtime {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kMinimal = R"(
[member]
interface = "phrt0"
address = "198.18.0.10"
prefix = 24
)";

TEST(ConfigTest, MinimalFileTakesDefaults) {
  auto c = parse_config(kMinimal, "member.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->member.interface, "phrt0");
  EXPECT_EQ(c->member.address, wire::Ipv4Addr(198, 18, 0, 10));
  EXPECT_EQ(c->member.prefix, 24);
  EXPECT_FALSE(c->member.mac.has_value());
  EXPECT_FALSE(c->member.gateway.has_value());
  EXPECT_EQ(c->tcp.tcp.mss, 1460);
  EXPECT_FALSE(c->echo.enabled);
  EXPECT_FALSE(c->http.enabled);
  EXPECT_EQ(c->log_level, LogLevel::info);
  EXPECT_FALSE(c->cluster.has_value());
}

TEST(ConfigTest, FullFile) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string text = R"(
[member]
interface = "phrt0"
address = "198.18.0.10"
prefix = 16
mac = "02:00:5e:00:00:0a"
gateway = "198.18.0.1"

[link]
rx_block_size_kib = 256
rx_blocks = 16
rx_block_timeout_ms = 2
tx_frames = 1024
qdisc_bypass = true
promiscuous = true

[tcp]
mss = 1400
send_buffer_kib = 64
recv_buffer_kib = 128
window_scaling = false
timestamps = false
sack = false
nodelay = true
delayed_ack_ms = 20
rto_min_ms = 100
rto_initial_ms = 500
rto_max_ms = 10000
time_wait_ms = 1000
congestion = "cubic"
max_connections = 100
syn_backlog = 16

[apps.echo]
enabled = true
ports = [7, 7007]

[apps.http]
enabled = true
port = 8080
root = ")" + dir.string() + R"("

[log]
level = "debug"

[cluster]
name = "lab"
ip = "198.18.0.100"
mac = "01:00:5e:7f:00:64"
mode = "multicast"
hash = "mix"
control_group = "239.1.2.3"
control_port = 9000

[cluster.timings]
failure_interval_ms = 300
)";
  auto c = parse_config(text, "member.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->member.mac, wire::MacAddr({0x02, 0x00, 0x5e, 0x00, 0x00, 0x0a}));
  EXPECT_EQ(c->member.gateway, wire::Ipv4Addr(198, 18, 0, 1));
  EXPECT_EQ(c->link.rx_block_size, 256u * 1024);
  EXPECT_EQ(c->link.rx_block_timeout, milliseconds(2));
  EXPECT_TRUE(c->link.qdisc_bypass);
  EXPECT_EQ(c->tcp.tcp.mss, 1400);
  EXPECT_EQ(c->tcp.tcp.recv_buffer_size, 128u * 1024);
  EXPECT_FALSE(c->tcp.tcp.sack);
  EXPECT_TRUE(c->tcp.tcp.nodelay);
  EXPECT_EQ(c->tcp.tcp.rto_initial, milliseconds(500));
  EXPECT_EQ(c->tcp.tcp.congestion, tcp::CongestionAlgorithm::cubic);
  EXPECT_EQ(c->tcp.max_connections, 100u);
  EXPECT_TRUE(c->echo.enabled);
  EXPECT_EQ(c->echo.ports, (std::vector<std::uint16_t>{7, 7007}));
  EXPECT_EQ(c->http.port, 8080);
  EXPECT_EQ(c->log_level, LogLevel::debug);
  ASSERT_TRUE(c->cluster.has_value());
  EXPECT_EQ(c->cluster->name, "lab");
  EXPECT_EQ(c->cluster->hash, filter::HashKind::mix);
  EXPECT_EQ(c->cluster->control_port, 9000);
  EXPECT_EQ(c->cluster->failure_interval, milliseconds(300));
}

TEST(ConfigTest, HttpRootIsRelativeToTheConfigFile) {
  const auto dir = std::filesystem::temp_directory_path() / "phrt_config_test";
  std::filesystem::create_directories(dir / "site");
  const std::string text = std::string(kMinimal) + "[apps.http]\nenabled = true\nroot = \"site\"\n";
  auto c = parse_config(text, (dir / "member.toml").string());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->http.root, (dir / "site").string());
}

TEST(ConfigTest, MissingFile) {
  auto c = load_config("/nonexistent/phalanx.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "/nonexistent/phalanx.toml: No such file or directory");
}

TEST(ConfigTest, DirectoryIsNotAConfigFile) {
  const auto dir = std::filesystem::temp_directory_path() / "phrt_config_dir_test";
  std::filesystem::create_directories(dir);
  auto c = load_config(dir.string());
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, dir.string() + ": Is a directory");
}

// Each case: a file that must be rejected, and the exact message.
struct BrokenCase {
  const char* description;
  std::string text;
  std::string message;
};

std::string with_member(std::string_view rest) {
  return std::string(kMinimal) + std::string(rest);
}

class BrokenConfigTest : public testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenConfigTest, IsRejectedWithItsLineAndKey) {
  auto c = parse_config(GetParam().text, "m.toml");
  ASSERT_FALSE(c.ok()) << GetParam().description;
  EXPECT_EQ(c.error().message, GetParam().message) << GetParam().description;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BrokenConfigTest,
    testing::Values(
        BrokenCase{"TOML syntax", "[member\n",
                   "m.toml:1:8: syntax: Error while parsing table "
                   "header: expected ']', saw '\\n'"},
        BrokenCase{"no [member]", "[log]\nlevel = \"info\"\n",
                   "m.toml: [member]: missing (required)"},
        BrokenCase{"missing address", "[member]\ninterface = \"eth0\"\nprefix = 24\n",
                   "m.toml:1:1: member.address: missing (required)"},
        BrokenCase{"bad address",
                   "[member]\ninterface = \"eth0\"\naddress = \"198.18.0.300\"\n"
                   "prefix = 24\n",
                   "m.toml:3:11: member.address: \"198.18.0.300\" is not an IPv4 address "
                   "(a.b.c.d)"},
        BrokenCase{"loopback address",
                   "[member]\ninterface = \"eth0\"\naddress = \"127.0.0.1\"\n"
                   "prefix = 24\n",
                   "m.toml:3:11: member.address: 127.0.0.1 is a loopback address"},
        BrokenCase{"multicast address",
                   "[member]\ninterface = \"eth0\"\naddress = \"224.0.0.1\"\nprefix = 24\n",
                   "m.toml:3:11: member.address: 224.0.0.1 is a multicast address"},
        BrokenCase{"address of the wrong type",
                   "[member]\ninterface = \"eth0\"\naddress = 42\nprefix = 24\n",
                   "m.toml:3:11: member.address: expected a string, got an integer"},
        BrokenCase{"prefix out of range",
                   "[member]\ninterface = \"eth0\"\naddress = \"198.18.0.1\"\nprefix = 33\n",
                   "m.toml:4:10: member.prefix: 33 is out of range [1, 32]"},
        BrokenCase{"bad interface name",
                   "[member]\ninterface = \"a/b\"\naddress = \"198.18.0.1\"\nprefix = 24\n",
                   "m.toml:2:13: member.interface: \"a/b\" is not an interface name"},
        BrokenCase{"multicast member MAC", with_member("mac = \"01:00:5e:00:00:01\"\n"),
                   "m.toml:6:7: member.mac: 01:00:5e:00:00:01 is not a unicast MAC"},
        BrokenCase{"malformed MAC", with_member("mac = \"02:00:5e:00:00\"\n"),
                   "m.toml:6:7: member.mac: \"02:00:5e:00:00\" is not a MAC address "
                   "(aa:bb:cc:dd:ee:ff)"},
        BrokenCase{"gateway off the subnet", with_member("gateway = \"198.19.0.1\"\n"),
                   "m.toml:6:11: member.gateway: 198.19.0.1 is not in 198.18.0.0/24"},
        BrokenCase{"gateway is the address", with_member("gateway = \"198.18.0.10\"\n"),
                   "m.toml:6:11: member.gateway: is the member's own address"},
        BrokenCase{"unknown key in a section", with_member("adress = \"198.18.0.1\"\n"),
                   "m.toml:6:1: member.adress: unknown key"},
        BrokenCase{"unknown section", with_member("[metrics]\nport = 9100\n"),
                   "m.toml:6:2: metrics: unknown key"},
        BrokenCase{"unknown app", with_member("[apps.ftp]\nenabled = true\n"),
                   "m.toml:6:7: apps.ftp: unknown key"},
        BrokenCase{"boolean of the wrong type", with_member("[apps.echo]\nenabled = \"yes\"\n"),
                   "m.toml:7:11: apps.echo.enabled: expected a boolean, got a string"},
        BrokenCase{"port out of range", with_member("[apps.echo]\nports = [7, 70000]\n"),
                   "m.toml:7:13: apps.echo.ports: 70000 is out of range [1, 65535]"},
        BrokenCase{"duplicate port", with_member("[apps.echo]\nports = [7, 7]\n"),
                   "m.toml:7:9: apps.echo.ports: port 7 is listed twice"},
        BrokenCase{"ports not an array", with_member("[apps.echo]\nports = 7\n"),
                   "m.toml:7:9: apps.echo.ports: expected an array of integers, got an integer"},
        BrokenCase{"http without root", with_member("[apps.http]\nenabled = true\n"),
                   "m.toml:6:1: apps.http.root: missing (required)"},
        BrokenCase{"http root not a directory",
                   with_member("[apps.http]\nenabled = true\nroot = \"/nonexistent/www\"\n"),
                   "m.toml:8:8: apps.http.root: /nonexistent/www is not a directory"},
        BrokenCase{"http port clashes with echo",
                   with_member("[apps.echo]\nenabled = true\nports = [80]\n"
                               "[apps.http]\nenabled = true\nroot = \"/\"\n"),
                   "m.toml:9:1: apps.http.port: port 80 is also an echo port"},
        BrokenCase{"bad log level", with_member("[log]\nlevel = \"loud\"\n"),
                   "m.toml:7:9: log.level: \"loud\" is not one of trace, debug, info, warn, "
                   "error, critical, off"},
        BrokenCase{"rto order", with_member("[tcp]\nrto_min_ms = 2000\n"),
                   "m.toml:6:1: tcp.rto_initial_ms: must satisfy rto_min_ms <= rto_initial_ms <= "
                   "rto_max_ms"},
        BrokenCase{"bad congestion", with_member("[tcp]\ncongestion = \"bbr\"\n"),
                   "m.toml:7:14: tcp.congestion: \"bbr\" is not one of \"newreno\", \"cubic\""},
        BrokenCase{"float for an integer", with_member("[tcp]\nmss = 1460.0\n"),
                   "m.toml:7:7: tcp.mss: expected an integer, got a float"},
        BrokenCase{"block size not in pages", with_member("[link]\nrx_block_size_kib = 6\n"),
                   "m.toml:7:21: link.rx_block_size_kib: must be a multiple of 4 (the page size)"},
        BrokenCase{"cluster without name",
                   with_member("[cluster]\nip = \"198.18.0.100\"\nmac = \"01:00:5e:00:00:01\"\n"),
                   "m.toml:6:1: cluster.name: missing (required)"},
        BrokenCase{"cluster ip is the member address",
                   with_member("[cluster]\nname = \"c\"\nip = \"198.18.0.10\"\n"
                               "mac = \"01:00:5e:00:00:01\"\n"),
                   "m.toml:8:6: cluster.ip: is member.address; the member's own address must "
                   "differ"},
        BrokenCase{"unicast MAC in multicast mode",
                   with_member("[cluster]\nname = \"c\"\nip = \"198.18.0.100\"\n"
                               "mac = \"02:00:00:00:00:01\"\n"),
                   "m.toml:9:7: cluster.mac: 02:00:00:00:00:01 is not a multicast MAC (mode = "
                   "\"multicast\")"},
        BrokenCase{
            "bad mode",
            with_member("[cluster]\nname = \"c\"\nip = \"198.18.0.100\"\nmode = \"anycast\"\n"
                        "mac = \"02:00:00:00:00:01\"\n"),
            "m.toml:9:8: cluster.mode: \"anycast\" is not one of forwarding, unicast, "
            "multicast"},
        BrokenCase{"control group not multicast",
                   with_member("[cluster]\nname = \"c\"\nip = \"198.18.0.100\"\n"
                               "mac = \"01:00:5e:00:00:01\"\ncontrol_group = \"198.18.0.255\"\n"),
                   "m.toml:10:17: cluster.control_group: 198.18.0.255 is not a multicast "
                   "address"},
        BrokenCase{"unknown timing",
                   with_member("[cluster]\nname = \"c\"\nip = \"198.18.0.100\"\n"
                               "mac = \"01:00:5e:00:00:01\"\n[cluster.timings]\nfailure_ms = 5\n"),
                   "m.toml:11:1: cluster.timings.failure_ms: unknown key"}),
    [](const testing::TestParamInfo<BrokenCase>& info) {
      std::string name = info.param.description;
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) {
          ch = '_';
        }
      }
      return name;
    });

TEST(ConfigTest, EveryProblemIsReportedOnItsOwnLine) {
  auto c = parse_config("[member]\ninterface = 1\naddress = \"x\"\nprefix = 0\n", "m.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message,
            "m.toml:2:13: member.interface: expected a string, got an integer\n"
            "m.toml:3:11: member.address: \"x\" is not an IPv4 address (a.b.c.d)\n"
            "m.toml:4:10: member.prefix: 0 is out of range [1, 32]");
}

}  // namespace
}  // namespace phalanx::runtime
