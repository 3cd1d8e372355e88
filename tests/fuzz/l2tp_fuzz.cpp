// Fuzzes L2tpView and L2tpRepr. Input: a UDP payload. A message whose repr parses must emit and
// re-parse to an equal repr, and emitting that again must give the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "wire/l2tp.hpp"

using namespace phalanx::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);

  if (auto v = L2tpView::parse(in)) {
    volatile std::size_t sink = v->is_control() + v->has_length() + v->has_sequence() +
                                v->has_offset() + v->priority() + v->length().value_or(0) +
                                v->tunnel_id() + v->session_id() + v->ns().value_or(0) +
                                v->nr().value_or(0) + v->offset_size().value_or(0);
    (void)sink;
    if (v->header_size() + v->payload().size() != v->bytes().size() ||
        v->ns().has_value() != v->has_sequence() ||
        (v->is_control() && (!v->has_length() || !v->has_sequence()))) {
      std::abort();
    }
  }

  auto r = L2tpRepr::parse(in);
  if (!r) {
    return 0;
  }
  std::vector<std::byte> out(r->size());
  r->emit(out);
  auto again = L2tpRepr::parse(Bytes(out));
  if (!again || !(*again == *r)) {
    std::abort();
  }
  std::vector<std::byte> out2(again->size());
  again->emit(out2);
  if (out2 != out) {
    std::abort();
  }
  return 0;
}
