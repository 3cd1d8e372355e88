// Helpers shared by the unit tests: literal bytes from hex dumps.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace phalanx::test {

// Bytes from a hex dump: whitespace and ':' are ignored; anything else but hex digits aborts
// (a typo in a test literal is a test bug).
std::vector<std::byte> hex(std::string_view text);

inline std::span<const std::byte> span(const std::vector<std::byte>& v) {
  return {v.data(), v.size()};
}

}  // namespace phalanx::test
