#include "runtime/host.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

namespace phalanx::runtime {

Result<std::optional<std::string>> interface_with_address(wire::Ipv4Addr addr) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return errno_error("getifaddrs");
  }
  std::optional<std::string> found;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (ntohl(sin->sin_addr.s_addr) == addr.value()) {
      found = i->ifa_name;
    }
  }
  ::freeifaddrs(list);
  return found;
}

}  // namespace phalanx::runtime
