#include "apps/file_source_posix.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace phalanx::apps {

namespace {

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  std::uint64_t size() const override { return size_; }

  std::size_t read(std::uint64_t offset, std::span<std::byte> out) override {
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;  // error or end of file: the caller sees a short read
      }
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

 private:
  int fd_;
  std::uint64_t size_;
};

FileStatus status_of_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ELOOP:  // O_NOFOLLOW met a symbolic link
    case EACCES:
    case EPERM:
    case ENAMETOOLONG:
      return FileStatus::not_found;
    default:
      return FileStatus::io_error;
  }
}

}  // namespace

std::unique_ptr<PosixFileSource> PosixFileSource::open_root(const std::string& root) {
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return nullptr;
  }
  return std::unique_ptr<PosixFileSource>(new PosixFileSource(fd));
}

PosixFileSource::~PosixFileSource() {
  ::close(root_fd_);
}

Opened PosixFileSource::open(std::string_view path) {
  if (path.empty()) {
    return Opened{FileStatus::is_directory, nullptr};
  }
  // Walk the segments, each relative to the directory opened before it.
  int dir = root_fd_;
  std::string segment;
  std::string_view rest = path;
  for (;;) {
    const auto slash = rest.find('/');
    segment.assign(rest.substr(0, slash));
    const bool last = slash == std::string_view::npos;
    if (segment.empty() || segment == "." || segment == ".." ||
        segment.find('\0') != std::string::npos) {
      if (dir != root_fd_) {
        ::close(dir);
      }
      return Opened{FileStatus::not_found, nullptr};  // the caller broke its promise; be safe
    }
    const int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (last ? 0 : O_DIRECTORY);
    const int fd = ::openat(dir, segment.c_str(), flags);
    const int err = errno;
    if (dir != root_fd_) {
      ::close(dir);
    }
    if (fd < 0) {
      return Opened{status_of_errno(err), nullptr};
    }
    if (!last) {
      dir = fd;
      rest = rest.substr(slash + 1);
      continue;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Opened{FileStatus::io_error, nullptr};
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return Opened{FileStatus::is_directory, nullptr};
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return Opened{FileStatus::not_found, nullptr};
    }
    return Opened{.status = FileStatus::ok,
                  .file = std::make_unique<PosixFile>(fd, static_cast<std::uint64_t>(st.st_size))};
  }
}

}  // namespace phalanx::apps
