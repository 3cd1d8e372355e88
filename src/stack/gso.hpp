// Segmentation offload in software: cuts a TCP segment marked TxMeta::gso_size into the frames
// Linux GSO (tcp_gso_segment, inet_gso_segment) or a NIC's TSO would put on the wire. Each piece
// repeats the IPv4 and TCP headers with the total length, identification (+1 per piece), sequence
// number and both checksums rewritten; PSH and FIN stay on the last piece only, CWR on the first.
// For links without offload, and as the reference the tests hold the stack's output against.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "wire/bytes.hpp"

namespace phalanx::stack {

// The pieces of an IPv4 TCP datagram cut at `gso_size` payload bytes; 0 when `datagram` is not
// one (not IPv4 carrying TCP, lengths inconsistent, no payload, gso_size 0).
std::size_t gso_pieces(wire::Bytes datagram, std::uint16_t gso_size);

// Writes piece `index` (< gso_pieces()) of `datagram` into `out`, which must hold the IPv4 and
// TCP headers plus gso_size bytes, and returns its length.
std::size_t gso_piece(wire::Bytes datagram, std::uint16_t gso_size, std::size_t index,
                      wire::MutBytes out);

[[noreturn]] void gso_bad_frame();

// Calls out(wire::Bytes) with each piece of `frame` (an Ethernet frame), built in `scratch`.
// A frame that is not an IPv4 TCP segment is a caller bug and aborts.
template <class F>
void for_each_gso_frame(wire::Bytes frame, std::uint16_t gso_size, std::vector<std::byte>& scratch,
                        F&& out) {
  constexpr std::size_t kEth = 14;
  const wire::Bytes datagram = frame.size() > kEth ? frame.subspan(kEth) : wire::Bytes{};
  const std::size_t n = gso_pieces(datagram, gso_size);
  if (n == 0) {
    gso_bad_frame();
  }
  scratch.resize(kEth + 120 + gso_size);  // Ethernet, IPv4 and TCP headers at their largest
  std::copy(frame.begin(), frame.begin() + kEth, scratch.begin());
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t len = gso_piece(datagram, gso_size, i, wire::MutBytes(scratch).subspan(kEth));
    out(wire::Bytes(scratch.data(), kEth + len));
  }
}

}  // namespace phalanx::stack
