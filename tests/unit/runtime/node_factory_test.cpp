// The runtime builds the nodes: it opens the HTTP root (the node opens no file) and reports why
// it cannot.
#include "runtime/node_factory.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace phalanx::runtime {
namespace {

Config standalone_config() {
  Config c;
  c.member.interface = "eth0";
  c.member.address = wire::Ipv4Addr{198, 18, 0, 11};
  c.echo.enabled = true;
  return c;
}

StandaloneEnvironment environment() {
  StandaloneEnvironment env;
  env.interface_mac = wire::MacAddr{{0x02, 0x50, 198, 18, 0, 11}};
  return env;
}

TEST(NodeFactory, OpensTheHttpRootForTheNode) {
  Config c = standalone_config();
  c.http.enabled = true;
  c.http.root = std::filesystem::temp_directory_path().string();
  auto member = make_standalone(c, environment());
  ASSERT_TRUE(member.ok()) << member.error().message;
}

TEST(NodeFactory, AnHttpRootThatCannotBeOpenedIsAnError) {
  Config c = standalone_config();
  c.http.enabled = true;
  c.http.root = "/nonexistent/phalanx-root";
  auto member = make_standalone(c, environment());
  ASSERT_FALSE(member.ok());
  EXPECT_EQ(member.error().message.rfind("http root /nonexistent/phalanx-root: ", 0), 0u)
      << member.error().message;
}

TEST(NodeFactory, NoHttpNoFiles) {
  auto files = open_http_root(standalone_config());
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(*files, nullptr);
}

}  // namespace
}  // namespace phalanx::runtime
