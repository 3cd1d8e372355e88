// A byte ring with a capacity fixed at construction: the send and receive buffers of a
// connection. Offsets are logical, from the oldest byte. Bytes beyond size() may be written in
// place (out-of-order data) and committed later, so reassembly needs no other storage.
//
// The storage is not initialised: the kernel backs a page only once a byte in it is written, so
// a connection that moves little costs little memory however large its buffers are.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "wire/bytes.hpp"

namespace phalanx::tcp {

class RingBuffer {
 public:
  RingBuffer() = default;
  explicit RingBuffer(std::size_t capacity)
      : storage_(std::make_unique_for_overwrite<std::byte[]>(capacity)), capacity_(capacity) {}

  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return size_; }
  std::size_t free() const { return capacity() - size_; }
  bool empty() const { return size_ == 0; }

  // Appends as much of `data` as fits; returns the count.
  std::size_t push(wire::Bytes data) {
    const std::size_t n = std::min(data.size(), free());
    write_at(size_, data.first(n));
    size_ += n;
    return n;
  }

  // Writes `data` at logical offset `off` (which may be past size(); off + data.size() must be
  // within capacity) without changing size().
  void write_at(std::size_t off, wire::Bytes data) {
    if (off + data.size() > capacity()) {
      std::abort();  // caller bug: the window never exceeds the buffer
    }
    std::size_t done = 0;
    while (done < data.size()) {
      const std::size_t pos = index(off + done);
      const std::size_t n = std::min(data.size() - done, capacity() - pos);
      std::memcpy(storage_.get() + pos, data.data() + done, n);
      done += n;
    }
  }

  // Makes n bytes written by write_at(size(), ...) part of the buffer.
  void commit(std::size_t n) {
    if (n > free()) {
      std::abort();
    }
    size_ += n;
  }

  // Removes n bytes from the front.
  void pop(std::size_t n) {
    if (n > size_) {
      std::abort();
    }
    head_ = capacity() == 0 ? 0 : (head_ + n) % capacity();
    size_ -= n;
  }

  // Up to max_len bytes from logical offset `off`, stopping at size() and at the wrap point.
  wire::Bytes contiguous(std::size_t off, std::size_t max_len) const {
    if (off >= size_) {
      return {};
    }
    const std::size_t pos = index(off);
    const std::size_t n = std::min({max_len, size_ - off, capacity() - pos});
    return {storage_.get() + pos, n};
  }

  // Copies up to out.size() bytes from logical offset `off`; returns the count.
  std::size_t read(std::size_t off, wire::MutBytes out) const {
    std::size_t done = 0;
    while (done < out.size()) {
      const wire::Bytes part = contiguous(off + done, out.size() - done);
      if (part.empty()) {
        break;
      }
      std::memcpy(out.data() + done, part.data(), part.size());
      done += part.size();
    }
    return done;
  }

  void clear() {
    head_ = 0;
    size_ = 0;
  }

 private:
  std::size_t index(std::size_t off) const { return (head_ + off) % capacity(); }

  std::unique_ptr<std::byte[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace phalanx::tcp
