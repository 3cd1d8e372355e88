// The driver's clock: monotonic time since the clock was made (in phalanxd: process start), as
// the `Time` the pure cores take (cluster::Time, a std::chrono::nanoseconds). The cores never
// read it themselves (DESIGN §2); the event loop reads it once per wakeup and passes it down.
#pragma once

#include <chrono>

namespace phalanx::runtime {

using Time = std::chrono::nanoseconds;  // since the clock's origin; same as cluster::Time

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
