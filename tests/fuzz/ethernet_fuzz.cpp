// Fuzzes EthernetView and EthernetRepr. The repr keeps every header field, so a frame whose repr
// parses must emit its own header back byte for byte and re-parse to an equal repr.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "wire/ethernet.hpp"

using namespace phalanx::wire;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "ethernet_fuzz: %s\n", what);
    std::abort();
  }
}

void touch(const EthernetView& v, Bytes in) {
  volatile std::size_t sink = v.dst().octets()[0] + v.src().octets()[5] + v.ethertype() +
                              v.vlan_tci().value_or(0) + v.payload().size();
  (void)sink;
  check(v.has_vlan() == v.vlan_tci().has_value(), "has_vlan disagrees with vlan_tci");
  check(v.header_size() + v.payload().size() == in.size(), "header + payload != frame");
  check(v.bytes().size() == in.size(), "bytes() is not the frame");
  check(!v.has_vlan() || v.ethertype() != ethertype::kVlan, "stacked tag accepted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);
  auto v = EthernetView::parse(in);
  auto r = EthernetRepr::parse(in);
  check(v.ok() == r.ok(), "view and repr disagree");
  if (!v) {
    return 0;
  }
  touch(*v, in);
  check(r->size() == v->header_size(), "repr size != header size");

  std::vector<std::byte> out(r->size());
  r->emit(out);
  check(std::ranges::equal(Bytes(out), in.first(out.size())), "emit(parse(x)) != x");
  auto again = EthernetRepr::parse(Bytes(out));
  check(again && *again == *r, "re-parse differs");
  return 0;
}
