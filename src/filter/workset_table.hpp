// The workset table (spec FIG. 5 "work assignment table 515", FIG. 9): who owns each of the
// 1024 worksets, in what state, and how much traffic each carried; and the per-packet filter
// that turns a frame into a verdict.
//
// What a member does with a frame (FIG. 9, DESIGN §3), as verdicts of classify():
//   not IPv4, or IPv4 not to the cluster IP         -> not_for_cluster (the local stack decides)
//   IPv4 that does not parse, ports missing, bad L2TP -> malformed (counted per wire::Error)
//   a TCP/UDP fragment to the cluster IP           -> needs_reassembly (see flow_key())
//   workset owned by me                            -> mine
//   not mine, I am a follower                      -> not_mine (drop)
//   not mine, I am master, workset unassigned, assigned but not acknowledged, or moving
//                                                  -> master_must_assign (assign if unassigned;
//                                                     hold the packet until the ack, then forward)
//   not mine, I am master, assigned and acknowledged:
//       forwarding mode                            -> forward_to_owner
//       unicast / multicast mode                   -> not_mine (the owner saw it too)
//
// The verdict of every workset is precomputed whenever the table changes, so classify() is a
// header parse, a hash and one byte loaded from a 1 KiB array. It allocates nothing. The IPv4
// header checksum is not verified here: the owner's stack verifies it, and a corrupted header can
// only send a packet to a member that then drops it.
//
// Workset states, and the only legal moves (transition() aborts on any other):
//   unassigned       --assign-->     assigned_unacked   (WorkAssign sent)
//   assigned_unacked --ack-->        assigned           (WorkAssignAck received)
//   assigned         --begin_move--> moving             (WorkDeassign sent to the old owner)
//   moving           --assign-->     assigned_unacked   (old owner acknowledged; new owner named)
//   any assigned state --release-->  unassigned         (owner died or left: back to the pool)
// Duplicated or stale control messages are the cluster layer's to filter (it reads state() first);
// reaching the table with one is a bug.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "filter/workset.hpp"
#include "wire/addr.hpp"
#include "wire/bytes.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/result.hpp"

namespace phalanx::filter {

enum class WorksetState : std::uint8_t { unassigned, assigned_unacked, assigned, moving };

std::string_view to_string(WorksetState s);

// DESIGN §3 "Distribution modes".
enum class DistributionMode : std::uint8_t { forwarding, unicast, multicast };

std::string_view to_string(DistributionMode m);

enum class VerdictKind : std::uint8_t {
  mine,                // this member processes it
  not_mine,            // drop: another member processes it
  master_must_assign,  // master: assign (if unassigned) and hold until the owner acknowledges
  forward_to_owner,    // master in forwarding mode: re-send to owner(workset)
  not_for_cluster,     // not IPv4 to the cluster IP: the local stack's business
  needs_reassembly,    // a TCP/UDP fragment to the cluster IP: reassemble, then classify_ipv4()
  malformed,           // dropped, counted per reason
};
inline constexpr std::size_t kVerdictKindCount = 7;

std::string_view to_string(VerdictKind k);

struct Verdict {
  VerdictKind kind = VerdictKind::malformed;
  // Meaningful for mine, not_mine, master_must_assign and forward_to_owner; 0 otherwise.
  WorksetId workset;

  constexpr bool operator==(const Verdict&) const = default;
};

struct WorksetLoad {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

struct WorksetTableConfig {
  wire::Ipv4Addr cluster_ip;
  MemberId self;  // must not be none
  HashKind hash = HashKind::xor_fold;
  std::uint64_t mix_seed = kDefaultMixSeed;  // used by HashKind::mix; the same on every member
  bool is_master = false;
  DistributionMode mode = DistributionMode::multicast;
};

class WorksetTable {
 public:
  // Starts with every workset unassigned. A config whose `self` is none aborts.
  explicit WorksetTable(const WorksetTableConfig& config);

