// Questions about the host's own network configuration, asked once at start.
#pragma once

#include <optional>
#include <string>

#include "runtime/error.hpp"
#include "wire/addr.hpp"

namespace phalanx::runtime {

// The name of a local interface (in this network namespace) that has `addr` configured, or
// nullopt when none has. phalanxd refuses to serve such an address: the kernel would answer
// for it too (RST for our connections, ICMP for our ports). Fails when getifaddrs() fails.
Result<std::optional<std::string>> interface_with_address(wire::Ipv4Addr addr);

}  // namespace phalanx::runtime
