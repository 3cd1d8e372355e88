// Fuzzes IcmpView and IcmpEchoRepr. The input is one ICMP message, tried as is and with its
// checksum fixed so that the echo path is reached. An echo that parses must emit the same bytes
// back (a checksum of 0xffff may come back as 0x0000: both verify when the other words sum to
// 0xffff), re-parse to an equal repr, and give the same bytes when emitted in place.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "wire/icmp.hpp"

using namespace phalanx::wire;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "icmp_fuzz: %s\n", what);
    std::abort();
  }
}

void touch(const IcmpView& v, Bytes in) {
  volatile std::size_t sink = v.type() + v.code() + v.checksum() + v.checksum_ok() + v.rest() +
                              v.echo_identifier() + v.echo_sequence() + v.next_hop_mtu() +
                              icmp::is_error(v.type());
  (void)sink;
  check(v.bytes().size() == in.size(), "bytes() is not the message");
  check(v.payload().size() + IcmpView::kHeaderSize == in.size(), "header + payload != message");
}

void compare(Bytes out, Bytes in) {
  check(std::ranges::equal(out.first(IcmpView::kChecksum), in.first(IcmpView::kChecksum)) &&
            std::ranges::equal(out.subspan(IcmpView::kRest), in.subspan(IcmpView::kRest)),
        "emit(parse(x)) != x");
  const std::uint16_t c = read_u16(out, IcmpView::kChecksum);
  const std::uint16_t was = read_u16(in, IcmpView::kChecksum);
  check(c == was || (c == 0 && was == 0xffff), "emitted checksum differs");
}

void one_message(Bytes b) {
  auto v = IcmpView::parse(b);
  auto r = IcmpEchoRepr::parse(b);
  if (v) {
    touch(*v, b);
  }
  if (!r) {
    return;
  }
  check(v.ok() && v->checksum_ok() && v->code() == 0, "repr parsed what it should refuse");
  check(r->size() == b.size(), "repr size != message size");

  std::vector<std::byte> out(r->size());
  r->emit(out);
  compare(Bytes(out), b);
  auto again = IcmpEchoRepr::parse(Bytes(out));
  check(again && *again == *r, "re-parse differs");

  // The reply emitted over a copy of the request, its payload in place, equals a fresh one.
  std::vector<std::byte> fresh(r->size());
  r->reply().emit(fresh);
  std::vector<std::byte> in_place(b.begin(), b.end());
  IcmpEchoRepr aliased = *r;
  aliased.payload = Bytes(in_place).subspan(IcmpView::kHeaderSize);
  aliased.reply().emit(in_place);
  check(in_place == fresh, "in-place reply differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);
  one_message(in);
  if (in.size() >= IcmpView::kHeaderSize) {
    std::vector<std::byte> fixed(in.begin(), in.end());
    write_u16(fixed, IcmpView::kChecksum, 0);
    write_u16(fixed, IcmpView::kChecksum, checksum::compute(Bytes(fixed)));
    one_message(Bytes(fixed));
  }
  return 0;
}
