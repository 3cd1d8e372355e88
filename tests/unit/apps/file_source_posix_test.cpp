// PosixFileSource over a scratch directory: files, directories, and what it refuses to follow.
#include "apps/file_source_posix.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace phalanx::apps {
namespace {

namespace fs = std::filesystem;

class PosixFileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "phalanx-apps-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    base_ = templ;
    fs::create_directories(base_ / "root" / "docs");
    write(base_ / "root" / "hello.txt", "hello");
    write(base_ / "root" / "docs" / "index.html", "<p>docs</p>");
    write(base_ / "secret.txt", "outside the root");
    fs::create_symlink(base_ / "secret.txt", base_ / "root" / "link.txt");
    fs::create_directory_symlink(base_, base_ / "root" / "up");
    ASSERT_EQ(::mkfifo((base_ / "root" / "fifo").c_str(), 0600), 0);
    source_ = PosixFileSource::open_root((base_ / "root").string());
    ASSERT_NE(source_, nullptr);
  }
  void TearDown() override { fs::remove_all(base_); }

  static void write(const fs::path& p, const std::string& content) {
    std::ofstream(p, std::ios::binary) << content;
  }

  static std::string read_all(File& f) {
    std::string out(f.size(), '\0');
    const std::size_t n = f.read(0, std::as_writable_bytes(std::span(out.data(), out.size())));
    out.resize(n);
    return out;
  }

  fs::path base_;
  std::unique_ptr<PosixFileSource> source_;
};

TEST_F(PosixFileSourceTest, OpensFilesAndReadsByOffset) {
  Opened o = source_->open("hello.txt");
  ASSERT_EQ(o.status, FileStatus::ok);
  EXPECT_EQ(o.file->size(), 5u);
  EXPECT_EQ(read_all(*o.file), "hello");
  std::string part(3, '\0');
  EXPECT_EQ(o.file->read(2, std::as_writable_bytes(std::span(part.data(), 3))), 3u);
  EXPECT_EQ(part, "llo");

  o = source_->open("docs/index.html");
  ASSERT_EQ(o.status, FileStatus::ok);
  EXPECT_EQ(read_all(*o.file), "<p>docs</p>");
}

TEST_F(PosixFileSourceTest, DirectoriesAndMissingFiles) {
  EXPECT_EQ(source_->open("").status, FileStatus::is_directory);
  EXPECT_EQ(source_->open("docs").status, FileStatus::is_directory);
  EXPECT_EQ(source_->open("missing").status, FileStatus::not_found);
  EXPECT_EQ(source_->open("hello.txt/x").status, FileStatus::not_found);
  EXPECT_EQ(source_->open("docs/missing/x").status, FileStatus::not_found);
}

TEST_F(PosixFileSourceTest, RefusesSymlinksFifosAndDotSegments) {
  EXPECT_EQ(source_->open("link.txt").status, FileStatus::not_found);
  EXPECT_EQ(source_->open("up/secret.txt").status, FileStatus::not_found);
  EXPECT_EQ(source_->open("fifo").status, FileStatus::not_found);  // and did not block
  EXPECT_EQ(source_->open("../secret.txt").status, FileStatus::not_found);
  EXPECT_EQ(source_->open("docs/../hello.txt").status, FileStatus::not_found);
  EXPECT_EQ(source_->open("docs//index.html").status, FileStatus::not_found);
}

TEST(PosixFileSource, MissingRootFails) {
  EXPECT_EQ(PosixFileSource::open_root("/nonexistent/phalanx/root"), nullptr);
}

}  // namespace
}  // namespace phalanx::apps
