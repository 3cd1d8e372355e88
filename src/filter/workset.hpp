// Worksets: the 1024 buckets of cluster traffic (DESIGN §3, spec FIG. 9 and its sample
// "Cluster_Filtering_Function"). This file holds the value types (WorksetId, MemberId), the flow
// key a packet is hashed on, and the two hashes. Everything here is pure: no allocation, no state.
//
// The key (what the spec hashes):
//   - TCP / UDP to the cluster:    source IP, source port;
//   - L2TP (UDP from or to 1701):  source IP, source port, tunnel ID and session ID;
//   - any other protocol:          source IP, destination IP;
//   - forwarded packets:           source IP ^ destination IP, and for TCP / UDP (L2TP included)
//                                  source port ^ destination port, so that both directions of a
//                                  flow land in the same workset.
// Forwarded L2TP is hashed as plain UDP: each L2TP header carries the *receiver's* tunnel and
// session IDs, which differ between the two directions, so hashing them would split the flow.
//
// Fields are the numbers as written on the wire (big-endian, read into host integers), so a
// workset does not depend on the byte order of the machine computing it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "wire/ipv4.hpp"
#include "wire/l2tp.hpp"
#include "wire/mix.hpp"
#include "wire/result.hpp"

namespace phalanx::filter {

inline constexpr std::size_t kWorksetCount = 1024;
inline constexpr unsigned kWorksetBits = 10;
static_assert(kWorksetCount == (std::size_t{1} << kWorksetBits));

// One of the 1024 worksets. Constructing one out of range is a caller bug and aborts; values from
// the network go through from_wire(), which fails instead.
class WorksetId {
 public:
  constexpr WorksetId() = default;
  constexpr explicit WorksetId(std::uint16_t v) : v_(v) {
    if (v >= kWorksetCount) {
      std::abort();
    }
  }
  // nullopt when `v` is not a workset number (a malformed control message).
  static constexpr std::optional<WorksetId> from_wire(std::uint16_t v) {
    return v < kWorksetCount ? std::optional<WorksetId>(WorksetId{v}) : std::nullopt;
  }

  constexpr std::uint16_t value() const { return v_; }
  constexpr auto operator<=>(const WorksetId&) const = default;

 private:
  std::uint16_t v_ = 0;
};

// A cluster member. `none()` marks "no member" (the owner of an unassigned workset).
class MemberId {
 public:
  static constexpr std::uint16_t kNoneValue = 0xffff;

  constexpr MemberId() = default;
  constexpr explicit MemberId(std::uint16_t v) : v_(v) {}
  static constexpr MemberId none() { return MemberId{}; }

  constexpr std::uint16_t value() const { return v_; }
  constexpr bool is_none() const { return v_ == kNoneValue; }
  constexpr auto operator<=>(const MemberId&) const = default;

 private:
  std::uint16_t v_ = kNoneValue;
};

enum class HashKind : std::uint8_t {
  xor_fold,  // the spec's hash, exactly: XOR the fields, fold 32 bits to 10
  mix,       // a seeded 64-bit finalizer (murmur3 fmix64) over the same fields, top 10 bits
};

constexpr std::string_view to_string(HashKind k) {
  return k == HashKind::xor_fold ? "xor" : "mix";
}

// Configuration names: "xor" and "mix". nullopt for anything else.
constexpr std::optional<HashKind> hash_kind_from_string(std::string_view s) {
  if (s == "xor") {
    return HashKind::xor_fold;
  }
  if (s == "mix") {
    return HashKind::mix;
  }
  return std::nullopt;
}

// Every member of a cluster must use the same kind and seed, or two members would both (or
// neither) claim a packet. The seed is part of the cluster configuration.
inline constexpr std::uint64_t kDefaultMixSeed = 0x9e3779b97f4a7c15ull;

// The fields a packet is hashed on, already combined per protocol (see the top of this file).
struct FlowKey {
  std::uint32_t addr = 0;            // source IP, or source ^ destination IP
  std::uint16_t port = 0;            // source port, or source ^ destination port, or 0
  std::uint32_t tunnel_session = 0;  // L2TP: tunnel ID << 16 | session ID; otherwise 0

