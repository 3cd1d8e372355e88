#include "runtime/status_server.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace phalanx::runtime {

Result<std::unique_ptr<StatusServer>> StatusServer::open(EventLoop& loop, const std::string& path,
                                                         Provider provider) {
  std::unique_ptr<StatusServer> s(new StatusServer(loop, path, std::move(provider)));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path) {
    return Error{"status socket: path \"" + path + "\" is empty or too long"};
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return Error{"status socket: create " + dir.string() + ": " + ec.message()};
    }
  }
  s->fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s->fd_.valid()) {
    return errno_error("status socket: socket");
  }
  ::unlink(path.c_str());  // a stale socket from a previous run
  if (::bind(s->fd_.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    return errno_error("status socket: bind " + path);
  }
  if (::listen(s->fd_.get(), 16) != 0) {
    return errno_error("status socket: listen " + path);
  }
  StatusServer* raw = s.get();
  if (auto w = loop.watch(s->fd_.get(), EPOLLIN, [raw](std::uint32_t) { raw->on_readable(); });
      !w) {
    return w.error();
  }
  return s;
}

StatusServer::~StatusServer() {
  if (fd_.valid()) {
    loop_.unwatch(fd_.get());
    ::unlink(path_.c_str());
  }
}

void StatusServer::on_readable() {
  for (;;) {
    UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      return;  // EAGAIN: no more; anything else: the client went away
    }
    // Blocking with a short timeout: a status document is small and the socket buffer takes it
    // at once; a client that does not read cannot stall the member for long.
    const timeval timeout{0, 50'000};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    const std::string body = provider_() + "\n";
    std::size_t sent = 0;
    while (sent < body.size()) {
      const ssize_t n = ::send(conn.get(), body.data() + sent, body.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        break;
      }
      sent += static_cast<std::size_t>(n);
    }
    if (sent == body.size()) {
      ++answered_;
    } else {
      ++failed_;
    }
  }
}

}  // namespace phalanx::runtime
