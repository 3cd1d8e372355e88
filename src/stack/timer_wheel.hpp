// A hashed timer wheel (Varghese & Lauck, "scheme 6") over dense ids [0, capacity): one
// deadline per id, O(1) to schedule, move or cancel, and expire() costs the slots it passes plus
// the entries in them. The stack keys it by each connection's next_deadline(), so on_timer()
// work follows the timers that come due, not the number of connections.
//
// Slot i holds the ids whose deadline falls in a tick congruent to i modulo the slot count;
// deadlines further out than one turn wait in their slot and are skipped until their turn. A
// bitmap of non-empty slots makes next_deadline() a scan of 64-bit words. next_deadline() is
// exact for the current tick and for the first occupied slot when that slot holds an entry of
// this turn; otherwise it returns the slot's start (an early, harmless wake-up).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "stack/types.hpp"

namespace phalanx::stack {

class TimerWheel {
 public:
  static constexpr std::uint32_t kNil = 0xffffffffu;

  // `slots` must be a power of two (and a multiple of 64); `tick` the width of one slot.
  TimerWheel(std::size_t capacity, Duration tick = std::chrono::milliseconds(1),
             std::size_t slots = 4096)
      : tick_(tick.count()),
        mask_(slots - 1),
        nodes_(capacity),
        heads_(slots, kNil),
        occupied_(slots / 64, 0) {
    if (tick_ <= 0 || slots < 64 || !std::has_single_bit(slots)) {
      std::abort();  // a caller bug: the wheel would not index
    }
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return nodes_.size(); }

  // Arms (or moves) id's timer; kNever cancels it. A deadline already past fires at the next
  // expire().
  void schedule(std::uint32_t id, Time deadline) {
    unlink(id);
    if (deadline == kNever) {
      return;
    }
    Node& n = nodes_[id];
    n.deadline = deadline;
    link(id, std::max(tick_of(deadline), cursor_));
    if (cache_valid_ && deadline < cache_) {
      cache_ = deadline;
    }
  }

  void cancel(std::uint32_t id) { unlink(id); }

  Time deadline(std::uint32_t id) const {
    return nodes_[id].slot == kNil ? kNever : nodes_[id].deadline;
  }

  // Unschedules every id whose deadline is <= now and calls f(id) for each, in no particular
  // order; f may schedule any id again. When f returns false it has declined that id: it and the
  // remaining due ids stay armed (due), and expire() returns false.
  template <class F>
  bool expire(Time now, F&& f) {
    const std::int64_t now_tick = tick_of(now);
    due_.clear();
    if (now_tick >= cursor_) {
      const std::int64_t span = std::min<std::int64_t>(now_tick - cursor_, mask_);
      for (std::int64_t t = now_tick - span; t <= now_tick; ++t) {
        collect(static_cast<std::size_t>(t) & mask_, now);
      }
      cursor_ = now_tick;
    } else {
      collect(static_cast<std::size_t>(cursor_) & mask_, now);
    }
    cache_valid_ = false;
    for (std::size_t i = 0; i < due_.size(); ++i) {
      if (!f(due_[i])) {
        // f declined due_[i] and everything after it: they stay armed, and due.
        for (std::size_t j = i; j < due_.size(); ++j) {
          if (nodes_[due_[j]].slot == kNil) {  // f did not re-arm it meanwhile
            schedule(due_[j], nodes_[due_[j]].deadline);
          }
        }
        return false;
      }
    }
    return true;
  }

  // The earliest time expire() may have work; kNever when empty. Never late; may be early.
  Time next_deadline() const {
    if (size_ == 0) {
      return kNever;
    }
    if (!cache_valid_) {
      cache_ = compute_next();
      cache_valid_ = true;
    }
    return cache_;
  }

 private:
  struct Node {
    std::uint32_t prev = kNil;
    std::uint32_t next = kNil;
    std::uint32_t slot = kNil;  // kNil: not armed
    Time deadline{};
  };

  std::int64_t tick_of(Time t) const { return t.count() / tick_; }

  void link(std::uint32_t id, std::int64_t tick) {
    const auto slot = static_cast<std::uint32_t>(static_cast<std::size_t>(tick) & mask_);
    Node& n = nodes_[id];
    n.slot = slot;
    n.prev = kNil;
    n.next = heads_[slot];
    if (n.next != kNil) {
      nodes_[n.next].prev = id;
    }
    heads_[slot] = id;
    occupied_[slot / 64] |= std::uint64_t{1} << (slot % 64);
    ++size_;
  }

  void unlink(std::uint32_t id) {
    Node& n = nodes_[id];
    if (n.slot == kNil) {
      return;
    }
    if (n.prev != kNil) {
      nodes_[n.prev].next = n.next;
    } else {
      heads_[n.slot] = n.next;
    }
    if (n.next != kNil) {
      nodes_[n.next].prev = n.prev;
    }
    if (heads_[n.slot] == kNil) {
      occupied_[n.slot / 64] &= ~(std::uint64_t{1} << (n.slot % 64));
    }
    n.slot = n.prev = n.next = kNil;
    --size_;
  }

  void collect(std::size_t slot, Time now) {
    for (std::uint32_t id = heads_[slot]; id != kNil;) {
      const std::uint32_t next = nodes_[id].next;
      if (nodes_[id].deadline <= now) {
        unlink(id);
        due_.push_back(id);
      }
      id = next;
    }
  }

  // The smallest deadline of this turn in `slot` (tick `tick`), or kNever.
  Time min_in(std::size_t slot, std::int64_t tick) const {
    Time best = kNever;
    for (std::uint32_t id = heads_[slot]; id != kNil; id = nodes_[id].next) {
      if (tick_of(nodes_[id].deadline) <= tick && nodes_[id].deadline < best) {
        best = nodes_[id].deadline;
      }
    }
    return best;
  }

  // Looks at up to kProbes occupied slots for an entry of their turn; when the first slots hold
  // only later turns, the first of them is the (early) answer should no exact one turn up.
  Time compute_next() const {
    constexpr int kProbes = 16;
    const std::size_t slots = heads_.size();
    Time fallback = kNever;
    int probes = 0;
    for (std::size_t k = 0; k <= slots && probes < kProbes;) {
      const std::int64_t tick = cursor_ + static_cast<std::int64_t>(k);
      const std::size_t slot = static_cast<std::size_t>(tick) & mask_;
      const std::uint64_t word = occupied_[slot / 64] >> (slot % 64);
      if (word == 0) {
        k += 64 - slot % 64;  // the rest of this word is empty
        continue;
      }
      const auto skip = static_cast<std::size_t>(std::countr_zero(word));
      if (skip > 0) {
        k += skip;
        continue;
      }
      ++probes;
      const Time exact = min_in(slot, tick);
      if (exact != kNever) {
        return exact;  // of this turn: before any entry of a later turn
      }
      if (k > 0 && fallback == kNever) {
        fallback = Time{tick * tick_};  // entries of a later turn only: wake early, harmlessly
      }
      ++k;
    }
    return std::min(fallback, Time{(cursor_ + static_cast<std::int64_t>(slots)) * tick_});
  }

  std::int64_t tick_;
  std::size_t mask_;
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> heads_;
  std::vector<std::uint64_t> occupied_;
  std::vector<std::uint32_t> due_;
  std::int64_t cursor_ = 0;  // the tick of the latest expire()
  std::size_t size_ = 0;
  mutable Time cache_ = kNever;
  mutable bool cache_valid_ = false;
};

}  // namespace phalanx::stack
