// Fuzzes the software cut of offloaded segments (stack/gso.hpp), which PacketLink also uses to
// check what it is asked to offload. Input: gso_size (2 bytes, big-endian), then an IPv4
// datagram, tried as is and with the fields the cut checks made consistent (version 4, total
// length = size, protocol TCP), else random input never gets past them. Every piece must hold
// its slice of the payload, carry a valid TCP checksum, and the slices must add up.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "stack/gso.hpp"
#include "wire/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

using namespace phalanx;

namespace {

void cut(wire::Bytes d, std::uint16_t gso_size) {
  const std::size_t n = stack::gso_pieces(d, gso_size);
  if (n == 0) {
    return;
  }
  const std::size_t ip_header = std::size_t{wire::read_u8(d, 0) & 0x0fu} * 4;
  const std::size_t tcp_header = std::size_t{wire::read_u8(d, ip_header + 12)} / 16 * 4;
  const std::size_t headers = ip_header + tcp_header;
  std::vector<std::byte> out(headers + gso_size);
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t len = stack::gso_piece(d, gso_size, i, out);
    if (len <= headers || len > headers + gso_size || len > out.size()) {
      std::abort();
    }
    const wire::Bytes piece(out.data(), len);
    if (std::memcmp(piece.data() + headers, d.data() + headers + total, len - headers) != 0 ||
        wire::read_u16(piece, wire::Ipv4View::kTotalLength) != len) {
      std::abort();
    }
    const wire::Bytes tcp = piece.subspan(ip_header);
    const auto src = wire::Ipv4Addr::read(piece, wire::Ipv4View::kSrc);
    const auto dst = wire::Ipv4Addr::read(piece, wire::Ipv4View::kDst);
    if (!wire::checksum::verify(
            tcp, wire::checksum::pseudo_header(src, dst, wire::ipproto::kTcp,
                                               static_cast<std::uint16_t>(tcp.size()))) ||
        !wire::checksum::verify(piece.first(ip_header))) {
      std::abort();
    }
    total += len - headers;
  }
  if (total != d.size() - headers) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > 0xffff + 2) {
    return 0;
  }
  const auto gso_size = static_cast<std::uint16_t>((data[0] << 8) | data[1]);
  std::vector<std::byte> d(size - 2);
  std::memcpy(d.data(), data + 2, d.size());
  cut(d, gso_size);
  if (d.size() >= wire::Ipv4View::kMinHeaderSize) {
    d[0] = std::byte{static_cast<std::uint8_t>(0x40 | (std::to_integer<unsigned>(d[0]) & 0x0f))};
    wire::write_u16(d, wire::Ipv4View::kTotalLength, static_cast<std::uint16_t>(d.size()));
    d[wire::Ipv4View::kProtocol] = std::byte{wire::ipproto::kTcp};
    cut(d, gso_size);
  }
  return 0;
}
