// The transmit ring: a fixed number of fixed-size frame slots in one allocation made at start.
// The stack writes each outgoing frame straight into a slot (reserve, write, commit); the driver
// drains the committed frames in order. Nothing is allocated per frame. When the ring is full the
// frame is not sent and the caller counts Drop::tx_queue_full.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <vector>

#include "wire/bytes.hpp"

namespace phalanx::stack {

class TxRing {
 public:
  TxRing(std::size_t slots, std::size_t slot_size)
      : slot_size_(slot_size), buffer_(slots * slot_size), lengths_(slots, 0) {
    if (slots == 0 || slot_size == 0) {
      std::abort();  // a config bug: the stack could never send
    }
  }

  std::size_t capacity() const { return lengths_.size(); }
  std::size_t size() const { return count_; }
  std::size_t free_slots() const { return capacity() - count_; }
  bool full() const { return count_ == capacity(); }
  std::size_t slot_size() const { return slot_size_; }

  // The next free slot, slot_size() bytes, to write a frame into; empty when the ring is full.
  // Nothing is queued until commit(); a second reserve() without commit() returns the same slot.
  wire::MutBytes reserve() {
    if (full()) {
      return {};
    }
    return {buffer_.data() + index(head_ + count_) * slot_size_, slot_size_};
  }

  // Queues the first `length` bytes of the slot reserve() returned. Committing without a
  // reservation or beyond the slot is a caller bug.
  void commit(std::size_t length) {
    if (full() || length > slot_size_) {
      std::abort();
    }
    lengths_[index(head_ + count_)] = length;
    ++count_;
  }

  // Calls tx(wire::Bytes) for each queued frame in order, then frees its slot. The span is valid
  // only during the call. tx must not call back into the stack.
  template <class F>
  void drain(F&& tx) {
    while (count_ > 0) {
      tx(wire::Bytes(buffer_.data() + head_ * slot_size_, lengths_[head_]));
      head_ = index(head_ + 1);
      --count_;
    }
  }

 private:
  std::size_t index(std::size_t i) const { return i % lengths_.size(); }

  std::size_t slot_size_;
  std::vector<std::byte> buffer_;
  std::vector<std::size_t> lengths_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

}  // namespace phalanx::stack
