// Fuzzes the TCP option parser alone. Input: an option list. Options that parse must emit in
// Linux's layout (a multiple of 4 bytes) and re-parse to equal values.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "wire/tcp.hpp"

using namespace phalanx::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);
  auto o = TcpOptions::parse(in);
  if (!o) {
    return 0;
  }
  if (o->sacks().size() > TcpOptions::kMaxSackBlocks || o->size() % 4 != 0) {
    std::abort();
  }
  std::vector<std::byte> out(o->size());
  o->emit(out);
  auto again = TcpOptions::parse(Bytes(out));
  if (!again || !(*again == *o)) {
    std::abort();
  }
  return 0;
}
