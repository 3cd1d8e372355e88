// A token bucket with injected time: one event costs `interval`, at most `burst` events at once.
#pragma once

#include <algorithm>
#include <cstdint>

#include "stack/types.hpp"

namespace phalanx::stack {

class TokenBucket {
 public:
  TokenBucket() = default;
  // Starts full. interval > 0, burst >= 1.
  TokenBucket(Duration interval, std::uint32_t burst, Time now)
      : interval_(interval), burst_(interval * burst), credit_(burst_), last_(now) {}

  // Whether an event is allowed now, without spending it.
  bool can_take(Time now) const { return credit_at(now) >= interval_; }
  // Spends one event if allowed.
  bool take(Time now) {
    credit_ = credit_at(now);
    last_ = std::max(last_, now);
    if (credit_ < interval_) {
      return false;
    }
    credit_ -= interval_;
    return true;
  }

 private:
  Duration credit_at(Time now) const {
    return now > last_ ? std::min(burst_, credit_ + (now - last_)) : credit_;
  }

  Duration interval_{1};
  Duration burst_{1};
  Duration credit_{0};
  Time last_{0};
};

}  // namespace phalanx::stack
