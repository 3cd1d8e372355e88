// Fuzzes UdpView and UdpRepr. Input: source and destination IPv4 addresses (8 bytes, for the
// pseudo-header), then the datagram, tried as is and with its checksum fixed. A datagram whose repr
// parses must emit the same bytes back (unless it carried no checksum) and re-parse to an equal
// repr.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "wire/udp.hpp"

using namespace phalanx::wire;

namespace {

void one_datagram(Bytes b, Ipv4Addr src, Ipv4Addr dst) {
  if (auto v = UdpView::parse(b)) {
    volatile std::size_t sink = v->src_port() + v->dst_port() + v->checksum() + v->has_checksum() +
                                v->checksum_ok(src, dst) + v->payload().size();
    (void)sink;
    if (v->bytes().size() != v->length() ||
        v->payload().size() + UdpView::kHeaderSize != v->length()) {
      std::abort();
    }
  }

  auto r = UdpRepr::parse(b, src, dst);
  if (!r) {
    return;
  }
  std::vector<std::byte> out(r->size());
  r->emit(out, src, dst);
  auto again = UdpRepr::parse(Bytes(out), src, dst);
  if (!again || !(*again == *r)) {
    std::abort();
  }
  const auto v = UdpView::parse(b);
  if (v->has_checksum() && !std::ranges::equal(Bytes(out), v->bytes())) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) {
    return 0;
  }
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);
  const Ipv4Addr src = Ipv4Addr::read(in, 0);
  const Ipv4Addr dst = Ipv4Addr::read(in, 4);
  const Bytes b = in.subspan(8);
  one_datagram(b, src, dst);
  if (auto v = UdpView::parse(b)) {
    std::vector<std::byte> fixed(v->bytes().begin(), v->bytes().end());
    write_u16(fixed, UdpView::kChecksum, 0);
    const std::uint16_t c = checksum::compute(
        Bytes(fixed), checksum::pseudo_header(src, dst, ipproto::kUdp, v->length()));
    write_u16(fixed, UdpView::kChecksum, c == 0 ? 0xffff : c);
    one_datagram(Bytes(fixed), src, dst);
  }
  return 0;
}
