// ControlChannel: the cluster's control messages (DESIGN §4) over UDP on the member's own
// address, through the kernel. The member address belongs to the kernel (it is configured on
// the interface); the cluster IP does not.
//
// - To the group (Outgoing::to = nullopt): the multicast group on `port`, joined with
//   IP_ADD_MEMBERSHIP on the member's interface, IP_MULTICAST_LOOP off (a member does not hear
//   itself), TTL 1 (the LAN only). With `broadcast`, the subnet's broadcast address instead, for
//   networks whose switches drop multicast.
// - To one member (Outgoing::to = its address): unicast to that address and `port`.
//
// One non-blocking socket, bound to 0.0.0.0:port (so it receives unicast, group and broadcast
// datagrams) and to the member's interface (SO_BINDTODEVICE). Datagrams from this member's own
// address (broadcast loops back) are ignored and counted.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/unique_fd.hpp"
#include "wire/addr.hpp"
#include "wire/bytes.hpp"

namespace phalanx::runtime {

struct ControlChannelOptions {
  std::string interface;
  wire::Ipv4Addr address;  // the member's own address, configured on `interface`
  std::uint8_t prefix = 24;
  wire::Ipv4Addr group{239, 255, 80, 72};
  std::uint16_t port = 8472;
  bool broadcast = false;  // send group messages to the subnet broadcast instead of the group
};

struct ControlChannelCounters {
  std::uint64_t rx_datagrams = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t rx_own = 0;        // our own datagrams looped back (broadcast)
  std::uint64_t rx_truncated = 0;  // larger than the receive buffer
  std::uint64_t rx_errors = 0;
  std::uint64_t tx_datagrams = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_errors = 0;  // sendto() failed (buffer full, unreachable): the message is lost
};

class ControlChannel {
 public:
  using Handler = std::function<void(wire::Ipv4Addr from, wire::Bytes datagram)>;

  // Fails with the system's reason when the socket cannot be set up: the interface does not
  // exist, the port is taken, the member address is not configured (the group join fails).
  static Result<std::unique_ptr<ControlChannel>> open(const ControlChannelOptions& options);

  int fd() const { return fd_.get(); }

  // Calls `on_datagram` for every datagram waiting, up to `max`; never blocks. Returns how many.
  std::size_t receive(const Handler& on_datagram, std::size_t max = 256);
  // During an on_datagram call: when the kernel received that datagram (SO_TIMESTAMPNS, the
  // system clock); nullopt when the kernel did not say.
  std::optional<std::chrono::system_clock::time_point> arrival() const { return arrival_; }

  // Sends one datagram to the group (nullopt) or to one member. False when the kernel refused
  // it (counted); control messages are idempotent and resent by the protocol.
  bool send(std::optional<wire::Ipv4Addr> to, wire::Bytes datagram);

  const ControlChannelCounters& counters() const { return counters_; }
  const ControlChannelOptions& options() const { return options_; }

 private:
  explicit ControlChannel(ControlChannelOptions options) : options_(std::move(options)) {}

  ControlChannelOptions options_;
  UniqueFd fd_;
  wire::Ipv4Addr group_destination_;
  std::vector<std::byte> buffer_;
  std::optional<std::chrono::system_clock::time_point> arrival_;
  ControlChannelCounters counters_;
};

}  // namespace phalanx::runtime
