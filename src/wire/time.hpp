// Time in every layer: a duration since the driver's origin. The pure layers never read a clock
// (DESIGN §2, STYLE 4): the driver (runtime's MonotonicClock, the simulator's virtual clock)
// passes `now` in, and they answer with the next Time they need to be woken, or kNever.
#pragma once

#include <chrono>

namespace phalanx {

using Duration = std::chrono::nanoseconds;
using Time = std::chrono::nanoseconds;  // since the driver's origin, not a wall-clock instant
inline constexpr Time kNever = Time::max();

}  // namespace phalanx
