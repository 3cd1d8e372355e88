// Fuzzes ArpView and ArpRepr. The repr keeps every field of an Ethernet/IPv4 ARP packet, so a
// packet whose repr parses must emit its first 28 bytes back and re-parse to an equal repr; the
// reply and announcement helpers must build packets that parse back to themselves.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "wire/arp.hpp"

using namespace phalanx::wire;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "arp_fuzz: %s\n", what);
    std::abort();
  }
}

void touch(const ArpView& v) {
  volatile std::size_t sink = static_cast<std::size_t>(v.operation()) + v.sender_mac().octets()[0] +
                              v.sender_ip().value() + v.target_mac().octets()[5] +
                              v.target_ip().value();
  (void)sink;
  check(v.bytes().size() == ArpView::kSize, "bytes() is not 28 bytes");
  check(v.operation() == ArpOperation::request || v.operation() == ArpOperation::reply,
        "unknown operation accepted");
}

// emit then parse must give `r` back.
void round_trip(const ArpRepr& r, const char* what) {
  std::vector<std::byte> out(r.size());
  r.emit(out);
  auto again = ArpRepr::parse(Bytes(out));
  check(again && *again == r, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);
  auto v = ArpView::parse(in);
  auto r = ArpRepr::parse(in);
  check(v.ok() == r.ok(), "view and repr disagree");
  if (!v) {
    return 0;
  }
  touch(*v);

  std::vector<std::byte> out(r->size());
  r->emit(out);
  check(std::ranges::equal(Bytes(out), in.first(ArpView::kSize)), "emit(parse(x)) != x");
  round_trip(*r, "re-parse differs");
  round_trip(ArpRepr::reply_to(*r, r->target_mac), "reply_to does not round-trip");
  const auto g = ArpRepr::gratuitous(r->sender_mac, r->sender_ip);
  check(g.is_gratuitous(), "announcement is not gratuitous");
  round_trip(g, "announcement does not round-trip");
  return 0;
}
