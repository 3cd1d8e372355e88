// Fuzzes Ipv4View and Ipv4Repr. The input is tried as is and, when the view parses, again with
// its header checksum fixed so that the repr path is reached. A repr that parses must emit a
// header that re-parses to an equal repr; for a 20-byte header without the reserved flag the
// emitted bytes must equal the input's, except that a checksum of 0xffff may come back as
// 0x0000 (both verify when the other words sum to 0xffff).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "wire/ipv4.hpp"

using namespace phalanx::wire;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "ipv4_fuzz: %s\n", what);
    std::abort();
  }
}

void touch(const Ipv4View& v) {
  volatile std::size_t sink = v.tos() + v.ident() + v.dont_fragment() + v.more_fragments() +
                              v.is_fragment() + v.ttl() + v.protocol() + v.checksum() +
                              v.checksum_ok() + v.src().value() + v.dst().value();
  (void)sink;
  check(v.header_size() >= Ipv4View::kMinHeaderSize, "header below 20 bytes");
  check(v.bytes().size() == v.total_length(), "bytes() is not the datagram");
  check(v.header_size() + v.payload().size() == v.total_length(), "header + payload != total");
  check(v.options().size() + Ipv4View::kMinHeaderSize == v.header_size(), "options size");
  check(v.fragment_offset() % 8 == 0, "fragment offset not in 8-byte units");
  check(v.is_fragment() == (v.more_fragments() || v.fragment_offset() != 0), "is_fragment");
}

void compare_header(Bytes out, const Ipv4View& v) {
  const bool reserved_flag = (read_u16(v.bytes(), Ipv4View::kFlagsFragment) & 0x8000) != 0;
  if (v.header_size() != Ipv4View::kMinHeaderSize || reserved_flag) {
    return;  // options and the reserved flag are dropped by the repr
  }
  const Bytes in = v.bytes();
  check(std::ranges::equal(out.first(Ipv4View::kChecksum), in.first(Ipv4View::kChecksum)) &&
            std::ranges::equal(out.subspan(Ipv4View::kSrc), in.subspan(Ipv4View::kSrc, 8)),
        "emit(parse(x)) != x");
  const std::uint16_t c = read_u16(out, Ipv4View::kChecksum);
  check(c == v.checksum() || (c == 0 && v.checksum() == 0xffff), "emitted checksum differs");
}

void one_datagram(Bytes b) {
  auto v = Ipv4View::parse(b);
  auto r = Ipv4Repr::parse(b);
  if (v) {
    touch(*v);
  }
  if (!r) {
    check(v.ok() == (r.error() == Error::bad_checksum), "repr error without the view's reason");
    return;
  }
  check(v.ok() && v->checksum_ok(), "repr parsed what the view refused");

  std::vector<std::byte> out(r->size());
  r->emit(out);
  compare_header(out, *v);
  out.insert(out.end(), v->payload().begin(), v->payload().end());
  auto again = Ipv4Repr::parse(Bytes(out));
  check(again && *again == *r, "re-parse differs");
  auto v2 = Ipv4View::parse(Bytes(out));
  check(v2 && std::ranges::equal(v2->payload(), v->payload()), "payload moved");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);
  one_datagram(in);
  if (auto v = Ipv4View::parse(in)) {
    std::vector<std::byte> fixed(in.begin(), in.end());
    write_u16(fixed, Ipv4View::kChecksum, 0);
    write_u16(fixed, Ipv4View::kChecksum, checksum::compute(Bytes(fixed).first(v->header_size())));
    one_datagram(Bytes(fixed));
  }
  return 0;
}
