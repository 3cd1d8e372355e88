// Counters as a list of names and values, drops first by convention ("drop.reason"): what a
// node reports, and what the driver logs and shows on the status endpoint (STYLE 6).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace phalanx::node {

struct NamedCount {
  std::string name;
  std::uint64_t value = 0;
};
using CounterList = std::vector<NamedCount>;

}  // namespace phalanx::node
