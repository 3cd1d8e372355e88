// resolve_target and content_type_for: path safety as a table.
#include "apps/http_target.hpp"

#include <gtest/gtest.h>

namespace phalanx::apps::http {
namespace {

TEST(HttpTarget, ResolvesSafePaths) {
  struct Row {
    const char* target;
    const char* path;
    bool trailing_slash;
  };
  const Row rows[] = {
      {"/", "", true},
      {"/index.html", "index.html", false},
      {"/a/b/c.txt", "a/b/c.txt", false},
      {"/docs/", "docs", true},
      {"//a///b", "a/b", false},
      {"/./a/./b", "a/b", false},
      {"/a/../b", "b", false},
      {"/a/b/..", "a", true},
      {"/a/.", "a", true},
      {"/a?x=1&y=/../..", "a", false},
      {"/a%20b", "a b", false},
      {"/%41%62", "Ab", false},
      {"/a%2Fb", "a/b", false},     // decoded before splitting: still inside the root
      {"/a/%2e%2e/b", "b", false},  // an encoded ".." is a ".." too
      {"http://host/x/y", "x/y", false},
      {"HTTP://host", "", true},
      {"http://host?q", "", true},
      {"https://host:443/z", "z", false},
  };
  for (const Row& row : rows) {
    const auto r = resolve_target(row.target);
    ASSERT_TRUE(r.has_value()) << row.target;
    EXPECT_EQ(r->path, row.path) << row.target;
    EXPECT_EQ(r->trailing_slash, row.trailing_slash) << row.target;
  }
}

TEST(HttpTarget, RefusesUnsafeOrMalformedTargets) {
  const char* rows[] = {
      "/..",
      "/../etc/passwd",
      "/a/../../b",
      "/%2e%2e/x",
      "/a%2f..%2f..%2fb",
      "/%00",
      "/a%00.html",
      "/%",
      "/%4",
      "/%zz",
      "*",
      "a/b",
      "",
      "ftp://x/y",
      "/..%2f",
  };
  for (const char* target : rows) {
    EXPECT_FALSE(resolve_target(target).has_value()) << target;
  }
}

TEST(HttpTarget, ContentTypes) {
  EXPECT_EQ(content_type_for("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a/b/STYLE.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("x.tar.gz"), "application/gzip");
  EXPECT_EQ(content_type_for("img.png"), "image/png");
  EXPECT_EQ(content_type_for("README"), "application/octet-stream");
  EXPECT_EQ(content_type_for(".bashrc"), "application/octet-stream");
  EXPECT_EQ(content_type_for("dir.html/file"), "application/octet-stream");
  EXPECT_EQ(content_type_for("x.unknown"), "application/octet-stream");
}

}  // namespace
}  // namespace phalanx::apps::http
