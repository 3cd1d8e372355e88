// IPv4 fragment reassembly (RFC 791 §3.2, RFC 815), bounded in memory, in datagrams and in time.
//
// - Overlapping fragments discard the whole datagram, and every later fragment of it until its
//   timeout (RFC 5722's rule, written for IPv6, applied to IPv4 as Linux and the BSDs do); an
//   exact copy of a fragment already held is only ignored (network duplication).
// - A datagram longer than 65535 bytes, a fragment other than the last whose length is not a
//   multiple of 8, data beyond a known end, or two different ends: the datagram is discarded.
// - Memory: each incomplete datagram holds one buffer as long as the furthest fragment seen; when
//   a fragment would push the total over the limit the oldest datagrams are evicted, and when a
//   new datagram would exceed the datagram count, the oldest goes. Evictions count as
//   Drop::frag_no_memory (one per datagram), as does a fragment that does not fit at all.
// - A datagram not complete within the timeout is dropped (Drop::frag_timeout).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

#include "stack/counters.hpp"
#include "stack/types.hpp"
#include "wire/bytes.hpp"
#include "wire/ipv4.hpp"

namespace phalanx::stack {

struct StackLimits;

class Reassembler {
 public:
  static constexpr std::size_t kMaxFragments = 64;  // per datagram; more is a resource attack

  explicit Reassembler(const StackLimits& limits);

  // Takes one fragment (its header checksum verified). Returns the whole datagram, header and
  // payload with a fresh checksum, once the fragment completes it; the bytes stay valid until
  // the next call. Drops are counted in `counters`.
  std::optional<wire::Bytes> add(Time now, const wire::Ipv4View& fragment, Counters& counters);

  // Drops the datagrams whose time is up.
  void on_timer(Time now, Counters& counters);
  Time next_deadline() const;

  std::size_t datagrams() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  struct Key {
    std::uint32_t src;
    std::uint32_t dst;
    std::uint16_t ident;
    std::uint8_t protocol;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };
  struct Piece {
    std::size_t offset;
    std::size_t length;
  };
  struct Entry {
    Key key;
    Time expires;
    bool discarded = false;            // overlap seen: drop the rest until expiry
    std::vector<std::byte> header;     // of the offset-0 fragment, once seen
    std::vector<std::byte> payload;    // as long as the furthest fragment seen
    std::vector<Piece> pieces;         // fragments held, sorted by offset
    std::optional<std::size_t> total;  // payload length, once the last fragment is seen
  };
  using Order = std::list<Entry>;  // oldest first: expiry and eviction order

  void discard(Order::iterator it, bool keep_as_discarded);
  void erase(Order::iterator it);
  bool make_room(std::size_t growth, Order::iterator keep, Counters& counters);

  std::size_t max_bytes_;
  std::size_t max_datagrams_;
  Duration timeout_;
  Order order_;
  std::unordered_map<Key, Order::iterator, KeyHash> entries_;
  std::size_t bytes_ = 0;
  std::vector<std::byte> out_;
};

}  // namespace phalanx::stack
