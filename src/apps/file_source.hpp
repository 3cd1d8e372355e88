// Where the http application reads its files from. The session never opens a file itself: the
// runtime injects a FileSource (PosixFileSource, over a root directory) and the tests inject
// MemoryFileSource. A File is read by offset, in chunks, so a 1 GB file never sits in memory, and
// reading the same offset twice gives the same bytes as long as the file does not change, which
// is what makes a response regenerable from a byte offset after a takeover (DESIGN §6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>

namespace phalanx::apps {

enum class FileStatus : std::uint8_t {
  ok,
  not_found,     // no such file, or not something we serve (device, socket, symlink...)
  is_directory,  // the path names a directory (the caller may look for an index.html in it)
  io_error,      // it exists but cannot be opened or read
};

// An open regular file of fixed size.
class File {
 public:
  virtual ~File() = default;
  virtual std::uint64_t size() const = 0;
  // Reads up to out.size() bytes at `offset` (offset + out.size() <= size()). Returns the number
  // of bytes read; fewer than asked means the file shrank or failed under us, and the caller
  // must give up on the response (its Content-Length is already sent).
  virtual std::size_t read(std::uint64_t offset, std::span<std::byte> out) = 0;
};

struct Opened {
  FileStatus status = FileStatus::not_found;
  std::unique_ptr<File> file;  // set iff status == ok
};

class FileSource {
 public:
  virtual ~FileSource() = default;
  // Opens `path`, relative to the served root: segments joined by '/', never empty, "." or "..",
  // never containing NUL ("" is the root itself). The caller has normalized it.
  virtual Opened open(std::string_view path) = 0;
};

// Files held in memory: for tests, and for small built-in pages.
class MemoryFileSource final : public FileSource {
 public:
  // Adds or replaces a file; every prefix of its path becomes a directory.
  void add(std::string path, std::string content);
  // Makes `path` a directory even if it holds no file.
  void add_directory(std::string path);
  Opened open(std::string_view path) override;

 private:
  std::map<std::string, std::shared_ptr<const std::string>, std::less<>> files_;
  std::set<std::string, std::less<>> directories_;
};

}  // namespace phalanx::apps
