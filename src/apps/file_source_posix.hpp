// The real FileSource: files under a root directory, read with openat/fstat/pread. It touches no
// clock, socket, thread or signal (STYLE 4), only file descriptors, so it lives beside the
// application; the runtime constructs it and hands it to the http sessions.
//
// Path safety: the caller passes a normalized path (no "..", no "."), and each segment is opened
// relative to its parent directory with O_NOFOLLOW, so neither ".." nor a symbolic link can lead
// outside the root. Symbolic links are therefore not served at all (404). Only regular files
// and directories are served; FIFOs and devices are opened with O_NONBLOCK so that opening one
// cannot block the event loop, then refused as not_found.
#pragma once

#include <memory>
#include <string>

#include "apps/file_source.hpp"

namespace phalanx::apps {

class PosixFileSource final : public FileSource {
 public:
  // Opens the root directory. Returns nullptr if it cannot (errno tells why).
  static std::unique_ptr<PosixFileSource> open_root(const std::string& root);
  ~PosixFileSource() override;
  PosixFileSource(const PosixFileSource&) = delete;
  PosixFileSource& operator=(const PosixFileSource&) = delete;

  Opened open(std::string_view path) override;

 private:
  explicit PosixFileSource(int root_fd) : root_fd_(root_fd) {}
  int root_fd_;
};

}  // namespace phalanx::apps
