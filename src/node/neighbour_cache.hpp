// NeighbourCache: client IP -> MAC, as ClusterNode learns it from every frame to the cluster IP
// and from ARP. Fed by the network, so it is a fixed table (DESIGN §2: nothing a stranger sends
// may cost memory that lasts): one slot per hash of the address, allocated and touched once at
// construction; a lookup or a learn is one slot.
//
// Who keeps a slot: a client seen within `hold` keeps it, and a newcomer whose slot is taken by
// such a client is refused (counted); an entry idle for longer is replaced (counted). So a flood
// of spoofed sources never pushes out a client that is talking, and a client that is refused
// tries again with its next frame.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "stack/types.hpp"
#include "wire/addr.hpp"

namespace phalanx::node {

using stack::Time;

class NeighbourCache {
 public:
  enum class Learned : std::uint8_t { inserted, refreshed, replaced, refused };

  // `slots` must be a power of two.
  NeighbourCache(std::size_t slots, Time hold)
      : slots_(slots), shift_(64 - static_cast<unsigned>(std::countr_zero(slots))), hold_(hold) {
    if (slots < 2 || !std::has_single_bit(slots)) {
      std::abort();  // a caller bug
    }
  }

  Learned learn(Time now, wire::Ipv4Addr ip, wire::MacAddr mac) {
    Slot& s = slots_[index(ip)];
    if (s.used && s.ip == ip) {
      s.mac = mac;
      s.seen = now;
      return Learned::refreshed;
    }
    if (s.used && now < s.seen + hold_) {
      return Learned::refused;
    }
    const Learned result = s.used ? Learned::replaced : Learned::inserted;
    size_ += s.used ? 0 : 1;
    s = Slot{ip, mac, now, true};
    return result;
  }

  // The MAC of `ip`, if held; `now` (when given) counts as having seen it.
  std::optional<wire::MacAddr> find(wire::Ipv4Addr ip, std::optional<Time> now = std::nullopt) {
    Slot& s = slots_[index(ip)];
    if (!s.used || s.ip != ip) {
      return std::nullopt;
    }
    if (now) {
      s.seen = std::max(s.seen, *now);
    }
    return s.mac;
  }
  std::optional<wire::MacAddr> find(wire::Ipv4Addr ip) const {
    const Slot& s = slots_[index(ip)];
    return s.used && s.ip == ip ? std::optional<wire::MacAddr>(s.mac) : std::nullopt;
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }

 private:
  struct Slot {
    wire::Ipv4Addr ip;
    wire::MacAddr mac;
    Time seen{};
    bool used = false;
  };

  std::size_t index(wire::Ipv4Addr ip) const {
    // Fibonacci hashing, top bits of the product: neighbouring addresses land far apart. Not the
    // shared mixer (wire/mix.hpp), on purpose: a random-like hash makes consecutive clients
    // collide at the birthday rate (ConsecutiveAddressesSpreadOverTheSlots: 20,572 of 60,000
    // refused with fmix64, 5,014 with this).
    return static_cast<std::size_t>((std::uint64_t{ip.value()} * 0x9e3779b97f4a7c15ull) >> shift_);
  }

  std::vector<Slot> slots_;
  unsigned shift_;
  Time hold_;
  std::size_t size_ = 0;
};

}  // namespace phalanx::node
