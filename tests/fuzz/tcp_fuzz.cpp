// Fuzzes TcpView and TcpRepr. Input: source and destination IPv4 addresses (8 bytes, for the
// pseudo-header), then the segment. The segment is tried as is and with its checksum fixed (else
// random input almost never reaches the repr). A segment whose repr parses must, once emitted,
// re-parse to an equal repr, and emitting that again must give the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "wire/tcp.hpp"

using namespace phalanx::wire;

namespace {

void one_segment(Bytes b, Ipv4Addr src, Ipv4Addr dst) {
  if (auto v = TcpView::parse(b)) {
    volatile std::size_t sink = v->src_port() + v->dst_port() + v->seq() + v->ack() + v->flags() +
                                v->has(tcpflag::kSyn) + v->window() + v->checksum() + v->urgent() +
                                v->checksum_ok(src, dst);
    (void)sink;
    if (v->header_size() < TcpView::kMinHeaderSize || v->header_size() > TcpView::kMaxHeaderSize ||
        v->options().size() + v->payload().size() + TcpView::kMinHeaderSize != b.size()) {
      std::abort();
    }
  }

  auto r = TcpRepr::parse(b, src, dst);
  if (!r) {
    return;
  }
  // A valid option list may not fit Linux's layout in 40 bytes (e.g. MSS + TS + 3 SACK blocks):
  // emit() refuses those by contract.
  if (r->options.size() > TcpOptions::kMaxSize || r->size() > 0xffff) {
    return;
  }
  std::vector<std::byte> out(r->size());
  r->emit(out, src, dst);
  auto again = TcpRepr::parse(Bytes(out), src, dst);
  if (!again || !(*again == *r)) {
    std::abort();
  }
  std::vector<std::byte> out2(again->size());
  again->emit(out2, src, dst);
  if (out2 != out) {
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
  one_segment(b, src, dst);
  if (b.size() >= TcpView::kMinHeaderSize && b.size() <= 0xffff) {
    std::vector<std::byte> fixed(b.begin(), b.end());
    write_u16(fixed, TcpView::kChecksum, 0);
    const auto len = static_cast<std::uint16_t>(fixed.size());
    write_u16(
        fixed, TcpView::kChecksum,
        checksum::compute(Bytes(fixed), checksum::pseudo_header(src, dst, ipproto::kTcp, len)));
    one_segment(Bytes(fixed), src, dst);
  }
  return 0;
}
