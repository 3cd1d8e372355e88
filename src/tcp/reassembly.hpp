// The receive side's out-of-order ranges (RFC 9293 §3.10.7.4 "seventh": segments beyond rcv_nxt
// are kept and delivered when the gap fills) and the SACK blocks describing them (RFC 2018 §4:
// the first block holds the most recently received segment, then the most recently reported).
// The bytes themselves sit in the receive ring's free space; this only tracks which ranges hold
// data. The number of ranges is bounded; memory is reserved once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tcp/seq.hpp"
#include "wire/tcp.hpp"

namespace phalanx::tcp {

class Reassembly {
 public:
  struct Range {
    SeqNum left;
    SeqNum right;               // one past the last byte
    std::uint64_t touched = 0;  // recency, for SACK block order
  };

  Reassembly() = default;
  explicit Reassembly(std::size_t max_ranges) : max_(max_ranges) { ranges_.reserve(max_ranges); }

  // Records [left, right) as held. Returns false (and records nothing) when it would need more
  // ranges than the bound.
  bool add(SeqNum left, SeqNum right);

  // Removes and returns the bytes now contiguous with `rcv_nxt` (0 when the first range starts
  // later). Ranges entirely below rcv_nxt are dropped.
  std::uint32_t take_contiguous(SeqNum rcv_nxt);

  // Up to out.size() SACK blocks, most recent first.
  std::size_t sack_blocks(std::span<wire::TcpSackBlock> out) const;

  bool empty() const { return ranges_.empty(); }
  std::size_t range_count() const { return ranges_.size(); }
  std::span<const Range> ranges() const { return ranges_; }  // sorted by left edge
  void clear() { ranges_.clear(); }

 private:
  std::vector<Range> ranges_;
  std::size_t max_ = 16;
  std::uint64_t clock_ = 0;
};

}  // namespace phalanx::tcp