  constexpr bool operator==(const FlowKey&) const = default;
};

// Folds 32 bits into 10 by XORing the successive 10-bit slices: bits 0-9, 10-19, 20-29 and the
// remaining two bits 30-31. (The spec's IP_CLUSTER_HASH is not given; this is the fold that
// keeps every input bit.)
constexpr std::uint16_t fold10(std::uint32_t x) {
  return static_cast<std::uint16_t>((x ^ (x >> 10) ^ (x >> 20) ^ (x >> 30)) & 0x3ffu);
}

// The spec's hash: addr ^ port ^ (tunnel ID << 16 | session ID), folded. The tunnel ID goes in
// the high half so that a tunnel ID equal to its session ID does not cancel out.
constexpr WorksetId hash_xor(const FlowKey& k) {
  return WorksetId{fold10(k.addr ^ k.port ^ k.tunnel_session)};
}

// addr:port packed losslessly into 48 bits, the L2TP IDs XORed into the top 32, the seed XORed
// in, one fmix64 (the murmur3 finalizer, wire/mix.hpp), the top 10 bits.
constexpr WorksetId hash_mix(const FlowKey& k, std::uint64_t seed) {
  const std::uint64_t x =
      ((std::uint64_t{k.addr} << 16) | k.port) ^ (std::uint64_t{k.tunnel_session} << 32) ^ seed;
  return WorksetId{static_cast<std::uint16_t>(wire::fmix64(x) >> (64 - kWorksetBits))};
}

constexpr WorksetId workset_of(const FlowKey& k, HashKind kind, std::uint64_t seed) {
  return kind == HashKind::xor_fold ? hash_xor(k) : hash_mix(k, seed);
}

// Offsets shared by the TCP and UDP headers: the filter reads only the ports, so it does not
// need the full views.
inline constexpr std::size_t kL4SrcPort = 0;
inline constexpr std::size_t kL4DstPort = 2;
inline constexpr std::size_t kL4PortsSize = 4;
inline constexpr std::size_t kUdpHeaderSize = 8;

enum class KeyStatus : std::uint8_t {
  ok,
  fragment,   // a TCP/UDP fragment: non-first fragments carry no ports, reassemble first
  malformed,  // `error` says why
};

struct KeyExtraction {
  KeyStatus status = KeyStatus::ok;
  wire::Error error = wire::Error::malformed;  // meaningful when status == malformed
  FlowKey key;
};

// The flow key of a parsed IPv4 datagram. Fragments of TCP and UDP (first or not) yield
// `fragment`: the ports are only in the first, so all fragments of a datagram must be
// reassembled and the whole datagram classified, or they would scatter across members. Fragments
// of other protocols are keyed on addresses only, which every fragment carries, so they are
// classified as they are. Fails with `truncated` when the TCP/UDP header is shorter than the
// ports, and with the L2TP parser's error when UDP on port 1701 holds no valid L2TPv2 header.
[[gnu::always_inline]] inline KeyExtraction flow_key(const wire::Ipv4View& ip, bool forwarded) {
  const std::uint8_t proto = ip.protocol();
  const std::uint32_t src = ip.src().value();
  const std::uint32_t dst = ip.dst().value();
  if (proto != wire::ipproto::kTcp && proto != wire::ipproto::kUdp) {
    return {KeyStatus::ok, wire::Error::malformed, FlowKey{src ^ dst, 0, 0}};
  }
  if (ip.is_fragment()) {
    return {KeyStatus::fragment, wire::Error::malformed, FlowKey{}};
  }
  const wire::Bytes l4 = ip.payload();
  if (l4.size() < kL4PortsSize) {
    return {KeyStatus::malformed, wire::Error::truncated, FlowKey{}};
  }
  const std::uint16_t sport = wire::read_u16(l4, kL4SrcPort);
  const std::uint16_t dport = wire::read_u16(l4, kL4DstPort);
  if (forwarded) {
    return {KeyStatus::ok, wire::Error::malformed,
            FlowKey{src ^ dst, static_cast<std::uint16_t>(sport ^ dport), 0}};
  }
  if (proto == wire::ipproto::kUdp && (sport == wire::kL2tpPort || dport == wire::kL2tpPort)) {
    if (l4.size() < kUdpHeaderSize) {
      return {KeyStatus::malformed, wire::Error::truncated, FlowKey{}};
    }
    auto l2tp = wire::L2tpView::parse(l4.subspan(kUdpHeaderSize));
    if (!l2tp) {
      return {KeyStatus::malformed, l2tp.error(), FlowKey{}};
    }
    return {KeyStatus::ok, wire::Error::malformed,
            FlowKey{src, sport,
                    (std::uint32_t{l2tp->tunnel_id()} << 16) | std::uint32_t{l2tp->session_id()}}};
  }
  return {KeyStatus::ok, wire::Error::malformed, FlowKey{src, sport, 0}};
}

}  // namespace phalanx::filter
