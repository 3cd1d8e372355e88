// The driver's clock: monotonic time since the clock was made (in phalanxd: process start), as
// the `Time` the pure cores take (wire/time.hpp, a std::chrono::nanoseconds). The cores never
// read it themselves (DESIGN §2); the event loop reads it once per wakeup and passes it down.
#pragma once

#include <chrono>

#include "wire/time.hpp"

namespace phalanx::runtime {

using phalanx::Time;  // since the clock's origin (wire/time.hpp), as every layer takes it

class MonotonicClock {
 public:
  MonotonicClock() : origin_(std::chrono::steady_clock::now()) {}

  Time now() const { return std::chrono::steady_clock::now() - origin_; }

  // The steady_clock instant of a Time, for arming timers that take absolute instants.
  std::chrono::steady_clock::time_point to_steady(Time t) const { return origin_ + t; }

 private:
  std::chrono::steady_clock::time_point origin_;
};

}  // namespace phalanx::runtime
