#include "tcp/reassembly.hpp"

#include <algorithm>

namespace phalanx::tcp {

bool Reassembly::add(SeqNum left, SeqNum right) {
  if (!(left < right)) {
    return true;
  }
  // Ranges [first, last) overlap or touch the new one and merge into it.
  std::size_t first = 0;
  while (first < ranges_.size() && ranges_[first].right < left) {
    ++first;
  }
  std::size_t last = first;
  while (last < ranges_.size() && ranges_[last].left <= right) {
    ++last;
  }
  if (first == last && ranges_.size() >= max_) {
    return false;
  }
  Range merged{left, right, ++clock_};
  if (first < last) {
    merged.left = seq_min(left, ranges_[first].left);
    merged.right = seq_max(right, ranges_[last - 1].right);
    ranges_.erase(ranges_.begin() + static_cast<std::ptrdiff_t>(first) + 1,
                  ranges_.begin() + static_cast<std::ptrdiff_t>(last));
    ranges_[first] = merged;
  } else {
    ranges_.insert(ranges_.begin() + static_cast<std::ptrdiff_t>(first), merged);
  }
  return true;
}

std::uint32_t Reassembly::take_contiguous(SeqNum rcv_nxt) {
  while (!ranges_.empty() && ranges_.front().right <= rcv_nxt) {
    ranges_.erase(ranges_.begin());
  }
  if (ranges_.empty() || rcv_nxt < ranges_.front().left) {
    return 0;
  }
  const std::uint32_t n = seq_len(rcv_nxt, ranges_.front().right);
  ranges_.erase(ranges_.begin());
  return n;
}

std::size_t Reassembly::sack_blocks(std::span<wire::TcpSackBlock> out) const {
  std::size_t n = 0;
  std::uint64_t below = ~std::uint64_t{0};
  // Repeatedly take the most recently touched range older than the last one taken.
  while (n < out.size()) {
    const Range* best = nullptr;
    for (const Range& r : ranges_) {
      if (r.touched < below && (best == nullptr || r.touched > best->touched)) {
        best = &r;
      }
    }
    if (best == nullptr) {
      break;
    }
    out[n++] = wire::TcpSackBlock{best->left.raw(), best->right.raw()};
    below = best->touched;
  }
  return n;
}

}  // namespace phalanx::tcp
