#include "apps/file_source.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace phalanx::apps {

namespace {

class MemoryFile final : public File {
 public:
  explicit MemoryFile(std::shared_ptr<const std::string> content) : content_(std::move(content)) {}
  std::uint64_t size() const override { return content_->size(); }
  std::size_t read(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= content_->size()) {
      return 0;
    }
    const std::size_t n = std::min<std::uint64_t>(out.size(), content_->size() - offset);
    std::memcpy(out.data(), content_->data() + offset, n);
    return n;
  }

 private:
  std::shared_ptr<const std::string> content_;
};

}  // namespace

void MemoryFileSource::add(std::string path, std::string content) {
  for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    directories_.insert(path.substr(0, slash));
  }
  files_[std::move(path)] = std::make_shared<const std::string>(std::move(content));
}

void MemoryFileSource::add_directory(std::string path) {
  directories_.insert(std::move(path));
}

Opened MemoryFileSource::open(std::string_view path) {
  if (path.empty() || directories_.contains(path)) {
    return Opened{FileStatus::is_directory, nullptr};
  }
  const auto it = files_.find(path);
  if (it == files_.end()) {
    return Opened{FileStatus::not_found, nullptr};
  }
  return Opened{.status = FileStatus::ok, .file = std::make_unique<MemoryFile>(it->second)};
}

}  // namespace phalanx::apps
