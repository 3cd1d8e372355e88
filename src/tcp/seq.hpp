// TCP sequence numbers (RFC 9293 §3.4): 32-bit values compared modulo 2^32. `a < b` means "a is
// before b" when the two are less than 2^31 apart, which TCP guarantees for any two numbers it
// compares (windows are at most 2^30 bytes, RFC 7323 §2.3).
#pragma once

#include <cstdint>

namespace phalanx::tcp {

class SeqNum {
 public:
  constexpr SeqNum() = default;
  constexpr explicit SeqNum(std::uint32_t raw) : v_(raw) {}

  constexpr std::uint32_t raw() const { return v_; }

  constexpr SeqNum operator+(std::uint32_t n) const { return SeqNum{v_ + n}; }
  constexpr SeqNum operator-(std::uint32_t n) const { return SeqNum{v_ - n}; }
  constexpr SeqNum& operator+=(std::uint32_t n) {
    v_ += n;
    return *this;
  }
  constexpr SeqNum& operator-=(std::uint32_t n) {
    v_ -= n;
    return *this;
  }
  // Signed distance from `o` to this number: positive when this is after `o`.
  constexpr std::int32_t operator-(SeqNum o) const { return static_cast<std::int32_t>(v_ - o.v_); }

  constexpr bool operator==(const SeqNum&) const = default;
  friend constexpr bool operator<(SeqNum a, SeqNum b) { return (a - b) < 0; }
  friend constexpr bool operator>(SeqNum a, SeqNum b) { return (a - b) > 0; }
  friend constexpr bool operator<=(SeqNum a, SeqNum b) { return (a - b) <= 0; }
  friend constexpr bool operator>=(SeqNum a, SeqNum b) { return (a - b) >= 0; }

 private:
  std::uint32_t v_ = 0;
};

constexpr SeqNum seq_max(SeqNum a, SeqNum b) {
  return a < b ? b : a;
}
constexpr SeqNum seq_min(SeqNum a, SeqNum b) {
  return a < b ? a : b;
}

// Unsigned byte count from `from` to `to`, for `from <= to`.
constexpr std::uint32_t seq_len(SeqNum from, SeqNum to) {
  return to.raw() - from.raw();
}

// True when `s` lies in [lo, hi).
constexpr bool seq_in(SeqNum s, SeqNum lo, SeqNum hi) {
  return lo <= s && s < hi;
}

}  // namespace phalanx::tcp
