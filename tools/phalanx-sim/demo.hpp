// `phalanx-sim --demo`: the guided tour that `make demo` runs (see demo.cpp).
#pragma once

namespace phalanx::sim {

// Prints a timeline of a simulated three-member cluster through election, a follower crash and
// a master crash. Returns the process exit code: 0 when the cluster recovered each time.
int run_demo();

}  // namespace phalanx::sim
