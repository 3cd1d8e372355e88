// The transmit queue: frames waiting for the driver's next drain(), in one byte buffer and one
// table of frame entries, both allocated at start. The stack writes each outgoing frame straight
// into the buffer (reserve, write, commit); drain() hands them all out in order and empties the
// queue, so the buffer fills from its start between drains and never wraps. Nothing is allocated
// per frame. When there is no room the frame is not sent and the caller counts
// Drop::tx_queue_full.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "wire/bytes.hpp"

namespace phalanx::stack {

// How a frame from drain() is to be sent.
struct TxMeta {
  // 0: a complete frame, sent as it is. Otherwise an IPv4 TCP segment longer than one MSS for
  // the link to cut into pieces of gso_size payload bytes each (segmentation offload: Linux GSO,
  // a NIC's TSO; stack/gso.hpp does the same in software). Its TCP checksum field holds only
  // the pseudo-header sum (wire::TcpRepr::Checksum::partial).
  std::uint16_t gso_size = 0;
};

class TxRing {
 public:
  // At most `frames` frames of `frame_size` bytes each; a larger frame (reserve(n)) uses the
  // room of several.
  TxRing(std::size_t frames, std::size_t frame_size)
      : frame_size_((frame_size + kAlign - 1) & ~(kAlign - 1)), buffer_(frames * frame_size_) {
    if (frames == 0 || frame_size == 0) {
      std::abort();  // a config bug: the stack could never send
    }
    entries_.reserve(frames);
    max_frames_ = frames;
  }

  std::size_t capacity() const { return max_frames_; }
  std::size_t size() const { return entries_.size(); }
  std::size_t slot_size() const { return frame_size_; }
  // Frames of slot_size() bytes that still fit.
  std::size_t free_slots() const {
    return std::min(max_frames_ - entries_.size(), (buffer_.size() - used_) / frame_size_);
  }
  bool full() const { return free_slots() == 0; }
  // Whether a frame of `bytes` bytes fits.
  bool has_room(std::size_t bytes) const {
    return entries_.size() < max_frames_ && buffer_.size() - used_ >= bytes;
  }

  // Room for the next frame, `bytes` long (default: slot_size()); empty when it does not fit.
  // Nothing is queued until commit(); a second reserve() without commit() returns the same room.
  wire::MutBytes reserve(std::size_t bytes = 0) {
    if (bytes == 0) {
      bytes = frame_size_;
    }
    if (!has_room(bytes)) {
      return {};
    }
    reserved_ = bytes;
    return {buffer_.data() + used_, bytes};
  }

  // Queues the first `length` bytes of the room reserve() returned. Committing without a
  // reservation or beyond it is a caller bug.
  void commit(std::size_t length, TxMeta meta = {}) {
    if (length > reserved_) {
      std::abort();
    }
    entries_.push_back({used_, length, meta});
    used_ += (length + kAlign - 1) & ~(kAlign - 1);
    reserved_ = 0;
  }

  // Calls tx(wire::Bytes, TxMeta) for each queued frame in order, then empties the queue. A span
  // is valid only during its call. tx must not call back into the stack.
  template <class F>
  void drain(F&& tx) {
    for (const Entry& e : entries_) {
      tx(wire::Bytes(buffer_.data() + e.offset, e.length), e.meta);
    }
    entries_.clear();
    used_ = 0;
  }

 private:
  static constexpr std::size_t kAlign = 64;  // each frame starts on a cache line
  struct Entry {
    std::size_t offset;
    std::size_t length;
    TxMeta meta;
  };

  std::size_t frame_size_;
  std::size_t max_frames_ = 0;
  std::vector<std::byte> buffer_;
  std::vector<Entry> entries_;
  std::size_t used_ = 0;
  std::size_t reserved_ = 0;
};

}  // namespace phalanx::stack
