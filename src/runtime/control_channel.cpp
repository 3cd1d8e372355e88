#include "runtime/control_channel.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace phalanx::runtime {

namespace {

constexpr std::size_t kMaxDatagram = 65536;

sockaddr_in sockaddr_of(wire::Ipv4Addr a, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(a.value());
  return sa;
}

template <class T>
Status set_option(int fd, int level, int name, const T& value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    return errno_error(what);
  }
  return Ok{};
}

}  // namespace

Result<std::unique_ptr<ControlChannel>> ControlChannel::open(const ControlChannelOptions& o) {
  std::unique_ptr<ControlChannel> c(new ControlChannel(o));
  c->fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int fd = c->fd_.get();
  if (fd < 0) {
    return errno_error("control channel: socket");
  }
  const int one = 1;
  const int zero = 0;
  const int ttl = 1;
  if (auto s = set_option(fd, SOL_SOCKET, SO_REUSEADDR, one, "control channel: SO_REUSEADDR"); !s) {
    return s.error();
  }
  if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o.interface.c_str(),
                   static_cast<socklen_t>(o.interface.size())) != 0) {
    return errno_error("control channel: SO_BINDTODEVICE " + o.interface);
  }
  const sockaddr_in any = sockaddr_of(wire::Ipv4Addr{}, o.port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0) {
    return errno_error("control channel: bind port " + std::to_string(o.port));
  }
  // Group membership on the member's own interface (named by its address); TTL 1, no loop.
  ip_mreq mreq{};
  mreq.imr_multiaddr.s_addr = htonl(o.group.value());
  mreq.imr_interface.s_addr = htonl(o.address.value());
  if (auto s = set_option(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq,
                          ("control channel: join " + o.group.to_string() + " on " +
                           o.address.to_string() + " (is the member address configured?)")
                              .c_str());
      !s) {
    return s.error();
  }
  in_addr ifaddr{};
  ifaddr.s_addr = htonl(o.address.value());
  for (auto s : {set_option(fd, IPPROTO_IP, IP_MULTICAST_IF, ifaddr, "IP_MULTICAST_IF"),
                 set_option(fd, IPPROTO_IP, IP_MULTICAST_LOOP, zero, "IP_MULTICAST_LOOP"),
                 set_option(fd, IPPROTO_IP, IP_MULTICAST_TTL, ttl, "IP_MULTICAST_TTL"),
                 set_option(fd, SOL_SOCKET, SO_BROADCAST, one, "SO_BROADCAST"),
                 // When each datagram arrived: after a pause, the driver replays the queue at
                 // those times rather than all at once (node's watchdogs, issue 9 part 5).
                 set_option(fd, SOL_SOCKET, SO_TIMESTAMPNS, one, "SO_TIMESTAMPNS")}) {
    if (!s) {
      return Error{"control channel: " + s.error().message};
    }
  }
  if (o.broadcast) {
    const std::uint32_t mask = o.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - o.prefix);
    c->group_destination_ = wire::Ipv4Addr{(o.address.value() & mask) | ~mask};
  } else {
    c->group_destination_ = o.group;
  }
  c->buffer_.resize(kMaxDatagram);
  return c;
}

std::size_t ControlChannel::receive(const Handler& on_datagram, std::size_t max) {
  std::size_t n = 0;
  while (n < max) {
    sockaddr_in from{};
    iovec iov{buffer_.data(), buffer_.size()};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(timespec))> control{};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t got = ::recvmsg(fd_.get(), &msg, MSG_TRUNC);
    if (got < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        ++counters_.rx_errors;
      }
      break;
    }
    ++n;
    arrival_.reset();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        arrival_ = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
      }
    }
    if (static_cast<std::size_t>(got) > buffer_.size()) {
      ++counters_.rx_truncated;
      continue;
    }
    const wire::Ipv4Addr sender{ntohl(from.sin_addr.s_addr)};
    if (sender == options_.address) {
      ++counters_.rx_own;
      continue;
    }
    ++counters_.rx_datagrams;
    counters_.rx_bytes += static_cast<std::size_t>(got);
    on_datagram(sender, wire::Bytes(buffer_.data(), static_cast<std::size_t>(got)));
  }
  return n;
}

bool ControlChannel::send(std::optional<wire::Ipv4Addr> to, wire::Bytes datagram) {
  const sockaddr_in dst = sockaddr_of(to.value_or(group_destination_), options_.port);
  const ssize_t sent = ::sendto(fd_.get(), datagram.data(), datagram.size(), MSG_DONTWAIT,
                                reinterpret_cast<const sockaddr*>(&dst), sizeof dst);
  if (sent < 0 || static_cast<std::size_t>(sent) != datagram.size()) {
    ++counters_.tx_errors;
    return false;
  }
  ++counters_.tx_datagrams;
  counters_.tx_bytes += datagram.size();
  return true;
}

}  // namespace phalanx::runtime
