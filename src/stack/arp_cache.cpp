#include "stack/arp_cache.hpp"

#include <algorithm>
#include <cstdlib>

#include "stack/stack.hpp"

namespace phalanx::stack {

ArpCache::ArpCache(const StackLimits& limits)
    : max_entries_(limits.arp_cache_entries),
      ttl_(limits.arp_entry_ttl),
      retry_interval_(limits.arp_retry_interval),
      max_requests_(limits.arp_max_requests),
      max_pending_(limits.arp_pending_packets),
      max_pending_per_host_(limits.arp_pending_per_host) {
  // Every unresolved entry holds a waiting datagram, so with more entries than datagrams a full
  // cache always has a resolved entry to evict.
  if (max_entries_ <= max_pending_ || max_requests_ == 0) {
    std::abort();
  }
  entries_.reserve(max_entries_);
}

std::optional<wire::MacAddr> ArpCache::lookup(Time now, wire::Ipv4Addr ip) {
  auto it = entries_.find(ip.value());
  if (it == entries_.end() || !it->second.resolved || it->second.expires <= now) {
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second.mac;
}

ArpCache::Queued ArpCache::enqueue(Time now, wire::Ipv4Addr ip, wire::Bytes datagram) {
  auto it = entries_.find(ip.value());
  if (it != entries_.end() && it->second.resolved) {
    // Expired: resolve again from scratch.
    entries_.erase(it);
    it = entries_.end();
  }
  const bool fresh = it == entries_.end();
  if (pending_ >= max_pending_ || (!fresh && it->second.waiting.size() >= max_pending_per_host_)) {
    return Queued::full;
  }
  if (fresh) {
    it = insert(ip);
    unresolved_.push_back(ip.value());
  }
  Entry& e = it->second;
  e.last_used = now;
  e.waiting.emplace_back(datagram.begin(), datagram.end());
  ++pending_;
  if (!fresh) {
    return Queued::queued;
  }
  e.requests_sent = 1;
  e.next_request = now + retry_interval_;
  return Queued::send_request;
}

std::unordered_map<std::uint32_t, ArpCache::Entry>::iterator ArpCache::insert(wire::Ipv4Addr ip) {
  if (entries_.size() >= max_entries_) {
    // Full: the least recently used resolved entry goes (one exists, see the constructor).
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.resolved &&
          (victim == entries_.end() || it->second.last_used < victim->second.last_used)) {
        victim = it;
      }
    }
    entries_.erase(victim);
    ++evictions_;
  }
  return entries_.emplace(ip.value(), Entry{}).first;
}

Time ArpCache::next_deadline() const {
  Time best = kNever;
  for (std::uint32_t key : unresolved_) {
    best = std::min(best, entries_.find(key)->second.next_request);
  }
  return best;
}

}  // namespace phalanx::stack
