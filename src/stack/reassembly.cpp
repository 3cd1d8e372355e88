#include "stack/reassembly.hpp"

#include <algorithm>
#include <cstring>

#include "stack/stack.hpp"
#include "wire/checksum.hpp"
#include "wire/mix.hpp"

namespace phalanx::stack {

using wire::Ipv4View;

std::size_t Reassembler::KeyHash::operator()(const Key& k) const {
  // The shared mixer over the packed key: fragments are attacker-chosen, but the table is bounded
  // (max_datagrams), so collisions cost at most that many comparisons.
  const std::uint64_t x = (std::uint64_t{k.src} << 32) ^ k.dst ^ (std::uint64_t{k.ident} << 16) ^
                          (std::uint64_t{k.protocol} << 8);
  return static_cast<std::size_t>(wire::fmix64(x));
}

Reassembler::Reassembler(const StackLimits& limits)
    : max_bytes_(limits.reassembly_bytes),
      max_datagrams_(limits.reassembly_datagrams),
      timeout_(limits.reassembly_timeout) {
  entries_.reserve(max_datagrams_);
}

void Reassembler::erase(Order::iterator it) {
  bytes_ -= it->header.size() + it->payload.size();
  entries_.erase(it->key);
  order_.erase(it);
}

void Reassembler::discard(Order::iterator it, bool keep_as_discarded) {
  if (!keep_as_discarded) {
    erase(it);
    return;
  }
  bytes_ -= it->header.size() + it->payload.size();
  it->discarded = true;
  it->header = {};
  it->payload = {};
  it->pieces = {};
}

bool Reassembler::make_room(std::size_t growth, Order::iterator keep, Counters& counters) {
  while (bytes_ + growth > max_bytes_) {
    auto victim = order_.begin();
    while (victim != order_.end() && (victim == keep || victim->payload.empty())) {
      ++victim;
    }
    if (victim == order_.end()) {
      return false;
    }
    counters.add(Drop::frag_no_memory);
    erase(victim);
  }
  return true;
}

std::optional<wire::Bytes> Reassembler::add(Time now, const Ipv4View& f, Counters& counters) {
  const Key key{f.src().value(), f.dst().value(), f.ident(), f.protocol()};
  const wire::Bytes data = f.payload();
  const std::size_t offset = f.fragment_offset();
  const std::size_t end = offset + data.size();
  const bool last = !f.more_fragments();

  auto found = entries_.find(key);
  if (found == entries_.end()) {
    if (entries_.size() >= max_datagrams_) {
      // Full: the oldest incomplete datagram makes way (discarded ones first would be kinder to
      // real traffic, but an overlap attacker would then keep the table full of live ones).
      counters.add(Drop::frag_no_memory);
      erase(order_.begin());
    }
    order_.push_back(Entry{key, now + timeout_, false, {}, {}, {}, std::nullopt});
    found = entries_.emplace(key, std::prev(order_.end())).first;
  }
  const Order::iterator it = found->second;
  Entry& e = *it;

  // A datagram already discarded for overlap swallows its later fragments (RFC 5722 §4).
  if (e.discarded) {
    counters.add(Drop::frag_overlap);
    return std::nullopt;
  }
  // Every fragment but the last carries a multiple of 8 bytes, and some (RFC 791).
  if (!last && (data.empty() || data.size() % 8 != 0)) {
    counters.add(Drop::frag_malformed);
    discard(it, true);
    return std::nullopt;
  }
  // The datagram would not fit IPv4's 16-bit total length (the "ping of death").
  if (f.header_size() + end > 0xffff) {
    counters.add(Drop::frag_too_big);
    discard(it, true);
    return std::nullopt;
  }
  // Exact duplicates are ignored; any other overlap discards the datagram (RFC 5722).
  for (const Piece& p : e.pieces) {
    if (p.offset == offset && p.length == data.size()) {
      counters.add(Drop::frag_duplicate);
      return std::nullopt;
    }
    if (offset < p.offset + p.length && p.offset < end) {
      counters.add(Drop::frag_overlap);
      discard(it, true);
      return std::nullopt;
    }
  }
  // Data beyond the end the last fragment gave, or a second, different end.
  const std::size_t held_end =
      e.pieces.empty() ? 0 : e.pieces.back().offset + e.pieces.back().length;
  if ((e.total && (end > *e.total || (last && end != *e.total))) || (last && held_end > end)) {
    counters.add(Drop::frag_malformed);
    discard(it, true);
    return std::nullopt;
  }
  if (e.pieces.size() >= kMaxFragments) {
    counters.add(Drop::frag_no_memory);
    discard(it, true);
    return std::nullopt;
  }
  const std::size_t header_growth = offset == 0 ? f.header_size() : 0;
  const std::size_t growth = header_growth + (end > e.payload.size() ? end - e.payload.size() : 0);
  if (!make_room(growth, it, counters)) {
    counters.add(Drop::frag_no_memory);
    erase(it);
    return std::nullopt;
  }

  // Keep it.
  if (end > e.payload.size()) {
    e.payload.resize(end);
  }
  std::copy(data.begin(), data.end(), e.payload.begin() + static_cast<std::ptrdiff_t>(offset));
  if (offset == 0) {
    const wire::Bytes header = f.bytes().first(f.header_size());
    e.header.assign(header.begin(), header.end());
  }
  bytes_ += growth;
  if (last) {
    e.total = end;
  }
  const auto pos =
      std::ranges::find_if(e.pieces, [&](const Piece& p) { return p.offset > offset; });
  e.pieces.insert(pos, Piece{offset, data.size()});

  // Complete when the header is here and the pieces tile [0, total).
  if (!e.total || e.header.empty()) {
    return std::nullopt;
  }
  std::size_t covered = 0;
  for (const Piece& p : e.pieces) {
    if (p.offset != covered) {
      return std::nullopt;
    }
    covered += p.length;
  }
  if (covered != *e.total) {
    return std::nullopt;
  }
  const std::size_t hs = e.header.size();
  if (hs + *e.total > 0xffff) {  // the first fragment's options made it too long
    counters.add(Drop::frag_too_big);
    discard(it, true);
    return std::nullopt;
  }
  out_.resize(hs + *e.total);
  std::memcpy(out_.data(), e.header.data(), hs);
  std::memcpy(out_.data() + hs, e.payload.data(), *e.total);
  const wire::MutBytes out(out_);
  wire::write_u16(out, Ipv4View::kTotalLength, static_cast<std::uint16_t>(out_.size()));
  const std::uint16_t ff = wire::read_u16(out, Ipv4View::kFlagsFragment);
  wire::write_u16(out, Ipv4View::kFlagsFragment,
                  static_cast<std::uint16_t>(ff & Ipv4View::kFlagDontFragment));
  wire::write_u16(out, Ipv4View::kChecksum, 0);
  wire::write_u16(out, Ipv4View::kChecksum, wire::checksum::compute(wire::Bytes(out_).first(hs)));
  erase(it);
  counters.add(Counter::frag_reassembled);
  return wire::Bytes(out_);
}

void Reassembler::on_timer(Time now, Counters& counters) {
  while (!order_.empty() && order_.front().expires <= now) {
    if (!order_.front().discarded) {
      counters.add(Drop::frag_timeout);
    }
    erase(order_.begin());
  }
}

Time Reassembler::next_deadline() const {
  return order_.empty() ? kNever : order_.front().expires;
}

}  // namespace phalanx::stack
