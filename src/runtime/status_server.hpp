// StatusServer: a Unix stream socket that answers every connection with one JSON document and
// closes it. No request is read: connecting is asking. The path's directory is created if
// missing; a stale socket file at the path is replaced.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "runtime/error.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/unique_fd.hpp"

namespace phalanx::runtime {

class StatusServer {
 public:
  using Provider = std::function<std::string()>;

  // Binds `path` and watches it in `loop`. Fails with the system's reason (directory not
  // writable, path too long, epoll refuses).
  static Result<std::unique_ptr<StatusServer>> open(EventLoop& loop, const std::string& path,
                                                    Provider provider);
  ~StatusServer();  // unwatches and removes the socket file
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  std::uint64_t answered() const { return answered_; }
  std::uint64_t failed() const { return failed_; }

 private:
  StatusServer(EventLoop& loop, std::string path, Provider provider)
      : loop_(loop), path_(std::move(path)), provider_(std::move(provider)) {}
  void on_readable();

  EventLoop& loop_;
  std::string path_;
  Provider provider_;
  UniqueFd fd_;
  std::uint64_t answered_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace phalanx::runtime