  // Classifies one Ethernet frame (at most one 802.1Q tag, no FCS). `forwarded` selects the
  // forward filter (router/firewall use): the destination is not checked against the cluster IP
  // and the key is symmetric in source and destination. Never fails: bad input is a `malformed`
  // verdict, counted under its wire::Error.
  //
  // The common case (untagged IPv4 without options, unfragmented TCP or non-L2TP UDP to the
  // cluster IP) is decided inline from fixed offsets; everything else, and anything odd, takes
  // classify_reference(), which gives the same verdict through the wire views (the fuzz target
  // checks that they agree).
  [[gnu::always_inline]] Verdict classify(wire::Bytes frame, bool forwarded = false) {
    using wire::read_u16;
    using wire::read_u32;
    using wire::read_u8;
    using IP = wire::Ipv4View;
    constexpr std::size_t kIp = wire::EthernetView::kHeaderSize;
    constexpr std::size_t kL4 = kIp + IP::kMinHeaderSize;
    if (!forwarded && frame.size() >= kL4 + kL4PortsSize) {
      // Every field below lies within the first kL4 + 4 bytes. The tests are combined without
      // short-circuits: TCP and UDP arrive in random order, and a branch per protocol would be
      // mispredicted often enough to cost more than the whole classification.
      const std::size_t total = read_u16(frame, kIp + IP::kTotalLength);
      const std::uint8_t proto = read_u8(frame, kIp + IP::kProtocol);
      const std::uint16_t sport = read_u16(frame, kL4 + kL4SrcPort);
      const std::uint16_t dport = read_u16(frame, kL4 + kL4DstPort);
      // Each test as 0 or 1, combined with bitwise operators.
      const unsigned tcp = proto == wire::ipproto::kTcp;
      const unsigned udp = proto == wire::ipproto::kUdp;
      const unsigned l2tp = unsigned{sport == wire::kL2tpPort} | unsigned{dport == wire::kL2tpPort};
      const unsigned ipv4 = read_u16(frame, wire::EthernetView::kType) == wire::ethertype::kIpv4;
      const unsigned no_options = read_u8(frame, kIp + IP::kVersionIhl) == kIpv4NoOptions;
      const unsigned to_cluster = read_u32(frame, kIp + IP::kDst) == config_.cluster_ip.value();
      const unsigned whole = (read_u16(frame, kIp + IP::kFlagsFragment) & kFragmentBits) == 0;
      const unsigned sized = unsigned{total >= IP::kMinHeaderSize + kL4PortsSize} &
                             unsigned{kIp + total <= frame.size()};
      const unsigned fast =
          ipv4 & no_options & to_cluster & whole & sized & (tcp | (udp & (l2tp ^ 1u)));
      if (fast) {
        return counted(workset_for(FlowKey{read_u32(frame, kIp + IP::kSrc), sport, 0}));
      }
    }
    return classify_reference(frame, forwarded);
  }

  // classify() without the inline fast path: every frame through the Ethernet and IPv4 views.
  Verdict classify_reference(wire::Bytes frame, bool forwarded = false);

  // The same from the IPv4 header on: for a datagram the caller reassembled.
  Verdict classify_ipv4(wire::Bytes datagram, bool forwarded = false);

  // The workset of a key under this table's hash.
  WorksetId workset_for(const FlowKey& key) const {
    return workset_of(key, config_.hash, config_.mix_seed);
  }

  // Mutators for the master and follower logic. Each is one legal transition (see the top of
  // this file); anything else aborts with "workset N: old => new".
  void assign(WorksetId ws, MemberId owner);  // unassigned|moving -> assigned_unacked
  void ack(WorksetId ws);                     // assigned_unacked -> assigned
  void begin_move(WorksetId ws);              // assigned -> moving
  void release(WorksetId ws);                 // assigned_unacked|assigned|moving -> unassigned

  void set_master(bool is_master);
  void set_mode(DistributionMode mode);
  bool is_master() const { return config_.is_master; }
  DistributionMode mode() const { return config_.mode; }
  const WorksetTableConfig& config() const { return config_; }

  MemberId owner(WorksetId ws) const { return owner_[ws.value()]; }
  WorksetState state(WorksetId ws) const { return state_[ws.value()]; }
  // How many worksets `member` owns, in any assigned state.
  std::size_t worksets_of(MemberId member) const;

  void add_load(WorksetId ws, std::uint64_t packets, std::uint64_t bytes) {
    load_[ws.value()].packets += packets;
    load_[ws.value()].bytes += bytes;
  }
  WorksetLoad load(WorksetId ws) const { return load_[ws.value()]; }

  std::uint64_t count(VerdictKind k) const { return verdict_counts_[static_cast<std::size_t>(k)]; }
  std::uint64_t malformed_count(wire::Error e) const {
    return malformed_counts_[static_cast<std::size_t>(e)];
  }

  // Aborts with a message when the table is inconsistent: an unassigned workset with an owner or
  // an assigned one without, a stale precomputed verdict, counters that do not add up.
  void check_invariants() const;

 private:
  static constexpr std::uint8_t kIpv4NoOptions = 0x45;  // version 4, IHL 5 words
  static constexpr std::uint16_t kFragmentBits =
      wire::Ipv4View::kFlagMoreFragments | wire::Ipv4View::kFragmentOffsetMask;

  // The verdict for a packet of `ws`, counted.
  Verdict counted(WorksetId ws) {
    const VerdictKind kind = verdict_[ws.value()];
    ++verdict_counts_[static_cast<std::size_t>(kind)];
    return Verdict{kind, ws};
  }
  Verdict counted(VerdictKind k) {
    ++verdict_counts_[static_cast<std::size_t>(k)];
    return Verdict{k, WorksetId{}};
  }
  Verdict count_malformed(wire::Error e) {
    ++malformed_counts_[static_cast<std::size_t>(e)];
    return counted(VerdictKind::malformed);
  }

  void transition(WorksetId ws, WorksetState to, MemberId new_owner);
  VerdictKind compute_verdict(std::size_t i) const;
  void recompute_all();

  WorksetTableConfig config_;
  // Hot: the verdict for a packet of each workset, recomputed on every change.
  std::array<VerdictKind, kWorksetCount> verdict_{};
  std::array<MemberId, kWorksetCount> owner_{};
  std::array<WorksetState, kWorksetCount> state_{};
  std::array<WorksetLoad, kWorksetCount> load_{};
  std::array<std::uint64_t, kVerdictKindCount> verdict_counts_{};
  std::array<std::uint64_t, wire::kErrorCount> malformed_counts_{};
};

}  // namespace phalanx::filter
