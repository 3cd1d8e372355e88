// Apps: the one wiring of the applications on a member's stack, as the config enables them.
#include "node/apps.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "stack/harness.hpp"

namespace phalanx::node {
namespace {

bool has_counter(const CounterList& list, std::string_view name) {
  return std::any_of(list.begin(), list.end(), [&](const NamedCount& c) { return c.name == name; });
}

std::unique_ptr<apps::FileSource> some_files() {
  auto files = std::make_unique<apps::MemoryFileSource>();
  files->add("index.html", "hello");
  return files;
}

TEST(Apps, NoneEnabledRegistersNothing) {
  stack::Stack stack(stack::test::default_config());
  auto apps = Apps::create(stack, NodeConfig{}, nullptr);
  ASSERT_TRUE(apps.ok()) << apps.error().message;
  EXPECT_TRUE((*apps)->counters().empty());
}

TEST(Apps, EchoAndHttpShareTheStack) {
  stack::Stack stack(stack::test::default_config());
  NodeConfig c;
  c.echo.enabled = true;
  c.echo.ports = {7, 7007};
  c.http.enabled = true;
  c.http.port = 80;
  auto apps = Apps::create(stack, c, some_files());
  ASSERT_TRUE(apps.ok()) << apps.error().message;
  const CounterList counters = (*apps)->counters();
  EXPECT_TRUE(has_counter(counters, "echo.connections"));
  EXPECT_TRUE(has_counter(counters, "http.responses"));
}

TEST(Apps, TwoApplicationsOnOnePortAreRefused) {
  stack::Stack stack(stack::test::default_config());
  NodeConfig c;
  c.echo.enabled = true;
  c.echo.ports = {80};
  c.http.enabled = true;
  c.http.port = 80;
  auto apps = Apps::create(stack, c, some_files());
  ASSERT_FALSE(apps.ok());
  EXPECT_EQ(apps.error().message, "http: port 80 is already in use");
}

TEST(Apps, HttpWithoutFilesIsRefused) {
  stack::Stack stack(stack::test::default_config());
  NodeConfig c;
  c.http.enabled = true;
  c.http.root = "/srv/www";
  auto apps = Apps::create(stack, c, nullptr);
  ASSERT_FALSE(apps.ok());
  EXPECT_NE(apps.error().message.find("http"), std::string::npos);
}

}  // namespace
}  // namespace phalanx::node
