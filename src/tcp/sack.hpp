// The send side's SACK scoreboard (RFC 6675 §3): which bytes above snd_una the peer reported
// holding. Ranges are kept sorted and merged; their number is bounded (extra blocks are
// ignored, which only makes recovery more conservative).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "tcp/seq.hpp"
#include "wire/tcp.hpp"

namespace phalanx::tcp {

class Scoreboard {
 public:
  static constexpr std::size_t kMaxRanges = 32;
  struct Range {
    SeqNum left;
    SeqNum right;
  };

  // Adds the blocks of one ACK, clipped to (snd_una, snd_max]; blocks outside are ignored
  // (RFC 2018 §5: D-SACK and stale blocks carry nothing new for us).
  void add(std::span<const wire::TcpSackBlock> blocks, SeqNum snd_una, SeqNum snd_max);
  // Forgets everything below the new snd_una.
  void advance(SeqNum snd_una);
  void clear() { count_ = 0; }

  bool empty() const { return count_ == 0; }
  // Bytes SACKed above snd_una.
  std::uint32_t sacked_bytes() const;
  // One past the highest SACKed byte; `fallback` when empty.
  SeqNum highest(SeqNum fallback) const { return empty() ? fallback : ranges_[count_ - 1].right; }
  bool is_sacked(SeqNum s) const;
  // The first byte at or after `s` that is not SACKed.
  SeqNum next_unsacked(SeqNum s) const;
  // The first SACKed byte after `s` (where a retransmission starting at s must stop), or
  // `fallback` when none.
  SeqNum next_sacked(SeqNum s, SeqNum fallback) const;
  // Bytes in [from, to) not SACKed.
  std::uint32_t unsacked_between(SeqNum from, SeqNum to) const;
  std::span<const Range> ranges() const { return {ranges_.data(), count_}; }

 private:
  void insert(SeqNum left, SeqNum right);
  std::array<Range, kMaxRanges> ranges_{};
  std::size_t count_ = 0;
};

}  // namespace phalanx::tcp
