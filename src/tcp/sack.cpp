#include "tcp/sack.hpp"

#include <algorithm>

namespace phalanx::tcp {

void Scoreboard::add(std::span<const wire::TcpSackBlock> blocks, SeqNum snd_una, SeqNum snd_max) {
  for (const wire::TcpSackBlock& b : blocks) {
    SeqNum left{b.left};
    SeqNum right{b.right};
    // Ignore blocks that are empty, inverted, or not above snd_una within what we sent.
    if (!(left < right) || right <= snd_una || snd_max < right) {
      continue;
    }
    insert(seq_max(left, snd_una), right);
  }
}

void Scoreboard::insert(SeqNum left, SeqNum right) {
  std::size_t first = 0;
  while (first < count_ && ranges_[first].right < left) {
    ++first;
  }
  std::size_t last = first;
  while (last < count_ && ranges_[last].left <= right) {
    ++last;
  }
  if (first < last) {
    const Range merged{seq_min(left, ranges_[first].left), seq_max(right, ranges_[last - 1].right)};
    const std::size_t removed = last - first - 1;
    std::move(ranges_.begin() + static_cast<std::ptrdiff_t>(last),
              ranges_.begin() + static_cast<std::ptrdiff_t>(count_),
              ranges_.begin() + static_cast<std::ptrdiff_t>(first) + 1);
    count_ -= removed;
    ranges_[first] = merged;
    return;
  }
  if (count_ == kMaxRanges) {
    return;  // bounded: forget this block
  }
  std::move_backward(ranges_.begin() + static_cast<std::ptrdiff_t>(first),
                     ranges_.begin() + static_cast<std::ptrdiff_t>(count_),
                     ranges_.begin() + static_cast<std::ptrdiff_t>(count_) + 1);
  ranges_[first] = Range{left, right};
  ++count_;
}

void Scoreboard::advance(SeqNum snd_una) {
  std::size_t drop = 0;
  while (drop < count_ && ranges_[drop].right <= snd_una) {
    ++drop;
  }
  std::move(ranges_.begin() + static_cast<std::ptrdiff_t>(drop),
            ranges_.begin() + static_cast<std::ptrdiff_t>(count_), ranges_.begin());
  count_ -= drop;
  if (count_ > 0 && ranges_[0].left < snd_una) {
    ranges_[0].left = snd_una;
  }
}

std::uint32_t Scoreboard::sacked_bytes() const {
  std::uint32_t n = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    n += seq_len(ranges_[i].left, ranges_[i].right);
  }
  return n;
}

bool Scoreboard::is_sacked(SeqNum s) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (seq_in(s, ranges_[i].left, ranges_[i].right)) {
      return true;
    }
  }
  return false;
}

SeqNum Scoreboard::next_unsacked(SeqNum s) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (seq_in(s, ranges_[i].left, ranges_[i].right)) {
      s = ranges_[i].right;
    }
  }
  return s;
}

SeqNum Scoreboard::next_sacked(SeqNum s, SeqNum fallback) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (s < ranges_[i].left) {
      return seq_min(ranges_[i].left, fallback);
    }
  }
  return fallback;
}

std::uint32_t Scoreboard::unsacked_between(SeqNum from, SeqNum to) const {
  if (!(from < to)) {
    return 0;
  }
  std::uint32_t n = seq_len(from, to);
  for (std::size_t i = 0; i < count_; ++i) {
    const SeqNum l = seq_max(ranges_[i].left, from);
    const SeqNum r = seq_min(ranges_[i].right, to);
    if (l < r) {
      n -= seq_len(l, r);
    }
  }
  return n;
}

}  // namespace phalanx::tcp
