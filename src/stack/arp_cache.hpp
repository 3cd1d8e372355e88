// The neighbour cache of ARP (RFC 826, RFC 1122 §2.3.2): IPv4 next hop -> MAC, bounded in
// entries, each resolved entry valid for a TTL; an unresolved next hop holds a bounded queue of
// datagrams until a reply arrives, and the request is retried a bounded number of times.
//
// Pure bookkeeping: the cache says when to send a request and hands back the datagrams to send
// or to drop; the stack builds the frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "stack/types.hpp"
#include "wire/addr.hpp"
#include "wire/bytes.hpp"

namespace phalanx::stack {

struct StackLimits;

class ArpCache {
 public:
  explicit ArpCache(const StackLimits& limits);

  // The MAC of a resolved, unexpired entry (and marks it used).
  std::optional<wire::MacAddr> lookup(Time now, wire::Ipv4Addr ip);

  // An entry for `ip`, resolved (expired or not) or awaiting a reply.
  bool contains(wire::Ipv4Addr ip) const { return entries_.contains(ip.value()); }

  // RFC 826 "merge": an entry for `ip` takes `mac`; a new entry is made only when `create`
  // (the packet was addressed to us). Datagrams waiting for `ip` are passed to
  // release(wire::Bytes) and forgotten.
  template <class F>
  void learn(Time now, wire::Ipv4Addr ip, wire::MacAddr mac, bool create, F&& release) {
    auto it = entries_.find(ip.value());
    if (it == entries_.end()) {
      if (!create) {
        return;
      }
      it = insert(ip);
    }
    Entry& e = it->second;
    if (!e.resolved) {
      std::erase(unresolved_, ip.value());
    }
    e.mac = mac;
    e.resolved = true;
    e.expires = now + ttl_;
    e.last_used = now;
    e.requests_sent = 0;
    e.next_request = kNever;
    std::vector<std::vector<std::byte>> waiting;
    waiting.swap(e.waiting);
    pending_ -= waiting.size();
    for (const auto& d : waiting) {
      release(wire::Bytes(d.data(), d.size()));
    }
  }

  enum class Queued : std::uint8_t {
    send_request,  // queued; the first packet for this next hop: send a request now
    queued,        // queued behind a request already sent
    full,          // not queued: the queue for this host or for all is full
  };

  // Keeps a copy of `datagram` until `ip` resolves.
  Queued enqueue(Time now, wire::Ipv4Addr ip, wire::Bytes datagram);

  // Retries due requests through request(ip) and gives up on next hops that had all their
  // requests: drop(count) is told how many datagrams were dropped.
  template <class Request, class Dropped>
  void on_timer(Time now, Request&& request, Dropped&& dropped) {
    for (std::size_t i = 0; i < unresolved_.size();) {
      auto it = entries_.find(unresolved_[i]);
      Entry& e = it->second;
      if (e.next_request > now) {
        ++i;
        continue;
      }
      if (e.requests_sent >= max_requests_) {
        pending_ -= e.waiting.size();
        dropped(e.waiting.size());
        entries_.erase(it);
        unresolved_[i] = unresolved_.back();
        unresolved_.pop_back();
        continue;
      }
      ++e.requests_sent;
      e.next_request = now + retry_interval_;
      request(wire::Ipv4Addr{it->first});
      ++i;
    }
  }

  // The next retry or give-up; kNever when nothing is being resolved. O(unresolved).
  Time next_deadline() const;

  std::size_t size() const { return entries_.size(); }
  std::size_t pending() const { return pending_; }
  std::uint64_t evictions() const { return evictions_; }

 private:
  struct Entry {
    wire::MacAddr mac;
    bool resolved = false;
    Time expires{};
    Time last_used{};
    std::uint32_t requests_sent = 0;
    Time next_request = kNever;
    std::vector<std::vector<std::byte>> waiting;
  };

  std::unordered_map<std::uint32_t, Entry>::iterator insert(wire::Ipv4Addr ip);

  std::size_t max_entries_;
  Duration ttl_;
  Duration retry_interval_;
  std::uint32_t max_requests_;
  std::size_t max_pending_;
  std::size_t max_pending_per_host_;
  std::unordered_map<std::uint32_t, Entry> entries_;
  std::vector<std::uint32_t> unresolved_;  // keys of the entries awaiting a reply (few)
  std::size_t pending_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace phalanx::stack
