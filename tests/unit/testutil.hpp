// Helpers shared by the unit tests: literal bytes from hex dumps.
#pragma once

#include <cstddef>
#include <cstdint>
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

// An IPv4 TCP segment of `payload` bytes (byte i = i * 7 + 3) from 198.18.0.1:80 to
// 198.18.0.2:40000, as the stack marks it for segmentation offload: DF, timestamps, IP ident
// 0xfffe and sequence number 0xfffff000 (so that the pieces wrap both), the TCP checksum field
// holding the pseudo-header sum only.
std::vector<std::byte> offloadable_datagram(std::size_t payload, std::uint8_t flags);

}  // namespace phalanx::test
